"""The search's space and objectives (workbench/study/search.py, workbench/search/engine.py):
stacks of up to k stimuli (one name per combination, planted and found by name, both stimuli in
the log) and a search of two objectives (score and tokens) whose Pareto front is reported and
whose highest-score member is confirmed. Simulated model only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import duckdb
import optuna
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from workbench import api
from workbench.core.errors import UserError
from workbench.run.scheduler import Runner
from workbench.run.simulate import simulated_frame
from workbench.search.engine import Search, conclude, simulated
from workbench.stats.frame import load_run
from workbench.study.search import candidate, candidate_names
from workbench.study.spec import load_study, study_from_text

PAIR = "EP02+EP07"
SIX = ["EP01", "EP02", "EP03", "EP04", "EP05", "EP07"]
# none, one stimulus, a stack of two: the more it sends, the better it scores (a trade-off to front)
TRADE_OFF = {"none": 0.5, "EP02": 0.7, PAIR: 0.9}
TWO_OBJECTIVES = {"space": {"stimulus": ["EP02", "EP07", "EP05", "none"], "stack": 2}, "objective": ["score", "tokens"],
                  "trials": 12, "dev": 20, "test": 20}


def _raw(search: dict[str, Any], accuracy: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "name": "stacked",
        "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.3, "accuracy": accuracy or {}}}],
        "conditions": [{"name": "control"}],
        "tasks": [{"task": "math/word_problems", "n": 40}],
        "concurrency": 1,
        "search": search,
    }


def _write(tmp_path: Path, search: dict[str, Any], accuracy: dict[str, float] | None = None) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_raw(search, accuracy)))
    return path


def _refused(path: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


BASE = {"space": {"stimulus": ["EP01", "EP02", "none"]}, "trials": 4, "dev": 6, "test": 6}
BAD_BLOCKS = [
    ({"space": {"stimulus": ["EP01", "EP02"], "stack": 0}}, "search.space.stack", "greater than or equal to 1"),
    ({"space": {"stimulus": {"family": "emotionprompt"}, "stack": 6}}, "search.space.stack", "less than or equal to 5"),
    ({"space": {"heart": {"rounds": 1, "emotions": ["anger"]}, "stack": 2}}, "search.space.stack", "add `stimulus`"),
    ({"space": {"stimulus": ["EP01", "EP02", "none"], "stack": 3}}, "search.space.stack", "needs 3 distinct ones to choose from; the space has 2"),
    ({"objective": "tokens_per_second"}, "search.objective", "unknown objective 'tokens_per_second'"),
    ({"objective": ["tokens"]}, "search.objective", "score among them"),
    ({"objective": "tokens"}, "search.objective", "score among them"),
    ({"objective": ["score", "score"]}, "search.objective", "at most once"),
    ({"objective": ["score", "tokens"], "pruning": True}, "search.pruning", "cannot prune a search of several objectives"),
    ({"objective": ["score", "tokens"], "sampler": "CmaEsSampler"}, "search.sampler", "optimises one objective"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_BLOCKS)
def test_bad_stacks_and_objectives_are_one_line_errors(tmp_path: Path, change: dict[str, Any], field: str, words: str) -> None:
    message = _refused(_write(tmp_path, {**BASE, **change}))
    assert words in message and f": {field}" in message, message


def test_a_planted_stack_in_another_order_is_no_candidate(tmp_path: Path) -> None:
    """A stack's name lists its stimuli in the space's order: planting by the other order names nothing the search makes."""
    space = {"space": {"stimulus": SIX, "stack": 2}, "trials": 4, "dev": 6, "test": 6}
    assert load_study(_write(tmp_path, space, {PAIR: 0.9}))
    message = _refused(_write(tmp_path, space, {"EP07+EP02": 0.9}))
    assert "unknown condition 'EP07+EP02'" in message and ": models[0].simulate.accuracy" in message, message


def _loads_or_names(tmp_path: Path, search: dict[str, Any], valid: bool, field: str) -> None:
    """A valid value loads; any other is a one-line error naming its field."""
    path = _write(tmp_path, search)
    if valid:
        assert load_study(path).spec.search is not None
    else:
        message = _refused(path)
        assert f": {field}" in message, message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.integers(-2, 8), st.floats(allow_nan=True), st.text(max_size=5), st.none(), st.booleans(), st.lists(st.integers(1, 3), max_size=2)))
@example(value=2)
def test_generated_stacks_load_or_name_their_field(tmp_path: Path, value: Any) -> None:
    """Up to 5 stacked of the six stimuli; 0, 6 (more than the cap and the ids), text, floats... refused."""
    valid = type(value) is int and 1 <= value <= 5
    _loads_or_names(tmp_path, {**BASE, "space": {"stimulus": SIX, "stack": value}}, valid, "search.space.stack")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.sampled_from(["score", "tokens", "latency"]), st.lists(st.sampled_from(["score", "tokens", "latency", "", "Score"]), max_size=3),
                       st.text(max_size=8), st.integers(), st.floats(allow_nan=True), st.none(), st.booleans(),
                       st.dictionaries(st.sampled_from(["score", "tokens"]), st.integers(), max_size=2)))
@example(value=["score", "tokens"])
@example(value=["tokens", "score"])
def test_generated_objectives_load_or_name_their_field(tmp_path: Path, value: Any) -> None:
    """`score`, or a list of distinct objectives of score and tokens holding score."""
    names = value if isinstance(value, list) else [value]
    valid = all(isinstance(n, str) for n in names) and set(names) <= {"score", "tokens"} and len(set(names)) == len(names) and "score" in names
    _loads_or_names(tmp_path, {**BASE, "objective": value}, valid, "search.objective")


def test_a_stack_has_one_candidate_per_combination(tmp_path: Path) -> None:
    """Slots that repeat a stimulus, leave one empty or list the same ones in another order make
    the same candidate: the names grid search and planting list are the subsets of at most k."""
    raw = _raw({"space": {"stimulus": ["EP03", "EP01", "EP02", "none"], "stack": 2, "placement": ["prefix"]}, "trials": 4, "dev": 6, "test": 6})
    space = study_from_text(yaml.safe_dump(raw), "s.yaml").spec.search.space
    names = candidate_names(space, [])
    assert names == {"none", *(f"{n}.prefix" for n in ("EP03", "EP01", "EP02", "EP03+EP01", "EP03+EP02", "EP01+EP02"))}
    one, _ = candidate(space, {"stimulus": "EP02", "stimulus.1": "EP03", "placement": "prefix"}, {})
    other, _ = candidate(space, {"stimulus": "EP03", "stimulus.1": "EP02", "placement": "prefix"}, {})
    assert one == other and one["name"] == "EP03+EP02.prefix"
    assert [s["id"] for s in one["stimuli"]] == ["EP03", "EP02"] and all(s["placement"] == "prefix" for s in one["stimuli"])
    assert candidate(space, {"stimulus": "EP01", "stimulus.1": "EP01", "placement": "prefix"}, {})[0]["name"] == "EP01.prefix"
    assert candidate(space, {"stimulus": "none", "stimulus.1": "none", "placement": "prefix"}, {})[0] == {"name": "none"}
    # a family's ids stack in id order: ten ids, stacks of up to 3
    family = _raw({"space": {"stimulus": {"family": "negativeprompt"}, "stack": 3}, "trials": 4, "dev": 6, "test": 6})
    names = candidate_names(study_from_text(yaml.safe_dump(family), "f.yaml").spec.search.space, [f"NP{i:02d}" for i in range(1, 11)])
    assert len(names) == 10 + 45 + 120 and "NP01+NP05+NP10" in names


def test_grid_over_a_stack_visits_every_combination() -> None:
    text = yaml.safe_dump(_raw({"space": {"stimulus": ["EP01", "EP02", "EP07", "none"], "stack": 2}, "sampler": "grid",
                                "trials": 16, "dev": 10, "test": 10}, {PAIR: 0.95}))
    found = conclude(Search(study_from_text(text, "grid.yaml"), simulated))
    assert found["candidates"] == 7 and found["winner"]["name"] == PAIR  # none, 3 alone, 3 pairs


def test_a_planted_stacked_pair_is_found_within_the_budget() -> None:
    """Six stimuli stacked up to two (21 candidates, the pair planted): the seeded TPE search finds
    the pair within its budget and confirms it on the test split."""
    text = yaml.safe_dump(_raw({"space": {"stimulus": SIX, "stack": 2}, "trials": 30, "dev": 20, "test": 20}, {PAIR: 0.95}))
    found = conclude(Search(study_from_text(text, "pair.yaml"), simulated))
    assert found["winner"]["name"] == PAIR and found["pareto"] is None
    assert [s["id"] for s in found["winner"]["stimuli"]] == ["EP02", "EP07"]
    assert found["delta"] > 0 and found["p_value"] < 0.05 and found["candidates"] < 21


def test_the_winning_stack_is_logged_with_both_stimuli(tmp_path: Path) -> None:
    """Through the runner into the log: the winner's test trials carry both stimuli, stacked in
    the space's order in the prompt, and the winner written out is a condition of both."""
    path = _write(tmp_path, {"space": {"stimulus": ["EP02", "EP07"], "stack": 2}, "sampler": "grid", "trials": 6, "dev": 10, "test": 10},
                  {PAIR: 0.95})
    db, written = tmp_path / "log.duckdb", tmp_path / "winner.yaml"
    result = api.search(path, db, winner_study=written)
    assert result.winner["name"] == PAIR and result.pareto is None
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT DISTINCT t.stimuli_json, t.messages_json FROM trials t JOIN runs r USING (run_id) "
                           "WHERE r.name = 'stacked.test' AND t.condition = ?", [PAIR]).fetchall()
    finally:
        con.close()
    assert len(rows) == 10 and all([s["id"] for s in json.loads(stimuli)] == ["EP02", "EP07"] for stimuli, _ in rows)
    texts = {s["id"]: s["text"] for s in json.loads(rows[0][0])}
    prompt = json.loads(rows[0][1])[-1]["content"]
    assert prompt.index(texts["EP02"]) < prompt.index(texts["EP07"])  # both sent, in order
    assert [r.id for r in load_study(written).spec.conditions[1].refs()] == ["EP02", "EP07"]


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(score, tokens): a at least as good in both, better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and a != b


def test_two_objectives_give_a_pareto_front_and_confirm_its_highest_score() -> None:
    text = yaml.safe_dump(_raw(TWO_OBJECTIVES, TRADE_OFF))
    engine = Search(study_from_text(text, "front.yaml"), simulated)
    found = conclude(engine)
    trials = engine.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    points = {t.user_attrs["condition"]["name"]: tuple(t.values) for t in trials}
    front = found["pareto"]
    assert front and {m["condition"] for m in front} >= {PAIR, "none"}
    for member in front:
        assert (member["score"], member["tokens"]) == points[member["condition"]]
        assert not any(_dominates(p, points[member["condition"]]) for p in points.values()), member
    named = {m["condition"] for m in front}
    assert all(any(_dominates(points[n], p) for n in named) for name, p in points.items() if name not in named)  # the front is whole
    assert [m["score"] for m in front] == sorted((m["score"] for m in front), reverse=True)
    top = front[0]
    assert found["winner"]["name"] == top["condition"] == PAIR
    assert found["best_trial"] == top["trial"] and found["best_value"] == top["score"]
    assert found["delta"] > 0 and found["p_value"] < 0.05  # confirmed on the test split


def test_the_simulator_counts_the_tokens_the_runner_logs(tmp_path: Path) -> None:
    """The tokens objective reads the trial frame: logged runs and the in-process simulation give the same."""
    raw = _raw(BASE)
    raw["conditions"] = [{"name": "control"}, {"name": PAIR, "stimuli": ["EP02", "EP07"]}]
    raw["tasks"][0]["n"] = 12
    study = study_from_text(yaml.safe_dump(raw), "t.yaml")
    asyncio.run(Runner(study, tmp_path / "log.duckdb").run())
    key = ["condition", "item_id"]
    logged = load_run(tmp_path / "log.duckdb").frame.sort_values(key)
    simulated_tokens = simulated_frame(study).sort_values(key)
    assert logged["tokens"].tolist() == simulated_tokens["tokens"].tolist()
    by_condition = logged.groupby("condition")["tokens"].mean()
    assert by_condition[PAIR] > by_condition["control"] > 0


def test_cli_json_reports_the_pareto_front(tmp_path: Path) -> None:
    path = _write(tmp_path, {**TWO_OBJECTIVES, "trials": 3, "dev": 10, "test": 10}, TRADE_OFF)
    result = run_cli("search", str(path), "--db", str(tmp_path / "log.duckdb"), "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    front = out["pareto"]
    assert front and all(set(m) == {"trial", "params", "condition", "score", "tokens"} for m in front)
    assert out["best_value"] == front[0]["score"] and out["winner"]["name"] == front[0]["condition"]
    assert [m["tokens"] for m in front] == sorted((m["tokens"] for m in front), reverse=True)  # more score costs more tokens
    assert all(m["tokens"] > 0 for m in front)


def test_the_report_of_two_objectives_names_them_marks_the_front_and_ranks_for_the_score(tmp_path: Path) -> None:
    """Read back from its journal (as the Results page and optuna-dashboard read it): a column per
    objective under its name, the score as `value`, each trial marked on or off the front, and
    the parameters' importances for the score rather than none."""
    path, db = _write(tmp_path, {**TWO_OBJECTIVES, "trials": 8, "dev": 10, "test": 10}, TRADE_OFF), tmp_path / "log.duckdb"
    result = api.search(load_study(path), db)
    report = api.search_report(db)
    history = report.history
    assert {"score", "tokens", "value", "pareto"} <= set(history.columns) and not any(c.startswith("values_") for c in history.columns)
    assert list(history["value"]) == list(history["score"])
    on_front = set(history.loc[history["pareto"], "trial"])
    assert {m["trial"] for m in result.pareto} <= on_front  # each candidate's first trial on the front (a repeat is on it too)
    assert {history.loc[history["trial"] == t, "condition"].item() for t in on_front} == {m["condition"] for m in result.pareto}
    assert report.importances and set(report.importances) <= {"stimulus", "stimulus.1"} and report.importance_note is None
