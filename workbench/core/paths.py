"""Where the workbench finds its data and keeps its caches, in a checkout and when installed."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError

_PACKAGE = Path(__file__).resolve().parent.parent  # workbench/ (this module lives in workbench/core/)


def data_dir(name: str) -> Path:
    """The directory `stimuli`, `tasks` or `studies`: bundled in the wheel, or at the checkout's top."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the workbench data directory {name!r} is missing from this installation")


def cache_dir() -> Path:
    """Per-user cache for model weights and the model server's environment (WORKBENCH_CACHE overrides)."""
    root = os.environ.get("WORKBENCH_CACHE")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "prompt-affect-workbench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_lock_path(name: str) -> Path:
    """The file `cache_lock(name)` flocks (a process that cannot import the workbench takes it by path)."""
    lock_path = cache_dir() / "locks" / f"{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return lock_path


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Serialise preparation across processes (tests and CLI runs may start together)."""
    lock_path = cache_lock_path(name)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


DEFAULT_DB = Path("runs") / "workbench.duckdb"


def resolve_db_path(given: str | Path) -> Path:
    """The log file a `--db` value names. A directory (one that exists, or any path written with
    a trailing slash, created when the log is written) holds its log as DEFAULT_DB.name; any other
    path is the file itself. A path through an existing file is refused."""
    text = str(given)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / DEFAULT_DB.name
    blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise UserError(f"{blocking} is a file, not a directory: name a log file or a directory to hold one", field="--db")
    return path
