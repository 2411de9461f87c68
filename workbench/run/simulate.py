"""Simulated studies in process, for statistical validation and simulated power.

A study on `sim/` models yields the outcomes the runner would log, produced by the code the
runner uses for one trial (trial expansion, workbench.run.execute's solver-then-scoring, the
gateway with the same bounded retries) but without the cache, timeouts, backoff, the rows and the
log, which cost several times more per trial and add nothing to the outcomes (tests check that
both agree).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ..providers.simulated import SimulatedProvider
from ..solvers.base import Trial
from ..study.expand import expand
from ..study.spec import ResolvedStudy, StudySpec, resolve_study
from .execute import solve_and_score, status
from .gateway import Gateway, GatewaySettings

FRAME_COLUMNS = ["model", "condition", "task", "item_id", "repeat", "score", "status", "n_calls", "tokens"]


async def _outcome(trial: Trial, gateway: Gateway) -> dict[str, Any]:
    calls = gateway.for_trial(trial)
    solution, scored = await solve_and_score(trial, calls.generate_for, gateway.judge)
    return {
        "model": trial.model.id,
        "condition": trial.condition,
        "task": trial.task.id,
        "item_id": trial.item.id,
        "repeat": trial.repeat,
        "score": scored.value,
        "status": status(solution, scored),
        "n_calls": len(calls.calls),
        "tokens": sum(c.response.prompt_tokens + c.response.completion_tokens for c in calls.calls if c.response is not None),
    }


async def _frame(study: ResolvedStudy) -> pd.DataFrame:
    judge = study.spec.judge
    models = [*study.spec.models, *([judge] if judge else [])]
    if not all(m.id.startswith("sim/") for m in models):
        raise ValueError("only sim/<name> models can be simulated in process")
    settings = GatewaySettings(models=tuple(models), judge=judge, use_cache=False, timeouts=False, backoff_s=0.0)
    gateway = Gateway(settings, {m.id: SimulatedProvider(m) for m in models})
    rows = [await _outcome(trial, gateway) for trial in expand(study, "simulated")]
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def simulated_frame(study: ResolvedStudy) -> pd.DataFrame:
    """The trial outcomes of `study` (columns as workbench.stats.trial_frame)."""
    return asyncio.run(_frame(study))


def reseeded(study: ResolvedStudy, seed: int) -> ResolvedStudy:
    """The same study with another seed: new examples and new model draws."""
    return study.model_copy(update={"spec": study.spec.model_copy(update={"seed": seed})})


def simulated_frames(study: ResolvedStudy, studies: int, seed: int = 0) -> Iterator[pd.DataFrame]:
    """Outcome frames of `studies` independent replications (seeds seed, seed + 1, ...)."""
    loop = asyncio.new_event_loop()
    try:
        for index in range(studies):
            yield loop.run_until_complete(_frame(reseeded(study, seed + index)))
    finally:
        loop.close()


def sim_study(accuracy: dict[str, float], n: int, *, shared_difficulty: float = 0.0, task: str = "math/word_problems", seed: int = 0) -> ResolvedStudy:
    """A one-task study on one simulated model with planted per-condition accuracy. The first
    condition is the control; the others carry no stimulus text (the simulator plants effects
    by condition name, so wording would change nothing). The default task is one whose seeded
    sample is cheap to draw (about 1 ms, against 20 ms for ii/sum), since every replication
    draws its own examples."""
    names = list(accuracy)
    spec = StudySpec.model_validate(
        {
            "name": "simulated",
            "models": [{"id": "sim/planted", "params": {"temperature": 0.0}, "simulate": {"accuracy": accuracy, "shared_difficulty": shared_difficulty}}],
            "conditions": [{"name": name} for name in names],
            "control": names[0],
            "tasks": [{"task": task, "n": n}],
            "seed": seed,
        }
    )
    return resolve_study(spec, "simulated")


def planted_pair_study(p_control: float, delta: float, n: int, *, discordance: float | None = None) -> ResolvedStudy:
    """Control against one treatment with accuracy p_control + delta and, optionally, a planted
    discordance (through the simulator's shared example difficulty)."""
    from ..stats.power import independent_discordance

    independent = independent_discordance(p_control, delta)
    shared = 0.0
    if discordance is not None:
        if not abs(delta) <= discordance <= independent + 1e-12:
            raise ValueError(
                f"the simulated model can plant a discordance from {abs(delta):g} to {independent:g} for these accuracies, not {discordance:g}"
            )
        shared = 0.0 if independent == abs(delta) else (independent - discordance) / (independent - abs(delta))
    return sim_study({"control": p_control, "treatment": p_control + delta}, n, shared_difficulty=shared)


def _pvalues_of_seeds(study: ResolvedStudy, seeds: Sequence[int], tests: Sequence[str]) -> dict[str, list[list[float]]]:
    from ..stats.table import comparison_pvalues
    from ..plugins import load_builtins

    load_builtins()  # a fresh worker process: every plugin registered, as in the parent
    control = study.control_name
    out: dict[str, list[list[float]]] = {test: [] for test in tests}
    loop = asyncio.new_event_loop()
    try:
        for seed in seeds:
            frame = loop.run_until_complete(_frame(reseeded(study, seed)))
            for test in tests:
                out[test].append(comparison_pvalues(frame, control, errors=study.spec.errors, test=test))
    finally:
        loop.close()
    return out


def simulated_pvalues(
    study: ResolvedStudy, studies: int, *, tests: Sequence[str] = ("auto",), seed: int = 0, workers: int = 1
) -> dict[str, np.ndarray]:
    """For each test, the p-values of every condition against the control (columns), one row
    per replicated study (seeds seed, seed + 1, ...), computed as the comparison table computes
    them. workers > 1 spreads the studies over spawned processes (the results do not depend on
    it; a script doing so needs the `if __name__ == "__main__":` guard)."""
    seeds = list(range(seed, seed + studies))
    workers = max(1, min(workers, studies // 50))
    if workers <= 1:
        parts = [_pvalues_of_seeds(study, seeds, tests)]
    else:
        chunks = [seeds[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_pvalues_of_seeds, [study] * workers, chunks, [tuple(tests)] * workers))
        order = [s for chunk in chunks for s in chunk]
        rank = np.argsort(order)
        return {test: np.array([row for part in parts for row in part[test]], dtype=float)[rank] for test in tests}
    return {test: np.array(parts[0][test], dtype=float) for test in tests}


def simulated_rejections(study: ResolvedStudy, *, studies: int, alpha: float, test: str = "exact", seed: int = 0, workers: int = 1) -> np.ndarray:
    """Whether each replicated study rejects (first comparison), at level alpha."""
    names = {"exact": "mcnemar", "midp": "midp", "normal": "mcnemar_chi2"}
    name = names.get(test, test)
    return simulated_pvalues(study, studies, tests=(name,), seed=seed, workers=workers)[name][:, 0] <= alpha
