"""What a study says about a model: its id, parameters, endpoint and retries, and the planted
behaviour of a simulated one. Credentials come from the environment, never from the file: the
study loader refuses params or an api_base carrying one (workbench/providers/credentials.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..core.schema import Name, Strict

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

    @model_validator(mode="after")
    def _simulator_only_for_sim(self) -> ModelSpec:
        if self.simulate is not None and not self.id.startswith("sim/"):
            raise ValueError("`simulate` is allowed only for sim/<name> models")
        return self
