"""Every real model goes through litellm: remote providers by their model string, and the
embedded llama.cpp server as an OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

from .base import TRANSIENT_KINDS, ModelRequest, ModelResponse, ProviderError, TrialContext
from .kinds import DEFAULT_PROVIDER, PROVIDERS, ProviderKind
from .local_models import LOCAL_MODELS, Notice, Server, ensure_server
from .spec import ModelSpec

LOCAL_API_KEY = "sk-local-no-key"

# litellm exception class name -> kind (transient: one of TRANSIENT_KINDS)
_ERROR_KINDS: dict[str, str] = {
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "RateLimitError": "rate_limit",
    "APIConnectionError": "connection",
    "ServiceUnavailableError": "unavailable",
    "InternalServerError": "server_error",
    "BadGatewayError": "server_error",
    "ContextWindowExceededError": "context_window",
    "ContentPolicyViolationError": "content_policy",
    "BadRequestError": "bad_request",
    "UnprocessableEntityError": "bad_request",
    "AuthenticationError": "authentication",
    "PermissionDeniedError": "permission",
    "NotFoundError": "not_found",
}


# What litellm wraps into another class: a refused or dropped connection reaches us as its
# InternalServerError, whose causes (openai's, httpx's) say what happened. Exact class names.
_CAUSE_KINDS: dict[str, str] = {"APIConnectionError": "connection", "ConnectError": "connection", "APITimeoutError": "timeout"}


def classify(exc: Exception) -> ProviderError:
    """Map a litellm/httpx exception once, at this boundary, to a kind and retry decision."""
    kind = next((_CAUSE_KINDS[type(c).__name__] for c in _causes(exc) if type(c).__name__ in _CAUSE_KINDS), None)
    if kind is None:
        kind = next((_ERROR_KINDS[cls.__name__] for cls in type(exc).__mro__ if cls.__name__ in _ERROR_KINDS), type(exc).__name__)
    return ProviderError(str(exc), kind=kind, transient=kind in TRANSIENT_KINDS)  # one line, short, secrets masked


def _causes(exc: BaseException) -> list[BaseException]:
    """The exceptions `exc` was raised from or while handling, nearest first (each once)."""
    found: list[BaseException] = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and cause not in found:
        found.append(cause)
        cause = cause.__cause__ or cause.__context__
    return found


def _litellm():
    """litellm, imported on first use (it is slow to import) and kept quiet: it prints provider
    hints to stdout, which would corrupt `--json` output."""
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class LiteLLMProvider:
    def __init__(self, litellm_model: str, endpoint: str, api_base: str | None = None, local: bool = False, api_key: str | None = None) -> None:
        self.litellm_model = litellm_model
        self.endpoint = endpoint
        self.api_base = api_base
        self.local = local
        self._api_key = api_key  # only the local server's placeholder; real keys stay in the environment

    async def complete(self, request: ModelRequest, context: TrialContext, attempt: int) -> ModelResponse:
        litellm = _litellm()
        params: dict[str, Any] = dict(request.params)
        extra: dict[str, Any] = {}
        if self.api_base:
            extra["api_base"] = self.api_base
        if self._api_key:
            extra["api_key"] = self._api_key
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(
                model=self.litellm_model,
                messages=request.message_dicts(),
                num_retries=0,
                drop_params=True,
                **extra,
                **params,
            )
        except Exception as exc:  # noqa: BLE001 - every provider failure is classified here
            raise classify(exc) from exc
        latency = time.perf_counter() - started
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return ModelResponse(
            text=choice.message.content or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=0.0 if self.local else _cost(response),
            latency_s=latency,
            finish_reason=getattr(choice, "finish_reason", None),
        )

    def cache_scope(self, context: TrialContext) -> str:
        return ""

    async def close(self) -> None:
        return None


def _cost(response: Any) -> float:
    litellm = _litellm()
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # noqa: BLE001 - unknown prices are reported as 0, not as a failed call
        return 0.0


def _remote(spec: ModelSpec, server_base: str | None) -> LiteLLMProvider:
    return LiteLLMProvider(spec.id, endpoint=spec.api_base or "default", api_base=spec.api_base)


def _local(spec: ModelSpec, server_base: str | None) -> LiteLLMProvider:
    local = LOCAL_MODELS[spec.id]
    return LiteLLMProvider(f"openai/{local.alias}", endpoint=local.endpoint, api_base=spec.api_base or server_base, local=True, api_key=LOCAL_API_KEY)


def _serve_local(spec: ModelSpec, log: Notice) -> Server:
    return ensure_server(spec.id, log)


PROVIDERS.add(DEFAULT_PROVIDER, ProviderKind(build=_remote))
PROVIDERS.add("local", ProviderKind(build=_local, serve=_serve_local, claims=lambda model_id: model_id in LOCAL_MODELS))
