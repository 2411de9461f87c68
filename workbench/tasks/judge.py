"""`judge/*`: open-ended prompts graded by a rubric judge model.

A judge-graded task has `scoring: judge` and names a rubric (`tasks/rubrics/<name>.yaml`). The
rubric is data: the judge's system message and prompt template, the verdict parser, and the
labels a verdict may give with their scores. Its `kind` (a registered RubricKind) says what a
verdict is:

- `choice`: the judge says which lettered statement the response says (statements from the item,
  e.g. a true and a false reference answer, in an order seeded per trial against position bias);
- `scale`: the judge gives one level of a scale (e.g. 1-5), each level with its score;
- `tags`: the judge lists the labels the response represents (perspectives; see perspectives.py).

The judge is the study's `judge:` model, reached through the gateway, so its prompt, its
raw verdict, model id and parameters are a `calls` row (purpose `judge`), cached and retried like
any call; the trial's `answer` is the verdict's label and `details_json.scoring` holds the rubric,
the raw verdict and the option order. A verdict the rubric cannot read makes the trial an error
row, never a default score.

A simulated judge (`sim/...`) is told the verdict a correct judge would give, by the task's own
model-free reference check (its `parser` and `metric` against the item's targets) or, for tags,
the labels' keywords; with its planted accuracy it gives that verdict, else unreadable text.
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..core.errors import validation_error
from ..core.input_files import load_yaml
from ..core.messages import Message
from ..core.paths import data_dir
from ..plugins import load_builtins
from ..core.registry import Registry
from ..scoring.scorers import Score, ScoreCase, Unparseable, scorer
from ..scoring.metrics import PARSERS, is_correct
from . import CAPACITY, SOURCES, TaskItem, TaskSpec
from ..core.seeds import stable_seed


# -- items listed in the task file -------------------------------------------------------------
class ListedItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    input: str
    targets: list[str] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)


ListedItems = TypeAdapter(list[ListedItem])  # the whole list at once, so an error names the item's index


def seeded_prefix(keys: Sequence[str], n: int, *seed_parts: object) -> list[int]:
    """Indices of the first n keys in a seeded order that depends only on the keys and the seed,
    so a longer draw extends a shorter one and every machine draws the same."""
    return sorted(range(len(keys)), key=lambda i: stable_seed(*seed_parts, keys[i]))[:n]


CAPACITY.add("listed", lambda spec: len(spec.source_args.get("items", [])))


@SOURCES.register("listed")
def listed_items(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    """The items written in the task file (`source_args.items`), a seeded sample of n of them."""
    try:
        entries = ListedItems.validate_python(spec.source_args.get("items", []))
    except ValidationError as exc:
        raise validation_error(exc, field=f"{spec.id}.source_args.items", model=ListedItem) from None
    items = [
        TaskItem(id=e.id or f"{index:03d}", input=e.input, targets=tuple(e.targets), meta=tuple(sorted(e.meta.items())))
        for index, e in enumerate(entries)
    ]
    return [items[i] for i in seeded_prefix([item.id for item in items], n, spec.id, spec.version, seed)]


# -- the verdict parser ------------------------------------------------------------------------
_VERDICT = re.compile(r"verdict\s*[:=]\s*(.+)", re.IGNORECASE)


@PARSERS.register("verdict")
def parse_verdict(text: str) -> str:
    """The text after the last `VERDICT:`, else the first non-empty line (small judges often drop
    the prefix); quotes, emphasis and a closing full stop removed. Raises Unparseable if empty."""
    found = _VERDICT.findall(text)
    candidate = found[-1] if found else next((line for line in text.splitlines() if line.strip()), "")
    candidate = candidate.strip().strip("\"'`*").strip()
    candidate = candidate[:-1] if candidate.endswith(".") else candidate
    if not candidate:
        raise Unparseable("the judge gave no verdict")
    return candidate


# -- rubrics -----------------------------------------------------------------------------------
class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    score: float | None = Field(None, ge=0.0, le=1.0)
    description: str = ""
    keywords: list[str] = Field(default_factory=list)  # tags only: what a simulated judge looks for


class Option(BaseModel):
    """A statement of a `choice` rubric: from the item (`field`: `target` or a meta key) or fixed text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    field: str | None = None
    text: str | None = None
    fixed: bool = False  # keeps its place after the shuffled statements (e.g. "None of these")

    @model_validator(mode="after")
    def _one_source(self) -> Option:
        if (self.field is None) == (self.text is None):
            raise ValueError("an option takes exactly one of `field` (from the item) or `text`")
        return self


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rubric: str
    version: str
    kind: str  # a registered RubricKind: choice, scale, tags
    description: str = ""
    citation: str | None = None
    authored: bool = False
    system: str
    template: str
    parser: str = "verdict"
    labels: list[Label] = Field(min_length=1)
    options: list[Option] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        if not self.citation and not self.authored:
            raise ValueError("needs a `citation` (published rubric) or `authored: true` (the workbench's or user's own)")
        if self.kind not in RUBRIC_KINDS:
            raise ValueError(RUBRIC_KINDS.unknown_message(self.kind))
        known = {label.label for label in self.labels}
        for option in self.options:
            if option.label not in known:
                raise ValueError(f"option label {option.label!r} is not among the labels ({', '.join(sorted(known))})")
        RUBRIC_KINDS.get(self.kind).validate(self)
        slots = {name.split("[")[0].split(".")[0] for _, name, _, _ in string.Formatter().parse(self.template) if name}
        allowed = BASE_SLOTS | RUBRIC_KINDS.get(self.kind).slots
        if slots - allowed:
            raise ValueError(f"template slots {sorted(slots - allowed)} are unknown (allowed: {', '.join(sorted(allowed))})")
        return self

    def scores(self) -> dict[str, float]:
        return {label.label: label.score for label in self.labels if label.score is not None}

    def verdict_line(self, value: str) -> str:
        return f"VERDICT: {value}"


BASE_SLOTS = frozenset({"question", "response", "reference", "meta"})


class RubricKind(Protocol):
    slots: frozenset[str]

    def validate(self, rubric: Rubric) -> None: ...

    def prompt(self, rubric: Rubric, case: ScoreCase) -> tuple[dict[str, str], dict[str, Any]]:
        """The kind's template slots and what `read` needs to interpret the verdict (logged)."""
        ...

    def read(self, rubric: Rubric, verdict: str, state: dict[str, Any]) -> tuple[str, float]:
        """The verdict's label and score; raises Unparseable when the verdict names none."""
        ...

    def expected(self, rubric: Rubric, case: ScoreCase, state: dict[str, Any]) -> str:
        """The verdict a correct judge gives (what a simulated judge plants)."""
        ...


RUBRIC_KINDS: Registry[RubricKind] = Registry("rubric kind")


def reference_match(case: ScoreCase) -> bool:
    """The task's own model-free check: its parser and metric against the item's targets."""
    try:
        return is_correct(case.task.score(case.text, case.item)[1])
    except Unparseable:
        return False


def _extremes(rubric: Rubric, labels: Sequence[str]) -> tuple[str, str]:
    scores = rubric.scores()
    ranked = sorted(labels, key=lambda label: scores[label])
    return ranked[-1], ranked[0]


class ChoiceKind:
    slots = frozenset({"options", "verdicts"})

    def validate(self, rubric: Rubric) -> None:
        if len(rubric.options) < 2:
            raise ValueError("a choice rubric needs at least two options")
        if any(label.score is None for label in rubric.labels):
            raise ValueError("every label of a choice rubric needs a score")

    def prompt(self, rubric: Rubric, case: ScoreCase) -> tuple[dict[str, str], dict[str, Any]]:
        moving = [o for o in rubric.options if not o.fixed]
        random.Random(stable_seed(case.seed, case.item.id, rubric.rubric, "options")).shuffle(moving)
        ordered = moving + [o for o in rubric.options if o.fixed]
        letters = string.ascii_uppercase[: len(ordered)]
        statements = [option.text if option.text is not None else _item_field(case.item, option.field or "") for option in ordered]
        slots = {
            "options": "\n".join(f"Statement {letter}: {text}" for letter, text in zip(letters, statements)),
            "verdicts": _or_list([f'"{rubric.verdict_line(letter)}"' for letter in letters]),
        }
        return slots, {"order": {letter: option.label for letter, option in zip(letters, ordered)}}

    def read(self, rubric: Rubric, verdict: str, state: dict[str, Any]) -> tuple[str, float]:
        match = re.match(r"^(?:statement\s+)?\(?([A-Z])\)?(?:[\s.:)]|$)", verdict.strip(), re.IGNORECASE)
        order: dict[str, str] = state["order"]
        letter = match.group(1).upper() if match else None
        if letter not in order:
            raise Unparseable(f"verdict {verdict!r} names none of the statements {', '.join(order)}")
        label = order[letter]
        return label, rubric.scores()[label]

    def expected(self, rubric: Rubric, case: ScoreCase, state: dict[str, Any]) -> str:
        order: dict[str, str] = state["order"]
        best, worst = _extremes(rubric, [o.label for o in rubric.options if not o.fixed])
        wanted = best if reference_match(case) else worst
        return rubric.verdict_line(next(letter for letter, label in order.items() if label == wanted))


class ScaleKind:
    slots = frozenset({"scale"})

    def validate(self, rubric: Rubric) -> None:
        if any(label.score is None for label in rubric.labels):
            raise ValueError("every level of a scale rubric needs a score")

    def prompt(self, rubric: Rubric, case: ScoreCase) -> tuple[dict[str, str], dict[str, Any]]:
        return {"scale": "\n".join(f"{label.label} = {label.description}" for label in rubric.labels)}, {}

    def read(self, rubric: Rubric, verdict: str, state: dict[str, Any]) -> tuple[str, float]:
        scores = rubric.scores()
        match = re.match(r"^\s*([^\s/,.]+)", verdict)
        label = match.group(1) if match else ""
        if label not in scores:
            raise Unparseable(f"verdict {verdict!r} is not a level of the scale ({', '.join(scores)})")
        return label, scores[label]

    def expected(self, rubric: Rubric, case: ScoreCase, state: dict[str, Any]) -> str:
        best, worst = _extremes(rubric, [label.label for label in rubric.labels])
        return rubric.verdict_line(best if reference_match(case) else worst)


RUBRIC_KINDS.add("choice", ChoiceKind())
RUBRIC_KINDS.add("scale", ScaleKind())


def _item_field(item: TaskItem, name: str) -> str:
    if name == "target":
        if not item.targets:
            raise ValueError(f"item {item.id} has no target to show the judge")
        return item.targets[0]
    meta = dict(item.meta)
    if name not in meta:
        raise ValueError(f"item {item.id} has no field {name!r} (fields: target, {', '.join(meta)})")
    return str(meta[name])


def _or_list(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def load_rubric_file(path: Any) -> Rubric:
    try:
        return Rubric.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise validation_error(exc, file=str(path), model=Rubric, whole="rubric") from None


@functools.cache
def builtin_rubrics() -> dict[str, Rubric]:
    load_builtins()  # the rubric kinds (tasks/perspectives.py registers `tags`)
    rubrics = {}
    for path in sorted((data_dir("tasks") / "rubrics").glob("*.yaml")):
        rubric = load_rubric_file(path)
        rubrics[rubric.rubric] = rubric
    return rubrics


def rubric_of(task: TaskSpec) -> Rubric:
    name = task.scoring_args.get("rubric")
    rubrics = builtin_rubrics()
    if name not in rubrics:
        raise ValueError(f"unknown rubric {name!r} (rubrics: {', '.join(sorted(rubrics))})")
    return rubrics[name]


def _check_task(task: TaskSpec) -> None:
    extra = set(task.scoring_args) - {"rubric"}
    if extra:
        raise ValueError(f"unknown judge argument(s) {sorted(extra)} (allowed: rubric)")
    rubric = rubric_of(task)
    if rubric.parser not in PARSERS:
        raise ValueError(PARSERS.unknown_message(rubric.parser))


# -- the scorer --------------------------------------------------------------------------------
@scorer("judge", judge_calls=1, check=_check_task)
async def judge_scorer(case: ScoreCase) -> Score:
    if case.judge is None:
        return Score(answer=None, value=None, error="this task is graded by a judge model and the study names none (`judge:`)")
    rubric = rubric_of(case.task)
    kind = RUBRIC_KINDS.get(rubric.kind)
    kind_slots, state = kind.prompt(rubric, case)
    reference = case.item.targets[0] if case.item.targets else ""
    slots = {"question": case.item.input, "response": case.text, "reference": reference, **kind_slots}
    prompt = rubric.template.format_map({**slots, "meta": dict(case.item.meta)})
    messages = (Message.text("system", rubric.system), Message.text("user", prompt))
    details: dict[str, Any] = {"rubric": rubric.rubric, "rubric_version": rubric.version, "judge_model": case.judge_model, **state}
    result = await case.judge(messages, purpose="judge", sim_targets=(kind.expected(rubric, case, state),))
    if result.text is None:
        return Score(answer=None, value=None, error=f"judge call failed: {result.error}", details=details)
    details["verdict"] = result.text
    try:
        label, value = kind.read(rubric, PARSERS.get(rubric.parser)(result.text), state)
    except Unparseable as exc:
        return Score(answer=None, value=None, error=f"unreadable verdict: {exc}", details=details)
    return Score(answer=label, value=value, details={**details, "label": label})
