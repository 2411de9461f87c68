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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps
from scipy.special import ndtr, ndtri
from statsmodels.stats.proportion import proportion_confint

from ..core.records import Record
from .caveats import ACCURACY_AT_BOUND, CONDITION_AT_0, CONDITION_AT_CHANCE, CONTROL_AT_0, CONTROL_AT_CHANCE, NO_CONTROL_ONLY_PAIRS, NO_DISCORDANT_PAIRS, ZERO_VARIANCE
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
    values, counts = np.unique(diff, return_counts=True)
    if values.size * FEW_VALUES_FACTOR > diff.size:
        result = sps.bootstrap((diff,), np.mean, confidence_level=level, n_resamples=n_resamples, method="BCa", rng=np.random.default_rng(seed))
        return Estimate(mean, float(result.confidence_interval.low), float(result.confidence_interval.high), level, "paired_bootstrap")
    low, high = bca_interval_of_mean(resampled_means(values, counts, n_resamples, np.random.default_rng(seed)), values, counts, level)
    return Estimate(mean, low, high, level, "paired_bootstrap")


# Differences with at most n / FEW_VALUES_FACTOR distinct values (0/1 outcomes, means of a few
# repeats) are resampled as counts per value: a resample's mean depends only on how often each
# value is drawn, and those counts are multinomial(n, count / n), so k draws per resample give
# the distribution scipy's n index draws give (20 s for n = 10,000 and 9,999 resamples here).
FEW_VALUES_FACTOR = 8


def resampled_means(values: np.ndarray, counts: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of n_resamples bootstrap resamples of the sample `counts` x `values`."""
    n = int(counts.sum())
    return rng.multinomial(n, counts / n, size=n_resamples) @ values / n


def bca_interval_of_mean(means: np.ndarray, values: np.ndarray, counts: np.ndarray, level: float) -> tuple[float, float]:
    """The BCa interval from the bootstrap distribution `means` of the mean of the sample
    `counts` x `values`, as scipy.stats.bootstrap(method="BCa") computes it (Efron & Tibshirani
    14.3, 15.4) but with the jackknife of a mean in closed form: leaving out x_i moves the mean by
    (mean - x_i) / (n - 1) (scipy's jackknife builds n resamples of n - 1 values)."""
    n, n_resamples = int(counts.sum()), means.size
    mean = float(counts @ values / n)
    # bias correction: the bootstrap means' share below the estimate (ties count half, as scipy's)
    z0 = ndtri((np.count_nonzero(means < mean) + np.count_nonzero(means <= mean)) / (2 * n_resamples))
    # acceleration from the jackknife influence values x_i - mean
    centred = values - mean
    acceleration = float(counts @ centred**3) / n**3 / (6 * (float(counts @ centred**2) / n**2) ** 1.5)
    z_alpha = float(ndtri((1.0 - level) / 2))
    ends = []
    for z in (z_alpha, -z_alpha):
        shifted = z0 + z
        ends.append(float(np.percentile(means, 100 * ndtr(z0 + shifted / (1 - acceleration * shifted)))))
    return ends[0], ends[1]


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


@dataclass(frozen=True)
class MeanMoments:
    """Two paired means (control x, condition y) with the variances and covariance of the means:
    what the delta-method intervals of a ratio or of Cohen's h need."""

    x: float
    y: float
    var_x: float
    var_y: float
    cov: float

    @classmethod
    def of(cls, x: ArrayLike, y: ArrayLike, half_counts: bool = False) -> MeanMoments:
        """From paired values, with population moments (for 0/1 outcomes the textbook paired-table
        variances). half_counts=True adds half a pair (high, low) and half a pair (low, high), i.e.
        half a count to each discordant cell, spanning the scores' range: the variance of a
        table without disagreement (or with a margin at 0) is then no longer 0."""
        a, b = paired_arrays(x, y)
        if a.size == 0:
            raise ValueError("no paired examples")
        weights = np.ones(a.size)
        if half_counts:
            low, high = min(0.0, float(a.min()), float(b.min())), max(1.0, float(a.max()), float(b.max()))
            a, b, weights = np.append(a, [high, low]), np.append(b, [low, high]), np.append(weights, [0.5, 0.5])
        total = float(weights.sum())
        mx, my = float(weights @ a) / total, float(weights @ b) / total
        moments = [float(weights @ (u * v)) / total / total for u, v in ((a - mx, a - mx), (b - my, b - my), (a - mx, b - my))]
        return cls(mx, my, *moments)

    @classmethod
    def averaged(cls, parts: Sequence[MeanMoments]) -> MeanMoments:
        """The means averaged over independent parts (tasks), each part weighing the same."""
        k = len(parts)
        return cls(*(sum(getattr(p, f) for p in parts) / k for f in ("x", "y")), *(sum(getattr(p, f) for p in parts) / k**2 for f in ("var_x", "var_y", "cov")))

    @property
    def var_log_ratio(self) -> float:
        return self.var_y / self.y**2 + self.var_x / self.x**2 - 2 * self.cov / (self.x * self.y)


RATIO_METHOD = "log_ratio_delta"


def _ratio_limits(m: MeanMoments, level: float) -> tuple[float, float]:
    half = _z(level) * math.sqrt(max(m.var_log_ratio, 0.0))
    ratio = m.y / m.x
    return ratio * math.exp(-half) - 1.0, ratio * math.exp(half) - 1.0


def relative_gain(plain: MeanMoments, with_half_counts: Callable[[], MeanMoments], level: float = 0.95, normalised: bool = False) -> Estimate:
    """mean(y) / mean(x) - 1 with a delta-method interval on the log ratio, at its edges: a
    control at 0 (or at chance, on the normalised score) leaves it undefined; a condition at 0 is
    exactly -100% and its upper limit, like an interval whose variance is 0 (no discordant
    pairs), comes from the moments with half counts. Each edge is named in the note."""
    control_edge, condition_edge = (CONTROL_AT_CHANCE, CONDITION_AT_CHANCE) if normalised else (CONTROL_AT_0, CONDITION_AT_0)
    if plain.x <= 0:
        return Estimate(NAN_ESTIMATE, NAN_ESTIMATE, NAN_ESTIMATE, level, RATIO_METHOD, control_edge)
    if plain.y < 0 or (plain.y == 0 and normalised):
        return Estimate(plain.y / plain.x - 1.0, NAN_ESTIMATE, NAN_ESTIMATE, level, RATIO_METHOD, condition_edge)
    if plain.y == 0:
        return Estimate(-1.0, -1.0, _ratio_limits(with_half_counts(), level)[1], level, RATIO_METHOD, condition_edge)
    if plain.var_log_ratio <= 0:
        return Estimate(plain.y / plain.x - 1.0, *_ratio_limits(with_half_counts(), level), level, RATIO_METHOD, NO_DISCORDANT_PAIRS)
    return Estimate(plain.y / plain.x - 1.0, *_ratio_limits(plain, level), level, RATIO_METHOD)


def normalise(values: ArrayLike, chance: float | ArrayLike | None) -> np.ndarray:
    """BIG-bench's normalised score on a 0-1 scale, (score - chance) / (1 - chance) per value; the
    raw score where there is no chance level."""
    arr = np.asarray(values, dtype=float)
    if chance is None:
        return arr
    c = np.broadcast_to(np.nan_to_num(np.asarray(chance, dtype=float), nan=0.0), arr.shape)
    return (arr - c) / (1.0 - c)


def relative_diff_ci(x: ArrayLike, y: ArrayLike, level: float = 0.95, chance: float | ArrayLike | None = None) -> Estimate:
    """Relative difference mean(y) / mean(x) - 1 (the source papers' "relative gain"), with a
    delta-method interval on the log ratio of paired means. For 0/1 outcomes the variance is
    (b + c) / ((a + b)(a + c)), the classic paired risk-ratio interval.

    chance (one level, or one per example): the gain on BIG-bench's normalised score, i.e.
    (mean(y) - chance) / (mean(x) - chance) - 1. Edges (`relative_gain`) are named in the note."""
    a, b = normalise(x, chance), normalise(y, chance)
    normalised = chance is not None and bool(np.any(np.nan_to_num(np.asarray(chance, dtype=float)) > 0))
    return relative_gain(MeanMoments.of(a, b), lambda: MeanMoments.of(a, b, half_counts=True), level, normalised)


def odds_ratio_discordant(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Conditional odds ratio of the discordant pairs, only_y / only_x, with the exact
    interval from the Clopper-Pearson interval of only_y / (only_x + only_y) (statsmodels).
    Undefined without discordant pairs; unbounded (inf) without a pair where only the control
    is right; the note says which."""
    table = PairedTable.of(x, y)
    b, c = table.only_x, table.only_y
    if b + c == 0:
        return Estimate(NAN_ESTIMATE, NAN_ESTIMATE, NAN_ESTIMATE, level, "discordant_exact", NO_DISCORDANT_PAIRS)
    low_p, high_p = proportion_confint(c, b + c, alpha=1.0 - level, method="beta")

    def odds(p: float) -> float:
        return math.inf if p >= 1.0 else p / (1.0 - p)

    note = NO_CONTROL_ONLY_PAIRS if b == 0 else None
    return Estimate(math.inf if b == 0 else c / b, odds(float(low_p)), odds(float(high_p)), level, "discordant_exact", note)


def cohens_h(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Cohen's h = 2 asin(sqrt(p_y)) - 2 asin(sqrt(p_x)) with a paired delta-method interval.
    Where that variance is 0 (no discordant pairs) or undefined (an accuracy at 0 or 1) the
    variance comes from the moments with half counts; the note says which."""
    plain = MeanMoments.of(x, y)
    mx, my = plain.x, plain.y
    h = 2 * math.asin(math.sqrt(min(max(my, 0.0), 1.0))) - 2 * math.asin(math.sqrt(min(max(mx, 0.0), 1.0)))
    at_bound = not (0.0 < mx < 1.0 and 0.0 < my < 1.0)

    def variance(m: MeanMoments) -> float:
        gx, gy = 1.0 / math.sqrt(m.x * (1 - m.x)), 1.0 / math.sqrt(m.y * (1 - m.y))
        return gy**2 * m.var_y + gx**2 * m.var_x - 2 * gx * gy * m.cov

    var = 0.0 if at_bound else variance(plain)
    note = ACCURACY_AT_BOUND if at_bound else (NO_DISCORDANT_PAIRS if var <= 0 else None)
    if note is not None:
        var = variance(MeanMoments.of(x, y, half_counts=True))
    half = _z(level) * math.sqrt(max(var, 0.0))
    return Estimate(h, h - half, h + half, level, "arcsine_delta", note)


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

