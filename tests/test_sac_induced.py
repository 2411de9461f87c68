"""inventory/sac_induced: SAC's probe items x intensity factors answered 1-5, the authors' prompt
with a SAC condition and the same question without it in the control, and the per-factor report
(mean rating, induced - control paired on items, Wilcoxon p, Holm-adjusted)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from conftest import run_cli, run_json, write_study
from reference_data import PUBLISHED, sac_code_prompt
from workbench.store import connect_reader
from workbench.study.spec import load_study
from workbench.tasks import builtin_tasks
from workbench.reports.traits import item_labels, sac_induced_deltas
from workbench.study.expand import expand

TASK = "inventory/sac_induced"
TRAITS = {t["trait"]: t for t in PUBLISHED["sac"]["traits"]}
FACTORS = {f["factor"]: f for f in PUBLISHED["sac"]["intensity_factors"]}


def _study(n: int, model: dict | None = None, **extra) -> dict:
    return {
        "name": "sac-induced-test",
        "models": [model or {"id": "sim/persona", "simulate": {"default_accuracy": 1.0}}],
        "conditions": [{"name": "neutral"}, {"name": "SAC-warmth-5", "stimuli": [{"id": "SAC/warmth", "level": 5}]}],
        "control": "neutral",
        "tasks": [{"task": TASK, "n": n}],
        **extra,
    }


def test_240_questions_every_probe_under_every_factor_verbatim() -> None:
    task = builtin_tasks()[TASK]
    items = task.items(240, 0)
    assert len(items) == 240 == task.available() and len({i.id for i in items}) == 240
    asked = set()
    for item in items:
        meta = dict(item.meta)
        trait, factor = TRAITS[meta["trait_name"]], FACTORS[meta["factor"]]
        assert meta["trait"] == trait["pf16_factor"] and meta["probe"] in trait["intensity_probe_items"]
        assert item.input == f"{factor['stem']} {meta['probe']}"  # the code's "{intensity_question} {question}"
        assert [meta[f"anchor_{n}"] for n in range(1, 6)] == [factor["anchors"][n] for n in range(1, 6)]
        assert item.targets == ("5",)
        asked.add((meta["trait_name"], meta["probe"], meta["factor"]))
    assert len(asked) == 16 * 3 * 5


def test_small_draws_cover_traits_and_factors_and_extend_as_a_prefix() -> None:
    task = builtin_tasks()[TASK]
    sixteen, eighty = task.items(16, 3), task.items(80, 3)
    assert {dict(i.meta)["trait"] for i in sixteen} == {t["pf16_factor"] for t in TRAITS.values()}
    assert {(dict(i.meta)["trait"], dict(i.meta)["factor"]) for i in eighty} == {(t["pf16_factor"], f) for t in TRAITS.values() for f in FACTORS}
    assert [i.id for i in eighty[:16]] == [i.id for i in sixteen]
    assert [i.id for i in task.items(80, 4)] != [i.id for i in eighty], "the probe drawn per pair depends on the seed"


def test_induced_prompts_are_the_authors_and_the_control_asks_without_the_induction(tmp_path: Path) -> None:
    trials = expand(load_study(write_study(tmp_path / "s.yaml", _study(80))), "r")
    assert len(trials) == 160
    for trial in trials:
        meta = dict(trial.item.meta)
        system, user = (m.content for m in trial.messages)
        assert system == PUBLISHED["sac"]["system_message"]
        code = sac_code_prompt(TRAITS["WARMTH"], level=5, mode="paper_intended", assessed=meta["trait_name"],
                               question=meta["probe"], factor=FACTORS[meta["factor"]])
        if trial.condition == "SAC-warmth-5":
            assert user == code and trial.stimuli[0].params["assessed_trait"] == meta["trait_name"]
        else:
            # the control: the authors' question block alone, its closing sentence without the target clause
            block = code[code.index("\n    \n    Task:") + 1:]
            assert user == block.replace(" at the intensity \n    of WARMTH", "") and "WARMTH" not in user.replace(meta["trait_name"], "")
            assert f"best represents the trait {meta['trait_name']} and exclusively give me the answer in the format - <number>" in user


def _planted(models: tuple[str, ...] = ("m",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """WARMTH (A) and INTELLECT (B) items under Frequency and Depth. Control ratings are 3; the
    induced condition rates A/Frequency 5, 5, 4 (delta +5/3), A/Depth 3, 3, 2 and one error
    (delta -1/2 on the two answered pairs, excluded), B unchanged on Frequency and +1, -1, 0 on Depth."""
    labels = item_labels("sac_probes", ("trait", "trait_name", "factor"))
    induced = {("A", "Frequency"): [5, 5, 4], ("A", "Depth"): [3, 2, None], ("B", "Frequency"): [3, 3, 3], ("B", "Depth"): [4, 2, 3]}
    rows = []
    for model in models:
        for (trait, factor), ratings in induced.items():
            ids = labels.loc[(labels["trait"] == trait) & (labels["factor"] == factor), "item_id"].tolist()
            assert len(ids) == 3
            for item_id, rating in zip(ids, ratings):
                for condition, value in (("neutral", 3), ("induced", rating)):
                    rows.append({"model": model, "condition": condition, "task": TASK, "item_id": item_id, "repeat": 0,
                                 "score": None if value is None else (value - 1) / 4, "status": "ok" if value is not None else "error"})
    return pd.DataFrame(rows), labels


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, written out (independent of workbench.stats)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def test_report_means_deltas_p_values_and_holm_on_planted_ratings() -> None:
    frame, labels = _planted()
    rows = sac_induced_deltas(frame, "neutral", labels)
    by = {(r["condition"], r["trait_name"], r["factor"]): r for r in rows}
    assert len(rows) == 2 * (4 + 2)  # two conditions x (4 trait-factor groups + 2 traits over all factors)
    control = by[("neutral", "WARMTH", "Frequency")]
    assert (control["mean"], control["delta"], control["p_value"], control["n"]) == (3.0, None, None, 3)
    a_freq = by[("induced", "WARMTH", "Frequency")]
    assert (a_freq["mean"], a_freq["control_mean"], a_freq["n_pairs"], a_freq["errors"]) == (pytest.approx(14 / 3), 3.0, 3, 0)
    assert a_freq["delta"] == pytest.approx(5 / 3)
    assert a_freq["p_value"] == pytest.approx(stats.wilcoxon([2, 2, 1], zero_method="zsplit").pvalue)
    a_depth = by[("induced", "WARMTH", "Depth")]
    assert (a_depth["n"], a_depth["errors"], a_depth["n_pairs"], a_depth["mean"], a_depth["delta"]) == (3, 1, 2, 2.5, -0.5)
    b_depth = by[("induced", "INTELLECT", "Depth")]
    assert (b_depth["delta"], b_depth["mean"]) == (0.0, 3.0)
    # per trait over all factors: WARMTH pairs 2, 2, 1, 0, -1 (five answered), INTELLECT 0, 0, 0, 1, -1, 0
    a_all, b_all = by[("induced", "WARMTH", "all")], by[("induced", "INTELLECT", "all")]
    assert (a_all["n_pairs"], a_all["delta"], a_all["errors"], a_all["n"]) == (5, pytest.approx(4 / 5), 1, 6)
    assert (b_all["n_pairs"], b_all["delta"]) == (6, 0.0)
    assert a_all["p_value"] == pytest.approx(stats.wilcoxon([2, 2, 1, 0, -1], zero_method="zsplit").pvalue)
    # Holm within each kind of row: the four trait-factor tests together, the two per-trait tests together
    for factor_rows in ([r for r in rows if r["factor"] != "all"], [r for r in rows if r["factor"] == "all"]):
        tested = [r for r in factor_rows if r["p_value"] is not None]
        assert [r["p_adjusted"] for r in tested] == pytest.approx(_holm([r["p_value"] for r in tested]))
    assert all(r["errors_policy"] == "exclude" for r in rows)


def test_report_families_are_per_model_and_errors_count_as_the_lowest_rating_when_wrong() -> None:
    frame, labels = _planted(("m", "m2"))
    rows = sac_induced_deltas(frame, "neutral", labels)
    one = [r["p_adjusted"] for r in sac_induced_deltas(frame[frame["model"] == "m"], "neutral", labels)]
    assert [r["p_adjusted"] for r in rows if r["model"] == "m"] == pytest.approx(one, nan_ok=True), "each model its own family"
    wrong = {(r["condition"], r["trait_name"], r["factor"]): r for r in sac_induced_deltas(frame[frame["model"] == "m"], "neutral", labels, errors="wrong")}
    a_depth = wrong[("induced", "WARMTH", "Depth")]
    assert (a_depth["mean"], a_depth["delta"], a_depth["n_pairs"]) == (2.0, -1.0, 3)
    # a response with no rating is counted apart from a failed trial, and treated alike in the means
    unrated = frame.assign(status=frame["status"].replace("error", "no_answer"))
    for policy, mean in (("exclude", 2.5), ("wrong", 2.0)):
        row = next(r for r in sac_induced_deltas(unrated[unrated["model"] == "m"], "neutral", labels, errors=policy)
                   if (r["condition"], r["trait_name"], r["factor"]) == ("induced", "WARMTH", "Depth"))
        assert (row["errors"], row["no_answer"], row["mean"]) == (0, 1, mean)
    assert (a_depth["errors"], a_depth["no_answer"]) == (1, 0)


@pytest.mark.slow
def test_run_and_compare_show_the_report(tmp_path: Path) -> None:
    """A simulated model rating every item at the gold (5) in both conditions, with one condition
    at accuracy 0.5 (its other answers are 2-4, or a number off the scale: no rating)."""
    model = {"id": "sim/rater", "simulate": {"accuracy": {"neutral": 1.0, "SAC-warmth-5": 0.5}}}
    path = write_study(tmp_path / "s.yaml", _study(80, model))
    db = str(tmp_path / "log.duckdb")
    result = run_json("run", str(path), "--db", db)
    rows = result["sac_induced"]
    assert {(r["condition"], r["factor"]) for r in rows} == {(c, f) for c in ("neutral", "SAC-warmth-5") for f in [*FACTORS, "all"]}
    assert len(rows) == 2 * (16 * 5 + 16) and "traits" not in result
    neutral = [r for r in rows if r["condition"] == "neutral"]
    assert all(r["mean"] == 5.0 and r["n"] == (1 if r["factor"] != "all" else 5) for r in neutral)
    induced = [r for r in rows if r["condition"] == "SAC-warmth-5" and r["factor"] == "all"]
    con = connect_reader(tmp_path / "log.duckdb")
    logged = con.execute("SELECT item_id, score, status FROM trials WHERE condition = 'SAC-warmth-5'").df()
    labels = item_labels("sac_probes", ("trait", "trait_name", "factor")).merge(logged, on="item_id")
    for row in induced:
        mine = labels[labels["trait_name"] == row["trait_name"]]
        expected = 1.0 + 4.0 * mine["score"].fillna(0.0)  # the study counts errors as wrong (level 1)
        assert row["mean"] == pytest.approx(expected.mean()) and row["delta"] == pytest.approx(expected.mean() - 5.0)
        assert row["errors"] + row["no_answer"] == int((mine["status"] != "ok").sum())
    compared = run_json("compare", "--db", db)
    assert compared["sac_induced"] == rows
    plain = run_cli("compare", "--db", db)
    assert plain.returncode == 0 and "sac_induced" in plain.stdout and "Willingness" in plain.stdout
    shown = run_cli("run", str(path), "--db", db)
    assert shown.returncode == 0 and "sac_induced" in shown.stdout and json.loads(run_cli("run", str(path), "--db", db, "--json").stdout)["model_calls"] == 0


def test_the_example_study_loads_with_240_trials() -> None:
    study = load_study(Path(__file__).resolve().parent.parent / "studies" / "sac_induced.yaml")
    assert study.control_name == "neutral" and len(expand(study, "r")) == 240


@pytest.mark.slow
@pytest.mark.local_model
def test_sac_induced_runs_on_the_embedded_model(tmp_path: Path, local_server) -> None:
    """4 questions (four traits under Frequency) x neutral and WARMTH at level 5 (the induced
    prompt is long: about a minute a trial on a loaded 2-core machine): every trial is answered and
    either read as a rating 1-5 or logged apart; the report covers the traits asked. No answer is
    asserted (temperature 0 is not bit-stable across machines)."""
    model = {"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 8}}
    path = write_study(tmp_path / "s.yaml", _study(4, model, concurrency=2))
    result = run_json("run", str(path), "--db", str(tmp_path / "log.duckdb"), timeout=2400)
    assert result["trials_done"] == 8 and result["model_calls"] + result["cache_hits"] >= 8
    con = connect_reader(tmp_path / "log.duckdb")
    trials = con.execute("SELECT condition, response_text, answer, score, status FROM trials").fetchall()
    assert all(response is not None for _, response, _, _, _ in trials)
    read = [(answer, score) for _, _, answer, score, status in trials if status == "ok"]
    assert all(answer in {"1", "2", "3", "4", "5"} and score == (int(answer) - 1) / 4 for answer, score in read)
    assert len(read) >= 4, f"only {len(read)} of 8 answers gave a rating 1-5"
    rows = result["sac_induced"]
    asked = {"WARMTH", "INTELLECT", "EMOTIONAL STABILITY", "ASSERTIVENESS"}
    assert {(r["condition"], r["trait_name"], r["factor"]) for r in rows} == {(c, t, f) for c in ("neutral", "SAC-warmth-5") for t in asked for f in ("Frequency", "all")}
    assert all(r["mean"] is None or 1.0 <= r["mean"] <= 5.0 for r in rows)
