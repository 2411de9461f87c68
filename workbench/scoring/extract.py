"""Named answer extractors: how a stored raw response becomes the answer a metric scores.

An extractor is `(task, item, text) -> Extraction`, registered by name, run on the stored raw
text (so a new one re-scores a log with no model call). `Extraction.answer` is None when the
response holds no answer of the task's type: such a trial has status `no_answer`, which is
counted apart from wrong answers and from errors in every table.

- `strict`: the task's own parser and choice matcher, as the workbench scored before extractors
  existed; no answer when that parser finds nothing of the task's type.
- `flexible`: finds the answer of the task's type in a sentence, after "Answer:" or "The answer
  is", inside markdown emphasis, before a confidence statement or an explanation; where the gold
  set is closed (labels, choices, candidates) it matches against the candidates.

The study's extractor (default DEFAULT_EXTRACTOR) scores the trial; every name in
DIAGNOSTIC_EXTRACTORS is also scored into the `scores` table at run time, for the format
diagnostic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import answers
from .answers import Unparseable
from ..core.frozen import direct_init
from ..core.registry import Registry

if TYPE_CHECKING:
    from ..core.items import TaskItem
    from .task import ScoredTask


@direct_init
@dataclass(frozen=True)
class Extraction:
    answer: str | None  # None: no answer of the task's type in the response
    rule: str  # which rule found it ("none" when nothing was found), logged with the score

Extractor = Callable[["ScoredTask", "TaskItem", str], Extraction]
EXTRACTORS: Registry[Extractor] = Registry("extractor")

DEFAULT_EXTRACTOR = "flexible"
DIAGNOSTIC_EXTRACTORS = ("strict", "flexible")

# Trial and score statuses: an answer was scored, the response held no answer of the task's
# type, or the trial failed (no response, a failed call or scorer).
OK, NO_ANSWER, ERROR = "ok", "no_answer", "error"

_MEMO: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("scoring_memo", default=None)
F = TypeVar("F", bound=Callable[..., Any])

# Entries a memo holds before it starts afresh: the run-wide memo keeps response texts, and the
# trials that share an answer (the conditions and repeats of one example) run side by side.
MEMO_LIMIT = 16_384


class scoring_memo:  # noqa: N801 - used as a function: `with scoring_memo():`
    """Within it, reading one response the same way twice computes it once: a trial's final
    score, its `scores` rows and its rounds read the same text under the same extractors, and
    across a run the conditions and repeats of one example often get the very same answer text
    (extractors and the gold check are pure functions of task, example and text). The runner
    holds one for the run, `execute` one per trial; inside one already held, it is that one.
    A plain class, not @contextmanager: `execute` enters it once per trial."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _MEMO.set({}) if _MEMO.get() is None else None

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _MEMO.reset(self._token)


def _memoized(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(task: Any, item: Any, text: str, *args: Any, **kwargs: Any) -> Any:
        memo = _MEMO.get()
        if memo is None:
            return fn(task, item, text, *args, **kwargs)
        key = (fn, id(task), id(item), text, args, tuple(sorted(kwargs.items())) if kwargs else ())
        hit = memo.get(key)
        # The entry holds its task and example: their ids cannot pass to other objects meanwhile.
        if hit is not None and hit[0] is task and hit[1] is item:
            return hit[2]
        result = fn(task, item, text, *args, **kwargs)
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = (task, item, result)
        return result

    return wrapper  # type: ignore[return-value]


@EXTRACTORS.register("strict")
def strict(task: ScoredTask, item: TaskItem, text: str) -> Extraction:
    """The task's parser and choice matcher, unchanged; no answer when what they return is not
    of the task's answer type (no number for a number task, not a label for a label task, empty).
    A parser that raises Unparseable (an inventory answer naming no option) raises through."""
    answer = task.parser_answer(text, item)
    if not answers.ANSWER_TYPES.get(task.answer_type).accepts(answer, answers.candidates_of(task, item)):
        return Extraction(answer=None, rule="parser: not of the type")
    return Extraction(answer=answer, rule="parser")


@EXTRACTORS.register("flexible")
def flexible(task: ScoredTask, item: TaskItem, text: str) -> Extraction:
    """The answer of the task's type wherever the response states it (workbench/answers.py); the
    task's parser then reads a found phrase or text."""
    kind = answers.ANSWER_TYPES.get(task.answer_type)
    found, rule = kind.find(task, item, answers.tidy(text) if kind.tidies else text)
    if found is None:
        return Extraction(answer=None, rule=rule)
    if kind.parses:
        found = task.parser_answer(found, item)  # Unparseable raises through, as in strict
    return Extraction(answer=found, rule=rule) if found.strip() else Extraction(answer=None, rule="none")


@direct_init
@dataclass(frozen=True)
class Scored:
    """A response scored under one extractor: status OK (value in [0, 1]) or NO_ANSWER (value None)."""

    answer: str | None
    value: float | None
    status: str
    rule: str


@_memoized
def score_text(task: ScoredTask, item: TaskItem, text: str, extractor: str = DEFAULT_EXTRACTOR) -> Scored:
    """Extract the answer from raw text with the named extractor, then score it with the task's metric.

    No answer of the task's type is NO_ANSWER, never a score: an extractor that finds none, an
    empty answer, or a parser or metric that raises Unparseable (an inventory answer naming no
    single option, say)."""

    try:
        found = EXTRACTORS.get(extractor)(task, item, text)
        if found.answer is None or not found.answer.strip():
            return Scored(answer=None, value=None, status=NO_ANSWER, rule=found.rule)
        return Scored(answer=found.answer, value=task.score_answer(found.answer, item), status=OK, rule=found.rule)
    except Unparseable:
        return Scored(answer=None, value=None, status=NO_ANSWER, rule="unparseable")


@functools.lru_cache(maxsize=4096)
def _gold_values(targets: tuple[str, ...]) -> frozenset[str]:
    """The numeric values of an example's gold answers (read once per example, not per trial)."""
    return frozenset(answers.number_value(str(t)) for t in targets) - {None}


@_memoized
def mentions_gold(task: ScoredTask, item: TaskItem, text: str) -> bool:
    """Whether the raw response names a gold answer and, where the gold set is closed, no other
    candidate: the format diagnostic counts zero-scored responses that do. Numbers count by value
    ("47.0", "forty-seven"), beyond the copies the input holds ("0 + 47" does not name 47 for
    the input "0 47"); labels and other answers as whole words, case and spacing ignored."""
    tidied = answers.tidy(text)
    candidates = answers.candidates_of(task, item)
    if candidates and any(c.value in item.targets for c in candidates):
        phrases = [p for c in candidates for p in c.phrases]
        named = {value for _, _, value in answers.mentions(answers.without_echoes(tidied, answers.echoes(task, item), phrases), candidates)}
        return bool(named) and named <= set(item.targets)
    if answers.ANSWER_TYPES.get(task.answer_type).numeric:
        said, given = answers.spoken_numbers(tidied), answers.given_numbers(item.input, spelled=True)
        return any(said.count(v) > given.count(v) for v in _gold_values(tuple(item.targets)))  # tuple(): the gold is read (and its access checked) each time
    folded = " ".join(tidied.lower().split())
    for target in item.targets:
        gold = " ".join(str(target).lower().split())
        if gold and re.search(r"(?<!\w)" + re.escape(gold) + r"(?!\w)", folded):
            return True
    return False

