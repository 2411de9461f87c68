"""Whether a process still runs, read from Linux's /proc (background runs, search workers). The
model server's watcher keeps its own copy: it runs by path with the standard library only
(providers/server_watch.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def process_start(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if it is no live process (gone, or a
    zombie, which this process reaps when it is its own child). With the pid it names one process:
    a reused pid starts at another time."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not; this process reaps its own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds that id: it runs
        return True
    return process_start(pid) is not None
