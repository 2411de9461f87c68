"""inventory/*: verbatim item banks, keyed scoring, balanced seeded sampling, per-trait deltas."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_cli, run_json, write_study
from reference_data import PUBLISHED, sac_code_prompt
from workbench.scoring.scorers import ScoreCase, Unparseable, score_trial
from workbench.store import connect_reader
from workbench.study.spec import load_study
from workbench.study.expand import expand
from workbench.scoring.metrics import PARSERS
from workbench.tasks import builtin_tasks
from workbench.tasks.inventory import inventory_items, load_inventory
from workbench.stats import adjust
from workbench.reports.traits import inventory_traits, trait_deltas, traits_report

OPPOSITE = {"A": "E", "E": "A"}


def _score(task_id: str, item, text: str):
    return asyncio.run(score_trial(ScoreCase(builtin_tasks()[task_id], item, text, seed=0)))


def test_pers16_has_163_items_with_the_sac_factor_counts_and_keys() -> None:
    bank = load_inventory("pers16")
    items = inventory_items("pers16")
    assert len(items) == 163 == builtin_tasks()["inventory/pers16"].available()
    counts = pd.Series([dict(i.meta)["trait"] for i in items]).value_counts().to_dict()
    assert counts == {factor: (13 if factor == "B" else 10) for factor in bank.traits}
    assert len(bank.traits) == 16
    assert {dict(i.meta)["key"] for i in items} == {1, -1}
    assert sum(dict(i.meta)["key"] == -1 for i in items) == 66  # counted from the source CSV


def test_mpi120_has_24_items_per_big_five_factor() -> None:
    items = inventory_items("mpi120")
    assert len(items) == 120 == builtin_tasks()["inventory/mpi120"].available()
    counts = pd.Series([dict(i.meta)["trait"] for i in items]).value_counts().to_dict()
    assert counts == {f: 24 for f in "OCEAN"}


def test_pers16_contains_every_sac_probe_item_verbatim_under_its_factor() -> None:
    """Cross-check against the independently transcribed SAC probe items (tests/reference)."""
    reference = PUBLISHED["sac"]["traits"]
    bank = {(dict(i.meta)["trait"], dict(i.meta)["text"]) for i in inventory_items("pers16")}
    names = load_inventory("pers16").traits
    for trait in reference:
        assert names[trait["pf16_factor"]] == trait["trait"]
        for probe in trait["intensity_probe_items"]:
            assert (trait["pf16_factor"], probe) in bank, probe


@pytest.mark.parametrize("task_id", ["inventory/pers16", "inventory/mpi120"])
def test_gold_scores_one_and_the_opposite_pole_zero_for_every_item(task_id: str) -> None:
    task = builtin_tasks()[task_id]
    for item in task.items(500, 0):
        gold, corrupted = item.targets[0], OPPOSITE[item.targets[0]]
        assert _score(task_id, item, gold).value == 1.0, item
        assert _score(task_id, item, corrupted).value == 0.0, item
        assert _score(task_id, item, "C").value == 0.5  # the neutral midpoint, either key


def test_reverse_keyed_items_score_six_minus_the_level() -> None:
    items = {dict(i.meta)["text"]: i for i in inventory_items("pers16")}
    forward, reverse = items["Know how to comfort others."], items["Am not really interested in others."]
    assert dict(reverse.meta)["key"] == -1
    for letter, level in zip("ABCDE", (5, 4, 3, 2, 1)):
        assert 1 + 4 * _score("inventory/pers16", forward, letter).value == level
        assert 1 + 4 * _score("inventory/pers16", reverse, letter).value == 6 - level


@pytest.mark.parametrize(
    ("text", "letter"),
    [("A", "A"), ("(B).", "B"), ("C. Neither Accurate Nor Inaccurate", "C"), ("Answer: D", "D"), ("My answer is E.", "E"),
     ("Moderately Accurate", "B"), ("Very Inaccurate", "E"), ("I would choose option (D)", "D"), ("  E\n", "E")],
)
def test_mpi_choice_reads_letters_and_option_wordings(text: str, letter: str) -> None:
    assert PARSERS.get("mpi_choice")(text) == letter


@pytest.mark.parametrize("text", ["", "I am an AI and have no personality.", "a or b", "A or B", "F"])
def test_mpi_choice_refuses_text_without_one_option(text: str) -> None:
    with pytest.raises(Unparseable):
        PARSERS.get("mpi_choice")(text)


def test_an_answer_without_an_option_is_no_answer_not_a_score() -> None:
    item = inventory_items("pers16")[0]
    score = _score("inventory/pers16", item, "As an AI, I do not have feelings.")
    assert score.value is None and score.answer is None and score.error is None and score.status == "no_answer"


def test_small_samples_cover_every_trait_and_extend_as_a_prefix() -> None:
    task = builtin_tasks()["inventory/pers16"]
    sixteen = task.items(16, 5)
    assert len({dict(i.meta)["trait"] for i in sixteen}) == 16
    assert [i.id for i in task.items(40, 5)[:16]] == [i.id for i in sixteen]
    assert [i.id for i in task.items(16, 6)] != [i.id for i in sixteen]


def test_sampling_is_the_same_in_another_process() -> None:
    code = "from workbench.tasks import builtin_tasks; print([i.id for i in builtin_tasks()['inventory/mpi120'].items(30, 11)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout.strip()
    assert other == str([i.id for i in builtin_tasks()["inventory/mpi120"].items(30, 11)])


def _planted_frame() -> pd.DataFrame:
    """Two items of trait A, one of trait B; control answers are keyed levels 3/3 (A) and 2 (B);
    SAC-A raises A to 5/4 and leaves B; one SAC-A trial on B errors; two repeats each."""
    rows = []
    keyed = {("control", "A-01"): [3, 3], ("control", "A-02"): [3, 3], ("control", "B-01"): [2, 2],
             ("SAC-A", "A-01"): [5, 5], ("SAC-A", "A-02"): [4, 4], ("SAC-A", "B-01"): [2, None]}
    traits = inventory_traits()
    logged = {i.split("#")[0]: i for i in traits.loc[traits["task"] == "inventory/pers16", "item_id"]}  # ids as trials log them
    for (condition, base_id), levels in keyed.items():
        item = logged[base_id]
        for repeat, level in enumerate(levels):
            rows.append({"model": "m", "condition": condition, "task": "inventory/pers16", "item_id": item, "repeat": repeat,
                         "score": None if level is None else (level - 1) / 4, "status": "ok" if level is not None else "error"})
    return pd.DataFrame(rows)


def test_trait_deltas_on_planted_data() -> None:
    rows = {(r["condition"], r["trait"]): r for r in trait_deltas(_planted_frame(), "control")}
    assert rows[("control", "A")]["mean"] == 3.0 and rows[("control", "A")]["delta"] is None
    a = rows[("SAC-A", "A")]
    assert (a["trait_name"], a["mean"], a["control_mean"], a["delta"], a["n_pairs"], a["n"], a["errors"]) == ("WARMTH", 4.5, 3.0, 1.5, 2, 4, 0)
    assert 0.0 < a["p_value"] <= 1.0
    b = rows[("SAC-A", "B")]
    assert (b["mean"], b["delta"], b["n"], b["errors"], b["p_value"]) == (2.0, 0.0, 2, 1, 1.0)


def _levels_frame(models: tuple[str, ...]) -> pd.DataFrame:
    """Every item of traits A and B of PERS-16 for each model: control answers level 3; SAC-A
    raises A by 1 or 2 (a clear effect) and B by 0 or +-1 on alternate items (none)."""
    traits = inventory_traits()
    bank = traits[traits["task"] == "inventory/pers16"]
    rows = []
    for model in models:
        for trait, shift in (("A", lambda i: 1 + i % 2), ("B", lambda i: (0, 1, -1)[i % 3])):
            for i, item in enumerate(bank.loc[bank["trait"] == trait, "item_id"]):
                for condition, level in (("control", 3), ("SAC-A", 3 + shift(i))):
                    rows.append({"model": model, "condition": condition, "task": "inventory/pers16", "item_id": item, "repeat": 0,
                                 "score": (level - 1) / 4, "status": "ok"})
    return pd.DataFrame(rows)


def test_trait_p_values_are_holm_adjusted_over_each_models_traits_and_conditions() -> None:
    rows = trait_deltas(_levels_frame(("m", "m2")), "control")
    for model in ("m", "m2"):
        family = [r for r in rows if r["model"] == model]
        tested = [r for r in family if r["p_value"] is not None]
        assert len(tested) == 2 and all(r["condition"] == "SAC-A" for r in tested)
        assert [r["p_adjusted"] for r in tested] == pytest.approx(list(adjust([r["p_value"] for r in tested], "holm")))
        assert all(r["p_adjusted"] >= r["p_value"] for r in tested)
        assert all(r["p_adjusted"] is None for r in family if r["p_value"] is None)
    a = next(r for r in rows if r["model"] == "m" and r["condition"] == "SAC-A" and r["trait"] == "A")
    assert a["p_value"] < 0.01 and a["p_adjusted"] == pytest.approx(2 * a["p_value"]), "a family of two per model, not four"


@pytest.mark.parametrize(("policy", "mean", "delta"), [("exclude", 2.0, 0.0), ("wrong", 1.5, -0.5)])
def test_the_traits_report_follows_the_runs_error_policy(policy: str, mean: float, delta: float) -> None:
    """The errored SAC-A trial on B-01 (keyed 2 in its other repeat) is left out, or counts as a
    score of 0 (keyed level 1), as the study's `errors` says; every row names the policy."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE runs (run_id VARCHAR, spec_json VARCHAR)")
    con.execute("INSERT INTO runs VALUES ('r', ?)", [json.dumps({"errors": policy})])
    frame = _planted_frame()
    con.register("planted", frame)
    # as a log holds them: each trial with its task's definition
    con.execute("CREATE TABLE trials AS SELECT 'r' AS run_id, *, '{\"source\": \"inventory\"}' AS task_json FROM planted")
    rows = {(r["condition"], r["trait"]): r for r in traits_report(con, "r", "control")}
    b = rows[("SAC-A", "B")]
    assert (b["mean"], b["delta"], b["n"], b["errors"]) == (mean, delta, 2, 1)
    assert {r["errors_policy"] for r in rows.values()} == {policy}
    assert rows[("SAC-A", "A")]["mean"] == 4.5


def test_a_simulated_study_reports_traits_in_run_json(tmp_path: Path) -> None:
    study = {
        "name": "inventory-sim",
        "models": [{"id": "sim/persona", "simulate": {"accuracy": {"control": 1.0, "induced": 1.0}}}],
        "conditions": [{"name": "control"}, {"name": "induced", "stimuli": ["EP02"]}],
        "tasks": [{"task": "inventory/pers16", "n": 32}, {"task": "inventory/mpi120", "n": 10}],
    }
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    traits = result["traits"]
    assert {(r["inventory"], r["trait"]) for r in traits} == {("inventory/pers16", f) for f in load_inventory("pers16").traits} | {
        ("inventory/mpi120", f) for f in "OCEAN"
    }
    assert all(r["mean"] == 5.0 and r["errors"] == 0 for r in traits)  # the simulator answers every item at the trait's pole
    assert all(r["delta"] == 0.0 for r in traits if r["condition"] == "induced")
    assert all(r["errors_policy"] == "wrong" and (r["p_adjusted"] is None) == (r["p_value"] is None) for r in traits)
    assert "traits" not in run_json("run", str(write_study(tmp_path / "t.yaml", {**study, "tasks": [{"task": "ii/sum", "n": 2}]})), "--db", str(tmp_path / "log.duckdb"))
    plain = run_cli("run", str(tmp_path / "s.yaml"), "--db", str(tmp_path / "log.duckdb"))
    assert plain.returncode == 0 and "WARMTH" in plain.stdout
    assert json.loads(run_cli("run", str(tmp_path / "s.yaml"), "--db", str(tmp_path / "log.duckdb"), "--json").stdout)["model_calls"] == 0


def test_sac_and_big_five_conditions_run_on_the_inventories(tmp_path: Path) -> None:
    study = {
        "name": "sac-inventory",
        "models": [{"id": "sim/persona", "simulate": {"default_accuracy": 1.0}}],
        "conditions": [
            {"name": "neutral"},
            {"name": "SAC-warmth-5", "stimuli": [{"id": "SAC/warmth", "level": 5}]},
            {"name": "BIG5-extraversion", "stimuli": [{"id": "BIG5/extraversion", "intensity": 0.9}]},
        ],
        "control": "neutral",
        "tasks": [{"task": "inventory/pers16", "n": 16}, {"task": "inventory/mpi120", "n": 5}],
    }
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result["errors"] == 0 and {r["condition"] for r in result["traits"]} == {"neutral", "SAC-warmth-5", "BIG5-extraversion"}
    assert all(r["control_mean"] == 5.0 and r["delta"] == 0.0 for r in result["traits"] if r["condition"] != "neutral")
    con = connect_reader(tmp_path / "log.duckdb")
    prompts = dict(con.execute("SELECT condition, any_value(messages_json) FROM trials WHERE task = 'inventory/pers16' GROUP BY 1").fetchall())
    assert "The trait WARMTH would be described as" in json.loads(prompts["SAC-warmth-5"])[1]["content"]
    assert json.loads(prompts["BIG5-extraversion"])[0]["content"] != json.loads(prompts["neutral"])[0]["content"]


def _first_prompts(tmp_path: Path, conditions: list[dict], task: str) -> dict[str, str]:
    """The user message of the first item of `task` in every condition (no model is called)."""
    study = {"name": "prompts", "models": [{"id": "sim/persona"}], "conditions": conditions, "tasks": [{"task": task, "n": 16}]}
    trials = expand(load_study(write_study(tmp_path / "s.yaml", study)), "r")
    first = trials[0].item.id
    return {t.condition: t.messages[-1].content for t in trials if t.item.id == first}


@pytest.mark.parametrize("task", ["inventory/pers16", "inventory/mpi120"])
def test_a_prefix_stimulus_goes_before_the_question_not_inside_it(tmp_path: Path, task: str) -> None:
    conditions = [{"name": "control"}, {"name": "sac", "stimuli": [{"id": "SAC/warmth", "level": 5}]}, {"name": "ep", "stimuli": [{"id": "EP02", "placement": "prefix"}]}]
    prompts = _first_prompts(tmp_path, conditions, task)
    control = prompts["control"]
    assert control.startswith("Question:\nGiven a statement of you: \"You ")
    statement_then_instruction = re.compile(r"Given a statement of you: \"You [^\n]*\"\nPlease choose from the following options")
    assert statement_then_instruction.search(control)
    for condition, separator in (("sac", "\n"), ("ep", " ")):
        induced = prompts[condition]
        head, question = induced.split("Question:\n", 1)
        assert head and head.endswith(separator) and "Question:\n" + question == control, condition
        assert statement_then_instruction.search(induced), condition
    assert "The trait WARMTH would be described as" in prompts["sac"].split("Question:")[0]


def test_sac_names_the_trait_of_the_item_being_asked_as_the_authors_code_does(tmp_path: Path) -> None:
    """build_prompt(trait_const, trait, ...) fills {trait} with the probe's own trait: a WARMTH
    induction asks an INTELLECT item as "Traits which are not WARMTH, such as INTELLECT"."""
    study = {"name": "assessed", "models": [{"id": "sim/persona", "simulate": {"default_accuracy": 1.0}}],
             "conditions": [{"name": "control"}, {"name": "sac", "stimuli": [{"id": "SAC/warmth", "level": 5}]},
                            {"name": "pinned", "stimuli": [{"id": "SAC/warmth", "level": 5, "assessed_trait": "anxiety"}]}],
             "tasks": [{"task": "inventory/pers16", "n": 16}]}
    path = write_study(tmp_path / "s.yaml", study)
    warmth = next(t for t in PUBLISHED["sac"]["traits"] if t["trait"] == "WARMTH")
    seen = set()
    for trial in expand(load_study(path), "r"):
        if trial.condition == "control":
            continue
        asked = dict(trial.item.meta)["trait_name"]
        assessed = asked if trial.condition == "sac" else "ANXIETY"
        induction = sac_code_prompt(warmth, level=5, mode="paper_intended", assessed=assessed).split("\n    \n    Task:")[0]
        assert trial.messages[-1].content.startswith(induction + "\nQuestion:\n"), (trial.condition, asked)
        assert f"Traits which are not WARMTH, such as {assessed}," in trial.messages[-1].content
        assert trial.stimuli[0].params["assessed_trait"].upper() == assessed and trial.stimuli[0].text == induction
        seen.add(asked)
    assert seen == set(load_inventory("pers16").traits.values())
    # the log records each trial's stimulus as that trial applied it
    run_json("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    con = connect_reader(tmp_path / "log.duckdb")
    rows = con.execute("SELECT item_id, stimuli_json FROM trials WHERE condition = 'sac'").fetchall()
    names = {row["item_id"]: row["trait_name"] for row in inventory_traits().to_dict("records") if row["task"] == "inventory/pers16"}
    assert len(rows) == 16 and all(json.loads(s)[0]["params"]["assessed_trait"] == names[i] for i, s in rows)


def test_an_item_without_a_trait_keeps_the_target_as_the_assessed_trait() -> None:
    from workbench.stimuli import builtin_library, resolve

    stimulus = resolve(builtin_library(), "SAC/warmth", params={"level": 3})
    plain = stimulus.model_copy(update={"parts": {k: v for k, v in stimulus.parts.items() if not k.startswith("item:")}})
    assert stimulus.parts and stimulus.for_item({}) == plain and stimulus.for_item({"text": "x"}) == plain
    bound = stimulus.for_item({"trait_name": "INTELLECT"})
    assert "such as INTELLECT," in bound.text and "such as WARMTH" not in bound.text and "The trait WARMTH would be described as" in bound.text
    assert bound.params == {"level": 3, "mode": "paper_intended", "assessed_trait": "INTELLECT"}
    assert not any(k.startswith("item:") for k in bound.parts)
    pinned = resolve(builtin_library(), "SAC/warmth", params={"level": 3, "assessed_trait": "anxiety"})
    assert pinned.for_item({"trait_name": "INTELLECT"}) == pinned
