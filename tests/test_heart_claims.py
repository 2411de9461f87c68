"""HEART's phrases say whether they assert an error, and a loop without a verifier does not claim
errors it cannot know: verifier-free conditions draw phrases that claim none (unless they choose
otherwise), the neutral baseline is matched on the tag, each round logs it; and the per-round
output shows the final step (synthesis, majority, self-verified) as a row of its own."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import run_cli, run_json, write_study
from workbench.core.errors import UserError
from workbench.reports.rounds import round_curve
from workbench.run.scheduler import run_study
from workbench.stimuli import builtin_library, feedback_phrases as heart
from workbench.store import compact, connect_reader, query
from workbench.study.spec import load_study

T = 3


def _loop(name: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "solver": "heart", "solver_params": {"rounds": T, **params}}


def _study(conditions: list[dict[str, Any]], n: int = 8, **extra: Any) -> dict[str, Any]:
    return {
        "name": "heart-claims",
        "models": [{"id": "sim/heart", "max_retries": 0, "simulate": {"default_accuracy": 0.4}}],
        "conditions": [{"name": "control"}, *conditions],
        "tasks": [{"task": "math/word_problems", "n": n}],
        "seed": 3,
        **extra,
    }


def _heart_file(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"family": "heart", "version": "1", "authored": True, "replaces": True,
                                "defaults": {"renderer": "feedback_phrase", "placement": "feedback"}, "items": items}))
    return path


def test_every_phrase_is_tagged_and_every_emotion_keeps_five_that_claim_no_error() -> None:
    labels = [*heart.emotions(), "neutral"]
    tags = Counter((heart.emotion_of(item), heart.asserts_error(item)) for item in heart.phrases())
    assert sorted(tags) == sorted((label, claims) for label in labels for claims in (False, True))
    assert all(count >= 5 for count in tags.values()), tags
    assert all(item.authored for item in heart.phrases()), "the phrases are the workbench's own, labelled so"
    # the phrases that say so in words are tagged so
    said = {item.id for item in heart.phrases() if any(w in item.text.lower() for w in ("wrong", "mistake", "error", "close", "missed"))}
    assert said and all(heart.asserts_error(builtin_library().get(i)) for i in said)


def test_a_user_phrase_without_the_tag_is_refused_when_the_file_loads(tmp_path: Path) -> None:
    _heart_file(tmp_path / "mine.yaml", [{"id": "LAB/joy", "emotion": "happiness", "text": "Lovely!"}])
    path = write_study(tmp_path / "s.yaml", _study([_loop("h", mode="oracle")], stimulus_files=["mine.yaml"]))
    with pytest.raises(UserError) as caught:
        load_study(path)
    assert caught.value.file == str(tmp_path / "mine.yaml") and caught.value.field == "items[0] (LAB/joy).asserts_error"
    assert "is required" in caught.value.detail
    result = run_cli("run", str(path), "--db", str(tmp_path / "runs" / "log.duckdb"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "asserts_error" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_verifier_free_loops_claim_no_error_and_the_neutral_baseline_is_matched(tmp_path: Path) -> None:
    conditions = [
        _loop("heart_vf", mode="verifier_free", final="last"),
        _loop("neutral_vf", mode="verifier_free", final="last", feedback="neutral"),
        _loop("heart_vf_claims", mode="verifier_free", final="last", phrases="error_claim"),
        _loop("neutral_vf_claims", mode="verifier_free", final="last", feedback="neutral", phrases="error_claim"),
        _loop("heart_vf_any", mode="verifier_free", final="last", phrases="any"),
        _loop("heart_oracle", mode="oracle"),
        _loop("refine_vf", mode="verifier_free", final="last", feedback="self_refine"),
    ]
    db = tmp_path / "log.duckdb"
    run_id = run_study(load_study(write_study(tmp_path / "s.yaml", _study(conditions))), db).run_id
    tags = {item.id: heart.asserts_error(item) for item in heart.phrases()}
    plans = {r["condition"]: json.loads(r["solver_params_json"]) for r in query(db, "SELECT * FROM conditions WHERE run_id = ?", [run_id])}
    expected = {"heart_vf": "no_error_claim", "neutral_vf": "no_error_claim", "heart_vf_claims": "error_claim", "neutral_vf_claims": "error_claim",
                "heart_vf_any": "any", "heart_oracle": "any", "refine_vf": "no_error_claim"}
    for name, choice in expected.items():
        plan = plans[name]
        assert plan["phrases"] == choice, "the choice is logged in the plan"
        bank = {p for ids in plan["bank"].values() for p in ids}
        assert plan["asserts_error"] == {p: tags[p] for p in bank}
        wanted = {"no_error_claim": {False}, "error_claim": {True}, "any": {False, True}}[choice]
        assert {tags[p] for p in bank} == (set() if name == "refine_vf" else wanted)
        if "neutral" in name:
            assert {heart.emotion_of(builtin_library().get(p)) for p in bank} == {"neutral"} and len(bank) == 5
    rounds = query(db, "SELECT condition, round, phrase_id, asserts_error FROM rounds WHERE run_id = ?", [run_id])
    seen: dict[str, set[bool]] = {}
    for r in rounds:
        if r["phrase_id"] is None:
            assert r["asserts_error"] is None, "round 0 and self-refine rounds carry no phrase"
            continue
        assert r["asserts_error"] is tags[r["phrase_id"]], "each round logs its phrase's tag"
        seen.setdefault(r["condition"], set()).add(r["asserts_error"])
    assert seen["heart_vf"] == seen["neutral_vf"] == {False} and seen["heart_vf_claims"] == seen["neutral_vf_claims"] == {True}
    assert seen["heart_vf_any"] == {False, True}


BAD = {
    "a named phrase that claims an error": (
        {"mode": "verifier_free", "final": "last", "schedule": {"name": "sequence", "steps": ["anger", "HEART/anger/1"]}},
        "solver_params.schedule.steps", "HEART/anger/1 is tagged asserts_error: true, and this condition draws phrases: no_error_claim",
    ),
    "an unknown choice": ({"mode": "verifier_free", "final": "last", "phrases": "polite"}, "solver_params.phrases", "'no_error_claim', 'error_claim' or 'any'"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_choice_the_phrases_cannot_serve_fails_when_the_study_loads(tmp_path: Path, case: str) -> None:
    params, field, needle = BAD[case]
    path = write_study(tmp_path / "s.yaml", _study([_loop("h", **params)]))
    with pytest.raises(UserError) as caught:
        load_study(path)
    assert caught.value.field == f"conditions[1].{field}" and needle in caught.value.detail, str(caught.value)
    # the same phrase is fine where the study chooses it
    if case.startswith("a named"):
        load_study(write_study(tmp_path / "any.yaml", _study([_loop("h", **params, phrases="any")])))


def test_an_emotion_with_only_error_claims_cannot_run_without_a_verifier(tmp_path: Path) -> None:
    _heart_file(tmp_path / "mine.yaml", [{"id": "LAB/joy", "emotion": "happiness", "asserts_error": False, "text": "Lovely!"},
                                         {"id": "LAB/mad", "emotion": "anger", "asserts_error": True, "text": "Wrong again."}])
    study = _study([_loop("h", mode="verifier_free", final="last")], stimulus_files=["mine.yaml"])
    with pytest.raises(UserError) as caught:
        load_study(write_study(tmp_path / "s.yaml", study))
    assert caught.value.field == "conditions[1].solver_params.phrases" and "no anger phrase of the heart family fits phrases: no_error_claim" in caught.value.detail
    oracle = _study([_loop("h", mode="oracle")], stimulus_files=["mine.yaml"])
    assert load_study(write_study(tmp_path / "o.yaml", oracle)).condition_specs[1].solver_params["phrases"] == "any"


def test_a_log_written_before_the_tag_gains_the_column_on_compaction(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    run_id = run_study(load_study(write_study(tmp_path / "s.yaml", _study([_loop("h", mode="oracle")], n=2))), db).run_id
    con = duckdb.connect(str(db))  # make it a version-3 log: no asserts_error, migration 4 not applied
    con.execute("ALTER TABLE rounds DROP COLUMN asserts_error")
    con.execute("DELETE FROM schema_migrations WHERE version = 4")
    con.close()
    assert query(db, "SELECT count(*) AS n FROM rounds WHERE asserts_error IS NOT NULL")[0]["n"] == 0, "read as it is: NULL"
    run_study(load_study(write_study(tmp_path / "t.yaml", _study([_loop("h", mode="oracle")], n=3))), db)  # a new run compacts
    raw = duckdb.connect(str(db), read_only=True)
    assert (4,) in raw.execute("SELECT version FROM schema_migrations").fetchall()
    old, new = raw.execute(
        "SELECT count(*) FILTER (WHERE run_id = ? AND phrase_id IS NOT NULL AND asserts_error IS NULL), "
        "count(*) FILTER (WHERE run_id <> ? AND phrase_id IS NOT NULL AND asserts_error IS NOT NULL) FROM rounds", [run_id, run_id]
    ).fetchone()
    raw.close()
    assert old >= 1 and new >= 1
    assert compact(db) is False


# -- the final step as a row of its own -----------------------------------------------------------

@pytest.mark.slow  # four CLI subprocesses
def test_the_final_step_is_a_row_of_its_own_in_every_per_round_output(tmp_path: Path) -> None:
    conditions = [_loop("majority", mode="verifier_free", final="majority"), _loop("synthesis", mode="verifier_free", final="synthesis"),
                  _loop("verified", mode="verifier_free", final="self_verify")]
    path = write_study(tmp_path / "s.yaml", _study(conditions, n=20, concurrency=4))
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(path), "--db", str(db))
    accuracy = {c["name"]: c["accuracy"] for c in result["conditions"]}
    strategies = {"majority": "majority", "synthesis": "synthesis", "verified": "self_verify"}
    con = connect_reader(db)
    curve = round_curve(con, result["run_id"])
    tokens = dict(con.execute("SELECT condition, avg(prompt_tokens + completion_tokens) FROM trials GROUP BY condition").fetchall())
    con.close()
    for name, strategy in strategies.items():
        rows = [p for p in curve if p.condition == name]
        *steps, final = rows
        assert [p.step for p in steps] == ["round"] * (T + 1) and [p.round for p in steps] == list(range(T + 1))
        assert (final.step, final.round, final.strategy) == ("final", None, strategy)
        assert final.accuracy == pytest.approx(accuracy[name]) and final.mean_tokens == pytest.approx(tokens[name])
        assert final.pass_at >= max(p.pass_at for p in steps) and final.n == steps[0].n
    assert next(p for p in curve if p.condition == "synthesis" and p.step == "final").mean_tokens > \
        next(p for p in curve if p.condition == "synthesis" and p.round == T).mean_tokens, "the synthesis call's tokens count in the final step"
    assert [p for p in curve if p.condition == "control"][0].step == "round"
    json_finals = {p["condition"]: p for p in result["rounds"] if p["step"] == "final"}
    assert set(json_finals) == set(strategies) and {p["strategy"] for p in json_finals.values()} == set(strategies.values())
    compared = run_json("compare", "--db", str(db))
    assert [p for p in compared["rounds"] if p["step"] == "final"] == [p for p in curve_dicts(curve) if p["step"] == "final"]
    for command in (("run", str(path)), ("compare",)):
        table = run_cli(*command, "--db", str(db), env={"COLUMNS": "200"})
        assert table.returncode == 0 and "final (majority)" in table.stdout and "final (synthesis)" in table.stdout
        assert "final (self_verify)" in table.stdout


def curve_dicts(curve: list[Any]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in curve]
