"""Feedback kinds: what fills the phrase slot of a round's feedback turn. A registry, so the
baselines run the very same loop as HEART and differ only here:

- `emotional` (HEART): a phrase of the emotion the schedule picks;
- `neutral`: an emotion-free phrase (workbench-authored) in the same place;
- `self_refine`: no phrase at all; the model refines on the bare feedback template.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ...core.errors import UserError
from ...core.registry import Registry
from ...stimuli import StimulusItem, StimulusLibrary, feedback_phrases
from .bank import PhraseBank
from .schedules import Schedule


@dataclass(frozen=True)
class Turn:
    emotion: str | None = None
    tone: str | None = None
    phrase_id: str | None = None


Pool = Callable[[Schedule | None, StimulusLibrary], list[StimulusItem]]
"""(schedule, library) -> the phrases a condition carries (checked when the study loads)."""
TurnFn = Callable[[int, random.Random, PhraseBank, Schedule | None, set[str]], Turn]
"""(round, seeded generator, bank, schedule, phrases used so far) -> the round's pick."""


@dataclass(frozen=True)
class FeedbackKind:
    pool: Pool
    turn: TurnFn
    takes_schedule: bool = False
    description: str = ""


FEEDBACK: Registry[FeedbackKind] = Registry("feedback kind")


def _emotional_pool(schedule: Schedule | None, library: StimulusLibrary) -> list[StimulusItem]:
    assert schedule is not None
    by_emotion = feedback_phrases.emotions(library)
    chosen = schedule.candidates(feedback_phrases.tones(library))
    unknown = [e for e in chosen if e not in by_emotion]
    if unknown:
        neutral = {feedback_phrases.emotion_of(i) for i in feedback_phrases.neutral_phrases(library)}
        hint = "; emotion-free phrases belong to `feedback: neutral`" if unknown[0] in neutral else ""
        raise UserError(f"unknown emotion {unknown[0]!r} (emotions: {', '.join(by_emotion)}){hint}", field=f"schedule.{schedule.emotion_field}")
    items = {i.id: i for e in chosen for i in feedback_phrases.phrases(e, library=library)}
    # phrase ids the schedule names were checked against the family when it was classified (plan.prepare)
    items.update((phrase_id, library.get(phrase_id)) for phrase_id in schedule.phrase_ids())
    return list(items.values())


def _emotional_turn(round: int, rng: random.Random, bank: PhraseBank, schedule: Schedule | None, used: set[str]) -> Turn:
    assert schedule is not None
    pick = schedule.pick(round, rng, bank)
    phrase = pick.phrase_id or bank.draw(pick.emotion, rng, used)
    used.add(phrase)
    return Turn(pick.emotion, bank.tones.get(pick.emotion), phrase)


def _neutral_pool(schedule: Schedule | None, library: StimulusLibrary) -> list[StimulusItem]:
    items = feedback_phrases.neutral_phrases(library)
    if not items:
        raise UserError("the heart family has no neutral phrases (its `data.neutral` names their emotion label)", field="feedback")
    return items


def _neutral_turn(round: int, rng: random.Random, bank: PhraseBank, schedule: Schedule | None, used: set[str]) -> Turn:
    label = rng.choice(bank.emotions())
    return Turn(label, None, bank.draw(label, rng, used))


FEEDBACK.add("emotional", FeedbackKind(_emotional_pool, _emotional_turn, takes_schedule=True, description="HEART: a phrase of the scheduled emotion"))
FEEDBACK.add("neutral", FeedbackKind(_neutral_pool, _neutral_turn, description="an emotion-free phrase in the same place"))
FEEDBACK.add("self_refine", FeedbackKind(lambda schedule, library: [], lambda *_: Turn(), description="no phrase: the bare feedback template"))
