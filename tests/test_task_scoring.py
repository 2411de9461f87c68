"""Every task under every scorer: the gold answer scores 1.0, a corrupted answer 0.0.

Parametrised over the task registry (built-in tasks, the file-reading ones through test-written
files), so a task added to a suite is covered without touching this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_json, sim_study, write_study
from task_fixtures import CUSTOM_RECORDS, GSM8K_LINES, write_ii_dir, write_jsonl
from workbench.scoring.metrics import CHOICE_MATCHERS, METRICS, PARSERS
from workbench.scoring.task_scores import normalized_score, task_scores
from workbench.tasks import TaskConfig, TaskItem, TaskSpec, builtin_tasks, resolve_task

N_ITEMS = 12
OWNED_SUITES = ("ii", "bbh", "math", "custom")
TASKS = builtin_tasks()


def _fixture_path(spec: TaskSpec, root: Path) -> str | None:
    """A data file for tasks that read one (every ii task also reads the original format)."""
    if spec.suite == "ii":
        return str(write_ii_dir(root / "ii", TASKS))
    if spec.file_source == "math.gsm8k_jsonl":
        return str(write_jsonl(root / "gsm8k.jsonl", GSM8K_LINES))
    return None


def _cases() -> list[tuple[str, str, bool]]:
    cases = []
    for task_id, spec in TASKS.items():
        if spec.suite not in OWNED_SUITES:
            continue
        for profile in ["default", *spec.profiles]:
            if spec.source is not None:
                cases.append((task_id, profile, False))
            if spec.file_source is not None:
                cases.append((task_id, profile, True))
    cases += [("custom/quiz", "default", True)]
    return cases


def _configured(task_id: str, profile: str, from_file: bool, root: Path) -> TaskSpec:
    if task_id.startswith("custom/"):
        path = write_jsonl(root / "quiz.jsonl", CUSTOM_RECORDS)
        return resolve_task(TaskConfig(task=task_id, path=str(path), metric="em", instruction="Answer briefly."))
    spec = TASKS[task_id]
    path = _fixture_path(spec, root) if from_file else None
    return resolve_task(TaskConfig(task=task_id, path=path, scorer=None if profile == "default" else profile))


def _unrelated(candidate: str, targets: tuple[str, ...]) -> bool:
    a = candidate.lower().strip()
    return all(a != t.lower().strip() and a not in t.lower() and t.lower() not in a and a.split()[-1:] != t.lower().split()[-1:] for t in targets)


def wrong_answers(spec: TaskSpec, item: TaskItem, others: list[TaskItem], profile: str) -> list[str]:
    """Answers that are wrong: another choice; for token-overlap metrics, words the gold lacks;
    else the gold answer of another example unrelated to this one's (no scorer, however lenient,
    may credit it) and, for strict scorers or when there is none, a near miss of the gold."""
    if item.choices:
        return [next(c for c in item.choices if c not in item.targets)]
    if spec.metric in ("f1", "np.f1"):
        return ["qqqq zzzz"]
    wrong = [o.targets[0] for o in others if _unrelated(o.targets[0], item.targets)][:1]
    if profile == "default" or not wrong:
        wrong.append(near_miss(item))
    return wrong


def near_miss(item: TaskItem) -> str:
    """The gold answer with its first letter or digit changed."""
    gold = item.targets[0]
    for index, char in enumerate(gold):
        if char.isdigit():
            return gold[:index] + str((int(char) + 1) % 10) + gold[index + 1 :]
        if char.isalpha():
            shifted = "b" if char.lower() == "a" else "a"
            return gold[:index] + (shifted.upper() if char.isupper() else shifted) + gold[index + 1 :]
    raise AssertionError(f"cannot corrupt {gold!r}")


@pytest.mark.parametrize("task_id, profile, from_file", _cases(), ids=lambda v: str(v))
def test_gold_scores_one_and_corrupted_scores_zero(task_id: str, profile: str, from_file: bool, tmp_path: Path) -> None:
    spec = _configured(task_id, profile, from_file, tmp_path)
    items, _ = spec.sample(min(N_ITEMS, spec.available()), 0, seed=5)
    others, _ = spec.sample(min(4 * N_ITEMS, spec.available()), 0, seed=6)
    assert items, task_id
    for item in items:
        for gold in item.targets:
            answer, score = spec.score(gold, item)
            assert score == 1.0, f"{task_id} [{profile}] gold {gold!r} -> {answer!r} scored {score}"
        for answer_text in wrong_answers(spec, item, others, profile):
            answer, score = spec.score(answer_text, item)
            assert score == 0.0, f"{task_id} [{profile}] wrong {answer_text!r} -> {answer!r} scored {score} (targets {item.targets})"


def test_every_owned_task_is_covered() -> None:
    covered = {case[0] for case in _cases()}
    owned = {task_id for task_id, spec in TASKS.items() if spec.suite in OWNED_SUITES}
    assert owned <= covered
    assert len([t for t in owned if t.startswith("ii/")]) == 24 and len([t for t in owned if t.startswith("bbh/")]) == 21


def test_registered_names_resolve() -> None:
    for spec in TASKS.values():
        assert spec.metric in METRICS and spec.parser in PARSERS
        assert spec.choice_match is None or spec.choice_match in CHOICE_MATCHERS


AB, NLI, YN = ["(a)", "(b)"], ["entailment", "non-entailment"], ["Yes", "No"]


@pytest.mark.parametrize(
    "answer, choices, expected",
    [
        ("(b)", AB, "(b)"),
        ("B", AB, "(b)"),
        ("The answer is (b).", AB, "(b)"),
        ("non-entailment", NLI, "non-entailment"),
        ("Entailment.", NLI, "entailment"),
        ("It is non-entailment, not entailment", NLI, "It is non-entailment, not entailment"),  # names both: unresolved
        ("Yes, because the CEO knew.", YN, "Yes"),
        ("maybe", YN, "maybe"),
    ],
)
def test_choice_matching(answer: str, choices: list[str], expected: str) -> None:
    assert CHOICE_MATCHERS.get("label_or_text")(answer, choices) == expected


@pytest.mark.parametrize(
    "parser, text, args, expected",
    [
        ("number", "The sum is 1,200.", {}, "1200"),
        ("final_number", "12 - 2 = 10\n#### 10", {}, "10"),
        ("final_number", "#### 12\nQuestion: Sam has 5 pens and buys 3.\nAnswer: 5 + 3 = 8\n#### 8", {}, "12"),
        ("final_number", "First 3 * 4 = 12. The answer is 9.", {}, "9"),
        ("final_number", "3 * 4 = 12, minus 2 gives 10", {}, "10"),
        ("number_words", "One thousand, two hundred and thirty-four", {}, "one thousand two hundred thirty four"),
        ("bigbench", "17\n", {"stop_string": "\n", "output_regex": r"([-+]?\d+)[.]{0,1}$"}, "17"),
        ("bigbench", "Answer: She has applied for the job.", {}, "She has applied for the job."),
        ("first_line", "\nAnswer: Paris\nBecause...", {}, "Paris"),
    ],
)
def test_parsers(parser: str, text: str, args: dict, expected: str) -> None:
    assert PARSERS.get(parser)(text, **args) == expected


def test_chat_style_answers_are_parsed_before_scoring() -> None:
    snarks = TASKS["bbh/snarks"]
    item = snarks.items(1, 0)[0]
    gold, wrong = item.targets[0], next(c for c in item.choices if c not in item.targets)
    assert snarks.score(f"Answer: {gold}\nThe other one is sincere.", item)[1] == 1.0
    assert snarks.score(f"The sarcastic one is {wrong}.", item)[1] == 0.0
    problems = TASKS["math/word_problems"]
    problem = problems.items(1, 0)[0]
    assert problems.score(problem.demo_output or "", problem)[1] == 1.0, "a worked solution scores as its final number"


def test_normalised_preferred_score_follows_bigbench() -> None:
    task = TASKS["bbh/snarks"]  # two choices: chance 0.5
    assert task.chance == 0.5
    assert task.normalized(0.5) == 0.0 and task.normalized(1.0) == 100.0 and task.normalized(0.25) == -50.0
    assert TASKS["bbh/tense"].normalized(0.3) == pytest.approx(30.0)
    assert TASKS["ii/sum"].normalized(0.3) is None


def test_one_normalised_score_function_serves_specs_and_run_reports() -> None:
    assert normalized_score(0.5, 0.25) == pytest.approx(100 / 3)
    assert normalized_score(0.5, 0.25, maximum=0.75) == pytest.approx(50.0)
    assert normalized_score(None, 0.25) is None and normalized_score(0.5, None) is None and normalized_score(0.5, 1.0) is None
    assert TASKS["bbh/movie_recommendation"].normalized(0.5) == normalized_score(0.5, 0.25)


def test_task_scores_normalise_the_logged_mean_under_either_error_policy() -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE trials (run_id VARCHAR, model VARCHAR, condition VARCHAR, task VARCHAR, task_json VARCHAR, status VARCHAR, score DOUBLE, "
        "consumes_gold BOOLEAN)"
    )
    descriptor = '{"chance": 0.25}'
    for status, score in (("ok", 1.0), ("ok", 0.0), ("ok", 1.0), ("error", None)):
        con.execute("INSERT INTO trials VALUES ('r', 'm', 'control', 'bbh/x', ?, ?, ?, NULL)", [descriptor, status, score])
    [wrong] = task_scores(con, "r", "wrong")
    [exclude] = task_scores(con, "r", "exclude")
    assert (wrong["n"], wrong["errors"], wrong["score"], wrong["normalized"]) == (4, 1, 0.5, pytest.approx(100 * 0.25 / 0.75))
    assert (exclude["score"], exclude["normalized"]) == (pytest.approx(2 / 3), pytest.approx(100 * (2 / 3 - 0.25) / 0.75))
    assert wrong["consumes_gold"] is False  # a missing flag is no gold read


def test_run_json_reports_the_normalised_score_of_each_task(tmp_path: Path) -> None:
    """The shipped path: `workbench run --json` `tasks`, on planted all-right and all-wrong answers."""
    study = sim_study(
        models=[{"id": "sim/planted", "simulate": {"accuracy": {"control": 1.0, "EP02": 0.0}}}],
        conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        tasks=[{"task": "bbh/snarks", "n": 4}, {"task": "bbh/movie_recommendation", "n": 4}],
    )
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(tmp_path / "log.duckdb"))
    normalized = {(r["condition"], r["task"]): (r["score"], r["normalized"]) for r in result["tasks"]}
    assert normalized == {
        ("control", "bbh/snarks"): (1.0, 100.0),  # chance 0.5
        ("EP02", "bbh/snarks"): (0.0, -100.0),
        ("control", "bbh/movie_recommendation"): (1.0, 100.0),  # chance 0.25: 100 * (0 - 0.25) / 0.75
        ("EP02", "bbh/movie_recommendation"): (0.0, pytest.approx(-100 / 3)),
    }


def test_generated_tasks_refuse_more_examples_than_they_can_generate() -> None:
    from workbench.core.errors import UserError

    for task_id in ("math/word_problems", "ii/taxonomy_animal"):
        task = TASKS[task_id]
        with pytest.raises(UserError, match=f"can generate {task.available()} distinct examples") as caught:
            task.items(task.available() + 1, 0)
        assert caught.value.field == "n"
