"""`python -m bench`: the JSON a script reads (machine, quick, figures with `met` computed from
value, goal and target), benchmarks missing from the checkout or failing listed rather than
crashing the run, bad flags refused in one line. Speed is the benchmarks' business, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.__main__ import main
from conftest import REPO

FIGURE_KEYS = {"name", "value", "unit", "target", "goal", "met", "baseline", "detail", "benchmark"}

# Benchmark modules that exist only in the test: bench's package path gets their folder, the
# registry their names (as a merge adds bench_scale and bench_ray), and `absent` no module at all.
EXTRA_MODULES = {
    "fake": '''
def run(quick):
    base = {"unit": "s", "baseline": None, "detail": "quick" if quick else "full"}
    return [
        base | {"name": "under, met", "value": 1.5, "target": 2, "goal": "below"},
        base | {"name": "under, missed", "value": 2.0, "target": 2, "goal": "below"},
        base | {"name": "at least, met", "value": 0.95, "target": 0.95, "goal": "at_least", "baseline": 10.0},
        base | {"name": "at least, missed", "value": 0.5, "target": 0.95, "goal": "at_least"},
        base | {"name": "no value", "value": None, "target": 1, "goal": "below"},
    ]
''',
    "boom": "def run(quick):\n    raise RuntimeError('the server went away')\n",
    "needs": "import a_package_nobody_installed  # noqa\n\ndef run(quick):\n    return []\n",
}
WITH_EXTRAS = """
import runpy, sys
import bench
bench.__path__.append(sys.argv.pop(1))
bench.BENCHMARKS.extend(["fake", "boom", "needs", "absent"])
runpy.run_module("bench", run_name="__main__", alter_sys=True)
"""


def _bench(*args: str, extras: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", WITH_EXTRAS, str(extras)] if extras else [sys.executable, "-m", "bench"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def _report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert set(report) == {"machine", "quick", "figures"}
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and machine["cpu_model"] and machine["memory_gib"] > 0
    assert machine["python"] == ".".join(map(str, sys.version_info[:3])) and machine["platform"]
    for entry in report["figures"]:
        assert FIGURE_KEYS <= set(entry)
    return report


@pytest.mark.slow  # 5-30 s by the machine's load (6,000 simulated trials, and twice through a bare loop)
def test_quick_json_of_the_runner_benchmark_states_the_machine_and_computes_met() -> None:
    done = _bench("--quick", "--json", "--only", "runner")
    assert done.returncode == 0, done.stderr
    report = _report(done)
    assert report["quick"] is True
    [entry] = report["figures"]
    assert entry["benchmark"] == "runner" and entry["unit"] == "trials/s" and entry["goal"] == "at_least"
    assert entry["value"] > 0 and entry["baseline"] > 0 and entry["target"] == 5000
    assert entry["met"] is (entry["value"] >= entry["target"])
    assert "6,000 simulated trials" in entry["detail"]


def test_met_follows_value_goal_and_target_and_missing_or_failing_benchmarks_are_listed(tmp_path: Path) -> None:
    for name, source in EXTRA_MODULES.items():
        (tmp_path / f"bench_{name}.py").write_text(source)
    done = _bench("--quick", "--json", *(f"--only={name}" for name in ("fake", "boom", "needs", "absent")), extras=tmp_path)
    assert done.returncode == 1, done.stderr  # a benchmark failed; the others are still reported
    figures = _report(done)["figures"]
    fake = {entry["name"]: entry for entry in figures if entry["benchmark"] == "fake"}
    assert {name: entry["met"] for name, entry in fake.items()} == {
        "under, met": True, "under, missed": False, "at least, met": True, "at least, missed": False, "no value": None,
    }
    assert fake["at least, met"]["baseline"] == 10.0 and fake["under, met"]["detail"] == "quick"
    by_benchmark = {entry["benchmark"]: entry for entry in figures if entry["benchmark"] != "fake"}
    assert by_benchmark["absent"]["detail"] == "not available: bench.bench_absent is not in this checkout"
    assert by_benchmark["needs"]["detail"] == "not available: bench.bench_needs needs a_package_nobody_installed, which is not installed"
    assert by_benchmark["boom"]["detail"].startswith("failed: RuntimeError: the server went away")
    assert all(entry["met"] is None and entry["value"] is None for entry in by_benchmark.values())
    # the table says the same to a reader
    table = _bench("--quick", "--only", "absent", "--only", "fake", extras=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "not available" in table.stdout and "under, missed" in table.stdout


@pytest.mark.parametrize("flags", [["--bogus"], ["--only", "nope"], ["--only"], ["--quick=yes"], ["stray"]])
def test_bad_flags_exit_2_with_one_line(flags: list[str]) -> None:
    done = _bench(*flags, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("python -m bench: ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda word: word not in ("--quick", "--json", "--") and not word.startswith(("--only", "-h", "--help"))), min_size=1, max_size=3))
def test_generated_bad_flags_never_run_a_benchmark(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Whatever the arguments, anything but the known flags exits 2 before a benchmark starts."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "bench:" in err
