"""Reading a search back (workbench/reports/searches.py): its confirmation kept in the log and in
its Optuna storage, its history and parameter importances, the search table `workbench export`
adds (the dev estimate beside the test estimate), and the search opened in optuna-dashboard as it
is. One real search on the simulated model, logged to a DuckDB file, serves them all."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, sim_study, write_study
from workbench import api
from workbench.core.errors import UserError
from workbench.export import _latex_value, fmt_interval, fmt_number, fmt_p, latex_escape, markdown_escape
from workbench.reports.searches import USER_ATTR, Confirmation, _kept_storage, param_importances
from workbench.store import connect_reader

NAME = "searched"
STUDY = {
    "name": NAME,
    "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.5, "accuracy": {"EP02.prefix": 0.9}}}],
    "conditions": [{"name": "control"}],
    "tasks": [{"task": "math/word_problems", "n": 40}],
    "concurrency": 1,
    "search": {"space": {"stimulus": ["EP01", "EP02", "EP03", "none"], "placement": ["suffix", "prefix"]}, "trials": 6, "dev": 10, "test": 20},
}


def search_log(folder: Path) -> tuple[Path, api.SearchResult]:
    """A log of a search of STUDY (about 3 s), and what the search returned."""
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    db = folder / "log.duckdb"
    return db, api.search(path, db)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, api.SearchResult]:
    return search_log(tmp_path_factory.mktemp("search"))


def journal(db: Path) -> Path:
    return Path(f"{db}.search") / f"{NAME}.journal"


def stored_study(db: Path) -> optuna.Study:
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name=NAME, storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal(db)))))


def facts(result: api.SearchResult) -> dict[str, Any]:
    """What a reader must find: the confirmation's numbers, the winner and the budget."""
    return {**result.confirmation, "winner": result.winner["name"], "n_trials": result.n_trials, "best_trial": result.best_trial}


# -- the confirmation kept ------------------------------------------------------------------------
def test_the_confirmation_is_kept_in_the_log_and_in_the_storage(searched: tuple[Path, api.SearchResult]) -> None:
    db, result = searched
    con = connect_reader(db)
    try:
        events = con.execute("SELECT run_id, detail_json FROM run_events WHERE event = 'search_confirmed'").fetchall()
    finally:
        con.close()
    assert len(events) == 1
    run_id, detail = events[0]
    assert run_id is None  # the search's event, not a run's
    from_log, from_storage = json.loads(detail), stored_study(db).user_attrs[USER_ATTR]
    assert from_log == from_storage
    for key, value in facts(result).items():
        assert from_log[key] == (value if key != "winner" else result.winner), key
    assert from_log["control"] == "control"
    # either alone gives the same confirmation (a log that never heard the search conclude: the storage's)
    assert Confirmation.of(from_storage) == dataclasses.replace(api.search_report(db).confirmation, confirmed_at=None)
    # no run's status (its last event) is the confirmation's
    assert {r["status"] for r in api.list_runs(db).runs} == {"finished"}


def test_the_report_has_the_history_best_so_far_importances_and_confirmation(searched: tuple[Path, api.SearchResult]) -> None:
    db, result = searched
    assert api.searches(db) == (NAME,)
    report = api.search_report(db)
    assert report.search == NAME and report.storage == str(journal(db).resolve())
    history, trials = report.history, stored_study(db).get_trials()
    assert list(history["trial"]) == [t.number for t in trials] and len(history) == result.n_trials
    assert list(history["condition"]) == [t.user_attrs["condition"]["name"] for t in trials]
    assert list(history["stimulus"]) == [t.params["stimulus"] for t in trials]
    assert (history["seconds"] > 0).all() and (history["ended"] >= history["started"]).all()
    complete = [t.value if t.state == optuna.trial.TrialState.COMPLETE else float("nan") for t in trials]
    assert list(history["best_so_far"]) == list(pd.Series(complete).cummax().ffill())
    assert history["best_so_far"].iloc[-1] == result.best_value
    varying = {p for p in ("stimulus", "placement") if history[p].nunique() > 1}
    assert set(report.importances) == varying and report.importance_note is None
    assert sum(report.importances.values()) == pytest.approx(1.0)
    confirmation = report.confirmation
    assert confirmation is not None and confirmation.winner == result.winner["name"] and confirmation.control == "control"
    for key, value in facts(result).items():
        assert getattr(confirmation, key) == (value if key != "winner" else result.winner["name"]), key
    json.dumps(report.to_json(), allow_nan=False)  # strict JSON


def test_bad_requests_are_one_line(searched: tuple[Path, api.SearchResult], tmp_path: Path) -> None:
    db, _ = searched
    with pytest.raises(UserError, match=r"no search 'other' in this log \(searches: searched\)"):
        api.search_report(db, "other")
    with pytest.raises(UserError, match="no journal file at"):
        api.search_report(db, NAME, storage=str(tmp_path / "missing.journal"))
    plain = tmp_path / "plain.duckdb"
    api.run(write_study(tmp_path / "plain.yaml", sim_study()), plain)
    assert api.searches(plain) == ()
    with pytest.raises(UserError, match="holds no search"):
        api.search_report(plain)


def test_a_storage_url_is_kept_without_its_password() -> None:
    kept = _kept_storage("postgresql://user:s3cret@127.0.0.1:9/searches")
    assert "s3cret" not in kept and kept.startswith("postgresql")
    assert _kept_storage("postgresql://user@127.0.0.1:9/searches?password=s3cret").find("s3cret") == -1
    assert _kept_storage("postgresql://user@127.0.0.1:9/searches") == "postgresql+psycopg://user@127.0.0.1:9/searches"


def in_memory(values: list[tuple[dict[str, Any], float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for params, value in values:
        distributions = {k: optuna.distributions.CategoricalDistribution(["a", "b", "c"]) for k in params}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
    return study


def test_importances_fall_back_with_a_note_when_they_mean_nothing() -> None:
    few = in_memory([({"x": "a"}, 0.1), ({"x": "b"}, 0.2), ({"x": "c"}, 0.3)])
    assert param_importances(few) == ({}, "3 complete trial(s): importances need at least 4")
    single = in_memory([({"x": "a", "y": v}, 0.1 * i) for i, v in enumerate("abcab")])
    assert set(param_importances(single)[0]) == {"y"}  # x never varies: not ranked
    constant = in_memory([({"x": "a"}, 0.1 * i) for i in range(6)])
    assert param_importances(constant) == ({}, "no parameter takes more than one value among the complete trials: nothing to rank")


# -- export -----------------------------------------------------------------------------------------
def search_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(("| searched |", "searched &")))


def test_cli_export_shows_the_dev_estimate_beside_the_test_estimate(searched: tuple[Path, api.SearchResult], tmp_path: Path) -> None:
    db, result = searched
    c = result.confirmation
    dev, test = fmt_number(c["dev_delta"], signed=True), fmt_interval(c["delta"], c["ci_low"], c["ci_high"])
    done = run_cli("export", "--db", str(db), "--out", str(tmp_path / "table.md"), "--no-bib")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "table.md").read_text()
    line = search_line(text)
    assert f" {markdown_escape(dev)} " in line and f" {markdown_escape(test)} " in line and f" {fmt_p(c['p_value'])} " in line
    assert f" {c['candidates']} " in line and f" {markdown_escape(result.winner['name'])} " in line and "winner's curse" in text
    # LaTeX, a whole document (the library's export: the CLI's code path)
    document = api.export(db, out=str(tmp_path / "doc.tex"), standalone=True, bib=False).written[0].read_text()
    line = search_line(document)
    assert f" {_latex_value('delta', dev)} " in line and f" {_latex_value('delta', test)} " in line
    assert document.index("Searches: the winner") < document.index("\\end{document}") and document.endswith("\\end{document}\n")


def test_export_data_holds_both_numbers_as_the_search_gave_them(searched: tuple[Path, api.SearchResult]) -> None:
    db, result = searched
    made = api.export_files(db, tables=("csv", "parquet"), bib=False)
    for frame in (pd.read_csv(io.BytesIO(made.files["table.csv"])), pd.read_parquet(io.BytesIO(made.files["table.parquet"]))):
        rows = frame[frame["table"] == "search"]
        assert len(rows) == 1
        row = rows.iloc[0]
        for key in ("delta", "ci_low", "ci_high", "p_value", "dev_delta", "control_dev", "candidates", "n_test"):
            assert row[key] == pytest.approx(result.confirmation[key], rel=1e-12), key
        assert (row["search"], row["winner"], row["control"]) == (NAME, result.winner["name"], "control")
        assert "storage" not in frame  # a local path is no part of a paper's data
        assert len(frame[frame["table"] != "search"]) > 0  # the comparison's rows are still there


def test_a_log_without_a_search_exports_no_search_table(tmp_path: Path) -> None:
    db = tmp_path / "plain.duckdb"
    api.run(write_study(tmp_path / "plain.yaml", sim_study()), db)
    made = api.export_files(db, tables=("latex", "markdown", "csv", "parquet"), bib=False)
    assert not any(b"Searches" in content for content in made.files.values())
    assert "search" not in pd.read_csv(io.BytesIO(made.files["table.csv"])) and "search" not in pd.read_parquet(io.BytesIO(made.files["table.parquet"]))


# -- optuna-dashboard ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, wait_s: float = 20.0) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_search_opens_in_optuna_dashboard_as_it_is(searched: tuple[Path, api.SearchResult]) -> None:
    db, result = searched
    port = free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    process = subprocess.Popen([str(dashboard), str(journal(db)), "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == [NAME]
        study = get_json(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
        assert len(study["trials"]) == result.n_trials
        attrs = {a["key"]: a["value"] for a in study["user_attrs"]}
        assert USER_ATTR in attrs and str(result.confirmation["delta"]) in attrs[USER_ATTR]
    finally:
        process.kill()
        process.wait(timeout=10)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_names_in_the_search_table_are_escaped_as_the_rest_of_an_export(search: str, winner: str) -> None:
    from workbench.export.searches import COLUMNS, with_searches

    c = Confirmation(search=search, storage="", control="control", winner=winner, candidates=3, n_trials=5, best_trial=1, best_value=0.7,
                     control_dev=0.5, dev_delta=0.2, delta=0.1, ci_low=-0.1, ci_high=0.3, p_value=0.2, test="mcnemar_exact", n_test=20, level=0.95)
    markdown = str(with_searches("", "markdown", None, [c]))  # type: ignore[arg-type]
    row = next(line for line in markdown.splitlines() if line.endswith("| 20 |"))
    assert row.startswith(f"| {markdown_escape(search)} | control | {markdown_escape(winner)} |")
    assert len(re.findall(r"(?<!\\)\|", row)) == len(COLUMNS) + 1  # no name opens a column
    latex = str(with_searches("", "latex", None, [c]))  # type: ignore[arg-type]
    assert f"{latex_escape(search)} & control & {latex_escape(winner)} & 3 & 5 &" in latex


def _confirmed(baseline: dict[str, Any] | None) -> dict[str, Any]:
    return {"search": "s", "storage": "", "control": "control", "winner": {"name": "EP02.suffix"}, "candidates": 3, "n_trials": 5,
            "best_trial": 1, "best_value": 0.7, "control_dev": 0.5, "dev_delta": 0.2, "delta": 0.1, "ci_low": -0.1, "ci_high": 0.3,
            "p_value": 0.2, "test": "mcnemar_exact", "n_test": 20, "level": 0.95, "baseline": baseline}


def test_an_optimised_baseline_is_a_column_group_of_the_search_table_and_its_records() -> None:
    """A confirmation with a `baseline:` block's instruction: the table shows it beside the winner
    (its Δ against the control with the interval and p, and winner − baseline), the records carry
    the numbers; without one (or when the optimiser found none) the table is as before."""
    from workbench.export.searches import BASELINE_COLUMNS, COLUMNS, search_records, with_searches

    stats = {"delta": 0.05, "ci_low": -0.02, "ci_high": 0.12, "p_value": 0.31, "test": "mcnemar_exact"}
    found = {"name": "dspy-copro", "condition": {"name": "dspy-copro"}, "vs_control": stats,
             "winner_vs_baseline": {**stats, "delta": 0.05, "p_value": 0.4}}
    with_baseline = Confirmation.of(_confirmed(found))
    assert (with_baseline.baseline, with_baseline.baseline_delta, with_baseline.winner_vs_baseline_p_value) == ("dspy-copro", 0.05, 0.4)
    markdown = str(with_searches("", "markdown", None, [with_baseline]))  # type: ignore[arg-type]
    row = next(line for line in markdown.splitlines() if line.startswith("| s |"))
    assert len(re.findall(r"(?<!\\)\|", row)) == len(COLUMNS) + len(BASELINE_COLUMNS) + 1
    assert f" {markdown_escape('dspy-copro')} | {markdown_escape(fmt_interval(0.05, -0.02, 0.12))} | {fmt_p(0.31)} |" in row
    assert row.endswith(f"| {markdown_escape(fmt_number(0.05, signed=True))} | {fmt_p(0.4)} |") and "DSPy optimiser" in markdown
    [record] = search_records([with_baseline])
    assert (record["baseline"], record["baseline_ci_high"], record["winner_vs_baseline_delta"]) == ("dspy-copro", 0.12, 0.05)
    for plain in (Confirmation.of(_confirmed(None)), Confirmation.of(_confirmed({**found, "condition": None, "vs_control": None}))):
        assert plain.baseline is None
        markdown = str(with_searches("", "markdown", None, [plain]))  # type: ignore[arg-type]
        row = next(line for line in markdown.splitlines() if line.startswith("| s |"))
        assert len(re.findall(r"(?<!\\)\|", row)) == len(COLUMNS) + 1 and "DSPy" not in markdown
        assert "baseline" not in search_records([plain])[0]
