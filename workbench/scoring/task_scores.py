"""Per-task scores of a run: mean score per model, condition and task, with BIG-bench's
normalised preferred score where the task has a chance score (0 at chance, 100 at the maximum).

Reads only the log: the chance score comes from the task descriptor each trial row carries.
"""

from __future__ import annotations

import json
from typing import Any

from .extract import ERROR, NO_ANSWER
from .policies import Unscored


def normalized_score(mean: float | None, chance: float | None, maximum: float = 1.0) -> float | None:
    """BIG-bench's normalised preferred score: 0 at random chance, 100 at the maximum; None when
    the task has no chance score (or no mean)."""
    if chance is None or mean is None or maximum <= chance:
        return None
    return 100.0 * (mean - chance) / (maximum - chance)


def task_scores(con: Any, run_id: str, errors: str = "wrong", no_answer: str = "wrong") -> list[dict[str, Any]]:
    """One row per (model, condition, task). Errored trials and trials with no answer count as 0
    under "wrong" and are left out of the mean under "exclude" (each by its own policy); either
    way they are counted, apart. consumes_gold: the condition's trials read gold labels (an
    oracle verifier)."""
    value = Unscored(errors, no_answer).sql_value(score="coalesce(score, 0.0)" if errors == "wrong" else "score")
    rows = con.execute(
        f"SELECT model, condition, task, any_value(task_json), count(*), count(*) FILTER (WHERE status = '{ERROR}'), "
        f"count(*) FILTER (WHERE status = '{NO_ANSWER}'), avg({value}), bool_or(coalesce(consumes_gold, false)) "
        "FROM trials WHERE run_id = ? GROUP BY model, condition, task ORDER BY model, task, condition",
        [run_id],
    ).fetchall()
    out = []
    for model, condition, task, task_json, n, n_errors, n_none, mean, gold in rows:
        chance = json.loads(task_json).get("chance") if task_json else None
        out.append(
            {
                "model": model, "condition": condition, "task": task, "n": int(n), "errors": int(n_errors), "no_answer": int(n_none),
                "score": mean, "chance": chance, "normalized": normalized_score(mean, chance),
                "consumes_gold": bool(gold),  # an oracle verifier read the answer key: an upper bound
            }
        )
    return out
