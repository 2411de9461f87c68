"""The per-trial data of a run, one row per trial, for analysis in R or pandas: who (run, model,
condition, task, example, repeat, seed), what came back (response, extracted answer, extractor,
status, error), how it scored (score, gold), and what it cost (calls, tokens, latency)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

from ..store import connect_reader
from . import csv_value, frame_to_parquet

# (column, SQL over trials t and conditions c); every value is bound or a column, never user text.
TRIAL_EXPORT: tuple[tuple[str, str], ...] = (
    ("run_id", "t.run_id"), ("model", "t.model"), ("condition", "t.condition"), ("is_control", "coalesce(c.is_control, false)"),
    ("task", "t.task"), ("task_version", "t.task_version"), ("example_id", "t.item_id"), ("repeat", "t.repeat"), ("seed", "t.seed"),
    ("score", "t.score"), ("status", "t.status"), ("error", "t.error"), ("extractor", "t.extractor"), ("answer", "t.answer"),
    ("targets_json", "t.targets_json"), ("consumes_gold", "coalesce(t.consumes_gold, false)"), ("stimuli_json", "t.stimuli_json"),
    ("input", "t.item_input"), ("response", "t.response_text"), ("n_calls", "t.n_calls"), ("prompt_tokens", "t.prompt_tokens"),
    ("completion_tokens", "t.completion_tokens"), ("cost", "t.cost"), ("latency_s", "t.latency_s"), ("cached", "t.cached"),
    ("finished_at", "t.finished_at"),
)
# Derived from the JSON columns, placed where a reader looks for them.
DERIVED = {"gold": "answer", "stimuli": "consumes_gold"}  # new column -> the column it follows


def trial_records(db_path: Path, run_id: str) -> pd.DataFrame:
    """One row per trial of the run, paired trials next to each other (sorted by model, task,
    example, repeat, condition). `gold` is the first accepted answer (all of them in
    `targets_json`), `stimuli` the condition's stimulus ids joined by "+"."""
    select = ", ".join(f"{sql} AS {name}" for name, sql in TRIAL_EXPORT)
    con = connect_reader(Path(db_path))
    try:
        frame = con.execute(
            f"SELECT {select} FROM trials t LEFT JOIN conditions c ON c.run_id = t.run_id AND c.condition = t.condition "
            "WHERE t.run_id = ? ORDER BY t.model, t.task, t.item_id, t.repeat, t.condition",
            [run_id],
        ).df()
    finally:
        con.close()
    frame["gold"] = [_first(text) for text in frame["targets_json"]]
    frame["stimuli"] = ["+".join(s.get("id", "") for s in json.loads(text or "[]")) for text in frame["stimuli_json"]]
    columns = [name for name, _ in TRIAL_EXPORT if name != "stimuli_json"]
    for new, after in DERIVED.items():
        columns.insert(columns.index(after) + 1, new)
    return frame[columns]


def _first(targets_json: str | None) -> str | None:
    targets = json.loads(targets_json or "[]")
    return str(targets[0]) if targets else None


def trials_csv(frame: pd.DataFrame) -> str:
    """CSV with every text cell a spreadsheet would run as a formula defused (a leading ')."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in frame.itertuples(index=False):
        writer.writerow([None if value is pd.NaT else csv_value(value) for value in row])
    return buffer.getvalue()


def trials_parquet(frame: pd.DataFrame) -> bytes:
    """Typed columns, texts as they are (Parquet is no spreadsheet: nothing to defuse)."""
    return frame_to_parquet(frame)


TRIAL_RENDERERS = {"trials.csv": trials_csv, "trials.parquet": trials_parquet}
