"""Every kind of bad study file: one clear line naming file and field, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import run_cli, sim_study, write_study


def _bad(**changes):
    study = sim_study()
    for key, value in changes.items():
        if value is _DROP:
            study.pop(key)
        else:
            study[key] = value
    return study


_DROP = object()

CASES = {
    "unknown top-level key": (_bad(budget=3), "budget", "allowed:"),
    "unknown nested key": (
        _bad(models=[{"id": "sim/x", "temprature": 0.1}]),
        "models[0]",
        "allowed: id, params",
    ),
    "wrong type": (_bad(repeats="three"), "repeats", "integer"),
    "negative count": (_bad(tasks=[{"task": "ii/sum", "n": 0}]), "tasks[0].n", "a whole number of at least 1, or `all`"),
    "unknown stimulus": (
        _bad(conditions=[{"name": "control"}, {"name": "x", "stimuli": ["EP99"]}]),
        "conditions[1].stimuli[0]",
        "unknown stimulus 'EP99'",
    ),
    "unknown stimulus, nothing close": (
        _bad(conditions=[{"name": "control"}, {"name": "x", "stimuli": ["qqqqqq"]}]),
        "conditions[1].stimuli[0]",
        "(families: big_five_persona, emotionprompt",
    ),
    "unknown task": (_bad(tasks=[{"task": "ii/summ", "n": 3}]), "tasks[0].task", "did you mean ii/sum"),
    "missing field": (_bad(models=_DROP), "models", "is required"),
    "duplicate condition": (_bad(conditions=[{"name": "a"}, {"name": "a"}]), "(top level)", "unique"),
    "secret in params": (
        _bad(models=[{"id": "openai/gpt-4o-mini", "params": {"api_key": "sk-123"}}]),
        "models[0].params",
        "environment",
    ),
    "secret in nested params": (
        _bad(models=[{"id": "openai/gpt-4o-mini", "params": {"max_tokens": 8, "extra_headers": {"Authorization": "Bearer sk-123"}}}]),
        "models[0].params.extra_headers.Authorization",
        "must come from the environment",
    ),
    "secret in a params list": (
        _bad(models=[{"id": "openai/gpt-4o-mini", "params": {"extra_body": [{"ACCESS_TOKEN": "t-123"}]}}]),
        "models[0].params",
        "extra_body[0].ACCESS_TOKEN",
    ),
    "credentials in api_base": (
        _bad(models=[{"id": "openai/x", "api_base": "http://user:pw@127.0.0.1:8000/v1"}]),
        "models[0].api_base",
        "credentials in the URL",
    ),
    "key in an api_base query": (
        _bad(models=[{"id": "openai/x", "api_base": "http://127.0.0.1:8000/v1?api-key=abc"}]),
        "models[0].api_base",
        "credentials in the URL",
    ),
    "unknown placement": (
        _bad(conditions=[{"name": "control"}, {"name": "x", "stimuli": [{"id": "EP02", "placement": "middle"}]}]),
        "conditions[1].stimuli[0].placement",
        "unknown placement 'middle'",
    ),
    "bad separator": (
        _bad(conditions=[{"name": "control"}, {"name": "x", "stimuli": [{"id": "EP02", "separator": "tab"}]}]),
        "conditions[1].stimuli[0].separator",
        "'none', 'space' or 'newline'",
    ),
    "unknown solver": (
        _bad(conditions=[{"name": "control", "solver": "magic"}]),
        "conditions[0].solver",
        "unknown solver 'magic'",
    ),
    "simulated accuracy for unknown condition": (
        _bad(models=[{"id": "sim/x", "simulate": {"accuracy": {"treatment": 0.9}}}]),
        "models[0].simulate.accuracy",
        "unknown condition 'treatment'",
    ),
    "simulate on a real model": (
        _bad(models=[{"id": "openai/gpt-4o-mini", "simulate": {"default_accuracy": 0.5}}]),
        "models[0]",
        "only for sim/",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_study_is_rejected_cleanly(tmp_path: Path, case: str) -> None:
    study, field, hint = CASES[case]
    path = write_study(tmp_path / "study.yaml", study)
    db = tmp_path / "runs" / "log.duckdb"
    result = run_cli("run", str(path), "--db", str(db))
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in result.stderr
    assert str(path) in message and field in message and hint in message, message
    assert not (tmp_path / "runs").exists(), "a rejected study must write nothing"


def test_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmodels: [\n  - id: sim/x\n")
    result = run_cli("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2
    assert str(path) in result.stderr and "line" in result.stderr and "not valid YAML" in result.stderr
    assert not (tmp_path / "log.duckdb").exists()


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    result = run_cli("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and "must be a mapping" in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("run", str(tmp_path / "nope.yaml"), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr and "cannot read" in result.stderr


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    result = run_cli("run", str(path), "--db", str(tmp_path / "log.duckdb"), cwd=tmp_path)
    assert result.returncode == 2
    assert not (tmp_path / "pwned").exists()
