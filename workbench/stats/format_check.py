"""The format diagnostic: is a condition's effect one of answer format rather than skill?

A stimulus can change how a model words its answer ("The answer is 32.", "32 (confidence: 0.9)",
only a confidence) as well as the answer itself, and a parser that misreads the wording turns
the first into an apparent change of accuracy. Per model, task (and across tasks) and condition,
from the `scores` rows of the log:

- `unparseable`: the share of responses the strict extractor finds no answer in (status
  no_answer), with its paired difference to the control (`unparseable_delta`, interval, p);
- `gold_in_zero`: of the responses that scored 0 under the table's extractor (a wrong answer or
  none), the share that name a gold answer (`contains_gold`); its test compares the per-response
  indicator "scored 0 and names the gold" with the control's (`gold_in_zero_delta`, p);
- the effect (difference in mean score to the control, interval, p) under `strict` and under
  `flexible` side by side.

Tests are the comparison table's (workbench.stats.table): the exact McNemar test on the
per-example 0/1 indicators, or the paired t-test on per-example means when there are repeats;
errored trials (no response) are left out of the shares. A condition is flagged when any of
FLAG_RULES holds, each at the unadjusted level ALPHA: a screen that errs towards flagging, not a
test of a hypothesis. Pure functions over a frame of the log; `read_format` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..scoring.extract import DIAGNOSTIC_EXTRACTORS, ERROR, NO_ANSWER, OK
from ..core.records import Record
from .table import ALL_TASKS, Comparison, compare_pair, _ordered, per_example, scored_frame, trial_count, weighted_mean

ALPHA = 0.05
STRICT, FLEXIBLE = DIAGNOSTIC_EXTRACTORS
KEYS = ["model", "condition", "task", "item_id", "repeat"]
FORMAT_MARK = "‡"


@dataclass(frozen=True)
class FormatRow(Record):
    model: str
    task: str  # a task id, or "all" across the run's tasks
    condition: str
    control: str
    extractor: str  # the table's extractor: the one `gold_in_zero` reads scores of
    responses: int  # trials with a response (errored trials have none)
    unparseable: float | None  # share of responses the strict extractor finds no answer in
    unparseable_delta: float | None = None
    unparseable_low: float | None = None
    unparseable_high: float | None = None
    unparseable_p: float | None = None
    zero_scored: int = 0  # responses scored 0 under the table's extractor (wrong or no answer)
    gold_in_zero: float | None = None  # share of those that name a gold answer
    gold_in_zero_delta: float | None = None  # difference of the per-response indicator to the control
    gold_in_zero_p: float | None = None
    strict_delta: float | None = None  # the effect on the mean score under the strict extractor
    strict_low: float | None = None
    strict_high: float | None = None
    strict_p: float | None = None
    flexible_delta: float | None = None  # ... and under the flexible one
    flexible_low: float | None = None
    flexible_high: float | None = None
    flexible_p: float | None = None
    flagged: bool = False
    reasons: str = ""  # the FLAG_RULES that hold, comma-separated

    @property
    def is_control(self) -> bool:
        return self.condition == self.control


def _below(p: float | None) -> bool:
    return p is not None and np.isfinite(p) and p < ALPHA


def _signs_disagree(row: FormatRow) -> bool:
    a, b = row.strict_delta, row.flexible_delta
    return a is not None and b is not None and a * b < 0


def _significance_disagrees(row: FormatRow) -> bool:
    return row.strict_p is not None and row.flexible_p is not None and _below(row.strict_p) != _below(row.flexible_p)


# Each rule: its name in `reasons` -> whether it holds for a (treated) row.
FLAG_RULES: dict[str, Callable[[FormatRow], bool]] = {
    "unparseable": lambda row: _below(row.unparseable_p),  # strict finds no answer more or less often than in the control
    "gold_in_zero": lambda row: _below(row.gold_in_zero_p),  # zero-scored answers name the gold more or less often
    "sign": _signs_disagree,  # strict and flexible effects point different ways
    "significance": _significance_disagrees,  # one of them is significant, the other not
}


def read_format(con: Any, run_id: str, extractor: str | None) -> pd.DataFrame:
    """The `scores` rows the diagnostic needs (strict, flexible and the table's extractor), keyed by trial."""
    names = sorted({*DIAGNOSTIC_EXTRACTORS, *([extractor] if extractor else [])})
    return con.execute(
        "SELECT t.model, t.condition, t.task, t.item_id, t.repeat, s.extractor, s.status, s.score, s.contains_gold "
        "FROM trials t JOIN scores s ON s.trial_id = t.trial_id WHERE t.run_id = ? AND s.extractor IN (SELECT unnest(?))",
        [run_id, names],
    ).df()


# A trial's readings side by side (one column per extractor's status and score, the table's
# extractor's gold mention), as `read_format_counted` reads them and `_wide` makes them of rows.
WIDE = ("strict_status", "strict_score", "flexible_status", "flexible_score", "chosen_status", "chosen_score", "chosen_gold")
GROUP = ["model", "condition", "task", "item_id"]


def read_format_counted(con: Any, run_id: str, extractor: str | None) -> pd.DataFrame:
    """What `read_format` reads, side by side per trial and grouped by DuckDB: one row per model,
    condition, example and readings, with `trials`, how many trials it stands for."""
    present = {r[0] for r in con.execute("SELECT DISTINCT extractor FROM scores").fetchall()}
    chosen = extractor if extractor in present else FLEXIBLE
    names = sorted({*DIAGNOSTIC_EXTRACTORS, chosen})
    under = {"strict": STRICT, "flexible": FLEXIBLE, "chosen": chosen}
    readings = ", ".join(
        f"any_value({column}) FILTER (WHERE extractor = '{name}') AS {prefix}_{column}"
        for prefix, name in under.items() for column in ("status", "score")
    )
    # Each trial's readings pivoted by trial id first, then joined to its trial: joining every
    # score row to its trial before grouping took half as long again.
    frame = con.execute(
        f"WITH readings AS (SELECT trial_id, {readings}, any_value(contains_gold) FILTER (WHERE extractor = '{chosen}') AS chosen_gold "
        "FROM scores WHERE extractor IN (SELECT unnest(?)) GROUP BY trial_id) "
        f"SELECT {', '.join(f't.{c}' for c in GROUP)}, {', '.join(WIDE)}, count(*) AS trials "
        "FROM trials t JOIN readings r USING (trial_id) WHERE t.run_id = ? "
        f"GROUP BY ALL ORDER BY model, task, item_id, condition, {', '.join(WIDE)}",
        [names, run_id],
    ).df()
    frame.attrs["extractors"] = present  # which extractors the log holds scores of
    frame.attrs["chosen"] = chosen
    return frame


def _under(scores: pd.DataFrame, extractor: str) -> pd.DataFrame:
    return scores[scores["extractor"] == extractor].drop(columns="extractor").drop_duplicates(KEYS)


def _with_example(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(example=frame["task"].astype(str) + "\x1f" + frame["item_id"].astype(str))


def _wide(scores: pd.DataFrame, extractor: str) -> pd.DataFrame:
    """`read_format`'s rows side by side per trial, as `read_format_counted` has them (one trial a row)."""
    under = {"strict": _under(scores, STRICT).set_index(KEYS), "flexible": _under(scores, FLEXIBLE).set_index(KEYS), "chosen": _under(scores, extractor).set_index(KEYS)}
    index = under["strict"].index.union(under["chosen"].index).union(under["flexible"].index)
    out = pd.DataFrame(index=index)
    for prefix, rows in under.items():
        out[f"{prefix}_status"] = rows["status"].reindex(index)
        out[f"{prefix}_score"] = rows["score"].reindex(index)
    out["chosen_gold"] = under["chosen"]["contains_gold"].reindex(index)
    return out.reset_index()


def _indicators(wide: pd.DataFrame) -> pd.DataFrame:
    """Per trial (or counted row): `unparseable` (strict) and `gold_zero` (the table's extractor),
    NaN without a response; over the trials the strict or the table's extractor read."""
    out = wide[wide["strict_status"].notna() | wide["chosen_status"].notna()].copy()
    answered = out["strict_status"] != ERROR
    out["unparseable"] = (out["strict_status"] == NO_ANSWER).astype(float).where(answered)
    status = out["chosen_status"]
    zero = (status == NO_ANSWER) | ((status == OK) & (out["chosen_score"].astype(float) <= 0.0))
    out["zero"] = zero.astype(float).where(status != ERROR)
    out["gold_zero"] = (zero & out["chosen_gold"].astype("boolean").fillna(False).astype(bool)).astype(float).where(status != ERROR)
    return _with_example(out)


def _values(wide: pd.DataFrame, name: str, errors: str, no_answer: str) -> pd.DataFrame:
    """The scored trials (or counted rows) under one extractor, as the table scores them."""
    rows = wide[wide[f"{name}_status"].notna()].rename(columns={f"{name}_status": "status", f"{name}_score": "score"})
    return scored_frame(rows[[*GROUP, "status", "score", *(["trials"] if "trials" in rows else [])]], errors, no_answer)


def _effect(frame: pd.DataFrame, column: str, control: str, condition: str, level: float) -> dict[str, Any]:
    """Paired difference of `column` (condition - control) over the examples both have, as the table computes it."""
    matrix = per_example(frame.rename(columns={column: "value"})[["example", "condition", "value", *(["trials"] if "trials" in frame else [])]])
    return compare_pair(matrix.pair(control, condition), "auto", level)


def _subset(frame: pd.DataFrame, model: str, task: str) -> pd.DataFrame:
    frame = frame[frame["model"] == model]
    return frame if task == ALL_TASKS else frame[frame["task"] == task]


def _fields(prefix: str, stats: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_delta": stats.get("delta"), f"{prefix}_low": stats.get("ci_low"), f"{prefix}_high": stats.get("ci_high"), f"{prefix}_p": stats.get("p_value")}


def _flagged(row: FormatRow) -> FormatRow:
    reasons = [name for name, holds in FLAG_RULES.items() if holds(row)]
    return replace(row, flagged=bool(reasons), reasons=",".join(reasons))


def format_diagnostic(
    scores: pd.DataFrame,
    control: str,
    extractor: str | None,
    *,
    errors: str = "wrong",
    no_answer: str = "wrong",
    level: float = 0.95,
    conditions: Sequence[str] | None = None,
    order: Sequence[str] = (),
    task_order: Sequence[str] = (),
) -> list[FormatRow]:
    """One row per model, task (and `all` across tasks when there are several) and condition, the
    control's first; empty when the log holds no strict and flexible scores (a log written before
    extractors, or judge-graded tasks only). `extractor`: the table's (default: flexible).
    `scores`: `read_format`'s rows, or `read_format_counted`'s (grouped by DuckDB)."""
    counted = "trials" in scores
    # not set(column): iterating 100,000s of Arrow strings in Python took half a second
    present = scores.attrs.get("extractors", set()) if counted else set(scores["extractor"].unique())
    extractor = scores.attrs.get("chosen") if counted else (extractor if extractor in present else FLEXIBLE)
    if scores.empty or not {STRICT, FLEXIBLE} <= present:
        return []
    if conditions is not None:
        scores = scores[scores["condition"].isin([control, *conditions])]
    wide = scores if counted else _wide(scores, extractor)
    marks = _indicators(wide)
    values = {name: _values(wide, prefix, errors, no_answer) for prefix, name in (("strict", STRICT), ("flexible", FLEXIBLE))}
    rows: list[FormatRow] = []
    for model in marks["model"].drop_duplicates():
        mine = marks[marks["model"] == model]
        tasks = _ordered(list(mine["task"].drop_duplicates()), task_order)
        names = _ordered(list(mine["condition"].drop_duplicates()), order, control)
        for task in [*tasks, ALL_TASKS] if len(tasks) > 1 else tasks:
            here, by = _subset(mine, model, task), {name: _subset(frame, model, task) for name, frame in values.items()}
            for condition in names:
                trials = here[here["condition"] == condition]
                answered = trials["unparseable"].notna()
                zero = trials["zero"] == 1.0
                row = FormatRow(
                    model=str(model), task=str(task), condition=str(condition), control=control, extractor=str(extractor),
                    responses=trial_count(trials, answered),
                    unparseable=weighted_mean(trials[answered], "unparseable"),
                    zero_scored=trial_count(trials, zero),
                    gold_in_zero=weighted_mean(trials[zero], "gold_zero"),
                )
                if condition != control and control in names:
                    gold = _effect(here, "gold_zero", control, condition, level)
                    row = replace(
                        row,
                        **_fields("unparseable", _effect(here, "unparseable", control, condition, level)),
                        gold_in_zero_delta=gold.get("delta"), gold_in_zero_p=gold.get("p_value"),
                        **_fields("strict", _effect(by[STRICT], "value", control, condition, level)),
                        **_fields("flexible", _effect(by[FLEXIBLE], "value", control, condition, level)),
                    )
                    row = _flagged(row)
                rows.append(row)
    return rows


def with_format(comparison: Comparison, rows: list[FormatRow]) -> Comparison:
    """The comparison with its format block, each row of a flagged condition marked (`format_flag`)."""
    flagged = {(r.model, r.task, r.condition) for r in rows if r.flagged}
    marked = [replace(r, format_flag=(r.model, r.task, r.condition) in flagged) for r in comparison.rows]
    notes = list(comparison.notes)
    if flagged:
        notes.append(
            f"{FORMAT_MARK} the format diagnostic flags the condition: its effect may be one of answer format rather than skill "
            f"(the strict extractor's no-answer share or the share of zero-scored answers naming the gold differs from the control's "
            f"at p < {ALPHA:g}, or the strict and flexible effects disagree in sign or significance)"
        )
    elif rows:
        notes.append("the format diagnostic flags no condition")
    return replace(comparison, rows=marked, format=rows, notes=notes)
