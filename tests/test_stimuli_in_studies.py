"""Stimuli in study files: any id, parameterised references, sweeps, the multi-agent program,
user stimulus files; bad input named by file, item and field (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, run_json, sim_study, write_study
from workbench.stimuli import builtin_library
from workbench.store import connect_reader
from workbench.study.spec import load_study


def _study(tmp_path: Path, **overrides) -> Path:
    overrides.setdefault("models", [{"id": "sim/any", "params": {"temperature": 0.0}}])
    return write_study(tmp_path / "study.yaml", sim_study(**overrides))


def _rejected(tmp_path: Path, path: Path, *needles: str) -> str:
    db = tmp_path / "runs" / "log.duckdb"
    result = run_cli("run", str(path), "--db", str(db))
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in result.stderr, message
    for needle in needles:
        assert needle in message, message
    assert not (tmp_path / "runs").exists()
    return message


def test_a_study_can_name_any_stimulus_by_id(tmp_path: Path) -> None:
    params = {"sac": {"level": 3}, "big_five_persona": {"intensity": 0.5}}
    conditions = [{"name": "control"}]
    for index, item in enumerate(builtin_library().items()):
        ref = {"id": item.id, **params.get(item.family, {})}
        if item.family == "heart":  # feedback turns belong to a loop; as a suffix a phrase is plain text
            ref["placement"] = "suffix"
        conditions.append({"name": f"c{index}", "stimuli": [ref]})
    study = load_study(_study(tmp_path, conditions=conditions))
    assert len(study.conditions) == len(builtin_library().ids()) + 1
    assert study.condition_specs[-1].solver in ("single_turn", "multi_agent")


def test_parameters_at_the_top_level_of_a_reference(tmp_path: Path) -> None:
    conditions = [
        {"name": "control"},
        {"name": "sac5", "stimuli": [{"id": "SAC/warmth", "level": 5}]},
        {"name": "sac1code", "stimuli": [{"id": "SAC/warmth", "level": 1, "mode": "code_faithful", "placement": "system"}]},
        {"name": "big5", "stimuli": [{"id": "BIG5/openness", "params": {"intensity": 0.25}, "situation": "A job interview."}]},
    ]
    study = load_study(_study(tmp_path, conditions=conditions))
    assert study.conditions["sac5"][0].params == {"level": 5, "mode": "paper_intended", "assessed_trait": "WARMTH"}
    assert study.conditions["sac1code"][0].placement == "system" and "    1: N/A, " in study.conditions["sac1code"][0].text
    assert study.conditions["big5"][0].params == {"intensity": 0.25, "situation": "A job interview."}


def test_rendered_texts_and_params_are_in_every_trial_row(tmp_path: Path) -> None:
    conditions = [{"name": "control"}, {"name": "sac5", "stimuli": [{"id": "SAC/warmth", "level": 5}, "EP02"]}]
    path = _study(tmp_path, conditions=conditions, tasks=[{"task": "ii/sum", "n": 3}])
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(path), "--db", str(db))
    rows = connect_reader(db).execute("SELECT stimuli_json, messages_json FROM trials WHERE condition = 'sac5' AND run_id = ?", [result["run_id"]]).fetchall()
    assert len(rows) == 3
    for stimuli_json, messages_json in rows:
        stimuli = json.loads(stimuli_json)
        assert [(s["id"], s["version"], s["placement"], s["separator"]) for s in stimuli] == [("SAC/warmth", "1", "prefix", "newline"), ("EP02", "1", "suffix", "space")]
        assert stimuli[0]["params"] == {"level": 5, "mode": "paper_intended", "assessed_trait": "WARMTH"}
        user = json.loads(messages_json)[-1]["content"]
        assert user.startswith("Instruction: " + stimuli[0]["text"] + "\nSum the two given numbers. This is very important to my career.\n")


BAD_REFS = {
    "level out of range": ({"id": "SAC/warmth", "level": 6}, "conditions[1].stimuli[0].params.level", "less than or equal to 5"),
    "level grid in a condition": ({"id": "SAC/warmth", "level": [1, 3]}, "params.level", "sweep"),
    "missing level": ({"id": "SAC/warmth"}, "params.level", "needs parameter 'level'"),
    "unknown mode": ({"id": "SAC/warmth", "level": 3, "mode": "fixed"}, "params.mode", "code_faithful"),
    "parameter of a plain stimulus": ({"id": "EP02", "level": 3}, "params.level", "EP02 has no parameter 'level' (parameters: none)"),
    "typo in a reference key": ({"id": "EP02", "placment": "prefix"}, "params.placment", "has no parameter"),
    "given twice": ({"id": "SAC/warmth", "level": 3, "params": {"level": 4}}, "conditions[1].stimuli[0]", "given twice"),
    "intensity out of range": ({"id": "BIG5/openness", "intensity": 1.5}, "params.intensity", "less than or equal to 1"),
    "unknown perspective": ({"id": "MPX/agents", "perspectives": ["martian"]}, "params.perspectives", "unknown perspective 'martian'"),
    "unknown variant": ({"id": "NP01", "variant": "promptbench"}, "conditions[1].stimuli[0].variant", "allowed: paper"),
    "multi-agent as a suffix": ({"id": "MPX/agents", "placement": "suffix"}, "placement", "only be placed as multi_agent"),
    "plain text as multi-agent": ({"id": "EP02", "placement": "multi_agent"}, "placement", "needs a stimulus made for it"),
}


@pytest.mark.parametrize("case", sorted(BAD_REFS))
def test_bad_stimulus_reference_is_rejected_cleanly(tmp_path: Path, case: str) -> None:
    ref, field, hint = BAD_REFS[case]
    path = _study(tmp_path, conditions=[{"name": "control"}, {"name": "x", "stimuli": [ref]}])
    _rejected(tmp_path, path, str(path), field, hint)


def test_the_multi_agent_program_runs_without_naming_a_solver_and_logs_under_one_trial(tmp_path: Path) -> None:
    agents = ["confucian", "islamic", "indigenous"]
    conditions = [{"name": "control"}, {"name": "mas", "stimuli": ["EP02", {"id": "MPX/agents", "perspectives": agents}]}]
    path = _study(tmp_path, conditions=conditions, tasks=[{"task": "ii/sum", "n": 5}])
    assert load_study(path).condition_specs[1].solver == "multi_agent"
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(path), "--db", str(db))
    assert result["trials_done"] == 10 and result["model_calls"] == 5 + 5 * 4
    con = connect_reader(db)
    trials = con.execute("SELECT trial_id, messages_json, response_text, n_calls, details_json FROM trials WHERE condition = 'mas'").fetchall()
    for trial_id, messages_json, response, n_calls, details in trials:
        calls = con.execute("SELECT purpose, messages_json, response_text FROM calls WHERE trial_id = ? ORDER BY call_index", [trial_id]).fetchall()
        assert n_calls == 4 and [c[0] for c in calls] == [f"agent:{a}" for a in agents] + ["synthesis"]
        prompt = json.loads(messages_json)
        assert "This is very important to my career." in prompt[-1]["content"]  # prompt-stage stimuli applied first
        for purpose, sent, _ in calls[:-1]:
            assert json.loads(sent)[1:] == prompt[1:] and json.loads(sent)[0]["content"].startswith(prompt[0]["content"] + "\n")
        synthesis = json.loads(calls[-1][1])[-1]["content"]
        assert all(f"\n{answer}\n" in synthesis for _, _, answer in calls[:-1])
        assert response == calls[-1][2]
        assert json.loads(details) == {"program": "multi_agent", "agents": agents}


def test_a_failing_agent_fails_the_trial_and_stays_counted(tmp_path: Path) -> None:
    study = sim_study(conditions=[{"name": "control"}, {"name": "mas", "stimuli": [{"id": "MPX/agents", "perspectives": ["western", "indic"]}]}],
                      tasks=[{"task": "ii/sum", "n": 4}])
    study["models"] = [{"id": "sim/failing", "simulate": {"error_rate": 1.0}, "max_retries": 0}]
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    mas = next(c for c in result["conditions"] if c["name"] == "mas")
    assert mas["n"] == 4 and mas["errors"] == 4
    errors = connect_reader(tmp_path / "log.duckdb").execute("SELECT DISTINCT error, n_calls FROM trials WHERE condition = 'mas'").fetchall()
    assert len(errors) == 1 and errors[0][0].startswith("agent western: ") and errors[0][1] == 1


PROGRAM_ERRORS = {
    "multi-agent with another solver": (
        [{"name": "mas", "solver": "single_turn", "stimuli": ["MPX/agents"]}], "conditions[1].solver", "runs as solver 'multi_agent'"),
    "two multi-agent stimuli": ([{"name": "mas", "stimuli": ["MPX/agents", "MPX/agents"]}], "conditions[1].stimuli", "at most one"),
    "feedback outside a loop": ([{"name": "fb", "stimuli": ["HEART/anger/1"]}], "conditions[1].solver", "name the solver that runs it"),
}


@pytest.mark.parametrize("case", sorted(PROGRAM_ERRORS))
def test_program_placements_need_their_program(tmp_path: Path, case: str) -> None:
    extra, field, hint = PROGRAM_ERRORS[case]
    _rejected(tmp_path, _study(tmp_path, conditions=[{"name": "control"}, *extra]), field, hint)


# -- sweeps ------------------------------------------------------------------------------------

def test_sweep_over_a_family_and_placements_gives_predictably_named_conditions(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, conditions=[], sweep={"families": ["emotionprompt"], "placements": ["suffix", "prefix"]}))
    names = list(study.conditions)
    assert len(names) == 23 and names[0] == "control" and study.control_name == "control"
    assert names[1:] == [f"EP{n:02d}.{p}" for n in range(1, 12) for p in ("suffix", "prefix")]
    assert [(s.id, s.placement, s.separator) for s in study.conditions["EP07.prefix"]] == [("EP07", "prefix", "space")]
    assert study.conditions["control"] == ()


def test_sweep_over_parameter_grids_ids_separators_and_variants(tmp_path: Path) -> None:
    sweeps = [
        {"stimuli": ["SAC/warmth", "SAC/anxiety"], "params": {"level": [1, 3, 5], "mode": ["code_faithful", "paper_intended"]}},
        {"stimuli": ["EP03"], "separators": ["none", "newline"], "variants": ["paper", "promptbench"]},
        {"stimuli": ["BIG5/neuroticism"], "params": {"intensity": [0.0, 0.5, 1.0]}, "placements": ["system"]},
    ]
    study = load_study(_study(tmp_path, conditions=[{"name": "baseline"}], sweep=sweeps, control="baseline"))
    names = list(study.conditions)
    assert names[:2] == ["baseline", "control"] and len(names) == 2 + 12 + 4 + 3
    assert "SAC-warmth.prefix.level=3.mode=code_faithful" in names and "SAC-anxiety.prefix.level=5.mode=paper_intended" in names
    assert "EP03.suffix.newline.promptbench" in names and "BIG5-neuroticism.system.intensity=0.5" in names
    applied = study.conditions["EP03.suffix.newline.promptbench"][0]
    assert (applied.text, applied.separator, applied.variant) == ("You’d better be sure.", "newline", "promptbench")
    assert study.conditions["SAC-warmth.prefix.level=3.mode=code_faithful"][0].params["level"] == 3
    assert study.control_name == "baseline"


def test_a_sweep_runs_and_logs_every_condition(tmp_path: Path) -> None:
    path = _study(tmp_path, conditions=[], sweep={"stimuli": ["NP01", "NP04"], "placements": ["suffix", "prefix"]}, tasks=[{"task": "ii/sum", "n": 2}])
    result = run_json("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert [c["name"] for c in result["conditions"]] == ["control", "NP01.suffix", "NP01.prefix", "NP04.suffix", "NP04.prefix"]
    assert result["trials_done"] == 10


SWEEP_ERRORS = {
    "unknown family": ({"families": ["emotionprompts"]}, "sweep.families[0]", "unknown stimulus family 'emotionprompts'"),
    "unknown id": ({"stimuli": ["EP12"]}, "sweep.stimuli[0]", "unknown stimulus 'EP12'"),
    "nothing to sweep": ({"placements": ["suffix"]}, "sweep", "needs `stimuli`"),
    "unknown key": ({"stimuli": ["EP01"], "placement": ["suffix"]}, "sweep", "allowed: stimuli, families"),
    "name taken": ({"stimuli": ["EP01"]}, "sweep", "already taken: EP01.suffix"),
    "solver in a sweep": ({"stimuli": ["EP01"], "solver": "heart"}, "sweep", "unknown key 'solver' (allowed: stimuli, families, placements, separators, variants, params, control)"),
    "bad parameter": ({"stimuli": ["SAC/warmth"], "params": {"level": [3, 7]}}, "sweep (condition SAC-warmth.prefix.level=7).stimuli[0].params.level", "less than"),
}


@pytest.mark.parametrize("case", sorted(SWEEP_ERRORS))
def test_bad_sweep_is_rejected_cleanly(tmp_path: Path, case: str) -> None:
    sweep, field, hint = SWEEP_ERRORS[case]
    path = _study(tmp_path, conditions=[{"name": "control"}, {"name": "EP01.suffix", "stimuli": ["EP01"]}], sweep=sweep)
    _rejected(tmp_path, path, str(path), field, hint)


# -- user stimulus files -----------------------------------------------------------------------

def _user_file(tmp_path: Path, items: list, **family) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"family": "mine", "version": "2", "authored": True, **family, "items": items}, sort_keys=False))
    return path


def test_a_user_stimulus_file_is_used_like_the_built_in_ones(tmp_path: Path) -> None:
    _user_file(tmp_path, [{"id": "MY/calm", "text": "Take a deep breath.", "valence": "positive"}])
    conditions = [{"name": "control"}, {"name": "calm", "stimuli": ["MY/calm"]}]
    path = _study(tmp_path, conditions=conditions, stimulus_files=["mine.yaml"], tasks=[{"task": "ii/sum", "n": 2}])
    db = tmp_path / "log.duckdb"
    run_json("run", str(path), "--db", str(db))
    stimuli = json.loads(connect_reader(db).execute("SELECT stimuli_json FROM trials WHERE condition = 'calm' LIMIT 1").fetchone()[0])
    assert stimuli[0] | {"parts": {}} == {
        "id": "MY/calm", "family": "mine", "version": "2", "text": "Take a deep breath.", "placement": "suffix", "separator": "space",
        "variant": None, "params": {}, "parts": {},
    }


BAD_ITEMS = {
    "missing text": ([{"id": "MY/a"}], {}, "items[0] (MY/a).text", "is required"),
    "unknown field": ([{"id": "MY/a", "text": "x"}, {"id": "MY/b", "txt": "y"}], {}, "items[1] (MY/b).txt", "unknown field 'txt'"),
    "bad separator": ([{"id": "MY/a", "text": "x", "separator": "tab"}], {}, "items[0] (MY/a).separator", "'none', 'space' or 'newline'"),
    "no citation, not authored": ([{"id": "MY/a", "text": "x"}], {"authored": False}, "items[0] (MY/a)", "needs a `citation`"),
    "unknown renderer": ([{"id": "MY/a", "text": "x", "renderer": "jinja"}], {}, "items[0] (MY/a).renderer", "unknown renderer 'jinja'"),
    "duplicate of a built-in id": ([{"id": "EP02", "text": "x"}], {}, "items", "'EP02' is already defined"),
    "heart phrase with an unknown emotion": (
        [{"id": "MY/a", "text": "x", "emotion": "boredom", "asserts_error": False}], {"family": "heart", "replaces": True, "defaults": {"renderer": "feedback_phrase"}},
        "items[0] (MY/a).emotion", "unknown emotion 'boredom'",
    ),
    "sac item without the anchors of a level": (
        [{"id": "MY/a", "trait": "CALM", "factor": "Z", "naive_prompt": "You are calm.", "p2_description": "Calm.", "adjectives": {1: ["a"], 2: ["b"]}}],
        {"family": "sac", "replaces": True, "defaults": {"renderer": "sac_induced"}}, "items[0] (MY/a).adjectives", "missing [3, 4, 5]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_a_bad_item_in_a_user_file_names_the_file_the_item_and_the_field(tmp_path: Path, case: str) -> None:
    items, family, field, hint = BAD_ITEMS[case]
    stimulus_file = _user_file(tmp_path, items, **family)
    path = _study(tmp_path, stimulus_files=["mine.yaml"])
    _rejected(tmp_path, path, str(stimulus_file), field, hint)
    listed = run_cli("stimuli", "list", "--file", str(stimulus_file))
    assert listed.returncode == 2 and str(stimulus_file) in listed.stderr and field in listed.stderr and hint in listed.stderr


def test_a_user_file_replaces_the_heart_phrase_bank(tmp_path: Path) -> None:
    from workbench.stimuli import feedback_phrases as heart

    path = _user_file(tmp_path, [{"id": "LAB/joy/1", "emotion": "happiness", "asserts_error": False, "text": "Lovely effort!"},
                                 {"id": "LAB/anger/1", "emotion": "anger", "asserts_error": True, "text": "Wrong. Again."}],
                      family="heart", replaces=True, defaults={"renderer": "feedback_phrase", "placement": "feedback"})
    library = builtin_library().with_files([path])
    assert [i.id for i in heart.phrases(library=library)] == ["LAB/anger/1", "LAB/joy/1"]
    assert [i.id for i in heart.phrases(tone="encouraging", library=library)] == ["LAB/joy/1"]
    assert heart.feedback_stimulus("LAB/anger/1", library=library).parts["feedback_template"] == heart.feedback_templates()["incorrect"]
    assert "HEART/anger/1" not in library and "HEART/anger/1" in builtin_library()
