"""Statistics at their edges: zero variance, no discordant pairs, a control at 0 or at chance,
few tasks, partial runs. Each case is one a reviewer met (issue 11, point 1)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from workbench.stats import compare, paired_diff_ci, paired_t, relative_diff_ci
from workbench.stats.effects import bootstrap_interval


def _trials(outcomes: dict[str, list[list[float]]], task: str = "t1", model: str = "m", chance: float | None = None) -> pd.DataFrame:
    """Trials from per-condition lists of per-example repeats: outcomes[c][i][r]."""
    rows = []
    for condition, examples in outcomes.items():
        for index, repeats in enumerate(examples):
            for repeat, value in enumerate(repeats):
                rows.append(
                    {"model": model, "condition": condition, "task": task, "item_id": f"{index:03d}", "repeat": repeat,
                     "score": value, "status": "ok", "n_calls": 1, "chance": chance}
                )
    return pd.DataFrame(rows)


def _row(comparison, condition: str = "EP", task: str | None = None):
    return next(r for r in comparison.rows if r.condition == condition and (task is None or r.task == task))


def test_zero_variance_falls_back_to_the_exact_sign_flip_test_and_an_interval_the_data_allow() -> None:
    """5 examples x 2 repeats, the control always wrong, the treatment always right: every
    per-example difference is 1, so the t statistic is undefined (it gave p = 0 and [1, 1])."""
    frame = _trials({"control": [[0, 0]] * 5, "EP": [[1, 1]] * 5})
    row = _row(compare(frame, "control"))
    # every sign pattern of the 5 differences is equally likely under the null; as extreme: all alike
    flips = np.array(list(itertools.product((1, -1), repeat=5)))
    enumerated = float(np.mean(np.abs(flips.sum(axis=1)) >= 5))
    assert enumerated == 0.0625
    assert row.test == "sign_flip_exact" and row.p_value == pytest.approx(enumerated) and row.delta == 1.0
    assert row.delta_note == "zero_variance"
    # one repeat of the same data: exact McNemar and Newcombe's interval, which the fallback reproduces
    single = _row(compare(frame[frame["repeat"] == 0], "control"))
    assert single.test == "mcnemar_exact" and single.p_value == pytest.approx(0.0625)
    assert (row.ci_low, row.ci_high) == pytest.approx((single.ci_low, single.ci_high))
    assert row.ci_low < 0.5 and row.ci_high == pytest.approx(1.0)


def test_zero_variance_of_fractional_differences_gets_a_bounded_wilson_interval() -> None:
    frame = _trials({"control": [[0, 0]] * 6, "EP": [[1, 0]] * 6})  # every per-example difference is 0.5
    row = _row(compare(frame, "control"))
    assert row.test == "sign_flip_exact" and row.p_value == pytest.approx(2 * 0.5**6)
    assert row.interval == "wilson_bounded" and row.delta_note == "zero_variance"
    assert -1.0 <= row.ci_low < 0.5 < row.ci_high <= 1.0
    for interval in (paired_diff_ci(np.zeros(6), np.full(6, 0.5), method="t"), bootstrap_interval(np.zeros(6), np.full(6, 0.5))):
        assert interval.low < 0.5 < interval.high and interval.note == "zero_variance"
    # differences all 0: p = 1 and an interval around 0, not [0, 0]
    same = paired_t(np.full(8, 0.5), np.full(8, 0.5))
    assert same.p_value == 1.0 and same.test == "sign_flip_exact"
    flat = paired_diff_ci(np.full(8, 0.5), np.full(8, 0.5), method="t")
    assert flat.low < -0.1 and flat.high > 0.1 and math.isclose(flat.estimate, 0.0)


def _binary(control: list[int], condition: list[int], **kwargs) -> pd.DataFrame:
    return _trials({"control": [[v] for v in control], "EP": [[v] for v in condition]}, **kwargs)


def test_no_discordant_pairs_give_intervals_as_wide_as_the_data_allow_not_zero_width() -> None:
    """3 of 20 right in both conditions, on the same examples: Δ's interval is about ±0.14, so
    the relative gain's cannot be [0, 0] (it was "+0.0 [+0.0, +0.0]")."""
    outcomes = [1] * 3 + [0] * 17
    row = _row(compare(_binary(outcomes, outcomes), "control"))
    assert row.ci_low < -0.1 and row.ci_high > 0.1
    assert row.relative == 0.0 and row.relative_low < -0.4 and row.relative_high > 0.4 and row.relative_note == "no_discordant_pairs"
    # half a count in each discordant cell: var log = 1 / (a + 1/2)^2 with a = 3 both right
    assert math.log(1 + row.relative_high) == pytest.approx(1.959964 / 3.5, rel=1e-5)
    assert row.cohens_h == 0.0 and row.cohens_h_low < -0.1 and row.cohens_h_high > 0.1 and row.cohens_h_note == "no_discordant_pairs"
    assert row.odds_ratio is not None and math.isnan(row.odds_ratio) and row.odds_ratio_note == "no_discordant_pairs"


def bonett_price(both: int, only_x: int, only_y: int, level: float = 0.95) -> tuple[float, float]:
    """Bonett & Price's (2006) hybrid Wilson score interval for the ratio of paired proportions,
    treatment / control, minus 1: recommended by Fagerland, Lydersen & Laake (2014, Stat Med 33,
    2850) and immune to empty discordant cells. Written from the paper's formulas."""
    from scipy import stats as sps

    informative, treatment, control = both + only_x + only_y, both + only_y, both + only_x
    spread = math.sqrt((only_x + only_y + 2) / ((treatment + 1) * (control + 1)))
    parts = [math.sqrt((1 - (k + 1) / (informative + 2)) / (k + 1)) for k in (treatment, control)]
    z = spread / sum(parts) * sps.norm.ppf(0.5 + level / 2)

    def wilson(k: int) -> tuple[float, float]:
        root = z * math.sqrt(z * z + 4 * k * (1 - k / informative))
        return (2 * k + z * z - root) / (2 * (informative + z * z)), (2 * k + z * z + root) / (2 * (informative + z * z))

    (l1, u1), (l2, u2) = wilson(treatment), wilson(control)
    return l1 / u2 - 1, u1 / l2 - 1


def test_the_half_count_interval_agrees_with_bonett_price_where_nothing_is_discordant() -> None:
    # the reference implementation reproduces Fagerland, Lydersen & Laake's worked example
    # (Statistical Analysis of Contingency Tables, 2017, ch. 8: Cavo et al. 2012): 0.8667 (0.7579 to 0.9910)
    low, high = bonett_price(59, 16, 6)
    assert (round(low + 1, 4), round(high + 1, 4)) == (0.7579, 0.9910)
    for both, n in ((3, 20), (9, 20), (1, 10), (30, 100), (20, 20)):
        outcomes = [1] * both + [0] * (n - both)
        ours = relative_diff_ci(outcomes, outcomes)
        reference = bonett_price(both, 0, 0)
        assert ours.note == "no_discordant_pairs"
        assert math.log1p(ours.low) == pytest.approx(math.log1p(reference[0]), abs=0.06)
        assert math.log1p(ours.high) == pytest.approx(math.log1p(reference[1]), abs=0.06)


def test_a_control_or_condition_at_zero_and_one_sided_discordance_are_named_not_printed_as_inf() -> None:
    at_zero = _row(compare(_binary([0] * 20, [1] * 4 + [0] * 16), "control"))
    assert math.isnan(at_zero.relative) and at_zero.relative_note == "control_at_0"
    assert at_zero.odds_ratio == math.inf and at_zero.odds_ratio_note == "no_control_only_pairs" and 0 < at_zero.odds_ratio_low < 1
    assert at_zero.cohens_h_note == "accuracy_at_bound" and at_zero.cohens_h_low < at_zero.cohens_h < at_zero.cohens_h_high
    never = _row(compare(_binary([1] * 5 + [0] * 15, [0] * 20), "control"))
    assert never.relative == -1.0 and never.relative_low == -1.0 and never.relative_note == "condition_at_0"
    # 5 discordant pairs all one way: exact McNemar p = 0.0625, so the interval reaches past 0
    assert never.p_value == pytest.approx(0.0625) and 0.0 < never.relative_high < 5.0


def test_relative_gain_is_on_the_normalised_score_for_tasks_with_a_chance_level() -> None:
    """BIG-bench's normalised score, chance 0.5: 0.55 to 0.60 is +100%, not the raw +9.1%."""
    control, condition = [1] * 11 + [0] * 9, [1] * 12 + [0] * 8
    raw = _row(compare(_binary(control, condition), "control"))
    normalised = _row(compare(_binary(control, condition, chance=0.5), "control"))
    assert raw.relative == pytest.approx(0.6 / 0.55 - 1) and raw.relative_scale == "raw"
    assert normalised.relative == pytest.approx(1.0) and normalised.relative_scale == "normalized"
    assert normalised.relative_low < 0 < 1 < normalised.relative_high
    # at chance the normalised gain is undefined, and says so
    at_chance = _row(compare(_binary([1] * 10 + [0] * 10, condition, chance=0.5), "control"))
    assert math.isnan(at_chance.relative) and at_chance.relative_note == "control_at_chance"


def test_pooled_figures_name_the_tasks_they_left_out_and_use_a_ratio_of_pooled_means() -> None:
    """One task at -100% on a 1-in-15 baseline and one with the control at 0 (left out of the
    old mean of ratios while the row said tasks=3); one task too small to pool."""
    frames = [
        _binary([1] * 6 + [0] * 9, [1] * 9 + [0] * 6, task="a"),
        _binary([1] + [0] * 14, [0] * 15, task="b"),
        _binary([0] * 15, [1] * 3 + [0] * 12, task="c"),
        _binary([1], [1], task="d"),
    ]
    result = compare(pd.concat(frames, ignore_index=True), "control", task_order=["a", "b", "c", "d"])
    pooled = result.pooled[0]
    assert pooled.tasks == 3 and pooled.tasks_used == ("a", "b", "c")
    assert [task for task, _ in pooled.tasks_left_out] == ["d"] and "fewer than 2" in pooled.tasks_left_out[0][1]
    control_means, condition_means = [6 / 15, 1 / 15, 0.0], [9 / 15, 0.0, 3 / 15]
    assert pooled.relative.estimate == pytest.approx(np.mean(condition_means) / np.mean(control_means) - 1)
    assert pooled.relative.low < pooled.relative.estimate < pooled.relative.high
    assert pooled.pooled is not None and pooled.pooled.k == 3
    as_dict = pooled.to_dict(json_safe=True)
    assert as_dict["tasks_left_out"] == [{"task": "d", "reason": pooled.tasks_left_out[0][1]}] and "relative_mean" not in as_dict


def test_random_effects_with_few_tasks_use_the_hksj_t_interval_by_default() -> None:
    from scipy import stats as sps

    from workbench.stats import random_effects

    effects, variances = np.array([0.05, 0.12, 0.09]), np.array([0.002, 0.003, 0.0025])
    default, z = random_effects(effects, variances), random_effects(effects, variances, hksj=False)
    assert default.method == "random_effects_pm_hksj" and default.df == 2 and z.df is None
    # HKSJ from its definition: weighted residual variance of the RE estimate, t with k - 1 df
    weights = 1 / (variances + default.tau2)
    estimate = float(np.sum(weights * effects) / weights.sum())
    var_hksj = float(np.sum(weights * (effects - estimate) ** 2) / (2 * weights.sum()))
    se = math.sqrt(max(var_hksj, 1 / weights.sum()))
    assert default.estimate == pytest.approx(estimate, abs=1e-10)
    assert (default.ci_low, default.ci_high) == pytest.approx((estimate - sps.t.ppf(0.975, 2) * se, estimate + sps.t.ppf(0.975, 2) * se), abs=1e-10)
    assert default.p_value == pytest.approx(2 * sps.t.sf(abs(estimate) / se, 2), abs=1e-10)
    assert default.ci_high - default.ci_low > z.ci_high - z.ci_low


def test_gee_says_why_a_condition_has_no_model_estimate_instead_of_dropping_it() -> None:
    """A condition always right separates the logit: statsmodels "converges" to an odds ratio
    of about 4e11 with p = 0 and no warning. The row keeps the condition and says why."""
    from workbench.export import to_markdown

    rng = np.random.default_rng(0)
    frames = [_binary(list((rng.random(30) < 0.5).astype(int)), [1] * 30, task=task) for task in "abc"]
    result = compare(pd.concat(frames, ignore_index=True), "control")
    gee = result.pooled[0].gee
    assert gee is not None and not gee.estimable and "separation" in gee.warning
    assert result.pooled[0].to_dict(json_safe=True)["gee_warning"] == gee.warning
    markdown = to_markdown(result)
    assert "GEE, m · EP: not estimable: separation" in markdown and "the GEE model could not be estimated" in markdown


def test_examples_incomplete_in_either_condition_are_left_out_and_a_partial_run_says_so() -> None:
    """A run still being written: 7 examples x 2 repeats planned, the treatment's last example
    has one repeat in (27 of 28 trials)."""
    frame = _trials({"control": [[1, 0], [0, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 0]], "EP": [[1, 1]] * 6 + [[1]]})
    result = compare(frame, "control", repeats=2, planned=28)
    row = _row(result)
    assert result.partial and (result.trials_done, result.trials_planned) == (27, 28)
    assert result.notes[0] == "partial run: 27 of 28 trials logged; tests use only examples with every repeat logged in both conditions"
    assert row.examples == 6 and row.n == 13
    complete = _trials({"control": [[1, 0], [0, 0], [1, 1], [0, 1], [0, 0], [1, 0]], "EP": [[1, 1]] * 6})
    assert row.p_value == _row(compare(complete, "control")).p_value
    assert result.to_dict()["partial"] is True and not compare(complete, "control", repeats=2, planned=24).partial


def test_the_pooled_interval_of_a_difference_of_accuracies_stays_within_plus_minus_one() -> None:
    """HKSJ's t on 2 df made a real 3-task run's pooled Δ read [-0.82, +1.31]: past what a
    difference of accuracies can be. The interval is cut at ±1; the estimate is unchanged."""
    wrong, right = [[0.0]] * 20, [[1.0]] * 20
    frames = [
        _trials({"control": [[0.9]] * 20, "EP": [[0.9]] * 20}, task="a"),
        _trials({"control": wrong[:16] + right[:4], "EP": right[:19] + wrong[:1]}, task="b"),
        _trials({"control": wrong, "EP": wrong}, task="c"),
    ]
    pooled = next(p for p in compare(pd.concat(frames), "control").pooled if p.condition == "EP")
    assert pooled.pooled is not None and 0.0 < pooled.pooled.estimate < 1.0
    assert -1.0 <= pooled.pooled.ci_low and pooled.pooled.ci_high <= 1.0, (pooled.pooled.ci_low, pooled.pooled.ci_high)
    assert pooled.pooled.ci_high == 1.0, "this heterogeneity takes the HKSJ interval past +1, so it is cut"
