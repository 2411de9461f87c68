"""Why a figure is not what its column's method would give: undefined, unbounded, or computed by
a fallback. Rows carry the code beside the value (e.g. `relative_note`); tables print a mark and
the sentence under the table, so any layout can say it in words.
"""

from __future__ import annotations

ZERO_VARIANCE = "zero_variance"
NO_DISCORDANT_PAIRS = "no_discordant_pairs"
CONTROL_AT_0 = "control_at_0"
CONTROL_AT_CHANCE = "control_at_chance"
CONDITION_AT_0 = "condition_at_0"
CONDITION_AT_CHANCE = "condition_at_chance"
ACCURACY_AT_BOUND = "accuracy_at_bound"
NO_CONTROL_ONLY_PAIRS = "no_control_only_pairs"
GEE_WARNING = "gee_warning"
GEE_NOT_ESTIMABLE = "gee_not_estimable"

# code -> the sentence under the table (in this order: each code's mark is its position's letter)
CAVEATS: dict[str, str] = {
    ZERO_VARIANCE: "every per-example difference is the same, so the t statistic is undefined: exact sign-flip test, and "
    "Newcombe's paired interval (0/1 per example) or the Wilson interval of the rescaled difference instead of the t interval",
    NO_DISCORDANT_PAIRS: "no discordant pairs (the conditions agree on every example): the odds ratio is undefined; the relative-gain "
    "and Cohen's h intervals add half a count to each discordant cell",
    CONTROL_AT_0: "undefined: the control's mean score is 0 (relative gain = Δ / control)",
    CONTROL_AT_CHANCE: "undefined: the control's normalised score is at or below chance (relative gain = Δ / (control − chance))",
    CONDITION_AT_0: "the condition never scored: −100% exactly; the upper limit adds half a count to each discordant cell",
    CONDITION_AT_CHANCE: "the condition's normalised score is at or below chance: the log-ratio interval is undefined",
    ACCURACY_AT_BOUND: "an accuracy at 0 or 1: the interval adds half a count to each discordant cell",
    NO_CONTROL_ONLY_PAIRS: "unbounded: no example where only the control was right",
    GEE_WARNING: "the GEE fit warned (see the notes); its estimate is shown as fitted",
    GEE_NOT_ESTIMABLE: "the GEE model could not be estimated (see the notes)",
}

MARKS = "abcdefghijklmnopqrstuvwxyz"


def mark(code: str | None) -> str:
    """The footnote letter of a caveat ("" for none)."""
    return "" if code is None else MARKS[list(CAVEATS).index(code)]
