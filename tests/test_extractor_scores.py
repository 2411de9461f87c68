"""Issue 10, point 1 (the log side): score rows per extractor, no answer apart from wrong answers,
`workbench rescore`, the format diagnostic and the trial viewer.

Most tests read one simulated run whose conditions word their answers so that the strict
extractor misreads them (`simulate.answer_format`): EP01 appends a confidence score (ii/sum's
strict parser takes the last number, the confidence), NP01 answers nothing, `worded` answers in
a sentence (which strict reads right on these tasks: a control for the diagnostic)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, run_json, write_study
from task_fixtures import write_jsonl
from workbench.scoring.extract import EXTRACTORS, Extraction
from workbench.reports.rescore import rescore
from workbench.scoring.score_log import logged_extractors
from workbench.stats import compare, load_run
from workbench.stats.format_check import format_diagnostic, with_format
from workbench.stats.table import scored_frame
from workbench.store import connect_reader

N_SUM, N_PICK = 30, 8
PICK = [
    {"id": f"p{i}", "input": f"Pick [bold]the {word}[/bold] one \u001b[31mnow\u202e.", "choices": ["alpha", "beta gamma", "delta"], "answer": i % 3}
    for i, word in enumerate(["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"])
]


def _last_line(task, item, text: str) -> Extraction:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return Extraction(lines[-1] if lines else None, "last line")


if "test_last_line" not in EXTRACTORS:
    EXTRACTORS.add("test_last_line", _last_line)  # a test-only extractor, known to this process only


def _study() -> dict:
    accuracy = {"control": 0.6, "EP01": 0.6, "NP01": 0.6, "worded": 0.6}
    return {
        "name": "formats",
        "models": [{"id": "sim/m", "simulate": {"accuracy": accuracy, "answer_format": {"EP01": "confidence", "NP01": "empty", "worded": "sentence"}}}],
        "conditions": [{"name": "control"}, {"name": "EP01", "stimuli": ["EP01"]}, {"name": "NP01", "stimuli": ["NP01"]}, {"name": "worded"}],
        "tasks": [
            {"task": "ii/sum", "n": N_SUM},
            {"task": "custom/pick", "path": "pick.jsonl", "metric": "em", "instruction": "Pick one.", "n": N_PICK},
        ],
        "seed": 4,
    }


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("formats")
    write_jsonl(root / "pick.jsonl", PICK)
    result = run_json("run", str(write_study(root / "s.yaml", _study())), "--db", str(root / "log.duckdb"))
    return root / "log.duckdb", result


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = connect_reader(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _copy_log(db: Path, to: Path) -> Path:
    to.mkdir()
    shutil.copy(db, to / db.name)
    assert not (db.parent / f"{db.name}.segments").exists() or not any((db.parent / f"{db.name}.segments").glob("*/*.parquet"))
    return to / db.name


# -- the run writes its scores ---------------------------------------------------------------


def test_each_trial_has_a_score_row_for_its_extractor_and_each_diagnostic_one(sim_log) -> None:
    db, result = sim_log
    trials = _query(db, "SELECT trial_id, extractor, answer, score, status, response_text FROM trials WHERE run_id = ?", [result["run_id"]])
    assert len(trials) == 4 * (N_SUM + N_PICK) and {t[1] for t in trials} == {"flexible"}
    rows = {(r[0], r[1]): r[2:] for r in _query(db, "SELECT trial_id, extractor, answer, score, status, contains_gold, rule FROM scores")}
    for trial_id, extractor, answer, score, status, response in trials:
        assert {e for t, e in rows if t == trial_id} == set(logged_extractors(extractor)) == {"strict", "flexible"}
        own = rows[(trial_id, extractor)]
        assert (own[0], own[1], own[2]) == (answer, score, status), "the trial's answer and score are its extractor's row"
        assert isinstance(own[3], bool) and own[4]
    # strict reads the confidence as ii/sum's answer; the response still names the gold
    ep01 = _query(db, "SELECT s.answer, s.score, s.contains_gold FROM scores s JOIN trials t USING (trial_id) "
                      "WHERE t.condition = 'EP01' AND t.task = 'ii/sum' AND s.extractor = 'strict'")
    assert {a for a, _, _ in ep01} == {"0.9"} and all(score == 0.0 for _, score, _ in ep01)
    assert sum(contains for *_, contains in ep01) >= N_SUM // 3, "the planted right answers name the gold"


@pytest.mark.slow
def test_a_task_entry_chooses_its_extractor_and_judged_tasks_keep_their_judge(tmp_path: Path) -> None:
    import asyncio

    from workbench.run.scheduler import Runner
    from workbench.study.spec import StudySpec, resolve_study

    spec = StudySpec.model_validate({
        "name": "mixed", "models": [{"id": "sim/m", "simulate": {"default_accuracy": 0.7}}], "judge": {"id": "sim/judge"},
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "ii/sum", "n": 3, "extractor": "strict"}, {"task": "judge/truthfulqa", "n": 2}],
    })
    db = tmp_path / "log.duckdb"
    run_id = asyncio.run(Runner(resolve_study(spec, "mixed"), db).run()).run_id
    counted = _query(db, "SELECT t.task, t.extractor, count(s.trial_id) FROM trials t LEFT JOIN scores s USING (trial_id) GROUP BY ALL ORDER BY 1")
    assert counted == [("ii/sum", "strict", 12), ("judge/truthfulqa", None, 0)], "strict is its own and a diagnostic extractor: two rows a trial"
    summary = rescore(db, run_id, "test_last_line")
    assert (summary.scored, summary.not_extracted) == (6, 4)
    judged = load_run(db, run_id, "test_last_line").frame.query("task == 'judge/truthfulqa'")
    logged = _query(db, "SELECT status, score FROM trials WHERE task = 'judge/truthfulqa'")
    assert sorted(map(str, zip(judged["status"], judged["score"].astype(object).where(judged["score"].notna(), None)))) == sorted(map(str, logged)), "a judge's score stands"
    assert load_run(db, run_id).extractor == "strict"


def test_no_answer_is_its_own_status_scored_wrong_by_default_and_counted_apart_everywhere(sim_log, tmp_path: Path) -> None:
    db, result = sim_log
    n = N_SUM + N_PICK
    assert result["no_answer"] == n and result["errors"] == 0
    by_condition = {c["name"]: c for c in result["conditions"]}
    assert (by_condition["NP01"]["no_answer"], by_condition["NP01"]["errors"], by_condition["NP01"]["accuracy"]) == (n, 0, 0.0)
    assert all(c["no_answer"] == 0 for name, c in by_condition.items() if name != "NP01")
    assert {(t["condition"], t["no_answer"]) for t in result["tasks"] if t["condition"] == "NP01"} == {("NP01", N_SUM), ("NP01", N_PICK)}
    assert _query(db, "SELECT DISTINCT status, score FROM trials WHERE condition = 'NP01'") == [("no_answer", None)]

    wrong = run_json("compare", "--db", str(db))
    np01 = [r for r in wrong["rows"] if r["condition"] == "NP01"]
    assert wrong["no_answer"] == "wrong" and all(r["no_answer"] == r["n"] and r["errors"] == 0 and r["accuracy"] == 0.0 for r in np01)
    assert {c["condition"]: c["no_answer"] for c in wrong["costs"]}["NP01"] == n
    excluded = run_json("compare", "--db", str(db), "--no-answer", "exclude")
    np01 = [r for r in excluded["rows"] if r["condition"] == "NP01"]
    assert excluded["no_answer"] == "exclude" and all(r["accuracy"] is None and r["n"] == r["no_answer"] for r in np01)
    assert run_json("runs", "list", "--db", str(db))[0]["no_answer"] == n
    table = tmp_path / "t.csv"
    assert run_cli("export", "--db", str(db), "--format", "csv", "--out", str(table)).returncode == 0
    rows = pd.read_csv(table)
    rows = rows[rows["table"].isin(["per_task", "across_tasks"])]
    assert rows.loc[rows["condition"] == "NP01", "no_answer"].tolist() == [N_SUM, N_PICK, n]
    bad = run_cli("compare", "--db", str(db), "--no-answer", "drop")
    assert bad.returncode == 2 and "--no-answer: 'drop' is not allowed (allowed: wrong, exclude)" in bad.stderr


@pytest.mark.slow
def test_the_no_answer_policy_of_the_study_file_decides(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "pick.jsonl", PICK)
    study = {**_study(), "no_answer": "exclude", "tasks": [{"task": "ii/sum", "n": 10}]}
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    np01 = next(c for c in result["conditions"] if c["name"] == "NP01")
    assert np01["no_answer"] == 10 and np01["delta"] is None, "no paired example is left to compare"
    assert run_json("compare", "--db", str(tmp_path / "log.duckdb"))["no_answer"] == "exclude"


def test_scored_frame_applies_each_policy_to_its_own_status() -> None:
    frame = pd.DataFrame({"task": "t", "item_id": ["a", "b", "c"], "score": [1.0, None, None], "status": ["ok", "error", "no_answer"]})
    values = {(e, n): scored_frame(frame, e, n)["value"].tolist() for e in ("wrong", "exclude") for n in ("wrong", "exclude")}
    assert values[("wrong", "wrong")] == [1.0, 0.0, 0.0]
    assert values[("wrong", "exclude")][:2] == [1.0, 0.0] and np.isnan(values[("wrong", "exclude")][2])
    assert np.isnan(values[("exclude", "wrong")][1]) and values[("exclude", "wrong")][2] == 0.0


# -- rescore -----------------------------------------------------------------------------------


def test_rescore_writes_new_rows_beside_the_old_calls_no_model_and_a_repeat_is_a_no_op(sim_log, tmp_path: Path) -> None:
    source, result = sim_log
    db = _copy_log(source, tmp_path / "copy")
    run_id = result["run_id"]
    before = sorted(_query(db, "SELECT * EXCLUDE (scored_at) FROM scores"))
    calls = _query(db, "SELECT count(*) FROM calls")[0][0]

    summary = rescore(db, run_id, "test_last_line")
    assert (summary.scored, summary.already, summary.model_calls) == (4 * (N_SUM + N_PICK), 0, 0)
    after = _query(db, "SELECT * EXCLUDE (scored_at) FROM scores")
    assert sorted(r for r in after if r[2] != "test_last_line") == before, "nothing overwritten"
    assert _query(db, "SELECT count(*) FROM calls")[0][0] == calls
    assert _query(db, "SELECT detail_json FROM run_events WHERE event = 'rescored'") == [(json.dumps({"extractor": "test_last_line", "scored": summary.scored}),)]
    again = rescore(db, run_id, "test_last_line")
    assert (again.scored, again.already) == (0, summary.trials)
    assert sorted(_query(db, "SELECT * EXCLUDE (scored_at) FROM scores")) == sorted(after)

    data = load_run(db, run_id, "test_last_line")
    assert data.extractor == "test_last_line"
    sums = data.frame[data.frame["task"] == "ii/sum"].groupby("condition")["score"].mean()
    assert sums["EP01"] == 0.0 and sums["control"] > 0.3, "the last line of an EP01 answer is its confidence statement"
    table = compare(data.frame, data.control, extractor=data.extractor)
    assert table.extractor == "test_last_line" and table.to_dict()["extractor"] == "test_last_line"


@pytest.mark.slow
def test_rescore_from_the_cli_rebuilds_the_rows_the_run_wrote(sim_log, tmp_path: Path) -> None:
    """A log without strict rows (as one written before extractors, say): compare --extractor strict
    asks for a rescore; the rescore writes exactly the rows the run wrote, multiple-choice matching
    included (the item's choices come from the log), with no model call."""
    source, result = sim_log
    db = _copy_log(source, tmp_path / "copy")
    run_id = result["run_id"]
    wrote = sorted(_query(db, "SELECT trial_id, answer, score, status, rule, contains_gold FROM scores WHERE extractor = 'strict'"))
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM scores WHERE extractor = 'strict'")
    con.close()
    calls = _query(db, "SELECT count(*) FROM calls")[0][0]

    refused = run_cli("compare", "--db", str(db), "--extractor", "strict")
    assert refused.returncode == 2 and f"workbench rescore {run_id} --extractor strict" in refused.stderr and "Traceback" not in refused.stderr
    summary = run_json("rescore", run_id, "--extractor", "strict", "--db", str(db))
    assert (summary["scored"], summary["model_calls"]) == (len(wrote), 0)
    assert sorted(_query(db, "SELECT trial_id, answer, score, status, rule, contains_gold FROM scores WHERE extractor = 'strict'")) == wrote
    picked = _query(db, "SELECT count(*) FROM scores s JOIN trials t USING (trial_id) WHERE t.condition = 'worded' AND t.task = 'custom/pick' "
                        "AND s.extractor = 'strict' AND s.score = 1.0")[0][0]
    assert picked > 0, "'The answer is beta gamma.' is matched to its choice, which the log's item_json keeps"
    assert run_json("rescore", run_id, "--extractor", "strict", "--db", str(db))["scored"] == 0
    assert _query(db, "SELECT count(*) FROM calls")[0][0] == calls
    strict = run_json("compare", "--db", str(db), "--extractor", "strict")
    assert strict["extractor"] == "strict" and {r["extractor"] for r in strict["rows"]} == {"strict"}
    own = run_json("compare", "--db", str(db))
    assert own["extractor"] == "flexible"
    unknown = run_cli("rescore", run_id, "--extractor", "lenient", "--db", str(db))
    assert unknown.returncode == 2 and "--extractor: unknown extractor 'lenient'" in unknown.stderr
    assert run_cli("rescore", "no-such-run", "--extractor", "strict", "--db", str(db)).returncode == 2


# -- the format diagnostic -------------------------------------------------------------------


@pytest.mark.slow
def test_compare_and_the_exports_flag_conditions_whose_effect_is_one_of_format(sim_log, tmp_path: Path) -> None:
    db, result = sim_log
    payload = run_json("compare", "--db", str(db))
    rows = {(f["task"], f["condition"]): f for f in payload["format"]}
    # strict reads EP01's confidence as the sum, flexible reads the sum: the two effects disagree
    ep01 = rows[("ii/sum", "EP01")]
    assert ep01["flagged"] and "significance" in ep01["reasons"] and ep01["strict_delta"] < ep01["flexible_delta"]
    assert rows[("ii/sum", "control")]["gold_in_zero"] == 0.0
    assert all(rows[(t, "NP01")]["flagged"] and "unparseable" in rows[(t, "NP01")]["reasons"] for t in ("ii/sum", "custom/pick", "all"))
    assert rows[("ii/sum", "NP01")]["unparseable"] == 1.0 and rows[("ii/sum", "NP01")]["unparseable_p"] < 0.001
    assert not any(f["flagged"] for f in payload["format"] if f["condition"] in ("control", "worded"))
    assert all(f["responses"] == f_n for f, f_n in ((rows[("ii/sum", c)], N_SUM) for c in ("control", "EP01", "NP01", "worded")))
    flags = {(r["task"], r["condition"]): r["format_flag"] for r in payload["rows"]}
    assert flags[("ii/sum", "EP01")] and flags[("all", "NP01")] and not flags[("ii/sum", "worded")]
    assert any(n.startswith("‡") for n in payload["notes"])
    # run --json (a re-run: every trial logged) carries the block and flags the conditions
    again = run_json("run", str(db.parent / "s.yaml"), "--db", str(db))
    assert again["model_calls"] == 0 and {c["name"]: c["format_flag"] for c in again["conditions"]} == {"control": False, "EP01": True, "NP01": True, "worded": False}
    assert len(again["format"]) == len(payload["format"])
    text = run_cli("compare", "--db", str(db)).stdout
    assert "format diagnostic" in text and "EP01 ‡" in text
    for fmt, mark in (("latex", "\\ddag{}"), ("markdown", "‡")):
        out = tmp_path / f"t.{fmt}"
        assert run_cli("export", "--db", str(db), "--format", fmt, "--out", str(out)).returncode == 0
        assert mark in out.read_text() and "Format diagnostic" in out.read_text() and "flexible extractor" in out.read_text()
    table = tmp_path / "t.csv"
    assert run_cli("export", "--db", str(db), "--format", "csv", "--out", str(table)).returncode == 0
    frame = pd.read_csv(table)
    diagnostic = frame[frame["table"] == "format"]
    assert {"flagged", "unparseable", "strict_delta", "flexible_delta", "extractor"} <= set(diagnostic.columns)
    assert diagnostic.loc[(diagnostic["condition"] == "EP01") & (diagnostic["task"] == "ii/sum"), "flagged"].tolist() == [True]
    rows = frame[frame["table"] == "per_task"]
    assert rows.loc[(rows["condition"] == "EP01") & (rows["task"] == "ii/sum"), "format_flag"].tolist() == [True]


def _hand_made(strict_fails: int, gold_in_zero: int, n: int = 20) -> pd.DataFrame:
    """A log's score rows: the control right on every item under both extractors; the treatment
    worded so that strict finds no answer in `strict_fails` items (flexible reads them right), and
    `gold_in_zero` further items wrong under both while naming the gold."""
    rows = []
    for i in range(n):
        for extractor in ("strict", "flexible"):
            rows.append({"model": "m", "condition": "control", "task": "t", "item_id": f"i{i}", "repeat": 0, "extractor": extractor,
                         "status": "ok", "score": 1.0, "contains_gold": True})
            lost = i < strict_fails and extractor == "strict"
            wrong = strict_fails <= i < strict_fails + gold_in_zero
            rows.append({"model": "m", "condition": "T", "task": "t", "item_id": f"i{i}", "repeat": 0, "extractor": extractor,
                         "status": "no_answer" if lost else "ok", "score": None if lost else 0.0 if wrong else 1.0, "contains_gold": True})
    return pd.DataFrame(rows)


def test_the_diagnostic_flags_a_strict_parse_failure_that_flexible_reads() -> None:
    rows = {r.condition: r for r in format_diagnostic(_hand_made(strict_fails=10, gold_in_zero=0), "control", "flexible")}
    treated = rows["T"]
    assert (treated.unparseable, treated.unparseable_delta, treated.responses) == (0.5, 0.5, 20) and treated.unparseable_p < 0.01
    assert treated.strict_delta == -0.5 and treated.strict_p < 0.01 and treated.flexible_delta == 0.0
    assert treated.flagged and set(treated.reasons.split(",")) == {"unparseable", "significance"}
    assert not rows["control"].flagged and rows["control"].unparseable == 0.0
    clean = {r.condition: r for r in format_diagnostic(_hand_made(strict_fails=0, gold_in_zero=2), "control", "flexible")}["T"]
    assert not clean.flagged and clean.gold_in_zero == 1.0 and clean.zero_scored == 2, "two items cannot reach p < .05"
    gold = {r.condition: r for r in format_diagnostic(_hand_made(strict_fails=0, gold_in_zero=9), "control", "flexible")}["T"]
    assert gold.flagged and "gold_in_zero" in gold.reasons and "significance" not in gold.reasons


def test_with_format_marks_the_flagged_rows_of_the_comparison() -> None:
    scores = _hand_made(strict_fails=10, gold_in_zero=0)
    flexible = scores[scores["extractor"] == "flexible"].drop(columns=["extractor", "contains_gold"]).assign(n_calls=1)
    table = with_format(compare(flexible, "control", extractor="flexible"), format_diagnostic(scores, "control", "flexible"))
    assert [(r.condition, r.format_flag) for r in table.rows] == [("control", False), ("T", True)]
    assert table.to_dict()["format"][1]["reasons"] == "unparseable,significance"


def test_in_process_simulation_agrees_with_the_runner_on_answer_formats(tmp_path: Path) -> None:
    from test_stats_simulation import _logged_and_simulated_agree
    from workbench.study.spec import StudySpec

    spec = StudySpec.model_validate({**_study(), "tasks": [{"task": "ii/sum", "n": 12}]})
    logged = _logged_and_simulated_agree(spec, tmp_path / "log.duckdb")
    assert (logged["status"] == "no_answer").sum() == 12


# -- the trial viewer ------------------------------------------------------------------------


def test_trials_shows_the_discordant_pairs_side_by_side(sim_log) -> None:
    db, _ = sim_log
    listing = run_json("trials", "--db", str(db), "--changed", "--condition", "EP01", "--task", "ii/sum")
    pairs = listing["pairs"]
    discordant = _query(db, "SELECT count(*) FROM trials c JOIN trials t USING (item_id, repeat, task, model) WHERE c.condition = 'control' "
                            "AND t.condition = 'EP01' AND t.task = 'ii/sum' AND coalesce(c.score, 0) != coalesce(t.score, 0)")[0][0]
    assert len(pairs) == discordant > 0 and listing["extractor"] == "flexible"
    for pair in pairs:
        control, treated = pair["control"], pair["condition"]
        assert (control["condition"], treated["condition"]) == ("control", "EP01")
        assert (control["item_id"], control["repeat"]) == (treated["item_id"], treated["repeat"]) and control["score"] != treated["score"]
        assert treated["prompt"].startswith("Instruction: ") and treated["response"].endswith("Confidence score: 0.9") and treated["gold"]
    assert len(run_json("trials", "--db", str(db), "--changed", "--condition", "EP01", "--task", "ii/sum", "--limit", "2")["pairs"]) == 2


@pytest.mark.slow
def test_trials_filters_by_score_status_and_extractor(sim_log, tmp_path: Path) -> None:
    db, _ = sim_log
    right = run_json("trials", "--db", str(db), "--score", "1")["trials"]
    assert right and all(t["score"] == 1.0 and t["status"] == "ok" for t in right)
    silent = run_json("trials", "--db", str(db), "--status", "no_answer")["trials"]
    assert len(silent) == N_SUM + N_PICK and {t["condition"] for t in silent} == {"NP01"} and all(t["answer"] is None for t in silent)
    strict = run_json("trials", "--db", str(db), "--extractor", "strict", "--condition", "EP01", "--task", "ii/sum")
    assert strict["extractor"] == "strict" and {t["answer"] for t in strict["trials"]} == {"0.9"} and {t["rule"] for t in strict["trials"]} == {"parser"}
    for args, field in ((["--condition", "nope"], "--condition"), (["--changed", "--condition", "control"], "--condition"), (["--status", "fine"], "--status")):
        bad = run_cli("trials", "--db", str(db), *args)
        assert bad.returncode == 2 and field in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_trials_prints_user_text_as_text(sim_log) -> None:
    db, _ = sim_log
    shown = run_cli("trials", "--db", str(db), "--task", "custom/pick", "--condition", "control", "--limit", "1")
    assert shown.returncode == 0, shown.stderr
    assert "[bold]the" in shown.stdout and "\\x1b[31mnow\\u202e" in shown.stdout
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    assert "1 trials; run" in shown.stdout


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"extractor": "lenient"}, "extractor", "unknown extractor 'lenient'"),
        ({"tasks": [{"task": "ii/sum", "n": 3, "extractor": "stric"}]}, "tasks[0].extractor", "did you mean strict?"),
        ({"no_answer": "drop"}, "no_answer", "wrong"),
        ({"models": [{"id": "sim/m", "simulate": {"answer_format": {"EP01": "loud"}}}]}, "models[0].simulate.answer_format", "plain"),
        ({"models": [{"id": "sim/m", "simulate": {"answer_format": {"EP99": "plain"}}}]}, "models[0].simulate.answer_format", "unknown condition 'EP99'"),
    ],
)
def test_a_bad_extractor_policy_or_answer_format_fails_in_one_line(tmp_path: Path, change: dict, field: str, message: str) -> None:
    write_jsonl(tmp_path / "pick.jsonl", PICK)
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", {**_study(), **change})), "--db", str(tmp_path / "log.duckdb"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert field in result.stderr and message in result.stderr
    assert not (tmp_path / "log.duckdb").exists() and not (tmp_path / "log.duckdb.segments").exists()


# -- on the embedded model -------------------------------------------------------------------


@pytest.mark.local_model
def test_the_embedded_model_run_logs_score_rows_and_a_consistent_format_block(local_server, tmp_path: Path) -> None:
    """EP01 asks for a confidence score: the real model's answers get score rows under both
    extractors and a format block whose shares are those of the rows (no model answer asserted)."""
    study = {
        "name": "local-formats",
        "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 32}}],
        "conditions": [{"name": "control"}, {"name": "EP01", "stimuli": ["EP01"]}],
        "tasks": [{"task": "ii/sum", "n": 5}],
        "seed": 1,
        "concurrency": 2,
    }
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    assert result["trials_done"] == 10 and result["extractor"] == "flexible"
    trials = _query(db, "SELECT trial_id, answer, score, status FROM trials")
    rows = _query(db, "SELECT trial_id, extractor, answer, score, status, contains_gold FROM scores")
    assert len(rows) == 2 * len(trials) and {r[1] for r in rows} == {"strict", "flexible"}
    flexible = {r[0]: r[2:5] for r in rows if r[1] == "flexible"}
    assert all(flexible[t[0]] == t[1:] for t in trials), "the trial's score is its extractor's row"
    assert all(isinstance(r[5], bool) for r in rows if r[4] != "error")
    block = {f["condition"]: f for f in result["format"]}
    assert set(block) == {"control", "EP01"}
    for condition, row in block.items():
        strict = _query(db, "SELECT s.status FROM scores s JOIN trials t USING (trial_id) WHERE t.condition = ? AND s.extractor = 'strict'", [condition])
        answered = [s for (s,) in strict if s != "error"]
        assert row["responses"] == len(answered) and row["unparseable"] == pytest.approx(sum(s == "no_answer" for s in answered) / len(answered))
        assert row["gold_in_zero"] is None or 0.0 <= row["gold_in_zero"] <= 1.0
    assert block["EP01"]["strict_delta"] is not None and block["EP01"]["flexible_delta"] is not None
    assert {c["name"]: c["format_flag"] for c in result["conditions"]}["EP01"] == block["EP01"]["flagged"]
    calls = _query(db, "SELECT count(*) FROM calls")[0][0]
    assert run_json("rescore", result["run_id"], "--extractor", "strict", "--db", str(db))["scored"] == 0
    shown = run_json("trials", "--db", str(db), "--condition", "EP01")["trials"]
    assert len(shown) == 5 and all(t["prompt"] and t["gold"] for t in shown)
    assert _query(db, "SELECT count(*) FROM calls")[0][0] == calls
