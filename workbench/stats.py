"""Paired statistics over the log. Functions take plain sequences so scripts can call them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps


def mcnemar(x: Sequence[int] | np.ndarray, y: Sequence[int] | np.ndarray, exact: bool = True) -> float:
    """Two-sided McNemar p-value for paired binary outcomes x (control) and y (treatment).

    Exact: a two-sided binomial test of the discordant pairs at p = 1/2. Otherwise the
    chi-square version with continuity correction.
    """
    a, b = np.asarray(x, dtype=int), np.asarray(y, dtype=int)
    if a.shape != b.shape:
        raise ValueError("x and y must be paired (same length)")
    only_x = int(np.sum((a == 1) & (b == 0)))
    only_y = int(np.sum((a == 0) & (b == 1)))
    n = only_x + only_y
    if n == 0:
        return 1.0
    if exact:
        return float(min(1.0, 2.0 * sps.binom.cdf(min(only_x, only_y), n, 0.5)))
    statistic = (abs(only_x - only_y) - 1) ** 2 / n
    return float(sps.chi2.sf(statistic, 1))


@dataclass(frozen=True)
class ConditionRow:
    model: str
    condition: str
    n: int
    errors: int
    accuracy: float
    delta: float | None
    p_value: float | None
    test: str | None
    mean_rounds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def trial_frame(con, run_id: str) -> pd.DataFrame:
    return con.execute(
        "SELECT model, condition, task, item_id, repeat, score, status, n_calls FROM trials WHERE run_id = ?",
        [run_id],
    ).df()


def condition_table(frame: pd.DataFrame, control: str, errors: str = "wrong", order: Sequence[str] = ()) -> list[ConditionRow]:
    """Per model and condition: n, errors, accuracy and the paired difference to the control.

    Errored trials are wrong (score 0) by default, or dropped with errors="exclude"; either way
    they are counted. Repeats are averaged per example before testing, so they never count as
    independent examples: one repeat gives an exact McNemar test, several a Wilcoxon signed-rank
    test on the per-example means.
    """
    frame = frame.copy()
    frame["is_error"] = frame["status"] == "error"
    if errors == "exclude":
        scored = frame[~frame["is_error"]].copy()
    else:
        scored = frame.copy()
        scored["score"] = scored["score"].fillna(0.0)
    scored["correct"] = (scored["score"] >= 1.0 - 1e-9).astype(float)
    rows: list[ConditionRow] = []
    unit = ["task", "item_id"]
    for model, by_model in scored.groupby("model", sort=False):
        per_example = by_model.groupby(["condition", *unit])["correct"].mean().unstack("condition")
        n_repeats = int(by_model["repeat"].max()) + 1 if len(by_model) else 1
        present = list(by_model["condition"].drop_duplicates())
        for condition in [c for c in order if c in present] + sorted(c for c in present if c not in order):
            in_condition = frame[(frame["model"] == model) & (frame["condition"] == condition)]
            accuracy = float(by_model.loc[by_model["condition"] == condition, "correct"].mean())
            delta = p_value = None
            test = None
            if condition != control and control in per_example:
                pair = per_example[[control, condition]].dropna()
                if len(pair):
                    delta = float(pair[condition].mean() - pair[control].mean())
                    if n_repeats == 1:
                        p_value, test = mcnemar(pair[control].to_numpy(), pair[condition].to_numpy()), "mcnemar_exact"
                    else:
                        diff = pair[condition] - pair[control]
                        p_value = 1.0 if not diff.any() else float(sps.wilcoxon(diff, zero_method="zsplit").pvalue)
                        test = "wilcoxon_per_example_means"
            rows.append(
                ConditionRow(
                    model=str(model),
                    condition=str(condition),
                    n=int(len(in_condition)),
                    errors=int(in_condition["is_error"].sum()),
                    accuracy=accuracy if not math.isnan(accuracy) else 0.0,
                    delta=delta,
                    p_value=p_value,
                    test=test,
                )
            )
    return rows
