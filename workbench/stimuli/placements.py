"""Placements: where a stimulus goes in the messages. Each is a pure function
(messages, stimulus) -> new messages; the input is never changed.

Most placements are applied when a trial's prompt is built (`stage="prompt"`). Two belong to a
program that makes several calls (`stage="program"`): `feedback` (the HEART loop applies it after
each answer) and `multi_agent` (the multi-agent solver fans the prompt out to its agents).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..core.errors import UserError
from ..core.messages import Message, Messages, last_index, replace_at
from ..core.registry import Registry
from .model import SEPARATORS, AppliedStimulus, Separator

PlaceFn = Callable[[Messages, AppliedStimulus], Messages]

# The slots of a task's user message (see workbench.tasks.TaskSpec.render).
INSTRUCTION_SLOT = "instruction"
DEMOS_SLOT = "demos"
PREAMBLE_SLOT = "preamble"  # where a template that asks its question around the instruction wants a prefix: before the question
FEEDBACK_TEMPLATE_PART = "feedback_template"
SLOT_PART = "slot:"  # a stimulus part that fills the task template's slot of that name
PHRASE_PLACEHOLDER = "{phrase}"  # where a feedback template takes its phrase (workbench.stimuli.feedback_phrases.PLACEHOLDER)


@dataclass(frozen=True)
class Placement:
    apply: PlaceFn
    default_separator: Separator
    inherits_separator: bool = False  # the family's separator (the source paper's) applies here
    stage: Literal["prompt", "program"] = "prompt"
    program: str | None = None  # the solver that runs this placement when a condition names none
    description: str = ""


PLACEMENTS: Registry[Placement] = Registry("placement")


def _edit_slot(messages: Messages, slot: str, edit: Callable[[str], str]) -> Messages:
    """Edit a named slot of the last user message, or its whole text where it has no such slot."""
    index = last_index(messages, "user")
    if index is None:
        raise ValueError("the prompt has no user message to attach the stimulus to")
    message = messages[index]
    current = message.slot(slot)
    updated = message.with_slot(slot, edit(current)) if current is not None else Message.text(message.role, edit(message.content))
    return replace_at(messages, index, updated)


def join(first: str, second: str, separator: Separator) -> str:
    """`first` and `second` with the separator between them; no separator against an empty side."""
    if not first or not second:
        return first or second
    return f"{first}{SEPARATORS[separator]}{second}"


def append_system(messages: Messages, text: str, separator: Separator = "newline") -> Messages:
    """Append to the system message, or open the conversation with one."""
    if messages and messages[0].role == "system":
        return replace_at(messages, 0, Message.text("system", join(messages[0].content, text, separator)))
    return (Message.text("system", text), *messages)


def task_text(messages: Messages) -> str:
    """The task as the model saw it: the last user message of the prompt."""
    index = last_index(messages, "user")
    if index is None:
        raise ValueError("the prompt has no user message")
    return messages[index].content


def synthesis_prompt(messages: Messages, system: str, user: str, separator: Separator = "newline") -> Messages:
    """A synthesiser's prompt: the conversation's system message with `system` appended, and one user turn."""
    opening = tuple(m for m in messages[:1] if m.role == "system")
    return (*append_system(opening, system, separator), Message.text("user", user))


def place_suffix(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    return _edit_slot(messages, INSTRUCTION_SLOT, lambda text: join(text, stimulus.text, stimulus.separator))


def place_prefix(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """Before the task: at the template's preamble where it has one (an inventory's statement
    comes before its instruction), else before the instruction."""
    if _user_slot(messages, PREAMBLE_SLOT) is not None:
        # the preamble is followed by the question itself, so the separator closes it even when it was empty
        return _edit_slot(messages, PREAMBLE_SLOT, lambda text: join(stimulus.text, text, stimulus.separator) if text else stimulus.text + SEPARATORS[stimulus.separator])
    return _edit_slot(messages, INSTRUCTION_SLOT, lambda text: join(stimulus.text, text, stimulus.separator))


def _user_slot(messages: Messages, slot: str) -> str | None:
    index = last_index(messages, "user")
    return None if index is None else messages[index].slot(slot)


def place_system(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    return append_system(messages, stimulus.text, stimulus.separator)


def place_few_shot_header(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """Open the few-shot block with the stimulus; a plain prompt without one gets it at its start."""
    return _edit_slot(messages, DEMOS_SLOT, lambda demos: join(stimulus.text, demos, stimulus.separator))


def feedback_text(stimulus: AppliedStimulus) -> str:
    template = stimulus.parts.get(FEEDBACK_TEMPLATE_PART, PHRASE_PLACEHOLDER)
    return template.replace(PHRASE_PLACEHOLDER, stimulus.text)


def place_feedback(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """After the model's previous answer, a user turn: the feedback template around the phrase."""
    if not messages or messages[-1].role != "assistant":
        raise ValueError("the feedback placement follows a previous answer: the last message must be the assistant's")
    return (*messages, Message.text("user", feedback_text(stimulus)))


def _run_by_program(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    raise ValueError(
        f"placement {stimulus.placement!r} is run by its program, not applied to one prompt "
        "(see workbench.stimuli.multiplexity.agent_messages and synthesis_messages)"
    )


PLACEMENTS.add("suffix", Placement(place_suffix, "space", inherits_separator=True, description="after the task instruction"))
PLACEMENTS.add("prefix", Placement(place_prefix, "space", inherits_separator=True, description="before the task instruction (before the question where the template has a preamble)"))
PLACEMENTS.add("system", Placement(place_system, "newline", description="appended to the system message"))
PLACEMENTS.add("few_shot_header", Placement(place_few_shot_header, "newline", description="opens the few-shot demonstrations"))
PLACEMENTS.add(
    "feedback",
    Placement(place_feedback, "none", stage="program", description="a user turn after the previous answer (HEART loop)"),
)
PLACEMENTS.add(
    "multi_agent",
    Placement(_run_by_program, "newline", stage="program", program="multi_agent", description="perspective agents and a synthesiser"),
)


def apply(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """Return new messages with `stimulus` applied at its placement, and any slot it fills
    (`fill_slots`); the input is left unchanged."""
    return fill_slots(PLACEMENTS.get(stimulus.placement).apply(messages, stimulus), stimulus)


def fill_slots(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """Set each slot named by a part `slot:<name>` of the stimulus where the task's template has
    that slot (SAC's clause naming its target trait in the SAC-Induced question); elsewhere nothing."""
    index = last_index(messages, "user")
    for key, text in stimulus.parts.items():
        if key.startswith(SLOT_PART) and index is not None and messages[index].slot(key.removeprefix(SLOT_PART)) is not None:
            messages = replace_at(messages, index, messages[index].with_slot(key.removeprefix(SLOT_PART), text))
    return messages


def apply_all(messages: Messages, stimuli: Sequence[AppliedStimulus]) -> Messages:
    """Apply stimuli in order (stacking): each sees the messages the previous one produced."""
    for stimulus in stimuli:
        messages = apply(messages, stimulus)
    return messages


def prompt_stage(stimuli: Sequence[AppliedStimulus]) -> tuple[AppliedStimulus, ...]:
    """The stimuli a trial's prompt applies; those of the program stage wait for the solver."""
    return tuple(s for s in stimuli if PLACEMENTS.get(s.placement).stage == "prompt")


def build_prompt(messages: Messages, stimuli: Sequence[AppliedStimulus]) -> Messages:
    """A trial's prompt: the stimuli of the prompt stage applied."""
    return apply_all(messages, prompt_stage(stimuli))


def choose_solver(stimuli: Sequence[AppliedStimulus], named: str | None, default: str) -> str:
    """The solver for a condition's stimuli: the one it names, else the one a program placement
    runs as, else `default`. Errors name the field ("solver" or "stimuli") they concern."""
    placed = [(s, PLACEMENTS.get(s.placement)) for s in stimuli]
    programs = [p.program for _, p in placed if p.program]
    if len(set(programs)) > 1:
        raise UserError(f"its stimuli need different programs ({', '.join(sorted(set(programs)))}); split them", field="stimuli")
    if len(programs) > 1:
        raise UserError(f"at most one stimulus may run as program {programs[0]!r}", field="stimuli")
    needed = programs[0] if programs else None
    solver = named or needed or default
    if needed and solver != needed:
        stimulus = next(s for s, p in placed if p.program)
        raise UserError(
            f"{stimulus.id} (placement {stimulus.placement}) runs as solver {needed!r}, not {solver!r}; drop `solver` or set it to {needed!r}",
            field="solver",
        )
    staged = [s for s, p in placed if p.stage == "program"]
    if staged and solver == default:
        raise UserError(
            f"{staged[0].id} (placement {staged[0].placement}) is applied inside a program of several calls; name the solver that runs it",
            field="solver",
        )
    return solver
