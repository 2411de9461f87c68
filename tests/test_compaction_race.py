"""Compaction beside a writer of another process: it folds in whole batches only, so no trial's
calls are left behind, and a writer's unfinished batch is dropped only once the writer is dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.store import SegmentWriter, compact, connect_reader, segments_dir

BATCHES = 200
TRIALS = 4  # per batch, each with CALLS calls
CALLS = 2

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from workbench.store import SegmentWriter

    db = Path(sys.argv[1])
    with SegmentWriter(db) as writer:
        for batch in range({batches}):
            trials = [{{"trial_id": f"t{{batch}}-{{i}}", "run_id": "r", "status": "ok"}} for i in range({trials})]
            calls = [{{"call_id": f"{{t['trial_id']}}:{{c}}", "trial_id": t["trial_id"], "run_id": "r", "call_index": c}}
                     for t in trials for c in range({calls})]
            writer.write({{"calls": calls, "trials": trials}})
    """
).format(batches=BATCHES, trials=TRIALS, calls=CALLS)

# Compacts in a loop; it lists the calls directory slowly (a compactor descheduled there), so
# batches keep landing while it lists the segments.
COMPACTOR = textwrap.dedent(
    """
    import pathlib
    import sys
    import time
    from pathlib import Path
    from workbench.store import compact

    listing = pathlib.Path.glob

    def slow_glob(self, pattern, *args, **kwargs):
        found = list(listing(self, pattern, *args, **kwargs))
        if self.name == "calls":
            time.sleep(0.02)
        return iter(found)

    pathlib.Path.glob = slow_glob

    db, done = Path(sys.argv[1]), Path(sys.argv[2])
    folds = 0
    print("ready", flush=True)
    while not done.exists():
        folds += compact(db, threads=1)
    print(folds)
    """
)


def test_a_compaction_in_another_process_never_leaves_a_trial_without_its_calls(tmp_path: Path) -> None:
    db, done = tmp_path / "log.duckdb", tmp_path / "writer-done"
    compactor = subprocess.Popen([sys.executable, "-c", COMPACTOR, str(db), str(done)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert compactor.stdout is not None and compactor.stdout.readline().strip() == "ready"
    writer = subprocess.run([sys.executable, "-c", WRITER, str(db)], capture_output=True, text=True, timeout=120)
    done.touch()
    folds, err = compactor.communicate(timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert compactor.returncode == 0, err
    assert int(folds) > 1, "the compactor hardly ran beside the writer"
    compact(db)
    SegmentWriter(db).close()  # a later run's writer: it must find no orphan to delete, nor delete a landed batch
    compact(db)
    con = duckdb.connect(str(db), read_only=True)
    trials = BATCHES * TRIALS
    assert con.execute("SELECT count(*), count(DISTINCT trial_id) FROM trials").fetchone() == (trials, trials)
    assert con.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() == (trials * CALLS, trials * CALLS)
    without_calls = con.execute(
        f"SELECT count(*) FROM trials t WHERE (SELECT count(*) FROM calls c WHERE c.trial_id = t.trial_id) <> {CALLS}"
    ).fetchone()[0]
    con.close()
    assert without_calls == 0, f"{without_calls} of {trials} trials lost calls rows"
    assert not list(segments_dir(db).glob("*/*.parquet")), "every batch was folded in"
    assert not list((segments_dir(db) / "writers").iterdir()), "closed writers leave no lock"


# A writer that stops between its batch's calls file and its trials file (a paused or killed
# process), until a line arrives on its stdin.
PAUSED_WRITER = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path
    from workbench import store

    landing = os.replace

    def replace(source, target):
        if Path(target).parent.name == "trials":
            print("paused", flush=True)
            sys.stdin.readline()
        landing(source, target)

    store.os.replace = replace
    writer = store.SegmentWriter(Path(sys.argv[1]))
    trial = sys.argv[2]
    writer.write({"calls": [{"call_id": trial + ":0", "trial_id": trial, "run_id": "r"}], "trials": [{"trial_id": trial, "run_id": "r"}]}, fold=False)
    writer.close()
    """
)


def _paused_writer(db: Path, trial: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", PAUSED_WRITER, str(db), trial], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "paused"
    return process


def _calls_files(db: Path) -> list[Path]:
    return sorted((segments_dir(db) / "calls").glob("*.parquet"))


def test_an_unfinished_batch_is_dropped_only_once_its_writer_is_dead(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    SegmentWriter(db).write({"runs": [{"run_id": "r"}]})  # the file is there
    paused, killed = _paused_writer(db, "slow"), _paused_writer(db, "dead")
    long_ago = time.time() - 3600
    for path in _calls_files(db):  # however old: a live writer's batch is not an orphan
        os.utime(path, (long_ago, long_ago))
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    with SegmentWriter(db):  # a later run's writer drops the dead writer's calls only
        pass
    assert [pq.read_table(p).column("trial_id").to_pylist() for p in _calls_files(db)] == [["slow"]]
    assert compact(db) is False, "nothing of the unfinished batch is folded in"
    paused.communicate("go\n", timeout=30)
    assert paused.returncode == 0
    assert compact(db)
    con = connect_reader(db)
    assert con.execute("SELECT trial_id FROM trials").fetchall() == [("slow",)]
    assert con.execute("SELECT trial_id FROM calls").fetchall() == [("slow",)]
    con.close()
    with SegmentWriter(db):
        pass
    assert not list((segments_dir(db) / "writers").iterdir()), "a dead writer's lock is cleared away, a closed one's at once"


def test_a_batch_whose_write_failed_is_dropped_by_the_next_writer(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    with SegmentWriter(db) as writer, pytest.raises(pa.ArrowTypeError):
        # its calls land, its trials cannot be written (a trial_id that is not text)
        writer.write({"calls": [{"call_id": "x:0", "trial_id": "x", "run_id": "r"}], "trials": [{"trial_id": 1.5}]}, fold=False)
    assert len(_calls_files(db)) == 1, "the closed writer keeps its lock file, for the cleanup"
    SegmentWriter(db).close()
    assert _calls_files(db) == []
    assert not list((segments_dir(db) / "writers").iterdir())
