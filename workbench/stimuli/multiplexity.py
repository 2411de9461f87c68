"""Multiplexity (Mushtaq et al. 2025), multi-agent form: several agents answer the task, each from
one cultural perspective, and a synthesiser merges their answers into the final one.

The paper's prompts and agent roster were not found; `stimuli/multiplexity.yaml` carries the
workbench's own (labelled authored). This module renders the family and builds
each call's messages, a pure function of the trial's prompt and the stimulus; the `multi_agent`
solver that makes the calls is workbench/solvers/multi_agent.py.
"""

from __future__ import annotations

from pydantic import Field

from ..core.errors import UserError
from ..core.messages import Messages
from .model import AppliedStimulus, Family, StimulusItem
from .placements import append_system, synthesis_prompt, task_text
from .renderers import RENDERERS, Rendered, Renderer, Strict, fields_of, no_variant

PLACEMENT = "multi_agent"
AGENT, LABEL = "agent:", "label:"
SYNTHESIS_SYSTEM, SYNTHESIS_TEMPLATE, ANSWER_TEMPLATE = "synthesis_system", "synthesis_template", "answer_template"


class Perspective(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    description: str


class AgentsFields(Strict):
    perspectives: list[Perspective] = Field(min_length=1)
    agent_template: str  # {name} {description}
    synthesis_system: str
    synthesis_template: str  # {task} {answers} {n}
    answer_template: str  # {name} {answer}


class AgentsParams(Strict):
    perspectives: list[str] | None = Field(None, min_length=1)  # ids, in the order the agents run; default all


def _render(item: StimulusItem, family: Family, params: AgentsParams, variant: str | None) -> Rendered:
    no_variant(item, variant)
    fields = fields_of(item, AgentsFields)
    known = {p.id: p for p in fields.perspectives}
    chosen = params.perspectives or list(known)
    unknown = [p for p in chosen if p not in known]
    if unknown or len(set(chosen)) != len(chosen):
        problem = f"unknown perspective {unknown[0]!r}" if unknown else "a perspective is named twice"
        raise UserError(f"{problem} (perspectives: {', '.join(known)})", field="params.perspectives")
    parts: dict[str, str] = {}
    for pid in chosen:
        parts[AGENT + pid] = fields.agent_template.format(name=known[pid].name, description=known[pid].description)
        parts[LABEL + pid] = known[pid].name
    parts.update({SYNTHESIS_SYSTEM: fields.synthesis_system, SYNTHESIS_TEMPLATE: fields.synthesis_template, ANSWER_TEMPLATE: fields.answer_template})
    return Rendered(text="", parts=parts, params={"perspectives": chosen})


RENDERERS.add(
    "multi_agent",
    Renderer(render=_render, params=AgentsParams, item_fields=AgentsFields, placements=frozenset({PLACEMENT})),
)


def agents(stimulus: AppliedStimulus) -> list[str]:
    return [key.removeprefix(AGENT) for key in stimulus.parts if key.startswith(AGENT)]


def agent_messages(messages: Messages, stimulus: AppliedStimulus, agent: str) -> Messages:
    """The prompt one perspective agent answers: the trial's prompt, its perspective in the system message."""
    return append_system(messages, stimulus.parts[AGENT + agent], stimulus.separator)


def synthesis_messages(messages: Messages, stimulus: AppliedStimulus, answers: dict[str, str]) -> Messages:
    """The synthesiser's prompt: the trial's system message with the synthesis role, and one user
    turn holding the task as the agents saw it and their answers, labelled by perspective."""
    block = "\n\n".join(
        stimulus.parts[ANSWER_TEMPLATE].format(name=stimulus.parts[LABEL + agent], answer=answer) for agent, answer in answers.items()
    )
    user = stimulus.parts[SYNTHESIS_TEMPLATE].format(task=task_text(messages), answers=block, n=len(answers))
    return synthesis_prompt(messages, stimulus.parts[SYNTHESIS_SYSTEM], user, stimulus.separator)
