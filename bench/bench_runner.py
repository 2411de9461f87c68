"""Runner overhead: trials per second through the full runner (expand, cache lookup, retries
wrapper, scoring, Parquet segments, compaction) against a bare loop that calls the same
simulated model directly, in the same process and run. Reports the ratio, not a time target.

    python bench/bench_runner.py [--trials 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from workbench.providers import ModelRequest, TrialContext
from workbench.providers.simulated import SimulatedProvider
from workbench.run.scheduler import Runner
from workbench.study import StudySpec, resolve_study
from workbench.trials import expand


def _study(n: int) -> StudySpec:
    return StudySpec.model_validate(
        {
            "name": "bench",
            "models": [{"id": "sim/bench", "simulate": {"accuracy": {"control": 0.5, "EP02": 0.6}}}],
            "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "NP01", "stimuli": ["NP01"]}],
            "tasks": [{"task": "ii/sum", "n": n}],
            "concurrency": 32,
        }
    )


async def _baseline(study, trials) -> float:
    provider = SimulatedProvider(study.spec.models[0])
    started = time.perf_counter()
    for trial in trials:
        request = ModelRequest.build(trial.model.id, [m.to_dict() for m in trial.messages], {}, trial.repeat)
        response = await provider.complete(request, TrialContext(trial.condition, trial.item.targets, trial.seed), 0)
        trial.task.score(response.text, trial.item)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6000)
    args = parser.parse_args()
    study = resolve_study(_study(args.trials // 3), "bench")
    trials = expand(study, "baseline")
    baseline_s = asyncio.run(_baseline(study, trials))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = asyncio.run(Runner(study, Path(tmp) / "bench.duckdb").run())
        runner_s = time.perf_counter() - started
    n = summary.trials_done
    print(f"trials: {n}")
    print(f"baseline (direct simulator calls + scoring): {n / baseline_s:,.0f} trials/s")
    print(f"full runner (cache, retries, log, compaction): {n / runner_s:,.0f} trials/s")
    print(f"runner overhead ratio: {runner_s / baseline_s:.1f}x the baseline time")


if __name__ == "__main__":
    main()
