"""The Rate page (AppTest): rating outputs blind, progress, agreement and results, empty states."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from conftest import sim_study, write_study
from workbench import api
from workbench.stimuli import builtin_library
from workbench.store import query

PAGE = str(Path(__file__).parent.parent / "workbench" / "ui" / "pages" / "rate.py")
QUALITY = {"name": "quality", "min": 1, "max": 5, "labels": {1: "bad", 5: "good"}}


def _log(root: Path, rating: dict[str, Any] | None) -> Path:
    study = sim_study(tasks=[{"task": "ii/sum", "n": 4}], **({} if rating is None else {"rating": rating}))
    api.run(write_study(root / "study.yaml", study), root / "log.duckdb")
    return root / "log.duckdb"


@pytest.fixture(scope="module")
def rated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _log(tmp_path_factory.mktemp("rate"), {"scales": [QUALITY]})


@pytest.fixture()
def log(tmp_path: Path, rated_log: Path) -> Path:
    shutil.copytree(rated_log.parent, tmp_path / "log")
    return tmp_path / "log" / rated_log.name


def _page(db: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["db"] = str(db)
    at.run()
    assert not at.exception, at.exception
    return at


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _everything_shown(at: AppTest) -> str:
    """Every element of the page as its protobuf text: labels, options, values, table cells."""
    shown = [str(n.proto) for n in _nodes(at._tree) if getattr(n, "proto", None) is not None]
    shown += [n.value.to_csv() for n in at.dataframe]
    return "\n".join(shown)


def _texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_rating_three_outputs_blind(log: Path) -> None:
    at = _page(log)
    assert "Enter your name as rater" in at.info[0].value
    at.text_input(key="rater").input("ann").run()
    assert "0 of 12 rated" in _texts(at)
    secrets = ["EP02", "NP01", *(builtin_library().get(s).text for s in ("EP02", "NP01"))]
    for step in range(1, 4):
        shown = _everything_shown(at)
        assert [s for s in secrets if s in shown] == [], "no condition or stimulus on the page while rating"
        (rating,) = at.radio
        assert rating.label == "Rating" and rating.options == ["1: bad", "2", "3", "4", "5: good"]
        rating.set_value(step + 1).run()
        next(b for b in at.button if b.label == "Save rating").click().run()
        assert not at.exception, at.exception
        assert f"{step} of 12 rated" in _texts(at)
    rows = query(log, "SELECT rater, value, position FROM ratings ORDER BY position")
    assert [(r["rater"], r["value"], r["position"]) for r in rows] == [("ann", 2, 1), ("ann", 3, 2), ("ann", 4, 3)]
    again = _page(log)  # a new session: the rater goes on where they stopped
    again.text_input(key="rater").input("ann").run()
    assert "3 of 12 rated" in _texts(again) and api.rating_queue(log, None, "ann").next.task_input in _texts(again)


def test_saving_without_a_point_says_so_and_writes_nothing(log: Path) -> None:
    at = _page(log)
    at.text_input(key="rater").input("ann").run()
    next(b for b in at.button if b.label == "Save rating").click().run()
    assert [e.value for e in at.error] == ["Choose a point on every scale first."]
    assert query(log, "SELECT count(*) AS n FROM ratings")[0]["n"] == 0 and "0 of 12 rated" in _texts(at)


def test_agreement_and_results_once_there_are_ratings(log: Path) -> None:
    run_id = api.list_runs(log).runs[-1]["run_id"]
    for rater, shift in (("ann", 0), ("bob", 1)):
        for i, unit in enumerate(api.rating_queue(log, run_id, rater).pending[:6]):
            api.save_rating(log, run_id, rater, unit.unit_id, {"": {"quality": 1 + (i + shift) % 5}})
    at = _page(log)
    assert len(at.dataframe) == 0, "results are hidden until asked for: they name the conditions"
    at.checkbox[0].check().run()
    assert not at.exception, at.exception
    assert "12 ratings by 2 rater(s)" in _texts(at)
    alpha, table = at.dataframe[0].value, at.dataframe[1].value
    (expected,) = api.rating_analysis(log, run_id).agreement
    assert alpha["Krippendorff's alpha"].iloc[0] == pytest.approx(expected.alpha) and alpha["raters"].iloc[0] == 2
    assert list(table["condition"]) == ["control", "EP02", "NP01"]


def test_pair_mode_shows_two_outputs_with_a_rating_each(tmp_path: Path) -> None:
    db = _log(tmp_path, {"scales": [QUALITY], "mode": "pair"})
    at = _page(db)
    at.text_input(key="rater").input("ann").run()
    assert [r.label for r in at.radio] == ["Rating (output A)", "Rating (output B)"]
    assert "0 of 8 rated" in _texts(at)
    at.radio[0].set_value(2).run()
    at.radio[1].set_value(5).run()
    next(b for b in at.button if b.label == "Save rating").click().run()
    assert "1 of 8 rated" in _texts(at)
    assert sorted(r["value"] for r in query(db, "SELECT value FROM ratings")) == [2, 5]


def test_no_log_no_run(tmp_path: Path) -> None:
    at = _page(tmp_path / "none.duckdb")
    assert "No run in this log yet" in at.info[0].value and [t.label for t in at.text_input] == ["Log file"]


def test_a_run_without_a_rating_block_says_how_to_add_one(tmp_path: Path) -> None:
    db = _log(tmp_path, None)
    at = _page(db)
    assert "no rating block" in at.info[0].value
    assert at.code[0].value.startswith("rating:\n  scales:")
    at.text_input(key="rater").input("ann").run()
    assert "no rating block" in at.info[0].value and not at.radio
