"""Where the workbench finds its data and keeps its caches, in a checkout and when installed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .input_files import path_problem, shown

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


def cache_lock(name: str) -> contextlib.AbstractContextManager[None]:
    """Serialise preparation across processes (tests and CLI runs may start together)."""
    return file_lock(cache_lock_path(name))


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive flock on `lock_path` (created if missing): the kernel releases it when its
    holder dies, so a killed process never blocks the others."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


DEFAULT_DB = Path("runs") / "workbench.duckdb"


def resolve_db_path(given: str | Path) -> Path:
    """The log file a `--db` value names. A directory (one that exists, or any path written with
    a trailing slash, created when the log is written) holds its log as DEFAULT_DB.name; any other
    path is the file itself. A path through an existing file, or one that names no file (a NUL
    byte, a name too long), is refused."""
    try:
        return _resolve_db_path(str(given))
    except (OSError, ValueError) as exc:
        raise UserError(f"the log path {shown(str(given))} {path_problem(exc)}: {_WHAT_TO_NAME}", field="--db") from None


def _resolve_db_path(text: str) -> Path:
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / DEFAULT_DB.name
    blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise UserError(f"{blocking} is a file, not a directory: name a log file or a directory to hold one", field="--db")
    _check_log_file(path)
    return path


# What an existing --db path may be instead of a file, by the test of its mode.
_NOT_FILES = {"a directory": stat.S_ISDIR, "a device": stat.S_ISCHR, "a block device": stat.S_ISBLK, "a pipe": stat.S_ISFIFO, "a socket": stat.S_ISSOCK}
# A DuckDB database file starts with a checksum and then these bytes (DuckDB's storage format).
DUCKDB_MAGIC, DUCKDB_MAGIC_AT = b"DUCK", 8
_WHAT_TO_NAME = "name a DuckDB log, a new file or a directory to hold one"


def segments_dir(db_path: Path) -> Path:
    """The folder of a log's Parquet segments, beside its DuckDB file."""
    return db_path.with_name(db_path.name + ".segments")


def _check_log_file(path: Path) -> None:
    """An existing log path must be a DuckDB file: /dev/null, a pipe or another program's file
    is refused before any command opens it, so none is read as a log or written over."""
    try:
        mode = path.stat().st_mode
        kind = next((name for name, test in _NOT_FILES.items() if test(mode)), None)
        if kind is not None:
            raise UserError(f"{path} is {kind}, not a log file: {_WHAT_TO_NAME}", field="--db")
        with open(path, "rb") as handle:
            header = handle.read(DUCKDB_MAGIC_AT + len(DUCKDB_MAGIC))
    except FileNotFoundError:
        return  # a new log
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}): {_WHAT_TO_NAME}", field="--db") from None
    # with its segments beside it the file was a log, damaged since: the store names it and offers `log repair`
    if header[DUCKDB_MAGIC_AT:] != DUCKDB_MAGIC and not segments_dir(path).is_dir():
        raise UserError(f"{path} is not a DuckDB file ({'empty' if not header else 'no DuckDB header'}): {_WHAT_TO_NAME}", field="--db")
