"""`workbench tasks list` and `workbench tasks sample`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, run_cli, run_json


def test_tasks_list_json_has_every_task_with_its_metric_and_size() -> None:
    result = run_cli("tasks", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_id = {r["id"]: r for r in rows}
    assert all({"id", "suite", "metric", "n_available"} <= set(r) for r in rows)
    suites = {suite: [r for r in rows if r["suite"] == suite] for suite in ("ii", "bbh", "math")}
    assert (len(suites["ii"]), len(suites["bbh"]), len(suites["math"])) == (24, 21, 2)
    assert by_id["ii/sum"]["n_available"] == 10000 and by_id["ii/sum"]["metric"] == "em"
    assert by_id["ii/synonyms"]["n_available"] == 0 and by_id["ii/synonyms"]["needs_path"] and by_id["ii/synonyms"]["metric"] == "contains"
    assert by_id["ii/common_concept"]["metric"] == "f1" and by_id["ii/taxonomy_animal"]["metric"] == "es"
    assert by_id["bbh/word_unscrambling"]["n_available"] == 8917 and by_id["bbh/snarks"]["metric"] == "multiple_choice_grade"
    assert "ape" in by_id["ii/sum"]["variants"] and "negativeprompt-v1" in by_id["ii/sum"]["scorer_profiles"]


def test_the_task_registry_and_study_validation_load_no_analysis_libraries() -> None:
    """pandas and scipy load when a run is reported, not when tasks are listed or a study is checked."""
    code = (
        "import sys\n"
        "from workbench.tasks import builtin_tasks\n"
        "from workbench.study.spec import load_study\n"
        "builtin_tasks(); load_study('studies/task_suites.yaml')\n"
        "print(sorted(m for m in ('pandas', 'scipy', 'statsmodels') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout.strip()
    assert loaded == "[]"


def test_tasks_list_filters_by_suite_and_rejects_an_unknown_one() -> None:
    rows = json.loads(run_cli("tasks", "list", "--suite", "bbh", "--json").stdout)
    assert {r["suite"] for r in rows} == {"bbh"} and len(rows) == 21
    bad = run_cli("tasks", "list", "--suite", "nope")
    assert bad.returncode == 2 and "unknown suite 'nope'" in bad.stderr and "bbh" in bad.stderr
    table = run_cli("tasks", "list", "--suite", "math")
    assert table.returncode == 0 and "word_problems" in table.stdout


def test_tasks_sample_is_seeded() -> None:
    first = run_json("tasks", "sample", "ii/sum", "-n", "3", "--seed", "5")
    again = run_json("tasks", "sample", "ii/sum", "-n", "3", "--seed", "5")
    other = run_json("tasks", "sample", "ii/sum", "-n", "3", "--seed", "6")
    assert first == again and first["items"] != other["items"]
    assert len(first["items"]) == 3
    item = first["items"][0]
    a, b = map(int, item["input"].split())
    assert item["targets"] == [str(a + b)]
    assert item["messages"][-1]["content"].endswith(f"Input: {item['input']}\nAnswer: ")
    shots = run_json("tasks", "sample", "bbh/snarks", "-n", "2", "--shots", "2", "--variant", "original")
    assert all(len(r["demo_ids"]) == 2 and r["choices"] for r in shots["items"])


def test_tasks_sample_text_and_errors() -> None:
    text = run_cli("tasks", "sample", "math/word_problems", "-n", "1")
    assert text.returncode == 0 and "targets:" in text.stdout and "Question:" in text.stdout
    missing = run_cli("tasks", "sample", "ii/antonyms")
    assert missing.returncode == 2 and "give `path`" in missing.stderr and "Traceback" not in missing.stderr
    unknown = run_cli("tasks", "sample", "ii/summ")
    assert unknown.returncode == 2 and "did you mean ii/sum" in unknown.stderr
