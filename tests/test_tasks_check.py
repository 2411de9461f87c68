"""`workbench tasks check` (issue 10): every built-in metric-scored task credits its gold however
it is worded and nothing else; on generated items and on the original Instruction Induction files
(three of them copied verbatim under tests/data, the shared full set when present). Also: an ii
task's `path` may name the task's JSON file itself (issue 10, point 5.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from workbench.tasks import TaskConfig, builtin_tasks, get_task, resolve_task
from workbench.tasks.check import check, check_task

II_DATA = Path(__file__).parent / "data" / "instruction-induction"
SHARED_II = Path("/work/shared/data/instruction-induction")  # the full original set, where the machine has it
TASKS = builtin_tasks()
METRIC_TASKS = [t for t, spec in TASKS.items() if spec.scoring == "metric" and spec.suite != "inventory" and spec.source is not None]
GENERATED = [t for t in METRIC_TASKS if not t.startswith("bbh/")]
BBH = [t for t in METRIC_TASKS if t.startswith("bbh/")]


def _report(result) -> str:
    return "\n".join(f"{f.item_id} {f.case}: {f.text!r} -> {f.answer!r} {f.score} [{f.rule}]" for f in result.failures[:10])


@pytest.mark.parametrize("task_id", GENERATED)
def test_every_generated_task_passes_its_check(task_id: str) -> None:
    result = check_task(TASKS[task_id], n=150)
    assert result.checks > 10 * result.items > 0
    assert result.ok, _report(result)


@pytest.mark.slow
@pytest.mark.parametrize("task_id", BBH)
def test_every_bbh_task_passes_its_check(task_id: str) -> None:
    result = check_task(TASKS[task_id], n=300)
    assert result.ok, _report(result)


@pytest.mark.parametrize("name", ["sum", "sentiment", "larger_animal"])
def test_the_original_files_load_and_pass_the_check(name: str) -> None:
    result = check(f"ii/{name}", path=str(II_DATA))
    assert result.items == 100 and result.ok, _report(result)


@pytest.mark.skipif(not SHARED_II.is_dir(), reason="the shared copy of the original Instruction Induction files is not on this machine")
@pytest.mark.parametrize("name", ["sum", "diff", "sentiment", "larger_animal", "antonyms", "synonyms", "word_in_context", "cause_and_effect", "first_word_letter", "singular_to_plural"])
def test_the_shared_original_files_pass_the_check(name: str) -> None:
    result = check(f"ii/{name}", path=str(SHARED_II / "execute" / f"{name}.json"), n=100)
    assert result.ok, _report(result)


def test_the_check_finds_what_a_lenient_or_a_strict_scorer_gets_wrong() -> None:
    spec = resolve_task(TaskConfig(task="ii/sentiment", path=str(II_DATA)))
    strict = check_task(spec, n=10, extractor="strict")
    assert {f.case for f in strict.failures} >= {"gold: bold answer label", "gold: confidence in brackets", "gold: explanation"}
    assert all(f.expected == 1.0 for f in strict.failures)  # strict rejects wordings, never credits a hedge
    lenient = spec.model_copy(update={"metric": "contains", "answer_type": "verbatim"})  # any text naming the gold
    failures = check_task(lenient, n=10).failures
    assert {f.case for f in failures if f.expected == 0.0} == {"every candidate"}


def test_an_ii_path_may_name_the_tasks_json_file() -> None:
    folder = resolve_task(TaskConfig(task="ii/sum", path=str(II_DATA)))
    file = resolve_task(TaskConfig(task="ii/sum", path=str(II_DATA / "execute" / "sum.json")))
    split = resolve_task(TaskConfig(task="ii/sum", path=str(II_DATA / "execute")))
    assert file.items(100, 3) == folder.items(100, 3) == split.items(100, 3)
    assert len(file.items(100, 3)) == 100


def test_a_file_path_without_the_induce_split_fails_clearly_when_demos_are_asked() -> None:
    result = run_cli("tasks", "sample", "ii/sum", "--path", str(II_DATA / "execute" / "sum.json"), "--shots", "2")
    assert result.returncode == 2
    assert "induce/sum.json" in result.stderr and "Traceback" not in result.stderr


def test_tasks_check_cli_exit_codes_and_json(tmp_path: Path) -> None:
    path = str(II_DATA / "execute" / "larger_animal.json")
    ok = run_cli("tasks", "check", "ii/larger_animal", "--path", path, "-n", "20", "--json")
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert body["ok"] is True and body["items"] == 20 and body["answer_type"] == "label" and body["failures"] == []
    failing = run_cli("tasks", "check", "ii/larger_animal", "--path", path, "-n", "5", "--extractor", "strict")
    assert failing.returncode == 1
    assert "failed: item" in failing.stdout and "gold: the answer is: expected 1, got no answer" in failing.stdout
    for args, message in [
        (("ii/sentiment",), "give `path`"),
        (("ii/nope",), "unknown task"),
        (("judge/truthfulqa",), "tasks check checks metric-scored tasks"),
        (("ii/sum", "--extractor", "lenient"), "unknown extractor 'lenient'"),
        (("ii/sum", "--path", str(tmp_path / "missing")), "does not exist"),
    ]:
        bad = run_cli("tasks", "check", *args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)


def test_tasks_check_is_deterministic_and_counts_its_checks() -> None:
    spec = get_task("ii/sum")
    first, second = check_task(spec, n=30, seed=4), check_task(spec, n=30, seed=4)
    assert first == second
    # per item: the gold (default and strict), 7 wordings; a wrong answer plain and in 7 wordings
    assert first.checks == 30 * (2 + 7 + 1 + 7)
