"""Figures for papers, as PDF and PNG (matplotlib, without pyplot's global state): a forest
plot of every effect with its interval, and a task-by-stimulus heatmap of the differences."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .export import condition_label, significance_mark
from .stats.table import ALL_TASKS, GOLD_MARK, Comparison

FIGURE_FORMATS = ("pdf", "png")


def text_safe(text: str) -> str:
    """Names as literal text: matplotlib would read `$...$` as mathematics."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _save(figure: Figure, base: Path) -> list[Path]:
    written = []
    for fmt in FIGURE_FORMATS:
        path = base.with_suffix(f".{fmt}")
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            figure.savefig(tmp, format=fmt, dpi=200, bbox_inches="tight", metadata={"Creator": "Prompt-Affect Workbench"} if fmt == "pdf" else None)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written


GOLD_LEGEND = f"{GOLD_MARK} read gold labels during its trials (an oracle verifier): an upper bound that needs the answer key"


def gold_legend(figure: Figure, comparison: Comparison) -> None:
    """A legend entry for the † beside conditions that read gold labels (none without them)."""
    if any(r.consumes_gold for r in comparison.rows):
        entry = Line2D([], [], linestyle="none", label=text_safe(GOLD_LEGEND))
        figure.legend(handles=[entry], loc="outside lower center", handlelength=0, fontsize=7, frameon=False)


def forest_plot(comparison: Comparison, base: Path, title: str = "") -> list[Path]:
    """One line per comparison: the difference to the control with its interval; filled marks
    are significant after adjustment; across-task rows and pooled effects are diamonds."""
    items = [r for r in comparison.rows if not r.is_control and r.delta is not None]
    entries: list[tuple[str, float, float | None, float | None, bool, str]] = []
    for r in items:
        label = f"{r.model} · {condition_label(r)} · {r.task}"
        significant = r.p_adjusted is not None and r.p_adjusted < 0.05
        entries.append((label, r.delta, r.ci_low, r.ci_high, significant, "D" if r.task == ALL_TASKS else "o"))  # type: ignore[arg-type]
    for p in comparison.pooled:
        if p.pooled is not None:
            significant = p.p_adjusted is not None and p.p_adjusted < 0.05
            entries.append((f"{p.model} · {condition_label(p)} · pooled over {p.tasks} tasks (random effects)", p.pooled.estimate, p.pooled.ci_low, p.pooled.ci_high, significant, "D"))
    height = max(2.0, 0.32 * len(entries) + 1.2)
    figure = Figure(figsize=(7.5, height), layout="constrained")
    ax = figure.add_subplot()
    for index, (_, estimate, low, high, significant, marker) in enumerate(entries):
        y = len(entries) - 1 - index
        if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
            ax.plot([low, high], [y, y], color="0.25", linewidth=1.2)
        ax.plot([estimate], [y], marker=marker, color="0.1", markerfacecolor="0.1" if significant else "white", markersize=6)
    ax.axvline(0.0, color="0.5", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(entries)))
    ax.set_yticklabels([text_safe(e[0]) for e in reversed(entries)], fontsize=8)
    ax.set_xlabel(text_safe(f"difference in mean score vs {comparison.control} ({100 * comparison.level:g}% CI)"))
    ax.set_ylim(-0.8, max(len(entries) - 0.2, 0.8))
    if not entries:
        ax.text(0.5, 0.5, "no comparisons", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(text_safe(title or "Effects with intervals (filled: significant after adjustment)"), fontsize=9)
    gold_legend(figure, comparison)
    return _save(figure, base)


def heatmap(comparison: Comparison, base: Path, title: str = "") -> list[Path]:
    """Per model, tasks (rows) by stimulus conditions (columns): the difference to the control,
    marked with its adjusted significance."""
    models = list(dict.fromkeys(r.model for r in comparison.rows))
    width = max(4.0, 1.6 + 1.0 * _max_conditions(comparison)) * max(len(models), 1)
    figure = Figure(figsize=(width, 2.0 + 0.5 * _max_tasks(comparison)), layout="constrained")
    limit = max([abs(r.delta) for r in comparison.rows if r.delta is not None] + [0.05])
    for index, model in enumerate(models or [""]):
        ax = figure.add_subplot(1, max(len(models), 1), index + 1)
        rows = [r for r in comparison.rows if r.model == model and not r.is_control]
        tasks = list(dict.fromkeys(r.task for r in rows))
        conditions = list(dict.fromkeys(r.condition for r in rows))
        grid = np.full((len(tasks), len(conditions)), np.nan)
        for r in rows:
            if r.delta is not None:
                i, j = tasks.index(r.task), conditions.index(r.condition)
                grid[i, j] = r.delta
                colour = "white" if abs(r.delta) > 0.6 * limit else "black"
                ax.text(j, i, f"{r.delta:+.2f}{significance_mark(r.p_adjusted)}", ha="center", va="center", fontsize=7, color=colour)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_xticks(range(len(conditions)))
        labels = {r.condition: condition_label(r) for r in rows}
        ax.set_xticklabels([text_safe(labels[c]) for c in conditions], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(tasks)))
        ax.set_yticklabels([text_safe(t) for t in tasks], fontsize=8)
        ax.set_title(text_safe(model), fontsize=9)
        figure.colorbar(image, ax=ax, label=text_safe(f"Δ vs {comparison.control}"))
    if title:
        figure.suptitle(text_safe(title), fontsize=9)
    gold_legend(figure, comparison)
    return _save(figure, base)


def _max_conditions(comparison: Comparison) -> int:
    return max([len({r.condition for r in comparison.rows if r.model == m}) for m in {r.model for r in comparison.rows}] + [1])


def _max_tasks(comparison: Comparison) -> int:
    return max([len({r.task for r in comparison.rows if r.model == m}) for m in {r.model for r in comparison.rows}] + [1])


def write_figures(comparison: Comparison, directory: Path, title: str = "") -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return forest_plot(comparison, directory / "forest", title) + heatmap(comparison, directory / "heatmap", title)
