"""Runner behaviour on the simulated model: pairing, cache, repeats, errors, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import run_cli, run_json, sim_study, write_study
from workbench.store import connect_reader


def _trials(db: Path, run_id: str) -> list[tuple]:
    con = connect_reader(db)
    try:
        return con.execute(
            "SELECT condition, task, item_id, item_input, repeat, seed, status, score FROM trials WHERE run_id = ? ORDER BY 1, 2, 3, 5",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def test_conditions_are_paired_on_the_same_examples_and_seeds(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study(repeats=2))
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(study), "--db", str(db))
    rows = _trials(db, result["run_id"])
    by_condition: dict[str, set[tuple]] = {}
    for condition, task, item_id, item_input, repeat, seed, *_ in rows:
        by_condition.setdefault(condition, set()).add((task, item_id, item_input, repeat, seed))
    units = list(by_condition.values())
    assert len(units) == 3 and len(units[0]) == 40
    assert all(u == units[0] for u in units), "every condition must see the same examples, repeats and seeds"
    # repeats of one example get different seeds (new samples), examples too
    assert len({u[4] for u in units[0]}) == 40


def test_rerun_makes_zero_model_calls_and_fresh_run_is_served_from_cache(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study())
    db = tmp_path / "log.duckdb"
    first = run_json("run", str(study), "--db", str(db))
    assert first["trials_planned"] == first["trials_done"] == 60
    assert first["model_calls"] == 60 and first["cache_hits"] == 0
    again = run_json("run", str(study), "--db", str(db))
    assert again["run_id"] == first["run_id"]
    assert again["model_calls"] == 0 and again["trials_done"] == 60
    fresh = run_json("run", str(study), "--db", str(db), "--fresh")
    assert fresh["run_id"] != first["run_id"]
    assert fresh["model_calls"] == 0 and fresh["cache_hits"] == 60
    assert [c["accuracy"] for c in fresh["conditions"]] == [c["accuracy"] for c in first["conditions"]]


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0.7},
        # A seed of the user's own replaces the trial's seed; each repeat sends one derived from it
        # (tests/test_samples.py), and the repeat index in the cache key keeps them apart too.
        {"temperature": 0.7, "seed": 1},
    ],
    ids=["trial-seed", "user-seed"],
)
def test_repeats_at_temperature_above_zero_are_separate_calls(tmp_path: Path, params: dict) -> None:
    study = sim_study(repeats=3, concurrency=1)  # one at a time: a later repeat would find an earlier one's answer
    study["models"][0]["params"] = params
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(path), "--db", str(db))
    assert result["model_calls"] == result["trials_done"] == 3 * 60 and result["cache_hits"] == 0
    con = connect_reader(db)
    keys = con.execute("SELECT count(DISTINCT cache_key), count(*), sum(cached::INT) FROM calls").fetchone()
    assert keys == (180, 180, 0)


def test_errored_trials_stay_in_the_denominator(tmp_path: Path) -> None:
    study = sim_study()
    study["models"][0]["simulate"] = {"default_accuracy": 1.0, "error_rate": 1.0}
    study["models"][0]["max_retries"] = 2
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(path), "--db", str(db))
    assert result["errors"] == 60
    for condition in result["conditions"]:
        assert condition["n"] == 20 and condition["errors"] == 20 and condition["accuracy"] == 0.0
    con = connect_reader(db)
    # bounded retries: 1 try + 2 retries, each recorded once per call
    assert con.execute("SELECT max(retries), count(*) FROM calls WHERE error IS NOT NULL").fetchone() == (2, 60)
    assert con.execute("SELECT count(*) FROM trials WHERE status = 'error' AND score IS NULL").fetchone()[0] == 60
    # resumed, the trials run again (their errors are transient) and their errors count once each
    again = run_json("run", str(path), "--db", str(db))
    assert again["model_calls"] == 60 and again["retried"] == 60 and again["errors"] == 60 and again["trials_done"] == 60
    assert sum(c["n"] for c in again["conditions"]) == 60


def test_errors_can_be_excluded_and_the_table_says_so(tmp_path: Path) -> None:
    study = sim_study(errors="exclude")
    study["models"][0]["simulate"] = {"default_accuracy": 1.0, "error_rate": 0.5}
    study["models"][0]["max_retries"] = 0
    path = write_study(tmp_path / "s.yaml", study)
    result = run_json("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert result["errors"] > 0
    for condition in result["conditions"]:
        assert condition["n"] == 20
        assert condition["accuracy"] == 1.0  # every trial that answered was right


def _sweep(study: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(study), "--db", str(db), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _landed(db: Path) -> int:
    con = connect_reader(db)
    try:
        return con.execute("SELECT count(*) FROM trials").fetchone()[0]
    finally:
        con.close()


def _sweep_under_way(tmp_path: Path, study: dict, landed: int) -> tuple[subprocess.Popen[str], Path, Path]:
    """A sweep of 300 trials in its own process, returned once `landed` of them are in the log."""
    study["tasks"] = [{"task": "ii/sum", "n": 100}]
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    process = _sweep(path, db)
    deadline = time.monotonic() + 120
    while _landed(db) < landed and time.monotonic() < deadline:
        time.sleep(0.1)
    return process, path, db


def test_sigkill_midway_then_resume_keeps_every_trial_exactly_once(tmp_path: Path) -> None:
    study = sim_study(concurrency=8)
    study["models"][0]["simulate"] = {"accuracy": {"control": 0.5, "EP02": 0.8}, "latency_ms": 40}
    process, path, db = _sweep_under_way(tmp_path, study, landed=60)
    landed_before = _landed(db)
    assert process.poll() is None, "the sweep finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < landed_before < 300
    resumed = run_json("run", str(path), "--db", str(db))
    assert resumed["trials_planned"] == resumed["trials_done"] == 300
    # the resumed run called the model only for trials that had not landed
    assert resumed["model_calls"] + resumed["cache_hits"] <= 300 - landed_before
    con = connect_reader(db)
    counts = con.execute("SELECT count(*), count(DISTINCT trial_id) FROM trials WHERE run_id = ?", [resumed["run_id"]]).fetchone()
    assert counts == (300, 300)
    # and every landed trial has exactly its own calls
    orphans = con.execute("SELECT count(*) FROM calls_landed GROUP BY trial_id HAVING count(*) <> 1").fetchall()
    assert orphans == []


def test_sigint_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    study = sim_study(concurrency=4)
    study["models"][0]["simulate"] = {"latency_ms": 40}
    process, path, db = _sweep_under_way(tmp_path, study, landed=20)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert json.loads(out)["interrupted"] is True
    resumed = run_json("run", str(path), "--db", str(db))
    assert resumed["trials_done"] == 300 and not resumed["interrupted"]
    assert _landed(db) == 300


def test_log_can_be_read_from_a_second_process_while_a_sweep_writes(tmp_path: Path) -> None:
    study = sim_study(concurrency=4)
    # long enough (about 10 s of 150 ms calls) that a reader on a loaded machine sees it mid-way
    study["tasks"] = [{"task": "ii/sum", "n": 80}]
    study["models"][0]["simulate"] = {"latency_ms": 150}
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    # the log exists as a DuckDB file before the sweep starts (from an earlier small run)
    run_json("run", str(write_study(tmp_path / "small.yaml", sim_study(name="small"))), "--db", str(db))
    process = _sweep(path, db)
    reader = (
        "import sys, json; from workbench.store import connect_reader\n"
        "con = connect_reader(sys.argv[1]); print(con.execute(\"SELECT count(*) FROM trials WHERE run_id LIKE 'simstudy-%'\").fetchone()[0])"
    )
    seen = []
    while process.poll() is None:
        result = subprocess.run([sys.executable, "-c", reader, str(db)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        seen.append(int(result.stdout))
        # plain DuckDB in another process opens the file read-only while the sweep runs
        con = duckdb.connect(str(db), read_only=True)
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] >= 1
        con.close()
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert json.loads(out)["trials_done"] == 240
    assert any(0 < n < 240 for n in seen), f"the reader never saw a partial log: {seen}"
    assert seen == sorted(seen), "a reader must never see trials disappear"
    # after the sweep, the DuckDB file alone holds everything (segments compacted)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == 240 + 60


def test_simulated_conditions_with_identical_prompts_keep_their_planted_effects(tmp_path: Path) -> None:
    """The simulator's answers depend on the condition, so its cache entries must too: two
    conditions with the same prompt (like HEART's shared round 0) may not share a draw."""
    # one at a time, so the second condition's call would find the first one's answer in the cache
    study = sim_study(conditions=[{"name": "control"}, {"name": "same_prompt"}], concurrency=1)
    study["models"][0]["simulate"] = {"accuracy": {"control": 0.0, "same_prompt": 1.0}}
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    accuracy = {c["name"]: c["accuracy"] for c in result["conditions"]}
    assert accuracy == {"control": 0.0, "same_prompt": 1.0}
    assert result["model_calls"] == 40 and result["cache_hits"] == 0


def test_a_second_process_on_the_same_run_is_refused_and_the_log_stays_whole(tmp_path: Path) -> None:
    """Two `workbench run` of one study at once used to both run every trial and then wedge the
    log (duplicate keys at compaction). The second now stops at once with a clear message."""
    study = sim_study(concurrency=4)
    study["models"][0]["simulate"] = {"latency_ms": 150}  # about 11 s: the second starts well within it
    first, path, db = _sweep_under_way(tmp_path, study, landed=8)
    second = run_cli("run", str(path), "--db", str(db), "--json")
    assert first.poll() is None, "the first sweep finished before the second could start"
    assert second.returncode == 2, second.stderr
    assert "already running in another process" in second.stderr and f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr and second.stdout == ""
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    run_id = json.loads(out)["run_id"]
    assert json.loads(out)["trials_done"] == 300
    # compacted: the DuckDB file alone holds every trial exactly once, and only the first run's events
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT trial_id) FROM trials").fetchone() == (300, 300)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert [e for (e,) in con.execute("SELECT event FROM run_events ORDER BY event_at").fetchall()] == ["started", "finished"]
    con.close()
    assert not list(tmp_path.glob("log.duckdb.*.run-lock")), "the lock file is removed at the end"
    again = run_json("run", str(path), "--db", str(db))
    assert again["run_id"] == run_id and again["model_calls"] == 0 and again["trials_done"] == 300


def test_logged_times_are_the_utc_wall_clock(tmp_path: Path) -> None:
    """Rows carry their times as microseconds since the epoch (workbench.core.clock); the log
    must read them back as the UTC time they were taken, in order, in every table."""
    from datetime import datetime, timedelta, timezone

    study = write_study(tmp_path / "s.yaml", sim_study())
    db = tmp_path / "log.duckdb"
    before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)
    run_json("run", str(study), "--db", str(db))
    after = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=1)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for sql in (
            "SELECT min(started_at), max(finished_at), bool_and(started_at <= finished_at) FROM trials",
            "SELECT min(started_at), max(finished_at), bool_and(started_at <= finished_at) FROM calls",
            "SELECT min(scored_at), max(scored_at), true FROM scores",
            "SELECT min(created_at), max(created_at), true FROM runs",
            "SELECT min(event_at), max(event_at), true FROM run_events",
        ):
            first, last, ordered = con.execute(sql).fetchone()
            assert before <= first <= last <= after and ordered, sql
    finally:
        con.close()
