"""The `perspectives` report: per model, condition and tags rubric, the Perspectives Distribution
Score of the judged answers (workbench/tasks/perspectives.py defines the score and the rubric kind)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..tasks import TaskSpec, builtin_tasks
from . import run_tasks
from ..tasks.judge import Rubric, builtin_rubrics
from ..tasks.perspectives import perspectives_distribution


def _tag_rubric(task: TaskSpec) -> Rubric | None:
    name = task.scoring_args.get("rubric") if task.scoring == "judge" else None
    rubric = builtin_rubrics().get(name) if name else None
    return rubric if rubric is not None and rubric.kind == "tags" else None


def pds_report(con: Any, run_id: str, control: str) -> list[dict[str, Any]]:
    """Per model, condition and tags rubric: n, errors, mean coverage, the PDS and its entropy."""
    judged = [task for task, spec in run_tasks(con, run_id).items() if spec.get("scoring") == "judge" or not spec]
    if not judged:  # nothing a tags rubric grades: the catalog and rubrics stay unloaded
        return []
    catalog = builtin_tasks()
    rubrics = {task_id: r for task_id in judged if task_id in catalog and (r := _tag_rubric(catalog[task_id])) is not None}
    if not rubrics:
        return []
    frame = con.execute(
        "SELECT model, condition, task, answer, score, status FROM trials WHERE run_id = ? AND task IN (SELECT unnest(?))"
        " ORDER BY model, task, item_id, repeat, condition",
        [run_id, list(rubrics)],
    ).df()
    rows = []
    frame["rubric"] = frame["task"].map(lambda t: rubrics[t].rubric)
    for (model, condition, rubric_name), group in frame.groupby(["model", "condition", "rubric"], sort=False):
        rubric = next(r for r in rubrics.values() if r.rubric == rubric_name)
        ok = group[group["status"] == "ok"]
        pds = perspectives_distribution((a.split(",") if a else [] for a in ok["answer"]), [label.label for label in rubric.labels])
        rows.append(
            {
                "model": model,
                "condition": condition,
                "rubric": rubric_name,
                "k": len(rubric.labels),
                "n": int(len(group)),
                "errors": int((group["status"] == "error").sum()),
                "coverage": float(ok["score"].mean()) if len(ok) else None,
                **{key: value for key, value in asdict(pds).items() if key != "labels"},
            }
        )
    return rows
