"""What a study says about a model: its id, parameters, endpoint and retries, and the planted
behaviour of a simulated one. Credentials come from the environment, never from the file."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, field_validator, model_validator

from ..core.schema import Name, Strict

# A parameter or URL query name that carries a credential, at any depth (extra_headers.Authorization,
# extra_body.api_key, access_token); whole name parts only, so max_tokens is not one.
_SECRET_NAME = re.compile(r"(^|[_\-])(api[_\-]?key|key|secret|token|password|authorization|credentials?)($|[_\-])", re.IGNORECASE)


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """The paths of credential-named keys in nested params."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    found: list[str] = []
    for key, inner in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        found += [where] if isinstance(key, str) and _SECRET_NAME.search(key) else _secret_paths(inner, where)
    return found


# How a simulated model words its planted answer (workbench/providers/simulated.py), per condition:
# lets a study plant an effect of format alone (an answer the strict extractor misreads, or none).
AnswerFormat = Literal["plain", "sentence", "confidence", "markdown", "confidence_only", "empty"]


class SimulatorSpec(Strict):
    """Planted behaviour of a `sim/<name>` model: accuracy per condition, latency, error rate,
    and the wording of its answers per condition."""

    accuracy: dict[str, float] = Field(default_factory=dict)
    answer_format: dict[str, AnswerFormat] = Field(default_factory=dict)
    default_answer_format: AnswerFormat = "plain"
    default_accuracy: float = Field(0.5, ge=0.0, le=1.0)
    latency_ms: float = Field(0.0, ge=0.0)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    judge_accuracy: float = Field(1.0, ge=0.0, le=1.0)  # how often it judges an answer right when asked to verify
    # Share of examples whose outcome in every condition follows one shared difficulty draw, so
    # conditions disagree only where their accuracies differ: plants a discordance below the
    # independent conditions' (0, the default).
    shared_difficulty: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("accuracy")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for name, p in value.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"accuracy of {name!r} must lie in [0, 1], got {p}")
        return value


class ModelSpec(Strict):
    id: Name
    params: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = None
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    simulate: SimulatorSpec | None = None

    @field_validator("params")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        leaked = _secret_paths(value)
        if leaked:
            raise ValueError(f"{', '.join(leaked)} must come from the environment, not the study file")
        return value

    @field_validator("api_base")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        url = urlsplit(value or "")
        if url.username or url.password or any(_SECRET_NAME.search(name) for name, _ in parse_qsl(url.query)):
            raise ValueError("credentials in the URL must come from the environment, not the study file")
        return value

    @model_validator(mode="after")
    def _simulator_only_for_sim(self) -> ModelSpec:
        if self.simulate is not None and not self.id.startswith("sim/"):
            raise ValueError("`simulate` is allowed only for sim/<name> models")
        return self
