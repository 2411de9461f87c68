"""Bad values and CLI faults (issue 13): seeds past 64 bits, names with `/`, NUL, ESC or 250
characters, a billion repeats, `--db` naming what is not a log, and an interrupt during start-up
or compaction. Each ends in one line naming the file and the field, exit code 2 (130 for an
interrupt, with the resume hint), no traceback and nothing written."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli, run_json, sim_study, write_study
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from workbench.api import load_study
from workbench.cli.app import main as cli_main
from workbench.core.errors import UserError
from workbench.core.pauses import PAUSE_ENV
from workbench.core.schema import SEED_MAX, SEED_MIN
from workbench.core.text import NAME_MAX
from workbench.export import latex_escape, markdown_escape
from workbench.study.spec import MAX_TRIALS
from workbench.study.sweep import MAX_SWEEP_CONDITIONS
from workbench.store import run_lock_name


MEMORY_CAP = 6 * 2**30  # address space of a CLI process refusing a bad study: a run this small needs far less


def _small(**changes: Any) -> dict[str, Any]:
    """A 3-trial study on the simulated model (1 model x 3 conditions x 1 example x 1 repeat)."""
    return sim_study(**{"tasks": [{"task": "ii/sum", "n": 1}], **changes})


def _bounded_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`workbench ARGS` in a subprocess whose memory is capped: where a bad value is not refused
    (a billion repeats expanded), it fails in seconds rather than filling the machine."""
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP)),
    )


def _refused(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    message = result.stderr.strip()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert "\x1b" not in result.stderr and "\x00" not in result.stderr, message
    for part in parts:
        assert part in message, message
    return message


def _cli(*args: str) -> tuple[int, str]:
    """`workbench ARGS` in this process (the real entry point, its error handling included):
    fast enough for hypothesis to try many values. Returns the exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as ended:
        sys.argv = ["workbench", *args]
        cli_main()
    return ended.value.code or 0, err.getvalue()


def _refused_in_process(study: dict[str, Any], field: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_study(Path(tmp) / "study.yaml", study)
        assume(yaml.safe_load(path.read_text()) == study)  # a value YAML cannot hold is not this test's
        code, err = _cli("run", str(path), "--db", str(Path(tmp) / "runs" / "log.duckdb"))
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert f"{path}: {field}" in err, err
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in err.strip()), repr(err)
        assert not (Path(tmp) / "runs").exists(), "nothing is written"


# -- study values --------------------------------------------------------------------------

HAND_CASES = {
    "seed past 64 bits": (_small(seed=2**63), "seed", f"from {SEED_MIN} to {SEED_MAX}"),
    "seed below 64 bits": (_small(seed=-(2**63) - 1), "seed", f"from {SEED_MIN} to {SEED_MAX}"),
    "task seed past 64 bits": (_small(tasks=[{"task": "ii/sum", "n": 1, "seed": 2**64}]), "tasks[0].seed", "signed 64-bit"),
    "name with NUL": (_small(name="a\x00b"), "name", "printable"),
    "name of 250 characters": (_small(name="x" * 250), "name", f"1 to {NAME_MAX} printable characters"),
    "name with ESC": (_small(name="red\x1b[31mtext"), "name", "no control characters"),
    "model id with ESC": (_small(models=[{"id": "sim/\x1b]0;owned\x07"}]), "models[0].id", "printable"),
    "stimulus id with ESC": (_small(conditions=[{"name": "control"}, {"name": "x", "stimuli": ["EP\x1b02"]}]), "conditions[1].stimuli[0]", "printable"),
    "a billion repeats": (_small(repeats=1_000_000_000), "repeats", f"at most {MAX_TRIALS:,}"),
    # 10^12 conditions from three lists: refused from its factors before any condition is built
    "a sweep grid of a trillion conditions": (
        {k: v for k, v in _small(sweep={"stimuli": ["EP01"], "params": {k: list(range(10_000)) for k in "abc"}}).items() if k != "conditions"},
        "sweep.params.a", f"at most {MAX_SWEEP_CONDITIONS:,}"),
}


@pytest.mark.parametrize("case", list(HAND_CASES))
def test_a_bad_study_value_ends_in_one_line_naming_file_and_field(tmp_path: Path, case: str) -> None:
    study, field, allowed = HAND_CASES[case]
    path = write_study(tmp_path / "study.yaml", study)
    started = time.monotonic()
    result = _bounded_cli("run", str(path), "--db", str(tmp_path / "runs" / "log.duckdb"))
    message = _refused(result, f"{path}: {field}: ", allowed)
    assert "\x1b" not in message and time.monotonic() - started < 30
    assert not (tmp_path / "runs").exists(), "nothing is written"


def test_a_billion_repeats_are_refused_by_plan_too_before_any_trial_is_made(tmp_path: Path) -> None:
    path = write_study(tmp_path / "study.yaml", _small(repeats=1_000_000_000))
    _refused(_bounded_cli("plan", str(path), "--db", str(tmp_path / "log.duckdb")), "3,000,000,000 trials", "repeats")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.one_of(st.integers(min_value=SEED_MAX + 1), st.integers(max_value=SEED_MIN - 1)), where=st.sampled_from(["seed", "tasks[0].seed"]))
def test_any_seed_outside_64_bits_is_refused(seed: int, where: str) -> None:
    study = _small(seed=seed) if where == "seed" else _small(tasks=[{"task": "ii/sum", "n": 1, "seed": seed}])
    _refused_in_process(study, where)


def _unprintable_name() -> st.SearchStrategy[str]:
    """A name no study may give: one with a control, format or line-separator character, or longer than NAME_MAX."""
    bad = st.characters(categories=["Cc", "Cf", "Zl", "Zp"])
    return st.one_of(
        st.tuples(st.text(max_size=20), bad, st.text(max_size=20)).map("".join),
        st.text(st.characters(categories=["L", "N", "P"]), min_size=NAME_MAX + 1, max_size=NAME_MAX + 300),
    )


NAMED_FIELDS = {
    "name": lambda name: _small(name=name),
    "models[0].id": lambda name: _small(models=[{"id": name}]),
    "tasks[0].task": lambda name: _small(tasks=[{"task": name, "n": 1}]),
    "conditions[1].stimuli[0]": lambda name: _small(conditions=[{"name": "control"}, {"name": "x", "stimuli": [name]}]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(name=_unprintable_name(), field=st.sampled_from(sorted(NAMED_FIELDS)))
def test_any_unprintable_or_overlong_name_is_refused_at_load(name: str, field: str) -> None:
    _refused_in_process(NAMED_FIELDS[field](name), field)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repeats=st.integers(min_value=MAX_TRIALS // 3 + 1, max_value=10**18))
def test_any_repeats_past_the_trial_cap_are_refused_when_the_study_loads(repeats: int) -> None:
    """Refused when the study loads, before a run would expand every trial and fill memory."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_study(Path(tmp) / "study.yaml", _small(repeats=repeats))
        with pytest.raises(UserError) as refused:
            load_study(path)
    assert (refused.value.file, refused.value.field) == (str(path), "repeats") and f"at most {MAX_TRIALS:,}" in refused.value.detail


def test_a_name_with_a_slash_and_200_characters_runs_and_names_no_file(tmp_path: Path) -> None:
    """A name is the user's text: it may hold `/` and be long; the run-lock file is named by a
    digest of the run id, so the name never reaches the file system."""
    name = ("a/b " * 50)[:NAME_MAX]
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "study.yaml", _small(name=name))), "--db", str(db), timeout=120)
    assert result["trials_done"] == 3 and result["run_id"].startswith(name)
    lock = run_lock_name(db, result["run_id"])
    assert "/" not in lock and name not in lock and len(lock) < len(db.name) + 40


@given(text=st.text())
def test_latex_and_markdown_exports_hold_no_control_characters(text: str) -> None:
    """pdflatex stops at a raw ESC or NUL; a terminal runs one a Markdown file shows."""
    for escaped in (latex_escape(text), markdown_escape(text)):
        assert not [ch for ch in escaped if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\t"], repr(escaped)
    assert latex_escape("a\x1bb") == r"a\textbackslash{}x1bb"


def test_an_error_message_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    missing = tmp_path / "study\x1b[2J.yaml"
    message = _refused(run_cli("run", str(missing), "--db", str(tmp_path / "log.duckdb"), timeout=60), "cannot read the file")
    assert "study\\x1b[2J.yaml" in message


# -- --db that is not a log ------------------------------------------------------------------


def _not_a_log(tmp_path: Path, kind: str) -> Path:
    made = {
        "a text file": lambda p: p.write_text("my notes, not a log\n"),
        "an empty file": lambda p: p.write_bytes(b""),
        "a pipe": lambda p: os.mkfifo(p),
        "a directory where the log would be": lambda p: (p / "workbench.duckdb").mkdir(parents=True),
    }
    if kind == "/dev/null":
        return Path("/dev/null")
    path = tmp_path / "given"
    made[kind](path)
    return path


@pytest.mark.parametrize("command", ["run", "runs list"])
@pytest.mark.parametrize("kind", ["a text file", "an empty file", "a pipe", "/dev/null", "a directory where the log would be"])
def test_a_db_that_is_not_a_duckdb_log_is_refused_and_left_unchanged(tmp_path: Path, kind: str, command: str) -> None:
    db = _not_a_log(tmp_path, kind)
    before = db.read_bytes() if db.is_file() else None
    study = [str(write_study(tmp_path / "study.yaml", _small()))] if command == "run" else []
    _refused(run_cli(*command.split(), *study, "--db", str(db), timeout=60), "--db: ", "name a DuckDB log, a new file or a directory")
    if before is not None:
        assert db.read_bytes() == before, "the file is not overwritten"
    assert not list(db.parent.glob(f"{db.name}.*")) or kind == "/dev/null", "no segments, lock or draft beside it"


# -- interrupts ----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["startup", "compaction"])
def test_an_interrupt_during_start_up_or_compaction_prints_the_resume_hint_and_exits_130(tmp_path: Path, point: str) -> None:
    """A real SIGINT, sent while the run is held at the point (core/pauses.py), then a resume
    that completes every trial."""
    path = write_study(tmp_path / "study.yaml", _small())
    db = tmp_path / "log.duckdb"
    marker = tmp_path / "reached"
    env = {**os.environ, PAUSE_ENV: f"{point}:{marker}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(path), "--db", str(db), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None and time.monotonic() < deadline, f"the run never reached {point}"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    run_id = err.strip().splitlines()[-1].rpartition(" ")[2]
    assert err.strip().splitlines()[-1] == f"interrupted: run the same command again to resume {run_id}"
    resumed = run_json("run", str(path), "--db", str(db), timeout=120)
    assert resumed["run_id"] == run_id and resumed["trials_done"] == resumed["trials_planned"] == 3
