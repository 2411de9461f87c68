"""Compaction beside a writer of another process: it folds in whole batches only, so no trial's
calls are left behind, and a writer's unfinished batch is dropped only once the writer is dead."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from workbench.store import SegmentWriter, compact, segments_dir

BATCHES = 300
TRIALS = 4  # per batch, each with CALLS calls
CALLS = 2

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from workbench.store import SegmentWriter

    db = Path(sys.argv[1])
    writer = SegmentWriter(db)
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
    assert int(folds) > 3, "the compactor hardly ran beside the writer"
    compact(db)
    SegmentWriter(db)  # a later run's writer: it must find no orphan to delete, nor delete a landed batch
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
