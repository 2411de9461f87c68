"""Solvers: how a trial turns its messages into a final answer, as a program of model calls.

A solver is `async (trial, generate) -> Solution`; `generate` is the gateway, the only way to the
model, so every call is cached, retried and logged under the trial whatever the program does.
The trial a solver gets has its gold sealed (workbench/gold.py); a condition that consumes gold
labels gets an oracle verifier in `trial.verify` instead.

A solver registers a `SolverSetup`: if it takes parameters, it checks the condition's
`solver_params` when the study loads (errors name the field) and completes them into the frozen
plan the log records; it says whether the condition consumes gold labels, and how many model
calls one trial makes at most (what `workbench plan` counts before anything is spent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..core.calls import JUDGE_PURPOSE, Generate, Generation  # the model-call contract solvers program against
from ..core.errors import UserError
from ..core.frozen import direct_init
from ..core.identity import ByIdentity
from ..core.messages import Messages
from ..core.registry import Registry
from ..providers.spec import ModelSpec
from ..scoring import gold
from ..stimuli import AppliedStimulus, StimulusLibrary
from ..tasks import TaskItem, TaskSpec

DEFAULT_SOLVER = "single_turn"
T = TypeVar("T")


@dataclass(frozen=True)
class Trial:
    """One query of a run under one condition: what a solver gets (via `for_solver`, gold sealed)."""

    trial_id: str
    run_id: str
    condition: str
    model: ModelSpec
    task: TaskSpec
    item: TaskItem
    repeat: int
    seed: int
    stimuli: tuple[AppliedStimulus, ...]
    messages: Messages
    solver: str = DEFAULT_SOLVER
    solver_params: tuple[tuple[str, Any], ...] = ()
    consumes_gold: bool = False  # its program reads gold labels while it runs (an oracle verifier)
    verify: gold.Verifier | None = None  # set by the runner on the solver's view, only where consumes_gold
    extractor: str | None = None  # reads the answer its scorer scores (workbench.scoring.extract); None: a judge grades it
    attempt: int = 1  # which time it runs: a trial that ended in a transient error runs again when its run resumes

    def for_solver(self) -> Trial:
        """The trial as its solver sees it: the gold sealed, and an oracle verifier only where the
        condition consumes gold labels (it reads answers with the trial's extractor, as final scoring does)."""
        verify = gold.oracle(self.task, self.item, self.extractor) if self.consumes_gold else None
        return _evolved(self, item=_SEALED.get(self.item, "sealed", _sealed), verify=verify)


# An example's sealed copy, shared by its trials (conditions and repeats): immutable like the example.
_SEALED: ByIdentity[TaskItem] = ByIdentity(8192)


def _sealed(item: TaskItem) -> TaskItem:
    return _evolved(item, targets=gold.seal(item.targets))


def holding(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of a plain frozen dataclass (no __post_init__, no slots, no InitVar) whose
    instance dict is `fields` itself, without running __init__, which sets each field through
    object.__setattr__ (3.0 against 0.36 µs for a Trial's sixteen fields here). The caller gives
    every field in a dict it hands over: expand builds each trial from a dict literal, which took
    1.0 µs where passing sixteen keyword arguments took 2.6."""
    new = object.__new__(cls)
    object.__setattr__(new, "__dict__", fields)
    return new


def _evolved(obj: T, **changes: Any) -> T:
    """`dataclasses.replace` without running __init__ again (see `holding`): a copy of its
    fields with `changes`. Twice per trial, replace was most of `for_solver`'s time."""
    return holding(type(obj), {**obj.__dict__, **changes})


@dataclass(frozen=True)
class RoundRecord:
    """One round of an iterative program, as the `rounds` table logs it (the runner adds the
    tokens and latency of its calls, and the score of its answer at final scoring)."""

    round: int
    messages: Messages  # exactly what the round's answer call was sent
    text: str | None  # the raw answer
    answer: str | None = None  # the answer parsed without the gold
    call_indices: tuple[int, ...] = ()  # the answer call first, then any judging calls of the round
    emotion: str | None = None
    tone: str | None = None
    phrase_id: str | None = None
    asserts_error: bool | None = None  # whether the round's phrase says the answer is wrong (None: no phrase)
    feedback: str | None = None  # the feedback turn that opened the round
    verdict: str | None = None  # correct | incorrect | unclear, where a verifier or the model judged
    verdict_source: str | None = None  # oracle | self
    error: str | None = None


@direct_init
@dataclass(frozen=True)
class Solution:
    text: str | None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. rounds used, stopping reason
    rounds: tuple[RoundRecord, ...] = ()


Solver = Callable[[Trial, Generate], Awaitable[Solution]]
SOLVERS: Registry[Solver] = Registry("solver")

Prepare = Callable[
    [Mapping[str, Any], "tuple[AppliedStimulus, ...]", "StimulusLibrary"],
    "tuple[dict[str, Any], tuple[AppliedStimulus, ...]]",
]
"""(solver_params as written, the condition's stimuli, the study's library) -> (the plan the trials
carry, the condition's stimuli with any the program draws on). Raises UserError(field=...)."""


MaxCalls = Callable[[Mapping[str, Any], "tuple[AppliedStimulus, ...]"], int]
"""(the condition's plan, its stimuli) -> the model calls one trial of the program makes at most."""


@dataclass(frozen=True)
class SolverSetup:
    prepare: Prepare | None = None  # None: the solver takes no parameters
    consumes_gold: Callable[[Mapping[str, Any]], bool] = lambda plan: False
    max_calls: MaxCalls | None = None  # None: not declared (a plan says "unknown")


SOLVER_SETUPS: Registry[SolverSetup] = Registry("solver setup")


def prepare_solver(
    solver: str, params: Mapping[str, Any], stimuli: tuple[AppliedStimulus, ...], library: StimulusLibrary
) -> tuple[dict[str, Any], tuple[AppliedStimulus, ...]]:
    """Check and complete a condition's solver parameters (UserError fields are relative to the condition)."""
    prepare = SOLVER_SETUPS.get(solver).prepare if solver in SOLVER_SETUPS else None
    if prepare is not None:
        return prepare(params, stimuli, library)
    if params:
        raise UserError(f"solver {solver!r} takes no parameters (given: {', '.join(sorted(params))})", field="solver_params")
    return {}, stimuli


def consumes_gold(solver: str, plan: Mapping[str, Any]) -> bool:
    """Whether a condition's program reads gold labels while it runs (an oracle verifier)."""
    return solver in SOLVER_SETUPS and SOLVER_SETUPS.get(solver).consumes_gold(plan)


def max_calls(solver: str, plan: Mapping[str, Any], stimuli: tuple[AppliedStimulus, ...]) -> int | None:
    """The model calls one trial of `solver` makes at most (its own model's; a judge's are the
    scorer's), as the solver's registration declares it; None when it declares none."""
    setup = SOLVER_SETUPS.get(solver) if solver in SOLVER_SETUPS else None
    return None if setup is None or setup.max_calls is None else setup.max_calls(plan, stimuli)


@SOLVERS.register("single_turn")
async def single_turn(trial: Trial, generate: Generate) -> Solution:
    result = await generate(trial.messages)
    return Solution(text=result.text, error=result.error)


SOLVER_SETUPS.add("single_turn", SolverSetup(max_calls=lambda plan, stimuli: 1))
