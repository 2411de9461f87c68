"""The Results page (AppTest): the table is `workbench compare`'s numbers for the same options, a
filter changes it as compare would, the figures are there (the rounds of a HEART run too), the
paired view offers exactly the examples with discordant pairs, and every empty state says so."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from conftest import run_json, sim_study, write_study
from workbench import api
from workbench.run.control import StopHandle

PAGE = str(Path(__file__).resolve().parent.parent / "workbench" / "ui" / "pages" / "results.py")

# The page's column header -> the field of compare's JSON row it shows.
ROW_FIELDS = {"Condition": "condition", "Task": "task", "n": "n", "Accuracy": "accuracy", "Δ": "delta", "Δ low": "ci_low", "Δ high": "ci_high",
              "h": "cohens_h", "p": "p_value", "p adj.": "p_adjusted", "Examples": "examples"}


def page(db: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["db"] = str(db)
    at.run()
    assert not at.exception, at.exception
    return at


def two_task_study() -> dict[str, Any]:
    return sim_study(
        models=[{"id": "sim/planted", "params": {"temperature": 0.0},
                 "simulate": {"accuracy": {"control": 0.4, "EP02": 0.8, "NP01": 0.55}, "answer_format": {"NP01": "confidence"}}}],
        tasks=[{"task": "ii/sum", "n": 16}, {"task": "ii/diff", "n": 16}],
    )


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    db = folder / "log.duckdb"
    api.run(write_study(folder / "study.yaml", two_task_study()), db)
    return db


@pytest.fixture(scope="module")
def heart_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("heart")
    db = folder / "log.duckdb"
    study = sim_study(
        models=[{"id": "sim/planted", "params": {"temperature": 0.0}, "simulate": {"default_accuracy": 0.4}}],
        conditions=[
            {"name": "control"},
            {"name": "heart_oracle", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle"}},
            {"name": "neutral_oracle", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle", "feedback": "neutral"}},
        ],
        tasks=[{"task": "ii/diff", "n": 8}],
    )
    api.run(write_study(folder / "study.yaml", study), db)
    return db


def table(at: AppTest) -> Any:
    return at.dataframe[0].value


def same(a: Any, b: Any) -> bool:
    missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-15) if isinstance(b, float) else a == b


def assert_table_is(frame: Any, rows: list[dict[str, Any]]) -> None:
    assert len(frame) == len(rows)
    for (_, shown), row in zip(frame.iterrows(), rows):
        for header, name in ROW_FIELDS.items():
            assert same(shown[header], row[name]), (header, shown[header], row[name])


def selectbox(at: AppTest, label: str) -> Any:
    return next(s for s in at.selectbox if s.label == label)


def test_the_table_is_what_compare_prints(log: Path) -> None:
    at = page(log)
    expected = api.compare(log).to_json()
    assert_table_is(table(at), expected["rows"])
    cli = run_json("compare", "--db", str(log))  # the CLI prints the same numbers
    assert [r["p_adjusted"] for r in cli["rows"]] == [r["p_adjusted"] for r in expected["rows"]]
    assert_table_is(table(at), cli["rows"])
    pooled = at.dataframe[1].value  # across tasks, as compare has it
    assert list(pooled["Condition"]) == [p["condition"] for p in expected["pooled"]]
    assert all(same(a, p["pooled_estimate"]) for a, p in zip(pooled["Pooled Δ"], expected["pooled"]))
    assert any(e.value.startswith("The format diagnostic flags") for e in at.warning) == any(f["flagged"] for f in expected["format"])


def test_filters_change_the_table_as_compare_would(log: Path) -> None:
    at = page(log)
    before = table(at)
    at.multiselect[0].unselect("NP01")
    selectbox(at, "Correction").select("bonferroni")
    selectbox(at, "Errors").select("exclude")
    at.select_slider[0].set_value(0.9).run()
    assert not at.exception
    expected = api.compare(log, conditions=("EP02",), adjust="bonferroni", errors="exclude", level=0.9).to_json()
    assert_table_is(table(at), expected["rows"])
    assert "NP01" not in set(table(at)["Condition"]) and "NP01" in set(before["Condition"])
    assert list(table(at)["Δ low"].dropna()) != list(before["Δ low"].dropna())[: len(table(at)["Δ low"].dropna())]
    selectbox(at, "Task").select("ii/sum").run()  # a view of one task: compare's rows of that task
    assert_table_is(table(at), [r for r in expected["rows"] if r["task"] == "ii/sum"])


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def test_figures_forest_and_heatmap(log: Path) -> None:
    at = page(log)
    shown = captions(at)
    assert len(shown) == 2 and "Forest" in shown[0] and "heatmap" in shown[1]  # no loop: no rounds, no cost


def test_a_heart_run_shows_its_rounds_and_exports_them(heart_log: Path, tmp_path: Path) -> None:
    at = page(heart_log)
    shown = captions(at)
    assert len(shown) == 4 and "round" in shown[2] and "cost" in shown[3]
    rounds = next(d.value for d in at.dataframe if "step" in d.value.columns)
    assert len(rounds) == len(api.compare(heart_log).rounds)
    written = api.export(heart_log, figures=tmp_path / "figures", out=str(tmp_path / "t.md")).written
    assert {p.name for p in written} >= {"forest.png", "heatmap.png", "rounds.png", "rounds.pdf", "cost.png", "cost.pdf"}


def test_export_without_loops_writes_the_forest_and_heatmap_only(log: Path, tmp_path: Path) -> None:
    written = api.export(log, figures=tmp_path / "figures", out=str(tmp_path / "t.md")).written
    assert sorted(p.name for p in written if p.suffix in (".pdf", ".png")) == ["forest.pdf", "forest.png", "heatmap.pdf", "heatmap.png"]


def test_the_paired_view_offers_exactly_the_discordant_examples(log: Path) -> None:
    at = page(log)
    everything = selectbox(at, "Example").options
    next(c for c in at.checkbox if c.label == "Only changed outcomes").check().run()
    pairs = api.list_trials(log, changed=True).listing.pairs
    discordant = {(t.task, t.item_id) for _, t in pairs}
    offered = selectbox(at, "Example").options
    assert len(offered) == len(discordant) < len(everything)
    assert {tuple(o.split(" · ")) for o in offered} == discordant
    task, item = offered[0].split(" · ")
    shown = [c.value for c in at.code]
    expected = [(c, t) for c, t in pairs if (t.task, t.item_id) == (task, item)][0]
    assert expected[0].response in shown and expected[1].response in shown and expected[0].prompt in shown
    assert any(t.value.startswith("Answer:") for t in at.text)


def test_empty_states(tmp_path: Path) -> None:
    at = page(tmp_path / "none.duckdb")
    assert at.info and "No log here" in at.info[0].value and not at.dataframe
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()  # a DuckDB file with no runs in it
    at = page(tmp_path / "empty.duckdb")
    assert at.info and "no runs" in at.info[0].value
    stop = StopHandle()
    stop.stop()  # stopped before its first trial
    db = tmp_path / "started.duckdb"
    api.run(write_study(tmp_path / "study.yaml", sim_study()), db, stop=stop)
    at = page(db)
    assert at.info and "no trials yet" in at.info[0].value and not at.dataframe


def test_a_partial_run_is_shown_with_its_warning_and_read_again_as_it_fills(tmp_path: Path) -> None:
    stop = StopHandle()
    db, study = tmp_path / "partial.duckdb", write_study(tmp_path / "study.yaml", sim_study(concurrency=1))
    api.run(study, db, stop=stop, progress=lambda p: p.done >= 30 and stop.stop())
    at = page(db)
    assert any("still being written" in w.value for w in at.warning)
    assert any("is partial" in t.value for t in at.text)
    assert_table_is(table(at), api.compare(db).to_json()["rows"])
    api.run(study, db)  # resumed to the end: the page's cache is keyed on the log's state, so it reads the run again
    at.run()
    assert not at.warning and table(at)["n"].sum() == 60
    assert_table_is(table(at), api.compare(db).to_json()["rows"])


def test_a_loops_budget_and_strategy_are_read_from_its_details() -> None:
    """gain_and_cost reads them in SQL: whatever the details hold, as json.loads read them before."""
    from workbench.reports.rounds import gain_and_cost

    con = duckdb.connect()
    con.execute("CREATE TABLE trials (trial_id VARCHAR, run_id VARCHAR, model VARCHAR, task VARCHAR, item_id VARCHAR, repeat INT, condition VARCHAR, "
                "status VARCHAR, score DOUBLE, n_calls INT, prompt_tokens INT, completion_tokens INT, consumes_gold BOOLEAN, details_json VARCHAR)")
    con.execute("CREATE TABLE rounds (trial_id VARCHAR, run_id VARCHAR, round INT, score DOUBLE, prompt_tokens INT, completion_tokens INT)")
    details = ['{"rounds_budget": 3, "final_strategy": "synthesis"}', "not json", "[1, 2]", None, '{"final_strategy": 7}']
    for i, d in enumerate(details):
        con.execute("INSERT INTO trials VALUES (?, 'r', 'm', 't', ?, 0, 'loop', 'ok', 1.0, 2, 5, 5, false, ?)", [f"t{i}", str(i), d])
        con.execute("INSERT INTO rounds VALUES (?, 'r', 0, 0.0, 3, 2), (?, 'r', 1, 1.0, 3, 2)", [f"t{i}", f"t{i}"])
    costs, curve = gain_and_cost(con, "r")
    assert [p.round for p in curve] == [0, 1, 2, 3, None]  # up to the budget of the one trial that names it
    assert curve[-1].strategy == "synthesis" and costs[0].mean_rounds == 1.0
