"""What scoring reads of a task: workbench.tasks.TaskSpec satisfies it. A protocol here keeps the
scoring layer below the task layer, which builds on its extractors, metrics and answer types."""

from __future__ import annotations

from typing import Any, Protocol

from ..core.items import TaskItem


class ScoredTask(Protocol):
    id: str
    instruction: str
    answer_type: str  # an ANSWER_TYPES name (workbench/scoring/answers.py)
    candidates: tuple[str, ...]
    candidates_from: str | None
    scoring: str  # a SCORERS name
    scoring_args: dict[str, Any]

    def parser_answer(self, raw_text: str, item: TaskItem) -> str: ...

    def score_answer(self, answer: str, item: TaskItem) -> float: ...

    def score(self, raw_text: str, item: TaskItem) -> tuple[str | None, float]: ...
