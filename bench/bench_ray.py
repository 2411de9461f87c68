"""The Ray executor's throughput against the local scheduler (issue 16): the same simulated study
(zero-latency model, 3 conditions) run through `api.run` in this process, then with
`executor="ray"` on a Ray cluster of this machine with two worker slots (tests/ray_cluster.py:
`ray start --head` on 127.0.0.1, started before the clock). Each figure is the whole run as a user
waits for it: planning, the driver joining the cluster, the chunks on the workers, compaction.
Reports the ratio of trials per second (ray / local); no target: on one machine two workers share
the cores the local run had to itself, the cluster's gain is across machines.

    python bench/bench_ray.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the local cluster harness

from ray_cluster import RAY_ENV, ray_cluster  # noqa: E402

from workbench import api  # noqa: E402
from workbench.study.spec import StudySpec, resolve_study  # noqa: E402

WORKERS = 2


SIZES = {True: (2_000, 1), False: (10_000, 2)}  # --quick: (examples, repeats): 6,000 trials; else 60,000


def _study(examples: int, repeats: int) -> Any:
    spec = StudySpec.model_validate(
        {
            "name": "bench-ray",
            "models": [{"id": "sim/bench", "simulate": {"accuracy": {"control": 0.5, "EP02": 0.6}}}],
            "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "NP01", "stimuli": ["NP01"]}],
            "tasks": [{"task": "ii/sum", "n": examples}],
            "repeats": repeats,
            "concurrency": 32,
        }
    )
    return resolve_study(spec, "bench-ray")


def _trials_per_s(study: Any, db: Path, **executor: Any) -> tuple[float, int]:
    started = time.perf_counter()
    result = api.run(study, db, **executor)
    elapsed = time.perf_counter() - started
    assert result.trials_done == result.trials_planned, result
    return result.trials_done / elapsed, result.trials_done


def measure(quick: bool) -> dict[str, float]:
    os.environ.update(RAY_ENV)  # the driver joins the cluster as its workers do: loopback, its token
    study = _study(*SIZES[quick])
    with tempfile.TemporaryDirectory() as tmp, ray_cluster(cpus=WORKERS) as cluster:
        local, trials = _trials_per_s(study, Path(tmp) / "local.duckdb")
        on_ray, _ = _trials_per_s(study, Path(tmp) / "ray.duckdb", executor="ray", address=cluster.address)
    return {"trials": trials, "local_per_s": local, "ray_per_s": on_ray, "ratio": on_ray / local}


def run(quick: bool) -> list[dict[str, Any]]:
    figures = measure(quick)
    from bench.harness import figure  # `python -m bench`'s; this file also runs as a script

    return [figure(
        "ray_vs_local_throughput", round(figures["ratio"], 3), "ratio", None, "at_least", baseline=round(figures["local_per_s"], 1),
        detail=f"{figures['trials']:,} simulated trials: {figures['ray_per_s']:,.0f}/s on a two-worker local Ray cluster against the local scheduler's "
        f"{figures['local_per_s']:,.0f}/s (no target: two workers on one machine share its cores)",
    )]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 trials instead of 60,000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.quick)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['trials']} trials: local {figures['local_per_s']:,.0f}/s, ray ({WORKERS} workers) {figures['ray_per_s']:,.0f}/s, ratio {figures['ratio']:.3f}")


if __name__ == "__main__":
    main()
