"""Runs of the embedded model at once share its server (issue 13): two real `workbench run`
processes overlap, the one that started the server ends first, the other still completes every
trial; the server stops when the last run ends, and a SIGKILLed holder does not keep it forever.

These tests get their own server: their cache links the machine's prepared weights and server
build but keeps its own server state and locks, so the session's server (tests/conftest.py),
which the session holds throughout, neither serves nor outlives them."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import write_study
from workbench.core.paths import cache_dir
from workbench.providers.local_models import LOCAL_MODELS, prepare_runtime, prepare_weights, runtime_dir

pytestmark = [pytest.mark.slow, pytest.mark.local_model]

MODEL = LOCAL_MODELS["local/default"]


def _study(name: str, n: int) -> dict[str, Any]:
    """The smallest study: one condition, `n` sums, a few tokens per answer, one call at a time."""
    return {
        "name": name,
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 8}}],
        "conditions": [{"name": "control"}],
        "tasks": [{"task": "ii/sum", "n": n}],
        "repeats": 1,
        "seed": 5,
        "concurrency": 1,
    }


def _wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    pytest.fail(f"waited {timeout_s:.0f} s for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"


class Cache:
    """A cache of its own for these tests' server, on the machine's prepared model."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "servers" / f"{MODEL.alias}.json"
        self.server_log = root / "servers" / f"{MODEL.alias}.log"

    def server_pid(self) -> int | None:
        try:
            return int(json.loads(self.state.read_text())["pid"])
        except (OSError, ValueError):
            return None

    def server_locked(self) -> bool:
        """Whether a run holds the server's lock (it does while it starts the server)."""
        try:
            handle = open(self.root / "locks" / f"server-{MODEL.alias}.lock")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing the file releases it at once

    def completions(self) -> int:
        """Chat completions the server has answered (its access log), whoever asked."""
        try:
            return self.server_log.read_text(errors="replace").count("POST /v1/chat/completions")
        except FileNotFoundError:
            return 0

    def run(self, study: Path, db: Path, out: Path) -> subprocess.Popen[str]:
        """`workbench run STUDY --db DB --json` started in the background, as a user would."""
        with open(out.with_suffix(".out"), "w") as stdout, open(out.with_suffix(".err"), "w") as stderr:
            return subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", "run", str(study), "--db", str(db), "--json"],
                stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
                env={**os.environ, "WORKBENCH_CACHE": str(self.root)},
            )


@pytest.fixture
def own_cache(tmp_path: Path) -> Iterator[Cache]:
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    prepare_weights(MODEL, log)
    prepare_runtime(log)
    root = tmp_path / "cache"
    (root / "llama-server").mkdir(parents=True)
    (root / "models").symlink_to(cache_dir() / "models")
    (root / "llama-server" / runtime_dir().name).symlink_to(runtime_dir())
    cache = Cache(root)
    yield cache
    pid = cache.server_pid()  # a failing test leaves no server behind
    if pid is not None and _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _finished(process: subprocess.Popen[str], out: Path, timeout_s: float = 120.0) -> dict[str, Any]:
    process.wait(timeout=timeout_s)
    stderr = out.with_suffix(".err").read_text()
    assert process.returncode == 0, stderr
    return json.loads(out.with_suffix(".out").read_text())


def test_two_runs_share_the_server_and_the_last_to_end_stops_it(tmp_path: Path, own_cache: Cache) -> None:
    """The order is made certain with SIGSTOP and SIGCONT: the first run starts the server and
    answers a trial; the second joins that server and answers one; the first then ends while the
    second waits frozen, with trials left; the second then completes."""
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    first = own_cache.run(write_study(tmp_path / "first.yaml", _study("first", 2)), tmp_path / "first.duckdb", first_out)
    _wait_for(own_cache.server_locked, "the first run to start the server")
    second = own_cache.run(write_study(tmp_path / "second.yaml", _study("second", 4)), tmp_path / "second.duckdb", second_out)
    try:
        _wait_for(lambda: own_cache.completions() >= 1, "the first run's first answer")
        os.kill(first.pid, signal.SIGSTOP)
        assert first.poll() is None, "the first run ended before the second could join its server"
        server_pid = own_cache.server_pid()
        assert server_pid is not None
        answered = own_cache.completions()
        # +2: an answer the frozen run was waiting for may still land, then the second run's own
        _wait_for(lambda: own_cache.completions() >= answered + 2, "the second run's first answer")
        os.kill(second.pid, signal.SIGSTOP)
        assert own_cache.server_pid() == server_pid  # the second run uses the first run's server
        os.kill(first.pid, signal.SIGCONT)
        first_result = _finished(first, first_out)
    finally:
        for run in (first, second):
            run.send_signal(signal.SIGCONT)  # a no-op on a run that has ended
    assert first_result["trials_done"] == 2 and first_result["errors"] == 0
    served_on = _alive(server_pid)  # the second run still holds it

    second_result = _finished(second, second_out)
    # All the second run's trials answered, though the run that started the server ended before it.
    assert (second_result["trials_planned"], second_result["trials_done"], second_result["errors"]) == (4, 4, 0)
    assert second_result["model_calls"] == 4
    assert served_on
    # Both ended: the server with them.
    _wait_for(lambda: not _alive(server_pid) and own_cache.server_pid() is None, "the server to stop after both runs ended", timeout_s=15)


def test_a_killed_holder_does_not_keep_the_server_running(own_cache: Cache) -> None:
    # A process that holds the server as a run does (through the library, without a run's
    # imports), killed with SIGKILL: it releases nothing itself.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from workbench.providers.local_models import ensure_server; s = ensure_server('local/default'); print(s.pid, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env={**os.environ, "WORKBENCH_CACHE": str(own_cache.root)},
    )
    try:
        server_pid = int(holder.stdout.readline())  # type: ignore[union-attr]
        assert _alive(server_pid) and own_cache.server_pid() == server_pid
    finally:
        holder.kill()
        holder.wait(timeout=10)
    _wait_for(lambda: not _alive(server_pid) and own_cache.server_pid() is None, "the server of a SIGKILLed holder to stop", timeout_s=20)
