"""The Run page: start a study in a background process (`workbench run` itself), watch its
progress as the log is written, cancel it, resume it; the log's runs with their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from workbench import api
from workbench.ui.common import log_path, page_errors

STUDY_KEY = "run_study"  # this page's study file input; prefilled from the Design page's "study_path"
REFRESH_S = 1.5  # how often the progress redraws while a process runs
CANCEL_WAIT_S = 30.0  # how long Cancel waits for the run to stop before saying where it is


def _act(action: str, db: Path, study: str) -> bool:
    """Do what a button asked; a refusal or a bad study shows as the CLI's one line (False), and the page goes on."""
    try:
        if action == "start":
            if not study.strip():
                raise api.UserError("name a study file to run", field="Study file")
            api.start_run(study.strip(), db)
        elif action == "cancel":
            with st.spinner("Stopping the run…"):
                stopped = api.cancel_run(db, wait_s=CANCEL_WAIT_S)
            if stopped.running:
                st.warning(f"The run has not stopped after {CANCEL_WAIT_S:.0f} s; it stops after its trials in flight.")
                return False
        elif action == "resume":
            api.resume_run(db)
    except api.UserError as exc:
        st.error(str(exc), icon=":material/error:")
        return False
    return True


def _time_left(seconds: float | None) -> str:
    if seconds is None:
        return "time left: unknown (no trial has landed in this session yet)"
    minutes, secs = divmod(round(seconds), 60)
    return f"time left: about {minutes} min {secs} s" if minutes else f"time left: about {secs} s"


def _process_line(launch: Any) -> str:
    said = {"running": "running", "finished": "finished", "interrupted": "interrupted", "lost": "ended without an exit code"}
    line = f"Process for run {launch.launch.run_id}: {said.get(launch.state, 'failed')}"
    if launch.exit_code not in (None, 0):
        line += f" (exit code {launch.exit_code})"
    return line


def _show_launch(db: Path) -> Any:
    """The latest launch's process and its run's progress; returns the launch (None: none)."""
    launch = api.background_run(db)
    if launch is None:
        st.text("No run was started from this page on this log yet.")
        return None
    st.text(_process_line(launch))
    if launch.state == "failed" and launch.message:
        st.code(launch.message, language=None)  # the CLI's one-line error
    progress = api.run_progress(db, launch.launch.run_id)
    if progress is None:
        st.text("Starting: the run is not in the log yet.")
    else:
        st.text(f"{progress.done} of {progress.planned} trials")
        st.progress(progress.fraction)
        st.text(f"errors: {progress.errors}, no answer: {progress.no_answer}")
        if launch.running:
            st.text("finishing: folding the log together" if progress.done >= progress.planned else _time_left(progress.time_left_s))
        if progress.conditions:
            st.dataframe(
                [{"model": c.model, "condition": c.condition, "trials": c.done, "errors": c.errors, "no answer": c.no_answer, "accuracy": c.accuracy}
                 for c in progress.conditions],
                hide_index=True,
                column_config={"accuracy": st.column_config.NumberColumn(format="%.3f")},
            )
            st.caption(f"Running accuracy: errors count as {_policy(progress.errors_policy)}, no answers as {_policy(progress.no_answer_policy)}.")
    return launch


def _show_progress(db: Path, was_running: bool) -> None:
    """What a page shows of the runs: redrawn every REFRESH_S while a process runs."""
    with page_errors():  # a fragment shows its own errors: the page's handler does not see them
        launch = _show_launch(db)
        _show_runs(db)
    if was_running and not (launch is not None and launch.running):
        st.rerun(scope="app")  # the buttons change when the process ends


def _policy(policy: str) -> str:
    return {"wrong": "wrong (0)", "exclude": "excluded"}.get(policy, "?")


def _show_runs(db: Path) -> None:
    st.subheader("Runs in this log")
    if not api.has_log(db):
        st.text("No log yet at this path: start a run to create it.")
        return
    runs = api.run_statuses(db).runs
    if not runs:
        st.text("The log holds no runs yet.")
        return
    st.dataframe(
        [{"run": r["run_id"], "name": r["name"], "created": r["created_at"], "planned": r["trials_planned"], "done": r["trials_done"],
          "errors": r["errors"], "no answer": r["no_answer"], "status": r["status"]} for r in reversed(runs)],
        hide_index=True,
    )


st.title("Run")
with page_errors():
    db = log_path()
    if STUDY_KEY not in st.session_state:
        st.session_state[STUDY_KEY] = st.session_state.get("study_path", "")
    study = st.text_input("Study file", key=STUDY_KEY, help="The study (YAML) to run, as `workbench run STUDY` takes it.")
    latest = api.background_run(db)
    running = latest is not None and latest.running
    start, cancel, resume = st.columns(3)
    pressed = {
        "start": start.button("Start run", disabled=running, type="primary"),
        "cancel": cancel.button("Cancel", disabled=not running),
        "resume": resume.button("Resume", disabled=running or latest is None or latest.state == "finished"),
    }
    for action, clicked in pressed.items():
        if clicked and _act(action, db, study):
            st.rerun()  # the buttons show the new state
    st.fragment(run_every=REFRESH_S if running else None)(_show_progress)(db, running)
