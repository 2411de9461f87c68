"""Suite-specific reports over a run's log (per-trait deltas, perspective distributions).

A report is `(con, run_id, control) -> rows`, registered by name; it returns no rows when the
run has nothing for it, so `workbench run --json` adds a key per report only when it applies.
Reports read only the log, the run's error policy included (`errors_policy`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.registry import Registry


@dataclass(frozen=True)
class Report:
    rows: Callable[[Any, str, str], list[dict[str, Any]]]  # (con, run_id, control) -> rows
    columns: tuple[str, ...]  # what the text table shows (JSON gives every field)


REPORTS: Registry[Report] = Registry("report")


def _study_setting(con: Any, run_id: str, key: str, default: str) -> str:
    found = con.execute("SELECT spec_json FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return json.loads(found[0]).get(key, default) if found and found[0] else default


def run_tasks(con: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's tasks as its trials logged them (task id -> its definition): a report asks
    these whether it applies before it loads any item bank or the task catalog. One trial's
    task JSON a task: parsing every trial's would cost seconds on a million trials."""
    rows = con.execute("SELECT task, any_value(task_json) FROM trials WHERE run_id = ? GROUP BY task", [run_id]).fetchall()
    return {task: json.loads(task_json) if task_json else {} for task, task_json in rows}


def errors_policy(con: Any, run_id: str) -> str:
    """The run's study setting for errored trials ("wrong" or "exclude"), as its log records it."""
    return _study_setting(con, run_id, "errors", "wrong")


def no_answer_policy(con: Any, run_id: str) -> str:
    """The run's study setting for trials with no answer of the task's type ("wrong" or "exclude")."""
    return _study_setting(con, run_id, "no_answer", "wrong")


def run_reports(con: Any, run_id: str, control: str) -> dict[str, list[dict[str, Any]]]:
    found = {name: REPORTS.get(name).rows(con, run_id, control) for name in REPORTS}
    return {name: rows for name, rows in found.items() if rows}


def _deferred(module: str, function: str) -> Callable[[Any, str, str], list[dict[str, Any]]]:
    """A report function of a module of this package, imported when a run is reported (pandas and
    scipy load then, not with the registries)."""

    def rows(con: Any, run_id: str, control: str) -> list[dict[str, Any]]:
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(con, run_id, control)

    return rows


# The built-in reports: the inventories' per-trait deltas, SAC-Induced's per-factor ones, the PDS.
REPORTS.add("traits", Report(_deferred("traits", "traits_report"), ("model", "condition", "inventory", "trait_name", "n", "errors", "no_answer", "mean", "delta", "p_value", "p_adjusted")))
REPORTS.add("sac_induced", Report(_deferred("traits", "sac_induced_report"), ("model", "condition", "trait_name", "factor", "n", "errors", "no_answer", "mean", "delta", "p_value", "p_adjusted")))
REPORTS.add("perspectives", Report(_deferred("perspectives", "pds_report"), ("model", "condition", "rubric", "n", "errors", "coverage", "entropy_pct")))
