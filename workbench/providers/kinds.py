"""The registry of providers: which adapter serves a model id, chosen by data, not by if/else.

A provider kind claims the ids that start with `<name>/` (and that its `claims` accepts); an id
no registered kind claims goes to `litellm`, which routes provider/model ids itself (openai/...,
anthropic/...). A plugin adds a kind with `PROVIDERS.add("mine", ProviderKind(build=...))`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.registry import Registry
from ..plugins import load_builtins

if TYPE_CHECKING:
    from .base import Provider
    from .local_models import Notice, Server
    from .spec import ModelSpec

DEFAULT_PROVIDER = "litellm"


def _any_id(model_id: str) -> bool:
    return True


@dataclass(frozen=True)
class ProviderKind:
    """`build(spec, server_base)`: the provider of a model (`server_base`: where a server this kind
    started listens; None when planning, or when the study gives `api_base`). `serve(spec, log)`:
    start what serves the model, when the study gives no `api_base` (a local model server)."""

    build: Callable[[ModelSpec, str | None], Provider]
    serve: Callable[[ModelSpec, Notice], Server] | None = None
    claims: Callable[[str], bool] = _any_id


PROVIDERS: Registry[ProviderKind] = Registry("provider")


def kind_of(model_id: str) -> ProviderKind:
    load_builtins()  # the built-in kinds and those of installed plugins
    prefix = model_id.split("/", 1)[0] if "/" in model_id else None
    if prefix is not None and prefix in PROVIDERS and PROVIDERS.get(prefix).claims(model_id):
        return PROVIDERS.get(prefix)
    return PROVIDERS.get(DEFAULT_PROVIDER)
