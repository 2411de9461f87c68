"""The one model interface the runner, cache and store see, and bounded retries around it."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.frozen import direct_init
from ..core.json_layout import sorted_json
from .redact import redact

MAX_ERROR_LENGTH = 500

# The kinds of failure that may pass on their own (the server down or busy, a call cut off), as a
# run's output words them: a call retries them, and a trial that ended in one runs again when its
# run resumes. Every other kind (bad request, context too long, authentication...) is permanent.
TRANSIENT_KINDS: dict[str, str] = {
    "connection": "server unreachable",
    "timeout": "no answer in time",
    "rate_limit": "rate limited",
    "unavailable": "service unavailable",
    "server_error": "server error",
}


@direct_init
@dataclass(frozen=True)
class ModelRequest:
    model: str  # the study's model id, e.g. local/default or openai/gpt-4o-mini
    messages: tuple[tuple[str, str], ...]  # (role, content) exactly as sent
    params: tuple[tuple[str, Any], ...]  # sampling parameters, sorted
    repeat: int = 0
    purpose: str = "answer"

    @classmethod
    def build(cls, model: str, messages: list[dict[str, str]], params: dict[str, Any], repeat: int, purpose: str = "answer") -> ModelRequest:
        return cls(
            model=model,
            messages=tuple((m["role"], m["content"]) for m in messages),
            params=tuple(sorted(params.items())),
            repeat=repeat,
            purpose=purpose,
        )

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@direct_init
@dataclass(frozen=True)
class TrialContext:
    """What a simulated model may see to plant effects. Real adapters never read it."""

    condition: str
    targets: tuple[str, ...]
    seed: int
    call_index: int = 0
    choices: tuple[str, ...] = ()  # the item's options, when it has them: a planted wrong answer is one of them
    trial_attempt: int = 1  # which time the trial runs (a trial that ended in a transient error runs again on resume)


@dataclass(frozen=True)
class ModelResponse:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    finish_reason: str | None = None


class ProviderError(Exception):
    """A classified failure: transient ones are retried, permanent ones are not.

    Its message is what the log stores and the console shows, so it is made safe here, the one
    place every provider's failure passes: secrets from the environment masked, then cut short
    (in that order, so no cut leaves a key's prefix behind)."""

    def __init__(self, message: str, *, kind: str, transient: bool) -> None:
        super().__init__(redact(" ".join(message.split()))[:MAX_ERROR_LENGTH])
        self.kind = kind
        self.transient = transient


class Provider(Protocol):
    endpoint: str
    """Stable identity of what serves the model (api base, weights hash); part of the cache key.
    Optional: `answers_at_once = True` where `complete` never awaits (see answers_at_once)."""

    async def complete(self, request: ModelRequest, context: TrialContext, attempt: int) -> ModelResponse: ...

    def cache_scope(self, context: TrialContext) -> str:
        """What else the answer depends on beyond the request: "" for real models."""
        ...

    async def close(self) -> None: ...


def answers_at_once(provider: Provider) -> bool:
    """Whether the provider's `complete` returns without ever awaiting anything (an in-process
    model with no latency); providers that do not say so are assumed to wait."""
    return bool(getattr(provider, "answers_at_once", False))


def cache_key(request: ModelRequest, endpoint: str, scope: str = "", occurrence: int = 0) -> str:
    """sha256 of the full request: model, endpoint, messages, parameters and repeat index, plus
    the provider's scope where its answer depends on more than the request (the simulator), plus
    which occurrence of this very request within its trial the call is (see SampleKeys). Scope and
    occurrence enter only when set, so the first occurrence keeps the key it always had."""
    payload: dict[str, Any] = {
        "model": request.model,
        "endpoint": endpoint,
        "messages": request.messages,
        "params": request.params,
        "repeat": request.repeat,
    }
    if scope:
        payload["scope"] = scope
    if occurrence:
        payload["occurrence"] = occurrence
    return hashlib.sha256(sorted_json(payload).encode()).hexdigest()


@dataclass
class SampleKeys:
    """The cache keys of one trial's calls. A loop that sends the same request twice in a trial (an
    answer repeated word for word under `history: last`, a phrase drawn again) asks for a new
    sample, so the N-th identical request of a trial is keyed as occurrence N. Counting per
    request, not per call index, keeps the sharing across conditions: two conditions that send
    the very same request as its N-th occurrence share its answer."""

    seen: dict[str, int] = field(default_factory=dict)  # a plain dict: a Counter took 1 us more per trial

    def key(self, request: ModelRequest, endpoint: str, scope: str = "") -> str:
        first = cache_key(request, endpoint, scope)
        occurrence = self.seen.get(first, 0)
        self.seen[first] = occurrence + 1
        return cache_key(request, endpoint, scope, occurrence) if occurrence else first


@dataclass
class CallOutcome:
    """A call's answer or its error after its retries; `cached`: answered from the run's cache
    (the gateway's), with no call made."""

    response: ModelResponse | None
    error: ProviderError | None
    retries: int
    cached: bool = False


async def complete_with_retries(
    provider: Provider,
    request: ModelRequest,
    context: TrialContext,
    *,
    max_retries: int,
    timeout_s: float | None,
    backoff_s: float = 0.5,
) -> CallOutcome:
    """Call with a timeout (None: none, for in-process models); retry transient failures at most
    `max_retries` times with backoff."""
    # A provider that answers without waiting never suspends, so a timeout could never fire in it:
    # its calls skip the timer the scope would schedule and cancel (the zero-latency simulator).
    limit = None if timeout_s is None or answers_at_once(provider) else timeout_s + 5
    for attempt in range(max_retries + 1):
        try:
            if limit is None:
                response = await provider.complete(request, context, attempt)
            else:
                # asyncio.timeout rather than wait_for: the same limit without a task per call
                async with asyncio.timeout(limit):
                    response = await provider.complete(request, context, attempt)
            return CallOutcome(response=response, error=None, retries=attempt)
        except asyncio.TimeoutError:
            error = ProviderError(f"no answer within {timeout_s:.0f} s", kind="timeout", transient=True)
        except ProviderError as exc:
            error = exc
        if not error.transient or attempt == max_retries:
            return CallOutcome(response=None, error=error, retries=attempt)
        await asyncio.sleep(backoff_s * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
