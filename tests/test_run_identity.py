"""The run's identity covers what is sent: an edited stimulus text (a user's file, or a copy of
the library with a HEART phrase or template changed) starts a new run, and that run's unchanged
calls still come from the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, run_json, write_study
from workbench.store import connect_reader
from workbench.study.spec import load_study

N = 4


def _user_file(path: Path, calm: str) -> None:
    items = [{"id": "MY/calm", "text": calm}, {"id": "MY/steady", "text": "Keep a steady pace."}]
    path.write_text(yaml.safe_dump({"family": "mine", "version": "1", "authored": True, "items": items}, sort_keys=False))


def _study(tmp_path: Path, model: dict[str, Any], **extra: Any) -> Path:
    study = {
        "name": "identity",
        "models": [model],
        "conditions": [{"name": "control"}, {"name": "calm", "stimuli": ["MY/calm"]}, {"name": "steady", "stimuli": ["MY/steady"]}],
        "tasks": [{"task": "ii/sum", "n": N}],
        "stimulus_files": ["mine.yaml"],
        "seed": 1,
        **extra,
    }
    return write_study(tmp_path / "study.yaml", study)


def _run_row(db: Path, run_id: str) -> dict[str, Any]:
    con = connect_reader(db)
    try:
        cursor = con.execute("SELECT spec_json, spec_hash, stimuli_sha256 FROM runs WHERE run_id = ?", [run_id])
        return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    finally:
        con.close()


def _edit_and_rerun(tmp_path: Path, model: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Path]:
    _user_file(tmp_path / "mine.yaml", "Take a deep breath.")
    path = _study(tmp_path, model)
    db = tmp_path / "log.duckdb"
    first = run_json("run", str(path), "--db", str(db))
    _user_file(tmp_path / "mine.yaml", "Take a deep breath and relax.")
    second = run_json("run", str(path), "--db", str(db))
    return first, second, db


def _assert_new_run_with_cached_unchanged_calls(first: dict[str, Any], second: dict[str, Any], db: Path) -> None:
    assert second["run_id"] != first["run_id"], "an edited stimulus text must start a new run"
    assert second["trials_done"] == first["trials_done"] == 3 * N
    # control and steady send what they sent before: served from the cache; calm's N calls are new
    assert second["cache_hits"] == 2 * N and second["model_calls"] == N
    old, new = _run_row(db, first["run_id"]), _run_row(db, second["run_id"])
    assert old["spec_json"] == new["spec_json"], "the study spec is unchanged ..."
    assert old["stimuli_sha256"] != new["stimuli_sha256"] and old["spec_hash"] != new["spec_hash"], "... its stimuli are not"
    con = connect_reader(db)
    texts = {r[0] for r in con.execute("SELECT DISTINCT json_extract_string(stimuli_json, '$[0].text') FROM trials WHERE condition = 'calm' AND run_id = ?", [second["run_id"]]).fetchall()}
    con.close()
    assert texts == {"Take a deep breath and relax."}, "the new run holds only the new text"


def test_an_edited_user_stimulus_starts_a_new_run_whose_unchanged_calls_come_from_the_cache(tmp_path: Path) -> None:
    _assert_new_run_with_cached_unchanged_calls(*_edit_and_rerun(tmp_path, {"id": "sim/planted", "simulate": {"default_accuracy": 0.5}}))


@pytest.mark.local_model
def test_an_edited_user_stimulus_starts_a_new_run_on_the_local_model(tmp_path: Path, local_server: Any) -> None:
    _assert_new_run_with_cached_unchanged_calls(*_edit_and_rerun(tmp_path, {"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 16}}))


def test_the_same_study_keeps_its_run(tmp_path: Path) -> None:
    _user_file(tmp_path / "mine.yaml", "Take a deep breath.")
    path = _study(tmp_path, {"id": "sim/planted"})
    assert load_study(path).spec_hash() == load_study(path).spec_hash()
    assert load_study(path).stimuli_sha256() == load_study(path).stimuli_sha256()


def _library_copy(tmp_path: Path) -> Path:
    """A copy of the workbench checkout (package and data), as a user who edits the library has."""
    root = tmp_path / "copy"
    for name in ("workbench", "stimuli", "tasks"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _heart_run(root: Path, tmp_path: Path) -> str:
    study = {
        "name": "heart-identity",
        "models": [{"id": "sim/heart", "simulate": {"default_accuracy": 0.4}}],
        "conditions": [{"name": "control"}, {"name": "h", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle"}}],
        "tasks": [{"task": "math/word_problems", "n": 3}],
        "seed": 2,
    }
    path = write_study(tmp_path / "heart.yaml", study)
    env = {"PYTHONPATH": str(root)}
    return run_json("run", str(path), "--db", str(tmp_path / "heart.duckdb"), cwd=root, env=env)["run_id"]


@pytest.mark.parametrize("edit", ["phrase", "template"])
def test_an_edited_heart_phrase_or_template_in_a_copy_of_the_library_starts_a_new_run(tmp_path: Path, edit: str) -> None:
    root = _library_copy(tmp_path)
    before = _heart_run(root, tmp_path)
    heart = root / "stimuli" / "heart.yaml"
    data = yaml.safe_load(heart.read_text())
    if edit == "phrase":
        data["items"][0]["text"] = data["items"][0]["text"] + " Truly."
    else:
        data["data"]["feedback_templates"]["incorrect"] += " Thank you."  # the oracle loop's template
    heart.write_text(yaml.safe_dump(data, sort_keys=False))
    assert _heart_run(root, tmp_path) != before


def test_a_run_row_records_the_fingerprint_as_the_study_computes_it(tmp_path: Path) -> None:
    _user_file(tmp_path / "mine.yaml", "Take a deep breath.")
    path = _study(tmp_path, {"id": "sim/planted"})
    db = tmp_path / "log.duckdb"
    out = run_json("run", str(path), "--db", str(db))
    row = _run_row(db, out["run_id"])
    resolved = load_study(path)
    assert row["stimuli_sha256"] == resolved.stimuli_sha256() and row["spec_hash"] == resolved.spec_hash()
    assert json.loads(row["spec_json"])["name"] == "identity"
