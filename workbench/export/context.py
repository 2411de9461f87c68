"""What a layout needs besides the comparison."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExportContext:
    """The study's name (captions, labels), the provenance (run id, log, version: a comment in
    the file, never a caption) and the reader's choices."""

    name: str = ""
    provenance: str = ""
    relative: bool = False  # the paper layout adds each condition's relative gain
    standalone: bool = False  # LaTeX: a complete document
    searches: tuple[Any, ...] = ()  # the log's searches' confirmations (workbench.reports.searches.Confirmation): a table after the layout's


@dataclass(frozen=True)
class Provenance:
    """Where an export comes from, all of it read from the log (never the clock), so the same log
    exports the same bytes: the comment line, and the run's start (UTC) for the files' dates."""

    text: str
    started: datetime | None


def run_provenance(db_path: Path, run_id: str) -> Provenance:
    """Where a table comes from, for a comment in the file: run, study, log (its path as given), workbench version."""
    from ..store import connect_reader

    con = connect_reader(Path(db_path))
    try:
        row = con.execute("SELECT name, created_at, workbench_version, git_sha FROM runs WHERE run_id = ?", [run_id]).fetchone()
    finally:
        con.close()
    name, created, version, sha = row or (None, None, None, None)
    started = f", started {created:%Y-%m-%d %H:%M}" if created else ""
    commit = f" (commit {sha[:12]})" if sha else ""
    text = f"Run {run_id} of study {name!r}{started}; log {db_path}; Prompt-Affect Workbench {version or 'unknown'}{commit}."
    return Provenance(text, created.replace(tzinfo=timezone.utc) if created else None)  # the log's times are UTC (core.clock)
