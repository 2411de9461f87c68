"""Suite-specific reports over a run's log (per-trait deltas, perspective distributions).

A report is `(con, run_id, control) -> rows`, registered by name; it returns no rows when the
run has nothing for it, so `workbench run --json` adds a key per report only when it applies.
Reports read only the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .registry import Registry


@dataclass(frozen=True)
class Report:
    rows: Callable[[Any, str, str], list[dict[str, Any]]]  # (con, run_id, control) -> rows
    columns: tuple[str, ...]  # what the text table shows (JSON gives every field)


REPORTS: Registry[Report] = Registry("report")


def run_reports(con: Any, run_id: str, control: str) -> dict[str, list[dict[str, Any]]]:
    from .tasks import builtin_tasks

    builtin_tasks()  # the task modules register their reports
    found = {name: REPORTS.get(name).rows(con, run_id, control) for name in REPORTS}
    return {name: rows for name, rows in found.items() if rows}
