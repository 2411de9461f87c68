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
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_study
from workbench.providers import ModelRequest, ModelResponse, ProviderPool, TrialContext
from workbench.run.scheduler import run_study
from workbench.store import connect_reader, query
from workbench.study.spec import load_study

MOCK = {"id": "openai/mock-sampler", "params": {"mock_response": "42", "temperature": 0.0}, "max_retries": 0}
ROUNDS = 3


def _refine(name: str, **params: Any) -> dict[str, Any]:
    """A loop that sends the very same request every round once the answer repeats word for word:
    no phrase (self-refine), and only the task and the last answer in view."""
    return {"name": name, "solver": "heart", "solver_params": {"rounds": ROUNDS, "mode": "verifier_free", "feedback": "self_refine",
                                                               "history": "last", "final": "last", **params}}


def calls_of(db: Path, run_id: str, *columns: str) -> list[dict[str, Any]]:
    """A run's calls (columns of `c`, the call, and `t`, its trial) in trial and call order."""
    sql = f"SELECT {', '.join(columns)} FROM calls c JOIN trials t USING (trial_id) WHERE t.run_id = ? ORDER BY t.trial_id, c.call_index"
    return query(db, sql, [run_id])


def test_a_request_sent_again_in_a_trial_is_sampled_again_and_shared_across_conditions(tmp_path: Path) -> None:
    n = 4
    study = {
        "name": "resample", "models": [MOCK], "tasks": [{"task": "math/word_problems", "n": n}], "seed": 1, "concurrency": 1,
        "conditions": [{"name": "control"}, _refine("refine"), _refine("refine_majority", final="majority")],
    }
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    db = tmp_path / "log.duckdb"
    result = run_study(resolved, db)
    calls = calls_of(db, result.run_id, "t.condition", "t.item_id", "c.cache_key", "c.cached", "c.messages_json")
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
    assert result.model_calls == n * (ROUNDS + 1) and result.cache_hits == n * (ROUNDS + 2)
    # the keys are a function of the trial alone: a fresh run of the same study is served whole from the cache
    fresh = run_study(resolved, db, fresh=True)
    assert fresh.model_calls == 0 and fresh.cache_hits == len(calls)


class NewTextEachCall:
    """A model with a real model's cache scope that never answers twice alike (as one sampling at
    temperature > 0 would), slow enough that concurrent trials' calls overlap."""

    endpoint = "new-text-each-call"

    def __init__(self) -> None:
        self.counter = itertools.count()

    async def complete(self, request: ModelRequest, context: TrialContext, attempt: int) -> ModelResponse:
        await asyncio.sleep(0.02)
        return ModelResponse(text=f"sample {next(self.counter)}")

    def cache_scope(self, context: TrialContext) -> str:
        return ""

    async def close(self) -> None:
        return None


def _answers(db: Path, run_id: str) -> dict[tuple[str, str], str]:
    rows = query(db, "SELECT condition, item_id, response_text FROM trials WHERE run_id = ?", [run_id])
    return {(r["condition"], r["item_id"]): r["response_text"] for r in rows}


def test_a_key_gives_the_same_answer_live_and_in_a_fresh_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three conditions send the very same request for each example, at the same time. Live, each
    trial must get the answer a `--fresh` replay of the log serves for that key (the first logged),
    not one sampled beside it."""
    from workbench.run import gateway
    from workbench.run import scheduler as runner

    provider = NewTextEachCall()
    monkeypatch.setattr(gateway, "open_pool", lambda specs, log: ProviderPool(providers={s.id: provider for s in specs}))
    study = {
        "name": "one-key", "models": [{"id": "openai/new-text-each-call"}], "tasks": [{"task": "math/word_problems", "n": 6}],
        "conditions": [{"name": "control"}, {"name": "twin"}, {"name": "triplet"}], "concurrency": 3,
    }
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    db = tmp_path / "log.duckdb"
    live = asyncio.run(runner.Runner(resolved, db).run())
    replay = asyncio.run(runner.Runner(resolved, db, fresh=True).run())
    assert replay.run_id != live.run_id and replay.model_calls == 0
    live_answers, replayed = _answers(db, live.run_id), _answers(db, replay.run_id)
    assert len(live_answers) == 18 and replayed == live_answers
    for item in {i for _, i in live_answers}:
        assert len({live_answers[(c, item)] for c in ("control", "twin", "triplet")}) == 1, "one key, one answer"
    assert live.model_calls == 6 and live.cache_hits == 12, "the calls in flight at once were one sample"
    con = connect_reader(db)
    keys = con.execute("SELECT count(DISTINCT cache_key), count(*) FILTER (WHERE NOT cached) FROM calls").fetchone()
    con.close()
    assert keys == (6, 6)
    # new samples of every key logged after them (--no-cache) leave the first-logged answers in force
    time.sleep(1.1)  # a fresh run's id carries the second it starts in
    resampled = asyncio.run(runner.Runner(resolved, db, fresh=True, use_cache=False).run())
    assert resampled.model_calls == 18 and set(_answers(db, resampled.run_id).values()).isdisjoint(live_answers.values())
    time.sleep(1.1)
    again = asyncio.run(runner.Runner(resolved, db, fresh=True).run())
    assert again.model_calls == 0 and _answers(db, again.run_id) == live_answers


# -- repeats --------------------------------------------------------------------------------------

def test_a_seed_in_the_params_is_made_new_for_each_repeat_and_logged(tmp_path: Path) -> None:
    model = {**MOCK, "params": {"mock_response": "42", "temperature": 0.7, "seed": 11}}
    study = {"name": "own-seed", "models": [model], "conditions": [{"name": "control"}], "tasks": [{"task": "ii/sum", "n": 3}], "repeats": 3}
    db = tmp_path / "log.duckdb"
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    assert run_study(resolved, db).model_calls == 9
    con = connect_reader(db)
    rows = con.execute("SELECT t.item_id, t.repeat, t.model_params_json, c.params_json FROM trials t JOIN calls c USING (trial_id)").fetchall()
    con.close()
    seeds: dict[str, dict[int, int]] = {}
    for item, repeat, trial_params, call_params in rows:
        sent = json.loads(call_params)
        assert json.loads(trial_params) == sent == {"mock_response": "42", "temperature": 0.7, "seed": sent["seed"]}, "the trial logs what was sent"
        seeds.setdefault(item, {})[repeat] = sent["seed"]
    for per_repeat in seeds.values():
        assert per_repeat[0] == 11, "repeat 0 sends the user's seed itself: a single-repeat study sends what it always sent"
        assert len(set(per_repeat.values())) == 3, "each repeat sends a seed of its own"
    from workbench.core.seeds import repeat_seed

    assert all(per_repeat == {r: repeat_seed(11, r) for r in range(3)} for per_repeat in seeds.values())
    assert resolved.warnings == [], "no warning above temperature 0"
    assert len({tuple(sorted(s.items())) for s in seeds.values()}) == 1, "the user's seed is one seed for every example"


@pytest.mark.slow  # a run in a CLI subprocess
def test_repeats_at_temperature_0_warn_when_the_study_loads(tmp_path: Path) -> None:
    study = {"name": "greedy", "models": [MOCK, {"id": "sim/x", "params": {"temperature": 0}}], "conditions": [{"name": "control"}],
             "tasks": [{"task": "ii/sum", "n": 1}], "repeats": 2}
    path = write_study(tmp_path / "s.yaml", study)
    (warning,) = load_study(path).warnings  # the simulator draws per repeat: no warning for it
    assert warning.startswith(f"{path}: models[0].params.temperature: repeats: 2 at temperature 0 on openai/mock-sampler")
    assert load_study(write_study(tmp_path / "one.yaml", {**study, "repeats": 1})).warnings == []
    assert load_study(write_study(tmp_path / "warm.yaml", {**study, "models": [{**MOCK, "params": {"temperature": 0.8}}]})).warnings == []
    db = tmp_path / "log.duckdb"
    result = run_cli("run", str(path), "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == [warning]
    assert f"warning: {path}: models[0].params.temperature" in " ".join(result.stderr.split())
    con = connect_reader(db)
    events = con.execute("SELECT detail_json FROM run_events WHERE event = 'warnings'").fetchall()
    con.close()
    assert [json.loads(d)["messages"] for (d,) in events] == [[warning]]


def test_the_log_records_each_parameter_as_sent_not_as_an_equal_value_laid_out_before(tmp_path: Path) -> None:
    """1 and 1.0 (and True) are equal keys in Python; the log must still show what each study sent."""
    for name, temperature in (("int-temperature", 1), ("float-temperature", 1.0)):
        model = {**MOCK, "params": {"mock_response": "42", "temperature": temperature}}
        study = {"name": name, "models": [model], "conditions": [{"name": "control"}], "tasks": [{"task": "ii/sum", "n": 1}]}
        db = tmp_path / f"{name}.duckdb"
        run_study(load_study(write_study(tmp_path / f"{name}.yaml", study)), db)
        logged = query(db, "SELECT t.model_params_json, c.params_json FROM trials t JOIN calls c USING (trial_id)")
        assert logged and all(f'"temperature": {temperature!r}' in row["model_params_json"] for row in logged), logged
        assert all(f'"temperature": {temperature!r}' in row["params_json"] for row in logged), logged
