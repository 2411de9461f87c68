"""One trial's program, the same for the runner and for simulated studies: the condition's solver
on the sealed trial, then final scoring (the first read of the gold, with the judge if any).

The caller supplies `door`, its way to a model (the runner's is cached, retried and logged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import gold
from ..extract import ERROR
from ..messages import Messages, to_dicts
from ..providers import ModelRequest, TrialContext
from ..providers.redact import redact
from ..scorers import Score, ScoreCase, score_trial
from ..solvers import SOLVERS, Generate, Solution
from ..study import ModelSpec
from ..trials import Trial, repeat_seed


def request_params(model: ModelSpec, trial: Trial) -> dict[str, Any]:
    """The parameters a trial's calls to `model` send: the model's params and a seed, the trial's
    (new for each repeat) unless the params set one (then that seed, made new for each repeat)."""
    own = "seed" in model.params
    return {**model.params, "seed": repeat_seed(model.params["seed"], trial.repeat) if own else trial.seed}


def call_for(trial: Trial, model: ModelSpec, messages: Messages, purpose: str, index: int, sim_targets: tuple[str, ...] | None = None) -> tuple[ModelRequest, TrialContext]:
    """The request a trial's call sends (seeded per trial) and what its provider may know of it."""
    request = ModelRequest.build(model.id, to_dicts(messages), request_params(model, trial), trial.repeat, purpose)
    targets = trial.item.targets if sim_targets is None else sim_targets  # what a simulated model may plant
    return request, TrialContext(condition=trial.condition, targets=targets, seed=trial.seed, call_index=index, choices=trial.item.choices)


def status(solution: Solution, scored: Score) -> str:
    """error: no final answer, or one its scorer could not score; else the scorer's status
    (ok, or no_answer: the response holds no answer of the task's type)."""
    return ERROR if solution.text is None or scored.error is not None else scored.status


async def solve_and_score(trial: Trial, door: Callable[[ModelSpec], Generate], judge: ModelSpec | None) -> tuple[Solution, Score]:
    try:
        solution = await SOLVERS.get(trial.solver)(trial.for_solver(), door(trial.model))
    except Exception as exc:  # noqa: BLE001 - a failing program is an errored trial, not a crashed sweep
        solution = Solution(text=None, error=redact(f"{type(exc).__name__}: {exc}"))  # it may quote a key too
    if solution.text is None:
        return solution, Score(answer=None, value=None)
    with gold.access("scoring"):
        case = ScoreCase(trial.task, trial.item, solution.text, trial.seed, door(judge) if judge else None, judge.id if judge else None, trial.extractor)
        return solution, await score_trial(case)  # a judge's calls are the trial's calls too
