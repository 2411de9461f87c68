"""The search's optimised-instruction baseline (workbench/search/baseline.py): a `baseline:` block
checked at load time, DSPy's COPRO tuning a program's instruction on the dev split through the
gateway (every call a `calls` row, cached), and the instruction confirmed as a condition on the
test split beside the control. The embedded model for the whole path; the simulated model (whose
plain replies DSPy cannot parse) for the logging, the failure report and the cache."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli, run_json, sim_study, write_study
from workbench import api
from workbench.core.errors import UserError
from workbench.store import connect_reader
from workbench.study.spec import load_study

SMALL = {"space": {"stimulus": ["EP01", "EP02"]}, "trials": 1, "dev": 2, "test": 2, "baseline": {"optimizer": "copro"}}


def _study(tmp_path: Path, search: dict[str, Any], model: dict[str, Any] | None = None) -> Path:
    study = sim_study(name="optimised", conditions=[{"name": "control"}], tasks=[{"task": "ii/sum", "n": 4}], concurrency=1, search=search,
                      models=[model or {"id": "sim/a", "simulate": {"default_accuracy": 0.5}}])
    return write_study(tmp_path / "study.yaml", study)


BAD_BASELINES = [
    ({"optimizer": "sgd"}, "search.baseline.optimizer", "copro"),
    ({}, "search.baseline.optimizer", "required"),
    ({"optimizer": "copro", "program": "nosuch"}, "search.baseline.program", "nosuch"),
    ({"optimizer": "copro", "breadth": 1}, "search.baseline.breadth", "2"),
    ({"optimizer": "copro", "depth": 0}, "search.baseline.depth", "1"),
    ({"optimizer": "miprov2", "candidates": 0}, "search.baseline.candidates", "1"),
    ({"optimizer": "copro", "temperature": -1}, "search.baseline.temperature", "0"),
    ({"optimizer": "copro", "seed": 3}, "search.baseline.seed", "unknown key"),
]


@pytest.mark.parametrize(("baseline", "field", "words"), BAD_BASELINES)
def test_bad_baselines_are_one_line_errors_naming_the_field(tmp_path: Path, baseline: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(UserError) as caught:
        load_study(_study(tmp_path, {**SMALL, "baseline": baseline}))
    message = str(caught.value)
    assert "\n" not in message and f": {field}" in message and words in message, message


def test_a_task_with_its_own_program_is_refused_with_a_baseline(tmp_path: Path) -> None:
    """A task's `program:` replaces every condition's solver: the baseline's instruction would be lost."""
    study = sim_study(conditions=[{"name": "control"}], tasks=[{"task": "ii/sum", "n": 4, "program": "cot"}], search=SMALL)
    with pytest.raises(UserError) as caught:
        load_study(write_study(tmp_path / "s.yaml", study))
    assert ": tasks[0].program" in str(caught.value) and "search.baseline.program" in str(caught.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["breadth", "depth", "candidates", "trials"]),
       value=st.one_of(st.integers(max_value=0), st.integers(min_value=101), st.text(max_size=4), st.floats(allow_nan=True), st.none()))
def test_generated_bad_knobs_name_their_field(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(UserError) as caught:
        load_study(_study(tmp_path, {**SMALL, "baseline": {"optimizer": "copro", key: value}}))
    assert f"search.baseline.{key}" in str(caught.value) and "\n" not in str(caught.value)


def test_the_baseline_block_leaves_the_run_identity_alone(tmp_path: Path) -> None:
    plain = load_study(_study(tmp_path, {k: v for k, v in SMALL.items() if k != "baseline"}))
    assert load_study(_study(tmp_path, SMALL)).spec_hash() == plain.spec_hash()


def test_a_conditions_instructions_reach_the_program(tmp_path: Path) -> None:
    """`solver_params.instructions` (one text, or per task) replaces the task's instruction."""
    conditions = [{"name": "control"}, {"name": "one", "solver": "dspy", "solver_params": {"program": "predict", "instructions": "Add them up."}},
                  {"name": "per-task", "solver": "dspy", "solver_params": {"program": "predict", "instructions": {"ii/sum": "Total the pair."}}}]
    study, db = sim_study(conditions=conditions, tasks=[{"task": "ii/sum", "n": 1}]), tmp_path / "log.duckdb"
    study["models"][0]["simulate"] = {}
    run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    con = connect_reader(db)
    systems = dict(con.execute("SELECT t.condition, c.messages_json FROM calls c JOIN trials t USING (trial_id) WHERE c.purpose = 'dspy'").fetchall())
    con.close()
    first = {name: json.loads(messages)[0]["content"] for name, messages in systems.items()}
    assert "Add them up." in first["one"] and "Total the pair." in first["per-task"]
    assert "Sum the two given numbers." not in first["one"] + first["per-task"]


@pytest.mark.parametrize("instructions", ["", "  ", {}, {"ii/sum": ""}, {"ii/sum": 3}, 7])
def test_bad_instructions_are_refused(tmp_path: Path, instructions: Any) -> None:
    conditions = [{"name": "control"}, {"name": "x", "solver": "dspy", "solver_params": {"program": "predict", "instructions": instructions}}]
    with pytest.raises(UserError) as caught:
        load_study(write_study(tmp_path / "s.yaml", sim_study(conditions=conditions)))
    assert "conditions[1].solver_params.instructions" in str(caught.value) and "\n" not in str(caught.value)


def _optimise_calls(db: Path) -> tuple[int, int, set[str]]:
    """The optimisation's calls: sent to the model, answered from the cache, and their purposes."""
    con = connect_reader(db)
    try:
        sent, hits = con.execute("SELECT count(*) FILTER (WHERE NOT cached), count(*) FILTER (WHERE cached) FROM calls WHERE run_id LIKE '%.optimise-%'").fetchone()
        purposes = {p for (p,) in con.execute("SELECT DISTINCT purpose FROM calls WHERE run_id LIKE '%.optimise-%'").fetchall()}
    finally:
        con.close()
    return sent, hits, purposes


@pytest.mark.slow  # about 16 s: two searches, one through the CLI
def test_an_optimiser_that_cannot_parse_the_replies_is_reported_and_replayed_from_the_log(tmp_path: Path) -> None:
    """The simulated model's plain replies are no DSPy fields: the optimiser fails, the search goes
    on and says so (one line in the CLI's text), its calls are logged, and a re-run replays them."""
    path, db = _study(tmp_path, SMALL), tmp_path / "log.duckdb"
    shown = run_cli("search", str(path), "--db", str(db), timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "baseline dspy-copro: the optimiser failed: ii/sum: AdapterParseError" in shown.stdout
    sent, hits, purposes = _optimise_calls(db)
    assert sent > 0 and hits == 0 and purposes == {"optimise:propose"}
    again = api.search(load_study(path), db)
    assert again.baseline is not None and again.baseline["condition"] is None and "AdapterParseError" in again.baseline["error"]
    assert again.baseline["model_calls"] == 0 and again.baseline["vs_control"] is None
    assert _optimise_calls(db) == (sent, sent, purposes)  # replayed: the same calls, answered from the log


def test_miprov2_takes_its_settings_and_its_failure_is_reported(tmp_path: Path) -> None:
    """MIPROv2 zero-shot accepts the block's settings (no TypeError): on the simulated model it
    fails where it first parses a proposal, and its calls are logged."""
    path, db = _study(tmp_path, {**SMALL, "baseline": {"optimizer": "miprov2", "candidates": 2, "trials": 1}}), tmp_path / "log.duckdb"
    result = api.search(load_study(path), db)
    assert result.baseline is not None and result.baseline["name"] == "dspy-miprov2"
    assert result.baseline["error"].startswith("ii/sum: AdapterParseError"), result.baseline["error"]
    assert _optimise_calls(db)[0] > 0


@pytest.mark.slow
@pytest.mark.local_model
def test_copro_finds_an_instruction_on_the_embedded_model_and_it_is_confirmed(local_server, tmp_path: Path) -> None:
    """COPRO at its smallest (one proposal, two candidates on two dev examples) on the embedded
    model: the instruction is a condition of the test run's spec, its calls are `calls` rows, the
    confirmation compares it with the control, and a second search calls the model for nothing."""
    model = {"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 48}}
    # the only candidate sends what the control sends: its dev run is the control's, answered from the cache
    path, db = _study(tmp_path, {**SMALL, "space": {"stimulus": ["none"]}}, model), tmp_path / "log.duckdb"
    result = api.search(load_study(path), db)
    baseline = result.baseline
    assert baseline is not None and baseline["error"] is None, baseline
    instruction = baseline["instructions"]["ii/sum"]
    assert instruction.strip() and baseline["condition"]["solver_params"] == {"program": "predict", "instructions": {"ii/sum": instruction}}
    assert baseline["vs_control"]["delta"] is not None and baseline["vs_control"]["test"]
    con = connect_reader(db)
    specs = [json.loads(s) for (s,) in con.execute("SELECT spec_json FROM runs WHERE name = 'optimised.test'").fetchall()]
    logged = json.loads(con.execute("SELECT solver_params_json FROM conditions WHERE condition = 'dspy-copro'").fetchone()[0])
    con.close()
    assert [c["solver_params"]["instructions"] for s in specs for c in s["conditions"] if c["name"] == "dspy-copro"] == [{"ii/sum": instruction}]
    assert logged["instructions"] == {"ii/sum": instruction}
    sent, hits, purposes = _optimise_calls(db)
    assert sent > 0 and purposes == {"optimise", "optimise:propose"}
    # the export's search table puts the instruction's effect beside the winner's
    made = api.export_files(db, tables=("csv",), bib=False)
    [row] = pd.read_csv(io.BytesIO(made.files["table.csv"])).query("table == 'search'").to_dict("records")
    assert row["baseline"] == "dspy-copro" and row["baseline_delta"] == pytest.approx(baseline["vs_control"]["delta"])
    written = tmp_path / "winner.yaml"
    again = api.search(load_study(path), db, winner_study=written)
    assert again.baseline["instructions"] == baseline["instructions"] and again.baseline["model_calls"] == 0
    assert _optimise_calls(db) == (sent, hits, purposes)  # the logged result is reused: no call at all
    assert [c.name for c in load_study(written).spec.conditions] == ["control", "none", "dspy-copro"]
