"""The search table of an export: for each search the log holds a confirmation of, the control
and the winner, the winner's Δ on the dev split it was chosen on beside its Δ on the disjoint
test split (with the interval and p), and the number of candidates searched; the winner's curse
in one line. It follows whatever table the layout writes, in each format the way the comparison's
tables are written (the same cells, escaping and records); a log without a search exports as
before, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..reports.searches import BASELINE_FIELDS, Confirmation
from ..stats.table import Comparison
from . import (
    TEST_LABELS, _latex_table, _markdown_table, comparison_frame, comparison_records, fmt_interval, fmt_number, fmt_p,
    frame_to_parquet, latex_escape, markdown_escape, records_csv,
)

CAPTION = "Searches: the winner against the control, on the dev split it was chosen on and on the test split"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("search", "Search"), ("control", "Control"), ("winner", "Winner"), ("candidates", "Candidates"), ("trials", "Trials"),
    ("dev_delta", "Dev Δ"), ("delta", "Test Δ [CI]"), ("p", "p"), ("n_test", "Test examples"),
)
# With an optimised-instruction baseline (`search.baseline`), on the same test split.
BASELINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("baseline", "Baseline"), ("baseline_delta", "Baseline Δ [CI]"), ("baseline_p", "p"), ("winner_vs_baseline", "Winner − baseline"),
    ("winner_vs_baseline_p", "p"),
)
TABLE = "search"  # the `table` column of its CSV and Parquet records


def columns_of(searches: Sequence[Confirmation]) -> tuple[tuple[str, str], ...]:
    """The table's columns: the baseline's only when a search had one (else the table is as before)."""
    return COLUMNS + (BASELINE_COLUMNS if any(c.baseline for c in searches) else ())


def search_cells(c: Confirmation) -> dict[str, str]:
    return {
        "search": c.search, "control": c.control, "winner": c.winner, "candidates": str(c.candidates), "trials": str(c.n_trials),
        "dev_delta": fmt_number(c.dev_delta, signed=True), "delta": fmt_interval(c.delta, c.ci_low, c.ci_high), "p": fmt_p(c.p_value),
        "n_test": str(c.n_test), "mark": "",
        "baseline": c.baseline or "", "baseline_delta": fmt_interval(c.baseline_delta, c.baseline_ci_low, c.baseline_ci_high) if c.baseline else "",
        "baseline_p": fmt_p(c.baseline_p_value) if c.baseline else "",
        "winner_vs_baseline": fmt_number(c.winner_vs_baseline_delta, signed=True) if c.winner_vs_baseline_delta is not None else "",
        "winner_vs_baseline_p": fmt_p(c.winner_vs_baseline_p_value) if c.winner_vs_baseline_delta is not None else "",
    }


def search_notes(searches: Sequence[Confirmation]) -> list[str]:
    levels = " / ".join(sorted({f"{100 * c.level:g}%" for c in searches}))
    tests = ", ".join(TEST_LABELS.get(t, t) for t in sorted({c.test for c in searches if c.test})) or "no test"
    return [
        f"Searches: Δ is the winner minus the control. Dev Δ: on the dev examples the search chose the winner on, biased upwards by "
        f"the choice (the winner's curse); Test Δ: on the disjoint test examples, with its {levels} interval and p ({tests}). "
        "Candidates: distinct candidate conditions the search scored; Trials: the trials it finished.",
        *(["Baseline: the instruction a DSPy optimiser found on the same dev split, run on the same test examples; Baseline Δ: it minus the "
           "control; Winner − baseline: the winner minus it (empty when the control won)."] if any(c.baseline for c in searches) else []),
        *[f"{c.search}: {c.note}." for c in searches if c.note],
    ]


LEFT_OUT = ("storage", "confirmed_at")  # a local path and a clock: no part of a paper's data, and the same log exports the same bytes


def search_records(searches: Sequence[Confirmation]) -> list[dict[str, object]]:
    left_out = {*LEFT_OUT, *(() if any(c.baseline for c in searches) else BASELINE_FIELDS)}
    return [{"table": TABLE, **{k: v for k, v in c.to_dict().items() if k not in left_out}} for c in searches]


def _markdown(made: str | bytes, comparison: Comparison, searches: Sequence[Confirmation]) -> str:
    rows = [search_cells(c) for c in searches]
    notes = "\n".join(f"- {markdown_escape(n)}" for n in search_notes(searches))
    return f"{made}\n**{markdown_escape(CAPTION)}**\n\n{_markdown_table(columns_of(searches), rows)}\n\n{notes}\n"


END_DOCUMENT = "\\end{document}\n"


def _latex(made: str | bytes, comparison: Comparison, searches: Sequence[Confirmation]) -> str:
    """The table after the layout's, inside its document when it is standalone."""
    body, standalone = (made[: -len(END_DOCUMENT)], True) if str(made).endswith(END_DOCUMENT) else (made, False)
    table = _latex_table(columns_of(searches), [search_cells(c) for c in searches], CAPTION, [])
    notes = "\\begin{flushleft}\\footnotesize\n" + "\\\\\n".join(latex_escape(n) for n in search_notes(searches)) + "\n\\end{flushleft}\n"
    return f"{body}{table}{notes}" + (END_DOCUMENT if standalone else "")


def _csv(made: str | bytes, comparison: Comparison, searches: Sequence[Confirmation]) -> str:
    return records_csv(comparison_records(comparison) + search_records(searches))


def _parquet(made: str | bytes, comparison: Comparison, searches: Sequence[Confirmation]) -> bytes:
    import pandas as pd

    return frame_to_parquet(pd.concat([comparison_frame(comparison), pd.DataFrame(search_records(searches))], ignore_index=True))


# format -> (the layout's output, the comparison, the searches) -> the output with the search table
WITH_SEARCHES: dict[str, Callable[[Any, Comparison, Sequence[Confirmation]], str | bytes]] = {
    "latex": _latex, "markdown": _markdown, "csv": _csv, "parquet": _parquet,
}


def with_searches(made: str | bytes, fmt: str, comparison: Comparison, searches: Sequence[Confirmation]) -> str | bytes:
    return WITH_SEARCHES[fmt](made, comparison, searches) if searches else made
