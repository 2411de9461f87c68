"""Effect sizes with their intervals for paired outcomes: absolute difference, relative
difference, odds ratio of the discordant pairs, Cohen's h.

x is the control and y the treatment, aligned by example. Binary single outcomes get the
methods made for the paired 2x2 table; per-example mean scores (repeats, continuous metrics)
get t and delta-method intervals over examples, so repeats never count as independent.

Library use: Wilson and Clopper-Pearson intervals come from statsmodels, t intervals from
scipy. Newcombe's paired square-and-add interval (method 10 of Newcombe 1998) is written here:
statsmodels implements it only for independent samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from ..records import Record
from .caveats import ZERO_VARIANCE
from .paired import ArrayLike, PairedTable, has_zero_variance, is_binary, paired_arrays


@dataclass(frozen=True)
class Estimate(Record):
    """A point estimate with its confidence interval and how it was computed."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    note: str | None = None  # a code from stats.caveats when the value is undefined or a fallback made it

    def excludes(self, value: float) -> bool:
        return not (self.low <= value <= self.high)


NAN_ESTIMATE = float("nan")


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    return float(sps.norm.ppf(0.5 + level / 2.0))


def wilson(count: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (statsmodels)."""
    low, high = proportion_confint(count, n, alpha=1.0 - level, method="wilson")
    return float(low), float(high)


def newcombe_paired(table: PairedTable, level: float = 0.95) -> Estimate:
    """Newcombe's square-and-add interval for the difference of paired proportions
    p(treatment) - p(control), with the continuity-corrected correlation of method 10."""
    n = table.n
    if n == 0:
        raise ValueError("no paired examples")
    x_right = table.both + table.only_x  # control marginal
    y_right = table.both + table.only_y  # treatment marginal
    p_y, p_x = y_right / n, x_right / n
    l_y, u_y = wilson(y_right, n, level)
    l_x, u_x = wilson(x_right, n, level)
    # Treatment's row is "first" in Newcombe's notation: a = both, b = only_y, c = only_x, d = neither.
    margins = [y_right, n - y_right, x_right, n - x_right]
    if min(margins) == 0:
        phi = 0.0
    else:
        cross = table.both * table.neither - table.only_y * table.only_x
        if cross > n / 2:
            numerator = cross - n / 2
        elif cross >= 0:
            numerator = 0.0
        else:
            numerator = cross
        phi = numerator / math.sqrt(float(np.prod(np.array(margins, dtype=float))))
    delta = p_y - p_x
    low = delta - math.sqrt(max(0.0, (p_y - l_y) ** 2 - 2 * phi * (p_y - l_y) * (u_x - p_x) + (u_x - p_x) ** 2))
    high = delta + math.sqrt(max(0.0, (u_y - p_y) ** 2 - 2 * phi * (u_y - p_y) * (p_x - l_x) + (p_x - l_x) ** 2))
    return Estimate(delta, low, high, level, "newcombe_paired")


def t_interval(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Mean of y - x with the paired t interval over examples (scipy)."""
    a, b = paired_arrays(x, y)
    diff = b - a
    if diff.size < 2:
        raise ValueError("a t interval needs at least 2 paired examples")
    mean = float(diff.mean())
    if has_zero_variance(diff):
        return constant_difference_interval(a, b, level)
    ci = sps.ttest_rel(b, a).confidence_interval(confidence_level=level)
    return Estimate(mean, float(ci.low), float(ci.high), level, "paired_t")


def bootstrap_interval(x: ArrayLike, y: ArrayLike, level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Estimate:
    """Mean of y - x with a seeded paired bootstrap (BCa) interval, resampling examples (scipy)."""
    a, b = paired_arrays(x, y)
    diff = b - a
    mean = float(diff.mean())
    if has_zero_variance(diff):
        return constant_difference_interval(a, b, level)
    result = sps.bootstrap((diff,), np.mean, confidence_level=level, n_resamples=n_resamples, method="BCa", rng=np.random.default_rng(seed))
    return Estimate(mean, float(result.confidence_interval.low), float(result.confidence_interval.high), level, "paired_bootstrap")


def constant_difference_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Estimate:
    """The interval when every paired difference is the same, where the t and bootstrap intervals
    collapse to a point, narrower than n examples allow. Per-example outcomes that are 0/1
    (repeats that agree) get Newcombe's paired interval, as one outcome per example would; other
    scores the Wilson interval of the difference rescaled to [0, 1] (the largest variance a
    bounded score can have). The estimate's note says which fallback ran."""
    if is_binary(a) and is_binary(b):
        return replace(newcombe_paired(PairedTable.of(a, b), level), note=ZERO_VARIANCE)
    low_score, high_score = min(0.0, float(a.min()), float(b.min())), max(1.0, float(a.max()), float(b.max()))
    span = high_score - low_score  # differences lie in [-span, span]
    mean = float(np.mean(b - a))
    low, high = proportion_confint((mean + span) / (2 * span) * a.size, a.size, alpha=1.0 - level, method="wilson")
    return Estimate(mean, 2 * span * float(low) - span, 2 * span * float(high) - span, level, "wilson_bounded", ZERO_VARIANCE)


def paired_diff_ci(x: ArrayLike, y: ArrayLike, level: float = 0.95, method: str = "auto") -> Estimate:
    """Difference in mean score (accuracy) y - x with its interval.

    method="auto": Newcombe's paired interval for 0/1 outcomes, the paired t interval for
    scores or per-example means; or name "newcombe", "t" or "bootstrap".
    """
    if method == "auto":
        method = "newcombe" if is_binary(x) and is_binary(y) else "t"
    if method == "newcombe":
        return newcombe_paired(PairedTable.of(x, y), level)
    if method == "t":
        return t_interval(x, y, level)
    if method == "bootstrap":
        return bootstrap_interval(x, y, level)
    raise ValueError(f"unknown interval method {method!r} (allowed: auto, newcombe, t, bootstrap)")


def _paired_moments(x: ArrayLike, y: ArrayLike) -> tuple[float, float, float, float, float, int]:
    a, b = paired_arrays(x, y)
    n = a.size
    if n == 0:
        raise ValueError("no paired examples")
    mx, my = float(a.mean()), float(b.mean())
    # Population moments: for 0/1 outcomes they give the textbook paired-table variances.
    vx, vy = float(a.var()), float(b.var())
    cov = float(np.mean((a - mx) * (b - my)))
    return mx, my, vx, vy, cov, n


def relative_diff_ci(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Relative difference mean(y) / mean(x) - 1 (the source papers' "relative gain"), with a
    delta-method interval on the log ratio of paired means. For 0/1 outcomes the variance is
    (b + c) / ((a + b)(a + c)), the classic paired risk-ratio interval."""
    mx, my, vx, vy, cov, n = _paired_moments(x, y)
    if mx <= 0:
        return Estimate(NAN_ESTIMATE, NAN_ESTIMATE, NAN_ESTIMATE, level, "log_ratio_delta")
    if my <= 0:
        return Estimate(-1.0, -1.0, NAN_ESTIMATE, level, "log_ratio_delta")
    ratio = my / mx
    var_log = (vy / my**2 + vx / mx**2 - 2 * cov / (mx * my)) / n
    half = _z(level) * math.sqrt(max(var_log, 0.0))
    return Estimate(ratio - 1.0, ratio * math.exp(-half) - 1.0, ratio * math.exp(half) - 1.0, level, "log_ratio_delta")


def odds_ratio_discordant(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Conditional odds ratio of the discordant pairs, only_y / only_x, with the exact
    interval from the Clopper-Pearson interval of only_y / (only_x + only_y) (statsmodels)."""
    table = PairedTable.of(x, y)
    b, c = table.only_x, table.only_y
    if b + c == 0:
        return Estimate(NAN_ESTIMATE, NAN_ESTIMATE, NAN_ESTIMATE, level, "discordant_exact")
    low_p, high_p = proportion_confint(c, b + c, alpha=1.0 - level, method="beta")

    def odds(p: float) -> float:
        return math.inf if p >= 1.0 else p / (1.0 - p)

    return Estimate(math.inf if b == 0 else c / b, odds(float(low_p)), odds(float(high_p)), level, "discordant_exact")


def cohens_h(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Cohen's h = 2 asin(sqrt(p_y)) - 2 asin(sqrt(p_x)) with a paired delta-method interval."""
    mx, my, vx, vy, cov, n = _paired_moments(x, y)
    h = 2 * math.asin(math.sqrt(min(max(my, 0.0), 1.0))) - 2 * math.asin(math.sqrt(min(max(mx, 0.0), 1.0)))
    if not (0.0 < mx < 1.0 and 0.0 < my < 1.0):
        return Estimate(h, NAN_ESTIMATE, NAN_ESTIMATE, level, "arcsine_delta")
    gx, gy = 1.0 / math.sqrt(mx * (1 - mx)), 1.0 / math.sqrt(my * (1 - my))
    var = (gy**2 * vy + gx**2 * vx - 2 * gx * gy * cov) / n
    half = _z(level) * math.sqrt(max(var, 0.0))
    return Estimate(h, h - half, h + half, level, "arcsine_delta")


def paired_variance_of_mean_difference(x: ArrayLike, y: ArrayLike) -> float:
    """Variance of mean(y - x) for pooling across tasks. With no discordant pair (or constant
    differences) it would be 0; then every cell gets half a count (Agresti-Min), so a task
    with no disagreement still gets finite weight."""
    a, b = paired_arrays(x, y)
    n = a.size
    if n < 2:
        raise ValueError("at least 2 paired examples per task are needed to pool")
    diff = b - a
    var = float(diff.var(ddof=1)) / n
    if var > 0:
        return var
    if is_binary(a) and is_binary(b):
        table = PairedTable.of(a, b)
        bb, cc, nn = table.only_x + 0.5, table.only_y + 0.5, n + 2.0
        return ((bb + cc) - (cc - bb) ** 2 / nn) / nn**2
    return 1.0 / (4.0 * n * n)  # half a unit of disagreement among n examples

