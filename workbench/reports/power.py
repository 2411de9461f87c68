"""Power measured, not computed: seeded studies run on the workbench's simulated model and tested
as the comparison table would (workbench.stats.power computes it in closed form). Above both the
simulator and the statistics, so that the statistics stay pure."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..run.simulate import planted_pair_study, simulated_rejections


def simulated_power(
    p_control: float,
    delta: float,
    n: int,
    *,
    discordance: float | None = None,
    alpha: float = 0.05,
    comparisons: int = 1,
    test: str = "exact",
    studies: int = 1000,
    seed: int = 0,
    workers: int = 1,
) -> dict[str, Any]:
    """Power measured by running `studies` seeded studies on the workbench's simulated model
    (see workbench.simulate) with the planted accuracies, and testing each as the comparison
    table would. Returns the detection rate with its Monte Carlo standard error. workers > 1
    uses that many processes (see workbench.simulate.simulated_pvalues)."""
    study = planted_pair_study(p_control, delta, n, discordance=discordance)
    rejected = simulated_rejections(study, studies=studies, alpha=alpha / comparisons, test=test, seed=seed, workers=workers)
    rate = float(np.mean(rejected))
    return {"power": rate, "se": math.sqrt(rate * (1 - rate) / studies), "studies": studies, "n": n}
