"""Chat messages as immutable values.

A message's text is a template filled from named slots, so a stimulus can be attached to a
part of the prompt (the instruction, the few-shot block) and not only to the whole text. Every
change returns a new message; the logged form is the rendered `{role, content}`.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .json_layout import plain_json


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    template: str = "{text}"
    slots: tuple[tuple[str, str], ...] = field(default=())
    # The rendered text, once: a trial's request, its cache key and its rows each read it.
    content: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content", self.template.format_map(dict(self.slots)))

    @classmethod
    def text(cls, role: str, content: str) -> Message:
        return cls(role=role, template="{text}", slots=(("text", content),))

    def slot(self, name: str) -> str | None:
        """The slot's text, or None where the template has no place for it."""
        if name not in template_fields(self.template):
            return None
        for key, value in reversed(self.slots):  # the last one counts, as in rendering
            if key == name:
                return value
        return None

    def with_slot(self, name: str, value: str) -> Message:
        """A copy with slot `name` set to `value` (the slot must already be in the template)."""
        if self.slot(name) is None:
            raise KeyError(f"message has no slot {name!r}")
        return Message(self.role, self.template, tuple([(k, value if k == name else v) for k, v in self.slots]))

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


Messages = tuple[Message, ...]


@functools.cache
def template_fields(template: str) -> frozenset[str]:
    """The names a format template fills ("Instruction: {instruction}" -> {"instruction"})."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def to_dicts(messages: Iterable[Message]) -> list[dict[str, str]]:
    return [m.to_dict() for m in messages]


def to_pairs(messages: Iterable[Message]) -> tuple[tuple[str, str], ...]:
    """(role, content) of each message, as a request carries them."""
    return tuple((m.role, m.content) for m in messages)


@functools.lru_cache(maxsize=1024)
def pairs_json(pairs: tuple[tuple[str, str], ...]) -> str:
    """Messages as the log stores them (`to_dicts`, as JSON). Cached: a trial's row and its calls'
    rows log the same messages, and JSON was a tenth of the runner's time per trial."""
    return plain_json([{"role": role, "content": content} for role, content in pairs])


def last_index(messages: Sequence[Message], role: str) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == role:
            return index
    return None


def replace_at(messages: Sequence[Message], index: int, message: Message) -> Messages:
    return (*messages[:index], message, *messages[index + 1 :])
