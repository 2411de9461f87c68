"""Paired significance tests: one condition against another on the same examples.

Each function takes plain sequences (x = control, y = treatment, aligned by example) and returns
a `PairedTestResult`. Where scipy or statsmodels implement the method they do the computing; the
exact McNemar mid-p is written here because neither library has the two-sided version
(statsmodels' `cond-midp` subtracts half of one tail's point mass only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import cochrans_q as _sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from ..core.records import Record

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class PairedTestResult(Record):
    """A test's outcome: the statistic, its p-value, which test, and how many units it used."""

    statistic: float
    p_value: float
    test: str
    n: int
    df: float | None = None


def paired_arrays(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two float arrays of one length with no missing values, or a ValueError saying why not."""
    a, b = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y must be paired (same length), got {a.size} and {b.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("x and y must not contain missing values; drop unpaired examples first")
    return a, b


def binary_arrays(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = paired_arrays(x, y)
    if not (np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
        raise ValueError("binary outcomes must be 0 or 1; use wilcoxon, paired_t or permutation_test for scores")
    return a.astype(int), b.astype(int)


def is_binary(values: ArrayLike) -> bool:
    arr = np.asarray(values, dtype=float)
    return bool(np.isin(arr[~np.isnan(arr)], (0.0, 1.0)).all())


@dataclass(frozen=True)
class PairedTable:
    """The 2x2 table of paired binary outcomes: both right, only control, only treatment, neither."""

    both: int
    only_x: int
    only_y: int
    neither: int

    @classmethod
    def of(cls, x: ArrayLike, y: ArrayLike) -> PairedTable:
        a, b = binary_arrays(x, y)
        return cls(
            both=int(np.sum((a == 1) & (b == 1))),
            only_x=int(np.sum((a == 1) & (b == 0))),
            only_y=int(np.sum((a == 0) & (b == 1))),
            neither=int(np.sum((a == 0) & (b == 0))),
        )

    @property
    def n(self) -> int:
        return self.both + self.only_x + self.only_y + self.neither

    @property
    def discordant(self) -> int:
        return self.only_x + self.only_y

    def matrix(self) -> np.ndarray:
        """Rows: control right / wrong; columns: treatment right / wrong."""
        return np.array([[self.both, self.only_x], [self.only_y, self.neither]])


def mcnemar_midp_from_counts(only_x: int, only_y: int) -> float:
    """Two-sided mid-p of the exact conditional McNemar test (Fagerland, Lydersen & Laake 2013):
    P(more extreme) + half P(as extreme), under Binomial(discordant, 1/2)."""
    d = only_x + only_y
    if d == 0:
        return 1.0
    k = min(only_x, only_y)
    if only_x == only_y:
        return float(1.0 - 0.5 * sps.binom.pmf(k, d, 0.5))
    return float(min(1.0, 2.0 * sps.binom.cdf(k, d, 0.5) - sps.binom.pmf(k, d, 0.5)))


def mcnemar(x: ArrayLike, y: ArrayLike, exact: bool = True, mid_p: bool = False) -> PairedTestResult:
    """McNemar's test for paired binary outcomes x (control) and y (treatment).

    exact=True: the exact conditional binomial test of the discordant pairs (statsmodels);
    mid_p=True: its mid-p version (less conservative, size close to nominal);
    exact=False: the chi-square version with continuity correction (statsmodels).
    """
    table = PairedTable.of(x, y)
    if mid_p:
        return PairedTestResult(float(min(table.only_x, table.only_y)), mcnemar_midp_from_counts(table.only_x, table.only_y), "mcnemar_midp", table.n)
    if table.discordant == 0:
        return PairedTestResult(0.0, 1.0, "mcnemar_exact" if exact else "mcnemar_chi2_cc", table.n, None if exact else 1.0)
    result = _sm_mcnemar(table.matrix(), exact=exact, correction=True)
    return PairedTestResult(
        float(result.statistic), float(result.pvalue), "mcnemar_exact" if exact else "mcnemar_chi2_cc", table.n, None if exact else 1.0
    )


def cochran_q(matrix: Sequence[Sequence[float]] | np.ndarray) -> PairedTestResult:
    """Cochran's Q: do k conditions differ on paired binary outcomes? Rows are examples,
    columns conditions (statsmodels)."""
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError("cochran_q needs a matrix with one row per example and one column per condition (at least 2)")
    if not is_binary(data) or np.isnan(data).any():
        raise ValueError("cochran_q needs 0/1 outcomes without missing values")
    k = data.shape[1]
    row_sums = data.sum(axis=1)
    informative = data[(row_sums > 0) & (row_sums < k)]
    if informative.shape[0] == 0:
        return PairedTestResult(0.0, 1.0, "cochran_q", data.shape[0], float(k - 1))
    result = _sm_cochrans_q(data)
    return PairedTestResult(float(result.statistic), float(result.pvalue), "cochran_q", data.shape[0], float(result.df))


def friedman(matrix: Sequence[Sequence[float]] | np.ndarray) -> PairedTestResult:
    """Friedman's test: do k conditions differ on paired continuous scores? Rows are examples (scipy)."""
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2 or data.shape[1] < 3:
        raise ValueError("friedman needs a matrix with one row per example and at least 3 condition columns")
    if np.isnan(data).any():
        raise ValueError("friedman needs complete rows; drop examples missing a condition first")
    if np.all(data == data[:, :1]):
        return PairedTestResult(0.0, 1.0, "friedman", data.shape[0], float(data.shape[1] - 1))
    result = sps.friedmanchisquare(*data.T)
    return PairedTestResult(float(result.statistic), float(result.pvalue), "friedman", data.shape[0], float(data.shape[1] - 1))


def wilcoxon(x: ArrayLike, y: ArrayLike, zero_method: str = "wilcox") -> PairedTestResult:
    """Wilcoxon signed-rank test of y - x (scipy; exact for small samples without ties,
    normal approximation otherwise). All-zero differences give p = 1."""
    a, b = paired_arrays(x, y)
    diff = b - a
    if not np.any(diff):
        return PairedTestResult(0.0, 1.0, "wilcoxon", int(diff.size))
    result = sps.wilcoxon(b, a, zero_method=zero_method)
    return PairedTestResult(float(result.statistic), float(result.pvalue), "wilcoxon", int(diff.size))


def constant_difference_test(diff: np.ndarray) -> PairedTestResult:
    """The exact sign-flip test when every paired difference is the same (the t statistic is 0/0
    or infinite there). Under the null each of the 2**n sign patterns is equally likely and only
    the two with all signs alike are as extreme, so p = 2**(1 - n): scipy's exact sign test,
    which equals the sign-flip test when all |differences| are equal (and exact McNemar on 0/1
    outcomes). Differences all 0 give p = 1."""
    n = int(diff.size)
    p = 1.0 if diff[0] == 0 else float(sps.binomtest(n, n, 0.5).pvalue)
    return PairedTestResult(float(diff[0]), p, "sign_flip_exact", n)


def has_zero_variance(diff: np.ndarray) -> bool:
    return bool(np.all(diff == diff[0]))


def paired_t(x: ArrayLike, y: ArrayLike) -> PairedTestResult:
    """Paired t-test of the mean of y - x (scipy). Constant differences (zero variance) fall back
    to the exact sign-flip test (`constant_difference_test`), whose result says so in `test`."""
    a, b = paired_arrays(x, y)
    diff = b - a
    if diff.size < 2:
        raise ValueError("paired_t needs at least 2 pairs")
    if has_zero_variance(diff):
        return constant_difference_test(diff)
    result = sps.ttest_rel(b, a)
    return PairedTestResult(float(result.statistic), float(result.pvalue), "paired_t", int(diff.size), float(result.df))


def permutation_test(x: ArrayLike, y: ArrayLike, n_resamples: int = 9999, seed: int = 0) -> PairedTestResult:
    """Paired permutation (sign-flip) test of the mean of y - x (scipy). Exact when
    2**n <= n_resamples, otherwise a seeded Monte Carlo estimate."""
    a, b = paired_arrays(x, y)
    diff = b - a
    if not np.any(diff):
        return PairedTestResult(0.0, 1.0, "permutation", int(diff.size))

    def mean_difference(u: np.ndarray, v: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(u - v, axis=axis)

    result = sps.permutation_test(
        (b, a), mean_difference, permutation_type="samples", vectorized=True, n_resamples=n_resamples, rng=np.random.default_rng(seed)
    )
    return PairedTestResult(float(result.statistic), float(min(1.0, result.pvalue)), "permutation", int(diff.size))
