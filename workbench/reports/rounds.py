"""Gain against cost for iterative programs (the HEART loop and its baselines), read from the log.

- `round_curve`: per model, condition and round t, the accuracy of the answer a trial holds after
  round t (its round-t answer, or the last one of a loop that stopped earlier), pass@t (a correct
  answer in any round up to t) and the mean tokens spent through round t. Under an oracle
  verifier the loop stops at the first correct answer, so the two coincide and are non-decreasing
  in t; without one they part: pass@t is what a verifier could have picked, accuracy what the loop
  holds. After its rounds, a loop's final step is a row of its own (`step: final`, `round` None):
  the accuracy of the trial's final answer as its strategy settled it (a synthesis, a majority
  vote, the answer the model verified, the last one), with the tokens of every call of the trial.
  A condition without rounds (a single answer) is one point at t = 0.
- `condition_costs`: per model and condition, the final accuracy next to the mean rounds used,
  calls and tokens per trial, and tokens per correct answer.

Every row says whether the condition consumed gold labels (`consumes_gold`): oracle results are an
upper bound that needs the answer key, not a method one can deploy as is.

Errored trials stay in the denominator as wrong (errors="wrong", the default; rounds after the
failure count as wrong) or are left out (errors="exclude"); either way `errors` counts them.
Trials with no answer of the task's type follow their own policy (no_answer) and are counted
apart (`no_answer`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ..scoring.extract import NO_ANSWER
from ..scoring.policies import Unscored
from ..core.records import Record
from ..scoring.metrics import CORRECT_FROM, is_correct


@dataclass(frozen=True)
class RoundPoint(Record):
    model: str
    condition: str
    round: int | None  # None on the final step's row
    n: int
    errors: int
    accuracy: float  # of the answer held after round t; on the final row, of the trial's final answer
    pass_at: float  # a correct answer in rounds 0..t; on the final row, in any round or the final answer
    mean_tokens: float  # prompt + completion tokens per trial through round t; on the final row, of all its calls
    consumes_gold: bool
    step: str = "round"  # round | final
    strategy: str | None = None  # on the final row: how the final answer was settled (oracle, last, majority, self_verify, synthesis)


@dataclass(frozen=True)
class ConditionCost(Record):
    model: str
    condition: str
    n: int
    errors: int
    accuracy: float  # of the final answer
    mean_rounds: float | None  # feedback rounds used per trial (0 = the first answer stood); None without rounds
    mean_calls: float
    mean_prompt_tokens: float
    mean_completion_tokens: float
    mean_tokens: float
    tokens_per_correct: float | None
    consumes_gold: bool
    no_answer: int = 0  # trials whose final response held no answer of the task's type


def _frames(con: Any, run_id: str, errors: str, no_answer: str = "wrong") -> tuple[pd.DataFrame, pd.DataFrame]:
    trials = con.execute(
        "SELECT trial_id, model, condition, status, score, n_calls, prompt_tokens, completion_tokens, "
        f"coalesce(consumes_gold, false) AS consumes_gold, {_LOOP_DETAILS} FROM trials WHERE run_id = ? ORDER BY model, task, item_id, repeat, condition",
        [run_id],
    ).df()
    rounds = con.execute(
        "SELECT trial_id, round, score, prompt_tokens + completion_tokens AS tokens FROM rounds "
        "WHERE run_id = ? AND trial_id IN (SELECT trial_id FROM trials WHERE run_id = ?)",
        [run_id, run_id],
    ).df().drop_duplicates(["trial_id", "round"])
    trials["is_error"] = trials["status"] == "error"
    trials["is_no_answer"] = trials["status"] == NO_ANSWER
    trials["excluded"] = Unscored(errors, no_answer).excluded(trials["status"])
    rounds = rounds[rounds["trial_id"].isin(trials.loc[~trials["excluded"], "trial_id"])]
    trials["correct"] = is_correct(trials["score"].fillna(0.0)).astype(float)
    return trials, rounds


# A loop's budget and final strategy, read from the trial's details by DuckDB: parsing 100,000
# details in Python took a second of the Results page (anything not a JSON object reads as none).
_LOOP_DETAILS = (
    "CASE WHEN json_valid(details_json) THEN TRY_CAST(json_extract(details_json, '$.rounds_budget') AS BIGINT) END AS budget, "
    "CASE WHEN json_valid(details_json) AND json_type(details_json, '$.final_strategy') = 'VARCHAR' "
    "THEN json_extract_string(details_json, '$.final_strategy') END AS strategy"
)


def _mean(series: pd.Series) -> float:
    value = float(series.mean()) if len(series) else 0.0
    return 0.0 if math.isnan(value) else value


def gain_and_cost(con: Any, run_id: str, errors: str = "wrong", no_answer: str = "wrong") -> tuple[list[ConditionCost], list[RoundPoint]]:
    """condition_costs and round_curve from one read of the log."""
    if not con.execute("SELECT EXISTS (SELECT 1 FROM rounds WHERE run_id = ?)", [run_id]).fetchone()[0]:
        return _single_answers(con, run_id, errors, no_answer)
    trials, rounds = _frames(con, run_id, errors, no_answer)
    return _costs(trials, rounds), _curve(trials, rounds)


def _single_answers(con: Any, run_id: str, errors: str, no_answer: str) -> tuple[list[ConditionCost], list[RoundPoint]]:
    """`gain_and_cost` of a run without rounds (no condition loops), summed by DuckDB per model,
    condition and status: what `_costs` and `_curve` compute from every trial, as they order it."""
    frame = con.execute(
        "SELECT model, condition, status, count(*) AS n, count(*) FILTER (WHERE coalesce(score, 0) >= ?) AS correct, "
        "sum(n_calls) AS calls, count(n_calls) AS calls_n, sum(prompt_tokens) AS prompt, count(prompt_tokens) AS prompt_n, "
        "sum(completion_tokens) AS completion, count(completion_tokens) AS completion_n, "
        "sum(prompt_tokens + completion_tokens) AS tokens, count(prompt_tokens + completion_tokens) AS tokens_n, "
        "bool_or(coalesce(consumes_gold, false)) AS gold, min(row(task, item_id, repeat, condition)) AS first "
        "FROM trials WHERE run_id = ? GROUP BY model, condition, status",
        [CORRECT_FROM, run_id],
    ).df()
    if frame.empty:
        return [], []
    frame["excluded"] = Unscored(errors, no_answer).excluded(frame["status"])
    firsts = frame.groupby(["model", "condition"], sort=False)["first"].min()
    order = sorted(firsts.index, key=lambda key: (key[0], tuple(firsts[key])))  # the trials' order, as _frames reads them
    costs, points = [], []
    for model, condition in order:
        group = frame[(frame["model"] == model) & (frame["condition"] == condition)]
        counted = group[~group["excluded"]]
        total = {c: float(counted[c].sum()) for c in ("n", "correct", "calls", "calls_n", "prompt", "prompt_n", "completion", "completion_n", "tokens", "tokens_n")}
        n, trial_errors = int(group["n"].sum()), int(group.loc[group["status"] == "error", "n"].sum())
        gold = bool(group["gold"].any())
        accuracy = _ratio(total["correct"], total["n"])
        mean_tokens = _ratio(total["tokens"], total["tokens_n"])
        points.append(RoundPoint(model=str(model), condition=str(condition), round=0, n=n, errors=trial_errors, accuracy=accuracy,
                                 pass_at=accuracy, mean_tokens=mean_tokens, consumes_gold=gold))
        costs.append(ConditionCost(
            model=str(model), condition=str(condition), n=n, errors=trial_errors, accuracy=accuracy, mean_rounds=None,
            mean_calls=_ratio(total["calls"], total["calls_n"]), mean_prompt_tokens=_ratio(total["prompt"], total["prompt_n"]),
            mean_completion_tokens=_ratio(total["completion"], total["completion_n"]), mean_tokens=mean_tokens,
            tokens_per_correct=total["tokens"] / total["correct"] if total["correct"] else None, consumes_gold=gold,
            no_answer=int(group.loc[group["status"] == NO_ANSWER, "n"].sum()),
        ))
    return costs, points


def _ratio(total: float, count: float) -> float:
    """A mean from its sum and count, as `_mean` gives it (0 for none)."""
    return total / count if count else 0.0


def round_curve(con: Any, run_id: str, errors: str = "wrong", no_answer: str = "wrong") -> list[RoundPoint]:
    """Per model, condition and round: accuracy of the held answer, pass@t and tokens through t."""
    return _curve(*_frames(con, run_id, errors, no_answer))


def _curve(trials: pd.DataFrame, rounds: pd.DataFrame) -> list[RoundPoint]:
    points: list[RoundPoint] = []
    for (model, condition), group in trials.groupby(["model", "condition"], sort=False):
        mine = rounds[rounds["trial_id"].isin(group["trial_id"])]
        counted = group[~group["excluded"]]
        if mine.empty:  # a single answer: one point at round 0
            tokens = (counted["prompt_tokens"] + counted["completion_tokens"]).astype(float)
            points.append(_point(model, condition, 0, group, counted["correct"], counted["correct"], tokens))
            continue
        last = int(max(mine["round"].max(), group["budget"].max(skipna=True) if group["budget"].notna().any() else 0))
        columns = range(last + 1)
        score = mine.pivot(index="trial_id", columns="round", values="score").reindex(index=counted["trial_id"], columns=columns)
        spent = mine.pivot(index="trial_id", columns="round", values="tokens").reindex(index=counted["trial_id"], columns=columns)
        # A loop that stopped holds its last answer; one that failed holds nothing after the failure.
        held = score.ffill(axis=1)
        failed = held.index.isin(counted.loc[counted["is_error"], "trial_id"])
        held.loc[failed] = score.loc[failed]
        held = held.fillna(0.0)
        right = is_correct(held).astype(float)
        passed = right.cummax(axis=1)
        cumulative = spent.fillna(0.0).cumsum(axis=1)
        for t in columns:
            points.append(_point(model, condition, t, group, right[t], passed[t], cumulative[t]))
        points.append(_final_point(model, condition, group, counted, passed[last]))
    return points


def _final_point(model: str, condition: str, group: pd.DataFrame, counted: pd.DataFrame, passed: pd.Series) -> RoundPoint:
    """The loop's final step: the trial's final answer (its score), pass over the rounds and the
    final answer, and the tokens of all the trial's calls (a synthesis or verification included)."""
    final = counted.set_index("trial_id")
    tokens = (final["prompt_tokens"] + final["completion_tokens"]).astype(float)
    strategies = sorted({s for s in group["strategy"] if isinstance(s, str)})
    point = _point(model, condition, None, group, final["correct"], passed.combine(final["correct"], max), tokens)
    return replace(point, step="final", strategy=", ".join(strategies) or None)


def _point(model: str, condition: str, t: int | None, group: pd.DataFrame, right: pd.Series, passed: pd.Series, tokens: pd.Series) -> RoundPoint:
    return RoundPoint(
        model=str(model),
        condition=str(condition),
        round=None if t is None else int(t),
        n=int(len(group)),
        errors=int(group["is_error"].sum()),
        accuracy=_mean(right),
        pass_at=_mean(passed),
        mean_tokens=_mean(tokens),
        consumes_gold=bool(group["consumes_gold"].any()),
    )


def condition_costs(con: Any, run_id: str, errors: str = "wrong", no_answer: str = "wrong") -> list[ConditionCost]:
    """Per model and condition: final accuracy, rounds used, calls and tokens per trial."""
    return _costs(*_frames(con, run_id, errors, no_answer))


def _costs(trials: pd.DataFrame, rounds: pd.DataFrame) -> list[ConditionCost]:
    used = rounds.groupby("trial_id")["round"].max()
    out: list[ConditionCost] = []
    for (model, condition), group in trials.groupby(["model", "condition"], sort=False):
        counted = group[~group["excluded"]]
        tokens = (counted["prompt_tokens"] + counted["completion_tokens"]).astype(float)
        in_loop = used.reindex(counted["trial_id"]).dropna()
        correct = float(counted["correct"].sum())
        out.append(
            ConditionCost(
                model=str(model),
                condition=str(condition),
                n=int(len(group)),
                errors=int(group["is_error"].sum()),
                accuracy=_mean(counted["correct"]),
                mean_rounds=float(in_loop.mean()) if len(in_loop) else None,
                mean_calls=_mean(counted["n_calls"].astype(float)),
                mean_prompt_tokens=_mean(counted["prompt_tokens"].astype(float)),
                mean_completion_tokens=_mean(counted["completion_tokens"].astype(float)),
                mean_tokens=_mean(tokens),
                tokens_per_correct=float(tokens.sum() / correct) if correct else None,
                consumes_gold=bool(group["consumes_gold"].any()),
                no_answer=int(group["is_no_answer"].sum()),
            )
        )
    return out


def by_condition(costs: list[ConditionCost]) -> dict[tuple[str, str], ConditionCost]:
    return {(c.model, c.condition): c for c in costs}
