"""judge/*: rubric judges through the model layer; gold 1.0, corrupted 0.0; verdicts logged; errors are rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, run_json, write_study
from judge_gateway import score_with_judge
from workbench.core.errors import UserError
from workbench.scoring.scorers import Unparseable
from workbench.scoring.metrics import PARSERS
from workbench.store import connect_reader
from workbench.providers.spec import ModelSpec
from workbench.tasks import builtin_tasks
from workbench.tasks.judge import RUBRIC_KINDS, Rubric, builtin_rubrics, load_rubric_file

SIM_JUDGE = ModelSpec(id="sim/judge", simulate={"default_accuracy": 1.0})
OFF_TOPIC = "The weather was pleasant on Tuesday."


def _corrupted(task_id: str, item) -> str:
    """A wrong answer for the item: TruthfulQA's common falsehood, else an off-topic reply."""
    return dict(item.meta).get("incorrect", OFF_TOPIC)


JUDGE_TASKS = [t for t, spec in builtin_tasks().items() if spec.suite == "judge"]


def test_judge_tasks_and_rubrics_are_registered() -> None:
    assert set(JUDGE_TASKS) == {"judge/truthfulqa", "judge/helpfulness"}
    assert set(builtin_rubrics()) >= {"truthfulness", "helpfulness", "perspectives"}
    for task_id in JUDGE_TASKS:
        spec = builtin_tasks()[task_id]
        assert spec.scoring == "judge" and len(spec.items(1000, 0)) == spec.available() > 0


@pytest.mark.parametrize("task_id", JUDGE_TASKS)
def test_gold_scores_one_and_corrupted_zero_for_every_item_with_a_simulated_judge(task_id: str) -> None:
    task = builtin_tasks()[task_id]
    items = task.items(1000, 0)
    cases = [(task, item, item.targets[0]) for item in items] + [(task, item, _corrupted(task_id, item)) for item in items]
    scores, calls = score_with_judge(SIM_JUDGE, cases)
    assert [s.value for s in scores] == [1.0] * len(items) + [0.0] * len(items), [s.error for s in scores]
    assert all(c["purpose"] == "judge" for c in calls) and len(calls) == len(cases)
    prompt = calls[0]["messages"][1]["content"]
    assert items[0].input in prompt and items[0].targets[0] in prompt  # the judge sees question and response


def test_the_truthfulness_falsehood_never_passes_the_reference_check() -> None:
    """The corrupted answers are true corruptions: no false statement contains a true answer."""
    task = builtin_tasks()["judge/truthfulqa"]
    for item in task.items(20, 0):
        assert task.score(item.targets[0], item)[1] == 1.0
        assert task.score(dict(item.meta)["incorrect"], item)[1] == 0.0, item.input


def test_statement_order_is_seeded_per_trial_and_recorded() -> None:
    task = builtin_tasks()["judge/truthfulqa"]
    item = task.items(1, 0)[0]
    orders = set()
    for seed in range(12):
        scores, calls = score_with_judge(SIM_JUDGE, [(task, item, item.targets[0])], seed=seed)
        order = scores[0].details["order"]
        assert scores[0].value == 1.0 and order["C"] == "NEITHER"  # "none of these" stays last
        orders.add(tuple(order.items()))
        again, _ = score_with_judge(SIM_JUDGE, [(task, item, item.targets[0])], seed=seed)
        assert again[0].details["order"] == order
    assert len(orders) == 2


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("VERDICT: B", "B"), ("Verdict: 4.", "4"), ("**VERDICT: NONE**", "NONE"), ("I think...\nVERDICT: A\n", "A"), ("B. It is right", "B. It is right")],
)
def test_verdict_parser(text: str, verdict: str) -> None:
    assert PARSERS.get("verdict")(text) == verdict


def test_empty_verdict_is_unparseable() -> None:
    with pytest.raises(Unparseable):
        PARSERS.get("verdict")("  \n ")


def test_choice_and_scale_read_only_what_the_rubric_offers() -> None:
    rubrics = builtin_rubrics()
    choice, scale = RUBRIC_KINDS.get("choice"), RUBRIC_KINDS.get("scale")
    state = {"order": {"A": "FALSE", "B": "TRUE", "C": "NEITHER"}}
    assert choice.read(rubrics["truthfulness"], "B", state) == ("TRUE", 1.0)
    assert choice.read(rubrics["truthfulness"], "(a).", state) == ("FALSE", 0.0)
    assert choice.read(rubrics["truthfulness"], "Statement C", state) == ("NEITHER", 0.0)
    assert scale.read(rubrics["helpfulness"], "4/5", {}) == ("4", 0.75)
    for kind, rubric, verdict in ((choice, "truthfulness", "D"), (choice, "truthfulness", "I do not know"), (scale, "helpfulness", "7"), (scale, "helpfulness", "good")):
        with pytest.raises(Unparseable):
            kind.read(rubrics[rubric], verdict, state)


def test_a_bad_rubric_file_names_the_file_and_field(tmp_path: Path) -> None:
    good = Path(__file__).resolve().parent.parent / "tasks" / "rubrics" / "truthfulness.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("{verdicts}", "{verdicts} {secret}"))
    with pytest.raises(UserError) as info:
        load_rubric_file(bad)
    assert str(bad) in str(info.value) and "secret" in str(info.value)
    bad.write_text(good.read_text().replace("authored: true", "authored: false"))
    with pytest.raises(UserError, match="citation"):
        load_rubric_file(bad)
    assert isinstance(load_rubric_file(good), Rubric)


def _judge_study(**overrides):
    study = {
        "name": "judge-sim",
        "models": [{"id": "sim/answers", "simulate": {"accuracy": {"control": 1.0, "EP02": 0.0}}}],
        "judge": {"id": "sim/judge", "params": {"temperature": 0.0}, "simulate": {"default_accuracy": 1.0}},
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "judge/truthfulqa", "n": 4}, {"task": "judge/helpfulness", "n": 3}],
    }
    study.update(overrides)
    return study


def test_judge_calls_are_logged_cached_and_scores_follow_the_verdicts(tmp_path: Path) -> None:
    path, db = write_study(tmp_path / "s.yaml", _judge_study()), tmp_path / "log.duckdb"
    first = run_json("run", str(path), "--db", str(db))
    assert first["model_calls"] == 14 + 14 and first["errors"] == 0
    by = {c["name"]: c for c in first["conditions"]}
    assert by["control"]["accuracy"] == 1.0 and by["EP02"]["accuracy"] == 0.0
    con = connect_reader(db)
    calls = con.execute("SELECT purpose, model, params_json, messages_json, response_text FROM calls WHERE purpose = 'judge'").fetchall()
    assert len(calls) == 14 and {c[1] for c in calls} == {"sim/judge"}
    assert all(json.loads(c[2])["temperature"] == 0.0 and c[4].startswith("VERDICT:") for c in calls)
    rows = con.execute("SELECT answer, score, details_json, response_text FROM trials WHERE task = 'judge/truthfulqa'").fetchall()
    for answer, score, details, response in rows:
        scoring = json.loads(details)["scoring"]
        assert scoring["rubric"] == "truthfulness" and scoring["judge_model"] == "sim/judge" and scoring["verdict"].startswith("VERDICT:")
        assert (answer, score) == (("TRUE", 1.0) if response != "I do not know." else ("FALSE", 0.0))
    con.close()
    assert run_json("run", str(path), "--db", str(db), "--fresh")["model_calls"] == 0  # judge verdicts are cached too


def test_an_unreadable_verdict_is_an_error_row(tmp_path: Path) -> None:
    study = _judge_study(judge={"id": "sim/judge", "simulate": {"default_accuracy": 0.0}})  # answers "I do not know."
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result["errors"] == 14 and all(c["accuracy"] == 0.0 and c["errors"] == 7 for c in result["conditions"])
    con = connect_reader(tmp_path / "log.duckdb")
    rows = con.execute("SELECT status, score, error, response_text FROM trials").fetchall()
    assert all(status == "error" and score is None and "unreadable verdict" in error for status, score, error, _ in rows)
    assert any(response is not None for *_, response in rows)  # the answer itself is kept


def test_a_judge_task_without_a_judge_is_refused(tmp_path: Path) -> None:
    study = _judge_study()
    del study["judge"]
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and "judge" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "log.duckdb").exists()


def test_simulate_on_the_judge_is_checked_like_a_model(tmp_path: Path) -> None:
    study = _judge_study(judge={"id": "sim/judge", "simulate": {"accuracy": {"nosuch": 1.0}}})
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and "judge.simulate.accuracy" in result.stderr


# The embedded 0.5B judge gave the right verdict in 78 of 80 cases (all 20 items, gold and
# false answer, two seeded statement orders); it missed only item 013's gold answer. The test
# checks the path with a real judge on three items, not the small judge's skill.
REAL_JUDGE_ITEMS = ["000", "001", "009"]


@pytest.mark.local_model
def test_a_real_local_judge_scores_gold_one_and_falsehood_zero(local_server) -> None:
    task = builtin_tasks()["judge/truthfulqa"]
    items = [i for i in task.items(20, 0) if i.id.split("#")[0] in REAL_JUDGE_ITEMS]
    cases = [(task, item, item.targets[0]) for item in items] + [(task, item, dict(item.meta)["incorrect"]) for item in items]
    judge = ModelSpec(id="local/default", params={"temperature": 0.0, "max_tokens": 8})
    scores, calls = score_with_judge(judge, cases)
    assert [s.value for s in scores] == [1.0] * len(items) + [0.0] * len(items), [(s.details.get("verdict"), s.error) for s in scores]
    assert len(calls) == len(cases) and all(c["response"] for c in calls)


@pytest.mark.local_model
def test_a_run_with_the_local_model_as_judge_logs_its_verdicts(local_server, tmp_path: Path) -> None:
    study = _judge_study(
        judge={"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 8}},
        models=[{"id": "sim/answers", "simulate": {"default_accuracy": 1.0}}],
        tasks=[{"task": "judge/truthfulqa", "n": 2}],
        conditions=[{"name": "control"}],
    )
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result["trials_done"] == 2
    con = connect_reader(tmp_path / "log.duckdb")
    judged = con.execute("SELECT model, endpoint, response_text FROM calls WHERE purpose = 'judge'").fetchall()
    assert len(judged) == 2 and all(model == "local/default" and endpoint.startswith("llama.cpp/") and text for model, endpoint, text in judged)
    rows = con.execute("SELECT status, answer, error FROM trials").fetchall()
    assert all((status == "ok" and answer in {"TRUE", "FALSE", "NEITHER"}) or (status == "error" and "verdict" in error) for status, answer, error in rows)
