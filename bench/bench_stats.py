"""Statistics: paired bootstrap (BCa) intervals of 20 conditions against a control over 10,000
examples each, 10,000 resamples per interval (workbench.stats.effects.bootstrap_interval), against
scipy.stats.bootstrap on the same differences, in the same run. Target (issue 16): under 2 s.

    python -m bench --only stats [--quick]
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats as sps

from bench.harness import figure
from workbench.stats.effects import bootstrap_interval

CONDITIONS, EXAMPLES, RESAMPLES = 20, 10_000, 10_000
TARGET_S = 2.0


def _outcomes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes per example: the control, and one row per condition, correlated with it."""
    rng = np.random.default_rng(seed)
    control = (rng.random(EXAMPLES) < 0.5).astype(float)
    shifted = (rng.random((CONDITIONS, EXAMPLES)) < rng.uniform(0.4, 0.6, (CONDITIONS, 1))).astype(float)
    conditions = np.where(rng.random((CONDITIONS, EXAMPLES)) < 0.5, control, shifted)
    return control, conditions


def run(quick: bool) -> list[dict[str, object]]:
    control, conditions = _outcomes()
    started = time.perf_counter()
    intervals = [bootstrap_interval(control, condition, n_resamples=RESAMPLES, seed=index) for index, condition in enumerate(conditions)]
    seconds = time.perf_counter() - started
    # scipy on one condition (about 20 s here), times the conditions: all 20 would take minutes
    started = time.perf_counter()
    sps.bootstrap((conditions[0] - control,), np.mean, n_resamples=RESAMPLES, method="BCa", rng=np.random.default_rng(0))
    scipy_seconds = (time.perf_counter() - started) * CONDITIONS
    widest = max(interval.high - interval.low for interval in intervals)
    detail = (
        f"{CONDITIONS} conditions x {EXAMPLES:,} examples (0/1 outcomes) x {RESAMPLES:,} resamples; baseline: scipy.stats.bootstrap "
        f"(BCa, resampling indices) timed on 1 condition, x {CONDITIONS}; {scipy_seconds / seconds:,.0f}x faster. Differences with more than n/8 distinct values (continuous "
        f"scores) still go through scipy. Widest interval {widest:.4f}"
    )
    return [figure("bootstrap intervals, 20 conditions x 10,000 examples", round(seconds, 3), "s", TARGET_S, "below", round(scipy_seconds, 1), detail)]
