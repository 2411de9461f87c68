"""The comparison table: errors, repeats, several tasks, families of comparisons, score types."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.run.simulate import sim_study, simulated_frame, simulated_frames
from workbench.stats import ALL_TASKS, adjust, cochran_q, compare, condition_table, gee_effects, paired_diff_ci, paired_t
from workbench.stats.table import scored_frame


def _frame(outcomes: dict[str, list[float | None]], task: str = "t1", model: str = "m", repeat: int = 0) -> pd.DataFrame:
    """Trials from per-condition outcome lists (None = errored trial)."""
    rows = []
    for condition, values in outcomes.items():
        for index, value in enumerate(values):
            rows.append(
                {"model": model, "condition": condition, "task": task, "item_id": f"{index:03d}", "repeat": repeat,
                 "score": value, "status": "error" if value is None else "ok", "n_calls": 1}
            )
    return pd.DataFrame(rows)


def _row(comparison, condition: str, task: str | None = None):
    return next(r for r in comparison.rows if r.condition == condition and (task is None or r.task == task))


def test_errored_trials_count_as_wrong_or_are_excluded_and_every_row_says_which() -> None:
    frame = _frame({"control": [1, 0, 1, 0, 1, 0, 1, 0, 1, 0], "EP": [1, 1, None, 1, None, 1, 1, 1, 1, 0]})
    wrong = compare(frame, "control", errors="wrong")
    excluded = compare(frame, "control", errors="exclude")
    for result in (wrong, excluded):
        row = _row(result, "EP")
        assert row.n == 10 and row.errors == 2  # counted either way
        assert row.errors_policy == result.errors_policy
    assert _row(wrong, "EP").accuracy == pytest.approx(0.7) and _row(wrong, "EP").examples == 10
    assert _row(excluded, "EP").accuracy == pytest.approx(7 / 8) and _row(excluded, "EP").examples == 8
    # excluded pairs drop from the paired difference: control's items 2 and 4 (both right) go too
    assert _row(excluded, "EP").delta == pytest.approx(np.mean([0, 1, 1, 1, 0, 1, 0, 0]))
    assert any("count as wrong" in n for n in wrong.notes) and any("excluded" in n for n in excluded.notes)
    assert _row(wrong, "control").errors == 0 and _row(wrong, "control").n == 10


def test_repeats_are_averaged_per_example_never_counted_as_independent() -> None:
    rng = np.random.default_rng(0)
    control, treatment = (rng.random(40) < 0.5).astype(float), (rng.random(40) < 0.65).astype(float)
    once = _frame({"control": list(control), "EP": list(treatment)})
    thrice = pd.concat([once.assign(repeat=r) for r in range(3)], ignore_index=True)
    single = _row(compare(once, "control", test="t"), "EP")
    repeated = _row(compare(thrice, "control"), "EP")
    assert repeated.test == "paired_t" and repeated.repeats == 3 and repeated.examples == 40 and repeated.n == 120
    assert repeated.p_value == pytest.approx(single.p_value, abs=1e-12)
    interval = paired_diff_ci(control, treatment, method="t")
    assert (repeated.ci_low, repeated.ci_high) == pytest.approx((interval.low, interval.high), abs=1e-12)
    # had the 120 trials been treated as independent pairs, the p-value would shrink
    naive = paired_t(np.tile(control, 3), np.tile(treatment, 3)).p_value
    assert naive < repeated.p_value / 5
    # one outcome per example: the exact McNemar test and Newcombe's interval
    assert single.test == "paired_t" and _row(compare(once, "control"), "EP").test == "mcnemar_exact"
    assert _row(compare(once, "control"), "EP").interval == "newcombe_paired"


def test_repeats_with_real_variation_use_per_example_means() -> None:
    study = sim_study({"control": 0.5, "EP": 0.7}, 50)
    study = study.model_copy(update={"spec": study.spec.model_copy(update={"repeats": 3})})
    frame = simulated_frame(study)
    row = _row(compare(frame, "control"), "EP")
    assert row.repeats == 3 and row.examples == 50 and row.n == 150
    scored = scored_frame(frame)
    per_example = scored.groupby(["condition", "item_id"])["value"].mean().unstack("condition")
    assert row.delta == pytest.approx(float((per_example["EP"] - per_example["control"]).mean()))
    assert row.p_value == pytest.approx(paired_t(per_example["control"], per_example["EP"]).p_value)


def _three_task_frame(seed: int = 5) -> pd.DataFrame:
    """Simulated outcomes of three replications, labelled as three tasks with different effects."""
    frames = []
    for frame, task in zip(simulated_frames(sim_study({"control": 0.5, "EP": 0.62, "NP": 0.5}, 120), 3, seed), ("a", "b", "c")):
        frames.append(frame.assign(task=f"suite/{task}"))
    return pd.concat(frames, ignore_index=True)


def test_several_tasks_get_per_task_rows_an_across_task_row_and_pooled_effects() -> None:
    frame = _three_task_frame()
    result = compare(frame, "control")
    tasks = {r.task for r in result.rows}
    assert tasks == {"suite/a", "suite/b", "suite/c", ALL_TASKS}
    all_row = _row(result, "EP", ALL_TASKS)
    assert all_row.examples == 360 and all_row.n == 360
    per_task = [_row(result, "EP", t) for t in ("suite/a", "suite/b", "suite/c")]
    assert all_row.delta == pytest.approx(np.mean([r.delta for r in per_task]))
    pooled = {p.condition: p for p in result.pooled}
    assert set(pooled) == {"EP", "NP"}
    ep = pooled["EP"]
    assert ep.tasks == 3 and ep.pooled is not None and ep.pooled.ci_low < ep.pooled.estimate < ep.pooled.ci_high
    # the relative gain is a ratio of the task-averaged means, not a mean of per-task ratios
    assert ep.relative.estimate == pytest.approx(np.mean([r.accuracy for r in per_task]) / np.mean([r.control_accuracy for r in per_task]) - 1)
    assert ep.relative.low < ep.relative.estimate < ep.relative.high and ep.relative_scale == "raw"
    assert ep.tasks_used == ("suite/a", "suite/b", "suite/c") and ep.tasks_left_out == ()
    assert ep.gee is not None and ep.gee.scale == "odds_ratio" and ep.gee.estimate > 1
    assert pooled["NP"].gee is not None and pooled["NP"].gee.p_value > 0.01
    assert ep.p_adjusted is not None and ep.p_adjusted >= ep.pooled.p_value


def test_families_decide_what_is_corrected_together() -> None:
    frame = pd.concat([_three_task_frame().assign(model="m1"), _three_task_frame(seed=9).assign(model="m2")], ignore_index=True)
    sizes = {}
    for family in ("model", "model-tasks", "run"):
        result = compare(frame, "control", family=family)
        task_row = _row(result, "EP", "suite/a")
        sizes[family] = task_row.family_size
        assert task_row.p_adjusted >= task_row.p_value
    assert sizes == {"model": 2, "model-tasks": 6, "run": 12}
    # the pooled effects across tasks follow the same family: per model, or all models together for "run"
    pooled = {family: compare(frame, "control", family=family).pooled for family in ("model", "run")}
    raw = [p.pooled.p_value for p in pooled["run"]]
    assert [p.p_adjusted for p in pooled["run"]] == pytest.approx(list(adjust(raw, "holm")))
    for model in ("m1", "m2"):
        mine = [p for p in pooled["model"] if p.model == model]
        assert [p.p_adjusted for p in mine] == pytest.approx(list(adjust([p.pooled.p_value for p in mine], "holm")))
    # BH is never stricter than Holm; no correction leaves p as it is
    holm, bh, none = (compare(frame, "control", adjust=m) for m in ("holm", "bh", "none"))
    for a, b, c in zip(holm.rows, bh.rows, none.rows):
        if a.p_value is not None:
            assert b.p_adjusted <= a.p_adjusted + 1e-12 and c.p_adjusted == c.p_value
    # a named family: only the listed conditions are compared (and corrected together)
    only = compare(frame, "control", conditions=["EP"])
    assert {r.condition for r in only.rows} == {"control", "EP"} and _row(only, "EP", "suite/a").family_size == 1


def test_continuous_scores_get_paired_t_wilcoxon_or_permutation_tests() -> None:
    rng = np.random.default_rng(3)
    x = rng.beta(2, 2, 60)
    frame = _frame({"control": list(x), "EP": list(np.clip(x + rng.normal(0.05, 0.1, 60), 0, 1))})
    assert _row(compare(frame, "control"), "EP").test == "paired_t"
    assert _row(compare(frame, "control", test="wilcoxon"), "EP").test == "wilcoxon"
    assert _row(compare(frame, "control", test="permutation"), "EP").test == "permutation"
    assert _row(compare(frame, "control"), "EP").odds_ratio is None  # only for 0/1 outcomes
    with pytest.raises(ValueError, match="one 0/1 outcome per example"):
        compare(frame, "control", test="mcnemar")


def test_bad_options_are_rejected_with_what_is_allowed() -> None:
    frame = _frame({"control": [1, 0, 1], "EP": [1, 1, 1]})
    for kwargs, message in (
        ({"adjust": "sidak"}, "allowed: holm, bh, bonferroni, none"),
        ({"family": "everything"}, "allowed: model, model-tasks, run"),
        ({"test": "z"}, "allowed: auto, mcnemar"),
        ({"conditions": ["NP"]}, "unknown condition"),
        ({"errors": "ignore"}, "wrong, exclude"),
    ):
        with pytest.raises(ValueError, match=message):
            compare(frame, "control", **kwargs)


def test_gee_clusters_repeats_by_example() -> None:
    frame = scored_frame(_three_task_frame())
    once = gee_effects(frame, "control", binary=True)
    repeated = gee_effects(pd.concat([frame.assign(repeat=r) for r in range(3)], ignore_index=True), "control", binary=True)
    # an empty answer must fail here: every condition gets an estimated effect, with no warning
    assert [e.condition for e in once] == [e.condition for e in repeated] == ["EP", "NP"]
    assert all(e.estimable and e.warning is None for e in [*once, *repeated])
    by_condition = {e.condition: e for e in once}
    for effect in repeated:
        single = by_condition[effect.condition]
        # identical repeats add no information: the interval stays as wide
        assert effect.estimate == pytest.approx(single.estimate, rel=1e-3)  # GEE iterates to a tolerance
        assert math.log(effect.ci_high / effect.ci_low) == pytest.approx(math.log(single.ci_high / single.ci_low), rel=0.02)


def test_condition_table_for_run_reports_across_all_tasks() -> None:
    frame = _three_task_frame()
    rows = condition_table(frame, "control", order=["control", "NP", "EP"])
    assert [r.condition for r in rows] == ["control", "NP", "EP"]
    ep = rows[2]
    reference = _row(compare(frame, "control"), "EP", ALL_TASKS)
    assert (ep.n, ep.errors, ep.delta, ep.p_value, ep.test) == (reference.n, reference.errors, reference.delta, reference.p_value, "mcnemar_exact")
    assert ep.mean_rounds is None and ep.ci_low < ep.delta < ep.ci_high


def test_all_conditions_at_once_cochran_q_or_friedman_per_task() -> None:
    frame = _three_task_frame()
    result = compare(frame, "control")
    assert {(o.task, o.test) for o in result.omnibus} == {(t, "cochran_q") for t in ("suite/a", "suite/b", "suite/c", ALL_TASKS)}
    one = next(o for o in result.omnibus if o.task == "suite/a")
    wide = scored_frame(frame[frame["task"] == "suite/a"]).pivot(index="item_id", columns="condition", values="value")
    reference = cochran_q(wide[["control", "EP", "NP"]].to_numpy())
    assert (one.examples, one.conditions, one.statistic, one.p_value) == (120, 3, reference.statistic, reference.p_value)
    repeated = compare(pd.concat([frame.assign(repeat=r) for r in range(2)], ignore_index=True), "control")
    assert {o.test for o in repeated.omnibus} == {"friedman"}
