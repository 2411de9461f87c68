"""Schedules: which emotion the feedback of each round carries. A registry, so a new schedule (the
Optuna-chosen one of the search, say) is one registered class, not a branch in the loop.

A schedule is a pydantic model of its parameters with `name` as its registry key. It names the
emotions it may pick (so the condition carries their phrases), checks itself against the phrase
bank when the study loads, and picks round by round from a seeded generator: the picks depend
only on the trial's seed and the round, so a loop that stops early saw a prefix of the picks a
longer one sees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from collections.abc import Collection
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

from ...core.errors import UserError, validation_error
from ...core.registry import Registry
from ...stimuli.renderers import Strict
from .bank import PhraseBank


@dataclass(frozen=True)
class Pick:
    emotion: str
    phrase_id: str | None = None  # a schedule may name the phrase itself; else one is drawn


class Schedule(Strict):

    name: str
    emotion_field: ClassVar[str] = "emotion"  # the parameter an error about its emotions names

    def candidates(self, tones: dict[str, list[str]]) -> list[str]:
        """The emotions this schedule may pick, given the family's tones (tone -> emotions)."""
        raise NotImplementedError

    def phrase_ids(self) -> list[str]:
        """Phrases the schedule names directly (carried by the condition besides its emotions' phrases)."""
        return []

    def classify(self, emotions: Collection[str], phrase_ids: Collection[str]) -> Schedule:
        """The schedule with its names read against the heart family's emotions and phrase ids (those of
        its emotions); the plan records the result. Most schedules name emotions only and stay as they are."""
        return self

    def check(self, bank: PhraseBank) -> None:
        """Raise UserError(field=...) when the bank cannot serve the schedule."""
        for emotion in self.candidates({}):
            if not bank.phrases.get(emotion):
                raise UserError(f"no phrases for emotion {emotion!r} (emotions: {', '.join(bank.emotions())})", field=f"schedule.{self.emotion_field}")

    def pick(self, round: int, rng: random.Random, bank: PhraseBank) -> Pick:
        raise NotImplementedError


SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


@SCHEDULES.register("static")
class Static(Schedule):
    """One emotion in every round (the paper's ablation baseline for dynamic alternation)."""

    name: Literal["static"] = "static"
    emotion: str

    def candidates(self, tones: dict[str, list[str]]) -> list[str]:
        return [self.emotion]

    def pick(self, round: int, rng: random.Random, bank: PhraseBank) -> Pick:
        return Pick(self.emotion)


@SCHEDULES.register("alternating")
class Alternating(Schedule):
    """Tones in turn (critical, encouraging, critical, ...); a seeded emotion of the round's tone."""

    name: Literal["alternating"] = "alternating"
    tones: list[str] = Field(default_factory=lambda: ["critical", "encouraging"], min_length=1)

    def candidates(self, tones: dict[str, list[str]]) -> list[str]:
        unknown = [t for t in self.tones if t not in tones]
        if unknown:
            raise UserError(f"unknown tone {unknown[0]!r} (tones: {', '.join(tones)})", field="schedule.tones")
        return [e for tone in dict.fromkeys(self.tones) for e in tones[tone]]

    def check(self, bank: PhraseBank) -> None:
        known = sorted({t for t in bank.tones.values() if t})
        for tone in self.tones:
            if not bank.emotions(tone):
                raise UserError(f"no phrases of tone {tone!r} (tones: {', '.join(known)})", field="schedule.tones")

    def pick(self, round: int, rng: random.Random, bank: PhraseBank) -> Pick:
        return Pick(rng.choice(bank.emotions(self.tones[(round - 1) % len(self.tones)])))


@SCHEDULES.register("random")
class Uniform(Schedule):
    """A seeded uniform draw of the emotion each round (from `emotions`, default all of them)."""

    name: Literal["random"] = "random"
    emotion_field: ClassVar[str] = "emotions"
    emotions: list[str] | None = Field(None, min_length=1)

    def candidates(self, tones: dict[str, list[str]]) -> list[str]:
        return list(self.emotions) if self.emotions is not None else [e for group in tones.values() for e in group]

    def pick(self, round: int, rng: random.Random, bank: PhraseBank) -> Pick:
        return Pick(rng.choice(sorted(self.emotions) if self.emotions is not None else bank.emotions()))


class EmotionStep(Strict):
    emotion: str


class PhraseStep(Strict):
    phrase: str


@SCHEDULES.register("sequence")
class Sequence(Schedule):
    """A fixed sequence of emotions or phrase ids, one per round, repeated if shorter than the rounds.
    A bare step is classified against the phrase bank when the study loads (`classify`), and the
    plan records each step as `{emotion: ...}` or `{phrase: ...}`; a study may write that form too,
    for a phrase id that is also an emotion's name."""

    name: Literal["sequence"] = "sequence"
    emotion_field: ClassVar[str] = "steps"
    steps: list[EmotionStep | PhraseStep | str] = Field(min_length=1)

    def classify(self, emotions: Collection[str], phrase_ids: Collection[str]) -> Sequence:
        allowed = f"emotions: {', '.join(emotions)}; phrase ids: {', '.join(phrase_ids)}"
        return self.model_copy(update={"steps": [_step(step, emotions, phrase_ids, allowed) for step in self.steps]})

    def candidates(self, tones: dict[str, list[str]]) -> list[str]:
        return list(dict.fromkeys(s.emotion for s in self._classified() if isinstance(s, EmotionStep)))

    def phrase_ids(self) -> list[str]:
        return list(dict.fromkeys(s.phrase for s in self._classified() if isinstance(s, PhraseStep)))

    def pick(self, round: int, rng: random.Random, bank: PhraseBank) -> Pick:
        step = self._classified()[(round - 1) % len(self.steps)]
        return Pick(step.emotion) if isinstance(step, EmotionStep) else Pick(bank.emotion_of(step.phrase), step.phrase)

    def _classified(self) -> list[EmotionStep | PhraseStep]:
        if any(isinstance(s, str) for s in self.steps):
            raise RuntimeError("a sequence schedule is classified (Schedule.classify) before it is used")
        return self.steps  # type: ignore[return-value]


def _step(step: EmotionStep | PhraseStep | str, emotions: Collection[str], phrase_ids: Collection[str], allowed: str) -> EmotionStep | PhraseStep:
    """One step as an emotion or a phrase id of the bank; unknown or ambiguous steps fail."""
    if isinstance(step, EmotionStep) and step.emotion in emotions or isinstance(step, PhraseStep) and step.phrase in phrase_ids:
        return step
    if isinstance(step, str) and (step in emotions) != (step in phrase_ids):
        return EmotionStep(emotion=step) if step in emotions else PhraseStep(phrase=step)
    if isinstance(step, str) and step in emotions:
        raise UserError(f"{step!r} is both an emotion and a phrase id; write {{emotion: {step}}} or {{phrase: {step}}}", field="schedule.steps")
    named = step if isinstance(step, str) else getattr(step, "emotion", None) or getattr(step, "phrase")
    raise UserError(f"{named!r} is not a phrase of an emotion in the heart family nor an emotion ({allowed})", field="schedule.steps")


DEFAULT_SCHEDULE = "alternating"
# A missing setting of a schedule or of solver_params lists the settings there are.
PARAMETER_WORDING = {"missing": "is required (parameters: {allowed})"}


def parse_schedule(raw: Any) -> Schedule:
    """A schedule from a study file: a name (`alternating`) or a mapping with `name` and its parameters."""
    spec = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"a schedule is a name or a mapping with `name` (schedules: {', '.join(SCHEDULES.names())})", field="schedule")
    if spec["name"] not in SCHEDULES:
        raise UserError(SCHEDULES.unknown_message(spec["name"]), field="schedule.name")
    model = SCHEDULES.get(spec["name"])
    try:
        return model.model_validate(spec)
    except ValidationError as exc:
        raise validation_error(exc, field="schedule", model=model, wording=PARAMETER_WORDING) from None


def dump_schedule(schedule: Schedule) -> dict[str, Any]:
    return schedule.model_dump(mode="json")
