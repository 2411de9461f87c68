"""The model-call contract: what a solver or a judge scorer awaits from `generate`, the
gateway, the only way to the model (every call cached, retried and logged under its trial)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from .frozen import direct_init
from .messages import Messages


@direct_init
@dataclass(frozen=True)
class Generation:
    text: str | None  # None when the call failed after its retries
    error: str | None = None
    call_index: int | None = None  # the call's index under the trial (its calls row is `<trial_id>:<index>`)


JUDGE_PURPOSE = "verify"  # a call asking the model to judge the answer before it (purpose `verify:<round>`)


class Generate(Protocol):
    """`sim_targets`: what a simulated model may plant for this call (a judge's expected verdict);
    real models never see it. Default: the trial's gold targets."""

    def __call__(self, messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Awaitable[Generation]: ...
