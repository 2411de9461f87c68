"""The Results page's Search section (AppTest) on a log made by a real search (simulated model):
the confirmation (dev estimate beside test estimate, candidates, winner), the history with the best
so far, the parameter importances, each what api.search_report says; a log without a search shows
no such section and no error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from conftest import sim_study, write_study
from test_search_report import STUDY
from test_search_report import search_log as searched_log
from workbench import api
from workbench.search.engine import LogEvaluator, Search
from workbench.study.spec import load_study

PAGE = str(Path(__file__).resolve().parent.parent / "workbench" / "ui" / "pages" / "results.py")


@pytest.fixture(scope="module")
def search_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return searched_log(tmp_path_factory.mktemp("search"))[0]


def page(db: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["db"] = str(db)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def frame_with(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def same(shown: Any, expected: Any) -> bool:
    missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    return missing(expected) and missing(shown) if missing(expected) or missing(shown) else shown == pytest.approx(expected, rel=1e-12)


def charts(at: AppTest) -> int:
    return len(at.get("vega_lite_chart"))


def test_the_search_section_shows_what_search_report_says(search_log: Path) -> None:
    report = api.search_report(search_log)
    c = report.confirmation
    at = page(search_log)
    assert [h.value for h in at.header][0] == "Search"
    assert {"Confirmation", "History", "Parameter importances"} <= {s.value for s in at.subheader}
    said = "\n".join(t.value for t in at.text)
    assert f"Winner: {c.winner} · control: control · {c.candidates} candidates searched in {c.n_trials} trials" in said
    confirmation = frame_with(at, "Split")
    dev, test = confirmation.iloc[0], confirmation.iloc[1]
    assert same(dev["Δ"], c.dev_delta) and all(same(dev[k], None) for k in ("Δ low", "Δ high", "p"))
    for column, value in {"Δ": c.delta, "Δ low": c.ci_low, "Δ high": c.ci_high, "p": c.p_value, "Examples": c.n_test}.items():
        assert same(test[column], value), column
    history = frame_with(at, "Best so far")
    assert list(history["Trial"]) == list(report.history["trial"]) and list(history["Candidate"]) == list(report.history["condition"])
    assert all(same(a, b) for a, b in zip(history["Best so far"], report.history["best_so_far"]))
    assert all(same(a, b) for a, b in zip(history["Dev score"], report.history["value"]))
    importances = frame_with(at, "Importance")
    assert dict(zip(importances["Parameter"], importances["Importance"])) == pytest.approx(report.importances, rel=1e-12)
    assert report.importances and charts(at) == 2  # best so far, importances


def test_a_log_without_a_search_shows_no_search_section(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    api.run(write_study(tmp_path / "study.yaml", sim_study()), db)
    at = page(db)
    assert "Search" not in [h.value for h in at.header] and "Confirmation" not in [s.value for s in at.subheader]
    assert not any("Split" in d.value.columns for d in at.dataframe)
    assert at.dataframe and "Condition" in at.dataframe[0].value.columns  # the run's comparison, as before


def test_a_search_not_confirmed_yet_shows_its_trials_and_says_so(tmp_path: Path) -> None:
    """Its trials done, its confirmation not (a worker's, or one still running): the history shows."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, "search": {**STUDY["search"], "trials": 3}}))
    db = tmp_path / "log.duckdb"
    engine = Search(load_study(path), LogEvaluator(db), db)
    engine.control_dev()
    engine.run_trials()
    at = page(db)
    assert "Not confirmed yet" in " ".join(i.value for i in at.info)
    assert list(frame_with(at, "Best so far")["Trial"]) == [0, 1, 2]
    assert "No importances: 3 complete trial(s): importances need at least 4." in [i.value.replace("\\", "") for i in at.info]
    assert api.search_report(db).confirmation is None


def test_a_search_of_two_objectives_shows_them_and_its_front(tmp_path: Path) -> None:
    """Score and tokens under their names, each trial marked on or off the Pareto front, and the
    importances for the score: no raw `values_0` column, no error."""
    from test_search_space import TRADE_OFF, TWO_OBJECTIVES, _write

    path, db = _write(tmp_path, {**TWO_OBJECTIVES, "trials": 8, "dev": 10, "test": 10}, TRADE_OFF), tmp_path / "log.duckdb"
    api.search(load_study(path), db)
    report = api.search_report(db)
    at = page(db)
    shown = frame_with(at, "On the Pareto front")
    assert {"Dev score", "Dev tokens"} <= set(shown.columns) and not any(str(c).startswith("values_") or c == "score" for c in shown.columns)
    assert list(shown["On the Pareto front"]) == list(report.history["pareto"])
    assert list(frame_with(at, "Importance")["Parameter"]) == list(report.importances)
