"""Re-score a logged run with another answer extractor, from the stored raw responses.

No model is called: each metric-scored trial's stored response is read again by the named
extractor and scored by the task's metric, the task rebuilt from the descriptor its trial row
logged and the example from its logged input, gold, choices and meta. The new `scores` rows land
beside the old ones, as one segment batch through the store's write path (closed by a `rescored`
run event), then compacted; nothing is overwritten, and trials that already have a row under the
extractor are left alone, so a second re-score with the same extractor writes nothing.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.clock import utc_now_us
from ..core.errors import UserError
from ..scoring.extract import ERROR, EXTRACTORS, NO_ANSWER
from ..core.records import Record
from ..scoring.score_log import logged_item, score_row
from ..scoring.scorers import SCORERS
from ..store import SegmentWriter, compact, connect_reader, log_exists
from ..tasks import TaskSpec, builtin_tasks


@dataclass(frozen=True)
class RescoreSummary(Record):
    run_id: str
    extractor: str
    trials: int  # trials of the run
    scored: int  # new scores rows written now
    already: int  # trials that had a row under this extractor (left as they are)
    not_extracted: int  # trials graded without an extractor (a judge): never re-scored
    errors: int  # of the new rows: no response, or scoring failed
    no_answer: int  # of the new rows: no answer of the task's type
    model_calls: int = 0  # re-scoring reads the log only


@functools.lru_cache(maxsize=256)
def logged_task(task_json: str) -> TaskSpec:
    """The task as its trial row describes it: the built-in task with the logged descriptor's
    fields over it (parser, metric, choice matching, ...), or the descriptor alone for a task the
    registry does not hold (a custom one)."""
    descriptor = {k: v for k, v in json.loads(task_json).items() if k in TaskSpec.model_fields}
    base = builtin_tasks().get(descriptor["id"])
    fields = base.model_dump() if base is not None else {"name": descriptor["id"].split("/", 1)[-1]}
    return TaskSpec.model_validate({**fields, **descriptor})


def _extracted(task: TaskSpec) -> bool:
    return SCORERS.get(task.scoring).extracts


def rescore(db_path: Path, run_id: str, extractor: str) -> RescoreSummary:
    """Write `extractor`'s scores rows for the run's trials that lack one. UserError on an unknown
    log, run or extractor."""
    db_path = Path(db_path)
    if extractor not in EXTRACTORS:
        raise UserError(EXTRACTORS.unknown_message(extractor), field="--extractor")
    if not log_exists(db_path):
        raise UserError("no log here (run a study first, or pass --db)", file=str(db_path))
    con = connect_reader(db_path)
    try:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY created_at").fetchall()]
        if run_id not in runs:
            raise UserError(f"no run {run_id!r} (runs: {', '.join(runs) or 'none'})", file=str(db_path), field="RUN")
        trials = con.execute(
            "SELECT trial_id, attempt, task_json, item_id, item_input, targets_json, item_json, response_text FROM trials t WHERE run_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.trial_id = t.trial_id AND s.extractor = ?) ORDER BY trial_id",
            [run_id, extractor],
        ).fetchall()
        total = con.execute("SELECT count(*) FROM trials WHERE run_id = ?", [run_id]).fetchone()[0]
    finally:
        con.close()
    rows: list[dict[str, Any]] = []
    skipped = 0
    for trial_id, attempt, task_json, item_id, item_input, targets_json, item_json, text in trials:
        task = logged_task(task_json)
        if not _extracted(task):
            skipped += 1
            continue
        item = logged_item(item_id, item_input, targets_json, item_json)
        rows.append(score_row(trial_id, run_id, task, item, text, extractor, attempt))  # the scores of the attempt the trial shows
    if rows:
        event = {
            "event_id": f"{run_id}:{time.time_ns()}", "run_id": run_id, "event": "rescored",
            "event_at": utc_now_us(), "detail_json": json.dumps({"extractor": extractor, "scored": len(rows)}),
        }
        with SegmentWriter(db_path) as segments:
            segments.write({"scores": rows, "run_events": [event]})
        compact(db_path)
    return RescoreSummary(
        run_id=run_id, extractor=extractor, trials=int(total), scored=len(rows), already=int(total) - len(trials), not_extracted=skipped,
        errors=sum(r["status"] == ERROR for r in rows), no_answer=sum(r["status"] == NO_ANSWER for r in rows),
    )
