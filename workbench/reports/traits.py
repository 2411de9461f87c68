"""Per-trait reports over a run's log, each a mean 1-5 level and its change against the control
(the neutral run), paired on the same items, with a Wilcoxon signed-rank p-value and its Holm
adjustment:

- `traits` (inventories, `trait_deltas`): per model, condition, inventory and trait, the mean
  keyed level; the SAC report over PERS-16, and the Big Five one over MPI-120.
- `sac_induced` (`sac_induced_report`): per model, condition, trait and intensity factor of the
  SAC-Induced task, the mean rating, and per trait over all five factors (`factor` "all").

Its own module so that loading the task registry does not import pandas and scipy; the task
modules register the reports (workbench/tasks/inventory.py, sac_induced.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..scoring.extract import ERROR, NO_ANSWER, OK
from ..scoring.policies import Unscored
from . import errors_policy, no_answer_policy, run_tasks
from ..stats import adjust, wilcoxon
from ..tasks import TaskSpec, builtin_tasks

ALL_FACTORS = "all"  # the factor label of a SAC-Induced row over all five factors


def item_labels(source: str, columns: Sequence[str], tasks: dict[str, TaskSpec] | None = None) -> pd.DataFrame:
    """(task, item_id) -> the named metadata of every item of each task drawing on `source` (the
    item ids as trials log them, from the task's own items)."""
    rows = []
    for task_id, spec in (tasks or builtin_tasks()).items():
        if spec.source == source:
            for item in spec.items(spec.available(), 0):
                meta = dict(item.meta)
                rows.append({"task": task_id, "item_id": item.id, **{c: meta[c] for c in columns}})
    return pd.DataFrame(rows, columns=["task", "item_id", *columns])


def inventory_traits(tasks: dict[str, TaskSpec] | None = None) -> pd.DataFrame:
    """(task, item_id) -> trait and trait name, for every task drawing on an item bank."""
    return item_labels("inventory", ("trait", "trait_name"), tasks)


def trait_deltas(frame: pd.DataFrame, control: str, traits: pd.DataFrame | None = None, errors: str = "exclude", no_answer: str | None = None) -> list[dict[str, Any]]:
    """Per model, condition, inventory and trait: mean keyed level (1-5) and its change against
    the control (`level_deltas`), with the Holm family one model's traits x conditions within an
    inventory. `frame` has model, condition, task, item_id, score and status per trial."""
    labels = inventory_traits() if traits is None else traits
    return level_deltas(frame, control, labels, by=("trait",), carry=("trait_name",), errors=errors, no_answer=no_answer, task_column="inventory")


def level_deltas(
    frame: pd.DataFrame, control: str, labels: pd.DataFrame, *, by: Sequence[str], carry: Sequence[str] = (),
    errors: str = "exclude", no_answer: str | None = None, task_column: str = "task",
) -> list[dict[str, Any]]:
    """Per model, task and group of items (the `labels` columns `by`): per condition the mean
    level 1 + 4 * score (the keyed level of an inventory item, the rating of a 1-5 question) and
    its change against the control, paired on items (repeats averaged per item first), with a
    Wilcoxon signed-rank p-value over the items' differences and its Holm adjustment
    (`p_adjusted`) over one model's groups x conditions within a task. Errored trials and those
    with no answer of the scale are counted apart (`errors`, `no_answer`), and left out of the
    means ("exclude") or scored 0, level 1 ("wrong", as the per-task scores count them), each by
    its own policy (no_answer None: as errors). `carry` columns describe a group (its trait's name)."""
    no_answer = errors if no_answer is None else no_answer
    data = frame.merge(labels, on=["task", "item_id"], how="inner")
    if data.empty:
        return []
    data["unscored"] = data["status"] != OK  # a failed trial, or a response with no rating of the scale
    score = data["score"].where(~data["unscored"], 0.0)
    data["keyed"] = 1.0 + 4.0 * score
    data["counted"] = ~Unscored(errors, no_answer).excluded(data["status"])
    rows = []
    for (model, task, *key), block in data.groupby(["model", "task", *by], sort=False):
        per_item = block[block["counted"]].groupby(["item_id", "condition"])["keyed"].mean().unstack("condition")
        for condition, group in block.groupby("condition", sort=False):
            ok = group[group["counted"]]
            row: dict[str, Any] = {
                "model": model,
                "condition": condition,
                task_column: task,
                **dict(zip(by, key)),
                **{c: group[c].iloc[0] for c in carry},
                "n": int(len(group)),
                "errors": int((group["status"] == ERROR).sum()),
                "no_answer": int((group["status"] == NO_ANSWER).sum()),
                "errors_policy": errors,
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
    return _holm_per_task(rows, task_column)


def _holm_per_task(rows: list[dict[str, Any]], task_column: str) -> list[dict[str, Any]]:
    """Fill `p_adjusted`: Holm over each model's groups x conditions within a task (16 traits x k
    conditions for PERS-16), the comparisons one reads together."""
    families: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        families.setdefault((row["model"], row[task_column]), []).append(row)
    for family in families.values():
        for row, p in zip(family, adjust([r["p_value"] for r in family], "holm")):
            row["p_adjusted"] = None if math.isnan(p) else float(p)
    return rows


def _trials(con: Any, run_id: str, labels: pd.DataFrame) -> pd.DataFrame:
    return con.execute(
        "SELECT model, condition, task, item_id, repeat, score, status FROM trials WHERE run_id = ? AND task IN (SELECT unnest(?))"
        " ORDER BY model, task, item_id, repeat, condition",
        [run_id, sorted(set(labels["task"]))],
    ).df()


def _run_tasks_of(con: Any, run_id: str, source: str) -> dict[str, TaskSpec]:
    """The catalog's tasks that draw on `source` and that the run has (none: nothing loaded; a
    trial logged without its task's JSON is asked of the catalog)."""
    present = [task for task, spec in run_tasks(con, run_id).items() if spec.get("source") == source or not spec]
    if not present:
        return {}
    catalog = builtin_tasks()
    return {task: catalog[task] for task in present if task in catalog and catalog[task].source == source}


def traits_report(con: Any, run_id: str, control: str) -> list[dict[str, Any]]:
    tasks = _run_tasks_of(con, run_id, "inventory")
    traits = inventory_traits(tasks) if tasks else pd.DataFrame()
    if traits.empty:
        return []
    return trait_deltas(_trials(con, run_id, traits), control, traits, errors=errors_policy(con, run_id), no_answer=no_answer_policy(con, run_id))


def sac_induced_deltas(frame: pd.DataFrame, control: str, labels: pd.DataFrame, errors: str = "exclude", no_answer: str | None = None) -> list[dict[str, Any]]:
    """Per model, condition, trait and factor of the SAC-Induced task: the mean rating and its
    change against the control (`level_deltas`), then per trait over the five factors (`factor`
    "all", the authors' per-trait delta). Each kind of row is its own Holm family."""
    shared = {"carry": ("trait_name",), "errors": errors, "no_answer": no_answer}
    per_factor = level_deltas(frame, control, labels, by=("trait", "factor"), **shared)
    per_trait = [{**row, "factor": ALL_FACTORS} for row in level_deltas(frame, control, labels, by=("trait",), **shared)]
    # read as a table: per model and condition (the control first), traits in 16PF order, factors in the authors' order
    conditions = [control, *dict.fromkeys(c for c in frame["condition"] if c != control)]
    factors = [*dict.fromkeys(labels["factor"]), ALL_FACTORS]
    return sorted(per_factor + per_trait, key=lambda r: (r["model"], conditions.index(r["condition"]), r["trait"], factors.index(r["factor"])))


def sac_induced_report(con: Any, run_id: str, control: str) -> list[dict[str, Any]]:
    tasks = _run_tasks_of(con, run_id, "sac_probes")
    labels = item_labels("sac_probes", ("trait", "trait_name", "factor"), tasks) if tasks else pd.DataFrame()
    if labels.empty:
        return []
    return sac_induced_deltas(_trials(con, run_id, labels), control, labels, errors=errors_policy(con, run_id), no_answer=no_answer_policy(con, run_id))
