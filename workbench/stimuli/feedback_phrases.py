"""HEART feedback phrases (Pinto et al. 2025) and the API the HEART loop calls.

The paper's phrase list was not found, so `stimuli/heart.yaml` carries the workbench's own
(labelled authored): concise phrases for Ekman's six emotions, each its own id, the emotions
grouped into encouraging and critical tones. A user file with `family: heart` and
`replaces: true` swaps them out. The feedback turn is built by the `feedback` placement from a
phrase and a feedback template (workbench-authored, chosen by name or given as text).

    phrases("anger")                       # the anger phrases, ordered by id
    phrases(tone="encouraging")            # every phrase of the encouraging emotions
    stimulus = feedback_stimulus("HEART/anger/1", template="review")
    messages = feedback_turn(messages, stimulus)   # messages end with the previous answer
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ..core.errors import UserError
from ..core.messages import Messages
from .library import StimulusLibrary, builtin_library
from .model import AppliedStimulus, Family, StimulusItem
from .placements import FEEDBACK_TEMPLATE_PART, place_feedback
from .placements import PHRASE_PLACEHOLDER as PLACEHOLDER  # defined beside the placement that fills it (placements cannot import heart)
from .renderers import RENDERERS, Rendered, Renderer, Strict, data_of, fields_of, no_variant
from .resolve import resolve

FAMILY = "heart"


class Verdicts(Strict):
    correct: str = Field(min_length=1)
    incorrect: str = Field(min_length=1)


class LoopPrompts(Strict):
    """The HEART loop's own prompts (workbench-authored; see stimuli/heart.yaml)."""

    templates: dict[str, str]  # mode -> the feedback template it uses unless a condition names one
    verify: str  # self-verification: asked after an answer; the reply is read for a verdict word
    verdicts: Verdicts
    synthesis_system: str
    synthesis: str  # {task} {candidates} {n}
    candidate: str  # {index} {answer}

    @model_validator(mode="after")
    def _slots(self) -> LoopPrompts:
        for name, slots in (("synthesis", ("{task}", "{candidates}")), ("candidate", ("{answer}",))):
            missing = [slot for slot in slots if slot not in getattr(self, name)]
            if missing:
                raise ValueError(f"loop.{name} lacks {missing[0]}")
        return self


class HeartData(Strict):
    tones: dict[str, list[str]] = Field(min_length=1)  # tone -> emotions
    feedback_templates: dict[str, str] = Field(min_length=1)  # name -> text with {phrase}
    default_template: str
    neutral: list[str] = Field(default_factory=list)  # emotion-free labels: the neutral-feedback baseline's phrases
    loop: LoopPrompts | None = None  # a replacing file without it keeps the built-in loop prompts

    @model_validator(mode="after")
    def _templates(self) -> HeartData:
        if self.default_template not in self.feedback_templates:
            raise ValueError(f"default_template {self.default_template!r} is not among feedback_templates")
        unfilled = [name for name, text in self.feedback_templates.items() if PLACEHOLDER not in text]
        if unfilled:
            raise ValueError(f"feedback template {unfilled[0]!r} lacks {PLACEHOLDER}")
        return self


class HeartFields(Strict):
    emotion: str
    asserts_error: bool  # the phrase says or implies the answer is wrong: false whenever it was right


class HeartParams(Strict):
    template: str | None = None  # a name from feedback_templates, or a template text containing {phrase}


def _template(data: HeartData, chosen: str | None) -> str:
    name = chosen or data.default_template
    if name in data.feedback_templates:
        return data.feedback_templates[name]
    if PLACEHOLDER in name:
        return name
    raise UserError(
        f"unknown feedback template {name!r} (named templates: {', '.join(data.feedback_templates)}; or a text containing {PLACEHOLDER})",
        field="params.template",
    )


def _render(item: StimulusItem, family: Family, params: HeartParams, variant: str | None) -> Rendered:
    no_variant(item, variant)
    data = data_of(family, HeartData)
    template = _template(data, params.template)
    return Rendered(text=item.text or "", parts={FEEDBACK_TEMPLATE_PART: template}, params={"template": params.template or data.default_template})


def _check(item: StimulusItem, family: Family) -> None:
    data = data_of(family, HeartData)
    emotion = fields_of(item, HeartFields).emotion
    known = [e for group in data.tones.values() for e in group] + data.neutral
    if emotion not in known:
        raise UserError(f"unknown emotion {emotion!r} (emotions: {', '.join(known)})", field="emotion")


RENDERERS.add("feedback_phrase", Renderer(render=_render, params=HeartParams, item_fields=HeartFields, family_data=HeartData, needs_text=True, check=_check))


# -- the API the HEART loop calls --------------------------------------------------------------

def _data(library: StimulusLibrary | None) -> HeartData:
    return data_of((library or builtin_library()).family(FAMILY), HeartData)


def emotions(library: StimulusLibrary | None = None) -> dict[str, str]:
    """Each emotion with its tone, e.g. {"happiness": "encouraging", "anger": "critical", ...}."""
    return {emotion: tone for tone, group in _data(library).tones.items() for emotion in group}


def tones(library: StimulusLibrary | None = None) -> dict[str, list[str]]:
    return dict(_data(library).tones)


def phrases(emotion: str | None = None, tone: str | None = None, library: StimulusLibrary | None = None) -> list[StimulusItem]:
    """The phrase items of an emotion and/or a tone, ordered by id."""
    library = library or builtin_library()
    by_emotion = emotions(library)
    labels = [*by_emotion, *_data(library).neutral]
    if emotion is not None and emotion not in labels:
        raise UserError(f"unknown emotion {emotion!r} (emotions: {', '.join(labels)})", field="emotion")
    if tone is not None and tone not in by_emotion.values():
        raise UserError(f"unknown tone {tone!r} (tones: {', '.join(tones(library))})", field="tone")
    chosen = []
    for item in library.items(FAMILY):
        its_emotion = fields_of(item, HeartFields).emotion
        if (emotion is None or its_emotion == emotion) and (tone is None or by_emotion.get(its_emotion) == tone):
            chosen.append(item)
    return chosen


def neutral_phrases(library: StimulusLibrary | None = None) -> list[StimulusItem]:
    """The emotion-free phrases the neutral-feedback baseline uses, ordered by id."""
    library = library or builtin_library()
    labels = set(_data(library).neutral)
    return [item for item in library.items(FAMILY) if fields_of(item, HeartFields).emotion in labels]


def loop_prompts(library: StimulusLibrary | None = None) -> LoopPrompts:
    """The loop's prompts from the library's heart family, else the built-in ones."""
    prompts = _data(library).loop
    return prompts if prompts is not None else _data(builtin_library()).loop  # type: ignore[return-value]


def emotion_of(item: StimulusItem) -> str:
    return fields_of(item, HeartFields).emotion


def asserts_error(item: StimulusItem) -> bool:
    """Whether the phrase says or implies that the answer is wrong (its `asserts_error` tag)."""
    return fields_of(item, HeartFields).asserts_error


def feedback_templates(library: StimulusLibrary | None = None) -> dict[str, str]:
    return dict(_data(library).feedback_templates)


def default_template(library: StimulusLibrary | None = None) -> str:
    return _data(library).default_template


def template_text(template: str | None = None, library: StimulusLibrary | None = None) -> str:
    """A feedback template by name (or given as text containing {phrase}); None: the default one."""
    return _template(_data(library), template)


def feedback_stimulus(phrase_id: str, template: str | None = None, library: StimulusLibrary | None = None) -> AppliedStimulus:
    """A phrase resolved for the feedback placement (what the round's log row records)."""
    params = {} if template is None else {"template": template}
    return resolve(library or builtin_library(), phrase_id, placement="feedback", params=params)


def feedback_turn(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """The messages with the feedback user turn appended after the previous assistant answer."""
    return place_feedback(messages, stimulus)
