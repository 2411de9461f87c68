"""Model adapters behind one interface, chosen from the PROVIDERS registry (kinds.py): `sim/<name>`
in process, `local/<name>` on the embedded server, everything else via litellm."""

from __future__ import annotations

from dataclasses import dataclass, field

from .kinds import PROVIDERS, ProviderKind, kind_of
from .local_models import Notice, Server
from .spec import ModelSpec
from .base import CallOutcome, ModelRequest, ModelResponse, Provider, ProviderError, SampleKeys, TrialContext, cache_key, complete_with_retries

__all__ = [
    "CallOutcome", "ModelRequest", "ModelResponse", "Provider", "ProviderError", "SampleKeys", "TrialContext",
    "cache_key", "complete_with_retries", "ProviderPool", "build_provider", "open_provider", "PROVIDERS", "ProviderKind",
]


@dataclass
class ProviderPool:
    """The providers of one run, and the local servers it holds (released on close: the last
    run to release a server stops it)."""

    providers: dict[str, Provider] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)

    def get(self, model_id: str) -> Provider:
        return self.providers[model_id]

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        for server in self.servers:
            server.release()
        self.servers.clear()


def open_provider(spec: ModelSpec, pool: ProviderPool, log: Notice) -> Provider:
    server_base = None
    kind = kind_of(spec.id)
    if kind.serve is not None and spec.api_base is None:
        server = kind.serve(spec, log)
        pool.servers.append(server)
        server_base = server.api_base
    provider = build_provider(spec, server_base)
    pool.providers[spec.id] = provider
    return provider


def build_provider(spec: ModelSpec, server_base: str | None = None) -> Provider:
    """The provider of `spec` (`server_base`: where a started local server listens). Built without
    a server, as planning does, it still has the endpoint and cache scope a run's calls are keyed on."""
    return kind_of(spec.id).build(spec, server_base)


def open_pool(specs: list[ModelSpec], log: Notice) -> ProviderPool:
    pool = ProviderPool()
    try:
        for spec in specs:
            open_provider(spec, pool, log)
    except BaseException:
        for server in pool.servers:
            server.release()
        raise
    return pool
