"""A run's trials and analysis settings, read from the log (the only input statistics take)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..core.errors import UserError
from ..store import connect_reader, segments_dir
from .extractor_view import use_extractor

TRIAL_COLUMNS = (
    "model", "condition", "task", "item_id", "repeat", "score", "status", "n_calls",
    "coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0) AS tokens",  # every call of the trial, its judge's too
    "coalesce(consumes_gold, false) AS consumes_gold",  # an oracle loop read the answer key
    "TRY_CAST(json_extract_string(task_json, '$.chance') AS DOUBLE) AS chance",  # BIG-bench's chance level, for the normalised score (CHANCE)
)


def trial_frame(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    return con.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials WHERE run_id = ?"
        " ORDER BY model, task, item_id, repeat, condition", [run_id]).df()  # the order rows landed in is no order


# The trials' columns the comparison table reads, grouped by DuckDB: trials that agree on all of
# them are one row with their count (`trials`), so a run of millions is a frame of thousands.
COUNTED_COLUMNS = ("model", "condition", "task", "item_id", "score", "status", "coalesce(consumes_gold, false) AS consumes_gold")
CHANCE = "TRY_CAST(json_extract_string(task_json, '$.chance') AS DOUBLE)"  # as TRIAL_COLUMNS reads it


def counted_frame(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """`trial_frame` grouped: one row per model, condition, example and outcome, with `trials`,
    how many trials it stands for (the comparison table weighs rows by it), in the same order.
    A task's chance level is read from one of its trials (a run's trials of a task share its
    definition): parsing every trial's task JSON took most of the query's time."""
    frame = con.execute(
        f"SELECT {', '.join(COUNTED_COLUMNS)}, count(*) AS trials FROM trials WHERE run_id = ? "
        "GROUP BY ALL ORDER BY model, task, item_id, condition, status, score NULLS FIRST",
        [run_id],
    ).df()
    chance = {
        task: con.execute(f"SELECT {CHANCE} FROM trials WHERE run_id = ? AND task = ? LIMIT 1", [run_id, task]).fetchone()[0]
        for task in frame["task"].unique()
    }
    frame["chance"] = frame["task"].map(chance).astype(float)
    return frame


@dataclass(frozen=True)
class RunData:
    run_id: str
    name: str
    control: str
    errors: str  # the study's choice: "wrong" or "exclude"
    conditions: tuple[str, ...]  # in the study's order
    tasks: tuple[str, ...]  # in the study's order
    trials_planned: int
    frame: pd.DataFrame  # one row per trial, or per group of alike trials with their count in `trials` (counted_frame)
    repeats: int = 1  # planned per example
    no_answer: str = "wrong"  # the study's choice for trials with no answer: "wrong" or "exclude"
    extractor: str | None = None  # the extractor whose scores `frame` holds (None: no task used one)

    @property
    def partial(self) -> bool:
        """Fewer trials logged than planned: a run still being written, or stopped."""
        return self.trials_done < self.trials_planned

    @property
    def trials_done(self) -> int:
        return int(self.frame["trials"].sum()) if "trials" in self.frame else len(self.frame)


def load_run(
    db_path: Path, run_id: str | None = None, extractor: str | None = None, *, counted: bool = False, con: duckdb.DuckDBPyConnection | None = None,
) -> RunData:
    """The trials of `run_id` (default: the latest run in the log) with the study's control,
    policies and condition order, scored by `extractor` (default: the run's own; see
    workbench.stats.extractor_view). `counted`: alike trials grouped by DuckDB (counted_frame),
    as the comparison table reads them. `con`: a reader of the log to use (left open, its
    `trials` showing `extractor`), else one of its own. UserError if there is no such log, run
    or extractor."""
    db_path = Path(db_path)
    if not db_path.exists() and not segments_dir(db_path).exists():
        raise UserError("no log here (run a study first, or pass --db)", file=str(db_path))
    own = con is None
    con = connect_reader(db_path) if con is None else con
    try:
        runs = con.execute("SELECT run_id, name, spec_json, trials_planned FROM runs ORDER BY created_at").fetchall()
        if not runs:
            raise UserError("the log holds no runs", file=str(db_path))
        by_id = {r[0]: r for r in runs}
        if run_id is None:
            run_id = runs[-1][0]
        elif run_id not in by_id:
            raise UserError(f"no run {run_id!r} (runs: {', '.join(by_id)})", file=str(db_path), field="--run")
        _, name, spec_json, planned = by_id[run_id]
        spec = json.loads(spec_json)
        flags = con.execute("SELECT condition, is_control FROM conditions WHERE run_id = ?", [run_id]).fetchall()
        used = use_extractor(con, run_id, extractor)
        frame = (counted_frame if counted else trial_frame)(con, run_id)
    finally:
        if own:
            con.close()
    order = tuple(c["name"] for c in spec.get("conditions", []))
    control = next((c for c, is_control in flags if is_control), None) or spec.get("control") or (order[0] if order else "control")
    tasks = tuple(t["task"] for t in spec.get("tasks", []))
    return RunData(
        run_id, name, control, spec.get("errors", "wrong"), order, tasks, int(planned or 0), frame, int(spec.get("repeats") or 1),
        spec.get("no_answer", "wrong"), used,
    )
