"""Big Five trait-intensity personas: a trait, a continuous intensity in [0, 1] and an optional
situation, rendered to a persona instruction.

A prompt-level analogue of PersonaFuse's situational trait activation (Tang et al. 2025), which is
a training method with no published prompts: the wording is the workbench's own
(`stimuli/big_five_persona.yaml`, labelled authored)."""

from __future__ import annotations

from pydantic import Field

from .model import Family, StimulusItem
from .renderers import RENDERERS, Rendered, Renderer, Strict, data_of, fields_of, no_variant


class PersonaData(Strict):
    persona_template: str  # {trait} {band} {intensity} {low} {high}
    situation_template: str  # {situation}; put before the persona, a newline between
    bands: list[str] = Field(min_length=1)  # verbal labels for equal slices of [0, 1], low to high


class PersonaFields(Strict):
    trait: str
    high: str  # the high pole, as adjectives
    low: str


class PersonaParams(Strict):
    intensity: float = Field(ge=0.0, le=1.0)
    situation: str | None = None


def band(intensity: float, bands: list[str]) -> str:
    return bands[min(int(intensity * len(bands)), len(bands) - 1)]


def _render(item: StimulusItem, family: Family, params: PersonaParams, variant: str | None) -> Rendered:
    no_variant(item, variant)
    fields, data = fields_of(item, PersonaFields), data_of(family, PersonaData)
    persona = data.persona_template.format(
        trait=fields.trait, band=band(params.intensity, data.bands), intensity=f"{params.intensity:.2f}", low=fields.low, high=fields.high,
    )
    if params.situation:
        persona = data.situation_template.format(situation=params.situation) + "\n" + persona
    return Rendered(text=persona)


RENDERERS.add("trait_persona", Renderer(render=_render, params=PersonaParams, item_fields=PersonaFields, family_data=PersonaData))
