"""What `workbench stimuli list/show/render` print: items described as plain data, and the exact
messages a stimulus produces on a prompt (for program placements, every call's messages)."""

from __future__ import annotations

from typing import Any

from ..core.messages import Message, Messages, to_dicts
from .library import StimulusLibrary
from .model import AppliedStimulus, StimulusItem
from .multiplexity import agent_messages, agents, synthesis_messages
from .placements import PLACEMENTS, apply
from .renderers import RENDERERS
from .resolve import DEFAULT_PLACEMENT, resolve

DEFAULT_SYSTEM = "You are a helpful assistant."


def summary(item: StimulusItem) -> dict[str, Any]:
    """One line of the catalogue: id, family, text where the item has one, citation or authored."""
    renderer = RENDERERS.get(item.renderer)
    row: dict[str, Any] = {
        "id": item.id,
        "family": item.family,
        "version": item.version,
        "placement": item.placement or DEFAULT_PLACEMENT,
        "text": item.text,
        "variants": sorted(item.variants),
        "params": list(renderer.params.model_fields),
    }
    row.update({"citation": item.citation} if item.citation and not item.authored else {"authored": True, "inspired_by": item.inspired_by})
    row.update({k: v for k, v in (("valence", item.valence), ("theory", item.theory), ("code_pnum", item.code_pnum)) if v})
    return row


def detail(item: StimulusItem, library: StimulusLibrary) -> dict[str, Any]:
    """Everything the library knows of an item, with its parameters' schema."""
    renderer = RENDERERS.get(item.renderer)
    schema = renderer.params.model_json_schema()
    return {
        **summary(item),
        "separator": item.separator,
        "renderer": item.renderer,
        "variants": dict(item.variants),
        "params": {name: {k: v for k, v in prop.items() if k != "title"} for name, prop in schema.get("properties", {}).items()},
        "required_params": schema.get("required", []),
        "compound_of": item.compound_of,
        "source": item.source,
        "notes": item.notes,
        "data": item.data,
        "family_notes": library.family(item.family).notes,
        "family_source": library.family(item.family).source,
    }


def base_messages(prompt: str, system: str = DEFAULT_SYSTEM, answer: str | None = None) -> Messages:
    messages: Messages = (Message.text("system", system), Message.text("user", prompt))
    return (*messages, Message.text("assistant", answer)) if answer is not None else messages


def preview(stimulus: AppliedStimulus, messages: Messages) -> list[dict[str, Any]]:
    """The calls the stimulus makes on these messages: one for a prompt placement, several for a
    program (the multi-agent synthesis shown with placeholder answers)."""
    if PLACEMENTS.get(stimulus.placement).program is None:
        return [{"purpose": "answer", "messages": to_dicts(apply(messages, stimulus))}]
    calls = [{"purpose": f"agent:{a}", "messages": to_dicts(agent_messages(messages, stimulus, a))} for a in agents(stimulus)]
    placeholders = {a: f"<answer of the {a} agent>" for a in agents(stimulus)}
    calls.append({"purpose": "synthesis", "messages": to_dicts(synthesis_messages(messages, stimulus, placeholders))})
    return calls


def render(
    library: StimulusLibrary, stimulus_id: str, prompt: str, *, placement: str | None = None, separator: str | None = None,
    variant: str | None = None, params: dict[str, Any] | None = None, system: str = DEFAULT_SYSTEM, answer: str | None = None,
) -> dict[str, Any]:
    stimulus = resolve(library, stimulus_id, placement=placement, separator=separator, variant=variant, params=params)
    if stimulus.placement == "feedback" and answer is None:
        answer = "(the previous answer)"
    return {"stimulus": stimulus.model_dump(), "calls": preview(stimulus, base_messages(prompt, system, answer))}
