"""The Results page: a run's comparison as `workbench compare` prints it (the same numbers, from
api.compare), its figures, and one example's trials across conditions side by side.

Everything read from the log is cached on (log, run, options, the log's stamp): a rerun that
changes nothing reads nothing, and a run still being written is read again as it fills. The
trials are read one example at a time, never the whole run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd
import streamlit as st

from workbench import api
from workbench.ui.common import RUN_KEY, log_path, md_text, one_line, page_errors

OWN = "(the run's own)"  # a filter left at the study's (or the run's) choice
EVERY = "(all)"
MAX_EXAMPLES = 2000  # options of the Example box: a browser list of 25,000 is no use; filter by task

# What the comparison table shows of the CSV export's columns (to_frame), and their headers.
ROW_COLUMNS = {
    "model": "Model", "task": "Task", "condition": "Condition", "n": "n", "errors": "Errors", "no_answer": "No answer", "accuracy": "Accuracy",
    "delta": "Δ", "ci_low": "Δ low", "ci_high": "Δ high", "relative": "Rel. gain", "relative_low": "Rel. low", "relative_high": "Rel. high",
    "odds_ratio": "OR (discordant)", "cohens_h": "h", "p_value": "p", "p_adjusted": "p adj.", "test": "Test", "examples": "Examples",
    "consumes_gold": "Gold † (oracle)", "format_flag": "Format flag ‡",
}
POOLED_COLUMNS = {
    "model": "Model", "condition": "Condition", "tasks": "Tasks", "pooled_estimate": "Pooled Δ", "pooled_ci_low": "low", "pooled_ci_high": "high",
    "pooled_tau2": "τ²", "pooled_i2": "I²", "pooled_p_value": "p", "p_adjusted": "p adj.", "relative": "Rel. gain", "gee_estimate": "GEE effect",
    "gee_p_value": "GEE p", "consumes_gold": "Gold † (oracle)",
}
OMNIBUS_COLUMNS = {"model": "Model", "task": "Task", "test": "Test", "conditions": "Conditions", "examples": "Examples", "statistic": "Statistic", "df": "df", "p_value": "p"}
FORMAT_COLUMNS = {
    "model": "Model", "task": "Task", "condition": "Condition", "responses": "Responses", "unparseable": "No answer (strict)", "unparseable_p": "p (no answer)",
    "gold_in_zero": "Gold in 0s", "gold_in_zero_p": "p (gold in 0s)", "strict_delta": "Δ strict", "strict_p": "p strict",
    "flexible_delta": "Δ flexible", "flexible_p": "p flexible", "flagged": "Format flag ‡", "reasons": "Why",
}
COUNTS = ("n", "errors", "no_answer", "examples", "tasks", "conditions", "responses")  # whole numbers in a long frame of many tables
FIGURES = {"forest": "Forest plot: each effect with its interval", "heatmap": "Task × condition heatmap of Δ",
           "rounds": "Score by round (HEART and its baselines)", "cost": "Gain against cost (tokens per trial)"}


# -- reads of the log, cached on its stamp ---------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def runs_of(db: str, stamp: tuple[int, ...]) -> list[dict[str, Any]]:
    return list(api.list_runs(db).runs)


@st.cache_data(show_spinner="Comparing…", max_entries=16)
def comparison_of(db: str, run_id: str, options: tuple[tuple[str, Any], ...], stamp: tuple[int, ...]) -> tuple[api.ComparisonResult, list[str]]:
    warnings: list[str] = []
    return api.compare(db, run_id, log=warnings.append, **dict(options)), warnings


@st.cache_data(show_spinner="Drawing…", max_entries=16)
def figures_of(db: str, run_id: str, options: tuple[tuple[str, Any], ...], stamp: tuple[int, ...]) -> dict[str, bytes]:
    return api.figures_png(comparison_of(db, run_id, options, stamp)[0])


@st.cache_data(show_spinner=False, max_entries=8)
def examples_of(db: str, run_id: str, extractor: str | None, stamp: tuple[int, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(e.task, e.item_id, e.changed) for e in api.list_examples(db, run_id, extractor=extractor).examples]


@st.cache_data(show_spinner=False, max_entries=8)
def searches_of(db: str, stamp: tuple[int, ...]) -> tuple[str, ...]:
    return api.searches(db)


@st.cache_data(show_spinner="Reading the search…", max_entries=8)
def search_of(db: str, search: str, stamp: tuple[int, ...]) -> Any:
    return api.search_report(db, search)


@st.cache_data(show_spinner=False, max_entries=32)
def trials_of(db: str, run_id: str, task: str, item: str, extractor: str | None, changed: bool, stamp: tuple[int, ...]) -> dict[str, Any]:
    return api.list_trials(db, run_id, task=task, item=item, extractor=extractor, changed=changed).to_json()


# -- the page's parts -------------------------------------------------------------------------------
def choose_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The "Run" box, newest first; the session's run (the Run page sets it) when it is in this log."""
    by_id = {r["run_id"]: r for r in reversed(runs)}
    if st.session_state.get(RUN_KEY) not in by_id:
        st.session_state[RUN_KEY] = next(iter(by_id))
    label = lambda run_id: f"{by_id[run_id]['name']} · {run_id} · {by_id[run_id]['trials_done']}/{by_id[run_id]['trials_planned']} trials"  # noqa: E731
    return by_id[st.selectbox("Run", list(by_id), key=RUN_KEY, format_func=label)]


def treated_conditions(compared: api.ComparisonResult) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.condition for r in compared.table.rows if not r.is_control))


def choose_options(base: api.ComparisonResult) -> dict[str, Any]:
    """The filters that make api.compare's options (None: the study's own choice)."""
    choices = api.compare_choices()
    treated = list(treated_conditions(base))
    with st.expander("Filters", expanded=True):
        left, middle, right = st.columns(3)
        conditions = left.multiselect("Conditions", treated, default=treated, help="Compared with the control (the family of comparisons).")
        extractor = left.selectbox("Extractor", [OWN, *choices["extractor"]], help="Whose scores to use (others need `workbench rescore`).")
        errors = middle.selectbox("Errors", [OWN, *choices["errors"]], help="Errored trials count as wrong or are left out.")
        no_answer = middle.selectbox("No answer", [OWN, *choices["no_answer"]], help="Trials with no answer count as wrong or are left out.")
        test = middle.selectbox("Test", choices["test"])
        adjust = right.selectbox("Correction", choices["adjust"], help="Multiple-comparison correction of the p-values.")
        family = right.selectbox("Correction family", choices["family"], help="Which comparisons are corrected together.")
        level = right.select_slider("Level", options=[0.8, 0.9, 0.95, 0.99], value=0.95, help="Confidence level of the intervals.")
    own = lambda value: None if value == OWN else value  # noqa: E731
    return {
        "adjust": adjust, "family": family, "test": test, "conditions": tuple(conditions), "errors": own(errors), "level": level,
        "no_answer": own(no_answer), "extractor": own(extractor),
    }


def cache_key(options: dict[str, Any], base: api.ComparisonResult) -> tuple[tuple[str, Any], ...]:
    """The options that differ from compare's defaults (all conditions: None), so the page's first
    draw reuses the comparison it read the filters' choices from."""
    defaults = {**asdict(api.CompareOptions()), "conditions": treated_conditions(base)}
    return tuple(sorted((name, value) for name, value in options.items() if value != defaults[name]))


def shown(frame: pd.DataFrame, table: tuple[str, ...], columns: dict[str, str], model: str, task: str | None) -> pd.DataFrame:
    """The rows of one table of the comparison (to_frame's `table` column), for the model and task chosen."""
    rows = frame[frame["table"].isin(table)]
    if model != EVERY:
        rows = rows[rows["model"] == model]
    if task not in (None, EVERY):
        rows = rows[rows["task"] == task]
    present = [c for c in columns if c in rows.columns and rows[c].notna().any()]
    counts = {c: "Int64" for c in COUNTS if c in present}
    return rows[present].astype(counts).rename(columns=columns).reset_index(drop=True)


def show_table(title: str, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    st.subheader(title)
    show_table_of(rows)


def show_comparison(compared: api.ComparisonResult, warnings: list[str]) -> None:
    table = compared.table
    for warning in warnings:  # the partial-run warning `workbench compare` prints
        st.warning("This run is still being written, or was stopped: it is compared as it stands.", icon=":material/hourglass_top:")
        st.text(warning)
    if any(f.flagged for f in table.format):
        st.warning("The format diagnostic flags a condition (‡): its effect may be one of answer format rather than skill.", icon=":material/flag:")
    frame = compared.to_frame()
    models = list(dict.fromkeys(r.model for r in table.rows))
    tasks = list(dict.fromkeys(r.task for r in table.rows))
    left, right = st.columns(2)
    model = left.selectbox("Model", [EVERY, *models]) if len(models) > 1 else EVERY
    task = right.selectbox("Task", [EVERY, *tasks]) if len(tasks) > 1 else EVERY
    st.text(f"Control: {table.control} · correction: {table.adjust} over family {table.family} · {100 * table.level:g}% intervals"
            + (f" · extractor: {table.extractor}" if table.extractor else ""))
    show_table("Comparison with the control (per task, and all tasks together)", shown(frame, ("per_task", "across_tasks"), ROW_COLUMNS, model, task))
    if task in (EVERY, "all"):
        show_table("Across tasks (pooled)", shown(frame, ("pooled",), POOLED_COLUMNS, model, None))
    show_table("All conditions at once", shown(frame, ("omnibus",), OMNIBUS_COLUMNS, model, task))
    show_table("Format diagnostic", shown(frame, ("format",), FORMAT_COLUMNS, model, task))
    with st.expander("Notes"):
        st.text("\n".join(api.comparison_notes(compared)))
    if compared.costs:
        show_table("Gain against cost", pd.DataFrame([c.to_dict() for c in compared.costs]))
    if compared.rounds:
        show_table("Per round", pd.DataFrame([p.to_dict() for p in compared.rounds]))
    for name, rows in compared.reports.items():
        show_table(f"Report: {name}", pd.DataFrame(rows))


SEARCH_COLUMNS = {"trial": "Trial", "state": "State", "value": "Dev score", "best_so_far": "Best so far", "tokens": "Dev tokens",
                  "pareto": "On the Pareto front", "condition": "Candidate", "seconds": "Seconds"}


def show_search(db: str, stamp: tuple[int, ...]) -> None:
    """The log's search (the latest, or the one chosen): its confirmation, the dev estimate beside
    the test estimate; every trial with the best so far; the parameters' importances."""
    names = searches_of(db, stamp)
    if not names:
        return
    st.header("Search")
    name = st.selectbox("Search", names[::-1]) if len(names) > 1 else names[0]
    try:
        report = search_of(db, name, stamp)
    except api.UserError as exc:  # its storage is elsewhere or gone: the runs still show below
        st.warning(md_text(one_line(exc)), icon=":material/warning:")
        return
    st.text(f"Search {name}: {report.finished} trials finished · storage {report.storage}")
    show_confirmation(report.confirmation)
    st.subheader("History")
    history = report.history
    params = [c for c in history.columns if c not in (*SEARCH_COLUMNS, "score", "started", "ended")]  # `score` is `value` again
    show_table_of(history[[c for c in (*SEARCH_COLUMNS, *params, "started", "ended") if c in history]].rename(columns=SEARCH_COLUMNS))
    if "best_so_far" in history and history["value"].notna().any():
        st.line_chart(history.set_index("trial")[["value", "best_so_far"]].rename(columns=SEARCH_COLUMNS), x_label="Trial", y_label="Mean dev score")
    st.subheader("Parameter importances")
    if report.importances:
        importances = pd.DataFrame({"Parameter": list(report.importances), "Importance": list(report.importances.values())})
        show_table_of(importances)
        st.bar_chart(importances, x="Parameter", y="Importance", horizontal=True)
    else:
        st.info(md_text(f"No importances: {report.importance_note}."))


def show_confirmation(confirmation: Any) -> None:
    st.subheader("Confirmation")
    if confirmation is None:
        st.info("Not confirmed yet: the search's winner runs on the test split when its trials are done.")
        return
    st.text(f"Winner: {confirmation.winner} · control: {confirmation.control} · {confirmation.candidates} candidates searched "
            f"in {confirmation.n_trials} trials · {100 * confirmation.level:g}% interval, {confirmation.test or 'no'} test")
    if confirmation.note:
        st.info(md_text(confirmation.note))
    show_table_of(pd.DataFrame([
        {"Split": "dev (chosen on)", "Δ": confirmation.dev_delta, "Δ low": None, "Δ high": None, "p": None, "Examples": None},
        {"Split": "test (confirmation)", "Δ": confirmation.delta, "Δ low": confirmation.ci_low, "Δ high": confirmation.ci_high,
         "p": confirmation.p_value, "Examples": confirmation.n_test},
        *([{"Split": f"test: {confirmation.baseline} (optimised instruction) − control", "Δ": confirmation.baseline_delta,
            "Δ low": confirmation.baseline_ci_low, "Δ high": confirmation.baseline_ci_high, "p": confirmation.baseline_p_value,
            "Examples": confirmation.n_test}] if confirmation.baseline else []),
    ]).astype({"Δ": float, "Δ low": float, "Δ high": float, "p": float, "Examples": "Int64"}))
    st.caption("Δ: the winner minus the control. On the dev split the winner was chosen for its score, so its Δ there is biased upwards "
               "(the winner's curse); the test split's examples are disjoint from them.")


def show_table_of(rows: pd.DataFrame) -> None:
    numbers = {name: st.column_config.NumberColumn(format="%.4g") for name in rows.columns if rows[name].dtype.kind == "f"}
    st.dataframe(rows, hide_index=True, column_config=numbers)


def show_figures(pngs: dict[str, bytes]) -> None:
    st.header("Figures")
    for name, png in pngs.items():
        st.image(png, caption=FIGURES.get(name, name))


def show_paired_view(db: str, run_id: str, options: dict[str, Any], stamp: tuple[int, ...], control: str) -> None:
    """One example's trials, the control's beside each condition's; with "Only changed outcomes",
    only the examples and repeats whose outcome differs from the control's (the discordant pairs)."""
    st.header("Paired view")
    extractor = options["extractor"]
    wanted = set(options["conditions"])
    only_changed = st.checkbox("Only changed outcomes", help="The examples whose outcome differs from the control's: the discordant pairs that drive the test.")
    examples = [(task, item) for task, item, changed in examples_of(db, run_id, extractor, stamp) if not only_changed or wanted & set(changed)]
    if not examples:
        st.info("No example to show" + (": no outcome changed in the chosen conditions." if only_changed else "."))
        return
    if len(examples) > MAX_EXAMPLES:
        st.text(f"The first {MAX_EXAMPLES} of {len(examples)} examples.")
    task, item = st.selectbox("Example", examples[:MAX_EXAMPLES], format_func=lambda example: f"{example[0]} · {example[1]}")
    found = trials_of(db, run_id, task, item, extractor, only_changed, stamp)
    by_repeat: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    pairs = found["pairs"] if only_changed else [{"trial": t} for t in found["trials"]]
    for pair in pairs:
        for trial in pair.values():
            if trial["condition"] == control or trial["condition"] in wanted:
                by_repeat.setdefault((trial["model"], trial["repeat"]), {})[trial["condition"]] = trial
    if not by_repeat:
        st.info("No trial of the chosen conditions on this example.")
        return
    keys = sorted(by_repeat)
    model, repeat = st.selectbox("Repeat", keys, format_func=lambda key: f"{key[0]} · repeat {key[1]}") if len(keys) > 1 else keys[0]
    trials = by_repeat[(model, repeat)]
    order = [c for c in [control, *options["conditions"]] if c in trials]
    for column, condition in zip(st.columns(len(order)), order):
        show_trial(column, trials[condition], control)


def show_trial(column: Any, trial: dict[str, Any], control: str) -> None:
    """A trial's fields as text (never markdown: a response is the model's, a prompt the stimulus author's)."""
    column.text(trial["condition"] + (" (control)" if trial["condition"] == control else ""))
    column.text("Prompt")
    column.code(trial["prompt"], language=None, wrap_lines=True)
    column.text("Response")
    column.code(trial["response"] or "", language=None, wrap_lines=True)
    score = "" if trial["score"] is None else f"{trial['score']:g}"
    column.text(f"Answer: {trial['answer'] if trial['answer'] is not None else '(none)'}\nGold: {' | '.join(trial['gold'])}\nScore: {score} ({trial['status']})")


# -- the page --------------------------------------------------------------------------------------
st.title("Results")
with page_errors():
    db = str(log_path())
    stamp = api.log_stamp(db)
    if not any(stamp):
        st.info("No log here yet: run a study on the Run page, or choose another log file in the sidebar.")
        st.stop()
    runs = runs_of(db, stamp)
    if not runs:
        st.info("This log holds no runs yet: start one on the Run page.")
        st.stop()
    show_search(db, stamp)
    run = choose_run(runs)
    if not run["trials_done"]:
        st.info("This run has no trials yet: its results appear here as they are logged.")
        st.stop()
    base, _ = comparison_of(db, run["run_id"], (), stamp)
    options = choose_options(base)
    if not options["conditions"]:
        st.info("Choose at least one condition to compare with the control.")
        st.stop()
    key = cache_key(options, base)
    compared, warnings = comparison_of(db, run["run_id"], key, stamp)
    show_comparison(compared, warnings)
    show_figures(figures_of(db, run["run_id"], key, stamp))
    show_paired_view(db, run["run_id"], options, stamp, compared.table.control)
