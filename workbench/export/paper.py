"""The `paper` layout: the comparison as the source papers print their results.

Tasks are rows and conditions columns; each cell is the condition's score with its significance
mark against the control (and, when asked, the relative gain), the best score of each row in
bold; n and the test go in the caption, everything else a reader needs in notes under the
table. One model: no model column (it is named in the caption); several: a panel per model.
The run id never enters a caption: it goes in a comment.

`paper_table` decides what the table says (pure, no formatting); `paper_latex` and
`paper_markdown` only escape and lay it out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..stats.table import ALL_TASKS, Comparison, ComparisonRow
from . import ADJUST_LABELS, DASH, MARKS, TEST_LABELS, condition_label, latex_escape, markdown_escape, significance_mark
from .context import ExportContext

SCORE_DIGITS = 3
RELATIVE_DIGITS = 1
ALL_TASKS_LABEL = "All tasks"
MINUS = "\u2212"  # the typographic minus sign (LaTeX: $-$)
BINARY_TESTS = {"mcnemar_exact", "mcnemar_midp", "mcnemar_chi2_cc"}
FAMILY_SCOPES = {
    "model": "within each task",
    "model-tasks": "over all tasks and conditions of a model",
    "run": "over every comparison of the run",
}


@dataclass(frozen=True)
class PaperCell:
    score: float | None
    mark: str = ""
    bold: bool = False
    relative: float | None = None  # condition vs control, a fraction; None where undefined
    compared: bool = False  # a treated condition with a comparison (not the control)


@dataclass(frozen=True)
class PaperRow:
    label: str
    cells: tuple[PaperCell, ...]
    across_tasks: bool = False


@dataclass(frozen=True)
class PaperPanel:
    model: str
    rows: tuple[PaperRow, ...]


@dataclass(frozen=True)
class PaperTable:
    columns: tuple[str, ...]  # condition labels, control first, gold-reading ones marked
    panels: tuple[PaperPanel, ...]
    caption: str
    notes: tuple[str, ...]
    relative: bool


def paper_table(comparison: Comparison, context: ExportContext) -> PaperTable:
    rows = comparison.rows
    models = list(dict.fromkeys(r.model for r in rows))
    conditions = list(dict.fromkeys(r.condition for r in rows))
    labels = {r.condition: condition_label(r) for r in rows}
    prefix = suite_prefix(rows)
    panels = []
    for model in models:
        mine = [r for r in rows if r.model == model]
        tasks = list(dict.fromkeys(r.task for r in mine))
        lines = []
        for task in tasks:
            by_condition = {r.condition: r for r in mine if r.task == task}
            label = ALL_TASKS_LABEL if task == ALL_TASKS else task.removeprefix(prefix)
            lines.append(PaperRow(label, _cells([by_condition.get(c) for c in conditions]), task == ALL_TASKS))
        panels.append(PaperPanel(model, tuple(lines)))
    return PaperTable(
        columns=tuple(labels[c] for c in conditions), panels=tuple(panels), caption=_caption(comparison, models, prefix, context),
        notes=tuple(_notes(comparison, context)), relative=context.relative,
    )


def _cells(rows: list[ComparisonRow | None]) -> tuple[PaperCell, ...]:
    shown = [None if r is None or r.accuracy is None else round(r.accuracy, SCORE_DIGITS) for r in rows]
    present = [s for s in shown if s is not None]
    best = max(present) if present else None
    distinct = len(set(present)) > 1  # when every condition ties, nothing is best
    cells = []
    for row, score in zip(rows, shown):
        if row is None:
            cells.append(PaperCell(None))
            continue
        compared = not row.is_control and row.delta is not None
        relative = row.relative if row.relative is not None and math.isfinite(row.relative) else None
        cells.append(
            PaperCell(score, significance_mark(row.p_adjusted) if compared else "", distinct and score is not None and score == best, relative, compared)
        )
    return tuple(cells)


def suite_prefix(rows: list[ComparisonRow]) -> str:
    """`ii/` when every task is of one suite: the suite goes in the caption, not in every row."""
    suites = {r.task.split("/", 1)[0] for r in rows if r.task != ALL_TASKS and "/" in r.task}
    plain = any("/" not in r.task for r in rows if r.task != ALL_TASKS)
    return f"{next(iter(suites))}/" if len(suites) == 1 and not plain else ""


def _caption(comparison: Comparison, models: list[str], prefix: str, context: ExportContext) -> str:
    per_task = [r for r in comparison.rows if r.task != ALL_TASKS]
    tests = sorted({r.test for r in per_task if r.test})
    score = "Accuracy" if tests and set(tests) <= BINARY_TESTS else "Mean score"
    whose = f" of {models[0]}" if len(models) == 1 else ", one panel per model"
    suite = f" ({prefix.rstrip('/')} suite)" if prefix else ""
    relative = "; in parentheses the relative gain over the control" if context.relative else ""
    test_names = " / ".join(TEST_LABELS.get(t, t) for t in tests) or "no"
    scope = FAMILY_SCOPES.get(comparison.family, "")
    adjust = "unadjusted" if comparison.adjust == "none" else f"{ADJUST_LABELS[comparison.adjust]}-adjusted {scope}".rstrip()
    return (
        f"{score} per task{suite} and condition{whose}{relative}. {_n_text(per_task)}. "
        f"Marks: {test_names} test of each condition against the control{_named(comparison.control)}, {adjust}."
    )


def _named(control: str) -> str:
    return "" if control == "control" else f" ({control})"


def _n_text(rows: list[ComparisonRow]) -> str:
    """n: the paired examples per task and condition (a range when tasks differ), and repeats."""
    examples = {r.task: r.examples for r in rows if not r.is_control}
    if not examples:
        examples = {r.task: r.examples for r in rows}
    counts = sorted(set(examples.values()))
    n = f"n = {counts[0]}" if len(counts) == 1 else f"n = {counts[0]} to {counts[-1]}"
    repeats = max((r.repeats for r in rows), default=1)
    each = f"{repeats} samples each, averaged per example" if repeats > 1 else "one sample each"
    return f"{n} paired examples per task and condition ({each})"


def _notes(comparison: Comparison, context: ExportContext) -> list[str]:
    rows = comparison.rows
    notes = [f"{_marks_legend()}. Bold: the best score in its row."]
    if any(r.task == ALL_TASKS for r in rows):
        notes.append(f"{ALL_TASKS_LABEL}: the examples of every task together, tested the same way.")
    if context.relative:
        notes.append(
            f"Relative gain: (condition {MINUS} control) / control, in %, on the raw score; {DASH} where it is undefined (the control scored 0)."
        )
    errors = sum(r.errors for r in rows if r.task != ALL_TASKS)
    trials = sum(r.n for r in rows if r.task != ALL_TASKS)
    if errors:
        policy = "counted as wrong" if comparison.errors_policy == "wrong" else "left out of the scores"
        notes.append(f"Errored trials: {errors} of {trials}, {policy}.")
    notes += [note[0].upper() + note[1:] + "." for note in comparison.notes if not note.startswith(("errored trials", "one trial per", "repeats are"))]
    return notes


def _marks_legend() -> str:
    return ", ".join(f"{mark} p < {limit:g}" for limit, mark in reversed(MARKS)) + " (adjusted)"


# -- LaTeX ------------------------------------------------------------------------------------

SAVEBOX = r"\wbpapertable"


def signed(value: float, digits: int, minus: str = MINUS, plus: str = "+") -> str:
    """A signed number with a proper minus sign (no sign on a value that rounds to zero)."""
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return text
    return (minus if value < 0 else plus) + text


def _latex_cell(cell: PaperCell, relative: bool) -> str:
    if cell.score is None:
        return "--"
    text = f"{cell.score:.{SCORE_DIGITS}f}"
    text = f"\\textbf{{{text}}}" if cell.bold else text
    text += f"$^{{{cell.mark}}}$" if cell.mark else ""
    if relative and cell.compared:
        gain = "--" if cell.relative is None else signed(100 * cell.relative, RELATIVE_DIGITS, "$-$", "$+$") + r"\%"
        text = f"\\begin{{tabular}}[t]{{@{{}}r@{{}}}}{text}\\\\{{\\scriptsize ({gain})}}\\end{{tabular}}"
    return text


def paper_latex(comparison: Comparison, context: ExportContext) -> str:
    """A table float: booktabs rules, notes under the tabular and as wide as it (a plain
    minipage, no package beyond booktabs), the run in a comment."""
    table = paper_table(comparison, context)
    width = len(table.columns) + 1
    lines = [
        "% Generated by the Prompt-Affect Workbench (paper layout). Needs \\usepackage{booktabs}.",
        *[f"% {_one_line(part)}" for part in context.provenance.splitlines() if part.strip()],
        f"\\ifdefined{SAVEBOX}\\else\\newsavebox{{{SAVEBOX}}}\\fi",
        "\\begin{table}[tbp]", "\\centering", "\\small",
        f"\\caption{{{latex_escape(table.caption)}}}",
        f"\\label{{tab:{_slug(context.name) or 'results'}}}",
        "\\smallskip",
        f"\\sbox{{{SAVEBOX}}}{{%",
        f"\\begin{{tabular}}{{l{'r' * len(table.columns)}}}", "\\toprule",
        " & ".join(["Task", *(latex_escape(c) for c in table.columns)]) + " \\\\",
    ]
    for panel in table.panels:
        lines.append("\\midrule")
        if len(table.panels) > 1:
            lines.append(f"\\multicolumn{{{width}}}{{@{{}}l}}{{\\textit{{{latex_escape(panel.model)}}}}} \\\\")
        for row in panel.rows:
            if row.across_tasks:
                lines.append("\\midrule")
            cells = [latex_escape(row.label), *(_latex_cell(c, table.relative) for c in row.cells)]
            lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}}%"]
    lines += [f"\\begin{{minipage}}{{\\wd{SAVEBOX}}}", f"\\usebox{{{SAVEBOX}}}\\par\\smallskip", "\\footnotesize"]
    lines += [latex_escape(note) + "\\par" for note in table.notes]
    lines += ["\\end{minipage}", "\\end{table}", ""]
    text = "\n".join(lines)
    if context.standalone:
        text = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + text + "\\end{document}\n"
    return text


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- Markdown ---------------------------------------------------------------------------------


def _markdown_cell(cell: PaperCell, relative: bool) -> str:
    if cell.score is None:
        return DASH
    text = f"{cell.score:.{SCORE_DIGITS}f}"
    text = f"**{text}**" if cell.bold else text
    text += markdown_escape(cell.mark)
    if relative and cell.compared:
        text += " (" + (DASH if cell.relative is None else signed(100 * cell.relative, RELATIVE_DIGITS) + "%") + ")"
    return text


def paper_markdown(comparison: Comparison, context: ExportContext) -> str:
    table = paper_table(comparison, context)
    lines = []
    if context.provenance.strip():
        lines.append("<!-- " + _one_line(context.provenance).replace("--", "- -") + " -->\n")
    lines.append(f"**Table.** {markdown_escape(table.caption)}\n")
    header = ["Task", *table.columns]
    lines.append("| " + " | ".join(markdown_escape(h) for h in header) + " |")
    lines.append("| --- |" + " ---: |" * len(table.columns))
    for panel in table.panels:
        if len(table.panels) > 1:
            lines.append(f"| *{markdown_escape(panel.model)}* |" + " |" * len(table.columns))
        for row in panel.rows:
            label = markdown_escape(row.label)
            label = f"**{label}**" if row.across_tasks else label
            lines.append("| " + " | ".join([label, *(_markdown_cell(c, table.relative) for c in row.cells)]) + " |")
    lines.append("")
    lines += [f"{markdown_escape(note)}  " for note in table.notes]
    return "\n".join(lines).rstrip() + "\n"
