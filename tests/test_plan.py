"""Planning before spending: `workbench plan` and `run --dry-run` (workbench/reports/plan.py), and `n: all`."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli, run_json, sim_study, write_study
from task_fixtures import write_ii_dir
from workbench.reports.plan import plan_study, walk
from workbench.providers import build_provider
from workbench.run.scheduler import run_study
from workbench.stats import power_paired_binary
from workbench.store import connect_reader
from workbench.study.spec import load_study
from workbench.tasks import builtin_tasks
from workbench.study.expand import expand

# A sim model that never answers right and always judges right: loops never stop early, so every
# trial makes exactly the calls its plan allows at most.
NEVER_RIGHT = {"default_accuracy": 0.0, "judge_accuracy": 1.0}
PROGRAMS = [
    {"name": "control"},
    {"name": "EP02", "stimuli": ["EP02"]},
    {"name": "heart_self", "solver": "heart", "solver_params": {"rounds": 2, "mode": "verifier_free", "final": "self_verify"}},
    {"name": "heart_synth", "solver": "heart", "solver_params": {"rounds": 3, "mode": "verifier_free", "final": "synthesis"}},
    {"name": "heart_oracle", "solver": "heart", "solver_params": {"rounds": 3, "mode": "oracle"}},
    {"name": "agents", "stimuli": [{"id": "MPX/agents", "perspectives": ["western", "confucian"]}]},
]
# by hand: (T+1) answers, each judged by the model for self_verify, + 1 synthesis; 2 agents + 1 synthesis
EXPECTED_PER_TRIAL = {"control": 1, "EP02": 1, "heart_self": 3 * 2, "heart_synth": 4 + 1, "heart_oracle": 4, "agents": 2 + 1}


def _programs_study(tmp_path: Path, n: int = 4, **overrides: Any) -> Path:
    study = sim_study(conditions=PROGRAMS, tasks=[{"task": "ii/sum", "n": n}], **overrides)
    study["models"][0]["simulate"] = NEVER_RIGHT
    return write_study(tmp_path / "programs.yaml", study)


def _rows(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["condition"]: c for c in plan["conditions"]}


def _logged_calls(db: Path, run_id: str) -> dict[str, set[int]]:
    con = connect_reader(db)
    try:
        rows = con.execute("SELECT condition, n_calls FROM trials WHERE run_id = ?", [run_id]).fetchall()
    finally:
        con.close()
    calls: dict[str, set[int]] = {}
    for condition, n_calls in rows:
        calls.setdefault(condition, set()).add(n_calls)
    return calls


def test_calls_at_most_for_single_turn_heart_and_multi_agent_match_what_a_run_makes(tmp_path: Path) -> None:
    path = _programs_study(tmp_path)
    db = tmp_path / "log.duckdb"
    before = run_json("plan", str(path), "--db", str(db))
    rows = _rows(before)
    assert {name: r["calls_per_trial_max"] for name, r in rows.items()} == EXPECTED_PER_TRIAL
    assert all(r["trials"] == 4 and r["calls_max"] == 4 * EXPECTED_PER_TRIAL[name] for name, r in rows.items())
    assert before["calls_max"] == before["new_calls_max"] == 4 * sum(EXPECTED_PER_TRIAL.values())
    assert before["cached_first_calls"] == 0 and before["trials_done"] == 0
    ran = run_json("run", str(path), "--db", str(db))
    assert ran["run_id"] == before["run_id"]
    # a loop that never succeeds uses its whole budget: the plan's maximum is reached, not exceeded
    assert _logged_calls(db, ran["run_id"]) == {name: {calls} for name, calls in EXPECTED_PER_TRIAL.items()}
    assert ran["model_calls"] + ran["cache_hits"] == before["calls_max"]


def test_the_walk_makes_the_calls_each_solver_declares(tmp_path: Path) -> None:
    """The registration's maximum and the program itself agree: walked with answers that never
    succeed, each trial's program sends exactly its declared calls, judge calls included."""
    study = sim_study(
        conditions=[*PROGRAMS, {"name": "cot", "solver": "dspy", "solver_params": {"program": "cot"}}],
        tasks=[{"task": "ii/sum", "n": 2}, {"task": "judge/truthfulqa", "n": 2}],
        judge={"id": "sim/judge"},
    )
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    providers = {m.id: build_provider(m) for m in [*resolved.spec.models, resolved.spec.judge]}
    plan = {r.condition: r for r in plan_study(resolved, tmp_path / "none.duckdb").conditions}
    for trial in expand(resolved, "r"):
        calls = asyncio.run(walk(trial, resolved.spec.judge, providers))
        purposes = [c.request.purpose for c in calls]
        judged = trial.task.id == "judge/truthfulqa"
        if trial.condition == "cot":
            # the filler never parses: ChatAdapter, then its JSONAdapter fallback, and the trial
            # fails before judging (a run whose fallback parses is judged: the plan allows 3)
            assert purposes == ["dspy", "dspy"]
            assert plan["cot"].calls_per_trial_max == 3
            continue
        assert [c.model.id for c in calls].count("sim/judge") == judged and (purposes[-1] == "judge") == judged, purposes
        assert len(calls) == EXPECTED_PER_TRIAL[trial.condition] + judged, (trial.condition, purposes)
        assert plan[trial.condition].calls_per_trial_max == EXPECTED_PER_TRIAL[trial.condition] + 1  # the judged task's


@pytest.mark.slow
def test_cached_counts_after_a_run_after_fresh_and_without_the_cache(tmp_path: Path) -> None:
    path = _programs_study(tmp_path)
    db = tmp_path / "log.duckdb"
    calls_max = 4 * sum(EXPECTED_PER_TRIAL.values())
    run_json("run", str(path), "--db", str(db))
    after = run_json("plan", str(path), "--db", str(db))
    assert after["trials_done"] == after["cached_first_calls"] == after["trials"] == 24
    assert after["new_calls_max"] == 0 and all(r["new_calls_max"] == 0 for r in after["conditions"])
    # a fresh run is a new run (nothing done) still served from the cache: every first call is there
    fresh = run_json("run", str(path), "--db", str(db), "--fresh", "--dry-run")
    assert fresh["run_id"] != after["run_id"] and fresh["trials_done"] == 0
    assert fresh["cached_first_calls"] == 24 and fresh["new_calls_max"] == calls_max - 24
    ran = run_json("run", str(path), "--db", str(db), "--fresh")
    assert ran["cache_hits"] >= 24 and ran["model_calls"] <= fresh["new_calls_max"]
    no_cache = run_json("run", str(path), "--db", str(db), "--fresh", "--no-cache", "--dry-run")
    assert no_cache["new_calls_max"] == calls_max


@pytest.mark.slow
def test_cost_of_a_priced_model_comes_from_litellms_cost_map_without_calling_it(tmp_path: Path) -> None:
    import litellm

    study = sim_study(models=[{"id": "openai/gpt-4o-mini", "params": {"temperature": 0.0, "max_tokens": 24}}, {"id": "openai/no-such-model-here"}])
    path = write_study(tmp_path / "priced.yaml", study)
    db = tmp_path / "runs" / "log.duckdb"
    # no key and a dead proxy: a call would fail, and nothing may be written
    dead = {"OPENAI_API_KEY": "", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    plan = run_json("plan", str(path), "--db", str(db), env=dead)
    assert not (tmp_path / "runs").exists()
    priced, unpriced = plan["models"]
    resolved = load_study(path)
    prompts = [t for t in expand(resolved, plan["run_id"]) if t.model.id == "openai/gpt-4o-mini"]
    tokens = sum(litellm.token_counter(model="openai/gpt-4o-mini", messages=[{"role": m.role, "content": m.content} for m in t.messages]) for t in prompts)
    assert priced["new_calls_max"] == 60 and priced["prompt_tokens_max"] == tokens
    assert priced["completion_tokens_max"] == 60 * 24 and not priced["max_tokens_assumed"]
    expected = sum(litellm.cost_per_token(model="openai/gpt-4o-mini", prompt_tokens=tokens, completion_tokens=60 * 24))
    assert priced["cost_usd_max"] == pytest.approx(expected) and expected > 0
    assert priced["cost_source"] == "litellm cost map" and priced["latency_source"] == "unknown"
    assert unpriced["cost_usd_max"] is None and unpriced["cost_source"] == "not in litellm's cost map"
    assert unpriced["max_tokens_assumed"] and plan["cost_usd_max"] is None and plan["seconds_max"] is None


@pytest.mark.parametrize("options", [(), ("--effect", "0.2", "--baseline", "0.3")])
def test_power_figures_are_power_paired_binary_at_the_planned_n(tmp_path: Path, options: tuple[str, ...]) -> None:
    study = sim_study(tasks=[{"task": "ii/sum", "n": 30}, {"task": "ii/diff", "n": 80}])
    plan = run_json("plan", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"), *options)
    effect, baseline = (0.2, 0.3) if options else (0.10, 0.5)
    assert {(r["task"], r["condition"]) for r in plan["power"]} == {(t, c) for t in ("ii/sum", "ii/diff") for c in ("EP02", "NP01")}
    for row in plan["power"]:
        assert row["comparisons"] == 2 and row["control"] == "control" and row["n"] == {"ii/sum": 30, "ii/diff": 80}[row["task"]]
        at_n = power_paired_binary(baseline, effect, row["n"], comparisons=2)
        needed = power_paired_binary(baseline, effect, power=0.8, comparisons=2)
        assert (row["power"], row["n_for_80"], row["effect"], row["baseline"]) == (at_n.power, needed.n, effect, baseline)


def test_impossible_power_figures_are_rejected_cleanly(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", sim_study())
    result = run_cli("plan", str(path), "--db", str(tmp_path / "log.duckdb"), "--baseline", "0.95", "--effect", "0.1")
    assert result.returncode == 2 and "--effect" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
def test_low_power_warning_before_plan_and_run(tmp_path: Path) -> None:
    weak = write_study(tmp_path / "weak.yaml", sim_study())  # n=20, two comparisons
    db = tmp_path / "log.duckdb"
    planned = run_cli("plan", str(weak), "--db", str(db), "--json")
    assert planned.returncode == 0, planned.stderr
    warnings = json.loads(planned.stdout)["warnings"]
    assert len(warnings) == 1 and "power below 50%" in warnings[0] and "10-point" in warnings[0]
    assert "warning: every comparison has power below 50%" in planned.stderr
    ran = run_cli("run", str(weak), "--db", str(db), "--json")
    assert ran.returncode == 0 and "warning: every comparison has power below 50%" in ran.stderr
    assert json.loads(ran.stdout)["trials_done"] == 60  # warned, then ran
    # one comparison on 400 examples: power about 0.8 at 10 points, no warning
    strong = write_study(tmp_path / "strong.yaml", sim_study(conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}], tasks=[{"task": "ii/sum", "n": 400}]))
    quiet = run_cli("plan", str(strong), "--db", str(db), "--json")
    assert json.loads(quiet.stdout)["warnings"] == [] and "warning" not in quiet.stderr


def test_a_study_of_one_condition_has_no_comparison_and_no_warning(tmp_path: Path) -> None:
    study = sim_study(conditions=[{"name": "control"}], models=[{"id": "sim/one"}])
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    plan = plan_study(resolved, tmp_path / "log.duckdb")
    assert plan.power == [] and plan.warnings == [] and plan.trials == plan.calls_max == 20


@pytest.mark.slow
def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", sim_study())
    db = tmp_path / "runs" / "log.duckdb"
    result = run_cli("run", str(path), "--db", str(db), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "plan: simstudy" in result.stdout and "model calls at most 60" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]
    # on an existing log: not a byte changed, no lock, no segment
    run_json("run", str(path), "--db", str(db))
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")}
    dry = run_json("run", str(path), "--db", str(db), "--fresh", "--dry-run")
    assert dry["trials"] == 60 and dry["cached_first_calls"] == 60
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")} == before


def test_n_all_on_a_generated_task_and_a_file_task(tmp_path: Path) -> None:
    (tmp_path / "quiz.csv").write_text("input,target\n" + "".join(f"q{i},a{i}\n" for i in range(7)))
    executed = len(json.loads((write_ii_dir(tmp_path / "ii", builtin_tasks()) / "execute" / "antonyms.json").read_text())["examples"])
    tasks = [
        {"task": "ii/negation", "n": "all"},  # an enumerated generator: 70 sentences
        {"task": "custom/quiz", "path": "quiz.csv", "metric": "em", "instruction": "Answer.", "n": "all"},
        {"task": "ii/antonyms", "path": "ii", "n": "all", "shots": 1},  # the execute split; demos from induce
    ]
    path = write_study(tmp_path / "s.yaml", sim_study(tasks=tasks))
    plan = run_json("plan", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert {r["task"]: r["n"] for r in plan["power"]} == {"ii/negation": 70, "custom/quiz": 7, "ii/antonyms": executed}
    ran = run_json("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert ran["trials_planned"] == plan["trials"] == 3 * (70 + 7 + executed)
    # with demos drawn from the same examples, `all` leaves the demo pool (50) out
    shots = write_study(tmp_path / "shots.yaml", sim_study(tasks=[{"task": "ii/negation", "n": "all", "shots": 2}]))
    assert load_study(shots).spec.tasks[0].n == 20


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ({"task": "ii/taxonomy_animal", "n": "all"}, "takes at most 50000"),
        ({"task": "ii/negation", "n": "most"}, "a whole number of at least 1, or `all`"),
    ],
)
def test_n_all_refused_where_it_cannot_be_taken(tmp_path: Path, entry: dict[str, Any], hint: str) -> None:
    path = write_study(tmp_path / "s.yaml", sim_study(tasks=[entry]))
    result = run_cli("plan", str(path), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "tasks[0].n" in result.stderr and hint in result.stderr, result.stderr


SMALL_CONDITIONS = [
    {"name": "EP02", "stimuli": ["EP02"]},
    {"name": "NP01", "stimuli": ["NP01"]},
    {"name": "loop", "solver": "heart", "solver_params": {"rounds": 1, "mode": "oracle"}},
    {"name": "vote", "solver": "heart", "solver_params": {"rounds": 2, "mode": "verifier_free", "final": "majority"}},
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    extra=st.lists(st.sampled_from(SMALL_CONDITIONS), min_size=1, max_size=3, unique_by=lambda c: c["name"]),
    tasks=st.lists(st.sampled_from(["ii/sum", "ii/diff", "ii/negation"]), min_size=1, max_size=2, unique=True),
    n=st.integers(1, 4),
    repeats=st.integers(1, 2),
    accuracy=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_random_small_studies_plan_what_the_runner_runs(tmp_path_factory: pytest.TempPathFactory, extra: list[dict[str, Any]], tasks: list[str], n: int, repeats: int, accuracy: float) -> None:
    tmp = tmp_path_factory.mktemp("random")
    study = sim_study(conditions=[{"name": "control"}, *extra], tasks=[{"task": t, "n": n} for t in tasks], repeats=repeats)
    study["models"][0]["simulate"] = {"default_accuracy": accuracy}
    resolved = load_study(write_study(tmp / "s.yaml", study))
    db = tmp / "log.duckdb"
    plan = plan_study(resolved, db)
    summary = run_study(resolved, db)
    assert plan.trials == summary.trials_planned == (1 + len(extra)) * len(tasks) * n * repeats
    assert summary.model_calls + summary.cache_hits <= plan.calls_max
    logged = _logged_calls(db, summary.run_id)
    for row in plan.conditions:
        assert max(logged[row.condition]) <= row.calls_per_trial_max
    again = plan_study(resolved, db)
    assert again.cached_first_calls == again.trials_done == plan.trials and again.new_calls_max == 0


@pytest.mark.local_model
@pytest.mark.slow
def test_plan_on_the_local_model_measures_then_reads_latency_from_the_log(tmp_path: Path, local_server: Any) -> None:
    study = {
        "name": "plan-local",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 8}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "loop", "solver": "heart", "solver_params": {"rounds": 1, "mode": "oracle"}}],
        "tasks": [{"task": "ii/sum", "n": 3}],
        "concurrency": 2,
    }
    path = write_study(tmp_path / "local.yaml", study)
    db = tmp_path / "log.duckdb"
    blind = run_json("plan", str(path), "--db", str(db))
    (model,) = blind["models"]
    assert model["latency_source"] == "unknown" and model["seconds_max"] is None and blind["seconds_max"] is None
    assert model["cost_usd_max"] == 0.0 and model["cost_source"] == "local (free)"
    assert blind["calls_max"] == 3 + 3 + 3 * 2 and not db.exists()
    measured = run_json("plan", str(path), "--db", str(db), "--measure")
    (model,) = measured["models"]
    assert model["latency_source"] == "measured (4 calls)" and model["latency_s"] > 0
    assert measured["seconds_max"] == pytest.approx(12 * model["latency_s"] / 2)
    ran = run_json("run", str(path), "--db", str(db))
    after = run_json("plan", str(path), "--db", str(db))
    (model,) = after["models"]
    assert model["latency_source"] == f"log ({ran['model_calls']} calls)" and model["latency_s"] > 0
    assert after["cached_first_calls"] == after["trials_done"] == 9 and after["new_calls_max"] == 0
