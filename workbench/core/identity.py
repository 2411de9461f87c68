"""Values derived once per object that many trials share (a task, an example, a condition's
stimuli), looked up by the object's identity: hashing such objects by value cost more than the
work saved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class ByIdentity(Generic[V]):
    """`get(obj, tag, make)`: `make(obj)`, computed once per object and tag. An entry holds its
    object, so the id cannot pass to another object meanwhile; past `limit` entries it starts afresh."""

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int) -> None:
        self._entries: dict[tuple[int, str], tuple[Any, V]] = {}
        self.limit = limit

    def get(self, obj: Any, tag: str, make: Callable[[Any], V]) -> V:
        key = (id(obj), tag)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        if len(self._entries) >= self.limit:
            self._entries.clear()
        value = make(obj)
        self._entries[key] = (obj, value)
        return value
