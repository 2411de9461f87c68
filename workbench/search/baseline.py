"""An optimised-instruction baseline for a search: DSPy's own instruction optimiser (COPRO or
MIPROv2) tunes a registered program's instruction on the search's dev split, on the study's first
model, scored by each task's own scorer. The instruction it finds is a condition (`dspy-copro`:
`solver: dspy` with `solver_params: {program, instructions}`) that the confirmation runs on the
test split beside the control and the winner, so a paper can say whether a stimulus beats an
optimised instruction.

Every model call of the optimiser goes through the workbench's gateway: it is a `calls` row of the
log (purpose `optimise`, and `optimise:propose` for the optimiser's own proposals) under the run id
`<study>.optimise-<hash>`, one trial id per task, and a `run_events` row `search_baseline` with the
search's name keeps what it found. A re-run of the same search reuses that row and calls nothing;
an optimisation that failed runs again with the log's answers as its cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.clock import utc_now_us
from ..core.items import TaskItem
from ..core.seeds import stable_seed
from ..providers import ModelResponse
from ..run.cache import ResponseCache
from ..run.gateway import GatewaySettings
from ..scoring import gold
from ..scoring.score_log import round_value
from ..solvers.base import Trial
from ..solvers.dspy_programs import DSPY_PROGRAMS, Program, trial_lm
from ..stats.table import compare_pair, per_example
from ..store import SegmentWriter, connect_reader, log_exists
from ..study.search import BaselineSpec
from ..study.spec import ResolvedStudy

logging.getLogger("dspy.teleprompt").setLevel(logging.WARNING)  # a line per candidate on stderr is DSPy's, not the workbench's output
PURPOSE = "optimise"  # the program's calls on dev examples, which the optimiser scores
PROPOSE = "optimise:propose"  # the optimiser asking the model for instructions
EVENT = "search_baseline"
STATS = ("delta", "ci_low", "ci_high", "p_value", "test")


@dataclass(frozen=True)
class Optimised:
    """What the optimiser found: the condition (None when it failed), per task its instruction."""

    name: str
    optimizer: str
    run_id: str
    condition: dict[str, Any] | None
    instructions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    model_calls: int = 0  # calls sent to the model now (not answered from the log)


def starting_condition(spec: BaselineSpec) -> dict[str, Any]:
    return {"name": f"dspy-{spec.optimizer}", "solver": "dspy", "solver_params": {"program": spec.program}}


def optimise(split: ResolvedStudy, db: Path | None, search: str, spec: BaselineSpec, say: Callable[[str], None] = lambda _: None) -> Optimised:
    """The baseline's condition, optimised on `split` (the search's dev split as a study of the
    starting condition, `<study>.optimise`) for the `baseline:` block `spec` of the search named
    `search`; logged to `db` (None: nothing logged, nothing reused)."""
    start = starting_condition(spec)
    run_id = f"{split.spec.name}-{_fingerprint(split.spec_hash(), spec.model_dump_json())}"
    found = _logged_result(db, run_id)
    if found is not None:
        return Optimised(start["name"], spec.optimizer, run_id, _condition(start, found["instructions"]), found["instructions"])
    say(f"optimising the baseline instruction with DSPy's {spec.optimizer} ({run_id})")
    attempt = _logged_attempts(db, run_id) + 1
    instructions, error, rows, model_calls = asyncio.run(_optimise(split, spec, run_id, attempt, _logged_answers(db, run_id), say))
    result = Optimised(start["name"], spec.optimizer, run_id, None if error else _condition(start, instructions), instructions, error, model_calls)
    if db is not None:
        detail = {"search": search, "optimizer": spec.optimizer, "program": spec.program, "condition": result.condition,
                  "instructions": instructions, "error": error}
        event = {"event_id": f"{run_id}:{time.time_ns()}", "run_id": run_id, "event": EVENT, "event_at": utc_now_us(), "detail_json": json.dumps(detail)}
        with SegmentWriter(db) as segments:
            segments.write({"calls": rows, "run_events": [event]})  # one batch: the event closes it
    return result


def _condition(start: dict[str, Any], instructions: dict[str, str]) -> dict[str, Any]:
    return {**start, "solver_params": {**start["solver_params"], "instructions": dict(instructions)}}


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:10]


async def _optimise(split: ResolvedStudy, spec: BaselineSpec, run_id: str, attempt: int, cache: ResponseCache,
                    say: Callable[[str], None]) -> tuple[dict[str, str], str | None, list[dict[str, Any]], int]:
    """Each task's instruction, the first failure (if any), the calls rows and the model calls made."""
    model = split.spec.models[0]
    proposer = model if spec.temperature is None else model.model_copy(update={"params": {**model.params, "temperature": spec.temperature}})
    gateway = await GatewaySettings(models=(model,)).open(say, cache)
    loop = asyncio.get_running_loop()
    instructions: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    error = None
    try:
        for ref in split.spec.tasks:
            task = split.tasks[ref.task]
            trial = Trial(
                trial_id=f"{run_id}:{task.id}", run_id=run_id, condition=starting_condition(spec)["name"], model=model, task=task,
                item=TaskItem(id=PURPOSE, input="", targets=()), repeat=0, seed=stable_seed(split.spec.seed, "search-baseline", task.id),
                stimuli=(), messages=(), solver="dspy", attempt=attempt,
            )
            calls = gateway.for_trial(trial)
            task_lm, _ = trial_lm(calls.generate_for(model), model.id, purpose=PURPOSE, loop=loop)
            prompt_lm, _ = trial_lm(calls.generate_for(proposer), model.id, purpose=PROPOSE, loop=loop)
            metric = _metric(split, ref, DSPY_PROGRAMS.get(spec.program))
            try:
                instructions[task.id] = await asyncio.to_thread(
                    _compile, spec, task.instruction, split.sample_of(ref)[0], metric, task_lm, prompt_lm, split.spec.seed)
            except Exception as exc:  # noqa: BLE001 - an optimiser that fails (a reply DSPy cannot parse) is reported, not a crashed search
                error = f"{task.id}: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
            rows += calls.rows()
            if error is not None:
                break
    finally:
        await gateway.close()
    return instructions, error, rows, gateway.model_calls


def _metric(split: ResolvedStudy, ref: Any, program: Program) -> Callable[..., float]:
    """DSPy's metric: the task's own scorer of the program's answer against the example's gold."""
    task = split.tasks[ref.task]
    items = {item.id: item for item in split.sample_of(ref)[0]}
    extractor = split.extractor_of(ref)

    def metric(example: Any, prediction: Any, trace: Any = None, *_: Any) -> float:
        answer = prediction.get(program.output_field) if hasattr(prediction, "get") else None
        if answer is None:
            return 0.0
        with gold.access("scoring"):
            return round_value(task, items[example.item_id], str(answer), extractor)

    return metric


def _compile(spec: BaselineSpec, instruction: str, items: tuple[TaskItem, ...], metric: Callable[..., float], task_lm: Any,
             prompt_lm: Any, seed: int) -> str:
    """DSPy's optimiser on the program (from the task's instruction): the instruction it found."""
    import dspy

    program = DSPY_PROGRAMS.get(spec.program)
    student = program.build(dspy, dspy.Signature(program.signature).with_instructions(instruction))
    trainset = [dspy.Example(**{program.input_field: item.input, "item_id": item.id}).with_inputs(program.input_field) for item in items]
    # every example may fail to parse without stopping the optimiser (it scores 0)
    with dspy.context(lm=task_lm, adapter=dspy.ChatAdapter(), max_errors=len(items) * (spec.breadth + spec.candidates) * spec.depth + 1):
        compiled = OPTIMIZERS[spec.optimizer](spec, student, trainset, metric, prompt_lm, task_lm, seed)
    return str(compiled.predictors()[0].signature.instructions).strip()


def _copro(spec: BaselineSpec, student: Any, trainset: list[Any], metric: Callable[..., float], prompt_lm: Any, task_lm: Any, seed: int) -> Any:
    import dspy

    optimizer = dspy.COPRO(prompt_model=prompt_lm, metric=metric, breadth=spec.breadth, depth=spec.depth)
    # one thread: a trial's calls are sequential
    return optimizer.compile(student, trainset=trainset, eval_kwargs={"num_threads": 1, "display_progress": False})


def _miprov2(spec: BaselineSpec, student: Any, trainset: list[Any], metric: Callable[..., float], prompt_lm: Any, task_lm: Any, seed: int) -> Any:
    import dspy

    # zero-shot: instructions only, no demos, so the baseline is an instruction as the stimuli are
    optimizer = dspy.MIPROv2(metric=metric, prompt_model=prompt_lm, task_model=task_lm, auto=None, num_candidates=spec.candidates,
                             max_bootstrapped_demos=0, max_labeled_demos=0, num_threads=1, seed=seed % 2**31,
                             verbose=False, track_stats=False)
    return optimizer.compile(student, trainset=trainset, valset=trainset, num_trials=spec.trials, minibatch=False,
                             requires_permission_to_run=False)


OPTIMIZERS: dict[str, Callable[..., Any]] = {"copro": _copro, "miprov2": _miprov2}


def _logged_result(db: Path | None, run_id: str) -> dict[str, Any] | None:
    """The optimisation's logged result, if one succeeded."""
    if db is None or not log_exists(db):
        return None
    con = connect_reader(db)
    try:
        rows = con.execute("SELECT detail_json FROM run_events WHERE run_id = ? AND event = ? ORDER BY event_at DESC", [run_id, EVENT]).fetchall()
    finally:
        con.close()
    return next((detail for detail in (json.loads(r[0]) for r in rows) if detail.get("error") is None), None)


def _logged_attempts(db: Path | None, run_id: str) -> int:
    if db is None or not log_exists(db):
        return 0
    con = connect_reader(db)
    try:
        return int(con.execute("SELECT coalesce(max(attempt), 0) FROM calls WHERE run_id = ?", [run_id]).fetchone()[0])
    finally:
        con.close()


def _logged_answers(db: Path | None, run_id: str) -> ResponseCache:
    """The answers earlier attempts of this optimisation got, by cache key (the first logged)."""
    cache = ResponseCache()
    if db is None or not log_exists(db):
        return cache
    con = connect_reader(db)
    try:
        rows = con.execute(
            "SELECT cache_key, response_text, prompt_tokens, completion_tokens, cost, latency_s, finish_reason FROM calls "
            "WHERE run_id = ? AND error IS NULL AND NOT cached ORDER BY finished_at, started_at, call_id", [run_id]).fetchall()
    finally:
        con.close()
    for key, text, p_tok, c_tok, cost, latency, finish in rows:
        cache.put(key, ModelResponse(text=text, prompt_tokens=p_tok, completion_tokens=c_tok, cost=cost, latency_s=latency, finish_reason=finish))
    return cache


def baseline_facts(optimised: Optimised, test: pd.DataFrame, control: str, winner: str, level: float) -> dict[str, Any]:
    """The baseline in the confirmation: its condition and instructions, and on the test split the
    paired test of baseline - control and of winner - baseline (as `compare` pairs them)."""
    facts: dict[str, Any] = {"name": optimised.name, "condition": optimised.condition, "optimizer": optimised.optimizer,
                             "instructions": optimised.instructions, "run_id": optimised.run_id, "error": optimised.error,
                             "model_calls": optimised.model_calls, "vs_control": None, "winner_vs_baseline": None}
    if optimised.condition is None:
        return facts
    pairs = per_example(test)
    facts["vs_control"] = _stats(compare_pair(pairs.pair(control, optimised.name), "auto", level))
    if winner != control:
        facts["winner_vs_baseline"] = _stats(compare_pair(pairs.pair(optimised.name, winner), "auto", level))
    return facts


def _stats(found: dict[str, Any]) -> dict[str, Any]:
    return {key: found.get(key) for key in STATS}
