"""The comparison table: every condition against the control, per model and task (and across
tasks), from a frame of logged trials.

Units: an example (task, item) is the paired unit. Repeats are averaged per example first, so
they never count as independent examples. Errored trials and trials with no answer of the task's
type are counted in every row, apart; each scores 0 ("wrong", the default) or is left out
("exclude") by its own policy (workbench.scoring.policies), and each row says which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..scoring.extract import NO_ANSWER
from ..scoring.policies import POLICIES, Unscored
from ..core.records import Record, finite
from .effects import Estimate, MeanMoments, cohens_h, normalise, odds_ratio_discordant, paired_diff_ci, paired_variance_of_mean_difference, relative_diff_ci, relative_gain
from .multiplicity import METHODS as ADJUST_METHODS
from .multiplicity import adjust as adjust_pvalues
from .paired import PairedTestResult, cochran_q, friedman, is_binary, mcnemar, paired_t, permutation_test, wilcoxon
from .pooling import ModelEffect, PooledEffect, gee_effects, random_effects

ALL_TASKS = "all"
RAW, NORMALISED = "raw", "normalized"  # the scale of a relative gain
ERROR_POLICIES = POLICIES

PairedTest = Callable[[np.ndarray, np.ndarray], PairedTestResult]


@dataclass(frozen=True)
class PairedTestChoice:
    run: PairedTest
    binary_only: bool


TESTS: dict[str, PairedTestChoice] = {
    "mcnemar": PairedTestChoice(lambda x, y: mcnemar(x, y, exact=True), True),
    "midp": PairedTestChoice(lambda x, y: mcnemar(x, y, exact=True, mid_p=True), True),
    "mcnemar_chi2": PairedTestChoice(lambda x, y: mcnemar(x, y, exact=False), True),
    "t": PairedTestChoice(paired_t, False),
    "wilcoxon": PairedTestChoice(wilcoxon, False),
    "permutation": PairedTestChoice(permutation_test, False),
}
TEST_NAMES = ("auto", *TESTS)

# Which comparisons are corrected together. Each maps a row to its family's key.
FAMILIES: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    # every condition against the control within one model, for one task (or across tasks)
    "model": lambda row: (row.model, row.task),
    # within one model, all conditions and all tasks together (per-task claims)
    "model-tasks": lambda row: (row.model, row.task == ALL_TASKS),
    # every comparison of the run, all models
    "run": lambda row: (row.task == ALL_TASKS,),
}


@dataclass(frozen=True)
class ComparisonRow(Record):
    model: str
    condition: str
    task: str  # a task id, or "all" across the run's tasks
    control: str
    n: int  # trials of this condition, errored ones included
    errors: int
    examples: int  # paired examples in the comparison
    repeats: int  # most repeats of one example (averaged per example before testing)
    accuracy: float | None  # mean score of the condition
    control_accuracy: float | None
    delta: float | None = None  # paired difference in mean score, condition - control
    ci_low: float | None = None
    ci_high: float | None = None
    interval: str | None = None
    delta_note: str | None = None  # a stats.caveats code when a fallback made the test and interval
    relative: float | None = None  # delta / control accuracy (relative gain)
    relative_low: float | None = None
    relative_high: float | None = None
    relative_note: str | None = None  # why the relative gain is undefined or its interval adjusted
    relative_scale: str | None = None  # "raw" accuracy or BIG-bench's "normalized" score (tasks with a chance level)
    odds_ratio: float | None = None  # discordant pairs: only condition right / only control right
    odds_ratio_low: float | None = None
    odds_ratio_high: float | None = None
    odds_ratio_note: str | None = None
    cohens_h: float | None = None
    cohens_h_low: float | None = None
    cohens_h_high: float | None = None
    cohens_h_note: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    test: str | None = None
    adjust: str = "holm"
    family: str = "model"
    family_size: int = 0
    errors_policy: str = "wrong"
    level: float = 0.95
    consumes_gold: bool = False  # the condition's trials read gold labels (an oracle verifier)
    no_answer: int = 0  # trials whose response held no answer of the task's type (counted in n)
    no_answer_policy: str = "wrong"
    extractor: str | None = None  # the answer extractor whose scores the row uses
    format_flag: bool = False  # the format diagnostic says the effect may be one of format (workbench.stats.format_check)

    @property
    def is_control(self) -> bool:
        return self.condition == self.control

    def adjusted(self, p_adjusted: float, family_size: int) -> ComparisonRow:
        return replace(self, p_adjusted=p_adjusted, family_size=family_size)


@dataclass(frozen=True)
class PooledRow:
    """A condition's effect across tasks. The headline is the random-effects pooled Δ with its
    interval (HKSJ by default); beside it the relative gain as a ratio of the task-averaged
    means (each task weighing the same, on the normalised score where tasks have a chance
    level), the mean and max of the per-task Δ, and the GEE model's effect. Every figure uses
    the same `tasks`; `tasks_left_out` names the others and why."""

    model: str
    condition: str
    control: str
    tasks: int
    pooled: PooledEffect | None
    p_adjusted: float | None
    relative: Estimate | None
    delta_mean: float | None
    delta_max: float | None
    gee: ModelEffect | None
    consumes_gold: bool = False
    tasks_used: tuple[str, ...] = ()
    tasks_left_out: tuple[tuple[str, str], ...] = ()  # (task, why)
    relative_scale: str = RAW

    task = ALL_TASKS  # pooled across the run's tasks: its family key reads it like a comparison row's

    @property
    def p_value(self) -> float | None:
        return None if self.pooled is None else self.pooled.p_value

    def adjusted(self, p_adjusted: float, family_size: int) -> PooledRow:
        return replace(self, p_adjusted=p_adjusted)

    def to_dict(self, json_safe: bool = False) -> dict[str, Any]:
        relative = self.relative
        data: dict[str, Any] = {
            "model": self.model, "condition": self.condition, "control": self.control, "tasks": self.tasks,
            "tasks_used": list(self.tasks_used), "tasks_left_out": [{"task": t, "reason": why} for t, why in self.tasks_left_out],
            "consumes_gold": self.consumes_gold, "p_adjusted": self.p_adjusted,
            "relative": relative.estimate if relative else None, "relative_low": relative.low if relative else None,
            "relative_high": relative.high if relative else None, "relative_note": relative.note if relative else None,
            "relative_scale": self.relative_scale, "relative_method": "ratio_of_task_means" if relative else None,
            "delta_mean": self.delta_mean, "delta_max": self.delta_max,
        }
        data.update({f"pooled_{k}": v for k, v in (self.pooled.to_dict() if self.pooled else {}).items()})
        data.update({f"gee_{k}": v for k, v in (self.gee.to_dict() if self.gee else {}).items() if k != "condition"})
        return finite(data) if json_safe else data


Row = TypeVar("Row", ComparisonRow, PooledRow)  # what a family of comparisons adjusts

@dataclass(frozen=True)
class OmnibusRow(Record):
    """All of a model's conditions at once, per task (and across tasks)."""

    model: str
    task: str
    test: str | None
    conditions: int
    examples: int  # scored in every condition
    statistic: float | None
    df: float | None
    p_value: float | None


@dataclass(frozen=True)
class Comparison:
    rows: list[ComparisonRow]
    pooled: list[PooledRow]
    control: str
    errors_policy: str
    adjust: str
    family: str
    level: float
    test: str
    notes: list[str] = field(default_factory=list)
    omnibus: list[OmnibusRow] = field(default_factory=list)
    trials_done: int = 0
    trials_planned: int | None = None  # None: not known (a frame, not a run)
    no_answer_policy: str = "wrong"
    extractor: str | None = None  # the answer extractor whose scores the table uses
    format: list[Any] = field(default_factory=list)  # FormatRows (workbench.stats.format_check), once added

    @property
    def partial(self) -> bool:
        """A run still being written (or stopped): fewer trials logged than planned."""
        return self.trials_planned is not None and self.trials_done < self.trials_planned

    def to_dict(self, json_safe: bool = True) -> dict[str, Any]:
        return {
            "partial": self.partial,
            "trials_done": self.trials_done,
            "trials_planned": self.trials_planned,
            "control": self.control,
            "extractor": self.extractor,
            "errors": self.errors_policy,
            "no_answer": self.no_answer_policy,
            "adjust": self.adjust,
            "family": self.family,
            "level": self.level,
            "test": self.test,
            "notes": self.notes,
            "rows": [r.to_dict(json_safe) for r in self.rows],
            "pooled": [p.to_dict(json_safe) for p in self.pooled],
            "omnibus": [o.to_dict(json_safe) for o in self.omnibus],
            "format": [f.to_dict(json_safe) for f in self.format],
        }


def scored_frame(frame: pd.DataFrame, errors: str = "wrong", no_answer: str = "wrong") -> pd.DataFrame:
    """Trials with `is_error`, `is_no_answer` and `value`: the score; 0 for errored trials and
    trials with no answer under "wrong", missing for them under "exclude" (each its own policy)."""
    policy = Unscored(errors, no_answer)
    out = frame.copy()
    out["is_error"] = out["status"] == "error"
    out["is_no_answer"] = out["status"] == NO_ANSWER
    value = out["score"].astype(float).where(~(out["is_error"] | out["is_no_answer"]), 0.0)
    if errors == "wrong":
        value = value.fillna(0.0)
    out["value"] = value.where(~policy.excluded(out["status"]), np.nan)
    out["example"] = out["task"].astype(str) + "\x1f" + out["item_id"].astype(str)
    return out


def weights(frame: pd.DataFrame) -> np.ndarray:
    """How many trials each row stands for: its `trials` (a counted frame, workbench.stats.frame), else one."""
    return frame["trials"].to_numpy(dtype=int) if "trials" in frame else np.ones(len(frame), dtype=int)


def trial_count(frame: pd.DataFrame, mask: pd.Series | None = None) -> int:
    """The trials of `frame` (of its rows where `mask` holds)."""
    w = weights(frame)
    return int(w.sum() if mask is None else w[mask.to_numpy(dtype=bool)].sum())


def weighted_mean(frame: pd.DataFrame, column: str) -> float | None:
    """The mean of `column` over the trials the rows stand for, missing values left out (None: none)."""
    values = frame[column].to_numpy(dtype=float)
    kept = ~np.isnan(values)
    if not kept.any():
        return None
    if "trials" not in frame:
        return float(pd.Series(values[kept]).mean())
    w = weights(frame)[kept]
    return float((values[kept] * w).sum() / w.sum())


def trial_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: a counted frame's rows repeated by their counts (for fits on trials)."""
    return frame.loc[frame.index.repeat(frame["trials"])] if "trials" in frame else frame


@dataclass(frozen=True)
class Pair:
    """One comparison's data over the examples complete in both conditions: per-example mean
    values (control x, condition y), the most repeats of one example, and each example's chance
    level (nan where its task has none)."""

    x: np.ndarray
    y: np.ndarray
    repeats: int
    chance: np.ndarray

    @property
    def normalised(self) -> bool:
        return bool(np.any(np.nan_to_num(self.chance) > 0))


@dataclass(frozen=True)
class ExampleMatrix:
    """Per example (rows) and condition (columns): the mean value over scored repeats, how many
    repeats were scored, and whether every planned repeat is logged (`complete`; errored trials
    count as logged), with each example's chance level."""

    conditions: tuple[str, ...]
    examples: np.ndarray  # the example keys, one per row
    means: np.ndarray
    counts: np.ndarray
    complete: np.ndarray
    chance: np.ndarray

    def complete_in(self, names: Sequence[str]) -> np.ndarray:
        """Per example: every planned repeat logged in each of these conditions."""
        columns = [self.conditions.index(c) for c in names if c in self.conditions]
        return self.complete[:, columns].all(axis=1)

    def pair(self, control: str, condition: str) -> Pair:
        """The two conditions over the examples scored in both and complete in both: on a run
        still being written, an example whose repeats are not all in is left out of the test."""
        if control not in self.conditions or condition not in self.conditions:
            return Pair(np.empty(0), np.empty(0), 0, np.empty(0))
        i, j = self.conditions.index(control), self.conditions.index(condition)
        both = (self.counts[:, i] > 0) & (self.counts[:, j] > 0) & self.complete[:, i] & self.complete[:, j]
        repeats = int(self.counts[both][:, [i, j]].max()) if both.any() else 0
        return Pair(self.means[both, i], self.means[both, j], repeats, self.chance[both])


def per_example(scored: pd.DataFrame, repeats: int | None = None) -> ExampleMatrix:
    """repeats: the repeats planned per example (default: the most any example has logged)."""
    rows, examples = pd.factorize(scored["example"])
    cols, names = pd.factorize(scored["condition"])
    shape = (len(examples), len(names))
    sums, counts, logged = np.zeros(shape), np.zeros(shape, dtype=int), np.zeros(shape, dtype=int)
    values = scored["value"].to_numpy(dtype=float)
    kept = ~np.isnan(values)
    w = weights(scored)
    np.add.at(sums, (rows[kept], cols[kept]), values[kept] * w[kept] if "trials" in scored else values[kept])
    np.add.at(counts, (rows[kept], cols[kept]), w[kept])
    np.add.at(logged, (rows, cols), w)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    planned = repeats if repeats is not None else (int(logged.max()) if logged.size else 0)
    chance = np.full(len(examples), np.nan)
    if "chance" in scored:
        chance[rows] = scored["chance"].to_numpy(dtype=float)
    return ExampleMatrix(tuple(map(str, names)), np.asarray(examples), means, counts, logged >= planned, chance)


def _choose_test(test: str, single_binary: bool) -> str:
    if test == "auto":
        return "mcnemar" if single_binary else "t"
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r} (allowed: {', '.join(TEST_NAMES)})")
    if TESTS[test].binary_only and not single_binary:
        raise ValueError(f"test {test!r} needs one 0/1 outcome per example; these scores are per-example means or not 0/1 (use t, wilcoxon or permutation)")
    return test


def _estimate_fields(prefix: str, est: Estimate | None) -> dict[str, float | None]:
    if est is None:
        return {}
    return {prefix: est.estimate, f"{prefix}_low": est.low, f"{prefix}_high": est.high, f"{prefix}_note": est.note}


def compare_pair(pair: Pair, test: str, level: float) -> dict[str, Any]:
    """Every statistic of one comparison (control x, condition y, aligned by example)."""
    x, y = pair.x, pair.y
    if x.size == 0:
        return {}
    single_binary = pair.repeats <= 1 and is_binary(x) and is_binary(y)
    name = _choose_test(test, single_binary)
    out: dict[str, Any] = {"delta": float(np.mean(y - x))}
    if x.size >= 2 or single_binary:
        result = TESTS[name].run(x, y)
        out.update(p_value=result.p_value, test=result.test)
    if x.size >= 2:
        diff = paired_diff_ci(x, y, level, method="newcombe" if single_binary else "t")
        out.update(ci_low=diff.low, ci_high=diff.high, interval=diff.method, delta_note=diff.note)
        out.update(_estimate_fields("relative", relative_diff_ci(x, y, level, chance=pair.chance if pair.normalised else None)))
        out["relative_scale"] = NORMALISED if pair.normalised else RAW
        out.update(_estimate_fields("cohens_h", cohens_h(x, y, level)) if max(x.max(), y.max()) <= 1 and min(x.min(), y.min()) >= 0 else {})
        if single_binary:
            out.update(_estimate_fields("odds_ratio", odds_ratio_discordant(x, y, level)))
    return out


def comparison_pvalues(frame: pd.DataFrame, control: str, errors: str = "wrong", test: str = "auto", no_answer: str = "wrong") -> list[float]:
    """p-values of each other condition against the control over all examples (first model),
    exactly as the comparison table computes them; for simulation studies."""
    scored = scored_frame(frame, errors, no_answer)
    scored = scored[scored["model"] == scored["model"].iloc[0]]
    matrix = per_example(scored)
    out = []
    for condition in scored["condition"].drop_duplicates():
        if condition == control:
            continue
        pair = matrix.pair(control, condition)
        x, y = pair.x, pair.y
        single_binary = pair.repeats <= 1 and is_binary(x) and is_binary(y)
        out.append(TESTS[_choose_test(test, single_binary)].run(x, y).p_value if x.size else float("nan"))
    return out


def _ordered(present: Sequence[str], order: Sequence[str], first: str | None = None) -> list[str]:
    """`present` in the given order (the rest sorted after it), `first` leading."""
    listed = [c for c in order if c in present]
    names = listed + sorted(c for c in present if c not in listed)
    return [first, *[c for c in names if c != first]] if first in names else names


def compare(
    frame: pd.DataFrame,
    control: str,
    *,
    errors: str = "wrong",
    adjust: str = "holm",
    family: str = "model",
    level: float = 0.95,
    test: str = "auto",
    conditions: Sequence[str] | None = None,
    order: Sequence[str] = (),
    task_order: Sequence[str] = (),
    pool: bool = True,
    repeats: int | None = None,
    planned: int | None = None,
    hksj: bool = True,
    no_answer: str = "wrong",
    extractor: str | None = None,
) -> Comparison:
    """The comparison table of a run's trials: `frame` holds one row per trial, or is counted
    (workbench.stats.frame.counted_frame: a `trials` column says how many trials a row stands for).

    conditions: the conditions to compare with the control (the family; default all);
    order, task_order: the study's order of conditions and tasks, for the rows;
    family: which comparisons are corrected together (see FAMILIES); adjust: holm, bh,
    bonferroni or none; no_answer: the policy for trials with no answer, as errors for errored
    ones; extractor: the name of the extractor whose scores the frame holds (a label); test: auto (exact McNemar for one 0/1 outcome per example, else the
    paired t-test on per-example means) or a name from TESTS.
    repeats: the repeats planned per example (default: the most any example has); tests use
    only examples with all of them logged in both conditions. planned: the run's planned
    trials; fewer in `frame` make the comparison partial, and its notes say so first.
    hksj: the Hartung-Knapp-Sidik-Jonkman interval for pooled effects (else z).
    """
    if adjust not in ADJUST_METHODS:
        raise ValueError(f"unknown adjustment {adjust!r} (allowed: {', '.join(ADJUST_METHODS)})")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} (allowed: {', '.join(FAMILIES)})")
    if test not in TEST_NAMES:
        raise ValueError(f"unknown test {test!r} (allowed: {', '.join(TEST_NAMES)})")
    present = list(frame["condition"].drop_duplicates())
    wanted = list(present if conditions is None else conditions)
    unknown = [c for c in wanted if c not in present]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)} (conditions: {', '.join(map(str, present))})")
    scored = scored_frame(frame[frame["condition"].isin([control, *wanted])], errors, no_answer)
    gold = gold_conditions(frame)
    rows: list[ComparisonRow] = []
    pooled_rows: list[PooledRow] = []
    omnibus: list[OmnibusRow] = []
    for model, by_model in scored.groupby("model", sort=False):
        tasks = _ordered(list(by_model["task"].drop_duplicates()), task_order)
        names = _ordered(list(by_model["condition"].drop_duplicates()), order, control)
        for task in [*tasks, ALL_TASKS] if len(tasks) > 1 else tasks:
            subset = by_model if task == ALL_TASKS else by_model[by_model["task"] == task]
            matrix = per_example(subset, repeats)
            control_acc = weighted_mean(subset[subset["condition"] == control], "value")
            for condition in names:
                trials = subset[subset["condition"] == condition]
                pair = matrix.pair(control, condition)
                stats = {} if condition == control else compare_pair(pair, test, level)
                row = ComparisonRow(
                    model=str(model), condition=str(condition), task=str(task), control=control,
                    n=trial_count(trials), errors=trial_count(trials, trials["is_error"]), no_answer=trial_count(trials, trials["is_no_answer"]),
                    no_answer_policy=no_answer, extractor=extractor,
                    examples=int(pair.x.size) if condition != control else int(trials["example"].nunique()),
                    repeats=int(trials.assign(trials=weights(trials)).groupby("example")["trials"].sum().max()) if len(trials) else 0,
                    accuracy=weighted_mean(trials, "value"), control_accuracy=control_acc,
                    errors_policy=errors, level=level, adjust=adjust, family=family,
                    consumes_gold=(str(model), str(condition)) in gold, **stats,
                )
                rows.append(row)
            if control in names and len(names) >= 3:
                omnibus.append(_omnibus(str(model), str(task), matrix, names))
        if pool and len(tasks) > 1:
            pooled_rows.extend(_pooled(str(model), by_model, tasks, names, control, level, repeats, hksj))
    rows = _adjusted(rows, adjust, family)
    pooled_rows = [replace(p, consumes_gold=(p.model, p.condition) in gold) for p in _adjusted(pooled_rows, adjust, family)]
    done = trial_count(frame)
    partial = planned is not None and done < planned
    notes = [f"{PARTIAL}: {done} of {planned} trials logged; tests use only examples with every repeat logged in both conditions"] if partial else []
    notes += [] if control in present else [f"control {control!r} has no trials yet: nothing to compare"]
    if gold:
        notes.append(f"{GOLD_MARK} the condition read gold labels during its trials (an oracle verifier): an upper bound that needs the answer key")
    notes += [
        f"{Unscored(errors, no_answer).note()}; n counts all trials, errors and no answer count them apart",
        "repeats are averaged per example before testing" if any(r.repeats > 1 for r in rows) else "one trial per example and condition",
    ]
    if extractor:
        notes.append(f"answers read by the {extractor} extractor")
    return Comparison(rows, pooled_rows, control, errors, adjust, family, level, test, notes, omnibus, done, planned, no_answer, extractor)


PARTIAL = "partial run"
GOLD_MARK = "†"


def gold_conditions(frame: pd.DataFrame) -> set[tuple[str, str]]:
    """(model, condition) pairs whose trials read gold labels; none in frames without the flag."""
    if "consumes_gold" not in frame:
        return set()
    flagged = frame.loc[frame["consumes_gold"].fillna(False).astype(bool), ["model", "condition"]].drop_duplicates()
    return {(str(m), str(c)) for m, c in flagged.itertuples(index=False)}


def _omnibus(model: str, task: str, matrix: ExampleMatrix, names: list[str]) -> OmnibusRow:
    """Do the conditions differ at all? Cochran's Q for one 0/1 outcome per example, Friedman's
    test on per-example means otherwise; over the examples scored and complete in every condition."""
    columns = [matrix.conditions.index(c) for c in names if c in matrix.conditions]
    counts = matrix.counts[:, columns]
    complete = (counts > 0).all(axis=1) & matrix.complete_in(names)
    values = matrix.means[complete][:, columns]
    if values.shape[0] < 2:
        return OmnibusRow(model, task, None, len(columns), int(values.shape[0]), None, None, None)
    single_binary = int(counts[complete].max()) <= 1 and is_binary(values)
    result = cochran_q(values) if single_binary else friedman(values)
    return OmnibusRow(model, task, result.test, len(columns), int(values.shape[0]), result.statistic, result.df, result.p_value)


def _adjusted(rows: list[Row], method: str, family: str) -> list[Row]:
    """Each row's p-value adjusted within its family (FAMILIES[family] gives the row's family key)."""
    key = FAMILIES[family]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, row in enumerate(rows):
        if row.p_value is not None:
            groups.setdefault(key(row), []).append(index)
    out = list(rows)
    for members in groups.values():
        adjusted = adjust_pvalues([rows[i].p_value for i in members], method)
        for i, p in zip(members, adjusted):
            out[i] = rows[i].adjusted(float(p), len(members))
    return out


TOO_FEW = "fewer than 2 examples complete in the control and every condition"


def _pooled(
    model: str, scored: pd.DataFrame, tasks: list[str], names: list[str], control: str, level: float, repeats: int | None, hksj: bool
) -> list[PooledRow]:
    """The across-task rows of one model. Every figure uses the same tasks: those where each
    condition has at least 2 examples complete alongside the control; the GEE model is fitted on
    their complete examples."""
    per_task = {task: per_example(scored[scored["task"] == task], repeats) for task in tasks}
    pairs = {task: {c: m.pair(control, c) for c in names if c != control} for task, m in per_task.items()}
    used = [t for t in tasks if pairs[t] and all(p.x.size >= 2 for p in pairs[t].values())]
    left_out = tuple((t, TOO_FEW) for t in tasks if t not in used)
    complete = [per_task[t].examples[per_task[t].complete_in(names)] for t in used]
    kept = trial_rows(scored[scored["example"].isin(np.concatenate(complete) if complete else [])])
    gee = {e.condition: e for e in gee_effects(kept, control, is_binary(kept["value"].dropna()), level)} if len(used) >= 2 else {}
    out = []
    for condition in names:
        if condition == control:
            continue
        chosen = [pairs[t][condition] for t in used]
        effects = [float(np.mean(p.y - p.x)) for p in chosen]
        variances = [paired_variance_of_mean_difference(p.x, p.y) for p in chosen]
        pooled = random_effects(effects, variances, level, hksj=hksj, bounds=(-1.0, 1.0)) if len(effects) >= 2 else None  # scores are in [0, 1]
        normalised = any(p.normalised for p in chosen)
        scaled = [(normalise(p.x, p.chance if normalised else None), normalise(p.y, p.chance if normalised else None)) for p in chosen]
        relative = relative_gain(
            MeanMoments.averaged([MeanMoments.of(x, y) for x, y in scaled]),
            lambda: MeanMoments.averaged([MeanMoments.of(x, y, half_counts=True) for x, y in scaled]),
            level, normalised,
        ) if chosen else None
        out.append(
            PooledRow(
                model=model, condition=condition, control=control, tasks=len(effects), pooled=pooled, p_adjusted=None,
                relative=relative, delta_mean=float(np.mean(effects)) if effects else None, delta_max=float(np.max(effects)) if effects else None,
                gee=gee.get(condition), tasks_used=tuple(used), tasks_left_out=left_out, relative_scale=NORMALISED if normalised else RAW,
            )
        )
    return out


@dataclass(frozen=True)
class ConditionRow(Record):
    """One line of `workbench run`'s table: a condition of a model over all the run's tasks."""

    model: str
    condition: str
    n: int
    errors: int
    accuracy: float
    delta: float | None
    p_value: float | None
    test: str | None
    mean_rounds: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_adjusted: float | None = None
    no_answer: int = 0


def condition_table(frame: pd.DataFrame, control: str, errors: str = "wrong", order: Sequence[str] = (), no_answer: str = "wrong") -> list[ConditionRow]:
    """Per model and condition, over all tasks: n, errors, no answer, accuracy, and the paired
    difference to the control with its interval, p-value and Holm-adjusted p-value."""
    if frame.empty:
        return []
    result = compare(frame, control, errors=errors, order=order, pool=False, no_answer=no_answer)
    single_task = frame["task"].nunique() == 1
    return [
        ConditionRow(
            model=r.model, condition=r.condition, n=r.n, errors=r.errors, accuracy=r.accuracy if r.accuracy is not None else 0.0,
            delta=r.delta, p_value=r.p_value, test=r.test, ci_low=r.ci_low, ci_high=r.ci_high, p_adjusted=r.p_adjusted,
            no_answer=r.no_answer,
        )
        for r in result.rows
        if single_task or r.task == ALL_TASKS
    ]
