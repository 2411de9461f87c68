"""Bounded calls: a provider that waits is cut off by its timeout and retried; one that answers at
once (never awaits: the zero-latency simulator) skips the timeout scope, which could never fire
in it, and keeps its retries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from workbench.providers import ModelRequest, ModelResponse, ProviderError, TrialContext, complete_with_retries
from workbench.providers import base
from workbench.providers.simulated import SimulatedProvider
from workbench.providers.spec import ModelSpec

REQUEST = ModelRequest.build("test/model", [{"role": "user", "content": "2 + 2?"}], {}, 0)
CONTEXT = TrialContext("control", ("4",), 0)


class Flaky:
    """Fails transiently `failures` times, then answers; waits `wait_s` first when it waits at all."""

    endpoint = "test"

    def __init__(self, failures: int, answers_at_once: bool, wait_s: float = 0.0) -> None:
        self.failures, self.answers_at_once, self.wait_s = failures, answers_at_once, wait_s
        self.attempts = 0

    async def complete(self, request: ModelRequest, context: TrialContext, attempt: int) -> ModelResponse:
        self.attempts += 1
        if self.wait_s:
            await asyncio.sleep(self.wait_s)
        if attempt < self.failures:
            raise ProviderError("busy", kind="server_error", transient=True)
        return ModelResponse(text="4", prompt_tokens=1, completion_tokens=1)


@pytest.fixture
def timeout_scopes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float | None]]:
    """The limits of the timeout scopes complete_with_retries enters."""
    entered: list[float | None] = []
    real = asyncio.timeout

    def counted(delay: float | None) -> contextlib.AbstractAsyncContextManager[None]:
        entered.append(delay)
        return real(delay)

    monkeypatch.setattr(base.asyncio, "timeout", counted)
    yield entered


@pytest.mark.parametrize("at_once", [True, False])
def test_retries_hold_whether_or_not_the_provider_answers_at_once(at_once: bool, timeout_scopes: list[float | None]) -> None:
    provider = Flaky(failures=2, answers_at_once=at_once)
    outcome = asyncio.run(complete_with_retries(provider, REQUEST, CONTEXT, max_retries=2, timeout_s=30.0, backoff_s=0.001))
    assert outcome.response is not None and outcome.retries == 2 and provider.attempts == 3
    assert timeout_scopes == ([] if at_once else [35.0, 35.0, 35.0])


def test_a_provider_that_waits_is_cut_off_by_its_timeout() -> None:
    # the scope allows timeout_s + 5 s of grace: 0.01 s plus 5 s, against a 30 s wait
    provider = Flaky(failures=0, answers_at_once=False, wait_s=30.0)
    outcome = asyncio.run(complete_with_retries(provider, REQUEST, CONTEXT, max_retries=0, timeout_s=0.01))
    assert outcome.response is None and outcome.error is not None and outcome.error.kind == "timeout"


def test_the_simulator_answers_at_once_only_without_latency() -> None:
    assert SimulatedProvider(ModelSpec(id="sim/a")).answers_at_once
    assert not SimulatedProvider(ModelSpec(id="sim/b", simulate={"latency_ms": 5})).answers_at_once
