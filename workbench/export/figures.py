"""Figures for papers, as vector PDF (embedded TrueType text) and PNG (matplotlib, without
pyplot's global state): a forest plot of every effect with its interval, and a task-by-condition
heatmap of the differences with their marks and intervals; for conditions that loop (HEART), the
score by round and the gain against the tokens spent.

Ready to go into a paper as they are: no title (the caption is the paper's), no run id on the
figure (it is in the PDF's metadata), the model named only when there are several, a legend of
the marker shapes and fills, n beside every task, and colour-blind-safe colours (Okabe-Ito for
conditions, ColorBrewer's RdBu for the diverging heatmap).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from . import MARKS, condition_label, significance_mark, write_atomic
from .paper import ALL_TASKS_LABEL, signed, suite_prefix
from ..reports.rounds import ConditionCost, RoundPoint
from ..stats.table import ALL_TASKS, GOLD_MARK, Comparison

FIGURE_FORMATS = ("pdf", "png")
# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
DIVERGING = "RdBu"  # ColorBrewer marks it colour-blind safe; blue: above the control, red: below
MARKERS = {"task": "o", "all": "D", "pooled": "s"}
MARKER_LABELS = {"task": "one task", "all": "all tasks (every example together)", "pooled": "pooled across tasks (random effects)"}
RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "font.size": 8}  # text stays text in the PDF


def text_safe(text: str) -> str:
    """Names as literal text: matplotlib would read `$...$` as mathematics."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _rendered(figure: Figure, name: str, provenance: str = "", created: datetime | None = None) -> dict[str, bytes]:
    """The figure as NAME.pdf and NAME.png. The PDF's date is `created` (the run's start, from the
    log), never the clock, so the same log gives the same bytes; without it the PDF has none."""
    files = {}
    for fmt in FIGURE_FORMATS:
        metadata = {"Creator": "Prompt-Affect Workbench", "Subject": " ".join(provenance.split()), "CreationDate": created} if fmt == "pdf" else None
        buffer = io.BytesIO()
        with matplotlib.rc_context(RC):
            figure.savefig(buffer, format=fmt, dpi=200, bbox_inches="tight", metadata=metadata)
        files[f"{name}.{fmt}"] = buffer.getvalue()
    return files


def _significant(p: float | None) -> bool:
    return p is not None and p < MARKS[-1][0]


def _marks_note() -> str:
    return ", ".join(f"{mark} p < {limit:g}" for limit, mark in reversed(MARKS)) + " (adjusted)"


def _gold_note(comparison: Comparison) -> str:
    gold = any(r.consumes_gold for r in comparison.rows)
    return f"{GOLD_MARK} read gold labels during its trials (oracle verifier): an upper bound" if gold else ""


@dataclass(frozen=True)
class ForestEntry:
    label: str
    estimate: float
    low: float | None
    high: float | None
    p_adjusted: float | None
    kind: str  # a MARKERS key
    condition: str


def _task_name(task: str, prefix: str) -> str:
    """A task as the figures print it: without its suite when every task is of one suite."""
    return ALL_TASKS_LABEL if task == ALL_TASKS else task.removeprefix(prefix)


def forest_entries(comparison: Comparison) -> list[ForestEntry]:
    """One entry per comparison with a difference, then the pooled effects; the model is named
    only when the run has several."""
    several = len({r.model for r in comparison.rows}) > 1
    prefix = (lambda model: f"{model} · ") if several else (lambda model: "")
    suite = suite_prefix(comparison.rows)
    entries = [
        ForestEntry(f"{prefix(r.model)}{condition_label(r)} · {_task_name(r.task, suite)} (n = {r.examples})", r.delta, r.ci_low, r.ci_high, r.p_adjusted,
                    "all" if r.task == ALL_TASKS else "task", r.condition)
        for r in comparison.rows if not r.is_control and r.delta is not None
    ]
    entries += [
        ForestEntry(f"{prefix(p.model)}{condition_label(p)} · pooled over {p.tasks} tasks", p.pooled.estimate, p.pooled.ci_low, p.pooled.ci_high,
                    p.p_adjusted, "pooled", p.condition)
        for p in comparison.pooled if p.pooled is not None
    ]
    return entries


def _colours(names: list[str]) -> dict[str, str]:
    return {name: OKABE_ITO[i % len(OKABE_ITO)] for i, name in enumerate(dict.fromkeys(names))}


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def forest_figure(comparison: Comparison, title: str = "") -> Figure:
    """Each effect with its interval: colour the condition, shape the kind (legend), filled when
    significant after adjustment; the estimate, interval and mark printed at the right."""
    entries = forest_entries(comparison)
    colours = _colours([e.condition for e in entries])
    figure = Figure(figsize=(7.5, max(2.2, 0.3 * len(entries) + 1.6)), layout="constrained")
    ax = figure.add_subplot()
    right = blended_transform_factory(ax.transAxes, ax.transData)
    for index, entry in enumerate(entries):
        y = len(entries) - 1 - index
        colour = colours[entry.condition]
        if _finite(entry.low, entry.high):
            ax.plot([entry.low, entry.high], [y, y], color=colour, linewidth=1.3)
        filled = _significant(entry.p_adjusted)
        ax.plot([entry.estimate], [y], marker=MARKERS[entry.kind], color=colour, markerfacecolor=colour if filled else "white", markersize=6)
        interval = f" [{signed(entry.low, 2)}, {signed(entry.high, 2)}]" if _finite(entry.low, entry.high) else ""
        ax.text(1.02, y, f"{signed(entry.estimate, 2)}{interval} {significance_mark(entry.p_adjusted)}".rstrip(), transform=right,
                ha="left", va="center", fontsize=7.5, family="DejaVu Sans Mono")
    ax.axvline(0.0, color="0.5", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(entries)))
    ax.set_yticklabels([text_safe(e.label) for e in reversed(entries)], fontsize=8)
    ax.set_ylim(-0.8, max(len(entries) - 0.2, 0.8))
    ax.set_xlabel(text_safe(f"difference in mean score, condition − {comparison.control} ({100 * comparison.level:g}% interval)"))
    if not entries:
        ax.text(0.5, 0.5, "no comparisons", ha="center", va="center", transform=ax.transAxes)
    kinds = [k for k in MARKERS if any(e.kind == k for e in entries)]
    handles = [Line2D([], [], marker=MARKERS[k], color="0.3", markerfacecolor="0.3", linestyle="none", label=MARKER_LABELS[k]) for k in kinds]
    handles += [
        Line2D([], [], marker="o", color="0.3", markerfacecolor="0.3", linestyle="none", label="filled: significant after adjustment"),
        Line2D([], [], marker="o", color="0.3", markerfacecolor="white", linestyle="none", label="open: not significant"),
    ]
    notes = text_safe("; ".join(filter(None, [_marks_note(), _gold_note(comparison)])))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7, frameon=False, title=notes, title_fontsize=7)
    if title:
        ax.set_title(text_safe(title), fontsize=9)
    return figure


def heatmap_figure(comparison: Comparison, title: str = "") -> Figure:
    """Per model, tasks (rows, with n) by treated conditions (columns): the difference to the
    control as colour and text, with its mark and interval."""
    models = list(dict.fromkeys(r.model for r in comparison.rows))
    width = max(4.0, 1.8 + 1.25 * _max_conditions(comparison)) * max(len(models), 1)
    figure = Figure(figsize=(width, 2.2 + 0.6 * _max_tasks(comparison)), layout="constrained")
    deltas = [abs(r.delta) for r in comparison.rows if r.delta is not None and math.isfinite(r.delta)]
    limit = max(deltas + [0.05])
    for index, model in enumerate(models or [""]):
        ax = figure.add_subplot(1, max(len(models), 1), index + 1)
        rows = [r for r in comparison.rows if r.model == model and not r.is_control]
        tasks = list(dict.fromkeys(r.task for r in rows))
        conditions = list(dict.fromkeys(r.condition for r in rows))
        suite = suite_prefix(rows)
        grid = np.full((len(tasks), len(conditions)), np.nan)
        examples: dict[str, int] = {}
        for r in rows:
            examples[r.task] = max(examples.get(r.task, 0), r.examples)
            if r.delta is None:
                continue
            i, j = tasks.index(r.task), conditions.index(r.condition)
            grid[i, j] = r.delta
            interval = f"\n[{signed(r.ci_low, 2)}, {signed(r.ci_high, 2)}]" if _finite(r.ci_low, r.ci_high) else ""
            colour = "white" if abs(r.delta) > 0.6 * limit else "black"
            ax.text(j, i, f"{signed(r.delta, 2)}{significance_mark(r.p_adjusted)}{interval}", ha="center", va="center", fontsize=7, color=colour)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=DIVERGING, vmin=-limit, vmax=limit, aspect="auto")
        labels = {r.condition: condition_label(r) for r in rows}
        ax.set_xticks(range(len(conditions)))
        ax.set_xticklabels([text_safe(labels[c]) for c in conditions], rotation=45 if len(conditions) > 4 else 0, ha="right" if len(conditions) > 4 else "center", fontsize=8)
        ax.set_yticks(range(len(tasks)))
        ax.set_yticklabels([text_safe(f"{_task_name(t, suite)} (n = {examples[t]})") for t in tasks], fontsize=8)
        if ALL_TASKS in tasks:  # a rule above the across-tasks row, as in the tables
            ax.axhline(tasks.index(ALL_TASKS) - 0.5, color="black", linewidth=1.2)
        if len(models) > 1:
            ax.set_title(text_safe(model), fontsize=9)
        figure.colorbar(image, ax=ax, label=text_safe(f"Δ vs {comparison.control}"))
    notes = [f"cell: Δ vs {comparison.control} with its mark and {100 * comparison.level:g}% interval", _marks_note(), _gold_note(comparison)]
    figure.text(0.0, 0.0, text_safe("; ".join(filter(None, notes))), fontsize=7, ha="left", va="top")
    if title:
        figure.suptitle(text_safe(title), fontsize=9)
    return figure


def _max_conditions(comparison: Comparison) -> int:
    return max([len({r.condition for r in comparison.rows if r.model == m}) for m in {r.model for r in comparison.rows}] + [1])


def _max_tasks(comparison: Comparison) -> int:
    return max([len({r.task for r in comparison.rows if r.model == m}) for m in {r.model for r in comparison.rows}] + [1])


def figure_files(
    comparison: Comparison, title: str = "", provenance: str = "", created: datetime | None = None,
    rounds: Sequence[RoundPoint] = (), costs: Sequence[ConditionCost] = (),
) -> dict[str, bytes]:
    """forest.pdf/.png and heatmap.pdf/.png by name, and for a run whose conditions loop
    rounds.pdf/.png and cost.pdf/.png; the run's provenance goes in the PDFs' metadata, never on
    the figure."""
    files: dict[str, bytes] = {}
    for name, figure in comparison_figures(comparison, rounds, costs, title).items():
        files.update(_rendered(figure, name, provenance, created))
    return files


def write_figures(
    comparison: Comparison, directory: Path, title: str = "", provenance: str = "", created: datetime | None = None,
    rounds: Sequence[RoundPoint] = (), costs: Sequence[ConditionCost] = (),
) -> list[Path]:
    """The figures of `figure_files`, written in `directory`."""
    written = []
    for name, content in figure_files(comparison, title, provenance, created, rounds, costs).items():
        write_atomic(Path(directory) / name, content)
        written.append(Path(directory) / name)
    return written


ROUND_STYLES = (("accuracy", "-", "held answer"), ("pass_at", ":", "pass@t (a correct answer in rounds 0..t)"))


def _gold_name(condition: str, consumes_gold: bool) -> str:
    return f"{condition} {GOLD_MARK}" if consumes_gold else condition


def rounds_figure(points: Sequence[RoundPoint], title: str = "") -> Figure:
    """Per model, each looping condition's score by round (what `workbench compare` prints as
    `per round`): the accuracy of the answer held after round t (solid) and pass@t (dotted),
    then the trial's final answer as its strategy settled it (the `final` tick)."""
    models = list(dict.fromkeys(p.model for p in points)) or [""]
    last = max([p.round for p in points if p.round is not None] + [0])
    figure = Figure(figsize=(4.2 * len(models) + 1.8, 3.2), layout="constrained")
    colours = _colours([p.condition for p in points])
    for index, model in enumerate(models):
        ax = figure.add_subplot(1, len(models), index + 1)
        mine = [p for p in points if p.model == model]
        for condition in dict.fromkeys(p.condition for p in mine):
            curve = [p for p in mine if p.condition == condition]
            x = [last + 1 if p.round is None else p.round for p in curve]
            for field_name, style, _ in ROUND_STYLES:
                label = text_safe(_gold_name(condition, any(p.consumes_gold for p in curve))) if style == "-" else None
                ax.plot(x, [getattr(p, field_name) for p in curve], linestyle=style, marker="o", markersize=3, color=colours[condition], label=label)
        ax.set_xticks(range(last + 2))
        ax.set_xticklabels([*map(str, range(last + 1)), "final"])
        ax.set_xlabel("round t")
        ax.set_ylabel("mean score")
        ax.set_ylim(-0.02, 1.02)
        if len(models) > 1:
            ax.set_title(text_safe(model), fontsize=9)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", linestyle=style, label=text) for _, style, text in ROUND_STYLES]
    gold = any(p.consumes_gold for p in points)
    figure.legend(handles=handles, loc="outside right upper", fontsize=7, frameon=False,
                  title=text_safe(f"{GOLD_MARK}: read gold labels (oracle verifier)") if gold else None, title_fontsize=7)
    if title:
        figure.suptitle(text_safe(title), fontsize=9)
    return figure


def cost_figure(costs: Sequence[ConditionCost], title: str = "") -> Figure:
    """Gain against cost (`workbench compare`'s `gain against cost`): each condition's final
    accuracy against the mean tokens a trial spent, its mean rounds beside it."""
    models = list(dict.fromkeys(c.model for c in costs)) or [""]
    colours = _colours([c.condition for c in costs if c.mean_rounds is not None] + [c.condition for c in costs])  # the loops as the rounds figure colours them
    figure = Figure(figsize=(4.2 * len(models) + 0.4, 3.2), layout="constrained")
    for index, model in enumerate(models):
        ax = figure.add_subplot(1, len(models), index + 1)
        for cost in (c for c in costs if c.model == model):
            ax.plot([cost.mean_tokens], [cost.accuracy], marker="D" if cost.mean_rounds is not None else "o", color=colours[cost.condition], linestyle="none")
            rounds = "" if cost.mean_rounds is None else f" ({cost.mean_rounds:.2f} rounds)"
            ax.annotate(text_safe(_gold_name(cost.condition, cost.consumes_gold) + rounds), (cost.mean_tokens, cost.accuracy),
                        textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xlabel("mean tokens per trial (prompt + completion)")
        ax.set_ylabel("accuracy of the final answer")
        ax.set_ylim(-0.02, 1.08)
        ax.margins(x=0.25)
        if len(models) > 1:
            ax.set_title(text_safe(model), fontsize=9)
    notes = ["diamond: a loop (mean feedback rounds in brackets), circle: a single answer"]
    if any(c.consumes_gold for c in costs):
        notes.append(f"{GOLD_MARK} read gold labels (oracle verifier): an upper bound")
    figure.text(0.0, 0.0, text_safe("; ".join(notes)), fontsize=7, ha="left", va="top")
    if title:
        figure.suptitle(text_safe(title), fontsize=9)
    return figure


def loop_figures(rounds: Sequence[RoundPoint], costs: Sequence[ConditionCost], title: str = "") -> dict[str, Figure]:
    """The figures of a run whose conditions loop (none without rounds): per-round curves, gain against cost."""
    return {"rounds": rounds_figure(rounds, title), "cost": cost_figure(costs, title)} if rounds else {}


def comparison_figures(comparison: Comparison, rounds: Sequence[RoundPoint] = (), costs: Sequence[ConditionCost] = (), title: str = "") -> dict[str, Figure]:
    """Every figure of a comparison by file name (without its suffix): what `export --figures`
    writes and the Results page shows."""
    return {"forest": forest_figure(comparison, title), "heatmap": heatmap_figure(comparison, title), **loop_figures(rounds, costs, title)}


def png_bytes(figure: Figure, dpi: int = 110) -> bytes:
    """A figure as PNG, for a screen."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(RC):
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
