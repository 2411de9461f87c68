"""Expand a study into its trials: condition x model x task example x repeat, paired.

Every condition sees the same examples, demos and seeds; trial ids are content hashes, so a
resumed run recognises what it has already done.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..scoring import gold
from ..core.messages import Messages
from ..stimuli import AppliedStimulus, build_prompt
from .spec import DEFAULT_SOLVER, ModelSpec, ResolvedStudy, task_program
from ..tasks import TaskItem, TaskSpec, stable_seed


@dataclass(frozen=True)
class Trial:
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

    def for_solver(self) -> Trial:
        """The trial as its solver sees it: the gold sealed, and an oracle verifier only where the
        condition consumes gold labels (it reads answers with the trial's extractor, as final scoring does)."""
        verify = gold.oracle(self.task, self.item, self.extractor) if self.consumes_gold else None
        return replace(self, item=replace(self.item, targets=gold.seal(self.item.targets)), verify=verify)


def trial_id(run_id: str, condition: str, model_id: str, task_id: str, item_id: str, repeat: int) -> str:
    key = "\x1f".join((run_id, condition, model_id, task_id, item_id, str(repeat)))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def expand(study: ResolvedStudy, run_id: str) -> list[Trial]:
    """All trials of a run, ordered so that the conditions of one example run side by side."""
    spec = study.spec
    programs = {name: study.program(name) for name in study.conditions}
    trials: list[Trial] = []
    for model in spec.models:
        for ref in spec.tasks:
            task = study.tasks[ref.task]
            items, demo_pool = study.sample_of(ref)  # the draw the study's data_sha256 fingerprints
            dspy = task_program(task)
            extractor = study.extractor_of(ref)
            for item in items:
                meta = dict(item.meta)
                for repeat in range(spec.repeats):
                    seed = query_seed(spec.seed, task.id, item.id, repeat)
                    demos = draw_demos(demo_pool, ref.shots, seed)
                    with gold.access("data"):  # demos show their answers
                        base = task.render(item, demos, seed)
                    for condition, condition_stimuli in study.conditions.items():
                        program = dspy or programs[condition]
                        stimuli = tuple(s.for_item(meta) for s in condition_stimuli)  # SAC's assessed trait: the item's
                        trials.append(
                            Trial(
                                trial_id=trial_id(run_id, condition, model.id, task.id, item.id, repeat),
                                run_id=run_id,
                                condition=condition,
                                model=model,
                                task=task,
                                item=item,
                                repeat=repeat,
                                seed=seed,
                                stimuli=stimuli,
                                messages=build_prompt(base, stimuli),
                                solver=program.solver,
                                solver_params=program.params,
                                consumes_gold=program.consumes_gold,
                                extractor=extractor,
                            )
                        )
    return trials


def query_seed(study_seed: int, task_id: str, item_id: str, repeat: int) -> int:
    """The seed of one query: shared by its conditions (paired), new for each repeat."""
    return stable_seed(study_seed, task_id, item_id, repeat) % (2**31 - 1)


def repeat_seed(seed: Any, repeat: int) -> Any:
    """The seed a repeat sends when the model's params set one: that seed for repeat 0 (a
    single-repeat study sends what it always sent), one derived from it and the repeat index after,
    so repeats are new samples and not one request sent again. None (no seed) stays None."""
    return seed if repeat == 0 or seed is None else stable_seed(seed, "repeat", repeat) % (2**31 - 1)


def draw_demos(pool: Sequence[TaskItem], k: int, seed: int) -> list[TaskItem]:
    """k demos resampled per query (as the source papers do), seeded by the trial's seed."""
    if k == 0:
        return []
    return random.Random(seed).sample(pool, min(k, len(pool)))
