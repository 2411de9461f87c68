"""Scorers: how a trial's final text becomes a score.

A scorer is `(case) -> Score`, plain or async, registered by name; a task names it in its
`scoring` field (default `metric`). The `metric` scorer runs the task's registered parser and
metric over the stored text. A judge scorer is async and asks `case.judge`, a `generate` bound
to the study's judge model: its calls pass through the gateway, the one way to the models, so they
are cached, retried and logged as `calls` rows with purpose `judge`.

No scorer invents a score. Text with no answer of the task's type in it (an extractor finds
none, a parser raises `Unparseable`) is status `no_answer`; an unreadable verdict or a failed
judge call make the trial an error row.

A scorer marked `extracts` reads the answer with a named extractor (workbench.scoring.extract, the
trial's `extractor`); the runner then logs a `scores` row per extractor for it, and `rescore`
can score its trials again from the stored text. Other scorers (a judge) keep their own score.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.frozen import direct_init
from ..core.registry import Registry
from .answers import Unparseable  # defined beside the answer types; scorers and extractors raise it
from .extract import DEFAULT_EXTRACTOR, score_text

if TYPE_CHECKING:
    from ..core.calls import Generate
    from ..core.items import TaskItem
    from .task import ScoredTask


@direct_init
@dataclass(frozen=True)
class Score:
    answer: str | None
    value: float | None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # logged in the trial's details_json
    status: str = "ok"  # or "no_answer": the text holds no answer of the task's type (value None)


@direct_init
@dataclass(frozen=True)
class ScoreCase:
    """What a scorer sees: the task, the example, the final text and the trial's seed."""

    task: ScoredTask
    item: TaskItem
    text: str
    seed: int
    judge: Generate | None = None  # the judge model's Generate, when the study names one
    judge_model: str | None = None
    extractor: str | None = None  # the answer extractor of an `extracts` scorer (None: the default)


ScoreFn = Callable[[ScoreCase], "Score | Awaitable[Score]"]
TaskCheck = Callable[["ScoredTask"], None]


def _accept(_task: ScoredTask) -> None:
    return None


@dataclass(frozen=True)
class Scorer:
    score: ScoreFn
    judge_calls: int = 0  # calls to the study's judge model it makes per trial (at most)
    extracts: bool = False  # reads its answer with a named extractor (workbench.scoring.extract)
    check: TaskCheck = _accept  # validates a task's `scoring_args` when the task file loads (raises ValueError)

    @property
    def needs_judge(self) -> bool:
        return self.judge_calls > 0


SCORERS: Registry[Scorer] = Registry("scorer")


def scorer(name: str, *, judge_calls: int = 0, extracts: bool = False, check: TaskCheck = _accept) -> Callable[[ScoreFn], ScoreFn]:
    def register(fn: ScoreFn) -> ScoreFn:
        SCORERS.add(name, Scorer(score=fn, judge_calls=judge_calls, extracts=extracts, check=check))
        return fn

    return register


@scorer("metric", extracts=True)
def metric_scorer(case: ScoreCase) -> Score:
    """The case's extractor reads the answer, then the task's metric scores it against the gold."""
    scored = score_text(case.task, case.item, case.text, case.extractor or DEFAULT_EXTRACTOR)
    return Score(answer=scored.answer, value=scored.value, status=scored.status)


def extracts(task: ScoredTask) -> bool:
    """Whether the task's scorer reads its answer with an extractor (so extractors can re-score it)."""
    return SCORERS.get(task.scoring).extracts


async def score_trial(case: ScoreCase) -> Score:
    """Run the task's scorer; a scorer that raises gives an error row, not a crashed sweep."""
    name = case.task.scoring
    try:
        result = SCORERS.get(name).score(case)
        if not isinstance(result, Score) and inspect.isawaitable(result):  # a judge's scorer awaits its calls
            result = await result
    except Exception as exc:  # noqa: BLE001 - a scorer bug must not stop the other trials
        return Score(answer=None, value=None, error=f"scorer {name} failed: {type(exc).__name__}: {exc}")
    return result
