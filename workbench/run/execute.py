"""Executing one trial: the condition's solver on the sealed trial, then final scoring (the first
read of the gold, with the judge if any), its calls made through a gateway.

`execute` returns the trial's rows (trial, calls, rounds, scores) and touches nothing else: the
local scheduler logs them, a worker process may send them back. `solve_and_score` is the program
alone, for callers with a way to a model of their own (planning walks it with filler answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.calls import Generate
from ..plugins import load_builtins
from ..core.frozen import direct_init
from ..core.identity import ByIdentity
from ..core.json_layout import plain_json, sorted_json
from ..core.messages import pairs_json, to_pairs
from ..scoring import gold
from ..scoring.extract import ERROR, scoring_memo
from ..providers.redact import redact
from ..providers.spec import ModelSpec
from ..scoring.score_log import item_json, logged_extractors, round_value, score_rows
from ..scoring.scorers import Score, ScoreCase, score_trial
from ..solvers.base import SOLVERS, RoundRecord, Solution, Trial
from ..stimuli import AppliedStimulus
from ..core.clock import utc_now_us
from .gateway import Gateway, GatewaySettings, call_for, params_json, request_params

__all__ = ["TrialRows", "call_for", "execute", "execute_alone", "request_params", "solve_and_score", "status"]


@direct_init
@dataclass(frozen=True)
class TrialRows:
    """One executed trial as the log stores it."""

    trial: dict[str, Any]
    calls: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    scores: list[dict[str, Any]]

    def tables(self) -> tuple[tuple[str, list[dict[str, Any]]], ...]:
        """(table, rows) in the order the runner logs them: the trial row last."""
        return (("calls", self.calls), ("rounds", self.rounds), ("scores", self.scores), ("trials", [self.trial]))

    def by_table(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(table, row) in the order the runner logs them: the trial row last."""
        for table, rows in self.tables():
            for row in rows:
                yield table, row


def status(solution: Solution, scored: Score) -> str:
    """error: no final answer, or one its scorer could not score; else the scorer's status
    (ok, or no_answer: the response holds no answer of the task's type)."""
    return ERROR if solution.text is None or scored.error is not None else scored.status


async def solve_and_score(trial: Trial, generate_for: Callable[[ModelSpec], Generate], judge: ModelSpec | None) -> tuple[Solution, Score]:
    """`generate_for(model)`: the trial's way to `model` (its own, or the judge)."""
    try:
        solution = await SOLVERS.get(trial.solver)(trial.for_solver(), generate_for(trial.model))
    except Exception as exc:  # noqa: BLE001 - a failing program is an errored trial, not a crashed sweep
        solution = Solution(text=None, error=redact(f"{type(exc).__name__}: {exc}"))  # it may quote a key too
    if solution.text is None:
        return solution, Score(answer=None, value=None)
    with gold.access("scoring"):
        case = ScoreCase(trial.task, trial.item, solution.text, trial.seed, generate_for(judge) if judge else None, judge.id if judge else None, trial.extractor)
        return solution, await score_trial(case)  # a judge's calls are the trial's calls too


async def execute(trial: Trial, gateway: Gateway) -> TrialRows:
    """Run `trial` through `gateway` and lay out its rows."""
    started = utc_now_us()
    calls = gateway.for_trial(trial)
    with scoring_memo():  # final scoring, the rounds and the scores rows read the answer once per extractor
        solution, scored = await solve_and_score(trial, calls.generate_for, gateway.judge)
        call_rows = calls.rows()
        with gold.access("scoring"):  # after final scoring: the log records the gold and scores each round
            targets_json = _shared(trial.item, "targets", lambda item: plain_json(list(item.targets)))
            rounds = [round_row(trial, record, call_rows) for record in solution.rounds]
            scores = score_rows(trial.trial_id, trial.run_id, trial.task, trial.item, solution.text, logged_extractors(trial.extractor), trial.attempt)
    details = {**solution.details, "scoring": scored.details} if scored.details else solution.details
    params = request_params(trial.model, trial)  # logged as sent: a seed of the user's own is made new per repeat
    trial_row = {
        "trial_id": trial.trial_id,
        "attempt": trial.attempt,
        "run_id": trial.run_id,
        "condition": trial.condition,
        "model": trial.model.id,
        "model_params_json": params_json(tuple(sorted(params.items()))),
        "task": trial.task.id,
        "task_version": trial.task.version,
        "task_json": _shared(trial.task, "task", lambda task: sorted_json(task.descriptor())),
        "item_id": trial.item.id,
        "item_input": trial.item.input,
        "item_json": _shared(trial.item, "item", item_json),
        "targets_json": targets_json,
        "repeat": trial.repeat,
        "seed": trial.seed,
        "stimuli_json": _shared(trial.stimuli, "stimuli", _stimuli_json),
        "messages_json": pairs_json(to_pairs(trial.messages)),
        "response_text": solution.text,
        "answer": scored.answer,
        "score": scored.value,
        "status": status(solution, scored),
        "error": solution.error or scored.error,
        "details_json": sorted_json(details) if details else "{}",
        **_totals(call_rows),
        "started_at": started,
        "finished_at": utc_now_us(),
        "consumes_gold": trial.consumes_gold,
        "extractor": trial.extractor,
    }
    return TrialRows(trial=trial_row, calls=call_rows, rounds=rounds, scores=scores)


def _totals(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What a trial's row sums up of its calls' rows (one pass: most trials make one call)."""
    prompt = completion = 0
    cost = latency = 0.0
    cached = bool(calls)
    for call in calls:
        prompt += call["prompt_tokens"]
        completion += call["completion_tokens"]
        cost += call["cost"]
        latency += call["latency_s"] or 0.0
        cached = cached and call["cached"]
    return {"n_calls": len(calls), "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost, "latency_s": latency, "cached": cached}


SHARED_LIMIT = 8192
_LAID_OUT: ByIdentity[str] = ByIdentity(SHARED_LIMIT)


def _shared(obj: Any, column: str, layout: Callable[[Any], str]) -> str:
    """The JSON `column` of an object many trials share (a task, an applied stimulus, an example
    its conditions and repeats share), laid out once."""
    return _LAID_OUT.get(obj, column, layout)


def _stimuli_json(stimuli: tuple[AppliedStimulus, ...]) -> str:
    """A trial's applied stimuli as its row logs them; the conditions' own tuples are shared by
    their trials, a tuple made for one item (SAC) still lays out each stimulus once."""
    return "[" + ", ".join(_shared(s, "stimulus", lambda s: plain_json(s.model_dump())) for s in stimuli) + "]"


def execute_alone(trial: Trial, settings: GatewaySettings) -> TrialRows:
    """Execute `trial` in this process through a gateway of its own, opened from `settings` and
    closed after: what a worker process does with a trial and settings it was sent (both pickle).
    Loads the built-in plugins first: a fresh worker has imported only what unpickling needed."""
    load_builtins()

    async def main() -> TrialRows:
        gateway = await settings.open()
        try:
            return await execute(trial, gateway)
        finally:
            await gateway.close()

    return asyncio.run(main())


def round_row(trial: Trial, record: RoundRecord, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """A round as the `rounds` table logs it, its answer scored now (final scoring)."""
    own = [calls[i] for i in record.call_indices]
    score = round_value(trial.task, trial.item, record.text, trial.extractor) if record.text is not None else None
    return {
        "round_id": f"{trial.trial_id}:{record.round}",
        "trial_id": trial.trial_id,
        "attempt": trial.attempt,
        "run_id": trial.run_id,
        "condition": trial.condition,
        "round": record.round,
        "emotion": record.emotion,
        "tone": record.tone,
        "phrase_id": record.phrase_id,
        "asserts_error": record.asserts_error,
        "feedback": record.feedback,
        "messages_json": pairs_json(to_pairs(record.messages)),
        "response_text": record.text,
        "answer": record.answer,
        "verdict": record.verdict,
        "verdict_source": record.verdict_source,
        "score": score,
        "consumes_gold": trial.consumes_gold,
        "prompt_tokens": sum(c["prompt_tokens"] for c in own),
        "completion_tokens": sum(c["completion_tokens"] for c in own),
        "latency_s": sum(c["latency_s"] or 0.0 for c in own),
        "call_id": own[0]["call_id"] if own else None,
        "call_ids_json": plain_json([c["call_id"] for c in own]),
        "error": record.error,
    }
