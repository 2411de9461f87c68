"""Bad HEART configurations fail when the study loads: the file, the field and what is allowed,
exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_study
from workbench.core.errors import UserError
from workbench.study.spec import load_study


def _study(params: dict[str, Any], **condition: Any) -> dict[str, Any]:
    return {
        "name": "bad-heart",
        "models": [{"id": "sim/x"}],
        "conditions": [{"name": "control"}, {"name": "h", "solver": "heart", "solver_params": params, **condition}],
        "tasks": [{"task": "ii/sum", "n": 2}],
    }


CASES = {
    "no mode": ({"rounds": 2}, "solver_params.mode", "is required (parameters: rounds, mode, feedback"),
    "no rounds": ({"mode": "oracle"}, "solver_params.rounds", "is required"),
    "zero rounds": ({"rounds": 0, "mode": "oracle"}, "solver_params.rounds", "greater than or equal to 1"),
    "unknown mode": ({"rounds": 2, "mode": "psychic"}, "solver_params.mode", "'oracle' or 'verifier_free'"),
    "unknown key": ({"rounds": 2, "mode": "oracle", "colour": 1}, "solver_params.colour", "allowed: rounds, mode, feedback, schedule, history, template, final"),
    "final under the oracle": ({"rounds": 2, "mode": "oracle", "final": "majority"}, "solver_params.final", "applies in verifier_free mode"),
    "verifier-free without final": ({"rounds": 2, "mode": "verifier_free"}, "solver_params.final", "allowed: last, majority, self_verify, synthesis"),
    "verifier-free asks for the oracle": ({"rounds": 2, "mode": "verifier_free", "final": "oracle"}, "solver_params.final", "allowed: last, majority, self_verify, synthesis"),
    "unknown feedback": ({"rounds": 2, "mode": "oracle", "feedback": "angry"}, "solver_params.feedback", "known: emotional, neutral, self_refine"),
    "unknown schedule": ({"rounds": 2, "mode": "oracle", "schedule": "wavy"}, "solver_params.schedule.name", "known: alternating, random, sequence, static"),
    "static without emotion": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "static"}}, "solver_params.schedule.emotion", "is required (parameters: name, emotion)"),
    "unknown emotion": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "static", "emotion": "joy"}}, "solver_params.schedule.emotion", "emotions: happiness, surprise, anger"),
    "neutral as an emotion": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "random", "emotions": ["neutral"]}}, "solver_params.schedule.emotions", "belong to `feedback: neutral`"),
    "unknown tone": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "alternating", "tones": ["calm"]}}, "solver_params.schedule.tones", "tones: encouraging, critical"),
    "unknown phrase": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "sequence", "steps": ["HEART/anger/99"]}}, "solver_params.schedule.steps", "not a phrase of an emotion"),
    "unknown step": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "sequence", "steps": ["anger", "joy"]}}, "solver_params.schedule.steps",
                     "'joy' is not a phrase of an emotion in the heart family nor an emotion (emotions: happiness, surprise, anger, disgust, fear, sadness; phrase ids: HEART/anger/1"),
    "step named as the wrong kind": ({"rounds": 2, "mode": "oracle", "schedule": {"name": "sequence", "steps": [{"emotion": "HEART/anger/1"}]}},
                                     "solver_params.schedule.steps", "'HEART/anger/1' is not a phrase of an emotion"),
    "schedule for neutral": ({"rounds": 2, "mode": "oracle", "feedback": "neutral", "schedule": "static"}, "solver_params.schedule", "applies to emotional feedback"),
    "unknown template": ({"rounds": 2, "mode": "oracle", "template": "nope"}, "solver_params.template", "named templates: incorrect, review"),
    "unknown history": ({"rounds": 2, "mode": "oracle", "history": "some"}, "solver_params.history", "'full' or 'last'"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_heart_configuration_names_the_field(tmp_path: Path, case: str) -> None:
    params, field, needle = CASES[case]
    path = write_study(tmp_path / "s.yaml", _study(params))
    with pytest.raises(UserError) as caught:
        load_study(path)
    assert caught.value.file == str(path) and caught.value.field == f"conditions[1].{field}", str(caught.value)
    assert needle in caught.value.detail, caught.value.detail


def test_phrases_listed_in_a_heart_condition_are_refused(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", _study({"rounds": 2, "mode": "oracle"}, stimuli=["HEART/anger/1"]))
    with pytest.raises(UserError) as caught:
        load_study(path)
    assert caught.value.field == "conditions[1].stimuli" and "draws them by its schedule" in caught.value.detail


def test_parameters_for_a_solver_that_takes_none_are_refused(tmp_path: Path) -> None:
    study = _study({})
    study["conditions"][1] = {"name": "h", "solver_params": {"rounds": 2}}
    with pytest.raises(UserError) as caught:
        load_study(write_study(tmp_path / "s.yaml", study))
    assert caught.value.field == "conditions[1].solver_params" and "'single_turn' takes no parameters" in caught.value.detail


def test_the_cli_exits_2_without_a_traceback_and_writes_nothing(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", _study({"rounds": 2, "mode": "verifier_free", "final": "vote"}))
    result = run_cli("run", str(path), "--db", str(tmp_path / "runs" / "log.duckdb"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}: conditions[1].solver_params.final: unknown final-answer strategy 'vote'" in " ".join(result.stderr.split())
    assert not (tmp_path / "runs").exists()
