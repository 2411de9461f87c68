"""The Run page and the library behind it: a study run by the CLI in a real background process,
its progress read from the log while it is written, cancel (exit 130, resumable) and resume."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, sim_study, write_study
from workbench import api
from workbench.store import connect_reader

PAGE = str(REPO / "workbench" / "ui" / "pages" / "run.py")
T = TypeVar("T")


def slow_study(tmp_path: Path, n: int = 10, latency_ms: int = 200) -> Path:
    """30 trials, one at a time, each waiting `latency_ms` in the simulated model: about 6 s."""
    study = sim_study(tasks=[{"task": "ii/sum", "n": n}], concurrency=1)
    study["models"][0]["simulate"] = {"accuracy": {"control": 0.5, "EP02": 0.8}, "latency_ms": latency_ms}
    return write_study(tmp_path / "study.yaml", study)


def wait_for(check: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """A log path whose background processes are killed at the end, whatever the test did."""
    log = tmp_path / "log.duckdb"
    yield log
    for launch in api.background_runs(log):
        if launch.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launch.launch.pid, signal.SIGKILL)


def done_of(db: Path, run_id: str) -> int:
    progress = api.run_progress(db, run_id)
    return progress.done if progress else 0


def landed_once(db: Path, run_id: str) -> tuple[int, int, int]:
    """(attempts logged, distinct trials, planned): every trial exactly once is (n, n, n)."""
    con = connect_reader(db)
    try:
        return con.execute(
            "SELECT count(*), count(DISTINCT trial_id), (SELECT trials_planned FROM runs WHERE run_id = $1) FROM trial_attempts WHERE run_id = $1",
            [run_id],
        ).fetchone()
    finally:
        con.close()


@pytest.mark.slow  # two start-ups of the CLI and a run of seconds
def test_launch_progress_cancel_resume(tmp_path: Path, db: Path) -> None:
    study = slow_study(tmp_path)
    launch = api.start_run(study, db)
    run_id = launch.launch.run_id
    assert launch.running, (launch.state, launch.exit_code)
    first = wait_for(lambda: done_of(db, run_id), "a first trial to land")
    wait_for(lambda: done_of(db, run_id) > first, "more trials to land")
    progress = api.run_progress(db, run_id)
    assert progress.planned == 30 and 0 < progress.done < 30 and progress.last_event == "started"
    assert {c.condition for c in progress.conditions} <= {"control", "EP02", "NP01"}
    assert progress.time_left_s is None or progress.time_left_s > 0
    assert [r["status"] for r in api.run_statuses(db).runs] == ["running"]

    stopped = api.cancel_run(db, wait_s=30)
    assert (stopped.state, stopped.exit_code) == ("interrupted", 130)
    assert "resume" in stopped.message  # the CLI's own line
    assert [r["status"] for r in api.run_statuses(db).runs] == ["interrupted"]
    left = api.run_progress(db, run_id)
    assert left.done < 30 and left.time_left_s is None  # nobody is writing: no time to tell

    resumed = api.resume_run(db)
    assert resumed.launch.run_id == run_id and resumed.running
    ended = wait_for(lambda: (lambda b: None if b.running else b)(api.background_run(db)), "the resumed run to end")
    assert (ended.state, ended.exit_code) == ("finished", 0)
    assert landed_once(db, run_id) == (30, 30, 30)
    final = api.run_progress(db, run_id)
    assert final.done == 30 and final.time_left_s == 0.0 and final.last_event == "finished"
    # the running accuracy ends where the run's own table does
    table = {r.condition: r.accuracy for r in api.summarise(db, run_id).rows}
    assert {c.condition: c.accuracy for c in final.conditions} == pytest.approx(table)
    assert [r["status"] for r in api.run_statuses(db).runs] == ["finished"]


@pytest.mark.slow  # two start-ups of the CLI and a run of seconds
def test_a_second_launch_of_a_live_run_is_refused(tmp_path: Path, db: Path) -> None:
    study = slow_study(tmp_path)
    first = api.start_run(study, db)
    with pytest.raises(api.UserError, match=f"already running in another process \\(pid {first.launch.pid}\\)"):
        api.start_run(study, db)  # while it is still starting: its launch record says so
    wait_for(lambda: done_of(db, first.launch.run_id), "a first trial to land")
    with pytest.raises(api.UserError, match="already running in another process"):
        api.start_run(study, db)
    assert len(api.background_runs(db)) == 1
    assert api.cancel_run(db).state == "interrupted"


def test_a_run_locked_by_a_terminal_run_is_refused(tmp_path: Path, db: Path) -> None:
    """A `workbench run` started elsewhere (no launch record here) holds the run's lock."""
    import subprocess
    import sys

    study = slow_study(tmp_path)
    other = subprocess.Popen([sys.executable, "-m", "workbench.cli", "run", str(study), "--db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: api.has_log(db) and api.list_runs(db).runs, "the terminal run to register")
        with pytest.raises(api.UserError, match=f"pid {other.pid}"):
            api.start_run(study, db)
        assert api.background_runs(db) == []
        assert [r["status"] for r in api.run_statuses(db).runs] == ["running"]
    finally:
        other.send_signal(signal.SIGINT)
        assert other.wait(timeout=60) == 130


def test_a_bad_study_starts_nothing(tmp_path: Path, db: Path) -> None:
    bad = write_study(tmp_path / "bad.yaml", sim_study(repeats=0))
    with pytest.raises(api.UserError, match="bad.yaml"):
        api.start_run(bad, db)
    assert not (tmp_path / "log.duckdb.ui").exists() and api.background_run(db) is None


def test_a_failed_run_says_the_clis_line(tmp_path: Path, db: Path) -> None:
    """The process's exit code and its last stderr line: here the study file vanished after the check."""
    study = slow_study(tmp_path)
    launch = api.start_run(study, db)
    study.unlink()  # the CLI reads it again: the same one-line error as in a terminal, exit 2
    ended = wait_for(lambda: (lambda b: None if b.running else b)(api.background_run(db)), "the process to end")
    assert (ended.state, ended.exit_code) == ("failed", 2)
    assert ended.message.startswith("error:") and "study.yaml" in ended.message
    assert ended.launch == launch.launch


# -- the page -------------------------------------------------------------------------------------
def page(db: Path, **state: Any) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["db"] = str(db)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_page_empty_states(db: Path) -> None:
    at = page(db)
    assert not at.exception and not at.error
    assert "No log yet at this path: start a run to create it." in texts(at)
    assert "No run was started from this page on this log yet." in texts(at)
    assert button(at, "Cancel").disabled and button(at, "Resume").disabled and not button(at, "Start run").disabled


def test_page_bad_study_file(tmp_path: Path, db: Path) -> None:
    bad = write_study(tmp_path / "bad.yaml", sim_study(repeats=0))
    at = page(db, study_path=str(bad))
    assert at.text_input(key="run_study").value == str(bad)  # the Design page's study
    button(at, "Start run").click().run()
    assert len(at.error) == 1 and "bad.yaml" in at.error[0].value and "repeats" in at.error[0].value
    assert not at.exception and api.background_run(db) is None
    at.text_input(key="run_study").set_value("").run()
    button(at, "Start run").click().run()
    assert "name a study file" in at.error[0].value


@pytest.mark.slow  # two start-ups of the CLI and a run of seconds
def test_page_start_watch_cancel_resume(tmp_path: Path, db: Path) -> None:
    study = slow_study(tmp_path)
    at = page(db)
    at.text_input(key="run_study").set_value(str(study)).run()
    button(at, "Start run").click().run()
    assert not at.error and not at.exception
    assert button(at, "Start run").disabled and not button(at, "Cancel").disabled

    def trials_line() -> str | None:
        at.run()
        return next((t for t in texts(at) if t.endswith(" of 30 trials") and not t.startswith("0 ")), None)

    wait_for(trials_line, "progress on the page")
    assert 0 < at.get("progress")[0].proto.value < 100
    assert any(t.startswith("time left: ") for t in texts(at))
    conditions = at.dataframe[0].value
    assert set(conditions["condition"]) <= {"control", "EP02", "NP01"} and "accuracy" in conditions
    assert list(at.dataframe[1].value["status"]) == ["running"]

    button(at, "Cancel").click().run()
    assert "interrupted" in " ".join(texts(at)) and list(at.dataframe[-1].value["status"]) == ["interrupted"]
    assert not button(at, "Resume").disabled

    button(at, "Resume").click().run()
    wait_for(lambda: at.run() and "30 of 30 trials" in texts(at) and not api.background_run(db).running, "the resumed run to finish")
    at.run()
    assert any(t.endswith(": finished") for t in texts(at))
    assert list(at.dataframe[-1].value["status"]) == ["finished"]
    assert button(at, "Resume").disabled and not button(at, "Start run").disabled


def test_page_a_failed_process(tmp_path: Path, db: Path) -> None:
    """A process that failed shows its exit code and the CLI's one-line error, as text."""
    study = slow_study(tmp_path)
    api.start_run(study, db)
    study.unlink()
    wait_for(lambda: not api.background_run(db).running, "the process to end")
    at = page(db)
    assert any(t.endswith("failed (exit code 2)") for t in texts(at))
    assert at.code[0].value.startswith("error:") and "study.yaml" in at.code[0].value
    assert not button(at, "Resume").disabled and not at.exception
