"""The base of every model read from a file: unknown keys are errors, values are frozen. And the
checked kinds of value that many of them hold."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from .text import check_name

# The log stores seeds as BIGINT: a seed outside the signed 64-bit range could not be written.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _seed(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not SEED_MIN <= value <= SEED_MAX:
        raise ValueError(f"must be a whole number from {SEED_MIN} to {SEED_MAX} (a signed 64-bit integer, as the log stores it); got {value}")
    return value


Name = Annotated[str, AfterValidator(check_name)]  # a study, model, task or stimulus name: printable, at most NAME_MAX characters
Seed = Annotated[int, BeforeValidator(_seed)]  # a seed the log can store
