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

from ..core.records import Record

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
    df: float | None = None  # of the t interval and test (HKSJ: k - 1); None for z


def random_effects(
    effects: Sequence[float], variances: Sequence[float], level: float = 0.95, tau: str = "pm", hksj: bool = True,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> PooledEffect:
    """Random-effects pooled effect; needs at least 2 effects.

    hksj=True (the default): the Hartung-Knapp-Sidik-Jonkman interval and test, a t with k - 1
    df on the weighted residual variance (statsmodels' `var_hksj_re`), never narrower than the
    z interval (Knapp & Hartung 2003's modification: with tau^2 at 0 the plain HKSJ variance
    can fall below the z one). With few tasks the z interval is too narrow (IntHout, Ioannidis &
    Borm 2014); with many the two agree. hksj=False: the z interval and test."""
    eff, var = np.asarray(effects, dtype=float), np.asarray(variances, dtype=float)
    if eff.size < 2 or eff.shape != var.shape:
        raise ValueError("random_effects needs at least 2 effects with one variance each")
    if np.any(var <= 0):
        raise ValueError("variances must be positive")
    if tau not in TAU_METHODS:
        raise ValueError(f"unknown tau^2 estimator {tau!r} (allowed: {', '.join(TAU_METHODS)})")
    k = int(eff.size)
    if tau == "pm":
        result = combine_effects(eff, var, method_re=TAU_METHODS[tau], alpha=1.0 - level, use_t=hksj)
        estimate, se, tau2, q = float(result.mean_effect_re), float(result.sd_eff_w_re), float(result.tau2), float(result.q)
        var_hksj = float(result.var_hksj_re)
    else:
        # statsmodels' one-step DerSimonian-Laird leaves tau^2 negative when Q < k - 1; DL truncate it at 0.
        w = 1.0 / var
        fixed = float(np.sum(w * eff) / w.sum())
        q = float(np.sum(w * (eff - fixed) ** 2))
        tau2 = max(0.0, (q - (k - 1)) / float(w.sum() - np.sum(w**2) / w.sum()))
        w_re = 1.0 / (var + tau2)
        estimate, se = float(np.sum(w_re * eff) / w_re.sum()), float(math.sqrt(1.0 / w_re.sum()))
        var_hksj = float(np.sum(w_re / w_re.sum() * (eff - estimate) ** 2) / (k - 1))
    df = float(k - 1) if hksj else None
    if hksj:
        se = math.sqrt(max(var_hksj, se**2))
    reference = sps.t(df) if df is not None else sps.norm
    crit = float(reference.ppf(0.5 + level / 2))
    p = float(2 * reference.sf(abs(estimate) / se)) if se > 0 else float(estimate == 0)
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    method = f"random_effects_{tau}" + ("_hksj" if hksj else "")
    # An interval past what the effect can be (a difference of accuracies beyond ±1, as HKSJ's t on
    # 1 or 2 df gives) says no more than the bound itself: it is cut at `bounds`.
    low, high = max(estimate - crit * se, bounds[0]), min(estimate + crit * se, bounds[1])
    return PooledEffect(estimate, low, high, p, tau2, i2, q, k, method, level, df)


@dataclass(frozen=True)
class ModelEffect(Record):
    """One condition's coefficient against the control in the GEE model."""

    condition: str
    estimate: float  # odds ratio (binary) or mean difference (scores); nan when not estimable
    ci_low: float
    ci_high: float
    p_value: float
    scale: str  # "odds_ratio" or "difference"
    method: str
    warning: str | None = None  # what the fit warned about, or why it could not be estimated

    @property
    def estimable(self) -> bool:
        return math.isfinite(self.estimate)


NOT_ESTIMABLE = "not estimable"
SEPARATED_SE = 50.0  # a log-odds standard error this large means separation, not an estimate


def _fit_warnings(caught: Sequence[warnings.WarningMessage]) -> str | None:
    """statsmodels' own warnings and numerical ones, once each; library deprecations are not the fit's."""
    messages = [
        f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught
        if w.category.__module__.startswith("statsmodels") or issubclass(w.category, RuntimeWarning)
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def gee_effects(frame: pd.DataFrame, control: str, binary: bool, level: float = 0.95) -> list[ModelEffect]:
    """GEE of the score on condition (control as reference) and task (fixed effect), clustered by
    example with an exchangeable working correlation: repeats and conditions of one example are
    correlated, examples are the independent units. Robust (sandwich) standard errors.

    frame: one row per trial with columns condition, task, example, value. Every condition gets
    an effect: one the fit warned about carries the warning; one the model cannot estimate (a
    condition always right separates the logit; too few examples) has nan values and says why.
    [] only when there is nothing to compare (no control, or no other condition)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = frame[["condition", "task", "example", "value"]].dropna().copy()
    conditions = [c for c in data["condition"].drop_duplicates() if c != control]
    if control not in set(data["condition"]) or not conditions:
        return []
    scale, method = ("odds_ratio", "gee_logit_exchangeable") if binary else ("difference", "gee_identity_exchangeable")
    nan = float("nan")

    def unestimable(why: str) -> list[ModelEffect]:
        return [ModelEffect(c, nan, nan, nan, nan, scale, method, f"{NOT_ESTIMABLE}: {why}") for c in conditions]

    if data["example"].nunique() < 3:
        return unestimable("fewer than 3 examples")
    data["cond"] = pd.Categorical(data["condition"], categories=[control, *conditions])
    data["task_"] = pd.Categorical(data["task"])
    rhs = "C(cond)" + (" + C(task_)" if data["task_"].nunique() > 1 else "")
    family = sm.families.Binomial() if binary else sm.families.Gaussian()
    z = sps.norm.ppf(0.5 + level / 2)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = smf.gee(f"value ~ {rhs}", groups="example", data=data, family=family, cov_struct=sm.cov_struct.Exchangeable()).fit()
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
        return unestimable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'the fit failed'}")
    warned = _fit_warnings(caught)
    # A condition (or the control) always or never right separates the logit: the fit still
    # "converges", with a huge coefficient and a small sandwich standard error, and no warning.
    constant = set(data.groupby("condition")["value"].agg(lambda v: v.nunique() == 1).loc[lambda c: c].index) if binary else set()
    effects = []
    for condition in conditions:
        name = f"C(cond)[T.{condition}]"
        beta, se = (float(fit.params[name]), float(fit.bse[name])) if name in fit.params.index else (nan, nan)
        separated = bool(constant & {condition, control})
        if separated or not (math.isfinite(beta) and math.isfinite(se)) or se > SEPARATED_SE:
            why = f"{NOT_ESTIMABLE}: separation (the condition or the control always or never right)" + (f"; {warned}" if warned else "")
            effects.append(ModelEffect(condition, nan, nan, nan, nan, scale, method, why))
            continue
        low, high = beta - z * se, beta + z * se
        p = float(fit.pvalues[name])
        if binary:
            effects.append(ModelEffect(condition, math.exp(beta), math.exp(low), math.exp(high), p, scale, method, warned))
        else:
            effects.append(ModelEffect(condition, beta, low, high, p, scale, method, warned))
    return effects
