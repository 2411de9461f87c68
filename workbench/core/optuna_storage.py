"""Where a search keeps its Optuna trials, from the study file's `search.storage` (or `--storage`):
- a file path: an Optuna journal file (JournalStorage), for workers on one machine;
- `postgresql://USER@HOST[:PORT]/DB`: Optuna's RDBStorage on PostgreSQL through psycopg 3, for
  workers on several machines; the password comes from the environment (PGPASSWORD, ~/.pgpass),
  which libpq reads, never from the study file, the command line or a log;
- `sqlite:///PATH`: RDBStorage on an SQLite file.

Each storage comes with a budget lock, held while a worker counts the trials and claims the next
one, so that workers sharing a search run exactly the trials asked (workbench/core/shared_trials.py).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from workbench.core.errors import UserError
from workbench.core.paths import file_lock

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import URL

FIELD = "search.storage"
ALLOWED = "a journal file path, postgresql://USER@HOST[:PORT]/DATABASE (password from PGPASSWORD) or sqlite:///PATH"
# Spellings of the PostgreSQL scheme a user may write; all run on psycopg 3.
_POSTGRES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_SQLITE = frozenset({"sqlite", "sqlite+pysqlite"})
# libpq connection parameters that carry a secret when given in the URL's query.
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
_CONNECT_TIMEOUT = 10  # seconds: an unreachable server fails the search in bounded time


class SearchStorage(NamedTuple):
    storage: optuna.storages.BaseStorage
    shown: str  # for messages and logs: never a password
    budget_lock: Callable[[str], AbstractContextManager[None]]  # study name -> lock


class StorageSetting(NamedTuple):
    """A checked setting, not yet opened: a journal path or an SQLAlchemy URL (no password in it)."""

    journal: Path | None
    url: URL | None

    @property
    def shown(self) -> str:
        return str(self.journal) if self.journal is not None else self.url.render_as_string(hide_password=True)  # type: ignore[union-attr]


def check_storage(setting: str, *, file: str | None = None, field: str = FIELD) -> StorageSetting:
    """The setting checked without connecting: one-line UserError naming `file` and `field` if bad."""
    if not isinstance(setting, str) or not setting.strip() or "\x00" in setting:
        raise UserError(f"must be {ALLOWED}", file=file, field=field)
    if "://" not in setting:
        return StorageSetting(journal=Path(setting), url=None)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(setting)
    except (ArgumentError, ValueError):  # never echoed: the text may hold a password
        raise UserError(f"not a database URL; must be {ALLOWED}", file=file, field=field) from None
    driver = url.drivername.lower()
    if driver not in _POSTGRES | _SQLITE:
        raise UserError(f"the scheme {url.drivername!r} is not allowed; must be {ALLOWED}", file=file, field=field)
    secrets = sorted(_SECRET_PARAMETERS & {key.lower() for key in url.query})
    if url.password is not None or secrets:
        where = "user info" if url.password is not None else f"query parameter {secrets[0]!r}"
        raise UserError(f"a password in the URL ({where}) must come from the environment instead (PGPASSWORD)", file=file, field=field)
    if driver in _SQLITE:
        if not url.database or url.database == ":memory:":
            raise UserError(f"an SQLite storage needs a file (sqlite:///PATH) that workers share; must be {ALLOWED}", file=file, field=field)
        return StorageSetting(journal=None, url=url.set(drivername="sqlite"))
    return StorageSetting(journal=None, url=url.set(drivername="postgresql+psycopg"))


def open_storage(
    setting: str,
    *,
    base_dir: Path | None = None,
    file: str | None = None,
    field: str = FIELD,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = None,
) -> SearchStorage:
    """The Optuna storage for `setting`; a relative journal or SQLite path is taken from `base_dir`
    (the log's directory). `heartbeat_interval` (seconds) lets a database storage fail the trials
    of a worker that died (after `grace_period`, by default twice the interval); a journal's are
    failed by the worker's host and process id (workbench/core/shared_trials.py)."""
    checked = check_storage(setting, file=file, field=field)
    if checked.journal is not None:
        return _journal(_resolved(checked.journal, base_dir, file, field), file, field)
    url = checked.url
    assert url is not None
    if url.drivername == "sqlite":
        path = _resolved(Path(url.database or ""), base_dir, file, field)
        storage = _rdb(url.set(database=str(path)), {}, heartbeat_interval, grace_period, file, field)
        return SearchStorage(storage, f"sqlite:///{path}", _lock_beside(path))
    engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": _CONNECT_TIMEOUT}}
    storage = _rdb(url, engine_kwargs, heartbeat_interval, grace_period, file, field)
    return SearchStorage(storage, checked.shown, lambda name: _advisory_lock(storage, name))


def _resolved(path: Path, base_dir: Path | None, file: str | None, field: str) -> Path:
    path = path.expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory; must be {ALLOWED}", file=file, field=field)
    if not path.parent.is_dir():
        raise UserError(f"the directory {str(path.parent)!r} does not exist; must be {ALLOWED}", file=file, field=field)
    return path


def _journal(path: Path, file: str | None, field: str) -> SearchStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        storage = JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise UserError(f"cannot open the journal {str(path)!r}: {exc.strerror}", file=file, field=field) from None
    return SearchStorage(storage, str(path), _lock_beside(path))


def _rdb(url: URL, engine_kwargs: dict[str, object], heartbeat_interval: int | None, grace_period: int | None, file: str | None, field: str) -> optuna.storages.RDBStorage:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats, in Optuna since 2.9
            return optuna.storages.RDBStorage(
                url.render_as_string(hide_password=False),  # holds no password: check_storage refused one
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
            )
    except SQLAlchemyError as exc:
        # The driver's first line ("connection refused", "password authentication failed for
        # user ..."): libpq never puts the password in it.
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise UserError(f"cannot use {url.render_as_string(hide_password=True)}: {lines[0] if lines else type(exc).__name__}", file=file, field=field) from None


def _lock_beside(path: Path) -> Callable[[str], AbstractContextManager[None]]:
    """One lock file beside the storage's file serves every study in it (claims are short); an
    flock, so a killed worker never blocks the rest."""
    return lambda _study_name: file_lock(path.with_name(path.name + ".budget.lock"))


@contextlib.contextmanager
def _advisory_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock keyed by the study's name: released by the server when
    the holder's connection closes, so a killed worker never blocks the rest."""
    from sqlalchemy import text

    with storage.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": f"workbench-search:{study_name}"})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": f"workbench-search:{study_name}"})
            connection.commit()
