"""A trial and its gateway settings pickled into a fresh interpreter and executed there through the
gateway give the rows the local runner logs for that trial: the seam a cluster executor and a
search build on. What differs per execution (timestamps, latencies) is left out of the comparison."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, sim_study, write_study
from workbench.run.execute import TrialRows
from workbench.run.scheduler import gateway_settings, run_study
from workbench.store import query
from workbench.study.spec import load_study
from workbench.study.expand import expand

PER_EXECUTION = {"started_at", "finished_at", "scored_at", "latency_s"}
# With a real model two executions of one request need not answer alike (temperature 0 is not
# bit-stable): its comparison keeps to what was sent, and what was laid out around the answers.
ANSWER_DERIVED = {"response_text", "finish_reason", "prompt_tokens", "completion_tokens", "cost", "answer", "score", "status", "error", "error_kind", "details_json", "verdict", "verdict_source"}
KEYS = {"trials": "trial_id", "calls": "call_id", "rounds": "round_id", "scores": ("trial_id", "extractor")}

WORKER = """
import pickle, sys
from workbench.run.execute import execute_alone
trials, settings = pickle.loads(open(sys.argv[1], "rb").read())
rows = [execute_alone(trial, settings) for trial in trials]
open(sys.argv[2], "wb").write(pickle.dumps(rows))
"""


def _in_fresh_process(tmp_path: Path, payload: Any) -> list[TrialRows]:
    sent, back = tmp_path / "sent.pickle", tmp_path / "back.pickle"
    sent.write_bytes(pickle.dumps(payload))
    done = subprocess.run([sys.executable, "-c", WORKER, str(sent), str(back)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return pickle.loads(back.read_bytes())


def _key(table: str, row: dict[str, Any]) -> Any:
    key = KEYS[table]
    return tuple(row[k] for k in key) if isinstance(key, tuple) else row[key]


def _compare(db: Path, run_id: str, executed: list[TrialRows], ignore: set[str]) -> int:
    """Assert every executed row equals the logged row of the same id; returns rows compared."""
    compared = 0
    for table in KEYS:
        logged = {_key(table, row): row for row in query(db, f"SELECT * FROM {table} WHERE run_id = ?", [run_id])}
        mine = [row for rows in executed for name, row in rows.by_table() if name == table]
        assert len(mine) == len(logged), f"{table}: {len(mine)} executed rows against {len(logged)} logged"
        for row in mine:
            other = logged[_key(table, row)]
            fields = set(row) - PER_EXECUTION - ignore
            assert {f: row[f] for f in fields} == {f: other[f] for f in fields}, f"{table} row {_key(table, row)}"
            compared += 1
    return compared


def _run_and_execute_apart(tmp_path: Path, study: dict[str, Any], ignore: set[str]) -> int:
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    db = tmp_path / "log.duckdb"
    summary = run_study(resolved, db)
    assert summary.trials_done == summary.trials_planned > 0
    trials = expand(resolved, summary.run_id)
    settings = gateway_settings(resolved, trials)
    executed = _in_fresh_process(tmp_path, (trials, settings))
    return _compare(db, summary.run_id, executed, ignore)


def test_a_pickled_trial_executed_in_a_fresh_process_gives_the_logged_rows_sim(tmp_path: Path) -> None:
    heart = {"name": "heart", "solver": "heart", "solver_params": {"rounds": 3, "mode": "verifier_free", "final": "last"}}
    study = sim_study(conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, heart], tasks=[{"task": "math/word_problems", "n": 4}])
    study["models"][0]["simulate"] = {"default_accuracy": 0.4, "error_rate": 0.2}
    study["models"][0]["max_retries"] = 0  # some calls fail: errored trials must come out alike too
    compared = _run_and_execute_apart(tmp_path, study, ignore=set())
    assert compared > 3 * 4 * 2  # trials, calls, rounds and scores were all compared


@pytest.mark.local_model
def test_a_pickled_trial_executed_in_a_fresh_process_gives_the_logged_rows_local(tmp_path: Path, local_server: Any) -> None:
    study = {
        "name": "worker-local",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 8}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "ii/sum", "n": 2}],
        "seed": 3,
        "concurrency": 2,
    }
    assert _run_and_execute_apart(tmp_path, study, ignore=ANSWER_DERIVED) >= 4 * 2
