"""studies/task_suites.yaml on the embedded model, small: Instruction Induction, BIG-Bench, math
and the 16PF inventory in one study; every trial is answered, parsed and scored, and the log holds
per-task scores and the per-trait report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_json, write_study
from workbench.store import connect_reader
from workbench.tasks.inventory import load_inventory

pytestmark = pytest.mark.local_model


def test_a_study_mixing_ii_bbh_math_and_inventory_runs_on_the_embedded_model(tmp_path: Path, local_server) -> None:
    study = yaml.safe_load((REPO / "studies" / "task_suites.yaml").read_text())
    for ref in study["tasks"]:
        ref["n"] = 16 if ref["task"].startswith("inventory/") else 2
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    planned = 2 * (2 + 2 + 2 + 16)
    assert result["trials_done"] == result["model_calls"] == planned
    per_task = {(r["condition"], r["task"]): r for r in result["tasks"]}
    assert set(per_task) == {(c, t["task"]) for c in ("control", "EP02") for t in study["tasks"]}
    assert all(0.0 <= (r["score"] or 0.0) <= 1.0 for r in per_task.values())
    sports = per_task[("control", "bbh/sports_understanding")]
    assert sports["chance"] == 0.5 and sports["normalized"] == pytest.approx(100 * (sports["score"] - 0.5) / 0.5)

    # the inventory: one item per 16PF factor, each trait's level (1-5) and its change against the control
    traits = result["traits"]
    assert {r["trait"] for r in traits} == set(load_inventory("pers16").traits) and {r["condition"] for r in traits} == {"control", "EP02"}
    read = [r for r in traits if r["errors"] == 0]
    assert len(read) >= 24, f"only {len(read)} of 32 inventory answers named an option"
    assert all(1.0 <= r["mean"] <= 5.0 for r in read)

    con = connect_reader(db)
    rows = con.execute("SELECT task, response_text, answer, score, status, task_json, messages_json, item_input FROM trials").fetchall()
    assert len(rows) == planned
    by_task: dict[str, list[tuple]] = {}
    for task, response, answer, score, status, task_json, messages_json, item_input in rows:
        by_task.setdefault(task, []).append((answer, score, status))
        assert response, "every trial was answered"
        assert json.loads(task_json)["id"] == task
        assert item_input in json.loads(messages_json)[-1]["content"]
    for task in ("ii/first_word_letter", "bbh/sports_understanding", "math/word_problems"):
        assert all(status == "ok" and score in (0.0, 1.0) for _, score, status in by_task[task]), task
    # Parsing reaches the answer in real output: numbers for the word problems, a named choice for sports.
    assert all(answer.lstrip("-").replace(".", "").isdigit() for answer, *_ in by_task["math/word_problems"])
    assert any(answer in ("plausible", "implausible") for answer, *_ in by_task["bbh/sports_understanding"])
    # an inventory answer is scored on [0, 1] (its keyed level) or names no option: no answer (or an error row)
    assert all((status == "ok" and 0.0 <= score <= 1.0) or (status in ("no_answer", "error") and score is None) for _, score, status in by_task["inventory/pers16"])
    # EP02 follows the inventory's instruction, as on any task
    user = json.loads(con.execute("SELECT messages_json FROM trials WHERE task = 'inventory/pers16' AND condition = 'EP02' LIMIT 1").fetchone()[0])[-1]["content"]
    assert user.startswith('Question:\nGiven a statement of you: "You ') and "describes you. This is very important to my career.\nOptions:" in user
