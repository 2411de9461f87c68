"""The run's answers by cache key: one key, one answer, live and replayed alike.

A key keeps the first answer it got: read from the log, the first logged (the runner loads the
log's calls in the order they finished); live, the first to land. A call whose key is being fetched
by another trial at that moment waits for that call instead of sampling beside it, so trials that
send the very same request at once (HEART's shared round 0, conditions with the same prompt) get
one answer, the one a `--fresh` replay of the log serves them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

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

    @contextlib.asynccontextmanager
    async def fetching(self, key: str) -> AsyncIterator[None]:
        """Held while a call fetches `key`: callers of `get` for it wait until it is done (if it
        failed, one of them fetches the key in turn)."""
        done = self._fetching.setdefault(key, asyncio.Event())
        try:
            yield
        finally:
            if self._fetching.get(key) is done:
                del self._fetching[key]
            done.set()
