"""The run's answers by cache key: one key, one answer, live and replayed alike.

A key keeps the first answer it got: read from the log, the first logged (the runner loads the
log's calls in the order they finished); live, the first to land. A call whose key is being fetched
by another trial at that moment waits for that call instead of sampling beside it, so trials that
send the very same request at once (HEART's shared round 0, conditions with the same prompt) get
one answer, the one a `--fresh` replay of the log serves them."""

from __future__ import annotations

import asyncio

from ..providers import ModelResponse


class ResponseCache:
    def __init__(self) -> None:
        self._answers: dict[str, ModelResponse] = {}
        self._fetching: dict[str, asyncio.Event] = {}

    def put(self, key: str, response: ModelResponse) -> None:
        """Remember `response` for `key` unless the key has an answer already (the first one stays)."""
        self._answers.setdefault(key, response)

    async def get(self, key: str) -> ModelResponse | None:
        """The key's answer, after waiting for a call that is fetching it; None: the caller fetches it."""
        while key not in self._answers and key in self._fetching:
            await self._fetching[key].wait()
        return self._answers.get(key)

    def fetching(self, key: str) -> _Fetching:
        """Held while a call fetches `key` (`async with`): callers of `get` for it wait until it is
        done (if it failed, one of them fetches the key in turn)."""
        return _Fetching(self._fetching, key)


class _Fetching:
    """`ResponseCache.fetching`: a plain class, not @asynccontextmanager, as it is entered once per call."""

    __slots__ = ("_fetching", "_key", "_done")

    def __init__(self, fetching: dict[str, asyncio.Event], key: str) -> None:
        self._fetching, self._key = fetching, key

    async def __aenter__(self) -> None:
        self._done = self._fetching.setdefault(self._key, asyncio.Event())

    async def __aexit__(self, *_: object) -> None:
        if self._fetching.get(self._key) is self._done:
            del self._fetching[self._key]
        self._done.set()
