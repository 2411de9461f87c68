"""A run in a background process: `workbench run STUDY --db DB` itself (the CLI's code path),
started detached so that it outlives the page that started it, and found again by any page.

Each launch keeps its files beside the log, in `<log>.ui/`, named by a digest of the run id (no
name a user wrote reaches the file system): `.json` the launch record (run, study, pid, start
time), `.out` and `.err` the command's output, `.exit` its exit code. A small supervisor
(`python -m workbench.run.background RECORD`) runs the command and writes the exit code when it
ends, so the state survives the page, the browser tab and the UI server. Signals go to the
process group (the supervisor ignores them; the command gets them as from a terminal's Ctrl-C).

Light imports at the top: the supervisor starts with this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.processes import process_start

INTERRUPTED = 130  # the CLI's exit code after an interrupt (workbench.cli.interrupts): the run resumes later
CLI = ("-m", "workbench.cli")
SUPERVISOR = "workbench.run.background"  # this module, run as the supervisor

# The state of a launch, by the command's exit code (any other code: failed)
EXIT_STATES = {0: "finished", INTERRUPTED: "interrupted"}
RUNNING, FAILED, LOST = "running", "failed", "lost"  # lost: ended without an exit code (killed with its supervisor)


@dataclass(frozen=True)
class Launch:
    """What a launch records when it starts."""

    run_id: str
    study: str
    db: str
    pid: int  # the supervisor's, which leads the process group
    started_at: float  # seconds since the epoch
    pid_started: int = 0  # the supervisor's start in clock ticks since boot: a pid used again since is another process

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LaunchState:
    """A launch and how it stands now: running, finished (exit 0), interrupted (130, resumes),
    failed (another exit code; `message` is the last line of its stderr, the CLI's one-line
    error) or lost (no exit code: killed with its supervisor)."""

    launch: Launch
    state: str
    exit_code: int | None
    message: str
    output: str  # the file holding the command's stdout

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def to_json(self) -> dict[str, Any]:
        return {**self.launch.to_json(), "state": self.state, "exit_code": self.exit_code, "message": self.message, "output": self.output}


def launch_dir(db: Path) -> Path:
    return db.with_name(db.name + ".ui")


def _base(db: Path, run_id: str) -> Path:
    return launch_dir(db) / hashlib.sha256(run_id.encode()).hexdigest()[:16]


def _write_atomic(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


def start(study: Path, db: Path, run_id: str) -> LaunchState:
    """Start `workbench run study --db db` (whose run is `run_id`) under a detached supervisor.
    The caller has checked that no process runs it."""
    base = _base(db, run_id)
    base.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".exit", ".out", ".err", ".log"):  # a relaunch's files start empty
        base.with_suffix(suffix).unlink(missing_ok=True)
    record = base.with_suffix(".json")
    draft = Launch(run_id, str(study), str(db), 0, time.time())
    _write_atomic(record, json.dumps(draft.to_json()))
    with open(base.with_suffix(".log"), "w") as own:  # the supervisor's own output: empty unless it fails
        process = subprocess.Popen(
            [sys.executable, "-m", SUPERVISOR, str(record)], start_new_session=True, stdin=subprocess.DEVNULL, stdout=own, stderr=own,
        )
    launch = Launch(run_id, str(study), str(db), process.pid, draft.started_at, process_start(process.pid) or 0)
    _write_atomic(record, json.dumps(launch.to_json()))
    return state_of(launch)


def _command(launch: Launch) -> list[str]:
    return [sys.executable, *CLI, "run", launch.study, "--db", launch.db]


def supervise(record: Path) -> int:
    """Run the launch's command, write its exit code beside the record, return it."""
    base = record.with_suffix("")
    launch = Launch(**json.loads(record.read_text()))
    # A handler, not SIG_IGN: the command (same process group) gets the signal, and exec resets
    # handlers but would keep an ignored signal ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    with open(base.with_suffix(".out"), "w") as out, open(base.with_suffix(".err"), "w") as err:
        process = subprocess.Popen(_command(launch), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        code = process.wait()
    code = 128 - code if code < 0 else code  # ended by a signal: as a shell reports it (130 for SIGINT)
    _write_atomic(base.with_suffix(".exit"), str(code))
    return code


def _alive(launch: Launch) -> bool:
    return process_start(launch.pid) == launch.pid_started


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def state_of(launch: Launch) -> LaunchState:
    base = _base(Path(launch.db), launch.run_id)
    try:
        code: int | None = int(base.with_suffix(".exit").read_text())
    except (OSError, ValueError):
        code = None
    if code is None:
        state = RUNNING if _alive(launch) else LOST
    else:
        state = EXIT_STATES.get(code, FAILED)
    message = _last_line(base.with_suffix(".err")) if state in (FAILED, "interrupted") else ""
    return LaunchState(launch, state, code, message, str(base.with_suffix(".out")))


def launches(db: Path) -> list[LaunchState]:
    """Every launch recorded beside the log `db`, the latest first."""
    found = []
    for record in launch_dir(db).glob("*.json"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            found.append(Launch(**json.loads(record.read_text())))
    return [state_of(launch) for launch in sorted(found, key=lambda launch: launch.started_at, reverse=True)]


def launch_of(db: Path, run_id: str) -> LaunchState | None:
    record = _base(db, run_id).with_suffix(".json")
    try:
        return state_of(Launch(**json.loads(record.read_text())))
    except (OSError, ValueError, TypeError):
        return None


def interrupt(launch: LaunchState, wait_s: float, again_s: float = 5.0) -> LaunchState:
    """Send SIGINT to the launch's process group (a Ctrl-C: the run stops and resumes later), and
    wait up to `wait_s` for it to end. Sent again every `again_s` while it runs, as a user presses
    Ctrl-C again: one that lands while Python is still importing can be lost."""
    deadline = time.monotonic() + wait_s
    now = launch
    while now.running and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launch.launch.pid, signal.SIGINT)
        resend = min(time.monotonic() + again_s, deadline)
        while now.running and time.monotonic() < resend:
            time.sleep(0.1)
            now = state_of(launch.launch)
    return now


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
