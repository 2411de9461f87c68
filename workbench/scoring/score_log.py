"""Rows of the `scores` table: one per trial and answer extractor.

The runner writes, with each metric-scored trial, a row for the trial's own extractor and one for
every diagnostic extractor (workbench.scoring.extract.DIAGNOSTIC_EXTRACTORS); `workbench rescore` adds rows
for another extractor later, from the stored response. Both build them here, so a re-score of an
unchanged extractor gives the row the run wrote. A trial graded by a judge has no rows: no
extractor reads its answer (its `trials.extractor` is empty and every table uses its own score).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ..core.clock import utc_now_us
from ..core.json_layout import sorted_json
from .extract import DIAGNOSTIC_EXTRACTORS, ERROR, Scored, mentions_gold, score_text
from ..core.items import TaskItem
from .task import ScoredTask


@functools.cache
def logged_extractors(own: str | None) -> tuple[str, ...]:
    """The extractors a trial is scored under at run time: its own first, then the diagnostic ones."""
    return () if own is None else tuple(dict.fromkeys((own, *DIAGNOSTIC_EXTRACTORS)))


def scored_under(task: ScoredTask, item: TaskItem, text: str | None, extractor: str) -> Scored:
    """The response scored with `extractor`; ERROR when there is no response or scoring fails
    (a failing extractor must not stop a run or a re-score)."""
    if text is None:
        return Scored(answer=None, value=None, status=ERROR, rule="no response")
    try:
        return score_text(task, item, text, extractor)
    except Exception as exc:  # noqa: BLE001 - one trial's failure is that trial's error row
        return Scored(answer=None, value=None, status=ERROR, rule=f"failed: {type(exc).__name__}: {exc}"[:200])


def score_row(trial_id: str, run_id: str, task: ScoredTask, item: TaskItem, text: str | None, extractor: str, attempt: int = 1) -> dict[str, Any]:
    """One `scores` row (reads the gold: call it inside a gold access phase)."""
    return score_rows(trial_id, run_id, task, item, text, (extractor,), attempt)[0]


def score_rows(
    trial_id: str, run_id: str, task: ScoredTask, item: TaskItem, text: str | None, extractors: tuple[str, ...], attempt: int = 1
) -> list[dict[str, Any]]:
    """A trial's `scores` rows, one per extractor, scored together: one time and one gold check.
    `attempt`: the trial's attempt whose response they score."""
    if not extractors:
        return []
    contains_gold = None if text is None else mentions_gold(task, item, text)
    scored_at = utc_now_us()
    rows = []
    for extractor in extractors:
        scored = scored_under(task, item, text, extractor)
        rows.append(
            {
                "trial_id": trial_id,
                "attempt": attempt,
                "run_id": run_id,
                "extractor": extractor,
                "answer": scored.answer,
                "score": scored.value,
                "status": scored.status,
                "rule": scored.rule,
                "contains_gold": contains_gold,
                "scored_at": scored_at,
            }
        )
    return rows


def round_value(task: ScoredTask, item: TaskItem, text: str, extractor: str | None) -> float:
    """A loop round's score, read as the trial's final answer is (no answer scores 0); a judge-graded
    task's rounds with its model-free reference parser (the strict extractor)."""
    return scored_under(task, item, text, extractor or "strict").value or 0.0


def item_json(item: TaskItem) -> str:
    """What a trial row keeps of its example beyond input and gold, so a re-score rebuilds it
    from the log alone: the choices a multiple-choice answer is matched to, and the item's meta."""
    return sorted_json({"choices": list(item.choices), "meta": dict(item.meta)})


def logged_item(item_id: str, item_input: str, targets_json: str, item_json_text: str | None) -> TaskItem:
    """The example as a trial row logged it (a row written before `item_json` existed has no
    choices or meta)."""
    extra = json.loads(item_json_text) if item_json_text else {}
    return TaskItem(
        id=item_id,
        input=item_input,
        targets=tuple(json.loads(targets_json)),
        choices=tuple(extra.get("choices", ())),
        meta=tuple(extra.get("meta", {}).items()),
    )
