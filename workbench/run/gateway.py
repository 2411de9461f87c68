"""The gateway: a run's one way to its models (the runner's, the in-process simulation's and the
test helpers' alike). It looks a request up in the cache, calls the model with bounded retries
(waiting for another call that is fetching the same key meanwhile), and records each call, which
it lays out as the `calls` rows of the log.

`GatewaySettings` is everything a gateway needs besides live connections (the models, their
retries and timeouts, the judge, whether to use the cache): it pickles, so a worker process can
open a gateway of its own and execute trials there as the local runner does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.calls import Generate, Generation
from ..core.clock import utc_now_us
from ..core.json_layout import sorted_json
from ..core.messages import Messages, pairs_json, to_pairs
from ..core.seeds import repeat_seed
from ..providers.local_models import Notice
from ..scoring import gold
from ..providers import CallOutcome, ModelRequest, ModelResponse, Provider, ProviderError, ProviderPool, SampleKeys, TrialContext, complete_with_retries, open_pool
from ..providers.spec import ModelSpec
from ..solvers.base import Trial
from .cache import ResponseCache

DEFAULT_BACKOFF_S = 0.5


def request_params(model: ModelSpec, trial: Trial) -> dict[str, Any]:
    """The parameters a trial's calls to `model` send: the model's params and a seed, the trial's
    (new for each repeat) unless the params set one (then that seed, made new for each repeat)."""
    own = "seed" in model.params
    return {**model.params, "seed": repeat_seed(model.params["seed"], trial.repeat) if own else trial.seed}


def params_json(params: tuple[tuple[str, Any], ...]) -> str:
    """Sampling parameters as the log stores them, laid out once for a trial's row and its calls'
    rows (they send the same ones); parameters with unhashable values (a list of stop strings) each time.
    Cached by value and type: 1, 1.0 and True are equal keys but three layouts."""
    try:
        return _params_json(params, tuple(type(value) for _, value in params))
    except TypeError:
        return sorted_json(dict(params))


@functools.lru_cache(maxsize=256)
def _params_json(params: tuple[tuple[str, Any], ...], _types: tuple[type, ...]) -> str:
    return sorted_json(dict(params))


def call_for(trial: Trial, model: ModelSpec, messages: Messages, purpose: str, index: int, sim_targets: tuple[str, ...] | None = None) -> tuple[ModelRequest, TrialContext]:
    """The request a trial's call sends (seeded per trial) and what its provider may know of it."""
    params = tuple(sorted(request_params(model, trial).items()))
    request = ModelRequest(model=model.id, messages=to_pairs(messages), params=params, repeat=trial.repeat, purpose=purpose)
    targets = trial.item.targets if sim_targets is None else sim_targets  # what a simulated model may plant
    return request, TrialContext(condition=trial.condition, targets=targets, seed=trial.seed, call_index=index, choices=trial.item.choices, trial_attempt=trial.attempt)


@dataclass(frozen=True)
class GatewaySettings:
    """A gateway without its connections: picklable, opened anew in each process."""

    models: tuple[ModelSpec, ...]  # every model a trial may call (the judge among them)
    judge: ModelSpec | None = None  # the study's judge, which final scoring calls
    use_cache: bool = True
    timeouts: bool = True  # False: a call waits as long as it takes (in-process models)
    backoff_s: float = DEFAULT_BACKOFF_S  # before the first retry; doubles for each next one

    async def open(self, say: Notice | None = None, cache: ResponseCache | None = None) -> Gateway:
        """A gateway with providers (starting local servers as needed); close it when done."""
        pool = await asyncio.to_thread(open_pool, list(self.models), say or (lambda _: None))
        return Gateway(self, pool, cache)


@dataclass
class Call:
    """One call as the gateway made it; `row` lays it out as the log's `calls` row."""

    index: int
    purpose: str
    model: str
    endpoint: str
    request: ModelRequest
    scope: str  # the provider's cache scope for it
    key: str | None  # None until laid out when the cache is off (TrialCalls.rows)
    response: ModelResponse | None
    error: ProviderError | None
    retries: int
    cached: bool
    started_at: int  # microseconds since the epoch (core.clock)
    finished_at: int

    def row(self, trial: Trial) -> dict[str, Any]:
        response, error = self.response, self.error
        return {
            "call_id": f"{trial.trial_id}:{self.index}",
            "trial_id": trial.trial_id,
            "attempt": trial.attempt,
            "run_id": trial.run_id,
            "call_index": self.index,
            "purpose": self.purpose,
            "model": self.model,
            "endpoint": self.endpoint,
            "params_json": params_json(self.request.params),
            "repeat": trial.repeat,
            "cache_key": self.key,
            "messages_json": pairs_json(self.request.messages),
            "response_text": response.text if response else None,
            "finish_reason": response.finish_reason if response else None,
            "prompt_tokens": response.prompt_tokens if response else 0,
            "completion_tokens": response.completion_tokens if response else 0,
            "cost": 0.0 if self.cached or response is None else response.cost,
            "latency_s": response.latency_s if response else None,
            "cached": self.cached,
            "retries": self.retries,
            "error": str(error) if error else None,
            "error_kind": error.kind if error else None,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class Gateway:
    """Cached, retried calls to the models of `settings` through `providers`; counts what it did."""

    def __init__(self, settings: GatewaySettings, providers: ProviderPool | Mapping[str, Provider], cache: ResponseCache | None = None) -> None:
        self.settings = settings
        self.pool = providers if isinstance(providers, ProviderPool) else ProviderPool(dict(providers))
        self.cache = cache if cache is not None else ResponseCache()
        self.model_calls = 0  # calls sent to a model (each with its retries)
        self.cache_hits = 0  # calls answered from the cache

    @property
    def judge(self) -> ModelSpec | None:
        return self.settings.judge

    def provider(self, model_id: str) -> Provider:
        return self.pool.get(model_id)

    async def call(self, model: ModelSpec, request: ModelRequest, context: TrialContext, key: str | None = None) -> CallOutcome:
        """The answer to `request`: the cache's for `key` (when the cache is on), else the model's
        with at most `model.max_retries` retries; a fresh answer goes into the cache."""
        use_cache = self.settings.use_cache and key is not None
        cached = None
        if use_cache:  # a wait (a coroutine) only while the store is asked, or another call fetches this key
            cached = self.cache.answer(key)
            if cached is None and self.cache.stored(key):
                cached = await self.cache.load(key)
            if cached is None and self.cache.being_fetched(key):
                cached = await self.cache.get(key)
        if cached is not None:
            self.cache_hits += 1
            return CallOutcome(cached, None, 0, cached=True)
        self.model_calls += 1
        timeout_s = model.timeout_s if self.settings.timeouts else None
        provider = self.provider(model.id)
        # Others wanting this key meanwhile wait for this call (with the cache on).
        fetching = self.cache.start_fetch(key) if use_cache else None
        try:
            # A simulated model plants its effects against the gold; the solver is suspended meanwhile.
            with gold.access("provider"):
                outcome = await complete_with_retries(provider, request, context, max_retries=model.max_retries, timeout_s=timeout_s, backoff_s=self.settings.backoff_s)
            if outcome.response is not None and use_cache:
                self.cache.put(key, outcome.response)
        finally:
            if fetching is not None:
                self.cache.end_fetch(key, fetching)
        return outcome

    def for_trial(self, trial: Trial) -> TrialCalls:
        return TrialCalls(self, trial)

    async def close(self) -> None:
        await self.pool.close()


class TrialCalls:
    """One trial's way through the gateway: a `Generate` for each model it calls (its own, the
    judge), and the calls made so far in call-index order. A plain class: one per trial."""

    __slots__ = ("calls", "gateway", "keys", "trial")

    def __init__(self, gateway: Gateway, trial: Trial) -> None:
        self.gateway = gateway
        self.trial = trial
        self.calls: list[Call] = []
        self.keys = SampleKeys()  # a request sent again in the trial is a new sample

    def generate_for(self, model: ModelSpec) -> Generate:
        trial, gateway = self.trial, self.gateway
        provider = gateway.provider(model.id)

        async def generate(messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Generation:
            index = len(self.calls)
            request, context = call_for(trial, model, messages, purpose, index, sim_targets)
            scope = provider.cache_scope(context)
            # Keyed now only for the cache; else when laid out, in the same order (calls are sequential).
            key = self.keys.key(request, provider.endpoint, scope) if gateway.settings.use_cache else None
            started_at = utc_now_us()
            result = await gateway.call(model, request, context, key)
            self.calls.append(Call(index, purpose, model.id, provider.endpoint, request, scope, key, result.response, result.error, result.retries, result.cached, started_at, utc_now_us()))
            error = result.error
            return Generation(text=result.response.text if result.response else None, error=f"{error.kind}: {error}" if error else None, call_index=index)

        return generate

    def rows(self) -> list[dict[str, Any]]:
        """The `calls` rows, each with its cache key (logged with the cache off too)."""
        for call in self.calls:
            if call.key is None:
                call.key = self.keys.key(call.request, call.endpoint, call.scope)
        return [call.row(self.trial) for call in self.calls]
