"""Solvers: how a trial turns its messages into a final answer, as a program of model calls.

A solver is `async (trial, generate) -> Solution`; `generate` is the runner's only door to the
model, so every call is cached, retried and logged under the trial whatever the program does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .messages import Messages
from .registry import Registry

if TYPE_CHECKING:
    from .trials import Trial


@dataclass(frozen=True)
class Generation:
    text: str | None  # None when the call failed after its retries
    error: str | None = None


class Generate(Protocol):
    """`sim_targets`: what a simulated model may plant for this call (a judge's expected verdict);
    real models never see it. Default: the trial's gold targets."""

    def __call__(self, messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Awaitable[Generation]: ...


@dataclass(frozen=True)
class Solution:
    text: str | None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. rounds used, stopping reason


Solver = Callable[["Trial", Generate], Awaitable[Solution]]
SOLVERS: Registry[Solver] = Registry("solver")


@SOLVERS.register("single_turn")
async def single_turn(trial: Trial, generate: Generate) -> Solution:
    result = await generate(trial.messages)
    return Solution(text=result.text, error=result.error)
