"""The Rate page: blind rating of a run's outputs (the study's `rating:` block), one unit at a
time in the rater's seeded order; agreement and the per-condition results behind a checkbox, so
a rater sees no condition while rating."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import api
from workbench.ui.common import RUN_KEY, log_path, page_errors

RATER_KEY = "rater"


def _choose_run(db: object) -> str | None:
    """The run to rate (default: the latest); None when the log holds none."""
    try:
        runs = [r["run_id"] for r in api.list_runs(db).runs]  # type: ignore[arg-type]
    except api.LogFault:
        raise
    except api.UserError:  # no log there yet
        return None
    if not runs:
        return None
    if st.session_state.get(RUN_KEY) not in runs:
        st.session_state[RUN_KEY] = runs[-1]
    return st.selectbox("Run", runs, key=RUN_KEY)


def _label(scale: api.RatingScaleInfo, side: str, scales: int) -> str:
    """`Rating` for a lone output on one scale; else which side and scale it is."""
    parts = [p for p in (f"output {side}" if side else "", scale.name if scales > 1 else "") if p]
    return "Rating" + (f" ({', '.join(parts)})" if parts else "")


def _point(scale: api.RatingScaleInfo) -> object:
    return lambda p: f"{p}: {scale.labels[p]}" if scale.labels.get(p) else str(p)


def _rate(db: object, queue: api.RatingQueue) -> None:
    unit = queue.next
    st.text(queue.progress_text())
    st.progress(queue.done / queue.total if queue.total else 1.0)
    if unit is None:
        st.success("Everything in this run is rated by you." if queue.total else "This run has no answered outputs to rate.")
        return
    st.subheader("Input")
    st.text(unit.task_input)
    chosen: dict[str, dict[str, object]] = {}
    for column, output in zip(st.columns(len(unit.outputs)), unit.outputs):
        with column:
            st.subheader(f"Output {output.side}" if output.side else "Output")
            st.text(output.response)
            chosen[output.side] = {
                scale.name: st.radio(
                    _label(scale, output.side, len(queue.scales)), scale.points, index=None, horizontal=True,
                    format_func=_point(scale), key=f"rating/{unit.unit_id}/{output.side}/{scale.name}",
                )
                for scale in queue.scales
            }
    if st.button("Save rating", type="primary"):
        if any(v is None for values in chosen.values() for v in values.values()):
            st.error("Choose a point on every scale first.")
            return
        api.save_rating(db, queue.run_id, queue.rater, unit.unit_id, chosen)  # type: ignore[arg-type]
        st.rerun()


def _results(db: object, run_id: str) -> None:
    analysis = api.rating_analysis(db, run_id)  # type: ignore[arg-type]
    if not analysis.ratings:
        st.text("No ratings yet.")
        return
    st.text(f"{analysis.ratings} ratings by {len(analysis.raters)} rater(s)")
    st.dataframe(pd.DataFrame([
        {"scale": a.scale, "Krippendorff's alpha": a.alpha, "level": a.level, "raters": a.raters, "outputs rated twice or more": a.units, "note": a.note or ""}
        for a in analysis.agreement
    ]), hide_index=True)
    for scale, table in analysis.tables.items():
        st.text(f"Scale {scale}: mean rating per condition against the control {table.control}")
        st.dataframe(pd.DataFrame([
            {
                "model": r.model, "task": r.task, "condition": r.condition, "examples": r.examples, "mean rating": r.accuracy,
                "control": r.control_accuracy, "difference": r.delta, "ci low": r.ci_low, "ci high": r.ci_high,
                "test": r.test, "p": r.p_value, f"p ({r.adjust})": r.p_adjusted,
            }
            for r in table.rows
        ]), hide_index=True)


def _page(db: object, run_id: str) -> None:
    rater = st.text_input("Rater", key=RATER_KEY, help="Your name or code: each rater has an order of their own, the same every time.")
    if rater.strip():
        _rate(db, api.rating_queue(db, run_id, rater))  # type: ignore[arg-type]
    else:
        scales = api.rating_scales(db, run_id)  # type: ignore[arg-type]  # a run without a rating block says so now
        st.text("Scales: " + ", ".join(f"{s.name} ({s.points[0]} to {s.points[-1]})" for s in scales))
        st.info("Enter your name as rater to start. Outputs are shown without their condition, in an order drawn for you.")
    if st.checkbox("Show agreement and results", help="They name the conditions: rate first."):
        _results(db, run_id)


st.title("Rate")
with page_errors():
    db = log_path()
    run_id = _choose_run(db)
    if run_id is None:
        st.info("No run in this log yet: run a study with a rating block (Run page), or choose another log file in the sidebar.")
        st.stop()
    try:
        _page(db, run_id)
    except api.NoRatingBlock:
        st.info("This run's study has no rating block, so there is nothing to rate. Add one to the study file, for example:")
        st.code(api.RATING_EXAMPLE, language="yaml")
        st.text("then run the study again (a new run) and rate it here.")
