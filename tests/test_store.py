"""The log under concurrency: compaction in one process while another reads, with the workbench
reader and with plain DuckDB, never blocks the reader and never shows rows disappearing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from workbench.store import connect_reader

BATCHES = 40
ROWS = 25

WRITER = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path
    from workbench.store import SegmentWriter, compact

    db = Path(sys.argv[1])
    writer = SegmentWriter(db)
    for batch in range({batches}):
        trials = [{{"trial_id": f"t{{batch}}-{{i}}", "run_id": "r", "status": "ok", "score": 1.0}} for i in range({rows})]
        writer.write({{"trials": trials}})
        if batch % 2:
            compact(db)
        time.sleep(0.05)  # a sweep writes over time: the readers get to look in between, however fast this machine
    compact(db)
    """
).format(batches=BATCHES, rows=ROWS)


def test_readers_never_meet_a_lock_and_never_lose_rows_during_compaction(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stderr=subprocess.PIPE, text=True)
    via_workbench: list[int] = []
    via_duckdb: list[int] = []
    deadline = time.monotonic() + 300
    while writer.poll() is None and time.monotonic() < deadline:
        con = connect_reader(db, wait_s=0.0)  # no waiting allowed: a lock would raise here
        via_workbench.append(con.execute("SELECT count(*), count(DISTINCT trial_id) FROM trials").fetchone()[0])
        con.close()
        if db.exists():
            plain = duckdb.connect(str(db), read_only=True)  # as the duckdb CLI opens it
            via_duckdb.append(plain.execute("SELECT count(*) FROM trials").fetchone()[0])
            plain.close()
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert len(via_workbench) > 5 and len(via_duckdb) > 2, "the reader loop hardly ran"
    assert via_workbench == sorted(via_workbench), "rows must never disappear for a reader"
    assert via_duckdb == sorted(via_duckdb)
    assert any(0 < n < BATCHES * ROWS for n in via_workbench), "never saw the log mid-way"
    final = duckdb.connect(str(db), read_only=True)
    assert final.execute("SELECT count(*), count(DISTINCT trial_id) FROM trials").fetchone() == (BATCHES * ROWS,) * 2
    assert not list((tmp_path / "log.duckdb.segments" / "trials").glob("*.parquet"))
    assert not list(tmp_path.glob("log.duckdb.compact-*"))


def test_compaction_is_idempotent_when_killed_after_the_rename(tmp_path: Path) -> None:
    """A compaction killed between rename and segment deletion leaves segments that are already
    in the file; the next reader and the next compaction must not count them twice."""
    from workbench.store import SegmentWriter, compact, segments_dir

    db = tmp_path / "log.duckdb"
    writer = SegmentWriter(db)
    writer.write({"trials": [{"trial_id": "t0", "run_id": "r", "status": "ok"}]})  # the first batch makes the file
    writer.write({"trials": [{"trial_id": f"t{i}", "run_id": "r", "status": "ok"} for i in range(1, 10)]})
    kept = {p: p.read_bytes() for p in (segments_dir(db) / "trials").glob("*.parquet")}
    assert compact(db)
    for path, data in kept.items():  # as if the deletion never happened
        path.write_bytes(data)
    con = connect_reader(db)
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == 10
    con.close()
    compact(db)
    assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM trials").fetchone()[0] == 10


def test_duplicate_keys_among_segments_count_once_and_compact(tmp_path: Path) -> None:
    """Two processes that ran one run at once (before runs took a lock) left every trial twice in
    the segments: the reader counts each once, the earliest written, and compaction, which failed
    on the primary key, folds them in and heals the log. Also when the file already holds some."""
    from workbench.store import SegmentWriter, compact

    db = tmp_path / "log.duckdb"
    writer = SegmentWriter(db)
    writer.write({"runs": [{"run_id": "r", "name": "old"}], "trials": [{"trial_id": "t0", "run_id": "r", "status": "ok", "score": 1.0}]})
    assert db.exists() and not compact(db)  # the first batch was folded into a new file at once
    for score, name in ((1.0, "first"), (0.0, "second")):  # the second process's copies
        trials = [{"trial_id": f"t{i}", "run_id": "r", "status": "ok", "score": score} for i in range(10)]
        writer.write({"runs": [{"run_id": "r", "name": name}], "trials": trials})
    con = connect_reader(db)
    assert con.execute("SELECT count(*), count(DISTINCT trial_id), sum(score) FROM trials").fetchone() == (10, 10, 10.0)
    assert con.execute("SELECT name FROM runs").fetchall() == [("old",)]
    con.close()
    assert compact(db)
    final = duckdb.connect(str(db), read_only=True)
    assert final.execute("SELECT count(*), count(DISTINCT trial_id), sum(score) FROM trials").fetchone() == (10, 10, 10.0)
    assert final.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_a_key_of_two_columns_is_kept_once_without_an_index(tmp_path: Path) -> None:
    """The log tables have no primary-key index (migration 7): compaction alone keeps each
    (trial_id, extractor) of `scores` once, against the file and among the segments, and keeps
    rows that share only part of the key."""
    from workbench.store import SegmentWriter, compact

    db = tmp_path / "log.duckdb"
    writer = SegmentWriter(db)
    first = {"trial_id": "t0", "run_id": "r", "extractor": "strict", "score": 1.0}
    writer.write({"scores": [first], "run_events": [{"event_id": "e0", "run_id": "r"}]})  # the first batch makes the file
    again = [{**first, "score": 0.0}, {**first, "extractor": "flexible", "score": 0.5}, {**first, "extractor": "flexible", "score": 0.0}]
    writer.write({"scores": again, "run_events": [{"event_id": "e1", "run_id": "r"}]})
    assert compact(db)
    con = duckdb.connect(str(db), read_only=True)
    assert sorted(con.execute("SELECT extractor, score FROM scores").fetchall()) == [("flexible", 0.5), ("strict", 1.0)]
    con.close()


def test_a_failed_compaction_leaves_no_file_attached_to_the_process_duckdb(tmp_path: Path) -> None:
    """Compactions attach their draft to the process's one DuckDB: one that fails (a damaged
    segment) detaches it too, so the draft file is closed and no attachment piles up."""
    import pytest

    from workbench import store
    from workbench.core.errors import LogDamaged

    db = tmp_path / "log.duckdb"
    writer = store.SegmentWriter(db)
    writer.write({"trials": [{"trial_id": "t0", "run_id": "r", "status": "ok"}]})
    (store.segments_dir(db) / "trials" / "99999999999999999999-damaged.parquet").write_bytes(b"not parquet")
    with pytest.raises(LogDamaged, match="99999999999999999999-damaged.parquet is damaged"):
        store.compact(db)
    attached = {name for (name,) in store._process_duckdb().execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    assert not {name for name in attached if name.startswith(("draft_", "live_", "inspected"))}
