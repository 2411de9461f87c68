"""What an interrupt (Ctrl-C, SIGINT) prints, and its exit code, wherever it lands: while the
command starts (imports, reading the study), during the run or its compaction at the end.

Its own small module: the package's `main` catches an interrupt while app.py is still being
imported, and app.py tells it what a run's interrupt should say, without importing each other."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C

_resumable: dict[str, str | None] = {}  # "run_id" -> the run an interrupt leaves to resume (None: not known yet)


def resumable(run_id: str | None = None) -> None:
    """An interrupt from now on leaves a run to resume (`run_id`, once known)."""
    _resumable["run_id"] = run_id or _resumable.get("run_id")


def message() -> str:
    """The line an interrupt prints: how to resume the run, when one was under way."""
    if "run_id" not in _resumable:
        return "aborted"
    run_id = _resumable["run_id"]
    return f"interrupted: run the same command again to resume {run_id or 'the run'}"


def exit_interrupted() -> NoReturn:
    sys.stderr.write(message() + "\n")
    sys.exit(INTERRUPTED)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """An interrupt in the block ends the command with `message()` and exit code 130, no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        exit_interrupted()
