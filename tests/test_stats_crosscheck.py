"""The statistics agree with scipy and statsmodels (to 1e-8) where those implement the same
method, and with published worked examples where they do not, on 200+ random datasets each."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import cochrans_q as sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize
from statsmodels.stats.weightstats import DescrStatsW

from workbench.stats.effects import FEW_VALUES_FACTOR, bca_interval_of_mean, bootstrap_interval, resampled_means
from workbench.stats import PairedTable, adjust, cochran_q, cohens_h, friedman, mcnemar, newcombe_paired, odds_ratio_discordant, paired_diff_ci, paired_t, permutation_test, power_paired_binary, random_effects, relative_diff_ci, wilcoxon

DATASETS = 200
TOL = 1e-8


def _binary_pairs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(5, 300))
    p_x, p_y = rng.uniform(0.05, 0.95, size=2)
    x = (rng.random(n) < p_x).astype(int)
    # correlated with x half of the time, like a model answering the same examples
    y = np.where(rng.random(n) < rng.uniform(0, 0.8), x, (rng.random(n) < p_y).astype(int))
    return x, y


def _scores(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(6, 200))
    x = rng.beta(2, 2, size=n)
    y = np.clip(x + rng.normal(rng.normal(0, 0.05), 0.1, size=n), 0, 1)
    return x, y


def test_exact_mcnemar_matches_statsmodels_and_scipy_binomtest() -> None:
    rng = np.random.default_rng(1)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        table = PairedTable.of(x, y)
        ours = mcnemar(x, y).p_value
        if table.discordant:
            assert abs(ours - sm_mcnemar(table.matrix(), exact=True).pvalue) < TOL
            assert abs(ours - sps.binomtest(table.only_y, table.discordant, 0.5).pvalue) < TOL
        else:
            assert ours == 1.0


def test_asymptotic_mcnemar_matches_statsmodels_and_the_chi_square_formula() -> None:
    rng = np.random.default_rng(2)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        table = PairedTable.of(x, y)
        if not table.discordant:
            continue
        ours = mcnemar(x, y, exact=False)
        statistic = (abs(table.only_x - table.only_y) - 1) ** 2 / table.discordant
        assert abs(ours.statistic - statistic) < TOL
        assert abs(ours.p_value - sm_mcnemar(table.matrix(), exact=False, correction=True).pvalue) < TOL
        assert abs(ours.p_value - sps.chi2.sf(statistic, 1)) < TOL


def test_midp_mcnemar_matches_its_definition_summed_from_scipy_pmf() -> None:
    rng = np.random.default_rng(3)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        t = PairedTable.of(x, y)
        d, b = t.discordant, t.only_x
        if d == 0:
            continue
        pmf = sps.binom.pmf(np.arange(d + 1), d, 0.5)
        observed = pmf[b]
        # mid-p: P(less probable than observed) + half P(as probable as observed)
        expected = pmf[pmf < observed - 1e-15].sum() + 0.5 * pmf[np.abs(pmf - observed) <= 1e-15].sum()
        assert abs(mcnemar(x, y, mid_p=True).p_value - min(1.0, expected)) < TOL
        if t.only_x != t.only_y:
            assert abs(mcnemar(x, y, mid_p=True).p_value - (sps.binomtest(b, d).pvalue - observed)) < TOL


def test_published_worked_examples() -> None:
    """Cavo et al. 2012 (Fagerland, Lydersen & Laake, Statistical Analysis of Contingency
    Tables, ch. 8): 59 both, 6 only first, 16 only second, 80 neither; Ezra 2010: 25 vs 2
    discordant pairs."""
    table = PairedTable(both=59, only_x=16, only_y=6, neither=80)
    x = [1] * 59 + [1] * 16 + [0] * 6 + [0] * 80
    y = [1] * 59 + [0] * 16 + [1] * 6 + [0] * 80
    assert round(mcnemar(x, y).p_value, 6) == 0.052479
    assert round(mcnemar(x, y, mid_p=True).p_value, 6) == 0.034690
    assert round(mcnemar(x, y, exact=False).p_value, 6) == 0.055009
    ci = newcombe_paired(table)
    assert (round(ci.estimate, 4), round(ci.low, 4), round(ci.high, 4)) == (-0.0621, -0.1186, -0.0046)
    ratio = relative_diff_ci(x, y)
    assert (round(ratio.estimate + 1, 4), round(ratio.low + 1, 4), round(ratio.high + 1, 4)) == (0.8667, 0.7597, 0.9886)
    ezra_x, ezra_y = [1] * 2 + [0] * 25, [0] * 2 + [1] * 25
    odds = odds_ratio_discordant(ezra_x, ezra_y)
    assert (round(odds.estimate, 4), round(odds.low, 4), round(odds.high, 4)) == (12.5, 3.1169, 108.8892)


def test_newcombe_interval_builds_on_statsmodels_wilson_limits_and_covers_at_its_level() -> None:
    rng = np.random.default_rng(4)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        ci = paired_diff_ci(x, y)
        assert ci.method == "newcombe_paired"
        assert ci.low - 1e-12 <= ci.estimate <= ci.high + 1e-12 and -1 <= ci.low and ci.high <= 1
        table = PairedTable.of(x, y)
        if table.both + table.only_x in (0, len(x)) or table.both + table.only_y in (0, len(x)):
            continue
        # Without the correlation term the limits are the Wilson limits added in quadrature.
        (l_y, u_y), (l_x, u_x) = (proportion_confint(k, len(x), method="wilson") for k in (table.both + table.only_y, table.both + table.only_x))
        independent_low = ci.estimate - math.hypot(np.mean(y) - l_y, u_x - np.mean(x))
        if (table.both * table.neither - table.only_x * table.only_y) in range(0, len(x) // 2 + 1):
            assert abs(ci.low - independent_low) < TOL
    # coverage: true cells p(both) .35, p(only control) .15, p(only treatment) .25, n = 100
    probs = [0.35, 0.15, 0.25, 0.25]
    truth = 0.25 - 0.15
    covered = 0
    for _ in range(2000):
        both, only_x, only_y, neither = rng.multinomial(100, probs)
        ci = newcombe_paired(PairedTable(both, only_x, only_y, neither))
        covered += ci.low <= truth <= ci.high
    assert 0.93 <= covered / 2000 <= 0.97, covered / 2000


def test_ratio_interval_equals_the_paired_risk_ratio_formula_on_tables() -> None:
    rng = np.random.default_rng(5)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        t = PairedTable.of(x, y)
        x_right, y_right = t.both + t.only_x, t.both + t.only_y
        if not x_right or not y_right:
            continue
        se = math.sqrt(t.discordant / (x_right * y_right))
        ratio = y_right / x_right
        ours = relative_diff_ci(x, y)
        z = sps.norm.ppf(0.975)
        assert abs(ours.estimate - (ratio - 1)) < TOL
        assert abs(ours.low - (ratio * math.exp(-z * se) - 1)) < TOL
        assert abs(ours.high - (ratio * math.exp(z * se) - 1)) < TOL


def test_discordant_odds_ratio_interval_is_the_transformed_clopper_pearson_interval() -> None:
    rng = np.random.default_rng(6)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        t = PairedTable.of(x, y)
        if t.only_x == 0 or t.only_y == 0:
            continue
        low, high = proportion_confint(t.only_y, t.discordant, alpha=0.05, method="beta")
        ours = odds_ratio_discordant(x, y)
        assert abs(ours.estimate - t.only_y / t.only_x) < TOL
        assert abs(ours.low - low / (1 - low)) < TOL * max(1, ours.low)
        assert abs(ours.high - high / (1 - high)) < TOL * max(1, ours.high)


def test_cohens_h_matches_statsmodels_effect_size() -> None:
    rng = np.random.default_rng(7)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        ours = cohens_h(x, y)
        assert abs(ours.estimate - proportion_effectsize(np.mean(y), np.mean(x))) < TOL
        if math.isfinite(ours.low):
            assert ours.low <= ours.estimate <= ours.high


def test_cochran_q_matches_statsmodels_and_reduces_to_mcnemar_for_two_conditions() -> None:
    rng = np.random.default_rng(8)
    for _ in range(DATASETS):
        n, k = int(rng.integers(5, 200)), int(rng.integers(2, 7))
        base = rng.random(n)
        matrix = (rng.random((n, k)) < np.clip(base[:, None] + rng.normal(0, 0.2, (n, k)), 0, 1)).astype(int)
        ours = cochran_q(matrix)
        row_sums = matrix.sum(axis=1)
        if not np.any((row_sums > 0) & (row_sums < k)):
            assert ours.p_value == 1.0
            continue
        reference = sm_cochrans_q(matrix)
        assert abs(ours.statistic - reference.statistic) < TOL and abs(ours.p_value - reference.pvalue) < TOL
        if k == 2:
            t = PairedTable.of(matrix[:, 0], matrix[:, 1])
            assert abs(ours.statistic - (t.only_x - t.only_y) ** 2 / t.discordant) < TOL


def test_friedman_wilcoxon_and_paired_t_match_scipy_and_statsmodels() -> None:
    rng = np.random.default_rng(9)
    for _ in range(DATASETS):
        x, y = _scores(rng)
        w = wilcoxon(x, y)
        assert abs(w.p_value - sps.wilcoxon(y - x).pvalue) < TOL
        t = paired_t(x, y)
        reference = DescrStatsW(y - x).ttest_mean()
        assert abs(t.statistic - reference[0]) < TOL and abs(t.p_value - reference[1]) < TOL
        ci = paired_diff_ci(x, y)
        low, high = DescrStatsW(y - x).tconfint_mean(alpha=0.05)
        assert ci.method == "paired_t" and abs(ci.low - low) < TOL and abs(ci.high - high) < TOL
        z = np.clip(y + rng.normal(0, 0.1, size=len(x)), 0, 1)
        f = friedman(np.column_stack([x, y, z]))
        assert abs(f.p_value - sps.friedmanchisquare(x, y, z).pvalue) < TOL


def test_paired_bootstrap_interval_is_scipy_bca_on_the_paired_differences() -> None:
    """Differences with many distinct values go through scipy.stats.bootstrap itself: identical for a seed."""
    rng = np.random.default_rng(14)
    for index in range(DATASETS):
        x, y = _scores(rng)
        ours = bootstrap_interval(x, y, n_resamples=999, seed=index)
        diff = np.asarray(y, dtype=float) - np.asarray(x, dtype=float)
        assert np.unique(diff).size * FEW_VALUES_FACTOR > diff.size  # scipy's path
        reference = sps.bootstrap((diff,), np.mean, n_resamples=999, method="BCa", rng=np.random.default_rng(index)).confidence_interval
        assert abs(ours.low - reference.low) < TOL and abs(ours.high - reference.high) < TOL
    assert paired_diff_ci([0, 1, 1, 0, 1], [1, 1, 1, 0, 1], method="bootstrap").method == "paired_bootstrap"


def test_bootstrap_of_few_distinct_differences_is_scipy_bca_within_monte_carlo_error() -> None:
    """0/1 outcomes resampled as counts per value: scipy's BCa from the same bootstrap
    distribution is identical, the distribution is scipy's index resampling's (same quantiles
    within Monte Carlo error), and so is the interval."""
    from types import SimpleNamespace

    rng = np.random.default_rng(15)
    for index in range(40):
        x, y = _binary_pairs(rng)
        diff = (y - x).astype(float)
        values, counts = np.unique(diff, return_counts=True)
        if values.size < 2 or values.size * FEW_VALUES_FACTOR > diff.size:
            continue
        means = resampled_means(values, counts, 999, np.random.default_rng(index))
        given = SimpleNamespace(bootstrap_distribution=means)
        reference = sps.bootstrap((diff,), np.mean, n_resamples=0, method="BCa", bootstrap_result=given).confidence_interval
        assert np.allclose(bca_interval_of_mean(means, values, counts, 0.95), (reference.low, reference.high), atol=TOL, rtol=0)
        ours = bootstrap_interval(x, y, n_resamples=4999, seed=index)
        theirs = sps.bootstrap((diff,), np.mean, n_resamples=4999, method="BCa", rng=np.random.default_rng(index)).confidence_interval
        # endpoints are quantiles of 4,999 draws on a grid of 1/n: they agree to a few grid steps
        slack = 0.1 * (theirs.high - theirs.low) + 2 / diff.size
        assert abs(ours.low - theirs.low) <= slack and abs(ours.high - theirs.high) <= slack
    # the count-resampled means have the index-resampled means' distribution
    diff = np.repeat([-1.0, 0.0, 1.0], [150, 500, 350])
    values, counts = np.unique(diff, return_counts=True)
    by_counts = resampled_means(values, counts, 20000, np.random.default_rng(1))
    by_index = diff[np.random.default_rng(2).integers(0, diff.size, (20000, diff.size))].mean(axis=1)
    assert sps.ks_2samp(by_counts, by_index).pvalue > 1e-3
    assert abs(by_counts.std() - by_index.std()) < 0.03 * by_index.std()


def test_permutation_test_is_exact_against_enumerating_every_sign_flip() -> None:
    rng = np.random.default_rng(10)
    for _ in range(DATASETS):
        n = int(rng.integers(3, 11))
        x, y = rng.random(n), rng.random(n) + rng.normal(0, 0.2)
        diff = y - x
        observed = abs(diff.mean())
        flips = np.array(list(itertools.product((1, -1), repeat=n)))
        means = np.abs((flips * diff).mean(axis=1))
        expected = np.mean(means >= observed - 1e-12)
        assert abs(permutation_test(x, y).p_value - expected) < TOL


def test_adjust_matches_statsmodels_and_leaves_missing_values_out_of_the_family(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    monkeypatch.setattr(gc, "collect", lambda *args: 0)  # statsmodels' Holm collects garbage on every call
    rng = np.random.default_rng(11)
    for _ in range(DATASETS):
        p = rng.random(int(rng.integers(1, 30))) ** 2
        for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh"), ("bonferroni", "bonferroni")):
            assert np.allclose(adjust(p, ours), multipletests(p, method=theirs)[1], atol=TOL, rtol=0)
    with_missing = adjust([0.01, None, 0.04, float("nan")], "holm")
    assert np.isnan(with_missing[1]) and np.isnan(with_missing[3])
    assert np.allclose(with_missing[[0, 2]], multipletests([0.01, 0.04], method="holm")[1])
    with pytest.raises(ValueError, match="allowed"):
        adjust([0.1], "sidak-ish")


def test_random_effects_match_statsmodels_and_the_dersimonian_laird_formula() -> None:
    rng = np.random.default_rng(12)
    for _ in range(DATASETS):
        k = int(rng.integers(2, 12))
        effects, variances = rng.normal(0.05, 0.08, k), rng.uniform(0.0005, 0.01, k)
        pm = random_effects(effects, variances, hksj=False)
        reference = combine_effects(effects, variances, method_re="iterated")
        assert abs(pm.estimate - reference.mean_effect_re) < TOL
        assert abs(pm.ci_low - reference.conf_int(alpha=0.05, use_t=False)[1][0]) < TOL
        # the default HKSJ interval is statsmodels' t interval on the WLS scale, or the z-width one where that is narrower
        hksj = random_effects(effects, variances)
        if reference.var_hksj_re >= reference.sd_eff_w_re**2:
            assert abs(hksj.ci_low - reference.conf_int(alpha=0.05, use_t=True)[3][0]) < TOL
        assert hksj.ci_high - hksj.ci_low >= pm.ci_high - pm.ci_low
        dl = random_effects(effects, variances, tau="dl", hksj=False)
        w = 1 / variances
        fixed = np.sum(w * effects) / w.sum()
        q = np.sum(w * (effects - fixed) ** 2)
        tau2 = max(0.0, (q - (k - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
        w_re = 1 / (variances + tau2)
        estimate = np.sum(w_re * effects) / w_re.sum()
        se = math.sqrt(1 / w_re.sum())
        assert abs(dl.tau2 - tau2) < TOL and abs(dl.estimate - estimate) < TOL
        assert abs(dl.p_value - 2 * sps.norm.sf(abs(estimate) / se)) < TOL


def test_exact_power_equals_summing_the_test_over_every_possible_table() -> None:
    """The rejection regions the power function uses are the tests' own decisions."""
    rng = np.random.default_rng(13)
    decisions: dict[tuple[int, int, bool], float] = {}

    def p_value(only_x: int, only_y: int, mid: bool) -> float:
        key = (only_x, only_y, mid)
        if key not in decisions:
            decisions[key] = mcnemar([1] * only_x + [0] * only_y, [0] * only_x + [1] * only_y, mid_p=mid).p_value
        return decisions[key]

    for _ in range(DATASETS):
        n = int(rng.integers(8, 45))
        p_control = float(rng.uniform(0.2, 0.8))
        delta = float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.2))
        if not 0 < p_control + delta < 1:
            continue
        alpha = float(rng.choice([0.05, 0.01, 0.1]))
        mid = bool(rng.integers(0, 2))
        plan = power_paired_binary(p_control, delta, n, alpha=alpha, test="midp" if mid else "exact")
        p10 = (plan.discordance - delta) / 2
        total = 0.0
        for d in range(n + 1):
            rejects = np.array([p_value(b, d - b, mid) <= alpha for b in range(d + 1)])
            given_d = sps.binom.pmf(np.arange(d + 1), d, p10 / plan.discordance)
            total += sps.binom.pmf(d, n, plan.discordance) * float(given_d[rejects].sum())
        assert abs(plan.power - total) < TOL, (n, p_control, delta, alpha, mid)


# -- independent computations: where the workbench calls a library, the tests above compare the
# library with itself; these check the same numbers against enumeration or the method's definition.


def test_exact_mcnemar_equals_enumerating_the_binomial_distribution_of_the_discordant_pairs() -> None:
    """Under the null each discordant pair falls either way with probability 1/2: the two-sided
    exact p sums the probabilities of every split no more probable than the observed one."""
    from fractions import Fraction

    rng = np.random.default_rng(15)
    for _ in range(DATASETS):
        x, y = _binary_pairs(rng)
        t = PairedTable.of(x, y)
        d = t.discordant
        if d == 0:
            continue
        observed = math.comb(d, t.only_x)
        exact = sum(Fraction(math.comb(d, k), 2**d) for k in range(d + 1) if math.comb(d, k) <= observed)
        assert abs(mcnemar(x, y).p_value - float(min(Fraction(1), exact))) < TOL


def test_cochran_q_equals_its_textbook_formula() -> None:
    """Q = (k - 1) (k sum_j C_j^2 - N^2) / (k N - sum_i R_i^2), C_j column totals, R_i row totals,
    N the grand total (Cochran 1950); p from the chi-square with k - 1 df."""
    rng = np.random.default_rng(16)
    for _ in range(DATASETS):
        n, k = int(rng.integers(5, 200)), int(rng.integers(2, 7))
        base = rng.random(n)
        matrix = (rng.random((n, k)) < np.clip(base[:, None] + rng.normal(0, 0.2, (n, k)), 0, 1)).astype(int)
        rows, columns, total = matrix.sum(axis=1), matrix.sum(axis=0), int(matrix.sum())
        denominator = k * total - int(np.sum(rows**2))
        ours = cochran_q(matrix)
        if denominator == 0:
            assert ours.p_value == 1.0
            continue
        q = (k - 1) * (k * int(np.sum(columns**2)) - total**2) / denominator
        assert abs(ours.statistic - q) < TOL and abs(ours.p_value - sps.chi2.sf(q, k - 1)) < TOL and ours.df == k - 1


def test_wilcoxon_equals_enumerating_every_sign_of_the_ranks() -> None:
    """Without ties or zeros, the exact null distribution of the signed-rank statistic is the
    sum of the ranks over all 2**n sign patterns; two-sided p = 2 min(P(W <= w), P(W >= w))."""
    rng = np.random.default_rng(17)
    for _ in range(DATASETS):
        n = int(rng.integers(4, 13))
        x = rng.random(n)
        y = x + rng.normal(rng.normal(0, 0.2), 0.3, n)
        diff = y - x
        ranks = sps.rankdata(np.abs(diff))
        positive = float(ranks[diff > 0].sum())
        signs = np.array(list(itertools.product((0, 1), repeat=n)))
        null = signs @ ranks
        expected = min(1.0, 2 * min(np.mean(null <= positive + 1e-9), np.mean(null >= positive - 1e-9)))
        ours = wilcoxon(x, y)
        assert ours.statistic == min(positive, n * (n + 1) / 2 - positive)
        assert abs(ours.p_value - expected) < TOL


def test_paule_mandel_tau2_solves_its_estimating_equation() -> None:
    """Paule & Mandel (1982): tau^2 makes the generalised Q statistic equal its expectation,
    sum w_i (y_i - mu)^2 = k - 1 with w_i = 1 / (v_i + tau^2), or is 0 when Q(0) < k - 1.
    Solved here by bracketing root-finding, independently of statsmodels' iteration."""
    from scipy.optimize import brentq

    rng = np.random.default_rng(18)
    for _ in range(DATASETS):
        k = int(rng.integers(2, 12))
        effects, variances = rng.normal(0.05, rng.uniform(0.01, 0.15), k), rng.uniform(0.0005, 0.01, k)

        def excess(tau2: float) -> float:
            w = 1 / (variances + tau2)
            mu = np.sum(w * effects) / w.sum()
            return float(np.sum(w * (effects - mu) ** 2) - (k - 1))

        tau2 = 0.0 if excess(0.0) <= 0 else brentq(excess, 0.0, 10.0, xtol=1e-14)
        w = 1 / (variances + tau2)
        estimate = float(np.sum(w * effects) / w.sum())
        ours = random_effects(effects, variances, hksj=False)
        assert abs(ours.tau2 - tau2) < 1e-6 * max(1.0, tau2) and abs(ours.estimate - estimate) < 1e-6
        z = sps.norm.ppf(0.975)
        assert abs(ours.ci_low - (estimate - z / math.sqrt(w.sum()))) < 1e-6
