"""Migrations frozen as written: logs written by older code (kept as fixtures, made with that
code: see tests/data/*/log_study.yaml) become today's schema exactly, the same tables, columns,
types and order as a log created new, in today's storage version, and their rows still read."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import run_cli, run_json
from workbench.store import MIGRATIONS, SCHEMA_VERSION, STORAGE_VERSION, TABLES, SegmentWriter, compact, file_versions, segments_dir

DATA = Path(__file__).parent / "data"
FIXTURES = {"pre_engine": (DATA / "pre_engine" / "log.duckdb.gz", 5, 9), "schema_v1": (DATA / "schema_v1" / "log.duckdb.gz", 1, 6)}


def _unpack(name: str, tmp_path: Path) -> Path:
    packed = FIXTURES[name][0]
    db = tmp_path / name / "log.duckdb"
    db.parent.mkdir(parents=True)
    with gzip.open(packed, "rb") as source, open(db, "wb") as target:
        shutil.copyfileobj(source, target)
    return db


def _schema(db: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT table_name, column_index, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY table_name, column_index"
        ).fetchall()
    finally:
        con.close()


def _keys(db: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
            "AND database_name = current_database() ORDER BY table_name"
        ).fetchall()
        return [(t, tuple(c)) for t, c in rows]
    finally:
        con.close()


@pytest.fixture(scope="module")
def new_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("new") / "log.duckdb"
    SegmentWriter(db).write({"runs": [{"run_id": "r"}]})  # a new log's first batch makes the file
    return db


def test_a_new_log_has_the_tables_the_code_writes(new_log: Path) -> None:
    schema = _schema(new_log)
    for name, table in TABLES.items():
        assert [(c, t) for tn, _, c, t, _ in schema if tn == name] == list(table.columns), name
    # No index on the log tables (migration 7): compaction keeps one row per key (tests/test_store.py).
    assert _keys(new_log) == [("schema_migrations", ("version",))]
    assert file_versions(new_log) == (STORAGE_VERSION, SCHEMA_VERSION)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_an_old_log_is_migrated_to_todays_schema_exactly(name: str, tmp_path: Path, new_log: Path) -> None:
    db = _unpack(name, tmp_path)
    storage, schema = file_versions(db)
    assert schema == FIXTURES[name][1] and storage != STORAGE_VERSION, "the fixture is the old code's file"
    assert compact(db), "a log behind today's schema or storage version is upgraded by the next compaction"
    assert _schema(db) == _schema(new_log)
    assert _keys(db) == _keys(new_log)
    assert file_versions(db) == (STORAGE_VERSION, SCHEMA_VERSION)
    con = duckdb.connect(str(db), read_only=True)
    assert [v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()] == [v for v, _, _ in MIGRATIONS]
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == FIXTURES[name][2]
    con.close()
    assert not compact(db), "an upgraded log is not rewritten again"


@pytest.mark.parametrize("name", sorted(FIXTURES))
@pytest.mark.parametrize("upgraded", [False, True])
def test_an_old_logs_rows_still_read(name: str, upgraded: bool, tmp_path: Path) -> None:
    db = _unpack(name, tmp_path)
    if upgraded:
        compact(db)
    runs = run_json("runs", "list", "--db", str(db))
    run_id = (runs["runs"] if isinstance(runs, dict) else runs)[0]["run_id"]
    listed = run_cli("trials", run_id, "--db", str(db))
    assert listed.returncode == 0 and "EP02" in listed.stdout, listed.stderr
    compared = run_json("compare", "--db", str(db), "--run", run_id)
    assert {r["condition"] for r in compared["rows"]} >= {"control", "EP02"}
    assert compared["trials_done"] == sum(r["n"] for r in compared["rows"]) == FIXTURES[name][2]


def test_migrations_do_what_they_did_when_the_tables_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a migration does must not change when a later version adds a column or a table."""
    from workbench import store

    def migrated() -> list[tuple[Any, ...]]:
        con = duckdb.connect(":memory:")
        store._migrate(con)
        return con.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() ORDER BY table_name, column_index").fetchall()

    before = migrated()
    trials = TABLES["trials"]
    grown = {**TABLES, "trials": store.Table("trials", trials.key, (*trials.columns, ("added_later", "VARCHAR"))),
             "later": store.Table("later", ("id",), (("id", "VARCHAR"),))}
    monkeypatch.setattr(store, "TABLES", grown)
    assert migrated() == before


def _made_new(baseline: bool) -> tuple[list[tuple[Any, ...]], ...]:
    from workbench import store

    con = duckdb.connect(":memory:")
    store._migrate(con, baseline=baseline)
    return (
        con.execute("SELECT table_name, column_index, column_name, data_type, is_nullable, column_default FROM duckdb_columns() ORDER BY ALL").fetchall(),
        con.execute("SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() ORDER BY ALL").fetchall(),
        con.execute("SELECT table_name, index_name FROM duckdb_indexes() ORDER BY ALL").fetchall(),
        con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall(),
    )


def test_a_new_log_starts_at_the_baseline_that_replaying_every_migration_gives() -> None:
    """A new log is made by one script; it must equal what migrations 1 onwards make of an empty file."""
    made = _made_new(baseline=True)
    assert made == _made_new(baseline=False)
    assert made[3] == [(v,) for v, _, _ in MIGRATIONS]


def test_a_run_on_an_old_log_adds_its_rows_to_the_upgraded_file(tmp_path: Path) -> None:
    db = _unpack("pre_engine", tmp_path)
    SegmentWriter(db).write({"trials": [{"trial_id": "new-1", "run_id": "new", "status": "ok", "score": 1.0}]})
    assert list((segments_dir(db) / "trials").glob("*.parquet")), "the file exists, so the batch waits in a segment"
    assert compact(db)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == FIXTURES["pre_engine"][2] + 1
    con.close()
