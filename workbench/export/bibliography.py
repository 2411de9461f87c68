"""References as data: the structured `references` of stimulus families and task suites (their
YAML files), rendered as BibTeX, and the references a logged run used.

Workbench-authored families carry `authored: true`; their `references` name only the work they
follow (`inspired_by`), so a bibliography cites the workbench itself (`WORKBENCH_KEY`) beside it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from ..core.references import Reference

if TYPE_CHECKING:
    from ..stimuli.model import Family
    from ..tasks import TaskSpec

BIB_MARKER = "% Written by the Prompt-Affect Workbench"  # a .bib starting with it may be overwritten
WORKBENCH_KEY = "promptaffectworkbench"
AUTHORED_PARTS = {"stimulus family": "texts", "task": "items"}  # what an authored source's own part is


@dataclass(frozen=True)
class Source:
    """What a run used that may be cited: a stimulus family or a task, with its references."""

    kind: str  # "stimulus family" or "task"
    name: str
    references: tuple[Reference, ...]
    authored: bool = False  # its texts (a family) or items (a task) are the workbench's own
    citation: str | None = None  # the free-text citation, shown when there is no structured reference


def _bib_text(text: str) -> str:
    from . import latex_escape  # BibTeX values are LaTeX text

    return latex_escape(text)


def _author(name: str) -> str:
    """"others" is BibTeX's et al.; a name in braces is one corporate name, kept whole."""
    if name == "others":
        return name
    if name.startswith("{") and name.endswith("}"):
        return "{" + _bib_text(name[1:-1]) + "}"
    return _bib_text(name)


def to_bibtex(reference: Reference) -> str:
    fields: list[tuple[str, str]] = [
        ("author", " and ".join(_author(name) for name in reference.author)),
        ("title", "{" + _bib_text(reference.title) + "}"),  # inner braces keep the title's capitals
    ]
    fields += [(name, _bib_text(value)) for name in ("booktitle", "journal") if (value := getattr(reference, name))]
    fields.append(("year", str(reference.year)))
    if reference.eprint:
        fields += [("eprint", reference.eprint), ("archivePrefix", "arXiv")]
        fields.append(("url", f"https://arxiv.org/abs/{reference.eprint}"))
    elif reference.url:
        fields.append(("url", reference.url))
    if reference.note:
        fields.append(("note", _bib_text(reference.note)))
    body = "".join(f"  {name} = {{{value}}},\n" for name, value in fields)
    return f"@{reference.type}{{{reference.key},\n{body}}}\n"


def workbench_reference(year: int | None = None) -> Reference:
    """The workbench itself, cited for its authored stimuli and tasks and for running the study."""
    try:
        version = metadata.version("prompt-affect-workbench")
    except metadata.PackageNotFoundError:
        version = "unreleased"
    return Reference(
        key=WORKBENCH_KEY, type="misc", author=["{Prompt-Affect Workbench contributors}"], title="Prompt-Affect Workbench",
        year=year or dt.date.today().year, note=f"Version {version}. Stimuli and tasks marked as authored by the workbench are its own",
    )


def bibliography(sources: Sequence[Source], header: str, year: int | None = None, workbench: bool = True) -> str:
    """A .bib file: a comment per source saying what it cites, then each entry once, and the
    workbench's own last (always when `workbench`, else where a source is authored by it).
    Entries with one key are the same reference (the tests check the data files for that)."""
    lines = [f"{BIB_MARKER}. {header}".rstrip(), "%"]
    entries: dict[str, Reference] = {}
    for source in sources:
        cites = ", ".join(r.key for r in source.references) or (f"no structured reference; cited as: {source.citation}" if source.citation else "no published reference")
        if source.authored:
            cites += f"; {AUTHORED_PARTS.get(source.kind, 'parts')} authored by the workbench ({WORKBENCH_KEY})"
        lines.append(f"% {source.kind} {_comment(source.name)}: {cites}")
        entries.update({r.key: r for r in source.references})
    if workbench or any(s.authored for s in sources):
        entries[WORKBENCH_KEY] = workbench_reference(year)
    return "\n".join(lines) + "\n\n" + "\n".join(to_bibtex(r) for r in entries.values())


def _comment(text: str) -> str:
    return " ".join(str(text).split())


# -- what a run used -------------------------------------------------------------------------


def of_family(family: Family) -> Source:
    return Source("stimulus family", family.name, tuple(family.references), family.authored, family.citation or family.inspired_by)


def of_task(spec: TaskSpec) -> Source:
    return Source("task", spec.id, tuple(spec.references), spec.authored, spec.citation)


def family_source(name: str) -> Source | None:
    from ..stimuli import builtin_library

    library = builtin_library()
    return of_family(library.family(name)) if name in library.families() else None


def task_source(task_id: str) -> Source | None:
    from ..tasks import builtin_tasks

    spec = builtin_tasks().get(task_id)
    return None if spec is None else of_task(spec)


def run_sources(con: duckdb.DuckDBPyConnection, run_id: str) -> list[Source]:
    """The stimulus families (of the conditions' stimuli and of a loop's feedback phrases) and
    the tasks a run used; names the workbench does not know (a user's files, custom tasks) come
    back without references."""
    families: dict[str, None] = {}
    for (stimuli_json,) in con.execute("SELECT stimuli_json FROM conditions WHERE run_id = ? ORDER BY condition", [run_id]).fetchall():
        families.update({s["family"]: None for s in json.loads(stimuli_json or "[]") if s.get("family")})
    phrases = [row[0] for row in con.execute("SELECT DISTINCT phrase_id FROM rounds WHERE run_id = ? AND phrase_id IS NOT NULL", [run_id]).fetchall()]
    families.update({family: None for family in _phrase_families(phrases)})
    tasks = [row[0] for row in con.execute("SELECT DISTINCT task FROM trials WHERE run_id = ? ORDER BY task", [run_id]).fetchall()]
    found: list[Source] = []
    for kind, names, lookup in (("stimulus family", families, family_source), ("task", tasks, task_source)):
        found += [lookup(name) or Source(kind, name, ()) for name in names]
    return found


def _phrase_families(phrase_ids: Iterable[str]) -> list[str]:
    from ..stimuli import builtin_library

    library = builtin_library()
    return sorted({library.get(p).family for p in phrase_ids if p in library})


def run_year(con: duckdb.DuckDBPyConnection, run_id: str) -> int | None:
    row = con.execute("SELECT created_at FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return row[0].year if row and row[0] is not None else None


def run_bibliography(db_path: Path, run_id: str) -> str:
    """The .bib of a logged run: the entries of the families and tasks it used, and the workbench."""
    from ..store import connect_reader

    con = connect_reader(Path(db_path))
    try:
        sources, year = run_sources(con, run_id), run_year(con, run_id)
    finally:
        con.close()
    return bibliography(sources, f"References of run {run_id}: the stimulus families and tasks it used.", year)
