"""perspectives/*: the workbench's PDS and its entropy, the tags judge, and the report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import run_json, write_study
from judge_gateway import score_with_judge
from workbench.scoring.scorers import Unparseable
from workbench.store import connect_reader
from workbench.providers.spec import ModelSpec
from workbench.tasks import builtin_tasks
from workbench.tasks.judge import RUBRIC_KINDS, builtin_rubrics
from workbench.tasks.perspectives import perspectives_distribution

RUBRIC = builtin_rubrics()["perspectives"]
LABELS = [label.label for label in RUBRIC.labels]


def test_entropy_is_zero_for_one_perspective_and_100_for_all_equally() -> None:
    assert perspectives_distribution([["islamic"], ["islamic"]], LABELS).entropy_pct == 0.0
    uniform = perspectives_distribution([[label] for label in LABELS], LABELS)
    assert uniform.entropy_pct == pytest.approx(100.0)
    assert list(uniform.distribution.values()) == pytest.approx([1 / 9] * 9)


def test_pds_by_hand() -> None:
    """Tags over three responses: {a, b}, {a}, {} with K = 4 -> counts a=2, b=1: p = (2/3, 1/3, 0, 0)."""
    pds = perspectives_distribution([["a", "b"], ["a"], []], ["a", "b", "c", "d"])
    assert pds.counts == {"a": 2, "b": 1, "c": 0, "d": 0}
    assert pds.distribution == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 0.0, "d": 0.0})
    h = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert pds.entropy_pct == pytest.approx(100 * h / math.log(4))
    two_of_four = perspectives_distribution([["a"], ["b"]], ["a", "b", "c", "d"])
    assert two_of_four.entropy_pct == pytest.approx(50.0)


def test_no_tags_give_no_distribution_and_unknown_tags_are_refused() -> None:
    empty = perspectives_distribution([[], []], LABELS)
    assert empty.distribution is None and empty.entropy_pct is None
    with pytest.raises(ValueError):
        perspectives_distribution([["martian"]], LABELS)


def test_tag_verdicts() -> None:
    kind = RUBRIC_KINDS.get("tags")
    assert kind.read(RUBRIC, "islamic, Confucian", {}) == ("confucian,islamic", 2 / 9)
    assert kind.read(RUBRIC, "NONE", {}) == ("", 0.0)
    for verdict in ("martian, islamic", "", "none of them"):
        with pytest.raises(Unparseable):
            kind.read(RUBRIC, verdict, {})


def _all_perspectives_answer() -> str:
    return " ".join(f"From the {label.keywords[0]} view, this matters." for label in RUBRIC.labels)


def test_every_question_gold_scores_one_and_corrupted_zero_with_a_simulated_judge() -> None:
    task = builtin_tasks()["perspectives/values"]
    items = task.items(100, 0)
    assert len(items) == task.available() == 12
    cases = [(task, item, _all_perspectives_answer()) for item in items] + [(task, item, "I do not know.") for item in items]
    scores, calls = score_with_judge(ModelSpec(id="sim/judge", simulate={"default_accuracy": 1.0}), cases)
    assert [s.value for s in scores] == [1.0] * 12 + [0.0] * 12
    assert scores[0].answer == ",".join(sorted(LABELS)) and scores[-1].answer == ""
    assert all(label in calls[0]["messages"][1]["content"] for label in LABELS)


def test_a_simulated_study_reports_pds_per_condition(tmp_path: Path) -> None:
    study = {
        "name": "pds-sim",
        "models": [{"id": "sim/answers"}],
        "judge": {"id": "sim/judge", "simulate": {"accuracy": {"control": 1.0, "multiplex": 0.0}}},
        "conditions": [{"name": "control"}, {"name": "multiplex", "stimuli": ["EP02"]}],
        "tasks": [{"task": "perspectives/values", "n": 4}],
    }
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    rows = {r["condition"]: r for r in result["perspectives"]}
    assert rows["control"]["k"] == 9 and rows["control"]["n"] == 4 and rows["control"]["errors"] == 0
    assert rows["control"]["coverage"] == 0.0 and rows["control"]["entropy_pct"] is None  # "I do not know." has no perspective
    assert rows["multiplex"]["errors"] == 4 and rows["multiplex"]["coverage"] is None  # an unreadable verdict is an error


def test_multiplexity_conditions_are_judged_and_reported(tmp_path: Path) -> None:
    """The contextual system prompt and the multi-agent program both end in one judged answer."""
    study = {
        "name": "pds-mpx",
        "models": [{"id": "sim/answers"}],
        "judge": {"id": "sim/judge", "simulate": {"default_accuracy": 1.0}},
        "conditions": [{"name": "control"}, {"name": "contextual", "stimuli": ["MPX/contextual"]}, {"name": "agents", "stimuli": ["MPX/agents"]}],
        "tasks": [{"task": "perspectives/values", "n": 2}],
    }
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert {r["condition"] for r in result["perspectives"]} == {"control", "contextual", "agents"} and result["errors"] == 0
    con = connect_reader(tmp_path / "log.duckdb")
    judged = dict(con.execute("SELECT t.condition, count(*) FROM calls c JOIN trials t USING (trial_id) WHERE c.purpose = 'judge' GROUP BY 1").fetchall())
    assert judged == {"control": 2, "contextual": 2, "agents": 2}  # one verdict per trial, on the synthesised answer
