"""Statistics at their edges: zero variance, no discordant pairs, a control at 0 or at chance,
few tasks, partial runs. Each case is one a reviewer met (issue 11, point 1)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from workbench.stats import compare, paired_diff_ci, paired_t
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
