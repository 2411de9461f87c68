"""What `workbench export` writes: layouts (what a table shows) and formats (how it is written),
both registries. A file's format follows from its name (`t.tex`, `t.md`, `t.csv`, `t.parquet`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.registry import Registry
from ..stats.table import Comparison
from . import to_csv, to_latex, to_markdown, to_parquet
from .context import ExportContext
from .paper import paper_latex, paper_markdown


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]  # file names that mean this format
    binary: bool = False  # cannot go to a terminal
    per_trial: bool = False  # the per-trial data (workbench.export.trials), not the comparison


FORMATS: Registry[Format] = Registry("export format")
for _format in (
    Format("latex", (".tex",)),
    Format("markdown", (".md", ".markdown")),
    Format("csv", (".csv",)),
    Format("parquet", (".parquet",), binary=True),
    Format("trials.csv", (".csv",), per_trial=True),
    Format("trials.parquet", (".parquet",), binary=True, per_trial=True),
):
    FORMATS.add(_format.name, _format)


def format_for(path: Path, per_trial: bool = False) -> Format | None:
    """The format a file name asks for (the comparison's, or the per-trial data's)."""
    suffix = Path(path).suffix.lower()
    return next((f for f in map(FORMATS.get, FORMATS) if f.per_trial == per_trial and suffix in f.suffixes), None)


def suffixes(per_trial: bool = False) -> list[str]:
    return [s for f in map(FORMATS.get, FORMATS) if f.per_trial == per_trial for s in f.suffixes]


Renderer = Callable[[Comparison, ExportContext], "str | bytes"]


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    renderers: Mapping[str, Renderer]  # format name -> renderer


def _full_latex(comparison: Comparison, context: ExportContext) -> str:
    return to_latex(comparison, context.name, context.standalone, context.provenance)


def _full_markdown(comparison: Comparison, context: ExportContext) -> str:
    comment = f"<!-- {' '.join(context.provenance.split()).replace('--', '- -')} -->\n\n" if context.provenance.strip() else ""
    return comment + to_markdown(comparison, context.name)


# CSV and Parquet are data: every table, whatever the layout.
_DATA: dict[str, Renderer] = {"csv": lambda c, _: to_csv(c), "parquet": lambda c, _: to_parquet(c)}

LAYOUTS: Registry[Layout] = Registry("export layout")
LAYOUTS.add("full", Layout("full", "every statistic: Δ with its interval, relative gain, odds ratio, h, p and adjusted p; pooled and omnibus tables",
                           {"latex": _full_latex, "markdown": _full_markdown, **_DATA}))
LAYOUTS.add("paper", Layout("paper", "tasks as rows, conditions as columns: the score with its mark, the best in bold, n and the test in the caption",
                            {"latex": paper_latex, "markdown": paper_markdown, **_DATA}))


def render(comparison: Comparison, layout: str, fmt: str, context: ExportContext) -> str | bytes:
    """The layout's table in the format, followed by the log's searches (workbench.export.searches), if any."""
    from .searches import with_searches

    return with_searches(LAYOUTS.get(layout).renderers[fmt](comparison, context), fmt, comparison, context.searches)
