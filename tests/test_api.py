"""The library API (workbench.api) gives what the CLI prints, and a run driven from Python reports
progress, stops on a StopHandle from another task and resumes like an interrupted run."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from workbench import api
from workbench.run.control import Progress, StopHandle

from conftest import run_cli, run_json, sim_study, write_study


def same(library: Any, cli: Any) -> bool:
    """Equal as JSON text (a NaN equals itself there, as it does not in a dict comparison)."""
    return json.dumps(library, sort_keys=True) == json.dumps(cli, sort_keys=True)


def count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


# -- the same JSON as the CLI, on the simulated model ------------------------------------------
@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A 3-condition simulated study with errors, run once through the CLI."""
    tmp = tmp_path_factory.mktemp("api")
    study = sim_study()
    study["models"][0].update(max_retries=0, simulate={"accuracy": {"control": 0.5, "EP02": 0.8}, "error_rate": 0.1})
    path = write_study(tmp / "s.yaml", study)
    db = tmp / "log.duckdb"
    return path, db, run_json("run", str(path), "--db", str(db))


def test_run_and_summarise_give_the_json_of_run(sim_run, tmp_path: Path) -> None:
    path, db, printed = sim_run
    assert printed["errors"] > 0
    assert same(api.summarise(db, printed["run_id"]).to_json(), printed)
    assert same(api.summarise(db).to_json(), printed)  # the latest run by default
    other = tmp_path / "other.duckdb"
    result = api.run(path, other)
    assert same(result.to_json(), {**printed, "db": str(other)})  # the same trials, seeds and answers in another log
    assert not result.interrupted and result.trials_done == result.trials_planned == 60


@pytest.mark.slow  # a CLI subprocess per command
def test_compare_trials_runs_and_plan_give_the_json_of_the_cli(sim_run) -> None:
    path, db, printed = sim_run
    run_id = printed["run_id"]
    assert same(api.compare(db, run_id).to_json(), run_json("compare", "--db", str(db), "--run", run_id))
    chosen = {"adjust": "bh", "conditions": "EP02", "errors": "exclude", "level": 0.9}
    cli = run_json("compare", "--db", str(db), "--adjust", "bh", "--conditions", "EP02", "--errors", "exclude", "--level", "0.9")
    assert same(api.compare(db, **chosen).to_json(), cli)
    assert same(api.list_trials(db, run_id, condition="EP02", changed=True).to_json(), run_json("trials", run_id, "--db", str(db), "--condition", "EP02", "--changed"))
    assert same(api.list_trials(db, status="error", limit=3).to_json(), run_json("trials", "--db", str(db), "--status", "error", "--limit", "3"))
    assert same(api.list_runs(db).to_json(), run_json("runs", "list", "--db", str(db)))
    assert same(api.plan(path, db).to_json(), run_json("plan", str(path), "--db", str(db)))
    assert same(api.plan(api.load_study(path), db, effect=0.2).to_json(), run_json("plan", str(path), "--db", str(db), "--effect", "0.2"))


def test_bad_options_raise_the_cli_message(sim_run) -> None:
    _, db, _ = sim_run
    with pytest.raises(api.UserError) as raised:
        api.compare(db, adjust="nope")
    failed = run_cli("compare", "--db", str(db), "--adjust", "nope")
    assert failed.returncode == 2 and failed.stderr.strip() == f"error: {raised.value}"


@pytest.mark.slow  # a CLI subprocess per command
def test_export_writes_what_the_cli_writes_and_its_manifest(sim_run, tmp_path: Path) -> None:
    _, db, printed = sim_run
    manifest = run_json("export", "--db", str(db), "--out", str(tmp_path / "cli" / "table.md"), "--trials", str(tmp_path / "cli" / "trials.csv"))
    result = api.export(db, out=str(tmp_path / "lib" / "table.md"), trials=str(tmp_path / "lib" / "trials.csv"))
    assert manifest == {"run_id": printed["run_id"], "written": [str(tmp_path / "cli" / n) for n in ("table.md", "trials.csv", "references.bib")]}
    assert result.to_json() == {"run_id": printed["run_id"], "written": [str(tmp_path / "lib" / n) for n in ("table.md", "trials.csv", "references.bib")]}
    for name in ("table.md", "trials.csv", "references.bib"):
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    plain = run_cli("export", "--db", str(db), "--format", "markdown")  # to stdout, as before: the library returns the text
    assert plain.returncode == 0 and plain.stdout == api.export(db, format="markdown", bib=False).stdout
    refused = run_cli("export", "--db", str(db), "--format", "markdown", "--json")
    assert refused.returncode == 2 and "--json" in refused.stderr and refused.stdout == ""


# -- progress, stop and resume -----------------------------------------------------------------
def slow_study(tmp_path: Path, **simulate: Any) -> Path:
    study = sim_study(concurrency=2)
    study["models"][0].update(max_retries=0, simulate={"accuracy": {"control": 0.5, "EP02": 0.8}, "latency_ms": 40.0, **simulate})
    return write_study(tmp_path / "slow.yaml", study)


def test_progress_reports_done_errors_and_pending(tmp_path: Path) -> None:
    model = {"id": "sim/planted", "max_retries": 0, "simulate": {"default_accuracy": 0.7, "error_rate": 0.3}}
    path = write_study(tmp_path / "s.yaml", {**sim_study(), "models": [model]})
    db = tmp_path / "log.duckdb"
    reports: list[Progress] = []
    result = api.run(path, db, progress=reports.append)
    assert reports[0] == Progress(total=60, done=0, errors=0, no_answer=0, run_now=0, run_id=result.run_id)  # registered, nothing run yet
    assert [r.done for r in reports] == list(range(61))  # one report a trial
    assert all(r.pending == r.total - r.done and r.errors <= r.done for r in reports)
    assert [r.errors for r in reports] == sorted(r.errors for r in reports)
    last = reports[-1]
    errors = count(db, "SELECT count(*) FROM trials WHERE status = 'error'")
    assert last.pending == 0 and last.errors == errors == result.errors > 0
    assert last.no_answer == count(db, "SELECT count(*) FROM trials WHERE status = 'no_answer'") == result.no_answer


def test_a_run_stopped_from_another_task_resumes_like_an_interrupted_run(tmp_path: Path) -> None:
    path, db = slow_study(tmp_path, error_rate=0.1), tmp_path / "log.duckdb"
    reports: list[Progress] = []
    stop = StopHandle()

    async def drive() -> api.RunResult:
        running = asyncio.create_task(api.run_async(path, db, progress=reports.append, stop=stop, max_attempts=1))  # no trial runs twice
        while not reports or reports[-1].done < 12:
            await asyncio.sleep(0.005)
        stop.stop()  # another task of the same loop triggers it
        return await running

    stopped = asyncio.run(drive())
    assert stopped.interrupted and 12 <= stopped.trials_done < 60
    logged = count(db, "SELECT count(*) FROM trials")
    assert logged == stopped.trials_done == reports[-1].done
    assert api.summarise(db).interrupted  # the log says so too

    resumed_reports: list[Progress] = []
    resumed = api.run(path, db, progress=resumed_reports.append, max_attempts=1)
    assert resumed_reports[0].done == logged and resumed_reports[-1].run_now == 60 - logged  # nothing run twice
    assert not resumed.interrupted and resumed.trials_done == 60
    assert count(db, "SELECT count(*) FROM trials") == count(db, "SELECT count(DISTINCT trial_id) FROM trials") == 60
    whole = api.run(path, tmp_path / "whole.duckdb", max_attempts=1)  # the same study run in one go
    session = ("db", "model_calls", "cache_hits", "interrupted")
    assert same({k: v for k, v in resumed.to_json().items() if k not in session}, {k: v for k, v in whole.to_json().items() if k not in session})


def test_a_run_in_a_thread_stops_from_the_main_thread(tmp_path: Path) -> None:
    path, db = slow_study(tmp_path), tmp_path / "log.duckdb"
    stop, started = StopHandle(), threading.Event()
    results: list[api.RunResult] = []

    def progress(report: Progress) -> None:
        if report.done >= 5:
            started.set()

    worker = threading.Thread(target=lambda: results.append(api.run(path, db, progress=progress, stop=stop)))
    worker.start()
    assert started.wait(60)
    stop.stop()
    worker.join(60)
    assert results and results[0].interrupted and results[0].trials_done == count(db, "SELECT count(*) FROM trials") < 60
    assert api.run(path, db).trials_done == count(db, "SELECT count(DISTINCT trial_id) FROM trials") == 60


# -- on the embedded model ---------------------------------------------------------------------
@pytest.mark.local_model
def test_the_library_gives_the_cli_json_on_the_embedded_model(local_server, tmp_path: Path) -> None:
    study = {
        "name": "local-api",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 16}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "ii/sum", "n": 3}],
        "seed": 2,
        "concurrency": 2,
    }
    path, db = write_study(tmp_path / "s.yaml", study), tmp_path / "log.duckdb"
    printed = run_json("run", str(path), "--db", str(db))
    run_id = printed["run_id"]
    assert printed["trials_done"] == 6 and printed["model_calls"] == 6
    assert same(api.summarise(db, run_id).to_json(), printed)
    assert same(api.compare(db, run_id).to_json(), run_json("compare", "--db", str(db), "--run", run_id))
    assert same(api.list_trials(db, run_id).to_json(), run_json("trials", run_id, "--db", str(db)))
    assert same(api.plan(path, db).to_json(), run_json("plan", str(path), "--db", str(db)))
    reports: list[Progress] = []
    other = tmp_path / "other.duckdb"
    result = api.run(path, other, progress=reports.append)  # from Python, against the real server
    assert result.trials_done == reports[-1].done == 6 and reports[-1].pending == 0
    assert same(result.to_json(), api.summarise(other, result.run_id).to_json())


def test_rounds_and_trait_tables_do_not_depend_on_the_order_trials_landed(tmp_path: Path) -> None:
    """Rows land in the log in whatever order concurrent trials finish; the tables a run prints
    (HEART's per-round table, the inventory's per-trait table) follow the study's conditions and
    the items, so the same trials in another physical order give the same JSON."""
    study = sim_study(
        conditions=[
            {"name": "control"},
            {"name": "loop_b", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle", "feedback": "neutral"}},
            {"name": "loop_a", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle", "schedule": "alternating"}},
        ],
        tasks=[{"task": "ii/sum", "n": 6}, {"task": "inventory/pers16", "n": 16}],
    )
    study["models"][0]["simulate"] = {"default_accuracy": 0.6}
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    first = api.run(path, db).to_json()
    con = duckdb.connect(str(db))
    try:  # the same rows, physically in the reverse of the order they landed
        con.execute("CREATE TEMP TABLE landed AS SELECT * FROM trials ORDER BY trial_id DESC")
        con.execute("DELETE FROM trials")
        con.execute("INSERT INTO trials SELECT * FROM landed ORDER BY trial_id DESC")
    finally:
        con.close()
    again = api.summarise(db, first["run_id"]).to_json()
    assert [(r["condition"], r["round"]) for r in first["rounds"]][:3] == [("loop_b", 0), ("loop_b", 1), ("loop_b", 2)]
    assert first["traits"] and same(again["traits"], first["traits"]) and same(again["rounds"], first["rounds"])
