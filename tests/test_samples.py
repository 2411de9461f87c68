"""Every sampled call is a new sample: a request a loop sends again within its trial, a repeat of an
example, and the answer a key is served (live and replayed alike).

The cache tests run on models whose cache scope is that of a real model (the simulator scopes its
cache per condition and call, which would hide a shared key): a litellm model answering through
litellm's `mock_response` (the real LiteLLMProvider path, no network) and an in-process provider
that returns a new text on every call."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_json, write_study
from workbench.providers import ModelRequest, ModelResponse, ProviderPool, TrialContext
from workbench.store import connect_reader

MOCK = {"id": "openai/mock-sampler", "params": {"mock_response": "42", "temperature": 0.0}, "max_retries": 0}
ROUNDS = 3


def _refine(name: str, **params: Any) -> dict[str, Any]:
    """A loop that sends the very same request every round once the answer repeats word for word:
    no phrase (self-refine), and only the task and the last answer in view."""
    return {"name": name, "solver": "heart", "solver_params": {"rounds": ROUNDS, "mode": "verifier_free", "feedback": "self_refine",
                                                               "history": "last", "final": "last", **params}}


def _calls(db: Path, run_id: str) -> list[dict[str, Any]]:
    con = connect_reader(db)
    try:
        cursor = con.execute(
            "SELECT t.condition, t.item_id, c.call_index, c.cache_key, c.cached, c.messages_json FROM calls c JOIN trials t USING (trial_id) "
            "WHERE t.run_id = ? ORDER BY t.condition, t.item_id, c.call_index",
            [run_id],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def test_a_request_sent_again_in_a_trial_is_sampled_again_and_shared_across_conditions(tmp_path: Path) -> None:
    n = 4
    study = {
        "name": "resample", "models": [MOCK], "tasks": [{"task": "math/word_problems", "n": n}], "seed": 1, "concurrency": 1,
        "conditions": [{"name": "control"}, _refine("refine"), _refine("refine_majority", final="majority")],
    }
    path = write_study(tmp_path / "s.yaml", study)
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(path), "--db", str(db))
    calls = _calls(db, result["run_id"])
    by_trial: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for call in calls:
        by_trial.setdefault((call["condition"], call["item_id"]), []).append(call)
    for item in {i for _, i in by_trial}:
        refine = by_trial[("refine", item)]
        sent = [c["messages_json"] for c in refine]
        assert len(refine) == ROUNDS + 1 and sent[1] == sent[2] == sent[3], "the mock answers alike, so rounds 1..T send one request"
        assert len({c["cache_key"] for c in refine}) == ROUNDS + 1, "each round is a sample of its own"
        # round 0 is the control's prompt: shared, as is every round of the twin condition (same request, same occurrence)
        assert refine[0]["cache_key"] == by_trial[("control", item)][0]["cache_key"]
        assert [c["cache_key"] for c in by_trial[("refine_majority", item)]] == [c["cache_key"] for c in refine]
        assert all(c["cached"] for c in by_trial[("refine_majority", item)])
        assert not any(c["cached"] for c in refine[1:]), "no later round is served the earlier round's answer"
    assert result["model_calls"] == n * (ROUNDS + 1) and result["cache_hits"] == n * (ROUNDS + 2)
    # the keys are a function of the trial alone: a fresh run of the same study is served whole from the cache
    fresh = run_json("run", str(path), "--db", str(db), "--fresh")
    assert fresh["model_calls"] == 0 and fresh["cache_hits"] == len(calls)
