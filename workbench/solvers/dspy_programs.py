"""DSPy programs as the system under test.

A task (in its task file, or a study's task entry with `program:`) names a registered program;
its trials run the `dspy` solver. The condition's stimuli are applied to the program's
instructions: the registered signature stays as it is and `with_instructions` returns a new one.
Every LM call the program makes goes through the trial's `generate`, so it is a cached, retried
and logged `calls` row (purpose `dspy`) like any other call, on any model the study names.

DSPy reaches the model through a `dspy.LM` (a `dspy.BaseLM`) whose async engine is the trial's
`generate`. That is the request/response engine contract of DSPy 3.4; subclasses overriding
`forward()` are deprecated there and go away in 3.5. DSPy's own cache and retries are off
(the workbench's gateway does both); the sampling parameters are the study's model `params`, not
DSPy's defaults. Study files name programs, they never carry code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.messages import Message, Messages
from ..core.registry import Registry
from ..core.errors import UserError
from .base import SOLVER_SETUPS, SOLVERS, Solution, SolverSetup
from ..core.calls import Generate
from ..stimuli import AppliedStimulus, build_prompt

if TYPE_CHECKING:
    from .base import Trial


@dataclass(frozen=True)
class Program:
    """A DSPy module over one signature: `build(dspy, signature)` returns a fresh module."""

    signature: str  # DSPy's signature syntax, e.g. "input -> answer"
    build: Callable[[Any, Any], Any]
    description: str
    input_field: str = "input"
    output_field: str = "answer"  # the field the task's scorer reads
    # Model calls one run of the module makes at most: DSPy's ChatAdapter, and its JSONAdapter
    # fallback when the reply does not parse (dspy.adapters.chat_adapter).
    max_calls: int = 2


DSPY_PROGRAMS: Registry[Program] = Registry("DSPy program")
DSPY_PROGRAMS.add("predict", Program("input -> answer", lambda dspy, sig: dspy.Predict(sig), "dspy.Predict on input -> answer"))
DSPY_PROGRAMS.add("cot", Program("input -> answer", lambda dspy, sig: dspy.ChainOfThought(sig), "dspy.ChainOfThought: reasoning, then the answer"))


def stimulated_instructions(instruction: str, stimuli: tuple[AppliedStimulus, ...]) -> str:
    """The instruction as the condition's stimuli change it, through the same placements as a
    chat prompt: system-placed text comes first, then the (prefixed or suffixed) instruction."""
    scaffold: Messages = (
        Message.text("system", ""),
        Message(role="user", template="{instruction}", slots=(("instruction", instruction),)),
    )
    return "\n\n".join(m.content for m in build_prompt(scaffold, stimuli) if m.content)


class ModelCallFailed(RuntimeError):
    """The trial's gateway gave no text after its retries."""


class _TrialEngine:
    """DSPy's async engine contract: one canonical request in, one response out."""

    def __init__(self, generate: Generate, model_id: str, purpose: str = "dspy") -> None:
        self.generate = generate
        self.model_id = model_id
        self.purpose = purpose
        self.calls = 0

    async def complete(self, request: Any) -> Any:
        from dspy import lm15

        messages: list[Message] = []
        if request.system is not None:
            system = request.system if isinstance(request.system, str) else "".join(part.text for part in request.system)
            messages.append(Message.text("system", system))
        messages += [Message.text(m.role, m.text or "") for m in request.messages]
        self.calls += 1
        result = await self.generate(tuple(messages), purpose=self.purpose)
        if result.text is None:
            raise ModelCallFailed(result.error or "model call failed")
        return lm15.Response(
            id=None,
            model=self.model_id,
            message=lm15.Message.assistant([lm15.TextPart(result.text)]),
            finish_reason="stop",
            usage=lm15.Usage(input_tokens=0, output_tokens=0, total_tokens=0),
        )

    async def stream(self, request: Any) -> Any:
        raise NotImplementedError("the workbench does not stream")
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


class _NoSyncCalls:
    """DSPy wants a sync engine too; trials run programs with `acall` only."""

    def complete(self, request: Any) -> Any:
        raise RuntimeError("workbench DSPy programs run asynchronously (module.acall)")

    def stream(self, request: Any) -> Any:
        raise RuntimeError("workbench DSPy programs run asynchronously (module.acall)")

    def close(self) -> None:
        return None


class _LoopCalls:
    """A sync engine for DSPy code that calls its LM from threads (its optimisers, `Evaluate`):
    each call runs the async engine on `loop`, the gateway's, one at a time (a trial's calls are
    sequential: each takes the next call index)."""

    def __init__(self, engine: _TrialEngine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop
        self.one_at_a_time = threading.Lock()

    def complete(self, request: Any) -> Any:
        with self.one_at_a_time:
            future = asyncio.run_coroutine_threadsafe(self.engine.complete(request), self.loop)
            while True:
                try:
                    return future.result(timeout=1.0)
                except concurrent.futures.TimeoutError:
                    if not self.loop.is_running():  # stopped (interrupted): nothing will answer
                        future.cancel()
                        raise ModelCallFailed("the gateway's loop stopped") from None

    def stream(self, request: Any) -> Any:
        raise RuntimeError("the workbench does not stream")

    def close(self) -> None:
        return None


def trial_lm(generate: Generate, model_id: str, *, purpose: str = "dspy", loop: asyncio.AbstractEventLoop | None = None) -> tuple[Any, _TrialEngine]:
    """A dspy.LM whose every call is `generate(...)`: no DSPy cache, no DSPy retries. With `loop`
    (where `generate` runs) it answers sync calls from other threads too."""
    import dspy

    engine = _TrialEngine(generate, model_id, purpose)
    sync = _LoopCalls(engine, loop) if loop is not None else _NoSyncCalls()
    lm = dspy.LM(f"workbench/{model_id}", engine=sync, async_engine=engine, cache=False, num_retries=0)
    return lm, engine


def _prepare(params: Any, stimuli: tuple[AppliedStimulus, ...], library: Any) -> tuple[dict[str, Any], tuple[AppliedStimulus, ...]]:
    """`solver: dspy` on a condition: its `solver_params` name the program every task runs."""
    extra = set(params) - {"program", "instructions"}
    if extra:
        raise UserError(f"unknown parameter(s) {', '.join(sorted(extra))} (allowed: program, instructions)", field="solver_params")
    if params.get("program") not in DSPY_PROGRAMS:
        raise UserError(DSPY_PROGRAMS.unknown_message(str(params.get("program"))), field="solver_params.program")
    if "instructions" not in params:
        return {"program": params["program"]}, stimuli
    instructions = params["instructions"]
    if not (isinstance(instructions, str) and instructions.strip() or isinstance(instructions, Mapping) and instructions
            and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in instructions.items())):
        raise UserError("needs a non-empty text, or a mapping of task names to non-empty texts", field="solver_params.instructions")
    return {"program": params["program"], "instructions": instructions if isinstance(instructions, str) else dict(instructions)}, stimuli


def program_instruction(trial: Trial) -> str:
    """The instruction a condition's program starts from: its `instructions` (one text, or the
    task's own entry of a mapping by task name; an optimiser found it), else the task's."""
    override = dict(trial.solver_params).get("instructions")
    if isinstance(override, Mapping):
        override = override.get(trial.task.id)
    return override or trial.task.instruction


SOLVER_SETUPS.add("dspy", SolverSetup(prepare=_prepare, max_calls=lambda plan, stimuli: DSPY_PROGRAMS.get(plan["program"]).max_calls))


@SOLVERS.register("dspy")
async def dspy_solver(trial: Trial, generate: Generate) -> Solution:
    import dspy

    name = dict(trial.solver_params)["program"]
    program = DSPY_PROGRAMS.get(name)
    instructions = stimulated_instructions(program_instruction(trial), trial.stimuli)
    signature = dspy.Signature(program.signature).with_instructions(instructions)
    module = program.build(dspy, signature)
    lm, engine = trial_lm(generate, trial.model.id)
    details: dict[str, Any] = {"program": name, "instructions": instructions, "signature": program.signature}
    try:
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter(), disable_history=True):
            prediction = await module.acall(**{program.input_field: trial.item.input})
    except Exception as exc:  # noqa: BLE001 - a program that fails (parse, model) is an errored trial
        cause = next((e for e in _chain(exc) if isinstance(e, ModelCallFailed)), exc)
        return Solution(text=None, error=f"dspy {name}: {type(cause).__name__}: {cause}", details={**details, "dspy_calls": engine.calls})
    fields = {key: str(value) for key, value in prediction.items() if key != program.output_field}
    return Solution(text=str(prediction[program.output_field]), details={**details, "dspy_calls": engine.calls, "fields": fields})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
