"""`inventory/*`: personality inventories answered on a 1-5 scale and scored per trait.

Item banks are data (tasks/inventories/<name>.yaml): each item has a trait (factor code), a key
(+1, or -1 for reverse-scored items) and its verbatim text, with the bank's citation. An item's
gold target is the answer at the trait's high pole ("A", Very Accurate, for +1 items; "E" for -1
items), so the `likert` metric gives the keyed level on [0, 1]: keyed = 1 + 4 * score, where the
answer's level is A..E -> 5..1 (or the digit of a 1-5 numeric template) and a reverse-keyed item
scores 6 - level. An answer that names no option is an error row (the SAC code scored a missing
letter as C; the workbench does not invent answers).

The SAC report over a run's log (per model, condition, inventory and trait, the mean keyed level
and the induced change against the control) is workbench/trait_report.py, loaded only when a run
is reported.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.errors import UserError
from ..core.input_files import load_yaml
from ..core.paths import data_dir
from ..scoring.scorers import Unparseable
from ..scoring.metrics import METRICS, PARSERS
from . import CAPACITY, SOURCES, TaskItem, TaskSpec
from ..core.seeds import stable_seed


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inventory: str
    version: str
    citation: str
    source: str
    traits: dict[str, str]  # factor code -> trait name
    items: list[list[Any]] = Field(min_length=1)  # [factor, key, text] or [factor, key, text, facet]

    @field_validator("items")
    @classmethod
    def _rows(cls, rows: list[list[Any]]) -> list[list[Any]]:
        for index, row in enumerate(rows):
            if len(row) not in (3, 4) or row[1] not in (1, -1) or not isinstance(row[2], str):
                raise ValueError(f"item {index}: expected [factor, key (1 or -1), text(, facet)], got {row!r}")
        return rows

    def item_list(self) -> list[TaskItem]:
        """Items in file order; ids are factor and running number within the factor ("A-03")."""
        seen: dict[str, int] = {}
        items = []
        for factor, key, text, *facet in self.items:
            if factor not in self.traits:
                raise ValueError(f"item {text!r} has factor {factor!r}, not among the traits ({', '.join(self.traits)})")
            seen[factor] = seen.get(factor, 0) + 1
            meta = (("facet", facet[0]),) if facet else ()
            items.append(
                TaskItem(
                    id=f"{factor}-{seen[factor]:02d}",
                    input=text.lower(),  # as MPI and SAC render items: lower-cased into "You {}."
                    targets=("A" if key == 1 else "E",),
                    meta=(("trait", factor), ("trait_name", self.traits[factor]), ("key", key), ("text", text), *meta),
                )
            )
        return items


@functools.cache
def load_inventory(name: str) -> Inventory:
    path = data_dir("tasks") / "inventories" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        raise UserError(f"unknown inventory {name!r} (inventories: {known})", field="source_args.inventory")
    try:
        return Inventory.model_validate(load_yaml(path))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any defect of the bank is reported with its file
        raise UserError(f"bad inventory file: {exc}", file=str(path)) from None


@functools.cache
def inventory_items(name: str) -> tuple[TaskItem, ...]:
    return tuple(load_inventory(name).item_list())


CAPACITY.add("inventory", lambda spec: len(inventory_items(spec.source_args["inventory"])))


@SOURCES.register("inventory")
def inventory_source(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    """n items balanced over the traits (`balanced`), so a small n still covers every trait."""
    return balanced(spec, inventory_items(spec.source_args["inventory"]), lambda item: dict(item.meta)["trait"], seed)[:n]


def balanced(spec: TaskSpec, items: Sequence[TaskItem], group: Callable[[TaskItem], Hashable], seed: int) -> list[TaskItem]:
    """The items with their groups taking turns (in the order the groups first appear), each
    group's items in a seeded order: any prefix covers the groups evenly, and a longer draw
    extends a shorter one."""
    by_group: dict[Hashable, list[TaskItem]] = {}
    for item in items:
        by_group.setdefault(group(item), []).append(item)
    for members in by_group.values():
        members.sort(key=lambda item: stable_seed(spec.id, spec.version, seed, item.id))
    return [members[i] for i in range(max(map(len, by_group.values()))) for members in by_group.values() if i < len(members)]


# -- answers -----------------------------------------------------------------------------------
LEVELS = {"A": 5, "B": 4, "C": 3, "D": 2, "E": 1}
_OPTION_TEXT = {  # the MPI option wordings
    "very accurate": "A",
    "moderately accurate": "B",
    "neither accurate nor inaccurate": "C",
    "moderately inaccurate": "D",
    "very inaccurate": "E",
}
_LONE_LETTER = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")


@PARSERS.register("mpi_choice")
def parse_mpi_choice(text: str) -> str:
    """The option an MPI answer names: its one capital letter A-E standing alone ("B", "(B).",
    "Answer: B. Moderately Accurate"), else its one option wording ("Moderately Accurate").
    Lower-case letters are not read (the article "a"); an answer naming several options, or
    none, raises Unparseable."""
    letters = set(_LONE_LETTER.findall(text))
    if len(letters) == 1:
        return letters.pop()
    if not letters:
        lowered = " ".join(text.lower().split())
        named = {letter for wording, letter in _OPTION_TEXT.items() if re.search(r"(?<![a-z])" + wording + r"(?![a-z])", lowered)}
        if len(named) == 1:
            return named.pop()
    raise Unparseable(f"no single option A-E in {text.strip()[:80]!r}")


@PARSERS.register("likert_number")
def parse_likert_number(text: str) -> str:
    """The first digit 1-5 standing alone (for 1-5 numeric templates). Raises Unparseable."""
    match = re.search(r"(?<!\d)([1-5])(?!\d)", text)
    if not match:
        raise Unparseable(f"no rating 1-5 in {text.strip()[:80]!r}")
    return match.group(1)


def level(answer: str) -> int:
    answer = answer.strip().upper()
    if answer in LEVELS:
        return LEVELS[answer]
    if answer in {"1", "2", "3", "4", "5"}:
        return int(answer)
    raise Unparseable(f"{answer!r} is not a level of a 1-5 scale")


@METRICS.register("likert")
def likert(answer: str, targets: Sequence[str]) -> float:
    """1 - |level(answer) - level(target)| / 4: 1.0 at the target's pole, 0.0 at the other."""
    return max(1.0 - abs(level(answer) - level(t)) / 4.0 for t in targets)
