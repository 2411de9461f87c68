"""The phrases a HEART condition carries, by emotion, and the seeded draw of one for a round."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PhraseBank:
    phrases: Mapping[str, tuple[str, ...]]  # emotion -> phrase ids, ordered by id
    tones: Mapping[str, str | None]  # emotion -> tone (None for the emotion-free neutral labels)

    @classmethod
    def of(cls, phrases: Mapping[str, Iterable[str]], tones: Mapping[str, str | None]) -> PhraseBank:
        return cls({e: tuple(sorted(ids)) for e, ids in phrases.items()}, dict(tones))

    def emotions(self, tone: str | None = None) -> list[str]:
        """The emotions (of a tone) that have phrases, sorted, so draws do not depend on dict order."""
        return sorted(e for e, ids in self.phrases.items() if ids and (tone is None or self.tones.get(e) == tone))

    def emotion_of(self, phrase_id: str) -> str:
        for emotion, ids in self.phrases.items():
            if phrase_id in ids:
                return emotion
        raise KeyError(phrase_id)

    def draw(self, emotion: str, rng: random.Random, used: set[str]) -> str:
        """A phrase of `emotion` not yet used in this trial (all again once each has been used)."""
        ids = self.phrases[emotion]
        fresh = [p for p in ids if p not in used] or list(ids)
        choice = rng.choice(fresh)
        used.add(choice)
        return choice
