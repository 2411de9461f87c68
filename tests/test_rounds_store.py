"""The `rounds` table in the log: migration of a log written before it existed, the same
segments/compaction path as the other tables, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import run_json, write_study
from workbench.store import SCHEMA_VERSION, TABLES, SegmentWriter, compact, connect_reader, segments_dir

NEW_COLUMNS = {
    "trials": {"consumes_gold", "extractor", "item_json", "attempt"}, "conditions": {"solver", "solver_params_json", "consumes_gold"},
    "calls": {"attempt"},
}


def _v1_log(db: Path) -> None:
    """A log as version 1 wrote it: no rounds table, none of the new columns, one trial in the file
    and one in a segment."""
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    con.execute("INSERT INTO schema_migrations VALUES (1, now())")
    for name, table in TABLES.items():
        if name in ("rounds", "scores"):
            continue
        cols = ", ".join(f"{c} {t}" for c, t in table.columns if c not in NEW_COLUMNS.get(name, set()))
        key = [k for k in table.key if k not in NEW_COLUMNS.get(name, set())]
        con.execute(f"CREATE TABLE {name} ({cols}, PRIMARY KEY ({', '.join(key)}))")
    con.execute("INSERT INTO trials (trial_id, run_id, condition, status, score) VALUES ('old-1', 'r1', 'control', 'ok', 1.0)")
    con.execute("INSERT INTO conditions (run_id, condition, is_control, stimuli_json) VALUES ('r1', 'control', true, '[]')")
    con.close()
    old = [c for c, _ in TABLES["trials"].columns if c not in NEW_COLUMNS["trials"]]
    directory = segments_dir(db) / "trials"
    directory.mkdir(parents=True)
    row = {c: None for c in old} | {"trial_id": "old-2", "run_id": "r1", "condition": "control", "status": "ok", "score": 0.0}
    schema = pa.schema([f for f in TABLES["trials"].arrow_schema() if f.name in old])
    pq.write_table(pa.Table.from_pylist([row], schema=schema), directory / "00000000000000000001-old.parquet")


def test_a_version_1_log_is_read_as_it_is_and_migrated_on_the_next_compaction(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    _v1_log(db)
    con = connect_reader(db)
    assert sorted(con.execute("SELECT trial_id, consumes_gold FROM trials").fetchall()) == [("old-1", None), ("old-2", None)]
    assert con.execute("SELECT count(*) FROM rounds").fetchone()[0] == 0
    assert con.execute("SELECT solver FROM conditions").fetchall() == [(None,)]
    con.close()
    assert compact(db)
    raw = duckdb.connect(str(db), read_only=True)
    assert [v for (v,) in raw.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()] == [1, 2, 3, 4, 5, 6, 7, 8, 9] == list(range(1, SCHEMA_VERSION + 1))
    columns = {(t, c) for t, c in raw.execute("SELECT table_name, column_name FROM duckdb_columns()").fetchall()}
    assert {("trials", "attempt"), ("calls", "attempt"), ("trials", "consumes_gold"), ("conditions", "solver"), ("rounds", "round_id"), ("rounds", "verdict"), ("trials", "extractor"), ("scores", "rule"), ("trials", "item_json")} <= columns
    assert sorted(raw.execute("SELECT trial_id FROM trials").fetchall()) == [("old-1",), ("old-2",)]
    raw.close()
    # a HEART run appends to the migrated log
    study = {
        "name": "after", "models": [{"id": "sim/m", "simulate": {"default_accuracy": 0.5}}],
        "conditions": [{"name": "h", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle"}}],
        "tasks": [{"task": "ii/sum", "n": 3}],
    }
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    con = connect_reader(db)
    assert con.execute("SELECT count(DISTINCT trial_id) FROM rounds WHERE run_id = ?", [result["run_id"]]).fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == 5
    con.close()


def _round(trial_id: str, n: int) -> dict:
    return {"round_id": f"{trial_id}:{n}", "trial_id": trial_id, "run_id": "r", "round": n, "score": 1.0}


def test_rounds_land_with_their_trial_through_segments_and_compaction(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    writer = SegmentWriter(db)
    writer.write({"runs": [{"run_id": "r"}]})  # the first batch makes the file; the next ones stay segments until compaction
    writer.write({"rounds": [_round("a", 0), _round("a", 1)], "trials": [{"trial_id": "a", "run_id": "r", "status": "ok"}]})
    # a batch killed between its rounds file and its trials file: the rounds never show
    orphan = segments_dir(db) / "rounds" / "99999999999999999999-orphan.parquet"
    pq.write_table(pa.Table.from_pylist([_round("b", 0)], schema=TABLES["rounds"].arrow_schema()), orphan)
    con = connect_reader(db)
    assert sorted(con.execute("SELECT round_id FROM rounds").fetchall()) == [("a:0",), ("a:1",)]
    con.close()
    assert compact(db)
    assert orphan.exists(), "compaction folds only landed batches"
    raw = duckdb.connect(str(db), read_only=True)
    assert sorted(raw.execute("SELECT round_id FROM rounds").fetchall()) == [("a:0",), ("a:1",)]
    raw.close()
    old = time.time() - 120
    os.utime(orphan, (old, old))
    SegmentWriter(db)  # the next writer drops orphans of batches that never landed
    assert not orphan.exists()


def test_a_heart_sweep_killed_midway_resumes_with_every_round_once(tmp_path: Path) -> None:
    study = {
        "name": "heart-kill", "concurrency": 8,
        "models": [{"id": "sim/k", "simulate": {"default_accuracy": 0.3, "latency_ms": 30}}],
        "conditions": [{"name": "h", "solver": "heart", "solver_params": {"rounds": 3, "mode": "verifier_free", "final": "majority"}}],
        "tasks": [{"task": "ii/sum", "n": 120}],
    }
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "run", str(path), "--db", str(db), "--json"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    landed = 0
    while landed < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
        con = connect_reader(db) if segments_dir(db).exists() else None
        landed = con.execute("SELECT count(*) FROM trials").fetchone()[0] if con else 0
        if con:
            con.close()
    assert process.poll() is None, "the sweep finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    resumed = run_json("run", str(path), "--db", str(db))
    assert resumed["trials_done"] == 120 and resumed["errors"] == 0
    con = connect_reader(db)
    per_trial = con.execute(
        "SELECT t.trial_id, count(r.round_id), count(DISTINCT r.round_id), any_value(t.details_json) "
        "FROM trials t LEFT JOIN rounds r USING (trial_id) GROUP BY t.trial_id"
    ).fetchall()
    con.close()
    assert len(per_trial) == 120
    for _, n, distinct, details in per_trial:
        assert n == distinct == json.loads(details)["rounds_used"] + 1 == 4
