"""Same seed, same examples and demos: across processes, and as studies expand them; zero-shot
and few-shot with demos resampled per query; the task as run recorded in every trial row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_json, sim_study, write_study
from task_fixtures import write_ii_dir, write_jsonl
from workbench.store import connect_reader
from workbench.tasks import DEFAULT_SHOTS, TaskConfig, builtin_tasks, get_task, resolve_task

KINDS = ["ii/sum", "ii/taxonomy_animal", "ii/orthography_starts_with", "bbh/snarks", "bbh/word_unscrambling", "math/word_problems"]

SNAPSHOT = """
import json, sys
from workbench.study.spec import load_study
from workbench.tasks.catalog import sample_rows
from workbench.study.expand import expand
samples = {task: sample_rows(task, 5, 11, shots=3) for task in sys.argv[2:]}
trials = [(t.trial_id, t.seed, [m.to_dict() for m in t.messages]) for t in expand(load_study(sys.argv[1]), "run")]
print(json.dumps({"samples": samples, "trials": trials}))
"""


def _snapshot(study: Path, hash_seed: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SNAPSHOT, str(study), *KINDS],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sampling_is_identical_across_processes(tmp_path: Path) -> None:
    tasks = [{"task": "ii/sum", "n": 4, "shots": True}, {"task": "bbh/navigate", "n": 3, "shots": 2}, {"task": "math/word_problems", "n": 2, "shots": 1}]
    study = write_study(tmp_path / "s.yaml", sim_study(tasks=tasks, seed=7))
    first, second = _snapshot(study, "1"), _snapshot(study, "2")
    assert first == second
    assert len(first["trials"]) == 3 * (4 + 3 + 2)
    for task in KINDS:
        assert len(first["samples"][task]["items"]) == 5
        assert all(len(row["demo_ids"]) == 3 for row in first["samples"][task]["items"])


@pytest.mark.parametrize("task_id", KINDS)
def test_a_longer_draw_extends_a_shorter_one_and_seeds_differ(task_id: str) -> None:
    task = get_task(task_id)
    short, long = task.items(4, 3), task.items(9, 3)
    assert [i.input for i in short] == [i.input for i in long[:4]]
    assert len({i.input for i in long}) == 9, "examples are distinct"
    assert [i.input for i in task.items(9, 4)] != [i.input for i in long]


@pytest.mark.parametrize("task_id", KINDS)
def test_demos_are_disjoint_from_examples_and_resampled_per_query(task_id: str) -> None:
    from workbench.core.seeds import draw_demos, query_seed

    task = get_task(task_id)
    items, pool = task.sample(10, DEFAULT_SHOTS, seed=1)
    assert not {i.input for i in items} & {d.input for d in pool}
    demo_sets = [tuple(d.id for d in draw_demos(pool, DEFAULT_SHOTS, query_seed(1, task.id, i.id, 0))) for i in items]
    assert all(len(s) == DEFAULT_SHOTS == len(set(s)) for s in demo_sets)
    assert len(set(demo_sets)) > 1, "each query draws its own demos"


def test_original_files_take_examples_from_execute_and_demos_from_induce(tmp_path: Path) -> None:
    root = write_ii_dir(tmp_path / "raw", builtin_tasks())
    task = resolve_task(TaskConfig(task="ii/antonyms", path=str(root)))
    items, pool = task.sample(2, 1, seed=0)
    assert {i.id.split("-")[0] for i in items} == {"execute"} and {d.id.split("-")[0] for d in pool} == {"induce"}
    causes = resolve_task(TaskConfig(task="ii/cause_and_effect", path=str(root)))
    orders = {tuple(i.input for i in causes.items(2, seed)) for seed in range(12)}
    assert len(orders) > 1, "sentence order is randomised, by the seed"
    assert causes.items(2, 5) == causes.items(2, 5)


def test_zero_and_few_shot_prompts_and_the_task_as_run_are_logged(tmp_path: Path) -> None:
    tasks = [
        {"task": "ii/sum", "n": 3},
        {"task": "ii/larger_animal", "n": 3, "shots": True, "variant": "ape", "scorer": "negativeprompt-v1"},
        {"task": "bbh/snarks", "n": 3, "shots": 2},
        {"task": "math/word_problems", "n": 2, "shots": 1},
    ]
    study = write_study(tmp_path / "s.yaml", sim_study(tasks=tasks, conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}]))
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(study), "--db", str(db))
    assert result["errors"] == 0 and result["trials_done"] == 2 * 11
    con = connect_reader(db)
    rows = con.execute("SELECT task, task_json, messages_json FROM trials WHERE condition = 'control'").fetchall()
    for task, task_json, messages_json in rows:
        recorded = json.loads(task_json)
        user = json.loads(messages_json)[-1]["content"]
        assert recorded["template"]["user"] and recorded["metric"] and recorded["source"]
        assert user.startswith("Instruction: " + recorded["instruction"])
        demos = user.count("\nOutput: ") + user.count("\nAnswer: ") - 1
        assert demos == {"ii/sum": 0, "ii/larger_animal": 5, "bbh/snarks": 2, "math/word_problems": 1}[task], (task, user)
        if task == "ii/larger_animal":
            assert recorded["variant"] == "ape" and recorded["scorer_profile"] == "negativeprompt-v1"
            assert recorded["instruction"] == "choose the animal that is taller."
        if task == "bbh/snarks":
            assert recorded["chance"] == 0.5 and "\n  choice: (a)" in user
    per_task = {(r["condition"], r["task"]): r for r in result["tasks"]}
    assert len(per_task) == 8
    snarks = per_task[("control", "bbh/snarks")]
    assert snarks["normalized"] == pytest.approx(100 * (snarks["score"] - 0.5) / 0.5)
    assert per_task[("control", "ii/sum")]["normalized"] is None


def test_trials_run_the_draw_the_data_fingerprint_covers(tmp_path: Path) -> None:
    """The examples are drawn once, when the study is resolved: a data file edited before the
    trials are expanded changes neither the examples run nor their ids."""
    import hashlib

    from workbench.study.spec import load_study
    from workbench.study.expand import expand

    data = write_jsonl(tmp_path / "qa.jsonl", [{"input": f"question {i}", "target": f"answer {i}"} for i in range(6)])
    task = {"task": "custom/qa", "n": 4, "path": str(data), "metric": "em", "instruction": "Answer."}
    study = load_study(write_study(tmp_path / "s.yaml", sim_study(tasks=[task])))
    write_jsonl(data, [{"input": f"edited {i}", "target": f"answer {i}"} for i in range(6)])
    items = list(dict.fromkeys(t.item.id for t in expand(study, "run")))
    assert {t.item.input for t in expand(study, "run")} <= {f"question {i}" for i in range(6)}
    assert hashlib.sha256("\n".join(items).encode()).hexdigest()[:16] == study.spec.tasks[0].data_sha256


def test_a_study_reseeded_after_resolving_draws_the_examples_of_its_new_seed() -> None:
    from workbench.run.simulate import reseeded, sim_study as planted
    from workbench.study.expand import expand

    study = planted({"control": 0.5, "treatment": 0.5}, n=6)
    again = planted({"control": 0.5, "treatment": 0.5}, n=6, seed=9)
    ids = [t.item.id for t in expand(reseeded(study, 9), "run")]
    assert ids == [t.item.id for t in expand(again, "run")] and ids != [t.item.id for t in expand(study, "run")]
