"""`sweep:` blocks: a grid over stimulus ids or whole families, placements, separators, variants
and parameters, expanded into one condition per combination with a predictable name.

    sweep:
      families: [emotionprompt]
      placements: [suffix, prefix]       # 11 x 2 = 22 conditions, EP01.suffix ... EP11.prefix, plus control

Names join the id ("/" becomes "-"), the placement, then the separator and variant when swept,
then each parameter as key=value: `SAC-warmth.prefix.level=5`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.errors import UserError
from ..stimuli import StimulusLibrary
from ..stimuli.model import Separator
from ..stimuli.resolve import DEFAULT_PLACEMENT

CONTROL = "control"
# The most conditions one sweep block may make: counted from its factors before any is built, so a
# grid of a few long lists is refused at once rather than filling memory.
MAX_SWEEP_CONDITIONS = 10_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+\-=]+")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stimuli: list[str] = Field(default_factory=list)  # ids
    families: list[str] = Field(default_factory=list)  # every item of these families, in id order
    placements: list[str] = Field(default_factory=list)  # default: each stimulus's own
    separators: list[Separator] = Field(default_factory=list)
    variants: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)  # name -> list of values (a grid) or one value
    control: bool = True  # add a condition `control` without stimuli, unless the study has one

    @model_validator(mode="after")
    def _something_to_sweep(self) -> SweepSpec:
        if not self.stimuli and not self.families:
            raise ValueError("a sweep needs `stimuli` (ids) or `families`")
        return self


def _value_label(value: Any) -> str:
    text = "+".join(map(str, value)) if isinstance(value, list) else str(value)
    return _UNSAFE.sub("_", text)[:40]


def condition_name(stimulus_id: str, placement: str, separator: str | None, variant: str | None, params: dict[str, Any]) -> str:
    parts = [stimulus_id.replace("/", "-"), placement, separator, variant]
    parts += [f"{key}={_value_label(value)}" for key, value in params.items()]
    return ".".join(p for p in parts if p)


@contextmanager
def _at(field: str) -> Iterator[None]:
    """A library lookup's error (unknown id or family, with its hints), named by the sweep field that asked."""
    try:
        yield
    except UserError as exc:
        raise UserError(exc.detail, field=field) from None


def expand(sweep: SweepSpec, library: StimulusLibrary, field: str) -> list[dict[str, Any]]:
    """The conditions of one sweep block, as condition mappings of a study file."""
    ids = list(sweep.stimuli)
    for f_index, family in enumerate(sweep.families):
        with _at(f"{field}.families[{f_index}]"):
            library.family(family)
        ids += [item.id for item in library.items(family) if item.id not in ids]
    for s_index, stimulus_id in enumerate(sweep.stimuli):
        with _at(f"{field}.stimuli[{s_index}]"):
            library.get(stimulus_id)
    grid = {key: value if isinstance(value, list) else [value] for key, value in sweep.params.items()}
    empty = [key for key, values in grid.items() if not values]
    if empty:
        raise UserError("needs at least one value", field=f"{field}.params.{empty[0]}")
    factors = {"stimuli": len(ids), "placements": len(sweep.placements) or 1, "separators": len(sweep.separators) or 1,
               "variants": len(sweep.variants) or 1, **{f"params.{key}": len(values) for key, values in grid.items()}}
    if math.prod(factors.values()) > MAX_SWEEP_CONDITIONS:
        widest = max(factors, key=factors.__getitem__)
        shown = " x ".join(f"{n:,} {name}" for name, n in factors.items() if n > 1)
        raise UserError(f"the sweep makes {math.prod(factors.values()):,} conditions ({shown}); at most {MAX_SWEEP_CONDITIONS:,}",
                        field=f"{field}.{widest}")
    conditions = []
    for stimulus_id in ids:
        own = library.get(stimulus_id).placement or DEFAULT_PLACEMENT
        for placement, separator, variant in itertools.product(sweep.placements or [own], sweep.separators or [None], sweep.variants or [None]):
            for values in itertools.product(*grid.values()):
                params = dict(zip(grid, values))
                ref: dict[str, Any] = {"id": stimulus_id, "placement": placement, "params": params}
                ref.update({k: v for k, v in (("separator", separator), ("variant", variant)) if v is not None})
                conditions.append({"name": condition_name(stimulus_id, placement, separator, variant, params), "stimuli": [ref]})
    return conditions


def expand_all(sweeps: list[SweepSpec], library: StimulusLibrary, explicit: list[str], field: str = "sweep") -> list[dict[str, Any]]:
    """Every sweep block's conditions, a control first when one is asked for and missing."""
    conditions: list[dict[str, Any]] = []
    for index, sweep in enumerate(sweeps):
        conditions += expand(sweep, library, field if len(sweeps) == 1 else f"{field}[{index}]")
    names = explicit + [c["name"] for c in conditions]
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise UserError(f"the sweep makes condition names that are already taken: {', '.join(repeated[:5])}", field=field)
    if any(s.control for s in sweeps) and CONTROL not in names:
        conditions.insert(0, {"name": CONTROL})
    return conditions
