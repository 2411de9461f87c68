"""Multiple-comparison correction over a family of p-values.

Benjamini-Hochberg and Bonferroni come from statsmodels' multipletests. Holm's step-down is
computed here: statsmodels' Holm branch runs a full gc.collect() on every call (about 0.1 s in a
loaded process), too slow for the thousands of families a simulation study adjusts; tests check
both agree to 1e-8.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from statsmodels.stats.multitest import multipletests


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    steps = p[order] * np.arange(p.size, 0, -1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return adjusted


def _statsmodels(method: str):
    return lambda p: multipletests(p, method=method)[1]


# Holm is the default: it controls the family-wise error rate under any dependence (conditions
# compared with one control are dependent); BH controls the false discovery rate, on request.
METHODS = {"holm": _holm, "bh": _statsmodels("fdr_bh"), "bonferroni": _statsmodels("bonferroni"), "none": None}


def adjust(pvalues: Sequence[float | None] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values, in the input's order. Missing values (None/NaN) stay missing and are
    not counted in the family."""
    if method not in METHODS:
        raise ValueError(f"unknown adjustment {method!r} (allowed: {', '.join(METHODS)})")
    raw = np.array([np.nan if p is None else p for p in pvalues], dtype=float)
    if np.any((raw < 0) | (raw > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out = raw.copy()
    present = ~np.isnan(raw)
    correct = METHODS[method]
    if correct is not None and present.any():
        out[present] = correct(raw[present])
    return out
