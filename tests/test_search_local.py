"""A HEART schedule search on the embedded model (studies/search_heart_local.yaml) through the
CLI: every candidate's schedule is what its feedback rounds carried to the model, every model call
a `calls` row of the search's runs at the local server, and the confirmation is reported. The
model's answers are never asserted (temperature 0 is not bit-stable across machines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_json
from workbench.providers.local_models import LOCAL_MODELS
from workbench.store import connect_reader
from workbench.study.spec import load_study

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

STUDY = REPO / "studies" / "search_heart_local.yaml"


def test_a_heart_schedule_search_runs_on_the_embedded_model(tmp_path: Path, local_server) -> None:
    spec = load_study(STUDY).spec
    budget, rounds = spec.search.trials, spec.search.space.heart.rounds
    db = tmp_path / "log.duckdb"
    result = run_json("search", str(STUDY), "--db", str(db))
    assert result["n_trials"] == budget
    confirmation = result["confirmation"]
    assert {"delta", "ci_low", "ci_high", "p_value", "dev_delta", "candidates"} <= set(confirmation)
    assert 1 <= confirmation["candidates"] <= budget and confirmation["n_test"] == spec.search.test
    con = connect_reader(db)
    try:
        events = con.execute(
            "SELECT run_id, detail_json FROM run_events WHERE event = 'search_trial' ORDER BY json_extract(detail_json, '$.trial')::INT"
        ).fetchall()
        assert sorted({json.loads(d)["trial"] for _, d in events}) == list(range(budget))
        for run_id, detail in events:
            params = json.loads(detail)["params"]
            schedule = [params[f"heart.{r}"] for r in range(rounds)]
            trials = con.execute("SELECT trial_id FROM trials WHERE run_id = ?", [run_id]).fetchall()
            assert len(trials) == spec.search.dev
            for (trial_id,) in trials:
                carried = [e for (e,) in con.execute("SELECT emotion FROM rounds WHERE trial_id = ? AND round > 0 ORDER BY round", [trial_id]).fetchall()]
                assert carried == schedule, "each feedback round carries the candidate's emotion"
        endpoints = con.execute(
            "SELECT DISTINCT c.endpoint, r.name FROM calls c JOIN runs r USING (run_id) WHERE NOT c.cached"
        ).fetchall()
        missing = con.execute("SELECT count(*) FROM calls WHERE response_text IS NULL AND error IS NULL").fetchone()[0]
    finally:
        con.close()
    assert {e for e, _ in endpoints} == {LOCAL_MODELS["local/default"].endpoint}
    assert {n for _, n in endpoints} <= {f"{spec.name}.dev", f"{spec.name}.test"}
    assert missing == 0
    # the same command again continues the same search: nothing left to run, no model called again
    before = _model_calls(db)
    again = run_json("search", str(STUDY), "--db", str(db))
    assert again["n_trials"] == budget and again["best_params"] == result["best_params"]
    assert _model_calls(db) == before


def _model_calls(db: Path) -> int:
    con = connect_reader(db)
    try:
        return con.execute("SELECT count(*) FROM calls WHERE NOT cached").fetchone()[0]
    finally:
        con.close()
