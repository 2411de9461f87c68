"""bench/extraction_shares.py: the format shares of a logged run, from the stored responses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_json, write_study
from workbench.store import query

II_DATA = Path(__file__).parent / "data" / "instruction-induction"


def _shares(db: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.extraction_shares", "--db", str(db), "--json"], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _study(model: dict, n: int) -> dict:
    return {
        "name": "shares",
        "models": [model],
        "conditions": [{"name": "control"}, {"name": "EP01", "stimuli": ["EP01"]}],
        "tasks": [{"task": "ii/sum", "n": n, "path": str(II_DATA)}, {"task": "ii/sentiment", "n": n, "path": str(II_DATA)}],
        "seed": 0,
        "concurrency": 2,
    }


def test_shares_of_a_simulated_run_count_what_the_responses_hold(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    model = {"id": "sim/planted", "simulate": {"accuracy": {"control": 0.7, "EP01": 0.4}}}
    run_json("run", str(write_study(tmp_path / "study.yaml", _study(model, 10))), "--db", str(db))
    body = _shares(db)
    rows = {(r["condition"], r["task"], r["extractor"]): r for r in body["rows"]}
    assert body["errored"] == 0 and len(rows) == 2 * 3 * 2  # conditions x (2 tasks + all) x extractors
    trials = query(db, "SELECT condition, task, response_text FROM trials")
    for (condition, task, extractor), row in rows.items():
        if task == "all":
            assert row["n"] == 20
            continue
        texts = [t["response_text"] for t in trials if (t["condition"], t["task"]) == (condition, task)]
        # The simulator answers the gold or a wrong one: a number off by 1-3 for sums, "I do not know." for labels.
        assert row["n"] == 10 and row["no_answer"] == texts.count("I do not know.") / 10
        assert row["gold_but_zero"] == 0.0


@pytest.mark.local_model
def test_shares_of_a_real_run(tmp_path: Path, local_server) -> None:
    db = tmp_path / "log.duckdb"
    model = {"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 48}}
    run_json("run", str(write_study(tmp_path / "study.yaml", _study(model, 3))), "--db", str(db))
    rows = _shares(db)["rows"]
    assert {(r["condition"], r["task"], r["extractor"]) for r in rows} >= {(c, t, e) for c in ("control", "EP01") for t in ("ii/sum", "ii/sentiment") for e in ("strict", "flexible")}
    for row in rows:
        assert 0.0 <= row["no_answer"] <= 1.0 and 0.0 <= row["gold_but_zero"] <= 1.0 and row["n"] == (6 if row["task"] == "all" else 3)
