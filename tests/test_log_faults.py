"""Faults of the log's disk and files, through the real CLI on the simulated model: a disk that
fills up (a real small tmpfs) while segments are written or while compaction copies the file, a
log directory made read-only mid-run, a truncated Parquet segment, a DuckDB file with a zeroed
header or cut short. Each ends in one line naming the path and what to do, exit code 1, no
traceback; `workbench log check` names the damaged file, `workbench log repair` sets it aside
(nothing deleted), and a resume completes the run exactly: every planned trial once."""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from conftest import run_cli, sim_study, write_study
from workbench import api
from workbench.run import batching, scheduler
from workbench.store import SegmentWriter, query, segments_dir


def _study(path: Path, name: str, n: int, repeats: int = 1, latency_ms: float = 0.0) -> Path:
    study = sim_study(name=name, tasks=[{"task": "ii/sum", "n": n}], repeats=repeats)
    study["models"][0]["simulate"]["latency_ms"] = latency_ms
    return write_study(path / f"{name}.yaml", study)


def _counts(db: Path, name: str) -> tuple[int, int]:
    """A run's trial rows and distinct trials."""
    row = query(db, "SELECT count(*) AS n, count(DISTINCT trial_id) AS d FROM trials t JOIN runs r USING (run_id) WHERE r.name = ?", [name])[0]
    return row["n"], row["d"]


def _fails_in_one_line(result: subprocess.CompletedProcess[str], *said: str) -> str:
    """Exit code 1, no traceback, one error line that says each of `said`."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(errors) == 1, (result.returncode, result.stderr)
    for text in said:
        assert text in errors[0], errors[0]
    return errors[0]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`workbench ARGS` through the CLI's entry point in this process: what a subprocess runs,
    without an interpreter's start-up each time (an uncaught exception fails the test)."""
    from workbench.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "argv", ["workbench", *args]), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _completes(study: Path, db: Path, planned: int) -> None:
    """A run of `study` finishes, and the log then holds each of its planned trials once."""
    result = _cli("run", str(study), "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert _counts(db, study.stem) == (planned, planned)


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _resize(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def _fill(where: Path, leave: int) -> Path:
    """A file that takes the tmpfs's free space but `leave` bytes."""
    filler = where / "filler"
    stat = os.statvfs(where)
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def test_a_disk_that_fills_up_while_segments_are_written_stops_the_run_in_one_line_and_it_resumes_exactly(tmp_path: Path) -> None:
    study = _study(tmp_path, "filling", n=100, repeats=5)  # 1,500 trials: about 400 kB of segments
    with _tmpfs(tmp_path / "disk", "8m") as disk:
        db = disk / "log.duckdb"
        api.run(_study(tmp_path, "small", n=5), db)  # the log's file (1.5 MB)
        _fill(disk, leave=250_000)  # room for the first batch of segments (512 trials at most), not for all
        _fails_in_one_line(run_cli("run", str(study), "--db", str(db), "--json"), str(disk), "No space left on device", "free space", "run the same command again")
        done, distinct = _counts(db, "filling")  # what landed before stays readable
        assert 0 < done == distinct < 1500
        assert not list(disk.glob("*.compact-*")) and not list(disk.glob("*/*/*.tmp"))  # no half-written file keeps space
        _resize(disk, "64m")  # space freed
        _completes(study, db, 1500)


def test_a_disk_that_fills_up_while_compaction_copies_the_file_keeps_the_log_and_it_resumes_exactly(tmp_path: Path) -> None:
    first, second = _study(tmp_path, "first", n=100, repeats=2), _study(tmp_path, "second", n=20)
    with _tmpfs(tmp_path / "disk", "7m") as disk:
        db = disk / "log.duckdb"
        api.run(first, db)
        # Room for the second run's segments, not for compaction's copy of the file.
        assert db.stat().st_size > 1_000_000
        filler = _fill(disk, leave=600_000)
        _fails_in_one_line(run_cli("run", str(second), "--db", str(db), "--json"), str(disk), "No space left on device")
        assert list((segments_dir(db) / "trials").glob("*.parquet"))  # its trials landed; their fold failed
        assert not list(disk.glob("*.compact-*"))  # the draft is gone: its space is free again
        assert _counts(db, "first") == (600, 600)
        filler.unlink()
        _completes(second, db, 60)
        assert not list((segments_dir(db) / "trials").glob("*.parquet"))  # folded in now
        assert _counts(db, "first") == (600, 600)


def _without_root_overrides() -> None:
    """In the child: root, but bound by file permissions as any user is (no CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH), so a directory made read-only by chmod stops its writes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP: gone from the program exec'd next


def test_a_log_directory_made_read_only_mid_run_stops_it_in_one_line_and_it_resumes_exactly(tmp_path: Path) -> None:
    # A read-only remount is refused while the run holds its lock files open for writing ("busy"),
    # so the directory is made read-only by its permissions, which bind a root without overrides.
    study = _study(tmp_path, "readonly", n=50, repeats=2, latency_ms=20.0)
    logs = tmp_path / "logs"
    logs.mkdir()
    db = logs / "log.duckdb"
    runner = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(study), "--db", str(db), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, preexec_fn=_without_root_overrides,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((segments_dir(db) / "trials").glob("*.parquet")) and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for path in [logs, *logs.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        stdout, stderr = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGKILL)
            runner.wait()
    _fails_in_one_line(subprocess.CompletedProcess(runner.args, runner.returncode, stdout, stderr), str(logs), "Permission denied", "make it writable")
    done, distinct = _counts(db, "readonly")  # readable as it stands
    assert 0 < done == distinct < 300
    for path in [logs, *logs.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    _completes(study, db, 300)


def test_a_log_on_a_read_only_mount_is_refused_in_one_line(tmp_path: Path) -> None:
    study = _study(tmp_path, "mounted", n=10)
    with _tmpfs(tmp_path / "disk", "8m") as disk:
        db = disk / "log.duckdb"
        api.run(study, db)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        more = _study(tmp_path, "more", n=10)
        _fails_in_one_line(run_cli("run", str(more), "--db", str(db), "--json"), str(disk), "Read-only file system", "make it writable")
        assert _counts(db, "mounted") == (30, 30)
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        _completes(more, db, 30)


# -- damaged files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A log whose DuckDB file holds run `kept` (60 trials) and whose segments hold run `pending`
    (60 trials, in batches of 10: as a run still being written, or killed, leaves them)."""
    root = tmp_path_factory.mktemp("two_runs")
    kept, pending = _study(root, "kept", n=20), _study(root, "pending", n=20)
    db = root / "log.duckdb"
    api.run(kept, db)
    with mock.patch.object(scheduler, "compact", lambda *a, **k: False), mock.patch.object(SegmentWriter, "_compact", lambda self: None), \
            mock.patch.object(batching, "FLUSH_EVERY_TRIALS", 10):
        api.run(pending, db)
    assert len(list((segments_dir(db) / "trials").glob("*.parquet"))) >= 2
    return kept, pending, db


def quarantine_dir(db: Path) -> Path:
    """Where `log repair` sets damaged files aside: beside the log."""
    return db.with_name(db.name + ".quarantine")


def _copy_log(db: Path, into: Path) -> Path:
    into.mkdir()
    shutil.copyfile(db, into / db.name)
    shutil.copytree(segments_dir(db), segments_dir(into / db.name))
    return into / db.name


def _commands(kept: Path, db: Path) -> list[tuple[str, ...]]:
    """Commands that read the whole log: each names the damaged file."""
    return [("runs", "list", "--db", str(db)), ("compare", "--db", str(db), "--run", _run_id(kept)), ("run", str(kept), "--db", str(db), "--json")]


def _run_id(study: Path) -> str:
    return api.plan(study, "/nonexistent/log.duckdb").run_id


def test_a_truncated_segment_is_named_then_set_aside_and_the_run_resumes_exactly(two_runs: Any, tmp_path: Path) -> None:
    kept, pending, original = two_runs
    db = _copy_log(original, tmp_path / "log")
    segment = sorted((segments_dir(db) / "trials").glob("*.parquet"))[0]
    segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])
    damaged = segment.read_bytes()
    _fails_in_one_line(run_cli("runs", "list", "--db", str(db)), str(segment), "damaged", "workbench log repair")
    for command in [*_commands(kept, db), ("run", str(pending), "--db", str(db), "--json")]:
        _fails_in_one_line(_cli(*command), str(segment), "damaged", "workbench log repair")

    check = _cli("log", "check", "--db", str(db))
    assert check.returncode == 1 and str(segment) in check.stdout
    repair = _cli("log", "repair", "--db", str(db), "--json")
    assert repair.returncode == 0, repair.stderr
    shelved = [Path(m["to"]) for m in json.loads(repair.stdout)["moved"]]
    assert shelved[0].name == segment.name and shelved[0].read_bytes() == damaged  # set aside as it was
    assert all(quarantine_dir(db) in p.parents for p in shelved) and not segment.exists()
    assert {p.parent.name for p in shelved} == {"trials", "calls", "scores"}  # its batch's rows went with it
    assert _cli("log", "check", "--db", str(db)).returncode == 0
    assert _counts(db, "kept") == (60, 60) and 0 < _counts(db, "pending")[0] < 60
    _completes(pending, db, 60)


@pytest.mark.parametrize("damage", ["zeroed header", "truncated"])
def test_a_damaged_duckdb_file_is_named_then_rebuilt_from_the_segments_and_runs_complete_exactly(two_runs: Any, tmp_path: Path, damage: str) -> None:
    kept, pending, original = two_runs
    db = _copy_log(original, tmp_path / "log")
    with open(db, "r+b") as handle:
        if damage == "zeroed header":
            handle.write(b"\0" * 4096)
        else:
            handle.truncate(db.stat().st_size // 2)
    _fails_in_one_line(run_cli("runs", "list", "--db", str(db)), str(db), "damaged", "workbench log repair")
    for command in [*_commands(kept, db), ("run", "--fresh", str(kept), "--db", str(db), "--json")]:
        _fails_in_one_line(_cli(*command), str(db), "damaged", "workbench log repair")

    check = _cli("log", "check", "--db", str(db))
    assert check.returncode == 1 and f"damaged: {db}:" in check.stdout
    repair = _cli("log", "repair", "--db", str(db))
    assert repair.returncode == 0 and "lost: the rows of" in repair.stdout, repair.stdout + repair.stderr  # what was lost is said
    assert [p.name for p in quarantine_dir(db).glob("*/*")] == [db.name]  # the damaged file, kept
    assert _cli("log", "check", "--db", str(db)).returncode == 0
    assert _counts(db, "pending") == (60, 60)  # the segments' run is whole
    _completes(kept, db, 60)  # the file's run, lost with it, runs again


def test_a_damaged_block_met_in_a_query_is_one_line_and_log_check_names_its_file(two_runs: Any, tmp_path: Path) -> None:
    """A file that opens and whose damage only a query meets (a block's checksum): one line that
    sends to `log check`, which names the file; repaired, the runs complete exactly."""
    kept, pending, original = two_runs
    db = _copy_log(original, tmp_path / "log")
    headers, block = 3 * 4096, 256 * 1024  # DuckDB's file headers, then its blocks
    with open(db, "r+b") as handle:
        handle.seek(headers + block)
        handle.write(b"\xff" * (db.stat().st_size - headers - block))
    _fails_in_one_line(run_cli("runs", "list", "--db", str(db)), "damaged", "workbench log")
    _fails_in_one_line(_cli("compare", "--db", str(db), "--run", _run_id(kept)), "damaged", "workbench log")
    check = _cli("log", "check", "--db", str(db))
    assert check.returncode == 1 and f"damaged: {db}:" in check.stdout
    assert _cli("log", "repair", "--db", str(db)).returncode == 0
    assert _counts(db, "pending") == (60, 60)
    _completes(kept, db, 60)
