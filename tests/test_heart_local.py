"""HEART on the embedded model: the ready study `studies/heart.yaml` (HEART with and without an
oracle, the neutral-feedback and self-refine baselines, the single answer) run small through the
CLI, and the verifier-free gold-isolation check on a model that never reads the gold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_json, write_study
from test_heart_gold import check_verifier_free, probe, sealed_study, verifier_free_conditions  # noqa: F401  (probe is a fixture)
from workbench.providers.local_models import LOCAL_MODELS
from workbench.reports.rounds import round_curve
from workbench.run.scheduler import run_study
from workbench.stimuli import builtin_library, feedback_phrases as heart
from workbench.store import connect_reader

pytestmark = pytest.mark.local_model

ROUNDS = 2
N = 4


def test_heart_study_runs_on_the_embedded_model_in_both_modes_with_its_baselines(tmp_path: Path, local_server) -> None:
    study = yaml.safe_load((REPO / "studies" / "heart.yaml").read_text())
    study["tasks"][0]["n"] = N
    study["models"][0]["params"]["max_tokens"] = 12
    for condition in study["conditions"]:
        if condition.get("solver") == "heart":
            condition["solver_params"]["rounds"] = ROUNDS
    names = [c["name"] for c in study["conditions"]]
    assert {"heart_oracle", "heart_vf", "neutral_oracle", "neutral_vf", "control"} <= set(names)
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    assert result["trials_done"] == result["trials_planned"] == N * len(names) and result["errors"] == 0
    rows = {c["name"]: c for c in result["conditions"]}
    for name, row in rows.items():
        assert row["consumes_gold"] is name.endswith("_oracle")
        if name == "control":
            assert row["mean_rounds"] is None
        else:
            assert 0 <= row["mean_rounds"] <= ROUNDS and row["accuracy"] is not None
            assert row["mean_rounds"] == ROUNDS or name.endswith("_oracle")
    con = connect_reader(db)
    run_id = result["run_id"]
    control = dict(con.execute("SELECT item_id, messages_json FROM trials WHERE run_id = ? AND condition = 'control'", [run_id]).fetchall())
    neutral = {i.id for i in heart.neutral_phrases()}
    emotional = {i.id for i in heart.phrases()} - neutral
    endpoint = LOCAL_MODELS["local/default"].endpoint
    for name in names[1:]:
        trials = con.execute(
            "SELECT trial_id, item_id, details_json, response_text FROM trials WHERE run_id = ? AND condition = ?", [run_id, name]
        ).fetchall()
        for trial_id, item_id, details_json, text in trials:
            details = json.loads(details_json)
            rounds = con.execute(
                "SELECT r.round, r.phrase_id, r.score, r.verdict, r.messages_json, c.messages_json, c.endpoint, r.response_text, c.response_text "
                "FROM rounds r JOIN calls c ON c.call_id = r.call_id WHERE r.trial_id = ? ORDER BY r.round",
                [trial_id],
            ).fetchall()
            assert [r[0] for r in rounds] == list(range(details["rounds_used"] + 1))
            assert rounds[0][4] == control[item_id], "round 0 is the control's prompt: the conditions stay paired"
            for _, phrase, _, _, sent, called, at, answer, called_answer in rounds:
                assert sent == called and at == endpoint and answer == called_answer and answer is not None
            phrases = {r[1] for r in rounds[1:]}
            assert phrases <= ({None} if name.startswith("self_refine") else neutral if name.startswith("neutral") else emotional)
            claims = dict(con.execute("SELECT phrase_id, asserts_error FROM rounds WHERE trial_id = ? AND phrase_id IS NOT NULL", [trial_id]).fetchall())
            assert claims == {p: heart.asserts_error(builtin_library().get(p)) for p in phrases if p}
            if name.endswith("_vf"):
                assert not any(claims.values()), "without a verifier no phrase claims an error"
            scores = [r[2] for r in rounds]
            if name.endswith("_oracle"):
                assert all(s == 0.0 for s in scores[:-1]) and [r[3] for r in rounds] == ["correct" if s == 1.0 else "incorrect" for s in scores]
                assert details["stop_reason"] == ("verified_correct" if scores[-1] == 1.0 else "budget")
            else:
                assert len(rounds) == ROUNDS + 1 and all(r[3] is None for r in rounds)
                synthesis = con.execute("SELECT response_text FROM calls WHERE trial_id = ? AND purpose = 'synthesis'", [trial_id]).fetchone()
                assert synthesis[0] == text
    curve = round_curve(con, run_id)
    con.close()
    for name in ("heart_oracle", "neutral_oracle"):
        passes = [p.pass_at for p in curve if p.condition == name and p.step == "round"]
        assert len(passes) == ROUNDS + 1 and passes == sorted(passes)
    steps = {(n, t) for n in names[1:] for t in range(ROUNDS + 1)} | {(n, None) for n in names[1:]}
    assert {(p["condition"], p["round"]) for p in result["rounds"]} == steps, "every round, and the final step as a row of its own"
    finals = {p["condition"]: p for p in result["rounds"] if p["step"] == "final"}
    assert finals["heart_vf"]["strategy"] == "synthesis" and finals["heart_oracle"]["strategy"] == "oracle"
    assert all(finals[n]["accuracy"] == pytest.approx(rows[n]["accuracy"]) for n in names[1:])


def test_verifier_free_mode_never_reads_the_gold_on_the_embedded_model(tmp_path: Path, local_server, probe: None) -> None:
    model = {"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 12}}
    conditions = [c for c in verifier_free_conditions(rounds=1) if c["name"] in ("self_verify", "synthesis")]
    study = sealed_study(tmp_path / "s.yaml", conditions, model, n=2)
    summary = run_study(study, tmp_path / "log.duckdb", use_cache=False)
    check_verifier_free(tmp_path / "log.duckdb", summary.run_id, model_reads_gold=False)
