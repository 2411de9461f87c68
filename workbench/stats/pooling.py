"""Across tasks: per-task effects pooled by random-effects meta-analysis, and a GEE logistic
model with examples as clusters and task as a stratum, both from statsmodels.

Paule-Mandel's tau^2 (statsmodels' "iterated") is the default estimator, as recommended over
DerSimonian-Laird by Veroniki et al. (2016); "dl" is available, computed here because
statsmodels does not truncate its tau^2 at zero.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.meta_analysis import combine_effects

from ..records import Record

TAU_METHODS = {"pm": "iterated", "dl": "chi2"}  # ours -> statsmodels' method_re


@dataclass(frozen=True)
class PooledEffect(Record):
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    q: float
    k: int
    method: str
    level: float


def random_effects(effects: Sequence[float], variances: Sequence[float], level: float = 0.95, tau: str = "pm") -> PooledEffect:
    """Random-effects pooled effect with a z interval and test; needs at least 2 effects."""
    eff, var = np.asarray(effects, dtype=float), np.asarray(variances, dtype=float)
    if eff.size < 2 or eff.shape != var.shape:
        raise ValueError("random_effects needs at least 2 effects with one variance each")
    if np.any(var <= 0):
        raise ValueError("variances must be positive")
    if tau not in TAU_METHODS:
        raise ValueError(f"unknown tau^2 estimator {tau!r} (allowed: {', '.join(TAU_METHODS)})")
    z = float(sps.norm.ppf(0.5 + level / 2))
    if tau == "pm":
        result = combine_effects(eff, var, method_re=TAU_METHODS[tau], alpha=1.0 - level)
        estimate, se, tau2, q = float(result.mean_effect_re), float(result.sd_eff_w_re), float(result.tau2), float(result.q)
    else:
        # statsmodels' one-step DerSimonian-Laird leaves tau^2 negative when Q < k - 1; DL truncate it at 0.
        w = 1.0 / var
        fixed = float(np.sum(w * eff) / w.sum())
        q = float(np.sum(w * (eff - fixed) ** 2))
        tau2 = max(0.0, (q - (eff.size - 1)) / float(w.sum() - np.sum(w**2) / w.sum()))
        w_re = 1.0 / (var + tau2)
        estimate, se = float(np.sum(w_re * eff) / w_re.sum()), float(math.sqrt(1.0 / w_re.sum()))
    p = float(2 * sps.norm.sf(abs(estimate) / se)) if se > 0 else float(estimate == 0)
    i2 = max(0.0, (q - (eff.size - 1)) / q) if q > 0 else 0.0
    return PooledEffect(estimate, estimate - z * se, estimate + z * se, p, tau2, i2, q, int(eff.size), f"random_effects_{tau}", level)


@dataclass(frozen=True)
class ModelEffect(Record):
    """One condition's coefficient against the control in the GEE model."""

    condition: str
    estimate: float  # odds ratio (binary) or mean difference (scores)
    ci_low: float
    ci_high: float
    p_value: float
    scale: str  # "odds_ratio" or "difference"
    method: str


def gee_effects(frame: pd.DataFrame, control: str, binary: bool, level: float = 0.95) -> list[ModelEffect]:
    """GEE of the score on condition (control as reference) and task (fixed effect), clustered by
    example with an exchangeable working correlation: repeats and conditions of one example are
    correlated, examples are the independent units. Robust (sandwich) standard errors.

    frame: one row per trial with columns condition, task, example, value. Returns [] when the
    model cannot be estimated (e.g. a condition always right, which separates the logit)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = frame[["condition", "task", "example", "value"]].dropna().copy()
    conditions = [c for c in data["condition"].drop_duplicates() if c != control]
    if control not in set(data["condition"]) or not conditions or data["example"].nunique() < 3:
        return []
    data["cond"] = pd.Categorical(data["condition"], categories=[control, *conditions])
    data["task_"] = pd.Categorical(data["task"])
    rhs = "C(cond)" + (" + C(task_)" if data["task_"].nunique() > 1 else "")
    family = sm.families.Binomial() if binary else sm.families.Gaussian()
    z = sps.norm.ppf(0.5 + level / 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a non-converged or separated fit is no result
            fit = smf.gee(f"value ~ {rhs}", groups="example", data=data, family=family, cov_struct=sm.cov_struct.Exchangeable()).fit()
    except (Warning, ValueError, np.linalg.LinAlgError, ZeroDivisionError):
        return []
    effects = []
    for condition in conditions:
        name = f"C(cond)[T.{condition}]"
        if name not in fit.params.index:
            continue
        beta, se = float(fit.params[name]), float(fit.bse[name])
        if not (math.isfinite(beta) and math.isfinite(se)) or se > 50:
            return []
        low, high = beta - z * se, beta + z * se
        p = float(fit.pvalues[name])
        if binary:
            effects.append(ModelEffect(condition, math.exp(beta), math.exp(low), math.exp(high), p, "odds_ratio", "gee_logit_exchangeable"))
        else:
            effects.append(ModelEffect(condition, beta, low, high, p, "difference", "gee_identity_exchangeable"))
    return effects
