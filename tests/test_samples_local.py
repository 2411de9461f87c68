"""Every sampled call is a new sample, on the embedded model: a loop's request sent again within a
trial is called again, a seed of the user's own is made new per repeat, and a key gives the same
answer live and in a `--fresh` replay (two conditions sending one prompt at the same time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_json, write_study
from test_samples import calls_of

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

SEED = 5
ROUNDS = 2


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, local_server: Any) -> tuple[dict[str, Any], dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("samples-local")
    study = {
        "name": "samples-local",
        "models": [{"id": "local/default", "params": {"temperature": 0.7, "max_tokens": 12, "seed": SEED}}],
        "conditions": [
            {"name": "control"},
            {"name": "twin"},  # the control's very prompt
            {"name": "refine", "solver": "heart",
             "solver_params": {"rounds": ROUNDS, "mode": "verifier_free", "feedback": "self_refine", "history": "last", "final": "last"}},
        ],
        "tasks": [{"task": "ii/sum", "n": 3}],
        "repeats": 2,
        "concurrency": 2,
    }
    path = write_study(tmp / "s.yaml", study)
    db = tmp / "log.duckdb"
    live = run_json("run", str(path), "--db", str(db))
    replay = run_json("run", str(path), "--db", str(db), "--fresh")
    return live, replay, db


def _calls(db: Path, run_id: str) -> list[dict[str, Any]]:
    return calls_of(db, run_id, "t.condition", "t.item_id", "t.repeat", "t.response_text AS answer", "c.call_index", "c.cache_key", "c.cached",
                    "c.params_json", "c.response_text")


def test_a_seed_of_the_users_own_is_new_for_each_repeat(logged: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    live, _, db = logged
    assert live["errors"] == 0
    seeds = {(c["item_id"], c["repeat"]): json.loads(c["params_json"])["seed"] for c in _calls(db, live["run_id"])}
    assert {seed for (_, repeat), seed in seeds.items() if repeat == 0} == {SEED}, "repeat 0 sends the user's seed"
    assert SEED not in {seed for (_, repeat), seed in seeds.items() if repeat == 1}, "repeat 1 sends a seed of its own"
    from workbench.core.seeds import repeat_seed

    assert all(seed == repeat_seed(SEED, repeat) for (_, repeat), seed in seeds.items())
    assert live["warnings"] == []


def test_every_round_of_a_loop_is_a_sample_of_its_own(logged: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    live, _, db = logged
    calls = _calls(db, live["run_id"])
    trials: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for call in calls:
        if call["condition"] == "refine":
            trials.setdefault((call["item_id"], call["repeat"]), []).append(call)
    assert len(trials) == 6
    for rounds in trials.values():
        assert len(rounds) == ROUNDS + 1 and len({c["cache_key"] for c in rounds}) == ROUNDS + 1
        assert not any(c["cached"] for c in rounds[1:]), "a later round is never served an earlier round's answer"


def test_one_key_gives_one_answer_live_and_replayed(logged: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    live, replay, db = logged
    assert replay["model_calls"] == 0 and replay["run_id"] != live["run_id"]
    answers = {}
    for run in (live, replay):
        answers[run["run_id"]] = {(c["condition"], c["item_id"], c["repeat"]): c["answer"] for c in _calls(db, run["run_id"]) if c["call_index"] == 0}
    assert answers[live["run_id"]] == answers[replay["run_id"]]
    pairs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for call in _calls(db, live["run_id"]):
        if call["condition"] in ("control", "twin"):
            pairs.setdefault((call["item_id"], call["repeat"]), []).append(call)
    for control, twin in pairs.values():
        assert control["cache_key"] == twin["cache_key"] and control["response_text"] == twin["response_text"]
        assert sorted([control["cached"], twin["cached"]]) == [False, True], "one sample, served to both"
