"""The HEART loop on the simulated model: every schedule, every verifier-free strategy, the oracle,
the baselines, history, seeds and the per-round analysis."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import run_json, write_study
from workbench.solvers.heart import FEEDBACK, HeartPlan, read_verdict
from workbench.solvers.heart.loop import bare_feedback, schedule_seed
from workbench.reports.rounds import condition_costs, gain_and_cost, round_curve
from workbench.run.scheduler import run_study
from workbench.stimuli import builtin_library, feedback_phrases as heart
from workbench.stimuli.feedback_phrases import Verdicts
from workbench.store import connect_reader, query
from workbench.study.spec import load_study

T = 4


def _loop(name: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "solver": "heart", "solver_params": {"rounds": T, **params}}


def _study(conditions: list[dict[str, Any]], *, n: int = 12, simulate: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": "heart-sim",
        "models": [{"id": "sim/heart", "params": {"temperature": 0.0}, "max_retries": 0, "simulate": simulate or {"default_accuracy": 0.3}}],
        "conditions": [{"name": "control"}, *conditions],
        "tasks": [{"task": "math/word_problems", "n": n}],
        "seed": 7,
        "concurrency": 4,
        **extra,
    }


def _run(tmp_path: Path, study: dict[str, Any]) -> tuple[Any, str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "log.duckdb"
    resolved = load_study(write_study(tmp_path / "s.yaml", study))
    summary = run_study(resolved, db)
    return resolved, summary.run_id, db


def _rounds(db: Path, run_id: str, condition: str) -> dict[str, list[dict[str, Any]]]:
    """Rounds rows by trial, ordered by round."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in query(db, "SELECT * FROM rounds WHERE run_id = ? AND condition = ? ORDER BY trial_id, round", [run_id, condition]):
        out.setdefault(row["trial_id"], []).append(row)
    return out


def _trials(db: Path, run_id: str, condition: str) -> dict[str, dict[str, Any]]:
    rows = query(db, "SELECT * FROM trials WHERE run_id = ? AND condition = ?", [run_id, condition])
    return {row["trial_id"]: {**row, "details": json.loads(row["details_json"])} for row in rows}


def _calls(db: Path, trial_id: str) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM calls WHERE trial_id = ? ORDER BY call_index", [trial_id])


# -- schedules ------------------------------------------------------------------------------------

SCHEDULES = {
    "static": {"name": "static", "emotion": "anger"},
    "alternating": "alternating",
    "random": {"name": "random", "emotions": ["fear", "surprise"]},
    "sequence": {"name": "sequence", "steps": ["sadness", "HEART/happiness/5", "disgust"]},
}


def test_each_schedule_picks_its_emotions_and_logs_every_round(tmp_path: Path) -> None:
    conditions = [_loop(name, mode="verifier_free", final="last", schedule=schedule) for name, schedule in SCHEDULES.items()]
    resolved, run_id, db = _run(tmp_path, _study(conditions))
    tones = heart.emotions()
    texts = {item.id: item.text for item in heart.phrases()}
    seen_random: Counter[str] = Counter()
    for name in SCHEDULES:
        trials = _trials(db, run_id, name)
        rounds = _rounds(db, run_id, name)
        assert len(trials) == 12 and set(rounds) == set(trials)
        for trial_id, rows in rounds.items():
            assert [r["round"] for r in rows] == list(range(T + 1)), "verifier-free `last` runs every round"
            assert rows[0]["emotion"] is None and rows[0]["feedback"] is None
            feedback = rows[1:]
            emotions = [r["emotion"] for r in feedback]
            for r in feedback:
                assert heart.emotion_of(builtin_library().get(r["phrase_id"])) == r["emotion"]
                assert r["tone"] == tones[r["emotion"]]
                # verifier-free mode says nothing about correctness: the `review` template around the phrase
                assert r["feedback"] == f"Look at your previous answer again. {texts[r['phrase_id']]} Please answer again."
                assert json.loads(r["messages_json"])[-1] == {"role": "user", "content": r["feedback"]}
            if name == "static":
                assert emotions == ["anger"] * T
                assert len({r["phrase_id"] for r in feedback}) == T, "no phrase repeats before the emotion's phrases run out"
            elif name == "alternating":
                assert [tones[e] for e in emotions] == ["critical", "encouraging"] * (T // 2)
            elif name == "random":
                assert set(emotions) <= {"fear", "surprise"}
                seen_random.update(emotions)
            else:
                assert emotions == ["sadness", "happiness", "disgust", "sadness"]
                assert feedback[1]["phrase_id"] == "HEART/happiness/5"
            details = trials[trial_id]["details"]
            assert details["schedule_seed"] == schedule_seed(trials[trial_id]["seed"])
            assert details["emotions"] == emotions and details["phrase_ids"] == [r["phrase_id"] for r in feedback]
    assert set(seen_random) == {"fear", "surprise"}, "a random schedule draws both emotions across trials"


def test_picks_are_reproduced_from_the_logged_seed_and_plan(tmp_path: Path) -> None:
    """Every random choice derives from the trial's seed: replaying the logged plan with the logged
    seed gives the logged emotions and phrases, round by round."""
    conditions = [_loop(name, mode="verifier_free", final="last", schedule=schedule) for name, schedule in SCHEDULES.items()]
    _, run_id, db = _run(tmp_path, _study(conditions, n=6))
    con = connect_reader(db)
    plans = {c: json.loads(p) for c, p in con.execute("SELECT condition, solver_params_json FROM conditions WHERE run_id = ?", [run_id]).fetchall()}
    con.close()
    for name in SCHEDULES:
        plan = HeartPlan.model_validate(plans[name])
        for trial in _trials(db, run_id, name).values():
            rng, used = random.Random(trial["details"]["schedule_seed"]), set()
            kind, schedule, bank = FEEDBACK.get(plan.feedback), plan.schedule_model(), plan.phrase_bank()
            replay = [kind.turn(t, rng, bank, schedule, used) for t in range(1, T + 1)]
            assert [(p.emotion, p.phrase_id) for p in replay] == list(zip(trial["details"]["emotions"], trial["details"]["phrase_ids"]))
    # paired: the same query carries the same seed, so two conditions with one schedule pick alike
    twins = _run(tmp_path / "twins", _study([_loop("a", mode="verifier_free", final="last"), _loop("b", mode="verifier_free", final="majority")], n=4))
    a = sorted((t["item_id"], t["details"]["phrase_ids"]) for t in _trials(twins[2], twins[1], "a").values())
    b = sorted((t["item_id"], t["details"]["phrase_ids"]) for t in _trials(twins[2], twins[1], "b").values())
    assert a == b


def test_a_sequence_reads_phrase_ids_of_a_user_heart_file_without_slashes(tmp_path: Path) -> None:
    """Steps are classified against the family's emotions and phrase ids (not by a '/'), and the
    plan records which is which."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    items = [{"id": "joy1", "emotion": "happiness", "asserts_error": False, "text": "Lovely effort!"},
             {"id": "joy2", "emotion": "happiness", "asserts_error": False, "text": "What fun!"},
             {"id": "mad1", "emotion": "anger", "asserts_error": False, "text": "Grr. Again."}]
    (tmp_path / "lab.yaml").write_text(json.dumps({"family": "heart", "version": "1", "authored": True, "replaces": True,
                                                   "defaults": {"renderer": "feedback_phrase", "placement": "feedback"}, "items": items}))
    schedule = {"name": "sequence", "steps": ["joy2", "anger", "joy1"]}
    _, run_id, db = _run(tmp_path, _study([_loop("h", mode="verifier_free", final="last", schedule=schedule)], n=3, stimulus_files=["lab.yaml"]))
    for rows in _rounds(db, run_id, "h").values():
        assert [(r["emotion"], r["phrase_id"]) for r in rows[1:]] == [("happiness", "joy2"), ("anger", "mad1"), ("happiness", "joy1"), ("happiness", "joy2")]
    con = connect_reader(db)
    plan = json.loads(con.execute("SELECT solver_params_json FROM conditions WHERE run_id = ? AND condition = 'h'", [run_id]).fetchone()[0])
    con.close()
    assert plan["schedule"]["steps"] == [{"phrase": "joy2"}, {"emotion": "anger"}, {"phrase": "joy1"}]
    assert {e: sorted(ids) for e, ids in plan["bank"].items()} == {"happiness": ["joy1", "joy2"], "anger": ["mad1"]}


# -- oracle mode --------------------------------------------------------------------------------

def test_oracle_stops_at_the_first_correct_round_and_pass_at_t_never_falls(tmp_path: Path) -> None:
    resolved, run_id, db = _run(tmp_path, _study([_loop("oracle", mode="oracle")], n=30, simulate={"default_accuracy": 0.3}))
    trials, rounds = _trials(db, run_id, "oracle"), _rounds(db, run_id, "oracle")
    stopped_early = went_to_budget = 0
    for trial_id, rows in rounds.items():
        trial = trials[trial_id]
        scores = [r["score"] for r in rows]
        assert all(s == 0.0 for s in scores[:-1]), f"the loop went on after a correct answer: {scores}"
        assert [r["verdict"] for r in rows] == ["correct" if s == 1.0 else "incorrect" for s in scores]
        assert {r["verdict_source"] for r in rows} == {"oracle"} and all(r["consumes_gold"] for r in rows)
        if scores[-1] == 1.0:
            assert trial["details"]["stop_reason"] == "verified_correct"
            stopped_early += len(rows) <= T
        else:
            assert len(rows) == T + 1 and trial["details"]["stop_reason"] == "budget"
            went_to_budget += 1
        assert trial["details"]["rounds_used"] == len(rows) - 1 and trial["n_calls"] == len(rows)
        assert trial["response_text"] == rows[-1]["response_text"] and trial["score"] == scores[-1]
        assert trial["consumes_gold"] is True
        # the oracle prompt says the answer was wrong: the `incorrect` template
        assert all(r["feedback"].startswith("Your previous answer is incorrect. ") for r in rows[1:])
    assert stopped_early >= 3 and went_to_budget >= 1, "the sample must exercise both ways a loop ends"
    con = connect_reader(db)
    *curve, final = [p for p in round_curve(con, run_id) if p.condition == "oracle"]
    costs = {c.condition: c for c in condition_costs(con, run_id)}
    assert gain_and_cost(con, run_id) == (condition_costs(con, run_id), round_curve(con, run_id))  # one read, same answers
    labelled = con.execute("SELECT condition, consumes_gold FROM conditions WHERE run_id = ?", [run_id]).fetchall()
    con.close()
    assert [p.round for p in curve] == list(range(T + 1))
    passes = [p.pass_at for p in curve]
    assert passes == sorted(passes) and passes[-1] > passes[0]
    assert [p.accuracy for p in curve] == passes, "under an oracle the held answer is correct once any round was"
    assert passes[-1] == pytest.approx(costs["oracle"].accuracy)
    assert all(p.consumes_gold for p in curve) and costs["oracle"].consumes_gold and not costs["control"].consumes_gold
    assert dict(labelled) == {"control": False, "oracle": True}
    tokens = [p.mean_tokens for p in curve]
    assert tokens == sorted(tokens) and tokens[-1] == pytest.approx(costs["oracle"].mean_tokens)
    # the final step, a row of its own: under the oracle the final answer is the last round's
    assert (final.step, final.strategy, final.round) == ("final", "oracle", None) and {p.step for p in curve} == {"round"}
    assert (final.accuracy, final.pass_at, final.mean_tokens) == pytest.approx((costs["oracle"].accuracy, passes[-1], tokens[-1]))


# -- verifier-free strategies -------------------------------------------------------------------

def test_last_and_majority(tmp_path: Path) -> None:
    conditions = [_loop("last", mode="verifier_free", final="last"), _loop("majority", mode="verifier_free", final="majority")]
    _, run_id, db = _run(tmp_path, _study(conditions, n=30, simulate={"default_accuracy": 0.4}))
    for trial_id, rows in _rounds(db, run_id, "last").items():
        trial = _trials(db, run_id, "last")[trial_id]
        assert len(rows) == T + 1 and trial["response_text"] == rows[-1]["response_text"]
        assert trial["details"]["final_round"] == T and trial["details"]["stop_reason"] == "budget"
        assert all(r["verdict"] is None and r["consumes_gold"] is False for r in rows)
    differs = 0
    trials = _trials(db, run_id, "majority")
    for trial_id, rows in _rounds(db, run_id, "majority").items():
        votes = Counter(r["answer"] for r in rows)
        top = max(votes.values())
        expected = next(r for r in reversed(rows) if votes[r["answer"]] == top)
        trial = trials[trial_id]
        assert trial["details"]["votes"] == dict(votes)
        assert trial["details"]["final_round"] == expected["round"] and trial["answer"] == expected["answer"]
        differs += trial["answer"] != rows[-1]["answer"]
    assert differs >= 1, "the sample must hold a trial where the majority is not the last answer"


@pytest.mark.parametrize("judge_accuracy", [1.0, 0.0])
def test_self_verify_stops_when_the_model_says_correct(tmp_path: Path, judge_accuracy: float) -> None:
    simulate = {"default_accuracy": 0.3, "judge_accuracy": judge_accuracy}
    _, run_id, db = _run(tmp_path, _study([_loop("sv", mode="verifier_free", final="self_verify")], n=20, simulate=simulate))
    trials = _trials(db, run_id, "sv")
    for trial_id, rows in _rounds(db, run_id, "sv").items():
        calls = _calls(db, trial_id)
        assert [c["purpose"] for c in calls] == [p for r in rows for p in (f"round:{r['round']}", f"verify:{r['round']}")]
        for r in rows:
            own = json.loads(r["call_ids_json"])
            assert len(own) == 2 and own[0] == r["call_id"]
            judged = next(c for c in calls if c["call_id"] == own[1])
            assert json.loads(judged["messages_json"])[-2] == {"role": "assistant", "content": r["response_text"]}
            assert r["verdict"] == {"CORRECT": "correct", "INCORRECT": "incorrect"}[judged["response_text"]]
            assert r["verdict_source"] == "self"
        verdicts = [r["verdict"] for r in rows]
        assert "correct" not in verdicts[:-1]
        stop = trials[trial_id]["details"]["stop_reason"]
        assert stop == ("self_verified" if verdicts[-1] == "correct" else "budget")
        # a right judge says correct exactly on right answers; a wrong one exactly on wrong ones
        assert verdicts == [("correct" if (r["score"] == 1.0) == (judge_accuracy == 1.0) else "incorrect") for r in rows]
        assert trials[trial_id]["response_text"] == rows[-1]["response_text"]
        assert trials[trial_id]["consumes_gold"] is False


def test_synthesis_reads_every_round_and_writes_the_final_answer(tmp_path: Path) -> None:
    _, run_id, db = _run(tmp_path, _study([_loop("synth", mode="verifier_free", final="synthesis")], n=10))
    prompts = heart.loop_prompts()
    trials = _trials(db, run_id, "synth")
    for trial_id, rows in _rounds(db, run_id, "synth").items():
        calls = _calls(db, trial_id)
        assert len(rows) == T + 1 and [c["purpose"] for c in calls] == [f"round:{t}" for t in range(T + 1)] + ["synthesis"]
        synthesis = calls[-1]
        messages = json.loads(synthesis["messages_json"])
        assert messages[0]["role"] == "system" and messages[0]["content"].endswith(prompts.synthesis_system)
        task = json.loads(rows[0]["messages_json"])[-1]["content"]
        assert messages[1]["content"].startswith(f"Task:\n{task}\n\nHere are {T + 1} candidate answers")
        for index, r in enumerate(rows, start=1):
            assert f"Candidate {index}:\n{r['response_text']}" in messages[1]["content"]
        trial = trials[trial_id]
        assert trial["response_text"] == synthesis["response_text"] and trial["details"]["synthesis_call"] == T + 1
        assert trial["details"]["final_round"] is None and trial["consumes_gold"] is False


# -- baselines and history ------------------------------------------------------------------------

def test_neutral_and_self_refine_run_the_same_loop_without_emotion(tmp_path: Path) -> None:
    conditions = [_loop("neutral", mode="oracle", feedback="neutral"), _loop("refine", mode="oracle", feedback="self_refine"),
                  _loop("heart", mode="oracle")]
    _, run_id, db = _run(tmp_path, _study(conditions, n=15))
    neutral = {item.id: item.text for item in heart.neutral_phrases()}
    for trial_rows in _rounds(db, run_id, "neutral").values():
        for r in trial_rows[1:]:
            assert r["emotion"] == "neutral" and r["tone"] is None and r["phrase_id"] in neutral
            assert r["feedback"] == f"Your previous answer is incorrect. {neutral[r['phrase_id']]} Please try again."
    refine_rounds = [r for rows in _rounds(db, run_id, "refine").values() for r in rows[1:]]
    assert refine_rounds, "some trials needed a second round"
    for r in refine_rounds:
        assert r["emotion"] is None and r["phrase_id"] is None
        assert r["feedback"] == bare_feedback(heart.template_text("incorrect")) == "Your previous answer is incorrect. Please try again."
    con = connect_reader(db)
    labelled = dict(con.execute("SELECT condition, consumes_gold FROM conditions WHERE run_id = ?", [run_id]).fetchall())
    stimuli = {c: json.loads(s) for c, s in con.execute("SELECT condition, stimuli_json FROM conditions WHERE run_id = ?", [run_id]).fetchall()}
    con.close()
    assert labelled == {"control": False, "neutral": True, "refine": True, "heart": True}, "the baselines use the same verifier"
    assert sorted(s["id"] for s in stimuli["neutral"]) == sorted(neutral) and stimuli["refine"] == []
    # oracle mode draws from every phrase (phrases: any): each claim of an error follows a verified wrong answer
    assert len(stimuli["heart"]) == len(heart.phrases()) - len(neutral) and {s["params"]["template"] for s in stimuli["heart"]} == {"incorrect"}


@pytest.mark.parametrize("history", ["full", "last"])
def test_history_keeps_the_conversation_or_only_the_last_answer(tmp_path: Path, history: str) -> None:
    _, run_id, db = _run(tmp_path, _study([_loop("h", mode="verifier_free", final="last", history=history)], n=4))
    for rows in _rounds(db, run_id, "h").values():
        first = json.loads(rows[0]["messages_json"])
        for r in rows[1:]:
            sent = json.loads(r["messages_json"])
            previous = rows[r["round"] - 1]
            context = json.loads(previous["messages_json"]) if history == "full" else first
            assert sent == [*context, {"role": "assistant", "content": previous["response_text"]}, {"role": "user", "content": r["feedback"]}]
            assert len(sent) == (len(first) + 2 * r["round"] if history == "full" else len(first) + 2)


def test_every_round_row_leads_to_its_call(tmp_path: Path) -> None:
    _, run_id, db = _run(tmp_path, _study([_loop("h", mode="oracle", schedule="random")], n=8))
    for rows in _rounds(db, run_id, "h").values():
        calls = {c["call_id"]: c for c in _calls(db, rows[0]["trial_id"])}
        for r in rows:
            call = calls[r["call_id"]]
            assert call["messages_json"] == r["messages_json"] and call["response_text"] == r["response_text"]
            assert (r["prompt_tokens"], r["completion_tokens"], r["latency_s"]) == (call["prompt_tokens"], call["completion_tokens"], call["latency_s"])
            assert call["purpose"] == f"round:{r['round']}"


def test_errored_rounds_keep_their_trials_in_the_denominator(tmp_path: Path) -> None:
    simulate = {"default_accuracy": 0.0, "error_rate": 0.25}
    _, run_id, db = _run(tmp_path, _study([_loop("h", mode="oracle")], n=20, simulate=simulate))
    trials, rounds = _trials(db, run_id, "h"), _rounds(db, run_id, "h")
    failed = [t for t in trials.values() if t["status"] == "error"]
    assert failed, "some loops must fail midway at this error rate"
    for trial in failed:
        rows = rounds[trial["trial_id"]]
        assert trial["details"]["stop_reason"] == "error" and rows[-1]["error"] and rows[-1]["response_text"] is None
        assert trial["error"].startswith(f"round {rows[-1]['round']}:")
    con = connect_reader(db)
    cost = next(c for c in condition_costs(con, run_id) if c.condition == "h")
    curve = [p for p in round_curve(con, run_id) if p.condition == "h"]
    excluded = next(c for c in condition_costs(con, run_id, errors="exclude") if c.condition == "h")
    con.close()
    assert cost.n == 20 and cost.errors == len(failed) and all(p.n == 20 and p.errors == len(failed) for p in curve)
    assert excluded.n == 20 and excluded.errors == len(failed)


# -- run --json ---------------------------------------------------------------------------------

def test_run_json_gives_mean_rounds_next_to_accuracy_and_labels_gold(tmp_path: Path) -> None:
    conditions = [_loop("oracle", mode="oracle"), _loop("vf", mode="verifier_free", final="majority"),
                  _loop("neutral", mode="oracle", feedback="neutral")]
    path = write_study(tmp_path / "s.yaml", _study(conditions, n=10))
    result = run_json("run", str(path), "--db", str(tmp_path / "log.duckdb"))
    rows = {c["name"]: c for c in result["conditions"]}
    assert list(rows["oracle"])[:6] == ["name", "model", "n", "errors", "accuracy", "delta"]
    con = connect_reader(tmp_path / "log.duckdb")
    for name in ("oracle", "vf", "neutral"):
        used = [json.loads(d)["rounds_used"] for (d,) in con.execute("SELECT details_json FROM trials WHERE condition = ?", [name]).fetchall()]
        assert rows[name]["mean_rounds"] == pytest.approx(sum(used) / len(used))
    con.close()
    assert rows["vf"]["mean_rounds"] == T and 0 < rows["oracle"]["mean_rounds"] < T
    assert rows["control"]["mean_rounds"] is None
    assert {n: r["consumes_gold"] for n, r in rows.items()} == {"control": False, "oracle": True, "vf": False, "neutral": True}
    curve = {(p["condition"], p["round"]): p for p in result["rounds"]}
    assert {c for c, _ in curve} == {"oracle", "vf", "neutral"} and curve[("oracle", 0)]["consumes_gold"] is True
    table = __import__("conftest").run_cli("run", str(path), "--db", str(tmp_path / "log.duckdb"), env={"COLUMNS": "200"})
    assert table.returncode == 0 and "oracle GOLD" in table.stdout and "vf GOLD" not in table.stdout and "per round" in table.stdout


def test_read_verdict() -> None:
    words = Verdicts(correct="CORRECT", incorrect="INCORRECT")
    assert read_verdict("CORRECT", words) == "correct"
    assert read_verdict("incorrect.", words) == "incorrect"
    assert read_verdict("Incorrect: the correct total is 12.", words) == "incorrect"
    assert read_verdict("The answer is correct.", words) == "correct"
    assert read_verdict("I am not sure.", words) == "unclear"


def test_compare_shows_per_round_accuracy_and_token_cost_per_condition(tmp_path: Path) -> None:
    conditions = [_loop("oracle", mode="oracle"), _loop("vf", mode="verifier_free", final="last")]
    path = write_study(tmp_path / "s.yaml", _study(conditions, n=10))
    db = tmp_path / "log.duckdb"
    run = run_json("run", str(path), "--db", str(db))
    compared = run_json("compare", "--db", str(db))
    costs = {c["condition"]: c for c in compared["costs"]}
    assert set(costs) == {"control", "oracle", "vf"}
    for c in run["conditions"]:
        assert costs[c["name"]]["accuracy"] == pytest.approx(c["accuracy"])
        assert costs[c["name"]]["mean_rounds"] == c["mean_rounds"]
    assert costs["vf"]["mean_calls"] == T + 1 and costs["control"]["mean_calls"] == 1
    assert costs["vf"]["mean_tokens"] > costs["control"]["mean_tokens"] > 0
    assert costs["oracle"]["consumes_gold"] and not costs["vf"]["consumes_gold"]
    curve = {(p["condition"], p["round"]): p for p in compared["rounds"]}
    assert curve == {(p["condition"], p["round"]): p for p in run["rounds"]}
    passes = [curve[("oracle", t)]["pass_at"] for t in range(T + 1)]
    assert passes == sorted(passes)
    table = __import__("conftest").run_cli("compare", "--db", str(db), env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "gain against cost" in table.stdout and "per round" in table.stdout and "oracle GOLD" in table.stdout
    # the oracle condition is labelled as consuming gold labels in the comparison and every export
    gold = {r["condition"]: r["consumes_gold"] for r in compared["rows"]}
    assert gold == {"control": False, "oracle": True, "vf": False}
    from conftest import run_cli

    exported = {fmt: tmp_path / f"table.{fmt}" for fmt in ("markdown", "latex", "csv")}
    for fmt, path in exported.items():
        assert run_cli("export", "--db", str(db), "--format", fmt, "--out", str(path)).returncode == 0
    markdown, latex = exported["markdown"].read_text(), exported["latex"].read_text()
    assert "| oracle † |" in markdown and "| vf |" in markdown and "† the condition read gold labels" in markdown
    assert "oracle \\dag{}" in latex and "vf \\dag" not in latex
    assert "consumes_gold" in exported["csv"].read_text().splitlines()[0]
