"""Tasks from files: custom JSONL/CSV tasks, GSM8K-format files and the original Instruction
Induction files run from a study; a bad file fails naming the file, the line and the field
(exit 2, no traceback, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, run_json, sim_study, write_study
from task_fixtures import CUSTOM_RECORDS, GSM8K_LINES, write_ii_dir, write_jsonl
from workbench.store import connect_reader
from workbench.tasks import builtin_tasks


def _custom(path: str, **extra) -> dict:
    return {"task": "custom/quiz", "path": path, "metric": "em", "instruction": "Answer briefly.", "n": 5, **extra}


def test_custom_jsonl_and_csv_tasks_run_and_score(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "quiz.jsonl", CUSTOM_RECORDS)
    (tmp_path / "quiz2.csv").write_text(
        'input,target,targets,choices,answer\n'
        'Capital of Italy?,Rome,,,\n'
        '"Pick one, please",,,"[""left"", ""right""]",right\n'
        'A colour?,,"[""red"", ""blue""]",,\n',
        encoding="utf-8",
    )
    tasks = [_custom("quiz.jsonl"), {**_custom("quiz2.csv", n=3), "task": "custom/quiz2"}]
    study = write_study(tmp_path / "s.yaml", sim_study(tasks=tasks, conditions=[{"name": "control"}],
                        models=[{"id": "sim/oracle", "simulate": {"default_accuracy": 1.0}}]))
    result = run_json("run", str(study), "--db", str(tmp_path / "log.duckdb"))
    assert result["trials_done"] == 8 and result["errors"] == 0
    assert result["conditions"][0]["accuracy"] == 1.0, "gold answers score 1 through the whole path"
    con = connect_reader(tmp_path / "log.duckdb")
    inputs = {r[0]: json.loads(r[1]) for r in con.execute("SELECT item_input, targets_json FROM trials").fetchall()}
    assert inputs["Largest planet?\n  choice: Mars\n  choice: Jupiter\n  choice: Venus"] == ["Jupiter"]
    assert inputs["2 + 2 ="] == ["4"]
    assert inputs["Pick one, please\n  choice: left\n  choice: right"] == ["right"]


def test_gsm8k_files_and_original_ii_files_run(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_LINES)
    write_ii_dir(tmp_path / "ii", builtin_tasks())
    tasks = [{"task": "math/gsm8k", "path": "gsm8k.jsonl", "n": 2, "shots": 1}, {"task": "ii/synonyms", "path": "ii", "n": 2, "shots": 1}]
    study = write_study(tmp_path / "s.yaml", sim_study(tasks=tasks, conditions=[{"name": "control"}],
                        models=[{"id": "sim/oracle", "simulate": {"default_accuracy": 1.0}}]))
    result = run_json("run", str(study), "--db", str(tmp_path / "log.duckdb"))
    assert result["trials_done"] == 4 and result["conditions"][0]["accuracy"] == 1.0
    con = connect_reader(tmp_path / "log.duckdb")
    rows = con.execute("SELECT task, targets_json, messages_json FROM trials ORDER BY task").fetchall()
    gsm = [r for r in rows if r[0] == "math/gsm8k"]
    assert {tuple(json.loads(r[1])) for r in gsm} <= {("10",), ("2000",), ("-2",)}
    assert all("<<" not in json.loads(r[2])[-1]["content"] for r in gsm), "calculator annotations are dropped from demos"


BAD_JSONL = {
    "not json": (['{"input": "a", "target": "b"}', '{"input": "c", "target": '], "line 2", "not valid JSON"),
    "missing input": ([{"input": "a", "target": "b"}, {"target": "x"}], "line 2, field 'input'", "is required"),
    "two answer fields": ([{"input": "a", "target": "b", "targets": ["b"]}], "line 1, field 'target'", "exactly one of"),
    "no answer": ([{"input": "a"}], "line 1, field 'target'", "exactly one of"),
    "bad targets": ([{"input": "a", "targets": "b"}], "line 1, field 'targets'", "non-empty list"),
    "answer not a choice": ([{"input": "a", "choices": ["x", "y"], "answer": "z"}], "line 1, field 'answer'", "one of the choices"),
    "answer index out of range": ([{"input": "a", "choices": ["x", "y"], "answer": 2}], "line 1, field 'answer'", "outside"),
    "one choice": ([{"input": "a", "choices": ["x"], "answer": "x"}], "line 1, field 'choices'", "at least two"),
    "repeated id": ([{"id": 1, "input": "a", "target": "b"}, {"id": 1, "input": "c", "target": "d"}], "line 2, field 'id'", "repeats line 1"),
    "not an object": (["[1, 2]"], "line 1", "JSON object"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSONL))
def test_a_bad_custom_file_names_the_file_line_and_field(tmp_path: Path, case: str) -> None:
    lines, where, hint = BAD_JSONL[case]
    data = write_jsonl(tmp_path / "bad.jsonl", lines)
    _assert_rejected(tmp_path, [_custom("bad.jsonl", n=1)], str(data), where, hint)


def test_a_bad_csv_cell_is_named(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("input,choices,answer\nq1,\"[\"\"a\"\", \"\"b\"\"]\",a\nq2,a; b,a\n", encoding="utf-8")
    _assert_rejected(tmp_path, [_custom("bad.csv", n=1)], str(data), "line 3, field 'choices'", "JSON list")


def test_a_bad_gsm8k_line_is_named(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "g.jsonl", [GSM8K_LINES[0], {"question": "q", "answer": "no final number"}])
    _assert_rejected(tmp_path, [{"task": "math/gsm8k", "path": "g.jsonl", "n": 1}], str(data), "line 2, field 'answer'", "####")


def test_a_bad_ii_file_is_named(tmp_path: Path) -> None:
    root = write_ii_dir(tmp_path / "ii", builtin_tasks())
    (root / "execute" / "antonyms.json").write_text('{"examples": {"1": {"input": "hot"}}}')
    _assert_rejected(tmp_path, [{"task": "ii/antonyms", "path": "ii", "n": 1}], str(root / "execute" / "antonyms.json"), "examples.1", "output")


STUDY_FIELD_CASES = {
    "custom task without a metric": ({"task": "custom/q", "path": "x.jsonl"}, "tasks[0].metric", "needs a `metric`"),
    "custom task without a path": ({"task": "custom/q", "metric": "em"}, "tasks[0].path", "needs `path`"),
    "missing data file": ({"task": "custom/q", "path": "nope.jsonl", "metric": "em"}, "tasks[0].path", "does not exist"),
    "file task without a path": ({"task": "ii/antonyms"}, "tasks[0].path", "give `path`"),
    "unknown metric": ({"task": "custom/q", "path": "x.jsonl", "metric": "bleu"}, "tasks[0].metric", "unknown metric 'bleu'"),
    "unknown variant": ({"task": "ii/sum", "variant": "fancy"}, "tasks[0].variant", "variants: original, ape"),
    "unknown scorer": ({"task": "ii/sum", "scorer": "strict"}, "tasks[0].scorer", "negativeprompt-v1"),
    "too many examples": ({"task": "ii/negation", "n": 500}, "tasks[0].n", "has 70 examples"),
    "too many for the file": ({"task": "custom/q", "path": "x.jsonl", "metric": "em", "n": 9}, "tasks[0].n", "has 1 examples"),
    "bbh demos exhaust the task": ({"task": "bbh/snarks", "n": 181, "shots": 1}, "tasks[0].shots", "for demos"),
    "task listed twice": ([{"task": "ii/sum"}, {"task": "ii/sum"}], "tasks[1].task", "listed twice"),
}


@pytest.mark.parametrize("case", sorted(STUDY_FIELD_CASES))
def test_bad_task_entries_name_the_study_field(tmp_path: Path, case: str) -> None:
    entry, field, hint = STUDY_FIELD_CASES[case]
    write_jsonl(tmp_path / "x.jsonl", [{"input": "a", "target": "b"}])
    _assert_rejected(tmp_path, entry if isinstance(entry, list) else [entry], str(tmp_path / "s.yaml"), field, hint)


def _assert_rejected(tmp_path: Path, tasks: list[dict], file: str, where: str, hint: str) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study(tasks=tasks))
    result = run_cli("run", str(study), "--db", str(tmp_path / "runs" / "log.duckdb"))
    message = result.stderr.strip()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(message.splitlines()) == 1, message
    assert file in message and where in message and hint in message, message
    assert not (tmp_path / "runs").exists(), "a rejected study writes nothing"


def test_edited_data_starts_a_new_run_and_a_recorded_fingerprint_must_match(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "quiz.jsonl", CUSTOM_RECORDS)
    oracle = [{"id": "sim/oracle", "simulate": {"default_accuracy": 1.0}}]
    study = write_study(tmp_path / "s.yaml", sim_study(tasks=[_custom("quiz.jsonl")], conditions=[{"name": "control"}], models=oracle))
    db = tmp_path / "log.duckdb"
    first = run_json("run", str(study), "--db", str(db))
    assert run_json("run", str(study), "--db", str(db))["run_id"] == first["run_id"], "unchanged data resumes the same run"
    write_jsonl(data, [{**CUSTOM_RECORDS[0], "target": "Lyon"}, *CUSTOM_RECORDS[1:]])
    second = run_json("run", str(study), "--db", str(db))
    assert second["run_id"] != first["run_id"] and second["trials_done"] == 5
    assert second["model_calls"] == 1 and second["cache_hits"] == 4, "only the edited example is asked again"
    con = connect_reader(db)
    spec = json.loads(con.execute("SELECT spec_json FROM runs WHERE run_id = ?", [second["run_id"]]).fetchone()[0])
    recorded = spec["tasks"][0]["data_sha256"]
    write_jsonl(data, CUSTOM_RECORDS)
    pinned = write_study(tmp_path / "pinned.yaml", sim_study(tasks=[_custom("quiz.jsonl", data_sha256=recorded)], conditions=[{"name": "control"}], models=oracle))
    result = run_cli("run", str(pinned), "--db", str(tmp_path / "other.duckdb"))
    assert result.returncode == 2 and "tasks[0].data_sha256" in result.stderr and "differ" in result.stderr


@pytest.mark.parametrize(
    ("suite_keys", "field"),
    [({"defaults": {"choice_match": "no_such_matcher"}}, "choice_match"), ({"custom_source": "no_such_loader"}, "source")],
)
def test_a_configured_task_checks_every_registry_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_keys: dict, field: str) -> None:
    """A study's custom task takes names from its suite's header (loader, defaults), which no task
    entry of the suite file checked: resolve_task checks them all, as the suite loader does."""
    import workbench.tasks as tasks
    from workbench.core.errors import UserError

    builtin_tasks()  # registers the parsers, metrics and sources
    suite = tasks.SuiteFile.model_validate({"suite": "mine", "version": "1", "custom_source": "custom.file", **suite_keys})
    monkeypatch.setattr(tasks, "builtin_suites", lambda: {"mine": (suite, {})})
    data = write_jsonl(tmp_path / "x.jsonl", [{"input": "a", "target": "b"}])
    with pytest.raises(UserError) as caught:
        tasks.resolve_task(tasks.TaskConfig(task="mine/q", path=str(data), metric="em"))
    assert caught.value.field == field and "no_such" in caught.value.detail


def _suite_file(path: Path, names: list[str]) -> Path:
    tasks = [{"name": name, "instruction": "Say it.", "metric": "em", "source": "custom.file"} for name in names]
    path.write_text(yaml.safe_dump({"suite": "mine", "version": "1", "tasks": tasks}), encoding="utf-8")
    return path


def test_suite_files_add_up_and_a_task_defined_twice_is_refused(tmp_path: Path) -> None:
    from workbench.core.errors import UserError
    from workbench.tasks import load_suite_file, merge_suites

    builtin_tasks()  # registers the sources
    first, second, again = (_suite_file(tmp_path / f"{n}.yaml", names) for n, names in (("a", ["x"]), ("b", ["y"]), ("c", ["z", "x"])))
    merged = merge_suites((str(p), *load_suite_file(p)) for p in (first, second))
    assert list(merged["mine"][1]) == ["mine/x", "mine/y"]
    with pytest.raises(UserError) as caught:
        merge_suites((str(p), *load_suite_file(p)) for p in (first, again))
    assert (caught.value.file, caught.value.field) == (str(again), "tasks[1].name") and "mine/x" in caught.value.detail
    with pytest.raises(UserError, match="defined twice"):
        merge_suites([(str(first), *load_suite_file(_suite_file(tmp_path / "d.yaml", ["w", "w"])))])
