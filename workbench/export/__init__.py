"""Comparison tables for papers: booktabs LaTeX, Markdown, CSV and Parquet, every printed name
escaped. This module is the `full` layout (every statistic); `paper` lays the table out as the
source papers print it, `layouts` and `formats` name what `workbench export` can write, `trials`
is the per-trial data and `workbench.export.bibliography` the references.bib beside an export.

One formatter (`row_cells`) decides what each cell says; the formats only differ in how they
escape and join. Files are written under a temporary name and renamed, so a failed export
leaves nothing half written.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from pathlib import Path

from ..core.text import visible
from ..stats.caveats import CAVEATS, GEE_NOT_ESTIMABLE, GEE_WARNING, mark
from ..stats.format_check import FORMAT_MARK, FormatRow
from ..stats.table import ALL_TASKS, GOLD_MARK, NORMALISED, RAW, Comparison, ComparisonRow, OmnibusRow, PooledRow

ADJUST_LABELS = {"holm": "Holm", "bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni", "none": "no"}
FAMILY_LABELS = {
    "model": "the conditions compared with the control within each model and task",
    "model-tasks": "all conditions and tasks of a model",
    "run": "all comparisons of the run",
}
TEST_LABELS = {
    "mcnemar_exact": "exact McNemar", "mcnemar_midp": "McNemar mid-p", "mcnemar_chi2_cc": "McNemar chi-square (continuity-corrected)",
    "paired_t": "paired t", "wilcoxon": "Wilcoxon signed-rank", "permutation": "paired permutation",
    "cochran_q": "Cochran's Q", "friedman": "Friedman", "sign_flip_exact": "exact sign-flip (zero variance)",
}
INTERVAL_LABELS = {
    "newcombe_paired": "Newcombe's paired score interval", "paired_t": "paired t interval",
    "wilson_bounded": "Wilson interval of the rescaled difference (zero variance)",
}
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
DASH = "–"


def significance_mark(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return ""
    return next((mark for limit, mark in MARKS if p < limit), "")


def fmt_number(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_interval(estimate: float | None, low: float | None, high: float | None, signed: bool = True, digits: int = 3) -> str:
    if estimate is None:
        return DASH
    text = fmt_number(estimate, digits, signed)
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return text
    return f"{text} [{fmt_number(low, digits, signed)}, {fmt_number(high, digits, signed)}]"


UNDEFINED, UNBOUNDED = "undefined", "unbounded"
SUPERSCRIPTS = dict(zip("abcdefghij", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲ"))  # a caveat's mark after a cell, its sentence in the notes


def caveat_mark(code: str | None) -> str:
    return SUPERSCRIPTS[mark(code)] if code else ""


def _bound(value: float | None, digits: int, signed: bool) -> str:
    if value is not None and math.isinf(value):
        return UNBOUNDED
    return fmt_number(value, digits, signed)


def noted_interval(estimate: float | None, low: float | None, high: float | None, note: str | None, signed: bool = True, digits: int = 3) -> str:
    """An estimate with its interval that says in words what is undefined or unbounded, marked
    with its caveat (explained under the table)."""
    if estimate is None and note is None:
        return DASH
    if estimate is None or math.isnan(estimate):
        return UNDEFINED + caveat_mark(note)
    text = _bound(estimate, digits, signed)
    if not all(v is None or math.isnan(v) for v in (low, high)):
        text += f" [{_bound(low, digits, signed)}, {_bound(high, digits, signed)}]"
    return text + caveat_mark(note)


def row_cells(row: ComparisonRow) -> dict[str, str]:
    """What each column of the main table says for one row (control rows show no comparison)."""
    return {
        "model": row.model,
        "task": row.task,
        "condition": condition_label(row) + (" (control)" if row.is_control and row.condition != "control" else ""),
        "n": str(row.n),
        "errors": str(row.errors),
        "no_answer": str(row.no_answer),
        "accuracy": fmt_number(row.accuracy),
        "delta": fmt_interval(row.delta, row.ci_low, row.ci_high) + caveat_mark(row.delta_note),
        "relative": noted_interval(_pct(row.relative), _pct(row.relative_low), _pct(row.relative_high), row.relative_note, digits=1),
        "odds_ratio": noted_interval(row.odds_ratio, row.odds_ratio_low, row.odds_ratio_high, row.odds_ratio_note, signed=False, digits=2),
        "cohens_h": fmt_number(row.cohens_h, 2, signed=True) + caveat_mark(row.cohens_h_note),
        "p": fmt_p(row.p_value),
        "p_adjusted": fmt_p(row.p_adjusted),
        "mark": significance_mark(row.p_adjusted),
    }


def condition_label(row: ComparisonRow | PooledRow) -> str:
    """The condition's name, marked where its trials read gold labels and where the format
    diagnostic flags it (both explained in the notes)."""
    marks = (GOLD_MARK if row.consumes_gold else "") + (FORMAT_MARK if getattr(row, "format_flag", False) else "")
    return f"{row.condition} {marks}" if marks else row.condition


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "Model"), ("task", "Task"), ("condition", "Condition"), ("n", "n"), ("errors", "Errors"), ("no_answer", "No ans."), ("accuracy", "Acc."),
    ("delta", "Δ [CI]"), ("relative", "Rel. gain % [CI]"), ("odds_ratio", "OR (discordant) [CI]"), ("cohens_h", "h"),
    ("p", "p"), ("p_adjusted", "p adj."),
)


def pooled_cells(row: PooledRow) -> dict[str, str]:
    pooled, gee, relative = row.pooled, row.gee, row.relative
    total = row.tasks + len(row.tasks_left_out)
    return {
        "model": row.model,
        "condition": condition_label(row),
        "tasks": str(row.tasks) if not row.tasks_left_out else f"{row.tasks} of {total}",
        "pooled": fmt_interval(pooled.estimate, pooled.ci_low, pooled.ci_high) if pooled else DASH,
        "tau2": fmt_number(pooled.tau2, 4) if pooled else DASH,
        "i2": fmt_number(100 * pooled.i2, 0) if pooled else DASH,
        "p": fmt_p(pooled.p_value) if pooled else DASH,
        "p_adjusted": fmt_p(row.p_adjusted),
        "mark": significance_mark(row.p_adjusted),
        "relative": noted_interval(_pct(relative.estimate), _pct(relative.low), _pct(relative.high), relative.note, digits=1) if relative else DASH,
        "gee": _gee_cell(gee),
        "gee_p": fmt_p(gee.p_value) if gee and gee.estimable else DASH,
    }


def _gee_cell(gee: object) -> str:
    if gee is None:
        return DASH
    if not gee.estimable:  # type: ignore[attr-defined]
        return UNDEFINED + caveat_mark(GEE_NOT_ESTIMABLE)
    text = fmt_interval(gee.estimate, gee.ci_low, gee.ci_high, signed=gee.scale == "difference", digits=2)  # type: ignore[attr-defined]
    return text + (caveat_mark(GEE_WARNING) if gee.warning else "")  # type: ignore[attr-defined]


POOLED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "Model"), ("condition", "Condition"), ("tasks", "Tasks"), ("pooled", "Pooled Δ [CI]"), ("tau2", "τ²"), ("i2", "I² %"),
    ("p", "p"), ("p_adjusted", "p adj."), ("relative", "Rel. gain % [CI] (ratio of task means)"), ("gee", "GEE effect [CI]"), ("gee_p", "GEE p"),
)
RELATIVE_HEADERS = {
    frozenset({RAW}): "Rel. gain % [CI], raw accuracy",
    frozenset({NORMALISED}): "Rel. gain % [CI], normalised score",
    frozenset({RAW, NORMALISED}): "Rel. gain % [CI], raw or normalised (notes)",
}


def with_relative_header(columns: Sequence[tuple[str, str]], rows: Sequence[ComparisonRow | PooledRow]) -> tuple[tuple[str, str], ...]:
    """The columns with the relative gain's header naming its scale: raw accuracy, BIG-bench's
    normalised score, or both (the notes say which rows are which)."""
    scales = frozenset(r.relative_scale for r in rows if r.relative_scale)
    header = RELATIVE_HEADERS.get(scales)
    if header is None:
        return tuple(columns)
    suffix = " (ratio of task means)" if any(isinstance(r, PooledRow) for r in rows) else ""
    return tuple((key, header + suffix if key == "relative" else label) for key, label in columns)


def omnibus_cells(row: OmnibusRow) -> dict[str, str]:
    return {
        "model": row.model, "task": row.task, "test": TEST_LABELS.get(row.test or "", DASH), "conditions": str(row.conditions),
        "examples": str(row.examples), "statistic": fmt_number(row.statistic, 2, False), "df": fmt_number(row.df, 0), "p": fmt_p(row.p_value),
        "mark": "",
    }


OMNIBUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "Model"), ("task", "Task"), ("test", "All conditions at once"), ("conditions", "Conditions"), ("examples", "Examples"),
    ("statistic", "Statistic"), ("df", "df"), ("p", "p"),
)

NUMERIC = {"n", "errors", "no_answer", "responses", "unparseable", "gold_in_zero", "accuracy", "tasks", "tau2", "i2", "p", "p_adjusted", "gee_p", "cohens_h", "conditions", "examples", "statistic", "df",
           "candidates", "trials", "n_test"}


def sections(comparison: Comparison) -> list[tuple[str, tuple[tuple[str, str], ...], list[dict[str, str]]]]:
    """The tables of an export: (caption, columns, rows of cells)."""
    out = [("Paired comparisons with the control", with_relative_header(COLUMNS, comparison.rows), [row_cells(r) for r in comparison.rows])]
    if comparison.pooled:
        out.append(("Effects across tasks", with_relative_header(POOLED_COLUMNS, comparison.pooled), [pooled_cells(r) for r in comparison.pooled]))
    if comparison.omnibus:
        out.append(("All conditions at once", OMNIBUS_COLUMNS, [omnibus_cells(r) for r in comparison.omnibus]))
    if comparison.format:
        out.append(("Format diagnostic", FORMAT_COLUMNS, [format_cells(r) for r in comparison.format]))
    return out


def format_cells(row: FormatRow) -> dict[str, str]:
    """One line of the format diagnostic: the strict extractor's no-answer share and the share of
    zero-scored answers naming the gold (each with its p against the control), the effect under
    strict and under flexible, and the flag with its reasons."""
    return {
        "model": row.model, "task": row.task,
        "condition": row.condition + (f" {FORMAT_MARK}" if row.flagged else "") + (" (control)" if row.is_control and row.condition != "control" else ""),
        "responses": str(row.responses),
        "unparseable": fmt_number(_pct(row.unparseable), 1),
        "unparseable_p": fmt_p(row.unparseable_p),
        "gold_in_zero": f"{fmt_number(_pct(row.gold_in_zero), 1)} of {row.zero_scored}",
        "gold_in_zero_p": fmt_p(row.gold_in_zero_p),
        "strict": fmt_interval(row.strict_delta, row.strict_low, row.strict_high),
        "strict_p": fmt_p(row.strict_p),
        "flexible": fmt_interval(row.flexible_delta, row.flexible_low, row.flexible_high),
        "flexible_p": fmt_p(row.flexible_p),
        "flag": row.reasons.replace(",", ", ") if row.flagged else "",
        "mark": "",
    }


FORMAT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "Model"), ("task", "Task"), ("condition", "Condition"), ("responses", "Responses"), ("unparseable", "No answer (strict) %"),
    ("unparseable_p", "p"), ("gold_in_zero", "Gold in 0s %"), ("gold_in_zero_p", "p"), ("strict", "Δ strict [CI]"), ("strict_p", "p"),
    ("flexible", "Δ flexible [CI]"), ("flexible_p", "p"), ("flag", "Format flag"),
)


def notes(comparison: Comparison, shown: set[str] | None = None) -> list[str]:
    """The sentences a reader needs to interpret the table, in plain text (shown: the columns a
    table prints, whose caveats are explained; default all)."""
    tests = sorted({r.test for r in comparison.rows if r.test})
    intervals = sorted({r.interval for r in comparison.rows if r.interval})
    level = f"{100 * comparison.level:g}%"
    out = [
        f"Δ: paired difference in mean score, condition minus the control ({comparison.control}), with {level} "
        f"{' / '.join(INTERVAL_LABELS.get(i, i) for i in intervals) or 'intervals'}.",
        relative_sentence(comparison.rows),
        f"p: {', '.join(TEST_LABELS.get(t, t) for t in tests) or 'no test'}; p adj.: {ADJUST_LABELS[comparison.adjust]}-adjusted over "
        f"{FAMILY_LABELS[comparison.family]}; * p adj. < 0.05, ** < 0.01, *** < 0.001.",
        *[note[0].upper() + note[1:] + "." for note in comparison.notes],
    ]
    if comparison.format:
        out.append(
            "Format diagnostic: No answer (strict): share of responses the strict extractor finds no answer in; Gold in 0s: share of "
            f"the responses scored 0 under the {comparison.format[0].extractor} extractor that name a gold answer; p: paired test of "
            "each against the control; Δ strict / Δ flexible: the effect under each extractor."
        )
    if comparison.pooled:
        out += pooled_sentences(comparison.pooled)
    out += [f"{SUPERSCRIPTS[mark(code)]} {CAVEATS[code]}." for code in caveats_present(comparison, shown)]
    return out


def relative_sentence(rows: Sequence[ComparisonRow]) -> str:
    """Which scale each relative gain is on."""
    normalised = sorted({r.task for r in rows if r.relative_scale == NORMALISED and r.task != ALL_TASKS})
    text = "Rel. gain: the ratio of the condition's mean to the control's, minus 1, with a log-ratio (delta-method) interval; "
    if not normalised:
        return text + "on raw accuracy."
    rest = "" if all(r.relative_scale != RAW for r in rows) else "; on raw accuracy for the others"
    return (
        text + "on BIG-bench's normalised score, (score − chance) / (1 − chance), for tasks with a chance level "
        f"({', '.join(normalised)}) and the across-task rows that include them{rest}."
    )


def pooled_sentences(pooled: Sequence[PooledRow]) -> list[str]:
    """How the across-task figures were made, which tasks they left out, what the GEE fit said."""
    methods = {p.pooled.method for p in pooled if p.pooled}
    hksj = any(m.endswith("_hksj") for m in methods)
    out = [
        "Across tasks (headline: the pooled Δ): random-effects pooled Δ (Paule-Mandel τ²) with "
        + ("the Hartung-Knapp-Sidik-Jonkman t interval and test (k − 1 df; never narrower than the z interval), as few tasks need"
           if hksj else "a z interval and test")
        + "; Rel. gain: the ratio of the task-averaged means, minus 1 (each task weighs the same); a GEE model "
        "(examples as clusters, task as a fixed effect; odds ratio for 0/1 scores). All use the tasks counted in Tasks."
    ]
    for p in pooled:
        if p.tasks_left_out:
            left = ", ".join(f"{task} ({why})" for task, why in p.tasks_left_out)
            out.append(f"{p.model} · {p.condition}: left out {left}.")
        if p.gee is not None and p.gee.warning:
            out.append(f"GEE, {p.model} · {p.condition}: {p.gee.warning}.")
    return out


NOTED_COLUMNS = {"delta": "delta_note", "relative": "relative_note", "odds_ratio": "odds_ratio_note", "cohens_h": "cohens_h_note"}


def caveats_present(comparison: Comparison, shown: set[str] | None = None) -> list[str]:
    """The caveat codes the tables mark (in the shown columns), in the registry's order."""
    visible = set(NOTED_COLUMNS) | {"gee"} if shown is None else shown
    codes = {getattr(r, note) for r in comparison.rows for column, note in NOTED_COLUMNS.items() if column in visible}
    codes |= {p.relative.note for p in comparison.pooled if p.relative and "relative" in visible}
    codes |= {(GEE_WARNING if p.gee.estimable else GEE_NOT_ESTIMABLE) for p in comparison.pooled if p.gee is not None and p.gee.warning and "gee" in visible}
    return [code for code in CAVEATS if code in codes]


# -- escaping ------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "Δ": r"$\Delta$", "τ": r"$\tau$", "²": r"\textsuperscript{2}", "–": "--", "\u2212": "$-$", GOLD_MARK: r"\dag{}", FORMAT_MARK: r"\ddag{}",
    **{sup: rf"\textsuperscript{{{letter}}}" for letter, sup in SUPERSCRIPTS.items()},
}


def latex_escape(text: str) -> str:
    """Text for LaTeX: its specials escaped, line breaks as spaces, and any other control or format
    character (ESC, NUL: pdflatex stops on them) written out as its escape, `\\x1b`."""
    return "".join(_LATEX_SPECIAL.get(ch, " " if ch in "\r\n\t" else ch) for ch in _shown(text))


_MARKDOWN_SPECIAL = set("\\|*_`<>[]#")


def markdown_escape(text: str) -> str:
    """Text for a Markdown table cell: its specials escaped, line breaks as spaces, other control
    characters written out as their escapes (as latex_escape)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else (" " if ch in "\r\n" else ch) for ch in _shown(text))


def _shown(text: object) -> str:
    """`text` with control and format characters other than line breaks and tabs as escapes."""
    return visible(str(text).replace("\r", " "))


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value: object) -> object:
    """Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP advice); a plain
    number such as "-5" (a gold answer, say) is no formula and stays as it is."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


# -- formats -------------------------------------------------------------------------------


def to_markdown(comparison: Comparison, title: str = "") -> str:
    parts = [f"### {markdown_escape(title)}\n"] if title else []
    parts.append("\n\n".join(_markdown_table(columns, rows) for _, columns, rows in sections(comparison)))
    parts.append("\n" + "\n".join(f"- {markdown_escape(n)}" for n in notes(comparison)) + "\n")
    return "\n".join(parts)


def _markdown_table(columns: Sequence[tuple[str, str]], rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(markdown_escape(label) for _, label in columns) + " |"]
    lines.append("| " + " | ".join("---:" if key in NUMERIC else "---" for key, _ in columns) + " |")
    for cells in rows:
        values = [markdown_escape(cells[key]) + (markdown_escape(cells["mark"]) if key == "p_adjusted" else "") for key, _ in columns]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def to_latex(comparison: Comparison, title: str = "", standalone: bool = False, provenance: str = "") -> str:
    """booktabs tables (needs \\usepackage{booktabs}); standalone=True wraps them in a document;
    `provenance` (the run id, the log) goes in a comment, never in a caption."""
    body = []
    for index, (caption, columns, rows) in enumerate(sections(comparison)):
        breaks = _model_breaks(comparison.rows) if index == 0 else []
        body.append(_latex_table(columns, rows, f"{title}: {caption}" if title else caption, breaks))
    body.append("\\begin{flushleft}\\footnotesize\n" + "\\\\\n".join(latex_escape(n) for n in notes(comparison)) + "\n\\end{flushleft}\n")
    comment = "".join(f"% {' '.join(line.split())}\n" for line in provenance.splitlines() if line.strip())
    text = "% Generated by the Prompt-Affect Workbench. Needs \\usepackage{booktabs}.\n" + comment + "\n".join(body)
    if standalone:
        text = (
            "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n"
            "\\usepackage[margin=1.5cm,landscape]{geometry}\n\\begin{document}\n" + text + "\\end{document}\n"
        )
    return text


def _model_breaks(rows: list[ComparisonRow]) -> list[int]:
    return [i for i in range(1, len(rows)) if (rows[i].model, rows[i].task) != (rows[i - 1].model, rows[i - 1].task)]


def _latex_table(columns: Sequence[tuple[str, str]], rows: list[dict[str, str]], caption: str, breaks: list[int]) -> str:
    spec = "".join("r" if key in NUMERIC else "l" for key, _ in columns)
    lines = [
        "\\begin{table}[ht]", "\\centering", "\\scriptsize", f"\\caption{{{latex_escape(caption)}}}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
        " & ".join(latex_escape(label) for _, label in columns) + " \\\\", "\\midrule",
    ]
    for index, cells in enumerate(rows):
        if index in breaks:
            lines.append("\\midrule")
        values = [
            _latex_value(key, cells[key]) + (f"$^{{{cells['mark']}}}$" if key == "p_adjusted" and cells["mark"] else "") for key, _ in columns
        ]
        lines.append(" & ".join(values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


NAMES = ("model", "task", "condition", "control", "search", "winner")  # text columns: never numbers, always escaped
_SIGNED_NUMBER = re.compile(r"(?<![\w$])([+-])(?=\d|inf)")


def _latex_value(key: str, text: str) -> str:
    """A cell in LaTeX; in number columns a sign is a math sign ($-$, not a hyphen)."""
    escaped = latex_escape(text)
    return escaped if key in NAMES else _SIGNED_NUMBER.sub(lambda m: f"${m.group(1)}$", escaped)


def csv_value(value: object) -> object:
    """A cell as R's read.csv and pandas read it: missing (None, NaN) empty, infinities Inf and
    -Inf, timestamps ISO 8601, text a spreadsheet would run defused."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ")  # type: ignore[union-attr]
    return csv_safe(value)


# Which table a line of the CSV or Parquet export belongs to (its `table` column).
TABLE_NAMES = {"per_task": "one task", "across_tasks": "every example of every task together", "pooled": "random-effects and GEE effects across tasks",
               "omnibus": "all conditions at once (Cochran's Q or Friedman)",
               "format": "the format diagnostic: strict no-answer and gold-in-zero shares, effects under strict and flexible"}


def comparison_records(comparison: Comparison) -> list[dict[str, object]]:
    """Every table of the comparison as one long list of records, each naming its `table`
    (see TABLE_NAMES), with every field as a number or text (no formatting)."""
    records: list[dict[str, object]] = []
    records += [{"table": "across_tasks" if r.task == ALL_TASKS else "per_task", **r.to_dict()} for r in comparison.rows]
    records += [{"table": "pooled", "task": ALL_TASKS, **p.to_dict()} for p in comparison.pooled]
    records += [{"table": "omnibus", **o.to_dict()} for o in comparison.omnibus]
    records += [{"table": "format", **f.to_dict()} for f in comparison.format]
    return records


def _columns(records: list[dict[str, object]]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key in record))


def to_csv(comparison: Comparison, title: str = "") -> str:
    """Every table (per task, across tasks, pooled, all conditions at once), one line per row,
    the `table` column naming which; cells a spreadsheet would run are defused."""
    return records_csv(comparison_records(comparison))


def records_csv(records: list[dict[str, object]]) -> str:
    """Records as CSV, a column for every field any record has."""
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=_columns(records), lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: csv_value(v) for k, v in record.items()})
    return buffer.getvalue()


def comparison_frame(comparison: Comparison) -> Any:
    """The CSV's records as a typed pandas DataFrame (the Parquet export, the Results page)."""
    import pandas as pd

    records = comparison_records(comparison)
    return pd.DataFrame(records, columns=_columns(records))


def to_parquet(comparison: Comparison, title: str = "") -> bytes:
    """The CSV's records as a typed Parquet table (for pandas, R's arrow, DuckDB)."""
    return frame_to_parquet(comparison_frame(comparison))


def frame_to_parquet(frame: object) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)  # type: ignore[attr-defined]
    return buffer.getvalue()


FORMATS: dict[str, Callable[..., str | bytes]] = {"latex": to_latex, "markdown": to_markdown, "csv": to_csv, "parquet": to_parquet}


def write_atomic(path: Path, content: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# A zip's entries carry a date; the earliest it can say stands in when the run's start is unknown.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_bytes(files: Mapping[str, bytes], date: datetime | None = None) -> bytes:
    """A zip of `files` (name -> content) whose bytes follow from them alone: entries in the given
    order, each dated `date` (the run's start, from the log), never the clock."""
    stamp = ZIP_EPOCH if date is None else max(ZIP_EPOCH, date.timetuple()[:6])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16  # a plain readable file
            archive.writestr(entry, content)
    return buffer.getvalue()


def export_table(comparison: Comparison, fmt: str, out: Path, title: str = "", standalone: bool = False) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    text = to_latex(comparison, title, standalone) if fmt == "latex" else FORMATS[fmt](comparison, title)
    write_atomic(out, text)
    return Path(out)


__all__ = ["ALL_TASKS", "FORMATS", "comparison_frame", "comparison_records", "export_table", "latex_escape", "markdown_escape", "row_cells", "to_csv", "to_latex", "to_markdown", "to_parquet"]
