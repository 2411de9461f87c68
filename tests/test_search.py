"""The Optuna search (workbench/search/): a `search:` block checked at load time, the planted best
found and confirmed, workers sharing a journal, a killed search resumed, and the confirmation's
false-positive rate with nothing planted. Simulated model only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, run_cli
from workbench import api
from workbench.core.errors import UserError
from workbench.core.pauses import PAUSE_ENV
from workbench.core.shared_trials import OWNER_ATTR
from workbench.run.simulate import reseeded
from workbench.search.engine import search, simulated
from workbench.store import connect_reader
from workbench.study.spec import load_study, study_from_text

HEART_STUDY = REPO / "studies" / "search_heart.yaml"
PLANTED = "heart=sadness-anger"


def _study(tmp_path: Path, search: dict[str, Any], *, latency_ms: int = 0, accuracy: dict[str, float] | None = None, n: int = 40) -> Path:
    study = {
        "name": "searched",
        "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.5, "latency_ms": latency_ms, "accuracy": accuracy or {}}}],
        "conditions": [{"name": "control"}],
        "tasks": [{"task": "math/word_problems", "n": n}],
        "concurrency": 1,
        "search": search,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


SMALL = {"space": {"stimulus": ["EP01", "EP02", "EP03", "none"], "placement": ["suffix", "prefix"]}, "trials": 6, "dev": 6, "test": 10}


def _journal_trials(db: Path, name: str = "searched") -> list[optuna.trial.FrozenTrial]:
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(Path(f"{db}.search") / f"{name}.journal")))
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def _complete(trials: list[optuna.trial.FrozenTrial]) -> int:
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def _repeated_calls(db: Path) -> int:
    """Model calls (not cache hits) whose request was sent more than once."""
    con = connect_reader(db)
    try:
        return con.execute("SELECT count(*) FROM (SELECT cache_key FROM calls WHERE NOT cached GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]
    finally:
        con.close()


def test_finds_the_planted_schedule_and_confirms_it(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    written = tmp_path / "winner.yaml"
    result = api.search(HEART_STUDY, db, winner_study=written)
    assert result.winner["name"] == PLANTED
    assert result.n_trials == load_study(HEART_STUDY).spec.search.trials
    c = result.confirmation
    assert c["delta"] > 0 and c["ci_low"] > 0 and c["p_value"] < 0.05
    assert c["dev_delta"] is not None and 1 <= c["candidates"] <= result.n_trials and c["n_test"] == 40
    assert set(result.to_json()) >= {"best_params", "best_value", "n_trials", "confirmation"}
    # every model call is a calls row of a run; each Optuna trial is named on its run
    con = duckdb.connect(str(db), read_only=True)
    try:
        trial_numbers = {n for (n,) in con.execute("SELECT DISTINCT json_extract(detail_json, '$.trial')::INT FROM run_events WHERE event = 'search_trial'").fetchall()}
        runs = {name for (name,) in con.execute("SELECT DISTINCT r.name FROM calls c JOIN runs r USING (run_id)").fetchall()}
    finally:
        con.close()
    assert trial_numbers == set(range(result.n_trials))
    assert runs == {"search_heart.dev", "search_heart.test"}
    # the winner written out is a study file that loads, with the control and the winner
    assert [c.name for c in load_study(written).spec.conditions] == ["control", PLANTED]


BAD_BLOCKS = [
    ({"sampler": "annealing"}, "search.sampler", "unknown sampler"),
    ({"dev": 30, "test": 20}, "search.test", "raise tasks[0].n"),
    ({"space": {"stimulus": ["EP99"]}}, "search.space.stimulus[0]", "EP99"),
    ({"space": {"stimulus": {"family": "nosuch"}}}, "search.space.stimulus.family", "nosuch"),
    ({"space": {"stimulus": ["EP01"], "placement": ["sideways"]}}, "search.space.placement[0]", "sideways"),
    ({"space": {"heart": {"rounds": 2, "emotions": ["boredom"]}}}, "search.space.heart", "boredom"),
    ({"space": {"placement": ["suffix"]}}, "search.space", "needs `stimulus`, `heart` or `model`"),
    ({"space": {"placement": ["suffix"], "heart": {"rounds": 1, "emotions": ["anger"]}}}, "search.space", "add `stimulus`"),
    ({"storage": "postgresql://searcher:hunter22@127.0.0.1/searches"}, "search.storage", "PGPASSWORD"),
    ({"sampler": "grid", "space": {"stimulus": ["EP01"], "model": {"temperature": {"low": 0.0, "high": 1.0}}}}, "search", "finite space"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_BLOCKS)
def test_bad_search_blocks_are_one_line_errors(tmp_path: Path, change: dict[str, Any], field: str, words: str) -> None:
    path = _study(tmp_path, {**SMALL, **change})
    with pytest.raises(UserError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "\n" not in message and words in message and f": {field}" in message, message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["trials", "dev", "test"]), value=st.one_of(st.integers(max_value=0), st.text(max_size=5), st.floats(allow_nan=True), st.none()))
def test_generated_bad_counts_name_their_field(tmp_path: Path, key: str, value: Any) -> None:
    path = _study(tmp_path, {**SMALL, key: value})
    with pytest.raises(UserError) as caught:
        load_study(path)
    assert f"search.{key}" in str(caught.value) and "\n" not in str(caught.value)


def test_a_storage_that_does_not_open_is_one_line(tmp_path: Path) -> None:
    path = _study(tmp_path, {**SMALL, "storage": "nosuchdb://127.0.0.1:9/x"})
    result = run_cli("search", str(path), "--db", str(tmp_path / "log.duckdb"), timeout=120)
    assert result.returncode == 2 and "search.storage" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_bad_block_with_exit_code_2(tmp_path: Path) -> None:
    path = _study(tmp_path, {**SMALL, "sampler": "annealing"})
    result = run_cli("search", str(path), "--db", str(tmp_path / "log.duckdb"), timeout=120)
    assert result.returncode == 2 and "search.sampler" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "log.duckdb").exists()


@pytest.mark.slow  # about 12 s: each worker holds 2 s at each ask
def test_two_workers_share_one_journal_and_run_exactly_the_budget(tmp_path: Path) -> None:
    """Each worker holds for a moment between counting the trials and asking for one (a pause
    point), so without the ask lock both would count alike and ask for one too many."""
    path = _study(tmp_path, {**SMALL, "trials": 3}, latency_ms=5)
    db = tmp_path / "log.duckdb"
    command = [sys.executable, "-m", "workbench.cli", "search", str(path), "--db", str(db), "--json"]
    env = {**os.environ, PAUSE_ENV: f"search_ask:{tmp_path / 'asked'}"}
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    trials = _journal_trials(db)
    assert _complete(trials) == 3 and len(trials) == 3
    workers_seen = {int(t.user_attrs[OWNER_ATTR].rpartition(":")[2]) for t in trials}
    assert workers_seen == {w.pid for w in workers}  # both took trials
    assert _repeated_calls(db) == 0


def test_a_killed_search_resumes_with_exactly_the_budget_and_no_repeated_calls(tmp_path: Path) -> None:
    # 400 ms a call: a candidate's run takes seconds, so a loaded machine's slow polling still kills it midway
    path = _study(tmp_path, {**SMALL, "trials": 5, "dev": 20, "test": 10}, latency_ms=400)
    db = tmp_path / "log.duckdb"
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "search", str(path), "--db", str(db)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if Path(f"{db}.search/searched.journal").exists():
            trials = _journal_trials(db)
            if _complete(trials) >= 2 and any(t.state == optuna.trial.TrialState.RUNNING and t.params for t in trials):  # its values drawn
                break  # killed in the middle of a candidate's run
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _journal_trials(db)
    assert 2 <= _complete(before) < 5, "the search was not killed midway"
    [left] = [t for t in before if t.state == optuna.trial.TrialState.RUNNING]
    result = api.search(path, db)
    after = _journal_trials(db)
    assert _complete(after) == 5 == result.n_trials
    assert after[left.number].state == optuna.trial.TrialState.FAIL  # the dead process's trial
    retried = [t for t in after if t.user_attrs.get("retry_of") == left.number]
    assert [t.params for t in retried] == [left.params]  # asked again with its values: its run resumed
    assert _repeated_calls(db) == 0


@pytest.mark.slow
def test_with_nothing_planted_the_confirmation_is_significant_at_about_alpha() -> None:
    """200 searches on a model that answers every condition alike: the winner on the dev split
    looks better there (the winner's curse), but its confirmation on the test split is
    significant at about alpha, no more."""
    text = yaml.safe_dump({
        "name": "null", "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.6}}], "conditions": [{"name": "control"}],
        "tasks": [{"task": "math/word_problems", "n": 40}],
        "search": {"space": {"stimulus": ["EP01", "EP02", "EP03", "EP04"]}, "sampler": "random", "trials": 4, "dev": 10, "test": 30},
    })
    study = study_from_text(text, "null.yaml")
    found = [search(reseeded(study, seed), simulated) for seed in range(200)]
    rejected = np.mean([f["p_value"] is not None and f["p_value"] < 0.05 for f in found])
    assert rejected <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200), rejected
    dev, test = np.mean([f["dev_delta"] for f in found]), np.mean([f["delta"] for f in found])
    assert dev > test + 0.03  # the dev estimate of the chosen winner is biased up; the test one is not


def test_pruning_stops_candidates_worse_than_the_control_early(tmp_path: Path) -> None:
    """Every candidate but the planted one answers far worse than the control: with pruning they
    stop after a chunk or two of the dev examples (fewer trials logged), the planted one completes."""
    space = {"stimulus": ["EP01", "EP02", "EP03"], "placement": ["suffix"]}
    path = _study(tmp_path, {"space": space, "trials": 6, "dev": 20, "test": 20, "pruning": True},
                  accuracy={"control": 0.8, "EP02.suffix": 0.95}, n=40)
    text = path.read_text().replace("default_accuracy: 0.5", "default_accuracy: 0.1")
    path.write_text(text)
    db = tmp_path / "log.duckdb"
    result = api.search(path, db)
    trials = _journal_trials(db)
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and result.n_trials == 6 and result.winner["name"] == "EP02.suffix"
    assert all(len(t.intermediate_values) < 20 for t in pruned)
    con = connect_reader(db)
    try:
        logged = dict(con.execute("SELECT condition, count(*) FROM trials JOIN runs USING (run_id) WHERE runs.name = 'searched.dev' GROUP BY 1").fetchall())
    finally:
        con.close()
    assert all(logged[t.user_attrs["condition"]["name"]] < 20 for t in pruned)


def test_every_candidate_pruned_leaves_the_control_and_says_so() -> None:
    text = yaml.safe_dump({
        "name": "worse", "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.05, "accuracy": {"control": 0.95}}}],
        "conditions": [{"name": "control"}], "tasks": [{"task": "math/word_problems", "n": 40}],
        "search": {"space": {"stimulus": ["EP01", "EP02"]}, "trials": 3, "dev": 20, "test": 10, "pruning": True},
    })
    found = search(study_from_text(text, "worse.yaml"), simulated)
    assert found["winner"]["name"] == "control" and found["best_value"] is None and found["n_trials"] == 3
    assert "all 3 candidates were pruned" in found["note"]


def test_a_space_of_sac_levels_and_temperatures_loads(tmp_path: Path) -> None:
    """A stimulus that needs a parameter is checked with the searched parameter's first value."""
    space = {"stimulus": ["SAC/warmth", "none"], "params": {"level": {"low": 1, "high": 5}}, "model": {"temperature": {"low": 0.0, "high": 1.0}}}
    search_spec = load_study(_study(tmp_path, {"space": space, "trials": 2, "dev": 4, "test": 4})).spec.search
    assert search_spec.space.params["level"].is_int and not search_spec.space.model["temperature"].is_int


def test_grid_over_a_family_and_none_visits_each_candidate_once() -> None:
    """The grid (asked and told by the search's loop, which Optuna's own stop does not fit) covers
    the family's ten ids and `none` in eleven trials; `none` planted best sends what the control
    sends, so there is nothing to confirm and the result says so."""
    text = yaml.safe_dump({
        "name": "grid", "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.3, "accuracy": {"none": 0.95}}}],
        "conditions": [{"name": "control"}], "tasks": [{"task": "math/word_problems", "n": 30}],
        "search": {"space": {"stimulus": {"family": "negativeprompt", "none": True}}, "sampler": "grid", "trials": 11, "dev": 10, "test": 10},
    })
    found = search(study_from_text(text, "grid.yaml"), simulated)
    assert found["candidates"] == 11 and found["n_trials"] == 11
    assert found["winner"]["name"] == "none" and "nothing to confirm" in found["note"]


def test_a_search_block_leaves_the_run_identity_alone(tmp_path: Path) -> None:
    """`search:` chooses which conditions a search runs; a study's own run keeps its id with or without it."""
    quickstart = REPO / "studies" / "quickstart.yaml"
    raw = yaml.safe_load(quickstart.read_text())
    raw["search"] = {"space": {"stimulus": ["EP01", "EP02"]}, "dev": 5, "test": 5}
    (tmp_path / "quickstart.yaml").write_text(yaml.safe_dump(raw))
    assert load_study(tmp_path / "quickstart.yaml").spec_hash() == load_study(quickstart).spec_hash()
