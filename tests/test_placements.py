"""Each placement shows the exact messages it produces; stacking too; applying never mutates."""

from __future__ import annotations

import copy

import pytest

from workbench.core.messages import Message, to_dicts
from workbench.stimuli import PLACEMENTS, apply, apply_all, build_prompt, builtin_library, feedback_phrases as heart, resolve
from workbench.stimuli.multiplexity import agent_messages, synthesis_messages
from workbench.tasks import TaskItem, get_task

SYSTEM = "You are a helpful assistant."
EP02 = "This is very important to my career."
NP01 = "You've never been particularly good at this, have you?"


@pytest.fixture(scope="module")
def library():
    return builtin_library()


def _task_prompt(shots: int = 0):
    task = get_task("ii/sum")
    demos = [TaskItem(id=f"d{i}", input=f"{i} 1", targets=(str(i + 1),)) for i in range(shots)]
    return task.render(TaskItem(id="q", input="2 3", targets=("5",)), demos)


def _user(instruction: str, demos: str = "") -> dict[str, str]:
    return {"role": "user", "content": f"Instruction: {instruction}\n\n{demos}\nInput: 2 3\nAnswer: "}


def test_every_registered_placement_is_covered_here() -> None:
    assert PLACEMENTS.names() == ["feedback", "few_shot_header", "multi_agent", "prefix", "suffix", "system"]


@pytest.mark.parametrize(
    ("ref", "instruction"),
    [
        ({"stimulus_id": "EP02"}, f"Sum the two given numbers. {EP02}"),
        ({"stimulus_id": "EP02", "separator": "newline"}, f"Sum the two given numbers.\n{EP02}"),
        ({"stimulus_id": "NP01"}, f"Sum the two given numbers.{NP01}"),
        ({"stimulus_id": "EP02", "placement": "prefix"}, f"{EP02} Sum the two given numbers."),
        ({"stimulus_id": "NP01", "placement": "prefix", "separator": "space"}, f"{NP01} Sum the two given numbers."),
    ],
)
def test_suffix_and_prefix_attach_to_the_instruction(library, ref, instruction) -> None:
    stimulus_id = ref.pop("stimulus_id")
    prompt = _task_prompt()
    out = apply(prompt, resolve(library, stimulus_id, **ref))
    assert to_dicts(out) == [{"role": "system", "content": SYSTEM}, _user(instruction)]


def test_suffix_on_a_plain_prompt_attaches_to_its_text(library) -> None:
    out = apply((Message.text("user", "What is 2 + 3?"),), resolve(library, "EP02"))
    assert to_dicts(out) == [{"role": "user", "content": f"What is 2 + 3? {EP02}"}]


def test_system_placement_appends_to_the_system_message_or_opens_one(library) -> None:
    stimulus = resolve(library, "MPX/contextual")
    with_system = apply(_task_prompt(), stimulus)
    assert to_dicts(with_system)[0] == {"role": "system", "content": f"{SYSTEM}\n{stimulus.text}"}
    assert to_dicts(with_system)[1] == _user("Sum the two given numbers.")
    without = apply((Message.text("user", "Hi"),), resolve(library, "EP02", placement="system"))
    assert to_dicts(without) == [{"role": "system", "content": EP02}, {"role": "user", "content": "Hi"}]


def test_few_shot_header_opens_the_demonstrations(library) -> None:
    stimulus = resolve(library, "EP02", placement="few_shot_header")
    assert stimulus.separator == "newline"
    demos = "Input: 0 1\nOutput: 1\n\nInput: 1 1\nOutput: 2"
    assert to_dicts(apply(_task_prompt(shots=2), stimulus))[1] == _user("Sum the two given numbers.", f"{EP02}\n{demos}")
    # zero-shot: the header stands where the demonstrations would
    assert to_dicts(apply(_task_prompt(), stimulus))[1] == _user("Sum the two given numbers.", EP02)
    # a plain prompt without a few-shot block: the header opens the user message
    assert to_dicts(apply((Message.text("user", "Q?"),), stimulus)) == [{"role": "user", "content": f"{EP02}\nQ?"}]


def test_feedback_appends_the_feedback_turn_after_the_previous_answer(library) -> None:
    answered = (*_task_prompt(), Message.text("assistant", "6"))
    stimulus = heart.feedback_stimulus("HEART/sadness/4")
    out = heart.feedback_turn(answered, stimulus)
    assert to_dicts(out)[:3] == to_dicts(answered)
    assert to_dicts(out)[3] == {"role": "user", "content": "Your previous answer is incorrect. Sadly, this isn't right yet. Please try again."}
    assert stimulus.params == {"template": "incorrect"} and stimulus.text == "Sadly, this isn't right yet."
    review = heart.feedback_stimulus("HEART/surprise/3", template="review")
    assert apply(answered, review)[-1].content == "Look at your previous answer again. Interesting: something here is not what it seems. Please answer again."
    custom = heart.feedback_stimulus("HEART/anger/3", template="{phrase} Answer with a number only.")
    assert apply(answered, custom)[-1].content == "Enough careless errors. Fix it now. Answer with a number only."
    with pytest.raises(ValueError, match="previous answer"):
        apply(_task_prompt(), stimulus)


def test_multi_agent_builds_each_agents_prompt_and_the_synthesis(library) -> None:
    stimulus = resolve(library, "MPX/agents", params={"perspectives": ["african", "indic"]})
    prompt = _task_prompt()
    african = agent_messages(prompt, stimulus, "african")
    assert to_dicts(african) == [
        {"role": "system", "content": SYSTEM + "\nYou are one of several advisers who each answer from a different cultural tradition. "
         "Your tradition: African communitarian thought (Ubuntu, the idea that a person is a person through other persons, and the "
         "wisdom of elders and community). Answer the task as a thoughtful member of this tradition would, and keep to the answer "
         "format the task asks for."},
        _user("Sum the two given numbers."),
    ]
    synthesis = synthesis_messages(prompt, stimulus, {"african": "5", "indic": "Five."})
    assert to_dicts(synthesis)[0]["content"] == SYSTEM + "\n" + stimulus.parts["synthesis_system"]
    assert to_dicts(synthesis)[1] == {
        "role": "user",
        "content": "Task:\n" + _user("Sum the two given numbers.")["content"] + "\n\nThe panel's 2 answers:\n\n"
        "[African communitarian thought]\n5\n\n[Indic traditions]\nFive.\n\nNow write the final answer to the task.",
    }
    with pytest.raises(ValueError, match="run by its program"):
        apply(prompt, stimulus)
    # the prompt the agents share is the task prompt: the program placement waits for the solver
    assert build_prompt(prompt, [stimulus]) == prompt


def test_stacking_applies_in_order_and_each_sees_the_previous_result(library) -> None:
    stack = [
        resolve(library, "EP02"),
        resolve(library, "NP01", placement="prefix", separator="space"),
        resolve(library, "MPX/contextual"),
        resolve(library, "BIG5/openness", params={"intensity": 0.9}),
        resolve(library, "EP05", placement="few_shot_header"),
    ]
    out = to_dicts(apply_all(_task_prompt(), stack))
    assert out[0]["content"] == f"{SYSTEM}\n{stack[2].text}\n{stack[3].text}"
    assert out[1] == _user(f"{NP01} Sum the two given numbers. {EP02}", "Are you sure that's your final answer? It might be worth taking another look.")
    # order matters: NP01 before EP02 as suffixes
    swapped = to_dicts(apply_all(_task_prompt(), [resolve(library, "NP01"), resolve(library, "EP02")]))
    assert swapped[1] == _user(f"Sum the two given numbers.{NP01} {EP02}")


def test_applying_returns_new_messages_and_leaves_the_input_unchanged(library) -> None:
    prompt = _task_prompt(shots=1)
    before = copy.deepcopy(to_dicts(prompt))
    for stimulus in (resolve(library, "EP02"), resolve(library, "EP02", placement="prefix"), resolve(library, "MPX/contextual"),
                     resolve(library, "EP02", placement="few_shot_header")):
        out = apply(prompt, stimulus)
        assert out is not prompt and to_dicts(out) != before
        assert to_dicts(prompt) == before
