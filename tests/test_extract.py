"""Answer extraction that survives what a stimulus does to the answer's form (issue 10, point 1).

The rewordings quoted in the issue, found in logged responses of the embedded model, each score
1 under the default (`flexible`) extractor; hedges naming several candidates give no answer;
`strict` is the task's own parser, with no answer when it finds nothing of the task's type; and
properties over generated wordings (hypothesis): the gold in any wording scores 1, a wrong
candidate worded the same way 0, a hedge naming every candidate no answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.errors import UserError
from workbench.scoring.extract import EXTRACTORS, NO_ANSWER, OK, mentions_gold, score_text
from workbench.scoring.metrics import CHOICE_MATCHERS, METRICS, PARSERS
from workbench.tasks import TaskConfig, TaskItem, TaskSpec, get_task, load_suite_file, resolve_task

II_DATA = Path(__file__).parent / "data" / "instruction-induction"  # three original files, verbatim


def item(text: str, *targets: str, choices: tuple[str, ...] = ()) -> TaskItem:
    return TaskItem(id="t", input=text, targets=targets, choices=choices)


REVIEW = "A warm, funny and beautifully acted film."
DULL = "A dull, lifeless film."
OPERATOR = "op is defined as a op b = a * b + 2. Compute 8 op 5."
COUNTING = "I have a flute, a piano, and a trombone. How many musical instruments do I have?"

# (task, item, response): the issue's examples, each scored 0 by the parsers before it.
ISSUE_EXAMPLES = [
    ("ii/larger_animal", item("hamster, German Shepherd", "German Shepherd"), "The larger of the two given animals is the German Shepherd."),
    ("bbh/object_counting", item(COUNTING, "three", "3"), "You have 3 objects."),
    ("ii/sum", item("15 17", "32"), "32\nConfidence score: 0.95"),
    ("ii/sentiment", item(REVIEW, "positive"), "Positive (confidence: 0.95)"),
    ("ii/sentiment", item(REVIEW, "positive"), "Positive. The review praises the acting."),
    ("ii/sentiment", item(REVIEW, "positive"), "**Answer:** positive"),
    ("ii/sentiment", item(DULL, "negative"), f'The movie review "{DULL}" is clearly negative.'),
    ("ii/antonyms", item("hot", "cold"), "cold - confidence 0.9"),
    ("bbh/operators", item(OPERATOR, "42"), "42 (confidence: 0.9)"),
]
# Further wordings the embedded model gave (studies/format_check.yaml) or models commonly give.
MORE_EXAMPLES = [
    ("ii/sum", item("62 92", "154"), "Confidence score: 0.8\nClassification decision: The sum of 62 and 92 is 154, which is greater than 153."),
    ("ii/sum", item("52 76", "128"), "Yes, I am sure that your final answer is 52 + 76 = 128."),
    ("ii/sum", item("15 17", "32"), "32 (0.95)"),
    ("ii/sum", item("15 17", "32"), "I'm 90% confident the answer is 32."),
    ("ii/sentiment", item(REVIEW, "positive"), "Is the review positive or negative? It is positive."),
    ("ii/sentiment", item(REVIEW, "positive"), "I would classify this as positive, not negative."),
    ("ii/larger_animal", item("whale, mouse", "whale"), "The whale is larger than the mouse."),
    ("ii/larger_animal", item("mirror carp, alligator", "alligator"), "Between mirror carp and alligator, alligator is larger."),
    ("ii/larger_animal", item("baboons, hamster", "baboons"), "The baboon."),
    (
        "ii/larger_animal",
        item("shih tzu, ant", "shih tzu"),
        "The larger of the two given animals is shih tzu. The confidence score for this prediction is 0.5, as it is a reasonable and balanced classification between ant and shih tzu.",
    ),
    ("ii/antonyms", item("hot", "cold"), "The antonym of 'hot' is 'cold'."),
    ("bbh/causal_judgment", item("q", "Yes", choices=("Yes", "No")), "Yes. No one else did."),
    ("bbh/snarks", item("q", "(b)", choices=("(a)", "(b)")), "Option B."),
]


@pytest.mark.parametrize("task_id, example, text", MORE_EXAMPLES, ids=[f"{t}:{x[:30]}" for t, _, x in MORE_EXAMPLES])
def test_more_rewordings_of_the_gold_score_one(task_id: str, example: TaskItem, text: str) -> None:
    assert score_text(get_task(task_id), example, text).value == 1.0


@pytest.mark.parametrize("task_id, example, text", ISSUE_EXAMPLES, ids=[f"{t}:{x[:30]}" for t, _, x in ISSUE_EXAMPLES])
def test_the_issues_rewordings_of_the_gold_score_one(task_id: str, example: TaskItem, text: str) -> None:
    task = get_task(task_id)
    scored = score_text(task, example, text)
    assert (scored.status, scored.value) == (OK, 1.0), scored
    assert task.score(text, example)[1] == 1.0


def test_a_number_task_never_reads_the_confidence_value() -> None:
    task = get_task("ii/sum")
    assert task.parse("32\nConfidence score: 0.95", item("15 17", "32")) == "32"  # what HEART votes on
    assert task.parse("Confidence score: 0.9\nClassification decision: The sum of 62 and 92 is 154, which is greater than 153.", item("62 92", "154")) == "154"
    assert task.parse("Confidence score: 0.95", item("15 17", "32")) is None


# (task, item, response): hedges and responses with no answer of the task's type.
NO_ANSWERS = [
    ("ii/larger_animal", item("whale, mouse", "whale"), "either the whale or the mouse"),
    ("ii/larger_animal", item("whale, mouse", "whale"), "whale, mouse"),
    ("ii/sentiment", item(REVIEW, "positive"), "positive or negative"),
    ("ii/sentiment", item(REVIEW, "positive"), "The review has both positive and negative aspects."),
    ("ii/sentiment", item(REVIEW, "positive"), "0"),  # EP01: a confidence value only
    ("bbh/sports_understanding", item("Joao Moutinho caught the screen pass.", "implausible", choices=("plausible", "implausible")), "It could be plausible or implausible."),
    ("ii/sum", item("15 17", "32"), "either 32 or 33"),
    ("ii/sum", item("12 94", "106"), "Yes, I am sure that your final answer is 12 + 94."),
    ("ii/sum", item("12 94", "106"), "Yes, I am sure that is your final answer."),
    ("ii/sum", item("12 94", "106"), "I cannot tell. The confidence score for this prediction is 0.5."),
]


@pytest.mark.parametrize("task_id, example, text", NO_ANSWERS, ids=[f"{t}:{x[:30]}" for t, _, x in NO_ANSWERS])
def test_a_hedge_or_a_response_without_an_answer_gets_no_answer(task_id: str, example: TaskItem, text: str) -> None:
    task = get_task(task_id)
    scored = score_text(task, example, text)
    assert scored.status == NO_ANSWER and scored.answer is None and scored.value is None, scored
    assert task.score(text, example) == (None, 0.0)  # scored as a wrong answer where a number is needed


@pytest.mark.parametrize(
    "task_id, example, text",
    [
        ("ii/sentiment", item(REVIEW, "positive"), "Positive (confidence: 0.95)"),  # first line, not a label
        ("bbh/operators", item(OPERATOR, "42"), "42 (confidence: 0.9)"),  # the output regex finds ""
        ("bbh/object_counting", item(COUNTING, "three", "3"), "You have 3 objects."),
        ("ii/larger_animal", item("whale, mouse", "whale"), "The whale is larger."),
    ],
)
def test_strict_has_no_answer_where_its_parser_finds_nothing_of_the_type(task_id: str, example: TaskItem, text: str) -> None:
    scored = score_text(get_task(task_id), example, text, "strict")
    assert scored.status == NO_ANSWER and scored.answer is None


def _todays_score(task: TaskSpec, example: TaskItem, text: str) -> float:
    """The score the workbench gave before extractors: the task's parser, choice matcher and metric."""
    answer = PARSERS.get(task.parser)(text, **task.parser_args)
    if task.choice_match and example.choices:
        answer = CHOICE_MATCHERS.get(task.choice_match)(answer, example.choices)
    targets = tuple(PARSERS.get(task.parser)(t, **task.parser_args) for t in example.targets) if task.parse_targets else example.targets
    return float(METRICS.get(task.metric)(answer, targets))


# Fragments models answer with; a text is any few of them.
FRAGMENTS = ["32", "33", "15", "0.95", "positive", "negative", "Positive.", "whale", "mouse", "Answer:", "The answer is", "**", "(confidence: 0.9)", "\n", " ", "or", "cold"]
STRICT_CASES = [
    ("ii/sum", item("15 17", "32")),
    ("ii/sentiment", item(REVIEW, "positive")),
    ("ii/larger_animal", item("whale, mouse", "whale")),
    ("ii/antonyms", item("hot", "cold")),
    ("bbh/operators", item(OPERATOR, "32")),
    ("bbh/sports_understanding", item("x", "plausible", choices=("plausible", "implausible"))),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(STRICT_CASES), parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6))
def test_a_strict_score_never_differs_from_todays_when_it_has_an_answer(case: tuple[str, TaskItem], parts: list[str]) -> None:
    task_id, example = case
    task, text = get_task(task_id), " ".join(parts)
    scored = score_text(task, example, text, "strict")
    if scored.status == OK:
        assert scored.value == _todays_score(task, example, text), text
    else:
        assert _todays_score(task, example, text) == 0.0, text  # no answer only where today scored 0


# -- properties over wordings ----------------------------------------------------------------------
PREFIXES = ["", "Answer: ", "**Answer:** ", "The answer is ", "Output: ", "Final answer: ", "I think the answer is ", "Sure!\n"]
WRAPS = ["{}", "**{}**", "*{}*", "`{}`", '"{}"']
SUFFIXES = [
    "",
    ".",
    " (confidence: {c})",
    "\nConfidence score: {c}",
    " - confidence {c}",
    ", with a confidence of {p}%",
    "\nI am {p}% confident.",
    ". Because that is what the input says.",
    "\n\nExplanation: it follows from the input.",
]


def _sentiment_items() -> list[TaskItem]:
    examples = json.loads((II_DATA / "execute" / "sentiment.json").read_text())["examples"]
    return [item(e["input"], e["output"]) for e in list(examples.values())[:40]]


def _animal_items() -> list[TaskItem]:
    examples = json.loads((II_DATA / "execute" / "larger_animal.json").read_text())["examples"]
    return [item(e["input"], e["output"]) for e in list(examples.values())[:40]]


CLOSED = [("ii/sentiment", x) for x in _sentiment_items()] + [("ii/larger_animal", x) for x in _animal_items()] + [
    ("bbh/snarks", item("Which statement is sarcastic?\n  choice: (a) ...\n  choice: (b) ...", "(b)", choices=("(a)", "(b)"))),
    ("bbh/sports_understanding", item("Joao Moutinho caught the screen pass.", "implausible", choices=("plausible", "implausible"))),
    ("bbh/epistemic_reasoning", item("Premise: ... Hypothesis: ...", "non-entailment", choices=("entailment", "non-entailment"))),
    ("bbh/winowhy", item("...", "correct", choices=("incorrect", "correct"))),
]
wordings = st.tuples(st.sampled_from(PREFIXES), st.sampled_from(WRAPS), st.sampled_from(SUFFIXES), st.sampled_from(["0.9", "0.95", "1", "0", "0.5"]), st.integers(50, 100))


def _worded(answer: str, wording: tuple[str, str, str, str, int]) -> str:
    prefix, wrap, suffix, c, p = wording
    return prefix + wrap.format(answer) + suffix.format(c=c, p=p)


def _values(task_id: str, example: TaskItem) -> list[str]:
    from workbench.scoring.answers import candidates_of

    return [c.value for c in candidates_of(get_task(task_id), example)]


@settings(max_examples=400, deadline=None)
@given(case=st.sampled_from(CLOSED), wording=wordings)
def test_the_gold_in_any_wording_scores_one_and_a_wrong_candidate_zero(case: tuple[str, TaskItem], wording: tuple) -> None:
    task_id, example = case
    task = get_task(task_id)
    gold_text = _worded(example.targets[0], wording)
    assert score_text(task, example, gold_text).value == 1.0, gold_text
    for wrong in (v for v in _values(task_id, example) if v not in example.targets):
        wrong_text = _worded(wrong, wording)
        scored = score_text(task, example, wrong_text)
        assert scored.value == 0.0 and scored.answer == wrong, (wrong_text, scored)


HEDGES = ["either {a} or {b}", "{a} or {b}", "It could be {a} or {b}.", "Both {a} and {b}.", "It is {a} or {b}", "{a}, {b}"]


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CLOSED), hedge=st.sampled_from(HEDGES), order=st.booleans(), wording=wordings)
def test_a_hedge_naming_every_candidate_gets_no_answer(case: tuple[str, TaskItem], hedge: str, order: bool, wording: tuple) -> None:
    task_id, example = case
    values = _values(task_id, example)
    a, b = values if order else values[::-1]
    text = _worded(hedge.format(a=a, b=b), wording)
    scored = score_text(get_task(task_id), example, text)
    assert scored.status == NO_ANSWER, (text, scored)


@settings(max_examples=300, deadline=None)
@given(x=st.integers(0, 99), y=st.integers(0, 99), wording=wordings, shape=st.sampled_from(["{s}", "{x} + {y} = {s}", "The sum of {x} and {y} is {s}"]))
def test_a_sum_in_any_wording_is_read_as_its_value_never_the_confidence(x: int, y: int, wording: tuple, shape: str) -> None:
    task, example = get_task("ii/sum"), item(f"{x} {y}", str(x + y))
    text = _worded(shape.format(x=x, y=y, s=x + y), wording)
    assert task.parse(text, example) == str(x + y), text
    wrong = _worded(shape.format(x=x, y=y, s=x + y + 1), wording)
    assert score_text(task, example, wrong).value == 0.0, wrong


# -- mentions_gold ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task_id, example, text, expected",
    [
        ("ii/sum", item("0 47", "47"), "0 + 47", False),  # the input's 47, not an answer
        ("ii/sum", item("0 47", "47"), "0 + 47 = 47", True),
        ("ii/sum", item("20 27", "47"), "The sum is forty-seven.", True),
        ("ii/sum", item("20 27", "47"), "47.0", True),
        ("ii/larger_animal", item("whale, mouse", "whale"), "either the whale or the mouse", False),
        ("ii/larger_animal", item("whale, mouse", "whale"), "The whale, clearly.", True),
        ("ii/sentiment", item(REVIEW, "positive"), "positively charming", False),
        ("ii/antonyms", item("hot", "cold"), "**cold**", True),
    ],
)
def test_mentions_gold_counts_values_and_whole_names_and_never_a_hedge(task_id: str, example: TaskItem, text: str, expected: bool) -> None:
    assert mentions_gold(get_task(task_id), example, text) is expected


# -- declarations -----------------------------------------------------------------------------------
def test_every_builtin_task_declares_a_known_answer_type_and_closed_ones_their_candidates() -> None:
    from workbench.scoring.answers import ANSWER_TYPES, CANDIDATE_SOURCES
    from workbench.tasks import builtin_tasks

    for spec in builtin_tasks().values():
        kind = ANSWER_TYPES.get(spec.answer_type)
        assert not kind.closed or spec.candidates or spec.candidates_from, spec.id
        assert spec.candidates_from is None or spec.candidates_from in CANDIDATE_SOURCES
    assert get_task("ii/sentiment").candidates == ("positive", "negative")
    assert get_task("ii/larger_animal").candidates_from == "input_list"
    assert {"strict", "flexible"} <= set(EXTRACTORS)


@pytest.mark.parametrize(
    "entry, field, message",
    [
        ({"answer_type": "numbr"}, "tasks[0].answer_type", "unknown answer type 'numbr'; did you mean number"),
        ({"answer_type": "label"}, "tasks[0].candidates", "needs `candidates`"),
        ({"answer_type": "label", "candidates_from": "inputs"}, "tasks[0].candidates_from", "unknown candidate source"),
        ({"answer_type": "label", "candidates": ["a", "b"], "candidates_from": "choices"}, "tasks[0].candidates", "not both"),
    ],
)
def test_a_bad_answer_declaration_names_the_file_and_field(tmp_path: Path, entry: dict, field: str, message: str) -> None:
    suite = {"suite": "mine", "version": "1", "tasks": [{"name": "t", "instruction": "Say.", "metric": "em", "source": "listed", "source_args": {"items": []}, **entry}]}
    path = tmp_path / "mine.yaml"
    path.write_text(json.dumps(suite))
    with pytest.raises(UserError) as caught:
        load_suite_file(path)
    assert caught.value.field == field and message in str(caught.value) and str(path) in str(caught.value)


def test_a_scorer_profile_keeps_its_own_normalisation() -> None:
    """negativeprompt-v1 reads the whole response (its metric normalises it), as before."""
    task = resolve_task(TaskConfig(task="ii/sentiment", path=str(II_DATA), scorer="negativeprompt-v1"))
    assert task.answer_type == "verbatim"
    text = "The sentiment is positive, I am sure."
    assert score_text(task, item(REVIEW, "positive"), text).answer == text


# -- ii/synonyms: `contains` matches whole words (issue 10, point 5.2) ------------------------------
@pytest.mark.parametrize("answer, expected", [("largest", 0.0), ("enlarged", 0.0), ("Large.", 1.0), ("big, large", 1.0), ("large-scale", 1.0)])
def test_synonyms_contains_matches_whole_words(answer: str, expected: float) -> None:
    assert get_task("ii/synonyms").score_answer(answer, item("big", "large")) == expected
