"""A million trials on one machine (issue 16): the runner takes its trials as a stream and keeps
only a bounded number of them and of the model's answers in memory (the rest of the cache sits
in a private DuckDB file, looked up per batch of keys), a run killed midway still resumes with
no trial lost or run twice, and `compare` reads trials grouped by DuckDB with the numbers the
trial-by-trial pandas path gives. Speed and memory are measured in bench/bench_scale.py."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from conftest import sim_study, write_study
from workbench.run import cache as cache_module
from workbench.run import scheduler
from workbench.run.control import Progress
from workbench.run.scheduler import Runner, run_study
from workbench.store import connect_reader
from workbench.study import expand as expand_module
from workbench.study.spec import load_study

PLANNED = 2 * 400  # two conditions x 400 examples: more trials than one batch (FLUSH_EVERY_TRIALS)


def _study(tmp_path: Path, name: str = "stream", examples: int = 400, latency_ms: float = 0.0) -> Path:
    study = sim_study(name=name, concurrency=8, conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
                      tasks=[{"task": "ii/sum", "n": examples}])
    study["models"][0]["simulate"] = {"accuracy": {"control": 0.5, "EP02": 0.8}, "latency_ms": latency_ms}
    return write_study(tmp_path / f"{name}.yaml", study)


def _ids(db: Path, run_id: str) -> list[str]:
    con = connect_reader(db)
    try:
        return [r[0] for r in con.execute("SELECT trial_id FROM trial_attempts WHERE run_id = ?", [run_id]).fetchall()]
    finally:
        con.close()


def _landed(db: Path) -> int:
    if not db.exists() and not (db.parent / f"{db.name}.segments").exists():
        return 0
    con = connect_reader(db)
    try:
        return con.execute("SELECT count(*) FROM trials").fetchone()[0]
    finally:
        con.close()


def test_a_run_holds_only_the_trials_under_way_not_the_whole_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials are rendered as workers take them and dropped once logged: never the whole plan at once."""
    alive = made = 0
    streamed = expand_module.iter_trials

    def gone() -> None:
        nonlocal alive
        alive -= 1

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal alive, made
        for trial in streamed(*args, **kwargs):
            weakref.finalize(trial, gone)
            alive += 1
            made += 1
            yield trial

    monkeypatch.setattr(expand_module, "iter_trials", counted)
    monkeypatch.setattr(scheduler, "iter_trials", counted, raising=False)
    most = 0

    def seen(progress: Progress) -> None:
        nonlocal most
        most = max(most, alive)

    summary = run_study(load_study(_study(tmp_path)), tmp_path / "log.duckdb", progress=seen)
    assert summary.trials_done == made == PLANNED
    assert 0 < most <= 64, f"{most} trials were held at once, of {PLANNED}"


def test_the_cache_keeps_few_answers_in_memory_and_looks_the_rest_up_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MEMORY_ANSWERS", 50, raising=False)
    monkeypatch.setattr(cache_module, "SPILL_EVERY", 20, raising=False)
    study = load_study(_study(tmp_path))
    db = tmp_path / "log.duckdb"
    held: list[int] = []

    async def run(**kwargs: Any) -> Any:
        runner = Runner(study, db, **kwargs)
        summary = await runner.run()
        held.append(len(runner.cache._answers))
        return summary

    first = asyncio.run(run())
    assert first.model_calls == PLANNED and held[-1] <= 50

    batches: list[int] = []
    fetch = cache_module.AnswerStore.fetch
    monkeypatch.setattr(cache_module.AnswerStore, "fetch", lambda self, keys: (batches.append(len(list(keys))), fetch(self, keys))[1])
    # A fresh run of the same study: every call is answered from the log, none from the model.
    fresh = asyncio.run(run(fresh=True))
    assert fresh.trials_done == PLANNED and fresh.cache_hits == PLANNED and fresh.model_calls == 0
    assert sum(batches) == PLANNED and len(batches) < PLANNED  # looked up in batches of keys, each key once
    assert held[-1] <= 50
    # the answers served are the logged ones, trial by trial
    con = connect_reader(db)
    try:
        pairs = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE a.response_text = b.response_text) FROM calls a JOIN calls b "
            "ON a.cache_key = b.cache_key AND a.run_id = ? AND b.run_id = ?", [first.run_id, fresh.run_id]
        ).fetchone()
    finally:
        con.close()
    assert pairs == (PLANNED, PLANNED)


def test_a_run_killed_midway_resumes_with_no_trial_lost_or_repeated(tmp_path: Path) -> None:
    path = _study(tmp_path, "killed", examples=600, latency_ms=20.0)  # 1,200 trials: about 3 s at concurrency 8
    study = load_study(path)
    db = tmp_path / "log.duckdb"
    code = "import sys; from pathlib import Path; from workbench.study.spec import load_study; from workbench.run.scheduler import run_study; run_study(load_study(sys.argv[1]), Path(sys.argv[2]))"
    process = subprocess.Popen([sys.executable, "-c", code, str(path), str(db)], env=os.environ.copy())
    deadline = time.monotonic() + 60
    while _landed(db) <= 512 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    landed = _landed(db)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 512 < landed < 1200  # more than a batch landed, not all
    resumed = run_study(study, db)
    assert resumed.trials_planned == resumed.trials_done == 1200
    ids = _ids(db, resumed.run_id)
    assert len(ids) == len(set(ids)) == 1200  # every planned trial once, no attempt twice
    assert set(ids) == {t.trial_id for t in expand_module.iter_trials(study, resumed.run_id)}


def _close(a: Any, b: Any) -> bool:
    """Equal, floats up to rounding (sums taken in another order), NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return type(a) is type(b) and _close(dataclasses.asdict(a), dataclasses.asdict(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("seed", [1, 2])
def test_compare_grouped_by_duckdb_equals_the_trial_by_trial_path(tmp_path: Path, seed: int) -> None:
    """A random log (two tasks, three conditions, repeats, errors, answers in another format,
    stopped before its end): the table, format diagnostic and gain/cost read grouped by DuckDB
    equal those computed from every trial in pandas."""
    import random

    from workbench.reports import rounds
    from workbench.stats import compare
    from workbench.stats.format_check import format_diagnostic, read_format, read_format_counted
    from workbench.stats.frame import counted_frame, trial_frame

    rng = random.Random(seed)
    study = sim_study(name=f"random{seed}", seed=seed, repeats=rng.choice([2, 3]), concurrency=4,
                      tasks=[{"task": "ii/sum", "n": rng.randint(8, 14)}, {"task": "ii/larger_animal", "n": rng.randint(8, 14)}])
    study["models"][0]["max_retries"] = 0
    study["models"][0]["simulate"] = {
        "accuracy": {"control": rng.uniform(0.3, 0.6), "EP02": rng.uniform(0.4, 0.9), "NP01": rng.uniform(0.2, 0.9)},
        "answer_format": {"NP01": "confidence_only"}, "error_rate": rng.uniform(0.02, 0.1),
    }
    loaded = load_study(write_study(tmp_path / "s.yaml", study))
    db = tmp_path / "log.duckdb"
    from workbench.run.control import StopHandle

    stop = StopHandle()
    stop_at = rng.randint(70, 110)
    summary = run_study(loaded, db, stop=stop, progress=lambda p: stop.stop() if p.run_now >= stop_at else None, max_attempts=1)
    con = connect_reader(db)
    try:
        trials, counted = trial_frame(con, summary.run_id), counted_frame(con, summary.run_id)
        assert len(counted) < len(trials) and counted["trials"].sum() == len(trials)
        for options in ({}, {"errors": "exclude", "no_answer": "exclude", "test": "wilcoxon", "family": "run"}):
            old = compare(trials, "control", order=("control", "EP02", "NP01"), planned=summary.trials_planned, **options)
            new = compare(counted, "control", order=("control", "EP02", "NP01"), planned=summary.trials_planned, **options)
            assert _close(old.to_dict(json_safe=False), new.to_dict(json_safe=False)), options
        for extractor in ("flexible", "strict"):
            old_rows = format_diagnostic(read_format(con, summary.run_id, extractor), "control", extractor)
            new_rows = format_diagnostic(read_format_counted(con, summary.run_id, extractor), "control", extractor)
            assert new_rows and _close(old_rows, new_rows), extractor
        for policy in ("wrong", "exclude"):
            frames = rounds._frames(con, summary.run_id, policy, policy)
            assert _close((rounds._costs(*frames), rounds._curve(*frames)), rounds.gain_and_cost(con, summary.run_id, policy, policy))
    finally:
        con.close()
