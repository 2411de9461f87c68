"""A run's progress read from its log while it is written: trials landed of those planned, errors,
no answers, time left and each condition's running accuracy. A few DuckDB aggregates, no
per-trial Python: a page polls it every second or two."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..scoring.extract import ERROR, NO_ANSWER
from ..scoring.policies import Unscored
from ..store import connect_reader, log_exists

SESSION_STARTS = ("started", "resumed")  # the events a session of a run opens with
SESSION_ENDS = ("interrupted", "finished")  # and ends with, unless killed


@dataclass(frozen=True)
class ConditionProgress:
    model: str
    condition: str
    done: int
    errors: int
    no_answer: int
    accuracy: float | None  # mean score of the landed trials, errors and no answers per the study's policies

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "condition": self.condition, "done": self.done, "errors": self.errors, "no_answer": self.no_answer,
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class RunProgress:
    run_id: str
    planned: int
    done: int
    errors: int
    no_answer: int
    last_event: str | None  # of a session: started, resumed (a session writes, or was killed), interrupted, finished
    time_left_s: float | None  # None: unknown (no trial landed in this session yet, or no session writing)
    errors_policy: str
    no_answer_policy: str
    conditions: tuple[ConditionProgress, ...]

    @property
    def fraction(self) -> float:
        return min(self.done / self.planned, 1.0) if self.planned else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "planned": self.planned, "done": self.done, "errors": self.errors, "no_answer": self.no_answer,
            "last_event": self.last_event, "time_left_s": self.time_left_s, "errors_policy": self.errors_policy,
            "no_answer_policy": self.no_answer_policy, "conditions": [c.to_json() for c in self.conditions],
        }


def read_progress(db: Path, run_id: str) -> RunProgress | None:
    """The progress of `run_id` in the log `db`; None while the run is not registered there yet."""
    if not log_exists(db):
        return None
    con = connect_reader(db)
    try:
        found = con.execute("SELECT trials_planned, spec_json FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if found is None:
            return None
        planned, spec_json = found
        spec = json.loads(spec_json)
        policy = Unscored(spec.get("errors", "wrong"), spec.get("no_answer", "wrong"))
        value = policy.sql_value(score="coalesce(score, 0.0)" if policy.errors == "wrong" else "score")  # as workbench.scoring.task_scores
        rows = con.execute(
            f"SELECT model, condition, count(*), count(*) FILTER (WHERE status = '{ERROR}'), count(*) FILTER (WHERE status = '{NO_ANSWER}'), "
            f"avg({value}) FROM trials WHERE run_id = ? GROUP BY model, condition",
            [run_id],
        ).fetchall()
        last_event, session_start = con.execute(
            "SELECT arg_max(event, event_at) FILTER (WHERE event IN (SELECT unnest(?))), max(event_at) FILTER (WHERE event IN (SELECT unnest(?))) "
            "FROM run_events WHERE run_id = ?",
            [[*SESSION_STARTS, *SESSION_ENDS], list(SESSION_STARTS), run_id],
        ).fetchone()
        landed_now, last_landed = con.execute(
            "SELECT count(*), max(finished_at) FROM trials WHERE run_id = ? AND finished_at >= ?", [run_id, session_start]
        ).fetchone() if session_start is not None else (0, None)
    finally:
        con.close()
    order = {c.get("name"): i for i, c in enumerate(spec.get("conditions", []))}
    conditions = tuple(
        ConditionProgress(model, condition, int(n), int(errors), int(none), None if mean is None else float(mean))
        for model, condition, n, errors, none, mean in sorted(rows, key=lambda r: (r[0], order.get(r[1], len(order))))
    )
    done = sum(c.done for c in conditions)
    writing = last_event in SESSION_STARTS
    time_left = _time_left(int(planned or 0) - done, landed_now, session_start, last_landed) if writing else None
    return RunProgress(
        run_id, int(planned or 0), done, sum(c.errors for c in conditions), sum(c.no_answer for c in conditions), last_event,
        0.0 if last_event == "finished" else time_left, policy.errors, policy.no_answer, conditions,
    )


def _time_left(pending: int, landed: int, since: datetime | None, last: datetime | None) -> float | None:
    """Pending trials at the rate this session's trials have landed at; None without a rate to go by."""
    if pending <= 0:
        return 0.0
    if not landed or since is None or last is None:
        return None
    elapsed = (last - since).total_seconds()
    return pending * elapsed / landed if elapsed > 0 else None
