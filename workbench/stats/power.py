"""Power planning for paired binary comparisons (condition against control on the same examples).

statsmodels has no power function for McNemar's test, so the exact power is computed here:
the number of discordant pairs d is Binomial(n, discordance) and, given d, the control-only
pairs are Binomial(d, p10 / discordance); the power is the probability of landing in the exact
(or mid-p) test's rejection region. Connor's (1987) normal approximation is offered too.

Several comparisons: the per-comparison alpha is alpha / comparisons (Bonferroni, which is
Holm's first and strictest step, so the plan is conservative for Holm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from ..records import Record

TESTS = ("exact", "midp", "normal")


@dataclass(frozen=True)
class PowerPlan(Record):
    n: int  # paired examples
    power: float
    p_control: float
    delta: float  # p_treatment - p_control
    discordance: float  # P(the two conditions disagree on an example)
    alpha: float
    comparisons: int
    alpha_per_comparison: float
    test: str


def independent_discordance(p_control: float, delta: float) -> float:
    """Discordance when the two conditions' outcomes on an example are independent."""
    p_treatment = p_control + delta
    return p_control * (1 - p_treatment) + p_treatment * (1 - p_control)


def _cells(p_control: float, delta: float, discordance: float | None) -> tuple[float, float, float]:
    """(p10, p01, discordance) for control-only and treatment-only right answers; ValueError if impossible."""
    if not 0.0 < p_control < 1.0:
        raise ValueError(f"p_control: must lie strictly between 0 and 1, got {p_control}")
    p_treatment = p_control + delta
    if not 0.0 <= p_treatment <= 1.0:
        raise ValueError(f"delta: p_control + delta = {p_treatment:g} is not a probability")
    psi = independent_discordance(p_control, delta) if discordance is None else float(discordance)
    p10, p01 = (psi - delta) / 2, (psi + delta) / 2
    low, high = abs(delta), min(1.0, 2 * p_control + delta, 2 * (1 - p_control) - delta)
    if not (abs(delta) <= psi <= 1.0) or p10 < -1e-12 or p01 < -1e-12 or p10 > p_control + 1e-12 or p01 > 1 - p_control + 1e-12:
        raise ValueError(
            f"discordance: {psi:g} is impossible for p_control {p_control:g} and delta {delta:g} "
            f"(allowed: {low:g} to {high:g})"
        )
    return max(p10, 0.0), max(p01, 0.0), psi


def _critical_counts(max_d: int, alpha: float, test: str) -> np.ndarray:
    """For each number of discordant pairs d, the largest k such that min(b, d - b) <= k rejects
    (-1 when nothing rejects)."""
    d = np.arange(max_d + 1)
    half = alpha / 2
    k = sps.binom.ppf(half, np.maximum(d, 1), 0.5)
    k = np.where(sps.binom.cdf(k, np.maximum(d, 1), 0.5) <= half + 1e-15, k, k - 1)
    if test == "midp":
        nxt = k + 1
        mid = sps.binom.cdf(nxt, np.maximum(d, 1), 0.5) - 0.5 * sps.binom.pmf(nxt, np.maximum(d, 1), 0.5)
        k = np.where((mid <= half + 1e-15) & (2 * nxt < d), nxt, k)
    k = np.where(2 * k >= d, -1, k)  # b = c never rejects
    k[0] = -1
    return k.astype(int)


def _rejection_given_d(max_d: int, theta: float, alpha: float, test: str) -> np.ndarray:
    """P(reject | d discordant pairs) for d = 0..max_d, control-only share theta."""
    k = _critical_counts(max_d, alpha, test)
    d = np.arange(max_d + 1)
    lower = np.where(k >= 0, sps.binom.cdf(k, d, theta), 0.0)
    upper = np.where(k >= 0, sps.binom.sf(d - k - 1, d, theta), 0.0)
    return lower + upper


def _normal_power(n: int, delta: float, psi: float, alpha: float) -> float:
    z = sps.norm.ppf(1 - alpha / 2)
    spread = math.sqrt(max(psi - delta**2, 1e-300))
    return float(sps.norm.cdf((abs(delta) * math.sqrt(n) - z * math.sqrt(psi)) / spread))


def _normal_n(delta: float, psi: float, alpha: float, power: float) -> int:
    """Connor (1987): n = (z_{a/2} sqrt(psi) + z_b sqrt(psi - delta^2))^2 / delta^2."""
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    return max(2, math.ceil((za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta**2, 0.0))) ** 2 / delta**2))


def power_paired_binary(
    p_control: float,
    delta: float,
    n: int | None = None,
    *,
    power: float = 0.8,
    discordance: float | None = None,
    alpha: float = 0.05,
    comparisons: int = 1,
    test: str = "exact",
    max_n: int = 200_000,
) -> PowerPlan:
    """Power of a paired comparison at `n` examples, or (n=None) the fewest examples that reach
    `power`.

    p_control: the control's accuracy; delta: the expected difference p_treatment - p_control;
    discordance: the share of examples on which the two conditions disagree (default: as if
    their outcomes were independent, which is the most discordance positively correlated
    outcomes can have); alpha: the family-wise level over `comparisons` comparisons;
    test: "exact" (exact McNemar, the workbench's default), "midp" or "normal" (Connor).
    """
    if test not in TESTS:
        raise ValueError(f"test: unknown test {test!r} (allowed: {', '.join(TESTS)})")
    if not 0.0 < alpha < 1.0 or comparisons < 1:
        raise ValueError("alpha: must lie in (0, 1)" if not 0.0 < alpha < 1.0 else "comparisons: must be at least 1")
    if not 0.0 < power < 1.0:
        raise ValueError("power: must lie in (0, 1)")
    p10, p01, psi = _cells(p_control, delta, discordance)
    level = alpha / comparisons
    theta = p10 / psi if psi > 0 else 0.5

    def plan(size: int, achieved: float) -> PowerPlan:
        return PowerPlan(size, achieved, p_control, delta, psi, alpha, comparisons, level, test)

    if n is not None:
        if n < 1:
            raise ValueError("n: must be at least 1")
        if test == "normal":
            return plan(n, _normal_power(n, delta, psi, level))
        g = _rejection_given_d(n, theta, level, test)
        return plan(n, float(np.dot(sps.binom.pmf(np.arange(n + 1), n, psi), g)))

    if delta == 0:
        raise ValueError("delta: must be non-zero to plan a sample size (with n given, delta 0 gives the test's size)")
    guess = _normal_n(delta, psi, level, power)
    if test == "normal":
        return plan(guess, _normal_power(guess, delta, psi, level))
    # Exact power saws up and down with n; report the smallest n that reaches the target.
    limit = min(max_n, 4 * guess + 200)
    g = _rejection_given_d(limit, theta, level, test)
    for size in range(max(1, guess // 2), limit + 1):
        achieved = float(np.dot(sps.binom.pmf(np.arange(size + 1), size, psi), g[: size + 1]))
        if achieved >= power:
            return plan(size, achieved)
    raise ValueError(f"delta: more than {limit} examples would be needed; is the difference realistic?")


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
    from ..run.simulate import planted_pair_study, simulated_rejections

    study = planted_pair_study(p_control, delta, n, discordance=discordance)
    rejected = simulated_rejections(study, studies=studies, alpha=alpha / comparisons, test=test, seed=seed, workers=workers)
    rate = float(np.mean(rejected))
    return {"power": rate, "se": math.sqrt(rate * (1 - rate) / studies), "studies": studies, "n": n}
