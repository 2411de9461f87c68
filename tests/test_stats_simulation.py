"""Statistical validation on the workbench's simulated model: false-positive rates without a
planted effect, detection rate of a planted effect against the computed power.

Studies run through workbench.simulate, which produces the outcomes the runner would log with
the runner's own trial code minus the cache and the log (checked first, against real runs).
Every study is seeded; the tests are deterministic.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np

from workbench.run.scheduler import Runner
from workbench.run.simulate import planted_pair_study, sim_study, simulated_frame, simulated_frames, simulated_pvalues
from workbench.reports.power import simulated_power
from workbench.stats import adjust, load_run, power_paired_binary
from workbench.study.spec import StudySpec, resolve_study

STUDIES = 1000
ALPHA = 0.05
WORKERS = 2  # the studies are spread over two processes (CI has two cores); results do not depend on it


def _simulation_error(rate: float, studies: int = STUDIES) -> float:
    """Three standard errors of a rate estimated from `studies` studies."""
    return 3 * math.sqrt(rate * (1 - rate) / studies)


def test_in_process_simulation_yields_exactly_what_the_runner_logs(tmp_path: Path) -> None:
    spec = StudySpec.model_validate(
        {
            "name": "agreement",
            "models": [
                {
                    "id": "sim/check",
                    "params": {"temperature": 0.7},
                    "max_retries": 0,
                    "simulate": {"accuracy": {"control": 0.4, "EP02": 0.7}, "error_rate": 0.1, "shared_difficulty": 0.5},
                }
            ],
            "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "NP01", "stimuli": ["NP01"]}],
            "tasks": [{"task": "ii/sum", "n": 30}],
            "repeats": 2,
        }
    )
    for seed in (1, 2):
        logged = _logged_and_simulated_agree(spec.model_copy(update={"seed": seed}), tmp_path / f"log{seed}.duckdb")
        assert len(logged) == 180
        assert (logged["status"] == "error").sum() > 0


def test_in_process_simulation_agrees_on_oracle_loops_judges_and_inventories(tmp_path: Path) -> None:
    """The programs that read the gold (an oracle HEART loop), call a judge, or score unparseable answers as errors."""
    sim = {"id": "sim/check", "params": {"temperature": 0.7}, "max_retries": 0, "simulate": {"accuracy": {"control": 0.3}, "error_rate": 0.05}}
    spec = StudySpec.model_validate(
        {
            "name": "agreement-programs",
            "models": [sim],
            "judge": {"id": "sim/judge", "simulate": {"default_accuracy": 0.9}},
            "conditions": [{"name": "control"}, {"name": "heart", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle"}}],
            "tasks": [{"task": "ii/sum", "n": 20}, {"task": "judge/truthfulqa", "n": 10}, {"task": "inventory/pers16", "n": 10}],
            "seed": 3,
        }
    )
    logged = _logged_and_simulated_agree(spec, tmp_path / "log.duckdb")
    assert len(logged) == 80 and (logged["n_calls"] > 1).any()  # loops and judges made several calls


def _logged_and_simulated_agree(spec: StudySpec, db: Path):  # noqa: ANN202 - a DataFrame
    """Run `spec` through the runner and in process; every outcome column must agree. Returns the logged frame."""
    study = resolve_study(spec, spec.name)
    asyncio.run(Runner(study, db).run())
    key = ["model", "condition", "task", "item_id", "repeat"]
    logged = load_run(db).frame.sort_values(key).reset_index(drop=True)
    simulated = simulated_frame(study).sort_values(key).reset_index(drop=True)
    assert len(logged) == len(simulated)
    for column in ("model", "condition", "task", "item_id", "repeat", "status", "n_calls"):
        assert logged[column].tolist() == simulated[column].tolist(), column
    assert np.array_equal(logged["score"].to_numpy(dtype=float), simulated["score"].to_numpy(dtype=float), equal_nan=True)
    return logged


def test_false_positive_rates_without_a_planted_effect_exact_midp_and_holm() -> None:
    """Four stimulus conditions with the control's accuracy, 100 examples, 1000 studies."""
    study = sim_study({"control": 0.5, "A": 0.5, "B": 0.5, "C": 0.5, "D": 0.5}, 100)
    pvalues = simulated_pvalues(study, STUDIES, tests=("mcnemar", "midp"), seed=10_000, workers=WORKERS)
    exact_p, mid_p = pvalues["mcnemar"], pvalues["midp"]
    assert exact_p.shape == (STUDIES, 4)

    # Per comparison (4000, but counted as if only 1000 were independent: they share a control).
    exact_rate = float(np.mean(exact_p <= ALPHA))
    mid_rate = float(np.mean(mid_p <= ALPHA))
    assert exact_rate <= ALPHA + _simulation_error(ALPHA), exact_rate
    assert 0.035 <= mid_rate <= 0.065, mid_rate
    # The rates are the tests' computed sizes for this design (exact is conservative here).
    exact_size = power_paired_binary(0.5, 0.0, 100, test="exact").power
    mid_size = power_paired_binary(0.5, 0.0, 100, test="midp").power
    assert abs(exact_rate - exact_size) <= _simulation_error(exact_size), (exact_rate, exact_size)
    assert abs(mid_rate - mid_size) <= _simulation_error(mid_size), (mid_rate, mid_size)
    assert exact_rate < mid_rate

    # Family-wise: any of the four rejected. Holm keeps it at alpha; without it, it is not kept.
    holm = np.array([adjust(row, "holm") for row in exact_p])
    familywise = float(np.mean((holm <= ALPHA).any(axis=1)))
    unadjusted = float(np.mean((exact_p <= ALPHA).any(axis=1)))
    assert familywise <= ALPHA + _simulation_error(ALPHA), familywise
    assert unadjusted > ALPHA + _simulation_error(ALPHA), unadjusted


def test_planted_difference_of_ten_points_on_400_examples_is_detected_at_the_computed_power() -> None:
    computed = power_paired_binary(0.5, 0.10, 400)  # exact McNemar, independent outcomes
    assert 0.75 < computed.power < 0.85
    simulated = simulated_power(0.5, 0.10, 400, studies=STUDIES, seed=20_000, workers=WORKERS)
    assert abs(simulated["power"] - computed.power) <= 0.05, (simulated, computed.power)


def test_planned_examples_reach_the_target_power_at_a_planted_discordance_with_several_comparisons() -> None:
    plan = power_paired_binary(0.6, 0.12, power=0.8, discordance=0.2, comparisons=3)
    assert plan.alpha_per_comparison == ALPHA / 3 and 0.8 <= plan.power < 0.83
    study = planted_pair_study(0.6, 0.12, plan.n, discordance=0.2)
    observed = []
    for frame in simulated_frames(study, 100, seed=30_000):
        wide = frame.pivot(index="item_id", columns="condition", values="score")
        observed.append(float(np.mean(wide["control"] != wide["treatment"])))
    assert abs(np.mean(observed) - 0.2) < 0.01  # the simulator plants the discordance asked for
    simulated = simulated_power(0.6, 0.12, plan.n, discordance=0.2, comparisons=3, studies=300, seed=40_000, workers=WORKERS)
    assert abs(simulated["power"] - plan.power) <= 0.05 + 0.02, (simulated, plan.power)
    # and fewer examples than independent outcomes would need
    assert plan.n < power_paired_binary(0.6, 0.12, power=0.8, comparisons=3).n


def test_spreading_studies_over_processes_does_not_change_the_results() -> None:
    study = sim_study({"control": 0.5, "EP": 0.6, "NP": 0.5}, 12)
    one = simulated_pvalues(study, 100, tests=("mcnemar", "t"), seed=7)
    two = simulated_pvalues(study, 100, tests=("mcnemar", "t"), seed=7, workers=2)
    for test in ("mcnemar", "t"):
        assert one[test].shape == (100, 2) and np.array_equal(one[test], two[test], equal_nan=True)
