"""A search on one shared storage (workbench/search/engine.py over core/optuna_storage.py and
core/shared_trials.py): two workers of `workbench search --storage postgresql://...` on a real
PostgreSQL server (tests/postgres.py) run exactly the budget, every trial's run logged with its
Optuna trial number; `--storage` refused in one line when bad; a trial that keeps failing has its
values asked again at most twice; a relative storage file lives beside the log. Simulated model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from conftest import run_cli
from workbench import api
from workbench.core.errors import UserError
from workbench.core.optuna_storage import open_storage
from workbench.core.shared_trials import MAX_RETRIES, RETRY_OF_ATTR
from workbench.search.engine import Search
from workbench.store import connect_reader
from workbench.study.spec import load_study

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
SMALL = {"space": {"stimulus": ["EP01", "EP02", "EP03", "none"], "placement": ["suffix", "prefix"]}, "trials": 6, "dev": 6, "test": 10}


def _study(tmp_path: Path, search: dict[str, Any], *, name: str = "searched", latency_ms: int = 0) -> Path:
    """A small simulated study (as tests/test_search.py's), its name unique where a storage is shared."""
    study = {
        "name": name,
        "models": [{"id": "sim/a", "simulate": {"default_accuracy": 0.5, "latency_ms": latency_ms}}],
        "conditions": [{"name": "control"}],
        "tasks": [{"task": "math/word_problems", "n": 40}],
        "concurrency": 1,
        "search": search,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = connect_reader(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow  # 15-30 s (on a busy machine): two worker processes (one spawned, which imports the workbench) and seven runs
def test_two_workers_search_on_postgresql_and_run_exactly_the_budget(postgres_url: str, tmp_path: Path) -> None:
    name = f"pg_search_{time.monotonic_ns()}"  # the session's server holds every test's studies
    path = _study(tmp_path, {**SMALL, "trials": 4}, name=name)
    db = tmp_path / "log.duckdb"
    result = run_cli("search", str(path), "--db", str(db), "--workers", "2", "--storage", postgres_url, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["n_trials"] == 4 and out["best_value"] is not None and out["best_params"]
    assert set(out["confirmation"]) >= {"delta", "ci_low", "ci_high", "p_value", "dev_delta", "candidates"}
    assert out["storage"] == postgres_url.replace("postgresql://", "postgresql+psycopg://")  # as shown: no password
    assert not Path(f"{db}.search").exists()  # no journal beside the log: the search is in PostgreSQL

    trials = optuna.load_study(study_name=name, storage=open_storage(postgres_url).storage).get_trials(deepcopy=False)
    assert len(trials) == 4 and all(t.state in FINISHED for t in trials)
    # every trial's candidate ran as the dev run of the log, its event naming the Optuna trial
    events = _query(db, "SELECT json_extract(detail_json, '$.trial')::INT, json_extract_string(detail_json, '$.search') FROM run_events WHERE event = 'search_trial'")
    assert {n for n, _ in events} == {t.number for t in trials} and {s for _, s in events} == {name}
    logged = {c for (c,) in _query(db, f"SELECT DISTINCT condition FROM trials JOIN runs USING (run_id) WHERE runs.name = '{name}.dev'")}
    assert {t.user_attrs["condition"]["name"] for t in trials} <= logged


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("mysql://root@127.0.0.1/db", "the scheme 'mysql' is not allowed"),
        ("postgresql://searcher:hunter2-secret@127.0.0.1:9/search", "a password in the URL"),
        ("postgresql://searcher@127.0.0.1:9/search", "cannot use postgresql+psycopg://searcher@127.0.0.1:9/search"),
        ("/nonexistent-dir/search.journal", "does not exist"),
    ],
)
def test_a_bad_storage_option_is_one_line_with_exit_code_2(setting: str, says: str, tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    result = run_cli("search", str(_study(tmp_path, SMALL)), "--db", str(db), "--storage", setting, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--storage: " in lines[0] and says in lines[0], result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert not db.exists() and not Path(f"{db}.search").exists()  # nothing written


def test_the_study_s_storage_is_checked_at_load_time(tmp_path: Path) -> None:
    with pytest.raises(UserError) as bad:
        load_study(_study(tmp_path, {**SMALL, "storage": "redis://127.0.0.1:6379"}))
    assert ": search.storage: the scheme 'redis' is not allowed" in str(bad.value) and "\n" not in str(bad.value)


@pytest.mark.parametrize("given", ["study", "option"])
def test_a_relative_storage_file_lives_beside_the_log(given: str, tmp_path: Path) -> None:
    """`search.storage` or `--storage` naming a relative SQLite file: in the log's directory, not the
    working directory, and a second search resumes it (nothing left to run)."""
    (tmp_path / "logs").mkdir()
    db = tmp_path / "logs" / "log.duckdb"
    setting = "sqlite:///searches.sqlite"
    path = _study(tmp_path, {**SMALL, "trials": 2, **({"storage": setting} if given == "study" else {})})
    option = {"storage": setting} if given == "option" else {}
    first = api.search(path, db, **option)
    assert first.storage == f"sqlite:///{tmp_path / 'logs' / 'searches.sqlite'}" and first.n_trials == 2
    again = api.search(path, db, trials=2, **option)
    assert again.n_trials == 2 and again.best_params == first.best_params


def _failing(*_: Any, **__: Any) -> Any:
    raise RuntimeError("the model went away")


def test_a_trial_that_keeps_failing_is_asked_again_at_most_twice(tmp_path: Path) -> None:
    """A candidate whose run fails is asked again with its values (its half-done run would resume),
    by each new search of the study, but only MAX_RETRIES times: then a fresh draw takes its place
    (whose failure is asked again in turn)."""
    storage = f"sqlite:///{tmp_path / 'search.sqlite'}"
    study = load_study(_study(tmp_path, {**SMALL, "sampler": "random", "storage": storage}))
    runs = MAX_RETRIES + 2
    for _ in range(runs):
        with pytest.raises(RuntimeError, match="the model went away"):
            Search(study, _failing).run_trials()
    trials = optuna.load_study(study_name="searched", storage=open_storage(storage).storage).get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL"] * runs + ["WAITING"]  # each search ran one trial
    first, *retries, fresh, waiting = trials
    assert [t.user_attrs.get(RETRY_OF_ATTR) for t in retries] == list(range(MAX_RETRIES))  # each asks the one before again
    assert all(t.params == first.params for t in retries)
    assert RETRY_OF_ATTR not in fresh.user_attrs  # drawn anew
    assert waiting.user_attrs[RETRY_OF_ATTR] == fresh.number and waiting.params == fresh.params


def test_a_failed_trial_s_retry_takes_its_place_and_the_budget_holds(tmp_path: Path) -> None:
    """core.shared_trials alone: a trial whose objective raises is failed, its values asked again
    (the retry holds the place the failure freed), and the resumed run ends with exactly the
    budget of trials that did not fail, the retry among them with the failed trial's values."""
    from workbench.core.shared_trials import run_shared_trials

    opened = open_storage(str(tmp_path / "toy.journal"))
    study = optuna.create_study(study_name="toy", storage=opened.storage, sampler=optuna.samplers.RandomSampler(seed=3))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 2:
            raise RuntimeError("stopped midway")
        return x

    with pytest.raises(RuntimeError, match="stopped midway"):
        run_shared_trials(study, objective, 5, opened.budget_lock)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "WAITING"]
    assert run_shared_trials(study, objective, 5, opened.budget_lock) == 3
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 5 and states.count("FAIL") == 1 and len(states) == 6
    assert study.trials[3].user_attrs[RETRY_OF_ATTR] == 2 and study.trials[3].params == study.trials[2].params
