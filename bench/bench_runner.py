"""Runner overhead: trials per second through the full runner (expand, cache lookup, retries
wrapper, scoring, Parquet segments, compaction) against a bare asyncio loop that calls the same
simulated model directly and batch-inserts its rows into DuckDB, in the same process and run.
Target (issue 16): the runner at 5,000 trials/s or more.
Each round runs the bare loop before and after the runner (the faster of the two counts); of
three rounds the one with the median ratio is shown, as a machine's speed can drift by half
between runs a minute apart (measured here: the same bare loop at 15,600 and 27,400/s); after it,
the fastest runner round against the fastest bare loop of the whole run (interference only slows
a loop down, so the fastest of each is the least disturbed). Times are the
process's CPU time (all its threads, the Parquet writer's too) as well as wall time: on a machine
shared with other work the CPU time is what the workbench itself spends, and its ratio holds.
Imports happen before the clocks start: pyarrow imports pandas at its first conversion of a list
(0.26 s here), which `workbench run` has imported for its tables before any run starts.

    python bench/bench_runner.py [--trials 12000] [--rounds 3]
    python -m bench --only runner [--quick]    (its figures: run())
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import pandas  # noqa: F401 - imported before the clocks start, as `workbench run` has (see below)
import pyarrow as pa

from workbench.providers import ModelRequest, TrialContext
from workbench.providers.simulated import SimulatedProvider
from workbench.run.scheduler import Runner
from workbench.study.spec import StudySpec, resolve_study
from workbench.study.expand import expand


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


class Clock:
    """Wall and CPU seconds of what runs inside it."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


INSERT_BATCH = 1000  # rows per DuckDB insert of the bare loop


async def _baseline(study, trials, db: Path) -> None:
    provider = SimulatedProvider(study.spec.models[0])
    rows: list[dict[str, object]] = []
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE trials (trial_id VARCHAR, condition VARCHAR, item_id VARCHAR, response_text VARCHAR, score DOUBLE)")
        for trial in trials:
            request = ModelRequest.build(trial.model.id, [m.to_dict() for m in trial.messages], {}, trial.repeat)
            response = await provider.complete(request, TrialContext(trial.condition, trial.item.targets, trial.seed), 0)
            _, score = trial.task.score(response.text, trial.item)
            rows.append({"trial_id": trial.trial_id, "condition": trial.condition, "item_id": trial.item.id, "response_text": response.text, "score": score})
            if len(rows) == INSERT_BATCH or trial is trials[-1]:
                con.from_arrow(pa.Table.from_pylist(rows)).insert_into("trials")
                rows.clear()


def _bare(study, trials) -> Clock:
    with tempfile.TemporaryDirectory() as tmp, Clock() as clock:
        asyncio.run(_baseline(study, trials, Path(tmp) / "bare.duckdb"))
    return clock


Round = tuple[Clock, Clock, int, list[Clock]]


def _round(study, trials) -> Round:
    """One runner run between two bare loops; the faster bare loop counts (both are returned)."""
    before = _bare(study, trials)
    with tempfile.TemporaryDirectory() as tmp, Clock() as runner:
        summary = asyncio.run(Runner(study, Path(tmp) / "bench.duckdb").run())
    after = _bare(study, trials)
    bare = before if before.cpu <= after.cpu else after
    return bare, runner, summary.trials_done, [before, after]


def measure(n_trials: int, n_rounds: int) -> list[Round]:
    study = resolve_study(_study(n_trials // 3), "bench")
    trials = expand(study, "baseline")
    return [_round(study, trials) for _ in range(n_rounds)]


def _median_round(rounds: list[Round], kind: str) -> tuple[float, float]:
    """(bare, runner) seconds of the round with the median ratio: a round's ratio compares the
    runner with bare loops run right around it, so drift cancels."""
    pairs = sorted(((getattr(b, kind), getattr(r, kind)) for b, r, _, _ in rounds), key=lambda pair: pair[1] / pair[0])
    return pairs[(len(pairs) - 1) // 2]


QUICK, FULL = (6000, 1), (30000, 3)  # (trials, rounds)
TARGET_PER_S = 5000.0


def run(quick: bool) -> list[dict[str, object]]:
    """The runner's trials per second of CPU time (what the workbench itself spends, all its
    threads; a busy machine stretches wall time, not this), the bare loop's as its baseline."""
    from bench.harness import figure

    n_trials, n_rounds = QUICK if quick else FULL
    rounds = measure(n_trials, n_rounds)
    n = rounds[0][2]
    bare_cpu, runner_cpu = _median_round(rounds, "cpu")
    bare_wall, runner_wall = _median_round(rounds, "wall")
    detail = (
        f"{n:,} simulated trials (3 conditions), concurrency 32, median of {n_rounds} round(s); CPU time. "
        f"Runner {runner_cpu / bare_cpu:.1f}x the bare loop's CPU time; wall clock: runner {n / runner_wall:,.0f}/s, bare loop {n / bare_wall:,.0f}/s"
    )
    return [figure("runner trials/s (simulated, zero latency)", round(n / runner_cpu), "trials/s", TARGET_PER_S, "at_least", round(n / bare_cpu), detail)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12000)
    parser.add_argument("--rounds", type=int, default=3, help="runner runs, each between two bare loops; the median round counts")
    args = parser.parse_args()
    rounds = measure(args.trials, args.rounds)
    n = rounds[0][2]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"trials: {n}; rounds: {len(rounds)} (shown: the round with the median ratio, as a machine's speed can drift "
        "between runs; then the fastest runner round against the fastest bare loop)"
    )
    for kind in ("cpu", "wall"):
        bare_s, runner_s = _median_round(rounds, kind)
        spread = ", ".join(f"{getattr(r, kind) / getattr(b, kind):.1f}x" for b, r, _, _ in rounds)
        print(
            f"{kind:>4}: bare loop (simulator calls + scoring + DuckDB batch inserts) {n / bare_s:,.0f} trials/s; "
            f"full runner (expand, cache, retries, scoring, segments, compaction) {n / runner_s:,.0f} trials/s; "
            f"ratio {runner_s / bare_s:.1f}x the bare loop's time (rounds: {spread})"
        )
        # Interference from outside only ever slows a loop down, so the fastest of each is the
        # least disturbed (why timeit reports its minimum): their ratio is the runner's own cost.
        fastest_bare = min(getattr(c, kind) for *_, loops in rounds for c in loops)
        fastest_runner = min(getattr(r, kind) for _, r, _, _ in rounds)
        print(
            f"{'':>4}  fastest of each: bare loop {n / fastest_bare:,.0f} trials/s; full runner {n / fastest_runner:,.0f} trials/s; "
            f"ratio {fastest_runner / fastest_bare:.1f}x"
        )
    print(f"peak memory of the process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
