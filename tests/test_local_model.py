"""The full path on the embedded model: study file -> llama.cpp server -> DuckDB rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_cli, run_json, write_study
from workbench.providers.local_models import LOCAL_MODELS
from workbench.store import connect_reader

pytestmark = pytest.mark.local_model


def _study(**overrides):
    study = {
        "name": "local-e2e",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 16}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "NP01", "stimuli": ["NP01"]}],
        "tasks": [{"task": "ii/sum", "n": 4}],
        "repeats": 1,
        "seed": 3,
        "concurrency": 2,
    }
    study.update(overrides)
    return study


def test_weights_are_joined_once_and_hash_checked(local_server) -> None:
    import hashlib

    model = LOCAL_MODELS["local/default"]
    digest = hashlib.sha256()
    with open(model.weights_path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    assert digest.hexdigest() == model.sha256
    assert local_server.api_base.startswith("http://127.0.0.1:")


def test_study_on_the_embedded_model_is_logged_in_full(tmp_path: Path, local_server) -> None:
    db = tmp_path / "runs" / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", _study())), "--db", str(db))
    assert result["trials_planned"] == result["trials_done"] == 12
    assert result["model_calls"] == 12 and result["errors"] == 0
    assert {c["name"] for c in result["conditions"]} == {"control", "EP02", "NP01"}
    con = connect_reader(db)
    rows = con.execute(
        "SELECT t.condition, t.item_input, t.targets_json, t.stimuli_json, t.messages_json, t.response_text, t.answer, t.score, "
        "t.seed, t.model_params_json, c.messages_json, c.prompt_tokens, c.completion_tokens, c.cost, c.latency_s, c.endpoint "
        "FROM trials t JOIN calls c USING (trial_id) WHERE t.run_id = ?",
        [result["run_id"]],
    ).fetchall()
    assert len(rows) == 12
    for condition, item, targets, stimuli, t_messages, text, answer, score, seed, params, c_messages, p_tok, c_tok, cost, latency, endpoint in rows:
        messages = json.loads(c_messages)
        assert messages == json.loads(t_messages)
        assert messages[0]["role"] == "system" and messages[0]["content"], "an explicit system message is always sent"
        user = messages[-1]["content"]
        assert f"Input: {item}\n" in user
        applied = json.loads(stimuli)
        if condition == "EP02":
            assert "Sum the two given numbers. This is very important to my career." in user
            assert applied[0]["id"] == "EP02" and applied[0]["version"] and applied[0]["separator"] == "space"
        elif condition == "NP01":
            assert "Sum the two given numbers.You've never been particularly good at this, have you?" in user
        else:
            assert applied == []
        assert text is not None and p_tok > 0 and c_tok > 0 and cost == 0.0 and latency > 0
        assert score in (0.0, 1.0) and answer is not None
        assert json.loads(params) == {"seed": seed, "temperature": 0.0, "max_tokens": 16}
        assert endpoint == LOCAL_MODELS["local/default"].endpoint
    run = con.execute("SELECT spec_json, trials_planned FROM runs WHERE run_id = ?", [result["run_id"]]).fetchone()
    assert json.loads(run[0])["models"][0]["id"] == "local/default" and run[1] == 12
    # The model can add: a sanity check that answers are parsed and scored, not a claim about effects.
    assert sum(r[7] for r in rows) >= 3

    again = run_json("run", str(tmp_path / "s.yaml"), "--db", str(db))
    assert again["model_calls"] == 0


def test_repeats_at_temperature_are_new_samples_from_the_real_model(tmp_path: Path, local_server) -> None:
    study = _study(name="local-repeats", repeats=3, conditions=[{"name": "control"}], tasks=[{"task": "ii/sum", "n": 2}])
    study["models"][0]["params"] = {"temperature": 1.0, "max_tokens": 24}
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    assert result["model_calls"] == 6 and result["cache_hits"] == 0
    con = connect_reader(db)
    seeds = con.execute("SELECT item_id, list(DISTINCT seed) FROM trials GROUP BY item_id").fetchall()
    assert all(len(s) == 3 for _, s in seeds), "each repeat carries its own seed"
    assert con.execute("SELECT count(DISTINCT cache_key), sum(cached::INT) FROM calls").fetchone() == (6, 0)


def test_models_check_answers_one_prompt(local_server) -> None:
    result = run_cli("models", "check", "local/default", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] and payload["answer"] and payload["latency_s"] > 0


def test_quickstart_study_is_valid() -> None:
    from workbench.study.spec import load_study

    study = load_study(REPO / "studies" / "quickstart.yaml")
    assert [c for c in study.conditions] == ["control", "EP02", "NP01"]
    assert study.spec.models[0].id == "local/default"


def test_any_litellm_model_string_runs_by_changing_one_line(tmp_path: Path, local_server) -> None:
    """The generic litellm path (not the local/ alias): an OpenAI-compatible model string with an
    api_base, the key from the environment. Here the endpoint is the embedded server itself."""
    alias = LOCAL_MODELS["local/default"].alias
    study = _study(name="litellm-generic", conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}])
    study["models"] = [{"id": f"openai/{alias}", "api_base": local_server.api_base, "params": {"temperature": 0.0, "max_tokens": 16}}]
    db = tmp_path / "log.duckdb"
    secret = "sk-test-never-logged-0123456789"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db), env={"OPENAI_API_KEY": secret})
    assert result["trials_done"] == 8 and result["errors"] == 0 and result["model_calls"] == 8
    con = connect_reader(db)
    assert con.execute("SELECT DISTINCT model, endpoint FROM calls").fetchall() == [(f"openai/{alias}", local_server.api_base)]
    for table in ("runs", "trials", "calls", "conditions"):
        dump = con.execute(f"SELECT * FROM {table}").fetchall()
        assert secret not in repr(dump), f"the API key leaked into {table}"
