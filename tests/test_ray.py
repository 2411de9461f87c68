"""The Ray executor (issue 16): `workbench run STUDY --executor ray --address HOST:PORT` on a Ray
cluster of this machine (a head started with `ray start`, two worker slots, on 127.0.0.1 only)
gives the log a local run gives, survives a worker killed midway and resumes after an interrupt,
each trial logged once. The cluster (tests/ray_cluster.py) is started once for the module and
stopped by pid at its end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, run_json, sim_study, write_study
from ray_cluster import RAY_ENV, Cluster, cluster_pids, ray_cluster
from workbench import api
from workbench.core.errors import UserError
from workbench.core.paths import segments_dir
from workbench.run.executors import EXECUTORS, executor_for
from workbench.store import connect_reader

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One cluster for the module (it takes seconds to start): two worker slots, so two worker processes run the chunks."""
    with ray_cluster(cpus=2) as started:
        yield started


def _counts(db: Path, run_id: str) -> tuple[int, int, int]:
    """(trial rows, distinct trials, call rows) of the run."""
    con = connect_reader(db)
    try:
        trials, distinct = con.execute("SELECT count(*), count(DISTINCT trial_id) FROM trials WHERE run_id = ?", [run_id]).fetchone()
        calls = con.execute("SELECT count(*) FROM calls WHERE run_id = ?", [run_id]).fetchone()[0]
        return trials, distinct, calls
    finally:
        con.close()


def _ray_events(db: Path, run_id: str) -> list[dict]:
    con = connect_reader(db)
    try:
        return [json.loads(d) for (d,) in con.execute("SELECT detail_json FROM run_events WHERE run_id = ? AND event = 'ray' ORDER BY event_at", [run_id]).fetchall()]
    finally:
        con.close()


def _ray_run(study: Path, db: Path, address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "run", str(study), "--db", str(db), "--executor", "ray", "--address", address, *extra]


@pytest.mark.slow
def test_a_ray_run_logs_every_trial_once_and_compares_as_a_local_run(tmp_path: Path, cluster: Cluster) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study(repeats=2))  # 3 conditions x 20 examples x 2 repeats
    on_ray = run_json("run", str(study), "--db", str(tmp_path / "ray.duckdb"), "--executor", "ray", "--address", cluster.address, env=RAY_ENV)
    local = run_json("run", str(study), "--db", str(tmp_path / "local.duckdb"))
    assert on_ray["run_id"] == local["run_id"] and on_ray["trials_planned"] == 120
    assert on_ray["trials_done"] == on_ray["model_calls"] == 120
    assert _counts(tmp_path / "ray.duckdb", on_ray["run_id"]) == (120, 120, 120)
    [event] = _ray_events(tmp_path / "ray.duckdb", on_ray["run_id"])
    assert event["cpus"] == 2 and event["chunks"] > 2  # the trials went out in chunks to the two workers
    assert on_ray["conditions"] == local["conditions"]
    assert api.compare(tmp_path / "ray.duckdb").to_json() == api.compare(tmp_path / "local.duckdb").to_json()


def _slow_study(tmp_path: Path) -> Path:
    """80 trials of 0.2 s each, one at a time per worker: chunks of 10 take 2 s, so a chunk's
    first batch (written after 1 s) lands before it ends."""
    study = sim_study(repeats=2, concurrency=1, conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}])
    study["models"][0]["simulate"]["latency_ms"] = 200
    return write_study(tmp_path / "slow.yaml", study)


def _chunk_with_landed_batch(db: Path, pgid: int) -> int | None:
    """The pid of a Ray worker running a chunk that has landed a batch of trials already: its
    SegmentWriter's lock file is open in it, and a trials segment carries that writer's id."""
    trials = [p.name for p in (segments_dir(db) / "trials").glob("*.parquet")]
    for pid in cluster_pids(pgid):
        try:
            opened = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        writers = {Path(path).stem for path in opened if path.endswith(".lock") and "/writers/" in path}
        if any(f"-{writer}-" in name for writer in writers for name in trials):
            return pid
    return None


def _wait_for(found: callable, proc: subprocess.Popen[str], timeout_s: float = 120) -> object:
    deadline = time.monotonic() + timeout_s
    while (value := found()) is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


@pytest.mark.slow
def test_a_worker_killed_midway_and_the_run_still_logs_every_trial_once(tmp_path: Path, cluster: Cluster) -> None:
    study, db = _slow_study(tmp_path), tmp_path / "log.duckdb"
    proc = subprocess.Popen([*_ray_run(study, db, cluster.address), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV})
    try:
        victim = _wait_for(lambda: _chunk_with_landed_batch(db, cluster.pgid), proc)
        os.kill(victim, signal.SIGKILL)
        out, errors = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errors
    result = json.loads(out)
    assert result["trials_done"] == result["trials_planned"] == 80
    assert _counts(db, result["run_id"]) == (80, 80, 80)
    # The killed chunk ran again and skipped what its first attempt had landed.
    [event] = _ray_events(db, result["run_id"])
    assert event["resumed"] > 0
    assert result["model_calls"] == 80 - event["resumed"]


@pytest.mark.slow
def test_an_interrupted_ray_run_resumes_without_calling_again(tmp_path: Path, cluster: Cluster) -> None:
    study, db = _slow_study(tmp_path), tmp_path / "log.duckdb"
    proc = subprocess.Popen([*_ray_run(study, db, cluster.address), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV})
    try:
        _wait_for(lambda: next((segments_dir(db) / "trials").glob("*.parquet"), None), proc)  # a worker's batch landed
        proc.send_signal(signal.SIGINT)
        _, errors = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, errors
    assert "interrupted: run the same command again to resume" in errors
    landed = _counts(db, _only_run(db))[0]
    assert 0 < landed < 80
    again = run_json("run", str(study), "--db", str(db), "--executor", "ray", "--address", cluster.address, env=RAY_ENV)
    assert again["trials_done"] == 80 and again["model_calls"] == 80 - landed
    assert _counts(db, again["run_id"]) == (80, 80, 80)


@pytest.mark.slow
def test_the_driver_opens_no_model_and_the_workers_serve_a_fresh_run_from_the_log(tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Ray the `workbench run` process calls nothing: it opens no provider (a `local/...`
    model would start a llama.cpp server there for nothing) and copies no logged answers; the
    workers' caches, built from the log, answer a fresh run of a logged study without a call."""
    from workbench.run import scheduler
    from workbench.run.gateway import GatewaySettings

    study, db = write_study(tmp_path / "s.yaml", sim_study()), tmp_path / "log.duckdb"
    first = api.run(study, db)
    assert first.model_calls == first.trials_planned

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("the driver opened what only the workers use")

    monkeypatch.setattr(GatewaySettings, "open", refused)
    monkeypatch.setattr(scheduler, "logged_answers", refused)
    for name, value in RAY_ENV.items():
        monkeypatch.setenv(name, value)
    again = api.run(study, db, fresh=True, executor="ray", address=cluster.address)
    assert again.run_id != first.run_id and again.trials_done == again.trials_planned == first.trials_planned
    assert again.model_calls == 0 and again.cache_hits == first.model_calls
    assert _counts(db, again.run_id) == (first.trials_planned, first.trials_planned, first.trials_planned)


def _only_run(db: Path) -> str:
    con = connect_reader(db)
    try:
        [(run_id,)] = con.execute("SELECT run_id FROM runs").fetchall()
        return run_id
    finally:
        con.close()


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=20).filter(lambda name: name not in EXECUTORS))
def test_an_unknown_executor_is_refused_naming_the_allowed_ones(name: str) -> None:
    with pytest.raises(UserError) as refused:
        executor_for(name)
    assert refused.value.field == "--executor" and "allowed: local, ray" in str(refused.value)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30).filter(lambda a: not (a.rpartition(":")[0] and a.rpartition(":")[2].isdigit())))
def test_an_address_not_host_and_port_is_refused(address: str) -> None:
    with pytest.raises(UserError) as refused:
        executor_for("ray", address)
    assert refused.value.field == "--address" and "HOST:PORT" in str(refused.value)


@pytest.mark.slow  # three commands
def test_cli_refuses_bad_executor_and_address_in_one_line(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study())
    db = tmp_path / "log.duckdb"
    cases = {
        ("--executor", "spark"): "--executor: 'spark' is not an executor; allowed: local, ray",
        ("--executor", "ray", "--address", "127.0.0.1:9"): "--address: no Ray cluster answers at 127.0.0.1:9",
        ("--address", "127.0.0.1:9"): "--address: '127.0.0.1:9': an address is for a Ray cluster; pass --executor ray with it",
    }
    for args, message in cases.items():
        started = time.monotonic()
        result = run_cli("run", str(study), "--db", str(db), *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), result.stderr
        assert "Traceback" not in result.stderr and time.monotonic() - started < 60
    assert not db.exists() and not segments_dir(db).exists()  # nothing written


@pytest.mark.slow  # Ray retries a refused connection for about 20 s
def test_a_cluster_that_refuses_the_run_is_one_line(tmp_path: Path, cluster: Cluster) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study())
    without_token = {**RAY_ENV, "RAY_AUTH_MODE": "disabled"}  # the cluster wants its token
    result = run_cli("run", str(study), "--db", str(tmp_path / "log.duckdb"), "--executor", "ray", "--address", cluster.address, env=without_token, timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Failed" in line]
    assert len(errors) == 1 and errors[0].startswith(f"error: --address: could not join the Ray cluster at {cluster.address}"), result.stderr


def test_cli_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study())
    missing = tmp_path / "no_ray" / "ray"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError('No module named ray')\n")  # as if Ray were not installed
    result = run_cli("run", str(study), "--db", str(tmp_path / "log.duckdb"), "--executor", "ray", env={"PYTHONPATH": os.pathsep.join([str(missing.parent), str(ROOT)])})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: --executor: the ray executor needs Ray, which is not installed: pip install 'prompt-affect-workbench[ray]' (or pip install ray)"
