"""What `workbench stimuli list/show/render` print and the UI's stimulus browser shows: items
described as plain data (their parameters as typed widgets' ranges and choices, their allowed
placements, their citation or authored label), and the exact messages a stimulus produces on a
prompt (for program placements, every call's messages)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..core.paths import data_dir
from ..core.messages import Message, Messages, to_dicts
from .library import StimulusLibrary
from .model import AppliedStimulus, StimulusItem
from .multiplexity import agent_messages, agents, synthesis_messages
from .library import builtin_library
from .placements import PLACEMENTS, apply
from .renderers import RENDERERS, Renderer
from .resolve import DEFAULT_PLACEMENT, resolve

DEFAULT_SYSTEM = "You are a helpful assistant."
AUTHORED_BY_WORKBENCH = "authored by the workbench"
AUTHORED_ELSEWHERE = "authored by its stimulus file's author"


def authorship(item: StimulusItem) -> str | None:
    """None for published material (it has a citation); else who wrote the text: the workbench
    (a family bundled in stimuli/, unchanged) or whoever wrote the file (a user's, a plugin's)."""
    if item.citation and not item.authored:
        return None
    builtin = builtin_library()
    bundled = item.id in builtin and builtin.get(item.id) == item and Path(builtin.family(item.family).file).parent == data_dir("stimuli")
    return AUTHORED_BY_WORKBENCH if bundled else AUTHORED_ELSEWHERE


ParameterKind = Literal["integer", "number", "choice", "text", "list", "flag"]
_KINDS: dict[str, ParameterKind] = {"integer": "integer", "number": "number", "string": "text", "array": "list", "boolean": "flag"}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a stimulus, as a form needs it: its kind picks the widget (a slider for
    an integer or number range, a choice among `choices`, a text field), its bounds and default."""

    name: str
    kind: ParameterKind
    required: bool
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "required": self.required, "default": self.default,
            "minimum": self.minimum, "maximum": self.maximum, "choices": list(self.choices),
        }


def parameters(renderer: Renderer) -> tuple[Parameter, ...]:
    """A renderer's parameters, read from its pydantic schema (an optional value's `null` dropped)."""
    schema = renderer.params.model_json_schema()
    required = set(schema.get("required", []))
    found = []
    for name, prop in schema.get("properties", {}).items():
        typed = next((p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"), prop)
        kind: ParameterKind = "choice" if "enum" in typed else _KINDS.get(typed.get("type", "string"), "text")
        found.append(
            Parameter(
                name=name, kind=kind, required=name in required, default=prop.get("default"),
                minimum=typed.get("minimum"), maximum=typed.get("maximum"), choices=tuple(typed.get("enum", ())),
            )
        )
    return tuple(found)


def allowed_placements(item: StimulusItem) -> tuple[str, ...]:
    """Where a condition may put the item, its own placement first: those its renderer is made
    for, else every placement applied to the prompt (plus the item's own, e.g. HEART's feedback)."""
    renderer = RENDERERS.get(item.renderer)
    own = item.placement or DEFAULT_PLACEMENT
    if renderer.placements is not None:
        others = sorted(renderer.placements)
    else:
        others = [name for name in PLACEMENTS if PLACEMENTS.get(name).stage == "prompt"]
    return (own, *[name for name in others if name != own])


@dataclass(frozen=True)
class CatalogEntry:
    """One stimulus as the browser lists it. `text` is None for an item rendered from parameters."""

    id: str
    family: str
    version: str
    text: str | None
    citation: str | None
    authored: str | None  # AUTHORED_BY_WORKBENCH or AUTHORED_ELSEWHERE; None for cited material
    inspired_by: str | None
    placements: tuple[str, ...]  # the first is the item's own
    variants: tuple[str, ...]
    parameters: tuple[Parameter, ...]

    @property
    def source(self) -> str:
        """The line saying where the text comes from: its citation or its authored label."""
        return self.authored or self.citation or ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "family": self.family, "version": self.version, "text": self.text, "citation": self.citation,
            "authored": self.authored, "inspired_by": self.inspired_by, "placements": list(self.placements),
            "variants": list(self.variants), "parameters": [p.to_json() for p in self.parameters],
        }


@dataclass(frozen=True)
class Catalogue:
    """The library as the browser shows it: its families and every item's entry, by id."""

    families: tuple[str, ...]
    entries: tuple[CatalogEntry, ...]

    def of_family(self, family: str) -> tuple[CatalogEntry, ...]:
        return tuple(e for e in self.entries if e.family == family)

    def get(self, stimulus_id: str) -> CatalogEntry:
        return next(e for e in self.entries if e.id == stimulus_id)

    def to_json(self) -> dict[str, Any]:
        return {"families": list(self.families), "stimuli": [e.to_json() for e in self.entries]}


def catalogue(library: StimulusLibrary) -> Catalogue:
    return Catalogue(families=tuple(library.families()), entries=tuple(entry(item) for item in library.items()))


def entry(item: StimulusItem) -> CatalogEntry:
    return CatalogEntry(
        id=item.id, family=item.family, version=item.version, text=item.text, citation=None if item.authored else item.citation,
        authored=authorship(item), inspired_by=item.inspired_by, placements=allowed_placements(item),
        variants=tuple(sorted(item.variants)), parameters=parameters(RENDERERS.get(item.renderer)),
    )


def summary(item: StimulusItem) -> dict[str, Any]:
    """One line of the catalogue: id, family, text where the item has one, citation or authored."""
    renderer = RENDERERS.get(item.renderer)
    row: dict[str, Any] = {
        "id": item.id,
        "family": item.family,
        "version": item.version,
        "placement": item.placement or DEFAULT_PLACEMENT,
        "text": item.text,
        "variants": sorted(item.variants),
        "params": list(renderer.params.model_fields),
    }
    row.update({"citation": item.citation} if item.citation and not item.authored else {"authored": True, "authored_by": authorship(item), "inspired_by": item.inspired_by})
    row.update({k: v for k, v in (("valence", item.valence), ("theory", item.theory), ("code_pnum", item.code_pnum)) if v})
    return row


def detail(item: StimulusItem, library: StimulusLibrary) -> dict[str, Any]:
    """Everything the library knows of an item, with its parameters' schema."""
    renderer = RENDERERS.get(item.renderer)
    schema = renderer.params.model_json_schema()
    return {
        **summary(item),
        "separator": item.separator,
        "renderer": item.renderer,
        "variants": dict(item.variants),
        "params": {name: {k: v for k, v in prop.items() if k != "title"} for name, prop in schema.get("properties", {}).items()},
        "required_params": schema.get("required", []),
        "compound_of": item.compound_of,
        "source": item.source,
        "notes": item.notes,
        "data": item.data,
        "family_notes": library.family(item.family).notes,
        "family_source": library.family(item.family).source,
    }


def base_messages(prompt: str, system: str = DEFAULT_SYSTEM, answer: str | None = None) -> Messages:
    messages: Messages = (Message.text("system", system), Message.text("user", prompt))
    return (*messages, Message.text("assistant", answer)) if answer is not None else messages


def preview(stimulus: AppliedStimulus, messages: Messages) -> list[dict[str, Any]]:
    """The calls the stimulus makes on these messages: one for a prompt placement, several for a
    program (the multi-agent synthesis shown with placeholder answers)."""
    if PLACEMENTS.get(stimulus.placement).program is None:
        return [{"purpose": "answer", "messages": to_dicts(apply(messages, stimulus))}]
    calls = [{"purpose": f"agent:{a}", "messages": to_dicts(agent_messages(messages, stimulus, a))} for a in agents(stimulus)]
    placeholders = {a: f"<answer of the {a} agent>" for a in agents(stimulus)}
    calls.append({"purpose": "synthesis", "messages": to_dicts(synthesis_messages(messages, stimulus, placeholders))})
    return calls


def render(
    library: StimulusLibrary, stimulus_id: str, prompt: str, *, placement: str | None = None, separator: str | None = None,
    variant: str | None = None, params: dict[str, Any] | None = None, system: str = DEFAULT_SYSTEM, answer: str | None = None,
) -> dict[str, Any]:
    stimulus = resolve(library, stimulus_id, placement=placement, separator=separator, variant=variant, params=params)
    if stimulus.placement == "feedback" and answer is None:
        answer = "(the previous answer)"
    return {"stimulus": stimulus.model_dump(), "calls": preview(stimulus, base_messages(prompt, system, answer))}
