"""Expand a study into its trials: condition x model x task example x repeat, paired.

Every condition sees the same examples, demos and seeds; trial ids are content hashes, so a
resumed run recognises what it has already done.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from collections.abc import Iterator, Mapping
from typing import Any

from ..core.seeds import draw_demos, query_seed
from ..scoring import gold
from ..solvers.base import Trial, holding
from ..stimuli import AppliedStimulus, apply_all, prompt_stage
from .spec import ResolvedStudy, task_dspy_solver


def trial_id(run_id: str, condition: str, model_id: str, task_id: str, item_id: str, repeat: int) -> str:
    key = "\x1f".join((run_id, condition, model_id, task_id, item_id, str(repeat)))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def expand(study: ResolvedStudy, run_id: str) -> list[Trial]:
    """All trials of a run, ordered so that the conditions of one example run side by side."""
    return list(iter_trials(study, run_id))


def count_trials(study: ResolvedStudy) -> int:
    """How many trials `iter_trials` yields, without rendering any."""
    spec = study.spec
    examples = sum(len(study.sample_of(ref)[0]) for ref in spec.tasks)
    return len(spec.models) * examples * spec.repeats * len(study.conditions)


@dataclass(frozen=True, slots=True)
class TrialKey:
    """What identifies a trial without rendering it (a resume's first pass over the plan)."""

    trial_id: str
    model_id: str
    item_id: str


def iter_trial_keys(study: ResolvedStudy, run_id: str) -> Iterator[TrialKey]:
    """The keys of `iter_trials`' trials, in its order: ids hashed, nothing rendered."""
    spec = study.spec
    for model in spec.models:
        for ref in spec.tasks:
            task_id = study.tasks[ref.task].id
            for item in study.sample_of(ref)[0]:
                for repeat in range(spec.repeats):
                    for condition in study.conditions:
                        yield TrialKey(trial_id(run_id, condition, model.id, task_id, item.id, repeat), model.id, item.id)


def iter_trials(study: ResolvedStudy, run_id: str) -> Iterator[Trial]:
    """The trials of `expand`, one at a time, in its order (a preview takes the few it shows)."""
    spec = study.spec
    solvers = {name: study.solver_of(name) for name in study.conditions}
    # A condition's stimuli, and those its prompt applies, once for all its trials unless one
    # varies by item (SAC's assessed trait): then each trial's own, from the item.
    shared = {
        name: None if any(s.varies_by_item for s in stimuli) else (stimuli, prompt_stage(stimuli))
        for name, stimuli in study.conditions.items()
    }
    for model in spec.models:
        for ref in spec.tasks:
            task = study.tasks[ref.task]
            items, demo_pool = study.sample_of(ref)  # the draw the study's data_sha256 fingerprints
            dspy = task_dspy_solver(task)
            extractor = study.extractor_of(ref)
            for item in items:
                meta = dict(item.meta)
                for repeat in range(spec.repeats):
                    seed = query_seed(spec.seed, task.id, item.id, repeat)
                    demos = draw_demos(demo_pool, ref.shots, seed)
                    with gold.access("data"):  # demos show their answers
                        base = task.render(item, demos, seed)
                    for condition, condition_stimuli in study.conditions.items():
                        solver = dspy or solvers[condition]
                        stimuli, in_prompt = shared[condition] or _for_item(condition_stimuli, meta)
                        yield holding(
                            Trial,
                            {
                                "trial_id": trial_id(run_id, condition, model.id, task.id, item.id, repeat),
                                "run_id": run_id,
                                "condition": condition,
                                "model": model,
                                "task": task,
                                "item": item,
                                "repeat": repeat,
                                "seed": seed,
                                "stimuli": stimuli,
                                "messages": apply_all(base, in_prompt),
                                "solver": solver.solver,
                                "solver_params": solver.params,
                                "consumes_gold": solver.consumes_gold,
                                "extractor": extractor,
                                "verify": None,
                                "attempt": 1,
                            },
                        )


def _for_item(stimuli: tuple[AppliedStimulus, ...], meta: Mapping[str, Any]) -> tuple[tuple[AppliedStimulus, ...], tuple[AppliedStimulus, ...]]:
    """A condition's stimuli as one item's trial applies them (SAC's assessed trait: the item's),
    and those of them its prompt applies."""
    applied = tuple(s.for_item(meta) for s in stimuli)
    return applied, prompt_stage(applied)
