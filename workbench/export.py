"""Comparison tables for papers: booktabs LaTeX, Markdown and CSV, every printed name escaped.

One formatter (`row_cells`) decides what each cell says; the formats only differ in how they
escape and join. Files are written under a temporary name and renamed, so a failed export
leaves nothing half written.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .stats.format_check import FORMAT_MARK, FormatRow
from .stats.table import ALL_TASKS, GOLD_MARK, Comparison, ComparisonRow, OmnibusRow, PooledRow

ADJUST_LABELS = {"holm": "Holm", "bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni", "none": "no"}
FAMILY_LABELS = {
    "model": "the conditions compared with the control within each model and task",
    "model-tasks": "all conditions and tasks of a model",
    "run": "all comparisons of the run",
}
TEST_LABELS = {
    "mcnemar_exact": "exact McNemar", "mcnemar_midp": "McNemar mid-p", "mcnemar_chi2_cc": "McNemar chi-square (continuity-corrected)",
    "paired_t": "paired t", "wilcoxon": "Wilcoxon signed-rank", "permutation": "paired permutation",
    "cochran_q": "Cochran's Q", "friedman": "Friedman",
}
INTERVAL_LABELS = {"newcombe_paired": "Newcombe's paired score interval", "paired_t": "paired t interval"}
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
        "delta": fmt_interval(row.delta, row.ci_low, row.ci_high),
        "relative": fmt_interval(_pct(row.relative), _pct(row.relative_low), _pct(row.relative_high), digits=1),
        "odds_ratio": fmt_interval(row.odds_ratio, row.odds_ratio_low, row.odds_ratio_high, signed=False, digits=2),
        "cohens_h": fmt_number(row.cohens_h, 2, signed=True),
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
    pooled, gee = row.pooled, row.gee
    return {
        "model": row.model,
        "condition": condition_label(row),
        "tasks": str(row.tasks),
        "pooled": fmt_interval(pooled.estimate, pooled.ci_low, pooled.ci_high) if pooled else DASH,
        "tau2": fmt_number(pooled.tau2, 4) if pooled else DASH,
        "i2": fmt_number(100 * pooled.i2, 0) if pooled else DASH,
        "p": fmt_p(pooled.p_value) if pooled else DASH,
        "p_adjusted": fmt_p(row.p_adjusted),
        "mark": significance_mark(row.p_adjusted),
        "relative": f"{fmt_number(_pct(row.relative_mean), 1, True)} / {fmt_number(_pct(row.relative_max), 1, True)}",
        "gee": fmt_interval(gee.estimate, gee.ci_low, gee.ci_high, signed=gee.scale == "difference", digits=2) if gee else DASH,
        "gee_p": fmt_p(gee.p_value) if gee else DASH,
    }


POOLED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "Model"), ("condition", "Condition"), ("tasks", "Tasks"), ("pooled", "Pooled Δ [CI]"), ("tau2", "τ²"), ("i2", "I² %"),
    ("p", "p"), ("p_adjusted", "p adj."), ("relative", "Rel. gain % mean / max"), ("gee", "GEE effect [CI]"), ("gee_p", "GEE p"),
)


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

NUMERIC = {"n", "errors", "no_answer", "responses", "unparseable", "gold_in_zero", "accuracy", "tasks", "tau2", "i2", "p", "p_adjusted", "gee_p", "cohens_h", "conditions", "examples", "statistic", "df"}


def sections(comparison: Comparison) -> list[tuple[str, tuple[tuple[str, str], ...], list[dict[str, str]]]]:
    """The tables of an export: (caption, columns, rows of cells)."""
    out = [("Paired comparisons with the control", COLUMNS, [row_cells(r) for r in comparison.rows])]
    if comparison.pooled:
        out.append(("Effects across tasks", POOLED_COLUMNS, [pooled_cells(r) for r in comparison.pooled]))
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


def notes(comparison: Comparison) -> list[str]:
    """The sentences a reader needs to interpret the table, in plain text."""
    tests = sorted({r.test for r in comparison.rows if r.test})
    intervals = sorted({r.interval for r in comparison.rows if r.interval})
    level = f"{100 * comparison.level:g}%"
    out = [
        f"Δ: paired difference in mean score, condition minus the control ({comparison.control}), with {level} "
        f"{' / '.join(INTERVAL_LABELS.get(i, i) for i in intervals) or 'intervals'}; Rel. gain: Δ relative to the control's accuracy.",
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
        out.append(
            "Across tasks: random-effects pooled Δ (Paule-Mandel τ²), mean and max of the per-task relative gains, and a GEE model "
            "(examples as clusters, task as a fixed effect; odds ratio for 0/1 scores)."
        )
    return out


# -- escaping ------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "Δ": r"$\Delta$", "τ": r"$\tau$", "²": r"\textsuperscript{2}", "–": "--", GOLD_MARK: r"\dag{}", FORMAT_MARK: r"\ddag{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, " " if ch in "\r\n\t" else ch) for ch in str(text))


_MARKDOWN_SPECIAL = set("\\|*_`<>[]#")


def markdown_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else (" " if ch in "\r\n" else ch) for ch in str(text))


def csv_safe(value: object) -> object:
    """Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP advice)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
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


def to_latex(comparison: Comparison, title: str = "", standalone: bool = False) -> str:
    """booktabs tables (needs \\usepackage{booktabs}); standalone=True wraps them in a document."""
    body = []
    for index, (caption, columns, rows) in enumerate(sections(comparison)):
        breaks = _model_breaks(comparison.rows) if index == 0 else []
        body.append(_latex_table(columns, rows, f"{title}: {caption}" if title else caption, breaks))
    body.append("\\begin{flushleft}\\footnotesize\n" + "\\\\\n".join(latex_escape(n) for n in notes(comparison)) + "\n\\end{flushleft}\n")
    text = "% Generated by the Prompt-Affect Workbench. Needs \\usepackage{booktabs}.\n" + "\n".join(body)
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
        values = [latex_escape(cells[key]) + (f"$^{{{cells['mark']}}}$" if key == "p_adjusted" and cells["mark"] else "") for key, _ in columns]
        lines.append(" & ".join(values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def to_csv(comparison: Comparison, title: str = "") -> str:
    """Every field of every row, one line per comparison (pooled effects are in `compare --json`),
    with the row's format diagnostic as `format_*` columns."""
    diagnostic = {(f.model, f.task, f.condition): f.to_dict() for f in comparison.format}
    blank = {f"format_{k}": None for k in FormatRow.__dataclass_fields__ if k not in ("model", "task", "condition", "control")}
    rows = [
        {**r.to_dict(), **blank, **{f"format_{k}": v for k, v in diagnostic.get((r.model, r.task, r.condition), {}).items() if f"format_{k}" in blank}}
        for r in comparison.rows
    ] if comparison.format else [r.to_dict() for r in comparison.rows]
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else csv_safe(v) for k, v in row.items()})
    return buffer.getvalue()


FORMATS: dict[str, Callable[..., str]] = {"latex": to_latex, "markdown": to_markdown, "csv": to_csv}


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_table(comparison: Comparison, fmt: str, out: Path, title: str = "", standalone: bool = False) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    text = to_latex(comparison, title, standalone) if fmt == "latex" else FORMATS[fmt](comparison, title)
    write_atomic(out, text)
    return Path(out)


__all__ = ["ALL_TASKS", "FORMATS", "export_table", "latex_escape", "markdown_escape", "row_cells", "to_csv", "to_latex", "to_markdown"]
