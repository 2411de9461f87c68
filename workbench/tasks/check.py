"""`workbench tasks check`: does a task's scorer credit the gold however it is worded, and only the gold?

For each item: the gold answer itself must score 1 (under the default extractor and under
`strict`); the gold worded as models word it ("The answer is X.", "**X**", "X (confidence:
0.9)", "Answer: X", "X. Because ...") must score 1 under the task's extractor; a wrong answer
worded the same ways must score 0, and so must an answer that names every candidate of a
closed set ("either the whale or the mouse"). Leniency that lets a hedge through is as wrong as
strictness that rejects a sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pathlib import Path

from ..scoring.answers import ANSWER_TYPES, candidates_of
from ..core.errors import UserError
from ..scoring.extract import DEFAULT_EXTRACTOR, EXTRACTORS, score_text
from ..scoring.metrics import is_correct
from . import TaskConfig, TaskItem, TaskSpec, resolve_task

STOPS = ".?!"
MAX_ITEMS = 1000  # items checked by default (a generated task can give millions)

# How models word an answer: name -> template over the answer x and the full stop a sentence
# around it ends with.
WORDINGS: dict[str, Callable[[str, str], str]] = {
    "the answer is": lambda x, stop: f"The answer is {x}{stop}",
    "bold": lambda x, stop: f"**{x}**",
    "confidence in brackets": lambda x, stop: f"{x} (confidence: 0.9)",
    "confidence line": lambda x, stop: f"{x}\nConfidence score: 0.95",
    "answer label": lambda x, stop: f"Answer: {x}",
    "bold answer label": lambda x, stop: f"**Answer:** {x}",
    "explanation": lambda x, stop: f"{x}{stop} Because that is what the input asks for.",
}


def stop_after(spec: TaskSpec, answer: str) -> str:
    """A full stop after the answer, unless it ends with one or its final punctuation is its own
    (a sentence answer under an exact metric cannot tell the model's full stop from the gold's)."""
    own = ANSWER_TYPES.get(spec.answer_type).own_stop
    return "" if own or answer.rstrip().endswith(tuple(STOPS)) else "."


@dataclass(frozen=True)
class Failure:
    item_id: str
    case: str  # "gold", "gold (strict)", "gold: <wording>", "wrong: <wording>", "every candidate"
    text: str
    expected: float  # 1.0 (must be credited) or 0.0 (must not be)
    score: float | None  # None: no answer found (scored 0)
    answer: str | None
    rule: str


@dataclass(frozen=True)
class CheckResult:
    task: str
    extractor: str
    answer_type: str
    items: int
    checks: int
    failures: tuple[Failure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "failures"}, "ok": self.ok, "failures": [asdict(f) for f in self.failures]}


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expected: float
    extractor: str


def wrong_answers(spec: TaskSpec, item: TaskItem, others: Sequence[TaskItem]) -> list[str]:
    """Answers the task's metric scores 0 on this item: its other candidates where the gold set is
    closed, else the gold of another item."""
    candidates = candidates_of(spec, item)
    if candidates:
        return [c.value for c in candidates if c.value not in item.targets][:2]
    for other in others:
        answer = other.targets[0]
        if other.id != item.id and spec.score_answer(answer, item) == 0.0:
            return [answer]
    return []


def hedge(spec: TaskSpec, item: TaskItem) -> str | None:
    """An answer naming every candidate of a closed set, or None when the set is open."""
    values = [c.value.rstrip(STOPS) for c in candidates_of(spec, item)]
    return f"It is either {' or '.join(values)}." if len(values) >= 2 else None


def cases(spec: TaskSpec, item: TaskItem, others: Sequence[TaskItem], extractor: str) -> list[Case]:
    out = []
    for gold in item.targets:
        out += [Case("gold", gold, 1.0, extractor), Case("gold (strict)", gold, 1.0, "strict")]
    gold = item.targets[0]
    out += [Case(f"gold: {name}", wording(gold, stop_after(spec, gold)), 1.0, extractor) for name, wording in WORDINGS.items()]
    for wrong in wrong_answers(spec, item, others):
        out += [Case("wrong", wrong, 0.0, extractor)]
        out += [Case(f"wrong: {name}", wording(wrong, stop_after(spec, wrong)), 0.0, extractor) for name, wording in WORDINGS.items()]
    every = hedge(spec, item)
    if every is not None:
        out.append(Case("every candidate", every, 0.0, extractor))
    return out


def check_task(spec: TaskSpec, n: int | None = None, seed: int = 0, extractor: str = DEFAULT_EXTRACTOR) -> CheckResult:
    """Score every case of up to n items (all the task has, at most MAX_ITEMS, by default) and
    collect what fails."""
    items = spec.items(n if n is not None else min(spec.available(), MAX_ITEMS), seed)
    failures, count = [], 0
    for index, item in enumerate(items):
        others = items[index + 1 :] + items[:index]
        for case in cases(spec, item, others, extractor):
            count += 1
            scored = score_text(spec, item, case.text, case.extractor)
            credited = scored.value is not None and is_correct(scored.value)
            zero = scored.value is None or scored.value == 0.0
            if (case.expected == 1.0 and not credited) or (case.expected == 0.0 and not zero):
                failures.append(Failure(item.id, case.name, case.text, case.expected, scored.value, scored.answer, scored.rule))
    return CheckResult(spec.id, extractor, spec.answer_type, len(items), count, tuple(failures))


def check(task: str, path: str | None = None, n: int | None = None, seed: int = 0, extractor: str = DEFAULT_EXTRACTOR) -> CheckResult:
    """`tasks check` on a task id as a study names it (with `path` for tasks that read a file)."""
    if extractor not in EXTRACTORS:
        raise UserError(EXTRACTORS.unknown_message(extractor), field="extractor")
    spec = resolve_task(TaskConfig(task=task, path=path), Path.cwd())
    if spec.scoring != "metric":
        raise UserError(f"task {spec.id} is scored by {spec.scoring!r}, not by its metric: tasks check checks metric-scored tasks", field="task")
    return check_task(spec, n=n, seed=seed, extractor=extractor)
