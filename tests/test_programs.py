"""DSPy programs as the system under test: stimuli on the instructions, every call through the door."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conftest import run_cli, run_json, sim_study, write_study
from workbench.core.messages import Messages
from workbench.solvers.dspy_programs import DSPY_PROGRAMS as PROGRAMS, stimulated_instructions, trial_lm
from workbench.core.calls import Generation
from workbench.stimuli import builtin_library, resolve
from workbench.store import connect_reader

EP02 = builtin_library().get("EP02").text


def test_stimuli_reach_the_instructions_through_their_placements() -> None:
    library = builtin_library()
    suffix = resolve(library, "EP02")
    assert stimulated_instructions("Sum the two given numbers.", (suffix,)) == f"Sum the two given numbers. {EP02}"
    prefix = resolve(library, "EP02", placement="prefix", separator="newline")
    assert stimulated_instructions("Sum.", (prefix,)) == f"{EP02}\nSum."
    system = resolve(library, "EP02", placement="system")
    assert stimulated_instructions("Sum.", (system,)) == f"{EP02}\n\nSum."
    assert stimulated_instructions("Sum.", ()) == "Sum."


def test_with_instructions_leaves_the_registered_signature_unchanged() -> None:
    import dspy

    base = dspy.Signature(PROGRAMS.get("cot").signature)
    before = base.instructions
    derived = base.with_instructions("Sum. " + EP02)
    assert base.instructions == before and derived.instructions.endswith(EP02)


def test_every_dspy_call_goes_through_generate() -> None:
    """The adapter turns DSPy's request into workbench messages and back, with no DSPy cache."""
    import dspy

    seen: list[tuple[Messages, str]] = []

    async def generate(messages: Messages, purpose: str = "answer", *, sim_targets=None) -> Generation:
        seen.append((messages, purpose))
        return Generation(text="[[ ## answer ## ]]\n42\n\n[[ ## completed ## ]]")

    async def main() -> str:
        lm, engine = trial_lm(generate, "sim/x")
        assert isinstance(lm, dspy.BaseLM)
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
            module = dspy.Predict(dspy.Signature("input -> answer").with_instructions("Add."))
            first = await module.acall(input="40 2")
            await module.acall(input="40 2")  # the same request again: still a call (the door caches, not DSPy)
        assert engine.calls == 2
        return first.answer

    assert asyncio.run(main()) == "42"
    messages, purpose = seen[0]
    assert purpose == "dspy" and [m.role for m in messages] == ["system", "user"]
    assert "Add." in messages[0].content and "40 2" in messages[1].content


def test_a_failed_model_call_makes_an_errored_trial(tmp_path: Path) -> None:
    study = sim_study(tasks=[{"task": "ii/sum", "n": 2, "program": "predict"}])
    study["models"][0]["simulate"] = {"error_rate": 1.0}
    study["models"][0]["max_retries"] = 0
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result["errors"] == 6
    con = connect_reader(tmp_path / "log.duckdb")
    errors = {r[0] for r in con.execute("SELECT error FROM trials").fetchall()}
    assert all("dspy predict" in e and "server_error" in e for e in errors)
    assert con.execute("SELECT count(*) FROM calls WHERE purpose = 'dspy'").fetchone()[0] == 6


@pytest.mark.parametrize(
    ("tasks", "conditions", "field"),
    [
        ([{"task": "ii/sum", "program": "nosuch"}], None, "tasks[0].program"),
        ([{"task": "ii/sum", "program": "cot"}, {"task": "ii/sum", "program": "cot"}], None, "tasks[1]"),
        ([{"task": "ii/sum", "program": "cot"}], [{"name": "control"}, {"name": "y", "solver": "dspy", "solver_params": {"program": "cot"}}], "tasks[0].program"),
        ([{"task": "ii/sum"}], [{"name": "control"}, {"name": "y", "solver": "dspy"}], "conditions[1].solver_params.program"),
    ],
)
def test_bad_program_references_are_refused(tmp_path: Path, tasks, conditions, field) -> None:
    study = sim_study(tasks=tasks, **({"conditions": conditions} if conditions else {}))
    study["models"][0]["simulate"] = {}
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and field in result.stderr and "Traceback" not in result.stderr


def test_a_condition_can_run_every_task_through_a_program(tmp_path: Path) -> None:
    study = sim_study(conditions=[{"name": "control"}, {"name": "cot", "solver": "dspy", "solver_params": {"program": "cot"}}], tasks=[{"task": "ii/sum", "n": 3}])
    study["models"][0]["simulate"] = {"default_accuracy": 1.0}
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    con = connect_reader(tmp_path / "log.duckdb")
    purposes = dict(con.execute("SELECT t.condition, any_value(c.purpose) FROM calls c JOIN trials t USING (trial_id) GROUP BY 1").fetchall())
    assert purposes == {"control": "answer", "cot": "dspy"} and result["trials_done"] == 6
    errors = [e for (e,) in con.execute("SELECT error FROM trials WHERE error IS NOT NULL").fetchall()]
    assert not any("GoldSealed" in e for e in errors)  # the program never reads the gold (the simulator's plain answers fail DSPy's parse)


@pytest.mark.local_model
def test_a_dspy_program_runs_on_the_embedded_model_through_the_log(local_server, tmp_path: Path) -> None:
    study = {
        "name": "dspy-local",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 48}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "ii/sum", "n": 2, "program": "predict"}],
        "concurrency": 2,
    }
    path, db = write_study(tmp_path / "s.yaml", study), tmp_path / "log.duckdb"
    first = run_json("run", str(path), "--db", str(db))
    assert first["trials_done"] == 4 and first["model_calls"] >= 4
    con = connect_reader(db)
    calls = con.execute(
        "SELECT t.condition, t.task, c.purpose, c.model, c.messages_json, c.response_text FROM calls c JOIN trials t USING (trial_id)"
    ).fetchall()
    assert {(task, purpose, model) for _, task, purpose, model, *_ in calls} == {("ii/sum", "dspy", "local/default")}
    for condition, _, _, _, messages, response in calls:
        system = json.loads(messages)[0]["content"]
        assert "Sum the two given numbers." in system and (EP02 in system) == (condition == "EP02")
        assert response
    details = [json.loads(d) for (d,) in con.execute("SELECT details_json FROM trials").fetchall()]
    assert all(d["program"] == "predict" and d["dspy_calls"] >= 1 for d in details)
    con.close()
    again = run_json("run", str(path), "--db", str(db), "--fresh")
    assert again["model_calls"] == 0 and again["cache_hits"] == first["model_calls"]
