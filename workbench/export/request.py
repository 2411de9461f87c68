"""What one `workbench export` asks for, resolved and checked before anything is read or
written: the layout, the table's format and destination (a file, or stdout), the per-trial
data's, the figures' directory, and where a references.bib goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .bibliography import BIB_MARKER
from ..core.errors import UserError
from .layouts import FORMATS, LAYOUTS, Format, format_for, suffixes

STDOUT = "-"
BIB_NAME = "references.bib"


@dataclass(frozen=True)
class Output:
    format: Format
    path: Path | None  # None: stdout


@dataclass(frozen=True)
class ExportRequest:
    layout: str
    tables: tuple[Output, ...]  # the comparison table: one format each (the CLI writes one)
    trials: Output | None
    figures: Path | None
    bib: bool = True

    @property
    def outputs(self) -> list[Output]:
        return [*self.tables, *([self.trials] if self.trials is not None else [])]

    @property
    def to_stdout(self) -> bool:
        return any(o.path is None for o in self.outputs)

    def bib_paths(self) -> list[Path]:
        """A references.bib beside every file written (none for stdout), each directory once."""
        if not self.bib:
            return []
        directories = [o.path.parent for o in self.outputs if o.path is not None] + ([self.figures] if self.figures else [])
        return list(dict.fromkeys(d / BIB_NAME for d in directories))


def resolve(layout: str, fmt: str | None, out: str | None, trials: str | None, figures: Path | None, bib: bool = True) -> ExportRequest:
    _check_layout(layout)
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"{fmt!r} is not allowed (allowed: {', '.join(FORMATS)})", field="--format")
    chosen = _output(FORMATS.get(fmt) if fmt else None, out)
    per_trial = _trials_output(trials)
    if chosen is not None and chosen.format.per_trial:
        if per_trial is not None:
            raise UserError("the per-trial data is asked for twice (--format trials.* and --trials); give one", field="--trials")
        chosen, per_trial = None, chosen
    if chosen is None and per_trial is None and figures is None:
        raise UserError("nothing to export: give a table (--format or --out FILE), --trials FILE or --figures DIR", field="--format")
    if chosen is not None and per_trial is not None and chosen.path is None and per_trial.path is None:
        raise UserError("the table and the per-trial data cannot both go to stdout; give one of them a file", field="--out")
    return ExportRequest(layout, () if chosen is None else (chosen,), per_trial, figures, bib)


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise UserError(f"{layout!r} is not allowed (allowed: {', '.join(LAYOUTS)})", field="--layout")


# Where the downloads go, by name, in no directory: as an export with these names writes them.
TABLE_NAME, TRIALS_NAME, FIGURES_DIR = "table", "trials", Path("figures")


def download_request(layout: str, tables: Sequence[str], trials: str | None, figures: bool, bib: bool = True) -> ExportRequest:
    """An export to named files (the UI's downloads): the table in each of the `tables` formats as
    table.SUFFIX, the per-trial data as trials.SUFFIX, the figures in figures/, and a
    references.bib beside them, as `workbench export --out table.tex --trials trials.csv --figures figures` writes them."""
    _check_layout(layout)
    chosen = [_named(name, per_trial=False, field="--format") for name in dict.fromkeys(tables)]
    per_trial = None if trials is None else _named(trials, per_trial=True, field="--trials")
    return ExportRequest(
        layout, tuple(Output(f, Path(TABLE_NAME + f.suffixes[0])) for f in chosen),
        None if per_trial is None else Output(per_trial, Path(TRIALS_NAME + per_trial.suffixes[0])), FIGURES_DIR if figures else None, bib,
    )


def _named(name: str, per_trial: bool, field: str) -> Format:
    allowed = [f for f in FORMATS if FORMATS.get(f).per_trial == per_trial]
    if name not in allowed:
        raise UserError(f"{name!r} is not allowed (allowed: {', '.join(allowed)})", field=field)
    return FORMATS.get(name)


def _output(fmt: Format | None, out: str | None) -> Output | None:
    if fmt is None and out is None:
        return None
    path = None if out in (None, STDOUT) else Path(out)
    if fmt is None:
        if path is None:
            raise UserError("stdout needs --format (latex, markdown, csv or trials.csv)", field="--out")
        fmt = format_for(path)
        if fmt is None:
            raise UserError(f"cannot tell the format from {path.name!r} (allowed endings: {', '.join(suffixes())}; or give --format)", field="--out")
    elif path is not None:
        named = format_for(path, fmt.per_trial)
        if named is not None and named != fmt:
            raise UserError(f"{path.name!r} names a {named.name} file, but --format is {fmt.name}", field="--out")
    if fmt.binary and path is None:
        raise UserError(f"{fmt.name} is binary: give a file name (--out FILE{fmt.suffixes[0]})", field="--out")
    return Output(fmt, path)


def _trials_output(trials: str | None) -> Output | None:
    if trials is None:
        return None
    if trials == STDOUT:
        return Output(FORMATS.get("trials.csv"), None)
    fmt = format_for(Path(trials), per_trial=True)
    if fmt is None:
        raise UserError(f"cannot tell the format from {Path(trials).name!r} (allowed endings: {', '.join(suffixes(per_trial=True))})", field="--trials")
    return Output(fmt, Path(trials))


def check_bib_paths(paths: list[Path]) -> None:
    """A references.bib that the workbench did not write is the user's own: never overwritten."""
    for path in paths:
        if path.exists() and not path.read_text(encoding="utf-8", errors="replace").startswith(BIB_MARKER):
            raise UserError("exists and was not written by the workbench; not overwritten (move it, export elsewhere, or pass --no-bib)", file=str(path))
