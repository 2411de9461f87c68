"""Log scale: a run of many trials on the simulated model (2 conditions x 10,000 examples x
repeats, concurrency 8) written through the full runner, then `compare` over its log. Each is
measured in its own process, so its peak memory (ru_maxrss) is its own: the run's peak must stay
under 1 GiB (trials are expanded and scheduled as a stream, the cache looked up per batch) and
`compare` under 1 s (aggregated in DuckDB).

    python bench/bench_scale.py [--quick]     # quick: 100,000 trials; full: 1,000,000

`run(quick)` returns the figures as `python -m bench` reads them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

EXAMPLES = 10_000
CONDITIONS = 2
GIB = 1024**3

_STUDY = {
    "name": "scale",
    "models": [{"id": "sim/scale", "simulate": {"accuracy": {"control": 0.5, "EP02": 0.6}}}],
    "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
    "tasks": [{"task": "ii/sum", "n": EXAMPLES}],
    "concurrency": 8,
}

# Each child prints one JSON line: its seconds and its peak resident memory (ru_maxrss, KiB on Linux).
_RUN = """
import json, resource, sys, time
from pathlib import Path
from workbench.study.spec import StudySpec, resolve_study
from workbench.run.scheduler import run_study
spec = json.loads(sys.argv[1])
study = resolve_study(StudySpec.model_validate(spec), "scale")
start = time.perf_counter()
summary = run_study(study, Path(sys.argv[2]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "trials": summary.trials_done, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_COMPARE = """
import json, resource, sys, time
import workbench.api as api
import workbench.stats, workbench.reports  # imported before the clock starts, as a warm CLI has
start = time.perf_counter()
result = api.compare(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(result.table.rows), "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(trials: int, workdir: Path) -> dict[str, Any]:
    """Run `trials` trials into a fresh log under `workdir`, then compare over it."""
    repeats = max(1, trials // (EXAMPLES * CONDITIONS))
    db = workdir / "scale.duckdb"
    ran = _child(_RUN, json.dumps({**_STUDY, "repeats": repeats}), str(db))
    compared = _child(_COMPARE, str(db))
    log_bytes = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
    return {"run": ran, "compare": compared, "log_bytes": log_bytes}


def run(quick: bool) -> list[dict[str, Any]]:
    size = 100_000 if quick else 1_000_000
    label = "100k" if quick else "million"
    with tempfile.TemporaryDirectory() as tmp:
        m = measure(size, Path(tmp))
    peak = m["run"]["peak_kib"] * 1024 / GIB
    compare_s = m["compare"]["seconds"]
    rate = m["run"]["trials"] / m["run"]["seconds"]
    from bench.harness import figure  # `python -m bench`'s; this file also runs as a script

    measured = f"{size:,} trials (2 conditions x {EXAMPLES:,} examples x repeats), simulated model, concurrency 8"
    figures = [
        figure(f"{label}_trials_peak_memory_gib", round(peak, 3), "GiB", 1.0, "below", detail=f"the run's peak memory (ru_maxrss), {measured}"),
        figure(f"{label}_trials_compare_seconds", round(compare_s, 3), "s", 1.0, "below", detail=f"`compare` over the log, in a process of its own, {measured}"),
        figure(f"{label}_trials_per_second", round(rate), "trials/s", None, "at_least", detail="the run's wall-clock rate"),
        figure(f"{label}_trials_compare_peak_memory_gib", round(m["compare"]["peak_kib"] * 1024 / GIB, 3), "GiB", None, "below"),
        figure(f"{label}_trials_log_mb", round(m["log_bytes"] / 1e6, 1), "MB", None, "below", detail="the log file and its folders on disk"),
    ]
    return [{**figure, "trials": size} for figure in figures]  # the targets are for a million; quick runs a tenth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100,000 trials instead of 1,000,000")
    parser.add_argument("--trials", type=int, help="any other number of trials (prints the raw figures)")
    args = parser.parse_args()
    if args.trials:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(measure(args.trials, Path(tmp))))
        return
    for figure in run(args.quick):
        print(json.dumps(figure))


if __name__ == "__main__":
    main()
