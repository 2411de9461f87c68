"""Few-shot demos show one of their gold answers drawn at random, seeded by the query (as the
NegativePrompt code draws one per demo); a worked solution (`demo_output`) takes precedence."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_cli, run_json, sim_study, write_study
from workbench.study.spec import load_study
from workbench.tasks import TaskItem
from workbench.study.expand import expand

# An induce split as the original files hold it: several accepted outputs per example.
INDUCE = {str(i): {"input": f"word{i}", "output": [f"first{i}", f"second{i}", f"third{i}"]} for i in range(1, 31)}
EXECUTE = {str(i): {"input": f"query{i}", "output": f"answer{i}"} for i in range(1, 11)}


def _ii_dir(root: Path) -> Path:
    for split, examples in (("induce", INDUCE), ("execute", EXECUTE)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "antonyms.json").write_text(json.dumps({"metadata": {}, "examples": examples}), encoding="utf-8")
    return root


def _shown(user: str) -> list[tuple[str, str]]:
    return re.findall(r"Input: (word\d+)\nOutput: (\S+)", user)


def test_demos_show_a_seeded_random_gold_answer_the_same_in_every_condition(tmp_path: Path) -> None:
    _ii_dir(tmp_path / "ii")
    study_file = write_study(tmp_path / "s.yaml", sim_study(tasks=[{"task": "ii/antonyms", "path": "ii", "n": 6, "shots": 5}]))
    trials = expand(load_study(study_file), "run")
    shown_per_query: dict[str, list[tuple[str, str]]] = {}
    for trial in trials:
        shown = _shown(trial.messages[-1].content)
        assert len(shown) == 5
        for word, answer in shown:
            assert answer in INDUCE[word.removeprefix("word")]["output"], (word, answer)
        # every condition of a query shows the same demos with the same answers (paired)
        assert shown_per_query.setdefault(trial.item.id, shown) == shown
    answers = [answer for shown in shown_per_query.values() for _, answer in shown]
    assert any(not a.startswith("first") for a in answers), "not always the first gold answer"
    assert {a.rstrip("0123456789") for a in answers} == {"first", "second", "third"}
    again = expand(load_study(study_file), "run")
    assert [t.messages for t in again] == [t.messages for t in trials], "seeded: the same draw every time"


def test_tasks_sample_shows_the_demo_answers_the_study_would(tmp_path: Path) -> None:
    root = _ii_dir(tmp_path / "ii")
    sample = run_json("tasks", "sample", "ii/antonyms", "--path", str(root), "-n", "6", "--shots", "5", "--seed", "0")
    study_file = write_study(tmp_path / "s.yaml", sim_study(tasks=[{"task": "ii/antonyms", "path": "ii", "n": 6, "shots": 5}]))
    first_repeat = {t.item.id: t.messages[-1].content for t in expand(load_study(study_file), "run") if t.repeat == 0 and t.condition == "control"}
    for row in sample["items"]:
        assert row["messages"][-1]["content"] == first_repeat[row["id"]]
    assert run_cli("tasks", "sample", "ii/antonyms", "--path", str(root), "-n", "1", "--shots", "2").returncode == 0


def test_a_worked_solution_takes_precedence_and_one_gold_answer_is_shown_as_is() -> None:
    from workbench.tasks import demo_answer

    worked = TaskItem(id="d1", input="2+2", targets=("4", "four"), demo_output="2 plus 2 is 4. The answer is 4.")
    assert {demo_answer(worked, seed) for seed in range(20)} == {"2 plus 2 is 4. The answer is 4."}
    single = TaskItem(id="d2", input="x", targets=("only",))
    assert {demo_answer(single, seed) for seed in range(20)} == {"only"}
    several = TaskItem(id="d3", input="x", targets=("a", "b", "c"))
    assert {demo_answer(several, seed) for seed in range(40)} == {"a", "b", "c"}
    assert demo_answer(several, 7) == demo_answer(several, 7)
