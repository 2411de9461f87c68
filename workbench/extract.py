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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .registry import Registry

if TYPE_CHECKING:
    from .tasks import TaskItem, TaskSpec


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # None: no answer of the task's type in the response
    rule: str  # which rule found it ("none" when nothing was found), logged with the score


Extractor = Callable[["TaskSpec", "TaskItem", str], Extraction]
EXTRACTORS: Registry[Extractor] = Registry("extractor")

DEFAULT_EXTRACTOR = "flexible"
DIAGNOSTIC_EXTRACTORS = ("strict", "flexible")

# Trial and score statuses: an answer was scored, the response held no answer of the task's
# type, or the trial failed (no response, a failed call or scorer).
OK, NO_ANSWER, ERROR = "ok", "no_answer", "error"


@EXTRACTORS.register("strict")
def strict(task: TaskSpec, item: TaskItem, text: str) -> Extraction:
    """The task's parser and choice matcher, unchanged."""
    return Extraction(answer=task.parse(text, item), rule="parser")


@EXTRACTORS.register("flexible")
def flexible(task: TaskSpec, item: TaskItem, text: str) -> Extraction:
    # Placeholder until the per-answer-type extraction lands (issue 10): same as strict.
    return Extraction(answer=task.parse(text, item), rule="parser")


@dataclass(frozen=True)
class Scored:
    """A response scored under one extractor: status OK (value in [0, 1]) or NO_ANSWER (value None)."""

    answer: str | None
    value: float | None
    status: str
    rule: str


def score_text(task: TaskSpec, item: TaskItem, text: str, extractor: str = DEFAULT_EXTRACTOR) -> Scored:
    """Extract the answer from raw text with the named extractor, then score it with the task's metric.

    No answer of the task's type is NO_ANSWER, never a score: an extractor that finds none, an
    empty answer, or a parser or metric that raises Unparseable (an inventory answer naming no
    single option, say)."""
    from .scorers import Unparseable  # scorers imports this module

    try:
        found = EXTRACTORS.get(extractor)(task, item, text)
        if found.answer is None or not found.answer.strip():
            return Scored(answer=None, value=None, status=NO_ANSWER, rule=found.rule)
        return Scored(answer=found.answer, value=task.score_answer(found.answer, item), status=OK, rule=found.rule)
    except Unparseable:
        return Scored(answer=None, value=None, status=NO_ANSWER, rule="unparseable")


def mentions_gold(task: TaskSpec, item: TaskItem, text: str) -> bool:
    """Whether the raw response names a gold answer (a whole-word match, case and spacing ignored):
    the format diagnostic counts zero-scored responses that do."""
    import re

    folded = " ".join(text.lower().split())
    for target in item.targets:
        gold = " ".join(str(target).lower().split())
        if gold and re.search(r"(?<!\w)" + re.escape(gold) + r"(?!\w)", folded):
            return True
    return False
