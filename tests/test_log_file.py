"""The log as other tools see it: the duckdb CLI from PyPI (duckdb-cli, a DuckDB before 2.0)
opens a log during a run, from the first flush on, and after it, and reads its trials."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import sim_study, write_study
from workbench.store import STORAGE_VERSION, file_versions

DUCKDB_CLI = Path(sys.executable).with_name("duckdb")  # installed by the dev extra (duckdb-cli)


def _cli_count(db: Path) -> tuple[int, str]:
    """Trials the duckdb CLI reads in the file, as a user would: `duckdb -readonly FILE -c SQL`."""
    assert DUCKDB_CLI.exists(), "the duckdb CLI is missing: pip install -e '.[dev]' (duckdb-cli)"
    done = subprocess.run([str(DUCKDB_CLI), "-readonly", str(db), "-csv", "-noheader", "-c", "SELECT count(*) FROM trials"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip()), subprocess.run([str(DUCKDB_CLI), "--version"], capture_output=True, text=True).stdout


@pytest.mark.slow
def test_the_duckdb_cli_reads_a_log_during_a_run_and_after_it(tmp_path: Path) -> None:
    # 40 trials one at a time, 300 ms each: the run lasts ~12 s, and its writer compacts every 5 s
    model = {"id": "sim/slow", "simulate": {"default_accuracy": 0.5, "latency_ms": 300}}
    path = write_study(tmp_path / "s.yaml", sim_study(models=[model], conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
                                                      concurrency=1, tasks=[{"task": "ii/sum", "n": 20}]))
    db = tmp_path / "log.duckdb"
    run = subprocess.Popen([sys.executable, "-m", "workbench.cli", "run", str(path), "--db", str(db)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not db.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first, version = _cli_count(db)  # the file is there from the first flush on, and opens
    during = first
    while during == 0 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        during, _ = _cli_count(db)
    assert run.poll() is None, "the run ended before the CLI read its trials: make the run longer"
    assert 1 <= during < 40, "trials are in the file while the run goes on"
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    after, _ = _cli_count(db)
    assert after == 40
    assert version.startswith("v1.") and file_versions(db)[0] == STORAGE_VERSION
