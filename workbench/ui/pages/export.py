"""The Export page: downloads of what `workbench export` writes, byte for byte (api.export_files).

The table's formats and references.bib are made as the page draws (a comparison, cheap); the
per-trial data and the figures only when their button is clicked (they can be large or slow)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench import api
from workbench.ui.common import RUN_KEY, log_path, page_errors

# (label, format, file name of the download): the comparison table's downloads
TABLE_DOWNLOADS = (("Download LaTeX", "latex", "table.tex"), ("Download Markdown", "markdown", "table.md"), ("Download CSV", "csv", "table.csv"))
TRIAL_FORMATS = {"CSV": "trials.csv", "Parquet": "trials.parquet"}  # the choice shown -> api format
MIME = {".tex": "application/x-tex", ".md": "text/markdown", ".csv": "text/csv", ".parquet": "application/vnd.apache.parquet", ".bib": "application/x-bibtex", ".zip": "application/zip"}
DEFAULT = "the study's"


def mime(name: str) -> str:
    return MIME.get(name[name.rfind("."):], "application/octet-stream")


def compare_options(choices: api.ExportChoices) -> dict[str, Any]:
    """The comparison's options, as `workbench export` takes them (--adjust, --family, ...)."""
    with st.expander("Comparison options"):
        columns = st.columns(3)
        adjust = columns[0].selectbox("Correction", choices.adjust, help="--adjust: the multiple-comparison correction.")
        family = columns[1].selectbox("Family", choices.family, help="--family: the comparisons corrected together.")
        test = columns[2].selectbox("Test", choices.test, help="--test")
        control = columns[0].selectbox("Control", [DEFAULT, *choices.conditions], help="--control: the condition compared with.")
        errors = columns[1].selectbox("Errored trials", [DEFAULT, *choices.policies], help="--errors")
        no_answer = columns[2].selectbox("No answer", [DEFAULT, *choices.policies], help="--no-answer")
        level = columns[0].number_input("Level", min_value=0.5, max_value=0.999, value=0.95, step=0.01, help="--level of the intervals.")
        compared = st.multiselect("Conditions", choices.conditions, help="--conditions compared with the control (empty: all).")
    study = lambda value: None if value == DEFAULT else value  # noqa: E731
    return {
        "adjust": adjust, "family": family, "test": test, "control": study(control), "errors": study(errors), "no_answer": study(no_answer),
        "level": float(level), "conditions": tuple(compared) or None,
    }


st.title("Export")
with page_errors():
    db = log_path()
    runs = [row["run_id"] for row in api.list_runs(db).runs]
    if not runs:
        st.info("This log holds no run yet: run a study, then export it here.")
        st.stop()
    if st.session_state.get(RUN_KEY) not in runs:  # a run of another log, chosen before
        st.session_state.pop(RUN_KEY, None)
    run_id = st.selectbox("Run", runs[::-1], key=RUN_KEY, help="The latest run first.")
    choices = api.export_choices(db, run_id)
    layout = st.radio("Layout", list(choices.layouts), horizontal=True, help=" / ".join(f"{k}: {v}" for k, v in choices.layouts.items()))
    relative = st.checkbox("Relative gains", help="--relative: the paper layout adds each condition's relative gain over the control.")
    standalone = st.checkbox("Standalone LaTeX", help="--standalone: a complete document instead of a table to \\input.")
    options = compare_options(choices)
    exported = api.export_files(db, run_id, layout=layout, tables=[fmt for _, fmt, _ in TABLE_DOWNLOADS], relative=relative, standalone=standalone, **options)

    st.subheader("Comparison table")
    columns = st.columns(len(TABLE_DOWNLOADS) + 1)
    for column, (label, _, name) in zip(columns, TABLE_DOWNLOADS):
        column.download_button(label, exported.files[name], file_name=name, mime=mime(name), on_click="ignore")
    columns[-1].download_button("Download references.bib", exported.files["references.bib"], file_name="references.bib", mime=mime(".bib"), on_click="ignore")

    st.subheader("Per-trial data and figures")
    shown = st.radio("Trials format", list(TRIAL_FORMATS), horizontal=True, help="--trials FILE.csv or FILE.parquet: one row per trial.")
    trials_format = TRIAL_FORMATS[shown]
    trials_name = f"trials{trials_format.removeprefix('trials')}"

    def trials_bytes() -> bytes:  # made on click
        return api.export_files(db, run_id, tables=(), trials=trials_format, bib=False).files[trials_name]

    def figures_zip() -> bytes:  # made on click: forest plot and heatmap, PDF and PNG, with references.bib
        return api.export_files(db, run_id, layout=layout, tables=(), figures=True, **options).figures_zip()

    columns = st.columns(2)
    columns[0].download_button("Download trials", trials_bytes, file_name=trials_name, mime=mime(trials_name), on_click="ignore")
    columns[1].download_button("Download figures", figures_zip, file_name="figures.zip", mime=mime(".zip"), on_click="ignore")
    st.caption("Each file holds the bytes `workbench export` writes for this log, run and options (the zip: what `--figures DIR` writes in DIR).")
