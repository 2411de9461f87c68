"""A study mixing Instruction Induction, BIG-Bench and math tasks on the embedded model: every
trial is answered, parsed and scored, and the log holds per-task scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_json, write_study
from workbench.store import connect_reader

pytestmark = pytest.mark.local_model


def test_mixed_suites_run_on_the_embedded_model(tmp_path: Path, local_server) -> None:
    study = {
        "name": "local-suites",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 48}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [
            {"task": "ii/first_word_letter", "n": 2},
            {"task": "bbh/sports_understanding", "n": 2},
            {"task": "math/word_problems", "n": 2, "shots": 1},
        ],
        "seed": 1,
        "concurrency": 2,
    }
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    assert result["trials_done"] == result["model_calls"] == 12 and result["errors"] == 0
    per_task = {(r["condition"], r["task"]): r for r in result["tasks"]}
    assert set(per_task) == {(c, t["task"]) for c in ("control", "EP02") for t in study["tasks"]}
    assert all(r["n"] == 2 and 0.0 <= r["score"] <= 1.0 for r in per_task.values())
    sports = per_task[("control", "bbh/sports_understanding")]
    assert sports["chance"] == 0.5 and sports["normalized"] == pytest.approx(100 * (sports["score"] - 0.5) / 0.5)

    con = connect_reader(db)
    rows = con.execute("SELECT task, response_text, answer, score, task_json, messages_json, item_input FROM trials").fetchall()
    assert len(rows) == 12
    for task, response, answer, score, task_json, messages_json, item_input in rows:
        assert response and answer is not None and score in (0.0, 1.0)
        recorded = json.loads(task_json)
        assert recorded["id"] == task and recorded["template"]["user"].startswith("Instruction: ")
        assert item_input in json.loads(messages_json)[-1]["content"]
    by_task: dict[str, list[tuple]] = {}
    for row in rows:
        by_task.setdefault(row[0], []).append(row)
    # Parsing reaches the answer in real output: numbers for the word problems, a named choice for sports.
    assert all(answer.lstrip("-").replace(".", "").isdigit() for _, _, answer, *_ in by_task["math/word_problems"])
    assert any(answer in ("plausible", "implausible") for _, _, answer, *_ in by_task["bbh/sports_understanding"])
