"""SAC (Chittem et al. 2025): the induced-trait prompt for one 16PF trait at an intensity level.

The stimulus is the part of the authors' prompt that induces the trait (definition, level,
adjective anchors), from the template in `stimuli/sac.yaml`, verbatim with the code's layout. The
per-question block that follows it in their code is the `inventory/sac_induced` task's template
(tasks/inventory.yaml); the stimulus fills that block's words naming the target (`target_clause`).

Over any task the stimulus goes before the task (`prefix`, as in the authors' code, where the
induction precedes the task in one user message) or into the system message. Paired with an
`inventory/*` task and a control condition, a run measures the induced change per trait
(induced minus neutral). The template's {trait} is the trait being assessed: as in the authors'
code, the trait of the item each trial asks (its `trait_name`), so a WARMTH induction asks an
INTELLECT item with "Traits which are not WARMTH, such as INTELLECT"; the parameter
`assessed_trait` fixes it for every item, and on a task whose items name no trait it is the target.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..core.errors import UserError
from .library import StimulusLibrary, builtin_library
from .model import Family, StimulusItem
from .renderers import RENDERERS, Rendered, Renderer, Strict, data_of, fields_of, no_variant

FAMILY = "sac"


class IntensityFactor(Strict):
    factor: str
    stem: str
    anchors: dict[int, str]


class SacData(Strict):
    intensity_scale: list[int]
    intensity_levels_run_in_code: list[int] = Field(default_factory=list)
    intensity_factors: list[IntensityFactor]
    induction_template: list[str]  # lines, joined with "\n"
    target_clause: str  # the SAC-Induced question's words naming the target ({trait_const})


class SacFields(Strict):
    trait: str
    factor: str
    naive_prompt: str
    adjectives: dict[int, list[str]]
    p2_description: str
    p2_description_reversed: str | None = None
    probe_items: list[str] = Field(default_factory=list)


class SacParams(Strict):
    level: int = Field(ge=1, le=5)
    mode: Literal["code_faithful", "paper_intended"] = "paper_intended"
    assessed_trait: str | None = None


TARGET_SLOT = "slot:target_clause"  # fills the SAC-Induced template's slot (workbench.stimuli.placements.fill_slots)
ASSESSED_FIELD = "trait_name"  # the task item's metadata field that names the trait it asks about (inventory items)


def _values(fields: SacFields, level: int, mode: str) -> dict[str, str]:
    values = {"trait_const": fields.trait.upper(), "definition": fields.p2_description, "intensity_scale": str(level)}
    for n in range(1, 6):
        # The published code reads its string-keyed adjective table with int keys: every line is N/A.
        values[f"adjectives_{n}"] = "N/A" if mode == "code_faithful" else ", ".join(fields.adjectives.get(n, ["N/A"]))
    return values


def _render(item: StimulusItem, family: Family, params: SacParams, variant: str | None) -> Rendered:
    no_variant(item, variant)
    fields, data = fields_of(item, SacFields), data_of(family, SacData)
    template, values = "\n".join(data.induction_template), _values(fields, params.level, params.mode)
    assessed = params.assessed_trait or fields.trait
    rendered = Rendered(
        text=template.format(**values, trait=assessed.upper()),
        params={**params.model_dump(), "assessed_trait": assessed},
        parts={TARGET_SLOT: data.target_clause.format(trait_const=values["trait_const"])},  # used where a task has the slot
    )
    if params.assessed_trait is not None:
        return rendered
    # As the authors' code fills {trait}: with the trait of the item being asked, in each trial
    # (AppliedStimulus.for_item); on a task whose items name no trait, the target trait.
    escaped = {k: v.replace("{", "{{").replace("}", "}}") for k, v in values.items()}
    per_item = {"item:text": template.format(**escaped, trait="{%s}" % ASSESSED_FIELD), "item:params.assessed_trait": "{%s}" % ASSESSED_FIELD}
    return Rendered(text=rendered.text, params=rendered.params, parts={**rendered.parts, **per_item})


def _check(item: StimulusItem, family: Family) -> None:
    fields, data = fields_of(item, SacFields), data_of(family, SacData)
    missing = [level for level in data.intensity_scale if not fields.adjectives.get(level)]
    if missing:
        raise UserError(f"needs adjective anchors for every level of the scale; missing {missing}", field="adjectives")


RENDERERS.add("sac_induced", Renderer(render=_render, params=SacParams, item_fields=SacFields, family_data=SacData, check=_check))


# -- the API the SAC-Induced task uses ---------------------------------------------------------

def sac_data(library: StimulusLibrary | None = None) -> SacData:
    return data_of((library or builtin_library()).family(FAMILY), SacData)


def intensity_factors(library: StimulusLibrary | None = None) -> list[IntensityFactor]:
    """Frequency, Depth, Threshold, Effort, Willingness: each a question stem and five answer labels."""
    return sac_data(library).intensity_factors


def sac_traits(library: StimulusLibrary | None = None) -> list[SacFields]:
    """The 16 traits in 16PF factor order (A, B, C, E, ..., Q4), each with its three probe items."""
    return sorted((fields_of(item, SacFields) for item in (library or builtin_library()).items(FAMILY)), key=lambda t: t.factor)
