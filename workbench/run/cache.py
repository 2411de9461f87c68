"""The run's answers by cache key: one key, one answer, live and replayed alike.

A key keeps the first answer it got: read from the log, the first logged (the runner loads the
log's calls in the order they finished); live, the first to land. A call whose key is being fetched
by another trial at that moment waits for that call instead of sampling beside it, so trials that
send the very same request at once (HEART's shared round 0, conditions with the same prompt) get
one answer, the one a `--fresh` replay of the log serves them."""

from __future__ import annotations

import asyncio

from ..providers import ModelResponse


class _Fetch:
    """A key being fetched; its event is made only when another call waits for it (most never do)."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event: asyncio.Event | None = None


class ResponseCache:
    def __init__(self) -> None:
        self._answers: dict[str, ModelResponse] = {}
        self._fetching: dict[str, _Fetch] = {}

    def put(self, key: str, response: ModelResponse) -> None:
        """Remember `response` for `key` unless the key has an answer already (the first one stays)."""
        self._answers.setdefault(key, response)

    def answer(self, key: str) -> ModelResponse | None:
        """The key's answer if it has one now, without waiting (most lookups need no wait)."""
        return self._answers.get(key)

    def being_fetched(self, key: str) -> bool:
        """Whether another call is fetching `key` now (then `get` waits for it)."""
        return key in self._fetching

    async def get(self, key: str) -> ModelResponse | None:
        """The key's answer, after waiting for a call that is fetching it; None: the caller fetches it."""
        while key not in self._answers and (fetch := self._fetching.get(key)) is not None:
            if fetch.event is None:
                fetch.event = asyncio.Event()
            await fetch.event.wait()
        return self._answers.get(key)

    def start_fetch(self, key: str) -> _Fetch:
        """Mark `key` as being fetched by the caller, who calls `end_fetch` when done (in a
        `finally`): callers of `get` for it wait until then (if it failed, one of them fetches the
        key in turn). Plain calls, not an async context manager: the gateway makes one per call."""
        return self._fetching.setdefault(key, _Fetch())

    def end_fetch(self, key: str, fetch: _Fetch) -> None:
        if self._fetching.get(key) is fetch:
            del self._fetching[key]
        if fetch.event is not None:
            fetch.event.set()
