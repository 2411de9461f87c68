"""The inventory traits report: `trait_deltas(frame, control)` is the SAC report, per model,
condition, inventory and trait, the mean keyed level and the induced change, condition minus
control (the neutral run), paired on the same items.

Its own module so that loading the task registry does not import pandas and scipy; the
inventory suite registers it as the `traits` report (workbench/tasks/inventory.py).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .extract import ERROR, NO_ANSWER
from .policies import Unscored
from .reports import errors_policy, no_answer_policy
from .stats import adjust, wilcoxon
from .tasks import TaskSpec, builtin_tasks
from .tasks.inventory import inventory_items


def inventory_traits(tasks: dict[str, TaskSpec] | None = None) -> pd.DataFrame:
    """(task, item_id) -> trait and trait name, for every task drawing on an item bank (the item
    ids as trials log them, from the task's own items)."""
    rows = []
    for task_id, spec in (tasks or builtin_tasks()).items():
        if spec.source == "inventory":
            for item in spec.items(len(inventory_items(spec.source_args["inventory"])), 0):
                meta = dict(item.meta)
                rows.append({"task": task_id, "item_id": item.id, "trait": meta["trait"], "trait_name": meta["trait_name"]})
    return pd.DataFrame(rows, columns=["task", "item_id", "trait", "trait_name"])


def trait_deltas(frame: pd.DataFrame, control: str, traits: pd.DataFrame | None = None, errors: str = "exclude", no_answer: str = "exclude") -> list[dict[str, Any]]:
    """Per model, condition, inventory and trait: mean keyed level (1-5) and its change against
    the control, paired on items (repeats averaged per item first), with a Wilcoxon signed-rank
    p-value over the items' differences and its Holm adjustment (`p_adjusted`) over the family
    of one model's traits x conditions within an inventory. `frame` has model, condition, task,
    item_id, score and status per trial; errored trials are counted, and left out of the means
    (errors="exclude") or scored 0, keyed level 1 (errors="wrong", as the per-task scores count them);
    answers naming no option (status no_answer) likewise by the no_answer policy, counted apart."""
    traits = inventory_traits() if traits is None else traits
    data = frame.merge(traits, on=["task", "item_id"], how="inner")
    if data.empty:
        return []
    data["is_error"] = data["status"] == ERROR
    data["is_no_answer"] = data["status"] == NO_ANSWER
    score = data["score"].where(~(data["is_error"] | data["is_no_answer"]), 0.0)
    data["keyed"] = 1.0 + 4.0 * score
    data["counted"] = ~Unscored(errors, no_answer).excluded(data["status"])
    rows = []
    for (model, task, trait), block in data.groupby(["model", "task", "trait"], sort=False):
        per_item = block[block["counted"]].groupby(["item_id", "condition"])["keyed"].mean().unstack("condition")
        for condition, group in block.groupby("condition", sort=False):
            ok = group[group["counted"]]
            row: dict[str, Any] = {
                "model": model,
                "condition": condition,
                "inventory": task,
                "trait": trait,
                "trait_name": group["trait_name"].iloc[0],
                "n": int(len(group)),
                "errors": int(group["is_error"].sum()),
                "errors_policy": errors,
                "no_answer": int(group["is_no_answer"].sum()),
                "no_answer_policy": no_answer,
                "mean": float(ok["keyed"].mean()) if len(ok) else None,
                "control_mean": None,
                "delta": None,
                "n_pairs": 0,
                "p_value": None,
                "p_adjusted": None,
            }
            if condition != control and control in per_item and condition in per_item:
                pairs = per_item[[control, condition]].dropna()
                if len(pairs):
                    diff = pairs[condition] - pairs[control]
                    row.update(
                        control_mean=float(pairs[control].mean()),
                        delta=float(diff.mean()),
                        n_pairs=int(len(pairs)),
                        p_value=wilcoxon(pairs[control], pairs[condition], zero_method="zsplit").p_value,
                    )
            rows.append(row)
    return _holm_per_inventory(rows)


def _holm_per_inventory(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill `p_adjusted`: Holm over each model's traits x conditions within an inventory (16
    traits x k conditions for PERS-16), the comparisons one reads together."""
    families: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        families.setdefault((row["model"], row["inventory"]), []).append(row)
    for family in families.values():
        for row, p in zip(family, adjust([r["p_value"] for r in family], "holm")):
            row["p_adjusted"] = None if math.isnan(p) else float(p)
    return rows


def traits_report(con: Any, run_id: str, control: str) -> list[dict[str, Any]]:
    traits = inventory_traits()
    if traits.empty:
        return []
    frame = con.execute(
        "SELECT model, condition, task, item_id, repeat, score, status FROM trials WHERE run_id = ? AND task IN (SELECT unnest(?))",
        [run_id, sorted(set(traits["task"]))],
    ).df()
    return trait_deltas(frame, control, traits, errors=errors_policy(con, run_id), no_answer=no_answer_policy(con, run_id))
