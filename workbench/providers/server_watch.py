"""Who holds a local model server, and the watcher that stops it once nobody does.

Every run that uses a server holds it: a file in `servers/<alias>.holders/` that the run keeps
flock'ed while it lives. The kernel drops a flock when its process ends, however it ends, so a
holder file whose lock is free belongs to a dead run (SIGKILL included) and counts for nothing.
The last live holder to release the server stops it; the watcher, a detached process started
with the server, stops it once no live holder remains, so a killed run does not leave it
running forever. Holders are added, dropped and counted only under the server's lock (the
cache lock `server-<alias>`), so a run never joins a server that is being stopped.

The watcher runs as a script with the standard library only (this file, run by path): a process
that lives as long as the server stays small and does not import the workbench.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

WATCH_INTERVAL_S = 1.0
STOP_GRACE_S = 10.0  # SIGTERM first; SIGKILL a server that has not exited by then


@dataclass
class Holding:
    """One run's hold on a server: its holder file, kept flock'ed through `handle`."""

    path: Path
    handle: IO[str]


def hold(holders: Path) -> Holding:
    """Register a live holder in the directory `holders`."""
    holders.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging = holders / f".{name}"  # locked before it appears under its name: never seen unlocked
    handle = open(staging, "w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    path = holders / name
    os.replace(staging, path)  # the lock is the inode's and moves with it
    return Holding(path, handle)


def drop(holding: Holding) -> None:
    holding.path.unlink(missing_ok=True)
    holding.handle.close()  # releases the flock


def live_holders(holders: Path) -> int:
    """How many holders in `holders` are alive; the files of dead ones are removed."""
    live = 0
    with contextlib.suppress(FileNotFoundError):
        for path in holders.iterdir():
            if path.name.startswith("."):
                continue
            try:
                handle = open(path)
            except FileNotFoundError:
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    live += 1  # its run holds the lock: alive (this process's own holders too)
                    continue
                path.unlink(missing_ok=True)
    return live


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not; this process reaps its own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        if status == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def stop_server(pid: int) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def forget(state: Path, pid: int) -> None:
    """Remove the state file if it still names this server (another may have replaced it)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(state.read_text())["pid"]) == pid:
            state.unlink(missing_ok=True)


@contextlib.contextmanager
def flocked(lock_path: Path) -> Iterator[None]:
    """The server's lock, taken by path (core.paths.cache_lock takes the same file by name)."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def watch(pid: int, lock_path: Path, holders: Path, state: Path, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Until server `pid` ends: stop it once no live holder remains."""
    while alive(pid):
        time.sleep(interval_s)
        with flocked(lock_path):
            if alive(pid) and live_holders(holders) == 0:
                stop_server(pid)
                forget(state, pid)
                return


def watcher_command(pid: int, lock_path: Path, holders: Path, state: Path) -> list[str]:
    """The command that runs the watcher of server `pid` (isolated mode: it needs only this file)."""
    return [sys.executable, "-I", str(Path(__file__).resolve()), str(pid), str(lock_path), str(holders), str(state)]


if __name__ == "__main__":
    server_pid, lock_file, holders_dir, state_file = sys.argv[1:5]
    watch(int(server_pid), Path(lock_file), Path(holders_dir), Path(state_file))
