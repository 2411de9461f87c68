"""The log: a DuckDB file plus append-only Parquet segments.

DuckDB lets one process hold a file for writing, and a writer locks out every reader. So no
workbench process ever opens the live file for writing. A sweep appends each batch of finished
trials as Parquet segments (written to a temporary name, then renamed, so a killed writer leaves
no partial file); at the end of a run, compaction builds the next version of the file in a private
copy, folds the segments in (idempotent by key) and renames it over the live file. Readers attach
the file read-only and see the segments too, so the log can be read at any time, by the workbench
or by the plain duckdb CLI.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .core.errors import LogDamaged, LogFault, UserError
from .core.paths import segments_dir


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]  # a row's identity: compaction folds in one row per key (the file keeps no index of it)
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)
    # A table of a trial's rows, which each attempt of the trial writes anew (a trial that ended in a
    # transient error runs again on resume): readers show every attempt's rows under this name, and
    # the latest attempt's under the table's own (see _latest_attempt_views).
    attempts: str | None = None
    defaults: tuple[tuple[str, str], ...] = ()  # (column, SQL value) where a row has none (written before the column was)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, _ARROW[sql]) for name, sql in self.columns])


_ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}

# Rows written before trials ran again on resume belong to their trial's first attempt.
_FIRST_ATTEMPT = (("attempt", "1"),)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "runs",
            ("run_id",),
            (
                ("run_id", "VARCHAR"), ("name", "VARCHAR"), ("study_path", "VARCHAR"), ("spec_json", "VARCHAR"),
                ("spec_hash", "VARCHAR"), ("seed", "BIGINT"), ("trials_planned", "BIGINT"), ("created_at", "TIMESTAMP"),
                ("workbench_version", "VARCHAR"), ("git_sha", "VARCHAR"), ("packages_json", "VARCHAR"),
                ("schema_version", "INTEGER"), ("stimuli_sha256", "VARCHAR"),
            ),
        ),
        Table(
            "run_events",
            ("event_id",),
            (("event_id", "VARCHAR"), ("run_id", "VARCHAR"), ("event", "VARCHAR"), ("event_at", "TIMESTAMP"), ("detail_json", "VARCHAR")),
        ),
        Table(
            "conditions",
            ("run_id", "condition"),
            (
                ("run_id", "VARCHAR"), ("condition", "VARCHAR"), ("is_control", "BOOLEAN"), ("stimuli_json", "VARCHAR"),
                ("solver", "VARCHAR"), ("solver_params_json", "VARCHAR"), ("consumes_gold", "BOOLEAN"),
            ),
        ),
        Table(
            "trials",
            ("trial_id", "attempt"),
            (
                ("trial_id", "VARCHAR"), ("run_id", "VARCHAR"), ("condition", "VARCHAR"), ("model", "VARCHAR"),
                ("model_params_json", "VARCHAR"), ("task", "VARCHAR"), ("task_version", "VARCHAR"), ("task_json", "VARCHAR"),
                ("item_id", "VARCHAR"), ("item_input", "VARCHAR"), ("targets_json", "VARCHAR"), ("repeat", "INTEGER"),
                ("seed", "BIGINT"), ("stimuli_json", "VARCHAR"), ("messages_json", "VARCHAR"), ("response_text", "VARCHAR"),
                ("answer", "VARCHAR"), ("score", "DOUBLE"), ("status", "VARCHAR"), ("error", "VARCHAR"), ("details_json", "VARCHAR"),
                ("n_calls", "INTEGER"), ("prompt_tokens", "BIGINT"), ("completion_tokens", "BIGINT"), ("cost", "DOUBLE"),
                ("latency_s", "DOUBLE"), ("cached", "BOOLEAN"), ("started_at", "TIMESTAMP"), ("finished_at", "TIMESTAMP"),
                ("consumes_gold", "BOOLEAN"), ("extractor", "VARCHAR"), ("item_json", "VARCHAR"), ("attempt", "INTEGER"),
            ),
            attempts="trial_attempts",
            defaults=_FIRST_ATTEMPT,
        ),
        Table(
            "calls",
            ("call_id", "attempt"),
            (
                ("call_id", "VARCHAR"), ("trial_id", "VARCHAR"), ("run_id", "VARCHAR"), ("call_index", "INTEGER"),
                ("purpose", "VARCHAR"), ("model", "VARCHAR"), ("endpoint", "VARCHAR"), ("params_json", "VARCHAR"),
                ("repeat", "INTEGER"), ("cache_key", "VARCHAR"), ("messages_json", "VARCHAR"), ("response_text", "VARCHAR"),
                ("finish_reason", "VARCHAR"), ("prompt_tokens", "BIGINT"), ("completion_tokens", "BIGINT"),
                ("cost", "DOUBLE"), ("latency_s", "DOUBLE"), ("cached", "BOOLEAN"), ("retries", "INTEGER"),
                ("error", "VARCHAR"), ("error_kind", "VARCHAR"), ("started_at", "TIMESTAMP"), ("finished_at", "TIMESTAMP"),
                ("attempt", "INTEGER"),
            ),
            attempts="call_attempts",
            defaults=_FIRST_ATTEMPT,
        ),
        Table(
            "rounds",  # one row per round of an iterative program (the HEART loop)
            ("round_id", "attempt"),
            (
                ("round_id", "VARCHAR"), ("trial_id", "VARCHAR"), ("run_id", "VARCHAR"), ("condition", "VARCHAR"),
                ("round", "INTEGER"), ("emotion", "VARCHAR"), ("tone", "VARCHAR"), ("phrase_id", "VARCHAR"),
                ("feedback", "VARCHAR"), ("messages_json", "VARCHAR"), ("response_text", "VARCHAR"), ("answer", "VARCHAR"),
                ("verdict", "VARCHAR"), ("verdict_source", "VARCHAR"), ("score", "DOUBLE"), ("consumes_gold", "BOOLEAN"),
                ("prompt_tokens", "BIGINT"), ("completion_tokens", "BIGINT"), ("latency_s", "DOUBLE"),
                ("call_id", "VARCHAR"), ("call_ids_json", "VARCHAR"), ("error", "VARCHAR"), ("asserts_error", "BOOLEAN"),
                ("attempt", "INTEGER"),
            ),
            attempts="round_attempts",
            defaults=_FIRST_ATTEMPT,
        ),
        Table(
            "scores",  # one row per trial and answer extractor: the run's own and every re-score
            ("trial_id", "attempt", "extractor"),
            (
                ("trial_id", "VARCHAR"), ("run_id", "VARCHAR"), ("extractor", "VARCHAR"), ("answer", "VARCHAR"),
                ("score", "DOUBLE"), ("status", "VARCHAR"), ("rule", "VARCHAR"), ("contains_gold", "BOOLEAN"),
                ("scored_at", "TIMESTAMP"), ("attempt", "INTEGER"),
            ),
            attempts="score_attempts",
            defaults=_FIRST_ATTEMPT,
        ),
        Table(
            "ratings",  # one row per rater, output rated and scale (the UI's Rate page): one batch per rating
            ("run_id", "rater", "unit_id", "trial_id", "scale"),
            (
                ("run_id", "VARCHAR"), ("rater", "VARCHAR"), ("unit_id", "VARCHAR"), ("trial_id", "VARCHAR"), ("attempt", "INTEGER"),
                ("scale", "VARCHAR"), ("value", "INTEGER"), ("rated_at", "TIMESTAMP"), ("position", "INTEGER"), ("order_seed", "BIGINT"),
                ("side", "VARCHAR"), ("partner_trial_id", "VARCHAR"),
            ),
        ),
    )
}

# Written in this order in every flush; readers ignore rows whose parent row is not yet there.
# Ratings come in batches of their own, of trials logged earlier: they need no closing file.
FLUSH_ORDER = ("ratings", "runs", "conditions", "calls", "rounds", "scores", "trials", "run_events")
# Rows that belong to a trial: they count once their batch has landed, that is once a file written
# after them in the same batch is there: the trials (a run's batch) or a run event (a re-score's
# batch of scores rows for trials logged earlier, which closes with a `rescored` event).
TRIAL_CHILDREN = ("calls", "rounds", "scores")
BATCH_CLOSERS = ("trials", "run_events")  # the last of FLUSH_ORDER: see _listed_batches
WRITERS = "writers"  # segments/writers/WRITER.lock: flocked while the writer WRITER is alive


def log_exists(db_path: Path) -> bool:
    """A log is there once its file or its segments are (a first run writes segments first)."""
    return db_path.exists() or segments_dir(db_path).exists()


def log_stamp(db_path: Path) -> tuple[int, ...]:
    """A cheap fingerprint of the log's state (its file's and its segments' sizes and times, no
    read): it changes whenever a trial lands or a compaction runs, so a cache keyed on it is
    never stale. All zeros when there is no log."""
    stamp = [0, 0, 0, 0, 0]
    with contextlib.suppress(FileNotFoundError):
        stat = db_path.stat()
        stamp[:2] = [stat.st_mtime_ns, stat.st_size]
    for path in segments_dir(db_path).glob("*/*.parquet"):
        with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile
            stat = path.stat()
            stamp[2:] = [stamp[2] + 1, max(stamp[3], stat.st_mtime_ns), stamp[4] + stat.st_size]
    return tuple(stamp)


def _segment_files(db_path: Path, table: str) -> list[Path]:
    directory = segments_dir(db_path) / table
    return sorted(directory.glob("*.parquet")) if directory.is_dir() else []


def _listed_batches(db_path: Path, tables: Sequence[str]) -> tuple[dict[str, list[Path]], set[str]]:
    """The segment files of `tables`, and the names of the batches that have landed (whose
    closing file is there). Directories are listed in the reverse of the order a batch writes its
    files in, so a landed batch's files are all listed: a trials file that lands while calls are
    being listed is not listed either. (Listed calls first, a compaction folded in and deleted
    another process's trials that landed meanwhile, leaving their calls without a closing file.)"""
    wanted = {*tables, *(BATCH_CLOSERS if set(tables) & set(TRIAL_CHILDREN) else ())}
    listed = {table: _segment_files(db_path, table) for table in reversed(FLUSH_ORDER) if table in wanted}
    landed = {p.name for closer in BATCH_CLOSERS for p in listed.get(closer, ())}
    return listed, landed


def _landed_batches(db_path: Path, tables: Sequence[str] = FLUSH_ORDER) -> dict[str, list[Path]]:
    """The segment files of `tables` that hold whole batches: a trial's calls, rounds and scores
    only with the file that closes their batch, listed at the same time."""
    listed, landed = _listed_batches(db_path, tables)
    return {table: [p for p in listed[table] if table not in TRIAL_CHILDREN or p.name in landed] for table in tables}


def _select_list(table: Table, available: set[str]) -> str:
    """The table's columns, NULL (or the column's default) for those a file written by an older version lacks."""
    values = ((name, _column_value(table, name, sql, available)) for name, sql in table.columns)
    return ", ".join(value if value == name else f"{value} AS {name}" for name, value in values)


def _column_value(table: Table, name: str, sql: str, available: set[str], prefix: str = "") -> str:
    """A column of rows that may lack it or hold NULL in it: its default then, if it has one."""
    default = dict(table.defaults).get(name)
    if name not in available:
        return f"CAST({default or 'NULL'} AS {sql})"
    return f"coalesce({prefix}{name}, {default})" if default else f"{prefix}{name}"


def _key_values(table: Table, available: set[str], prefix: str = "") -> list[str]:
    """The key columns of rows that may lack one (written by an older version), as _select_list reads them."""
    types = dict(table.columns)
    return [_column_value(table, k, types[k], available, prefix) for k in table.key]


def _key_match(table: Table, file_columns: set[str], segment_columns: set[str]) -> str:
    """SQL: the row `t` (of a file holding `file_columns`) has the key of the row `s` (holding `segment_columns`)."""
    pairs = zip(_key_values(table, file_columns, "t."), _key_values(table, segment_columns, "s."))
    return " AND ".join(f"{t} = {s}" for t, s in pairs)


def _parquet_columns(con: duckdb.DuckDBPyConnection, files: list[str]) -> set[str]:
    return {row[0] for row in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", [files]).fetchall()}


# -- faults: a disk that refuses writes, a damaged file ----------------------------------------
# What to do when the file system refuses a write, by errno (DuckDB reports them only as text).
_WRITE_FAULTS: dict[int, str] = {
    errno.ENOSPC: "free space there",
    errno.EDQUOT: "free space there (the disk quota is used up)",
    errno.EFBIG: "raise the file size limit (ulimit -f) or free space",
    errno.EROFS: "make it writable",
    errno.EACCES: "make it writable",
    errno.EPERM: "make it writable",
}


def _write_fault(exc: BaseException, db_path: Path) -> LogFault | None:
    """`exc` as a LogFault naming the log's directory and what to do, when it is a refused write."""
    code = getattr(exc, "errno", None)
    if code not in _WRITE_FAULTS:
        code = next((c for c in _WRITE_FAULTS if os.strerror(c) in str(exc)), None)
    if code is None:
        return None
    where = db_path.parent
    return LogFault(
        f"cannot write the log in {where}: {os.strerror(code)}; {_WRITE_FAULTS[code]}, then run the same command again "
        "(what was logged is kept; a run resumes where it stopped)",
        path=str(where),
    )


@contextlib.contextmanager
def _writes_to(db_path: Path) -> Iterator[None]:
    """Writes to the log: a full or read-only disk ends them with a LogFault saying what to do."""
    try:
        yield
    except (OSError, duckdb.Error) as exc:
        fault = _write_fault(exc, db_path)
        if fault is None:
            raise
        raise fault from exc


@dataclass(frozen=True)
class Damage:
    """A file of the log that cannot be read, and why."""

    path: Path
    reason: str


def _damaged(db_path: Path, found: Sequence[Damage]) -> LogDamaged:
    first = found[0]
    more = f" (and {len(found) - 1} more damaged files)" if len(found) > 1 else ""
    keeps = "rebuild the log from its segments and what of the file still reads" if first.path == db_path else "keep the rest of the log"
    return LogDamaged(
        f"{first.path} is damaged ({first.reason}){more}; run `workbench log repair --db {db_path}` to set it aside (nothing is deleted) and {keeps}",
        path=str(first.path),
    )


def _reason(exc: BaseException, path: Path) -> str:
    """Why reading `path` failed, in a few words: the error's first line, without the path."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if str(path) in line:
        line = line.split(str(path), 1)[1].lstrip("'\": ,") or line
    return line.split(". ")[0].rstrip(".!")


def _segment_damage(path: Path, read: Callable[[Path], Any] = pq.read_table) -> Damage | None:
    """Whether a segment reads whole (`read`: or its footer); a segment gone meanwhile was folded into the file: not damaged."""
    try:
        read(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, pa.ArrowException) as exc:
        return Damage(path, _reason(exc, path))
    return None


def damaged_segments(db_path: Path, tables: Sequence[str] = tuple(TABLES)) -> list[Damage]:
    """The log's segments that cannot be read whole."""
    found = (_segment_damage(path) for table in tables for path in _segment_files(db_path, table))
    return [d for d in found if d is not None]


def _raise_if_damaged(db_path: Path, files: Sequence[str | Path]) -> None:
    """Called when reading `files` failed: a LogDamaged naming the first that cannot be read."""
    found = [d for d in map(_segment_damage, map(Path, files)) if d is not None]
    if found:
        raise _damaged(db_path, found)


def _raise_if_file_damaged(db_path: Path, exc: duckdb.Error) -> None:
    """Called when DuckDB could not open `db_path`: a LogDamaged when the workbench wrote it (its
    segments are beside it; a file that never was a log is another matter)."""
    if segments_dir(db_path).is_dir():
        raise _damaged(db_path, [Damage(db_path, _reason(exc, db_path))]) from exc


# What DuckDB says when a query meets a damaged block of a file that opened.
_DAMAGE_SIGNS = ("Corrupt database file", "Could not read enough bytes")


def damage_met(exc: BaseException) -> LogDamaged | None:
    """A DuckDB error met in a query, which may run anywhere after a log file opened, as the
    LogDamaged it is when it says a block is damaged (it names no file: `log check` does)."""
    if not isinstance(exc, duckdb.Error) or not any(sign in str(exc) for sign in _DAMAGE_SIGNS):
        return None
    return LogDamaged(
        f"a log file is damaged ({_reason(exc, Path('/'))}); `workbench log check --db LOG` names it, "
        "`workbench log repair --db LOG` sets it aside (nothing is deleted) and keeps the rest",
        path="",
    )


def _size_damage(con: duckdb.DuckDBPyConnection, alias: str, db_path: Path) -> Damage | None:
    """A truncated log file opens, and fails only when a query reads a block past its end: the
    blocks in use, as its header counts them, must fit in it (free blocks at its end are cut off
    by DuckDB itself, so only these are sure to be there)."""
    used = con.execute(
        "SELECT (total_blocks - free_blocks) * block_size FROM pragma_database_size() WHERE database_name = ?", [alias]
    ).fetchone()
    size = db_path.stat().st_size
    return Damage(db_path, f"truncated: {size} bytes, its blocks in use take {used[0]}") if used is not None and size < used[0] else None


def _check_file_size(con: duckdb.DuckDBPyConnection, alias: str, db_path: Path) -> None:
    damage = _size_damage(con, alias, db_path)
    if damage is not None:
        raise _damaged(db_path, [damage])


def _file_damage(db_path: Path) -> list[Damage]:
    """Whether the DuckDB file opens and every table of it reads whole (DuckDB checks each block's checksum)."""
    if not db_path.exists():
        return []
    con = duckdb.connect(":memory:")
    try:
        con.execute("ATTACH ? AS log (READ_ONLY)", [str(db_path)])
        truncated = _size_damage(con, "log", db_path)
        if truncated is not None:
            return [truncated]
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'log'").fetchall():
            con.execute(f'SELECT bit_xor(hash(*COLUMNS(*))) FROM log."{table}"').fetchall()  # every value read
    except duckdb.Error as exc:
        return [Damage(db_path, _reason(exc, db_path))]
    finally:
        con.close()
    return []


def check_log(db_path: Path) -> list[Damage]:
    """Every file of the log that cannot be read whole: segments, then the DuckDB file."""
    return damaged_segments(db_path) + _file_damage(db_path)


def quarantine_dir(db_path: Path) -> Path:
    """Where `repair_log` sets damaged files aside, beside the log."""
    return db_path.with_name(db_path.name + ".quarantine")


@dataclass(frozen=True)
class Repair:
    """What `repair_log` did: the files it set aside (from, to, why); when the DuckDB file was
    one, it was rebuilt from the segments and the tables of it that still read whole (`salvaged`);
    the rows of the others (`lost`) that no segment holds are lost."""

    moved: tuple[tuple[Path, Path, str], ...]
    rebuilt: bool = False
    salvaged: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()


def repair_log(db_path: Path) -> Repair:
    """Set the log's damaged files aside in its quarantine folder (never deleted), with the
    trial-children of batches whose trials went (they would count for nothing); a damaged DuckDB
    file is rebuilt from the segments. The rest of the log stays as it was."""
    db_path = Path(db_path)
    with _writes_to(db_path):
        with _compaction_lock(db_path, blocking=True):  # no compaction folds a segment in meanwhile
            found = check_log(db_path)
            if not found:
                return Repair(())
            if any(d.path == db_path for d in found) and not segments_dir(db_path).is_dir():
                raise UserError("not a workbench log (DuckDB cannot open it, and no segments are beside it): nothing set aside", file=str(db_path))
            shelf = quarantine_dir(db_path) / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            moved = [(d.path, _set_aside(d.path, shelf, db_path), d.reason) for d in found]
            gone = {src.name for src, _, _ in moved if src.parent.name in BATCH_CLOSERS}
            closed = {p.name for closer in BATCH_CLOSERS for p in _segment_files(db_path, closer)}
            for child in TRIAL_CHILDREN:
                for path in _segment_files(db_path, child):
                    if path.name in gone and path.name not in closed:
                        moved.append((path, _set_aside(path, shelf, db_path), "its batch's trials were damaged"))
            file = next((target for src, target, _ in moved if src == db_path), None)
            wal = db_path.with_name(db_path.name + ".wal")  # DuckDB would replay it into the new file
            if file is not None and wal.exists():
                moved.append((wal, _set_aside(wal, shelf, db_path), "the damaged file's write-ahead log"))
            salvaged, lost = _salvage(file, db_path) if file is not None else ((), ())
        if file is None:
            return Repair(tuple(moved))
        compact(db_path)  # a new file from the segments (it takes the lock itself)
    return Repair(tuple(moved), True, salvaged, lost)


def _salvage(damaged: Path, db_path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tables of a damaged log file that still read whole, copied out as one batch of
    segments for compaction to fold into the new file; (those tables, the others)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("ATTACH ? AS damaged (READ_ONLY)", [str(damaged)])
        stored = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'damaged'").fetchall()}
    except duckdb.Error:
        con.close()
        return (), tuple(TABLES)
    batch = f"{0:020d}-{uuid.uuid4().hex[:8]}"  # sorts first: its rows were written before any segment's
    salvaged: list[str] = []
    try:
        for table in (t for t in FLUSH_ORDER if t in stored):  # trials after their children, as a batch is written
            final = segments_dir(db_path) / table / f"{batch}.parquet"
            tmp = final.with_suffix(".parquet.tmp")
            try:
                con.execute(f"COPY (SELECT * FROM damaged.{table}) TO '{_sql_text(tmp)}' (FORMAT parquet)")
            except duckdb.Error:
                tmp.unlink(missing_ok=True)
                continue
            os.replace(tmp, final)
            salvaged.append(table)
    finally:
        con.close()
    return tuple(salvaged), tuple(t for t in TABLES if t not in salvaged)


def _sql_text(path: Path) -> str:
    """A path inside a SQL string literal (COPY takes no parameter for its file)."""
    return str(path).replace("'", "''")


def _set_aside(path: Path, shelf: Path, db_path: Path) -> Path:
    """`path` moved into `shelf`, a segment under its table's name."""
    segments = segments_dir(db_path)
    target = shelf / path.relative_to(segments) if segments in path.parents else shelf / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    return target


FOLD_BATCHES = 16  # segment files a compaction folds in with one statement (see _compact)
COMPACT_EVERY_S = 5.0  # a writer folds its batches into the file at most this often (see SegmentWriter._compact)


class SegmentWriter:
    """Appends rows as Parquet segments. Holds no lock on the DuckDB file, only its own writer
    lock, which tells other processes that its unfinished batch is still on its way: close()
    releases it (so does the writer's end, however it ends)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.root = segments_dir(self.db_path)
        with _writes_to(self.db_path):
            for table in TABLES:
                (self.root / table).mkdir(parents=True, exist_ok=True)
            self.writer_id = uuid.uuid4().hex[:12]
            self._lock: IO[str] | None = _held_writer_lock(self.root, self.writer_id)
            self._batches = itertools.count()
            self._unfinished = False  # a batch begun and not landed (its write failed): its files await cleanup
            self._drop_orphans()
        self._next_compaction = time.monotonic() + COMPACT_EVERY_S

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the writer lock: from now on a batch of this writer that never landed is an orphan."""
        if self._lock is None:
            return
        if not self._unfinished:  # nothing of this writer's to clean up: no lock file left for it
            (self.root / WRITERS / f"{self.writer_id}.lock").unlink(missing_ok=True)
        self._lock.close()  # closing its file drops the flock
        self._lock = None

    def write(self, rows: dict[str, Sequence[dict[str, Any]]], fold: bool = True) -> None:
        """Write one batch; all files of a batch share a name (TIME-WRITER-SEQ), and trials go
        after their calls. `fold=False`: no periodic compaction now (the caller compacts right after).
        A full or read-only disk raises LogFault (a batch cut short lands nothing: its trials run again)."""
        if self._lock is None:
            raise ValueError(f"writer {self.writer_id} of {self.db_path} is closed")
        with _writes_to(self.db_path):
            self._write(rows, fold)

    def _write(self, rows: dict[str, Sequence[dict[str, Any]]], fold: bool) -> None:
        batch = f"{time.time_ns():020d}-{self.writer_id}-{next(self._batches):06d}"
        self._unfinished = True
        for table in FLUSH_ORDER:
            records = rows.get(table)
            if not records:
                continue
            spec = TABLES[table]
            # column by column: pyarrow converts a list per column much faster than a dict per row;
            # map(dict.get) builds each list without a Python loop (a third faster than a comprehension)
            n = len(records)
            columns = {c: list(map(dict.get, records, itertools.repeat(c, n))) for c, _ in spec.columns}
            arrow = pa.Table.from_pydict(columns, schema=spec.arrow_schema())
            final = self.root / table / f"{batch}.parquet"
            tmp = final.with_suffix(".parquet.tmp")
            # Segments live until the next compaction: written without dictionaries or column
            # statistics, a run's segments took 0.037 s instead of 0.061 s and 3.8 MB instead of
            # 3.3 MB (12,000 simulated trials); compaction reads them as fast.
            pq.write_table(arrow, tmp, use_dictionary=False, write_statistics=False)
            os.replace(tmp, final)
        self._unfinished = False
        if fold and (not self.db_path.exists() or time.monotonic() >= self._next_compaction):
            self._compact()

    def _compact(self) -> None:
        """Fold the batches in now and then, so the file other tools open (the duckdb CLI) holds a
        new log's first batch at once and a running sweep's trials with a bounded lag; at most a
        tenth of the writer's time goes to it, as a file grows. On one DuckDB thread: the fold
        runs beside the trials, which want the other cores (with DuckDB's default of a thread per
        core, a 12,000-trial run's CPU time was 0.2 s longer, of 2.6 s)."""
        started = time.monotonic()
        compact(self.db_path, threads=1)
        self._next_compaction = time.monotonic() + max(COMPACT_EVERY_S, 10 * (time.monotonic() - started))

    def _drop_orphans(self) -> None:
        """Child files of a batch that never landed belong to trials that will run again (or to a
        re-score that will run again), once their writer is dead: a live one (paused between its
        calls and its trials, however long) lands the batch yet. So do a dead writer's temporary
        files. Files named before writers had locks (TIME-RANDOM) go once a minute old, as then."""
        dead = _dead_writers(self.root)  # before the listing: these have landed all they ever will
        listed, landed = _listed_batches(self.db_path, TRIAL_CHILDREN)
        unfinished = [path for child in TRIAL_CHILDREN for path in listed[child] if path.name not in landed]
        for path in [*unfinished, *self.root.glob("*/*.parquet.tmp")]:
            writer = _writer_of(path)
            if (writer in dead) if writer is not None else _older_than(path, 60):
                path.unlink(missing_ok=True)
        for lock in dead.values():
            lock.unlink(missing_ok=True)  # after its orphans: a cleanup killed before this does it again


def _held_writer_lock(root: Path, writer_id: str) -> IO[str]:
    """The writer's lock file, flocked: it is made under a private name and renamed into place, so
    no one finds it unlocked (and takes the writer for dead) before its writer locks it."""
    lock = root / WRITERS / f"{writer_id}.lock"
    lock.parent.mkdir(exist_ok=True)
    private = lock.with_suffix(".lock.tmp")
    handle = open(private, "w")
    _flock(handle, blocking=False)  # a new file: nobody else holds it
    os.replace(private, lock)
    return handle


def _lock_held(lock: Path) -> bool | None:
    """Whether a live process holds a writer's lock file (None: the file is gone). Probing takes
    the flock for a moment, which no writer waits for: it locks its file before naming it."""
    with contextlib.suppress(FileNotFoundError), open(lock, "r") as handle:
        return not _flock(handle, blocking=False)
    return None


def _dead_writers(root: Path) -> dict[str, Path]:
    """The lock files, by writer, that no process holds: their writers ended, were killed or closed."""
    return {lock.stem: lock for lock in (root / WRITERS).glob("*.lock") if _lock_held(lock) is False}


def live_writers(db_path: Path) -> int:
    """How many live processes write to the log now (a run or a re-score: each holds its writer's lock)."""
    return sum(_lock_held(lock) is True for lock in (segments_dir(Path(db_path)) / WRITERS).glob("*.lock"))


def _writer_of(path: Path) -> str | None:
    """The writer a segment file's name (TIME-WRITER-SEQ) names; None for a name without one."""
    parts = path.name.split(".", 1)[0].split("-")
    return parts[1] if len(parts) == 3 else None


def _older_than(path: Path, seconds: float) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return time.time() - path.stat().st_mtime > seconds
    return False


def _flock(handle: IO[str], blocking: bool) -> bool:
    """An exclusive flock; the kernel drops it when its holder dies, `kill -9` included."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _compaction_lock(db_path: Path, blocking: bool) -> Iterator[bool]:
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        if not _flock(handle, blocking):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RunLocked(Exception):
    """Another process holds the run's lock: it is running the same run on the same log."""

    def __init__(self, run_id: str, pid: int | None) -> None:
        super().__init__(f"run {run_id} is locked by {'pid ' + str(pid) if pid else 'another process'}")
        self.run_id = run_id
        self.pid = pid


def run_lock_name(db_path: Path, run_id: str) -> str:
    """The lock file's name: a digest of the run id, which holds the study's name, so no name a
    user wrote (a `/`, 200 characters) reaches the file system."""
    return f"{db_path.name}.{hashlib.sha256(run_id.encode()).hexdigest()[:16]}.run-lock"


@contextlib.contextmanager
def run_lock(db_path: Path, run_id: str) -> Iterator[None]:
    """Held for the whole of a run, so two processes never run the same run on one log (both would
    write every trial). Raises RunLocked at once when another process holds it. The file holds the
    holder's pid and is removed on release; a killed holder's lock is free at once (flock)."""
    lock_path = db_path.with_name(run_lock_name(db_path, run_id))
    with _writes_to(db_path):
        handle = _open_run_lock(lock_path, run_id)
    try:
        with _writes_to(db_path):
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):  # a disk made read-only meanwhile: flock, not the file, is the lock
            lock_path.unlink(missing_ok=True)  # before the unlock: a waiter then finds the file gone
        handle.close()


def run_lock_holder(db_path: Path, run_id: str) -> int | None:
    """The pid of the live process holding the run's lock, or None. Read without locking (a probe
    taking the lock, even for a moment, could refuse a run starting then): the file exists while
    held, and a killed holder's pid is no longer alive."""
    try:
        holder = db_path.with_name(run_lock_name(db_path, run_id)).read_text().strip()
    except OSError:
        return None
    if not holder.isdigit():
        return None
    try:
        os.kill(int(holder), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return int(holder)


def _open_run_lock(lock_path: Path, run_id: str) -> IO[str]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock_path, "a+")  # "a+": opening must not wipe the holder's pid
        if not _flock(handle, blocking=False):
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise RunLocked(run_id, int(holder) if holder.isdigit() else None)
        held = os.fstat(handle.fileno())
        if _file_identity(lock_path) == (held.st_dev, held.st_ino):
            return handle
        handle.close()  # the previous holder removed this file as we opened it: lock the new one


def _log_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 1, as written: the log tables of the first schema."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR, name VARCHAR, study_path VARCHAR, spec_json VARCHAR, spec_hash VARCHAR, "
        "seed BIGINT, trials_planned BIGINT, created_at TIMESTAMP, workbench_version VARCHAR, git_sha VARCHAR, packages_json VARCHAR, "
        "schema_version INTEGER, PRIMARY KEY (run_id))"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS run_events (event_id VARCHAR, run_id VARCHAR, event VARCHAR, event_at TIMESTAMP, detail_json VARCHAR, "
        "PRIMARY KEY (event_id))"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS conditions (run_id VARCHAR, condition VARCHAR, is_control BOOLEAN, stimuli_json VARCHAR, "
        "PRIMARY KEY (run_id, condition))"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS trials (trial_id VARCHAR, run_id VARCHAR, condition VARCHAR, model VARCHAR, model_params_json VARCHAR, "
        "task VARCHAR, task_version VARCHAR, task_json VARCHAR, item_id VARCHAR, item_input VARCHAR, targets_json VARCHAR, repeat INTEGER, "
        "seed BIGINT, stimuli_json VARCHAR, messages_json VARCHAR, response_text VARCHAR, answer VARCHAR, score DOUBLE, status VARCHAR, "
        "error VARCHAR, details_json VARCHAR, n_calls INTEGER, prompt_tokens BIGINT, completion_tokens BIGINT, cost DOUBLE, latency_s DOUBLE, "
        "cached BOOLEAN, started_at TIMESTAMP, finished_at TIMESTAMP, PRIMARY KEY (trial_id))"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS calls (call_id VARCHAR, trial_id VARCHAR, run_id VARCHAR, call_index INTEGER, purpose VARCHAR, "
        "model VARCHAR, endpoint VARCHAR, params_json VARCHAR, repeat INTEGER, cache_key VARCHAR, messages_json VARCHAR, "
        "response_text VARCHAR, finish_reason VARCHAR, prompt_tokens BIGINT, completion_tokens BIGINT, cost DOUBLE, latency_s DOUBLE, "
        "cached BOOLEAN, retries INTEGER, error VARCHAR, error_kind VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, "
        "PRIMARY KEY (call_id))"
    )


def _rounds_and_solvers(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 2, as written: the rounds table; which solver a condition ran and whether it read gold labels."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS rounds (round_id VARCHAR, trial_id VARCHAR, run_id VARCHAR, condition VARCHAR, round INTEGER, "
        "emotion VARCHAR, tone VARCHAR, phrase_id VARCHAR, feedback VARCHAR, messages_json VARCHAR, response_text VARCHAR, answer VARCHAR, "
        "verdict VARCHAR, verdict_source VARCHAR, score DOUBLE, consumes_gold BOOLEAN, prompt_tokens BIGINT, completion_tokens BIGINT, "
        "latency_s DOUBLE, call_id VARCHAR, call_ids_json VARCHAR, error VARCHAR, PRIMARY KEY (round_id))"
    )
    for column in ("solver VARCHAR", "solver_params_json VARCHAR", "consumes_gold BOOLEAN"):
        con.execute(f"ALTER TABLE conditions ADD COLUMN IF NOT EXISTS {column}")
    con.execute("ALTER TABLE trials ADD COLUMN IF NOT EXISTS consumes_gold BOOLEAN")


def _scores_table(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 3, as written (not derived from TABLES, so it does the same thing forever)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS scores (trial_id VARCHAR, run_id VARCHAR, extractor VARCHAR, answer VARCHAR, "
        "score DOUBLE, status VARCHAR, rule VARCHAR, contains_gold BOOLEAN, scored_at TIMESTAMP, PRIMARY KEY (trial_id, extractor))"
    )
    con.execute("ALTER TABLE trials ADD COLUMN IF NOT EXISTS extractor VARCHAR")


def _error_claim_column(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 4, as written: whether a round's feedback phrase asserts an error."""
    con.execute("ALTER TABLE rounds ADD COLUMN IF NOT EXISTS asserts_error BOOLEAN")


def _item_json(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 5, as written: the example's choices and meta, so a re-score needs only the log."""
    con.execute("ALTER TABLE trials ADD COLUMN IF NOT EXISTS item_json VARCHAR")


def _stimuli_fingerprint(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 6, as written: the fingerprint of the texts and solver plans a run sends."""
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS stimuli_sha256 VARCHAR")


def _unindexed_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 7, as written: the log tables without their primary keys. Compaction already
    folds in one row per key (it skips keys the file holds and keeps the first of a key among the
    segments), so their indexes only cost: half of a log file's bytes, and an eighth of a
    compaction's time (12,000 simulated trials here: 10.0 MB and 0.69 s with them, 5.2 MB and
    0.60 s without). DuckDB cannot drop a primary key, so each table is copied without it."""
    for name in ("runs", "run_events", "conditions", "trials", "calls", "rounds", "scores"):
        con.execute(f"CREATE TABLE {name}__unindexed AS SELECT * FROM {name}")
        con.execute(f"DROP TABLE {name}")
        con.execute(f"ALTER TABLE {name}__unindexed RENAME TO {name}")


def _trial_attempts(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 8, as written: which attempt of its trial a row is (a trial that ended in a
    transient error runs again on resume, beside its earlier attempt); the rows before it, the first."""
    for name in ("trials", "calls", "rounds", "scores"):
        con.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS attempt INTEGER")
        con.execute(f"UPDATE {name} SET attempt = 1 WHERE attempt IS NULL")


def _ratings_table(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 9, as written: ratings of outputs by human raters (the UI's Rate page)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS ratings (run_id VARCHAR, rater VARCHAR, unit_id VARCHAR, trial_id VARCHAR, attempt INTEGER, "
        "scale VARCHAR, value INTEGER, rated_at TIMESTAMP, position INTEGER, order_seed BIGINT, side VARCHAR, partner_trial_id VARCHAR)"
    )


# Applied in order, each once, recorded in schema_migrations. A file written by an older version
# gains the new tables and columns (NULL in its old rows) the next time a run compacts into it.
MIGRATIONS: tuple[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    (1, "the log tables", _log_tables),
    (2, "rounds table; trials/conditions say which solver ran and whether it consumed gold labels", _rounds_and_solvers),
    (3, "scores table (one row per trial and extractor); trials.extractor", _scores_table),
    (4, "rounds.asserts_error: whether the round's feedback phrase says the answer is wrong", _error_claim_column),
    (5, "trials.item_json (choices and meta of the example, for re-scoring)", _item_json),
    (6, "runs.stimuli_sha256 (stimulus texts and solver plans of the run)", _stimuli_fingerprint),
    (7, "the log tables without primary-key indexes (compaction keeps one row per key)", _unindexed_keys),
    (8, "trials, calls, rounds and scores: attempt (a trial retried on resume keeps its earlier attempts)", _trial_attempts),
    (9, "ratings table (blind ratings of outputs by raters, one row per rater, output and scale)", _ratings_table),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


# A new log starts at BASELINE_VERSION in one script: the tables as migrations 1 to 9 leave them
# (tests/test_migrations.py checks it), made without replaying seven migrations' forty statements
# (20 ms of the 45 ms that making a new log took). A later migration applies on top, and is
# folded into the script (a new log's tables equal the replayed ones: the test checks it).
BASELINE_VERSION = 9
_BASELINE = (
    "CREATE TABLE runs (run_id VARCHAR, name VARCHAR, study_path VARCHAR, spec_json VARCHAR, spec_hash VARCHAR, seed BIGINT, "
    "trials_planned BIGINT, created_at TIMESTAMP, workbench_version VARCHAR, git_sha VARCHAR, packages_json VARCHAR, "
    "schema_version INTEGER, stimuli_sha256 VARCHAR);"
    "CREATE TABLE run_events (event_id VARCHAR, run_id VARCHAR, event VARCHAR, event_at TIMESTAMP, detail_json VARCHAR);"
    "CREATE TABLE conditions (run_id VARCHAR, condition VARCHAR, is_control BOOLEAN, stimuli_json VARCHAR, solver VARCHAR, "
    "solver_params_json VARCHAR, consumes_gold BOOLEAN);"
    "CREATE TABLE trials (trial_id VARCHAR, run_id VARCHAR, condition VARCHAR, model VARCHAR, model_params_json VARCHAR, task VARCHAR, "
    "task_version VARCHAR, task_json VARCHAR, item_id VARCHAR, item_input VARCHAR, targets_json VARCHAR, repeat INTEGER, seed BIGINT, "
    "stimuli_json VARCHAR, messages_json VARCHAR, response_text VARCHAR, answer VARCHAR, score DOUBLE, status VARCHAR, error VARCHAR, "
    "details_json VARCHAR, n_calls INTEGER, prompt_tokens BIGINT, completion_tokens BIGINT, cost DOUBLE, latency_s DOUBLE, "
    "cached BOOLEAN, started_at TIMESTAMP, finished_at TIMESTAMP, consumes_gold BOOLEAN, extractor VARCHAR, item_json VARCHAR, attempt INTEGER);"
    "CREATE TABLE calls (call_id VARCHAR, trial_id VARCHAR, run_id VARCHAR, call_index INTEGER, purpose VARCHAR, model VARCHAR, "
    "endpoint VARCHAR, params_json VARCHAR, repeat INTEGER, cache_key VARCHAR, messages_json VARCHAR, response_text VARCHAR, "
    "finish_reason VARCHAR, prompt_tokens BIGINT, completion_tokens BIGINT, cost DOUBLE, latency_s DOUBLE, cached BOOLEAN, "
    "retries INTEGER, error VARCHAR, error_kind VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, attempt INTEGER);"
    "CREATE TABLE rounds (round_id VARCHAR, trial_id VARCHAR, run_id VARCHAR, condition VARCHAR, round INTEGER, emotion VARCHAR, "
    "tone VARCHAR, phrase_id VARCHAR, feedback VARCHAR, messages_json VARCHAR, response_text VARCHAR, answer VARCHAR, verdict VARCHAR, "
    "verdict_source VARCHAR, score DOUBLE, consumes_gold BOOLEAN, prompt_tokens BIGINT, completion_tokens BIGINT, latency_s DOUBLE, "
    "call_id VARCHAR, call_ids_json VARCHAR, error VARCHAR, asserts_error BOOLEAN, attempt INTEGER);"
    "CREATE TABLE scores (trial_id VARCHAR, run_id VARCHAR, extractor VARCHAR, answer VARCHAR, score DOUBLE, status VARCHAR, "
    "rule VARCHAR, contains_gold BOOLEAN, scored_at TIMESTAMP, attempt INTEGER);"
    "CREATE TABLE ratings (run_id VARCHAR, rater VARCHAR, unit_id VARCHAR, trial_id VARCHAR, attempt INTEGER, scale VARCHAR, "
    "value INTEGER, rated_at TIMESTAMP, position INTEGER, order_seed BIGINT, side VARCHAR, partner_trial_id VARCHAR);"
)


def _migrate(con: duckdb.DuckDBPyConnection, *, baseline: bool = True) -> None:
    """Bring the current database to today's schema. `baseline=False`: a new one by replaying every
    migration (what the baseline must equal)."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    if baseline and not applied and _only_table_is_migrations(con):
        con.execute(_BASELINE)
        con.execute("INSERT INTO schema_migrations SELECT range, now() FROM range(1, ?)", [BASELINE_VERSION + 1])
        applied = set(range(1, BASELINE_VERSION + 1))
    for version, _, migrate in MIGRATIONS:
        if version not in applied:
            migrate(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])


def _only_table_is_migrations(con: duckdb.DuckDBPyConnection) -> bool:
    """A new database: nothing in it but the migrations table (a log from before migrations has tables)."""
    return con.execute("SELECT count(*) = 1 FROM duckdb_tables() WHERE database_name = current_database()").fetchone()[0]


# The storage version every log file is written in. DuckDB 2.0 writes its own newer format by
# default, which DuckDB before 2.0 (the duckdb CLI on PyPI among them) refuses to open; every
# DuckDB from 1.3.0 on reads this one (1.2.2 refuses it). Its string compression made a run's
# compactions a third cheaper than in v1.0.0 (0.24 s instead of 0.34 s for 12,000 simulated trials).
STORAGE_VERSION = "v1.3.0"


ENGINE_MEMORY = "128MB"  # what the process's DuckDB keeps (compactions spill beyond it); 256 MB: 0.12 GB more at a fold's peak
_engine: tuple[int, duckdb.DuckDBPyConnection] | None = None  # (the pid that made it, the DuckDB)
_engine_lock = threading.Lock()
_inspecting = threading.Lock()


def _process_duckdb() -> duckdb.DuckDBPyConnection:
    """The process's one in-memory DuckDB, which log files are attached to and detached from: a new
    DuckDB loads its built-in extensions first (18 ms of CPU; callgrind: 8% of a 12,000-trial
    run's writer thread went to making three of them). A forked child makes its own."""
    global _engine
    with _engine_lock:
        if _engine is None or _engine[0] != os.getpid():
            # Bounded: at DuckDB's default (most of the machine's memory) the pages a compaction
            # writes stay cached, and a million-trial run's folds grew it by a gigabyte.
            spill = Path(tempfile.gettempdir()) / f"workbench-duckdb-{os.getpid()}"
            _engine = (os.getpid(), duckdb.connect(":memory:", config={"memory_limit": ENGINE_MEMORY, "temp_directory": str(spill)}))
        return _engine[1]


@contextlib.contextmanager
def _attached(con: duckdb.DuckDBPyConnection, path: Path, alias: str, options: str) -> Iterator[None]:
    """`path` attached as `alias` to the process's DuckDB (through `con`, one of its connections)
    for the block, detached after, also when the block failed (its open transaction rolled back
    first): only then is the file closed, to be renamed or read by others. A log file DuckDB
    cannot open raises LogDamaged."""
    try:
        con.execute(f"ATTACH ? AS {alias} ({options})", [str(path)])
    except duckdb.Error as exc:
        _raise_if_file_damaged(path, exc)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # none open: the block committed or never began one
            con.execute("ROLLBACK")
        _detach(con, alias)


def _detach(con: duckdb.DuckDBPyConnection, alias: str) -> None:
    """Detach `alias`, closing its file. After a checkpoint that failed (a full disk) DuckDB
    refuses every statement of the connection that ran it, and the file would stay open, its
    space not given back, as long as the process runs: then another connection detaches it."""
    try:
        con.execute("USE memory")  # the block may have made the file its default database
    except duckdb.Error:
        with contextlib.closing(con.cursor()) as other:
            other.execute(f"DETACH {alias}")
        return
    con.execute(f"DETACH {alias}")


def file_versions(db_path: Path) -> tuple[str, int]:
    """The storage version a log file is written in, as DuckDB names it (e.g. `v1.3.0`), and
    its schema version (the last migration applied; 0 for a file without migrations)."""
    with _inspecting:  # one connection of the process's DuckDB, used by one thread at a time
        con = _process_duckdb()
        with _attached(con, db_path, "inspected", "READ_ONLY"):
            return _inspected_versions(con, db_path)


def _inspected_versions(con: duckdb.DuckDBPyConnection, db_path: Path) -> tuple[str, int]:
    _check_file_size(con, "inspected", db_path)
    tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'inspected'").fetchone()[0]
    schema = con.execute("SELECT coalesce(max(version), 0) FROM inspected.schema_migrations").fetchone()[0] if _inspected_has(con, "schema_migrations") else 0
    return str(tags.get("storage_version", "")).rstrip("+"), int(schema)


def _inspected_has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'inspected' AND table_name = ?", [table]).fetchone()[0])


def is_current(db_path: Path) -> bool:
    """Whether a log file is in today's storage version and schema (else the next compaction upgrades it)."""
    return file_versions(db_path) == (STORAGE_VERSION, SCHEMA_VERSION)


@dataclass(frozen=True)
class Glance:
    """What a log shows without reading its rows: its file's storage and schema versions (None: no
    file yet, only a first run's segments), whether it holds a run, how many processes write to it."""

    storage: str | None
    schema: int | None
    has_runs: bool
    writers: int


def glance(db_path: Path) -> Glance:
    """A cheap look at an existing log, for a page that shows its state on every redraw: its file
    is opened (not read), its segments' footers read. A damaged file or footer raises LogDamaged
    (`check_log` reads every file whole), a file DuckDB cannot open beside no segments UserError."""
    db_path = Path(db_path)
    found = [d for d in (_segment_damage(p, pq.read_metadata) for table in TABLES for p in _segment_files(db_path, table)) if d is not None]
    if found:
        raise _damaged(db_path, found)
    storage: str | None = None
    schema: int | None = None
    in_file = False
    if db_path.is_file():
        with _inspecting:
            con = _process_duckdb()
            try:
                with _attached(con, db_path, "inspected", "READ_ONLY"):
                    storage, schema = _inspected_versions(con, db_path)
                    in_file = _inspected_has(con, "runs") and bool(con.execute("SELECT EXISTS (SELECT 1 FROM inspected.runs)").fetchone()[0])
            except duckdb.Error as exc:  # with segments beside it, _attached raised LogDamaged
                raise UserError(f"is not a workbench log (DuckDB cannot open it: {_reason(exc, db_path)})", file=str(db_path)) from None
    elif db_path.exists():
        raise UserError("is a directory, not a log file", file=str(db_path))
    return Glance(storage, schema, in_file or bool(_segment_files(db_path, "runs")), live_writers(db_path))


def _start_draft(db_path: Path, draft: Path) -> None:
    """The next version of the file starts as a copy of the live one in STORAGE_VERSION: a file
    written in another version (by a workbench before this one) is copied table by table."""
    if not db_path.exists():
        return
    if file_versions(db_path)[0] == STORAGE_VERSION:
        try:
            shutil.copyfile(db_path, draft)
        except OSError:
            _remove_draft(draft)
            raise
        return
    suffix = _draft_suffix(draft)
    con = _process_duckdb().cursor()
    try:
        with _attached(con, db_path, f"live_{suffix}", "READ_ONLY"), _attached(con, draft, f"draft_{suffix}", f"STORAGE_VERSION '{STORAGE_VERSION}'"):
            con.execute(f"COPY FROM DATABASE live_{suffix} TO draft_{suffix}")
    finally:
        con.close()


def _remove_draft(draft: Path) -> None:
    for path in (draft, draft.with_name(draft.name + ".wal")):
        path.unlink(missing_ok=True)


def _draft_suffix(draft: Path) -> str:
    """What names a draft's attachments apart from another compaction's (of another log) in the process."""
    return draft.name.rsplit("-", 1)[1]


def compact(db_path: Path, *, threads: int | None = None) -> bool:
    """Fold all landed segments into the DuckDB file, migrated to today's schema and storage
    version; True when the file was rewritten (something folded in, or the file upgraded).

    No process ever opens the live file for writing: the new version is built in a private copy
    and renamed over the old one, so readers (the duckdb CLI included) never meet a write lock,
    and a reader that attached the old version keeps a consistent snapshot of it.

    `threads`: DuckDB's threads for it (default: one per core). One thread spent a sixth less CPU
    and no more time on a run's 12,000 simulated trials: what a run asks, at its end, where
    nothing runs beside it, and for the writer's periodic folds, which run beside the trials.

    A full or read-only disk raises LogFault, a damaged segment or file LogDamaged; the live
    file and the segments stay as they were.
    """
    db_path = Path(db_path)
    with _writes_to(db_path):
        return _compact(db_path, threads)


def _compact(db_path: Path, threads: int | None) -> bool:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _compaction_lock(db_path, blocking=True):
        for stale in db_path.parent.glob(f"{db_path.name}.compact-*"):
            stale.unlink(missing_ok=True)  # left by a killed compaction; we hold the lock
        files = _landed_batches(db_path)
        if db_path.exists() and not any(files.values()) and is_current(db_path):
            return False
        draft = db_path.with_name(f"{db_path.name}.compact-{uuid.uuid4().hex[:8]}")
        _start_draft(db_path, draft)
        alias = f"draft_{_draft_suffix(draft)}"
        con = _process_duckdb().cursor()  # a connection of its own, to the process's DuckDB
        try:
            with _attached(con, draft, alias, f"STORAGE_VERSION '{STORAGE_VERSION}'"):
                con.execute(f"USE {alias}")
                # Settings of the process's DuckDB: they only decide how fast compactions go.
                con.execute(f"SET threads = {int(threads)}" if threads is not None else "RESET threads")
                # The batches go into the file as the transaction commits, not through the write-ahead
                # log first and again at the checkpoint (0.08 s of the 0.6 s that 12,000 trials took):
                # the draft is private, and a killed compaction leaves only a draft the next one deletes.
                con.execute("SET checkpoint_threshold = '1KB'")
                # One transaction for the migrations too: committed one statement at a time, each of
                # a new file's forty or so was a checkpoint of its own.
                con.execute("BEGIN TRANSACTION")
                _migrate(con)
                for name, paths in files.items():
                    table = TABLES[name]
                    cols = ", ".join(c for c, _ in table.columns)
                    # A few batches at a time, in the order they were written: the rows of one
                    # statement are held at once (the build side of its key check), and a long
                    # run's fold may take minutes of batches (1.3 GB of a million-trial run's
                    # peak with all at once). Rows of later chunks meet the earlier ones in the table.
                    for start in range(0, len(paths), FOLD_BATCHES):
                        listed = [str(p) for p in paths[start : start + FOLD_BATCHES]]
                        available = _parquet_columns(con, listed)
                        key_match = _key_match(table, {c for c, _ in table.columns}, available)  # the draft is migrated: it has them all
                        select = _select_list(table, available)
                        # Checked first whether any key is in the table already (seldom): the
                        # check holds the chunk's keys, the anti-join a hash of the whole table's.
                        again = _keys_in_table(con, name, key_match, listed)
                        con.execute(
                            f"INSERT INTO {name} ({cols}) "
                            + _segment_rows(con, table, select, listed, available, f"WHERE NOT EXISTS (SELECT 1 FROM {name} t WHERE {key_match})" if again else ""),
                            [listed],
                        )
                        con.execute("COMMIT")  # the draft is private: its rows need not wait in memory for one commit at the end
                        con.execute("BEGIN TRANSACTION")
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
        except BaseException as exc:
            _remove_draft(draft)  # detached: a refused write's draft would keep the space it took
            if isinstance(exc, duckdb.Error):
                _raise_if_damaged(db_path, [path for paths in files.values() for path in paths])
            raise
        finally:
            con.close()
        os.replace(draft, db_path)
        # Only now: a reader that listed segments before the rename still found them all.
        for paths in files.values():
            for path in paths:
                path.unlink(missing_ok=True)
    return True


def _segment_rows(con: duckdb.DuckDBPyConnection, table: Table, select: str, files: list[str], available: set[str], where: str = "") -> str:
    """SQL for the rows of the segment `files` (given as `?`), one per key, the earliest written:
    the same key twice (two processes that ran one run before runs took a lock) must neither count
    twice nor break compaction on the primary key. Segment names start with the write time.
    Segments seldom repeat a key, so they are checked first on their key columns alone: ranking
    every row by file and position doubled the time to read them (0.07 s of 0.5 s for 12,000
    trials' tables)."""
    source = f"SELECT {select} FROM read_parquet(?, union_by_name=true, filename=true, file_row_number=true) s {where}"
    if not _repeats_keys(con, table, files, available):
        return source
    key = ", ".join(_key_values(table, available, "s."))
    return f"{source} QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY filename, file_row_number) = 1"


def _keys_in_table(con: duckdb.DuckDBPyConnection, name: str, key_match: str, files: list[str]) -> bool:
    """Whether a row of the segment `files` has its key in the table `name` already."""
    sql = f"SELECT EXISTS (SELECT 1 FROM {name} t SEMI JOIN read_parquet(?, union_by_name=true) s ON {key_match})"
    return bool(con.execute(sql, [files]).fetchone()[0])


def _repeats_keys(con: duckdb.DuckDBPyConnection, table: Table, files: list[str], available: set[str]) -> bool:
    """Whether a key occurs twice among the segment `files` (read for their key columns only)."""
    key = ", ".join(_key_values(table, available))
    sql = f"SELECT EXISTS (SELECT 1 FROM read_parquet(?, union_by_name=true) GROUP BY {key} HAVING count(*) > 1)"
    return bool(con.execute(sql, [files]).fetchone()[0])


def connect_reader(db_path: Path, wait_s: float = 30.0) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose tables show the DuckDB file plus all landed segments.

    Segments are copied in at connect time (a snapshot). If a compaction replaced the file while
    the snapshot was taken, some segments may have been folded into the new file and deleted, so
    the snapshot is taken again.
    """
    db_path = Path(db_path)
    while True:
        before = _file_identity(db_path)
        con = _build_reader(db_path, before is not None, wait_s)
        if _file_identity(db_path) == before:
            return con
        con.close()


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def _build_reader(db_path: Path, attach: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    stored: set[str] = set()
    if attach:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                con.execute("ATTACH ? AS log (READ_ONLY)", [str(db_path)])
                break
            except duckdb.Error as exc:
                # Only a writer outside the workbench can hold the file; wait for it a while.
                if not isinstance(exc, duckdb.IOException) or "lock" not in str(exc).lower():
                    con.close()
                    _raise_if_file_damaged(db_path, exc)
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        _check_file_size(con, "log", db_path)
        stored = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'log'").fetchall()}
    for name, table in TABLES.items():
        cols = ", ".join(c for c, _ in table.columns)
        con.execute(f"CREATE TABLE seg_{name} AS SELECT * FROM ({_empty_select(table)}) LIMIT 0")
        _load_segments(con, db_path, name, table)
        shown = table.attempts or name
        if name in stored:
            in_file = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'log' AND table_name = ?", [name]).fetchall()}
            key_match = _key_match(table, in_file, {c for c, _ in table.columns})  # seg_ tables hold every column
            con.execute(
                f"CREATE VIEW {shown} AS SELECT {_select_list(table, in_file)} FROM log.{name} UNION ALL "
                f"SELECT {cols} FROM seg_{name} s WHERE NOT EXISTS (SELECT 1 FROM log.{name} t WHERE {key_match})"
            )
        else:
            con.execute(f"CREATE VIEW {shown} AS SELECT {cols} FROM seg_{name}")
    _latest_attempt_views(con)
    # A calls row counts once its trial row has landed (they are written in that order).
    con.execute("CREATE VIEW calls_landed AS SELECT c.* FROM calls c WHERE c.trial_id IN (SELECT trial_id FROM trials)")
    return con


def _latest_attempt_views(con: duckdb.DuckDBPyConnection) -> None:
    """`trials`, `calls`, `rounds` and `scores`: the rows of each trial's latest attempt, so every
    reader counts a trial once; `trial_attempts` etc. keep every attempt's rows. A log in which no
    trial ran twice (most) shows them as they are, with no filter to apply on every read."""
    retried = con.execute("SELECT EXISTS (SELECT 1 FROM trial_attempts WHERE attempt > 1)").fetchone()[0]
    if retried:  # the trials that ran again, and their latest attempt: a reader's snapshot, like the segments
        con.execute("CREATE TABLE superseded AS SELECT trial_id, max(attempt) AS latest FROM trial_attempts GROUP BY trial_id HAVING latest > 1")
    latest = " WHERE NOT EXISTS (SELECT 1 FROM superseded l WHERE l.trial_id = a.trial_id AND a.attempt < l.latest)" if retried else ""
    for name, table in TABLES.items():
        if table.attempts:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {table.attempts} a{latest}")


def _empty_select(table: Table) -> str:
    return "SELECT " + ", ".join(f"CAST(NULL AS {sql}) AS {name}" for name, sql in table.columns)


def _load_segments(con: duckdb.DuckDBPyConnection, db_path: Path, name: str, table: Table) -> None:
    for _ in range(50):
        files = [str(p) for p in _landed_batches(db_path, (name,))[name]]
        if not files:
            return
        try:
            available = _parquet_columns(con, files)
            con.execute(f"INSERT INTO seg_{name} " + _segment_rows(con, table, _select_list(table, available), files, available), [files])
            return
        except duckdb.Error as exc:
            _raise_if_damaged(db_path, files)
            if not isinstance(exc, duckdb.IOException):
                raise
            # A compaction folded a listed segment in and deleted it: list again (connect_reader
            # notices the replaced file and takes its snapshot again).
            time.sleep(0.05)
    raise RuntimeError(f"could not read the {name} segments of {db_path}")


def query(db_path: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    con = connect_reader(db_path)
    try:
        cursor = con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()
