"""A search: Optuna samples candidate conditions from a study's `search:` space; each candidate runs
on the dev split of every task's examples through the runner (a run of its own, so every model
call is a `calls` row, cached and resumable as any run's), scored by its mean; the control runs
once on the dev split. The winner and the control then run on the disjoint test split and are
compared by the paired test `compare` uses, beside the dev estimate (the winner's curse).

Trials are counted under a file lock before each is asked for, so workers sharing a storage run
exactly the budget together; a trial left RUNNING by a dead process (same host, its pid gone) is
failed and its values asked again, so its half-done run resumes rather than repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optuna
import pandas as pd

from ..core.errors import UserError
from ..core.pauses import pause_point
from ..core.paths import file_lock
from ..core.processes import process_start
from ..core.seeds import stable_seed
from ..run.scheduler import Runner
from ..run.simulate import simulated_frame
from ..stats.frame import load_run
from ..stats.table import compare_pair, per_example, scored_frame
from ..study.search import NONE, SAMPLER_ALIASES, Range, SearchSpec, candidate, categorical_values, stimulus_ids
from ..study.spec import ConditionSpec, ResolvedStudy, TaskSample, resolve_study
from ..study.sweep import _UNSAFE

SPLITS = ("dev", "test")
optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial on stderr is Optuna's, not the workbench's output
LOCK_WAIT_S = 0.2  # how often a worker looks again at a run another worker is running


Events = tuple[tuple[str, dict[str, Any]], ...]


class Evaluator(Protocol):
    """Runs a split study (of its examples, those in `only`, or all) and returns its trials
    scored (workbench.stats.table.scored_frame): all of them logged so far."""

    def __call__(self, study: ResolvedStudy, events: Events, only: frozenset[str] | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True)
class LogEvaluator:
    """Through the runner into the log: every call a `calls` row, every run resumable."""

    db: Path
    say: Callable[[str], None] = lambda _: None

    def __call__(self, study: ResolvedStudy, events: Events, only: frozenset[str] | None = None) -> pd.DataFrame:
        while True:  # another worker running the same run: wait for it, then find its trials logged
            runner = Runner(study, self.db, log=self.say, events=events, only=only)
            try:
                summary = asyncio.run(runner.run())
                break
            except UserError as exc:
                if "already running" not in exc.detail:
                    raise
                time.sleep(LOCK_WAIT_S)
        if summary.interrupted:
            raise KeyboardInterrupt
        data = load_run(self.db, runner.run_id)
        return scored_frame(data.frame, study.spec.errors, study.spec.no_answer)


def simulated(study: ResolvedStudy, events: Events, only: frozenset[str] | None = None) -> pd.DataFrame:
    """In process on `sim/` models, nothing logged (statistical checks of the search itself)."""
    frame = simulated_frame(study)
    return scored_frame(frame if only is None else frame[frame["item_id"].isin(only)], study.spec.errors, study.spec.no_answer)


class ControlWilcoxonPruner(optuna.pruners.BasePruner):
    """Prunes a candidate when, on the dev examples it has reported (a step per example), a
    one-sided Wilcoxon signed-rank test says it scores below the control on the same examples.
    Optuna's WilcoxonPruner tests against the best trial so far; the search tests against the
    control, the comparison its confirmation makes."""

    MIN_DIFFERENCES = 5  # examples where the two differ, before any test

    def __init__(self, p_threshold: float) -> None:
        self.p_threshold = p_threshold
        self.control: dict[int, float] = {}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        from scipy.stats import wilcoxon

        diffs = [v - self.control[s] for s, v in trial.intermediate_values.items() if s in self.control and not np.isnan(v)]
        nonzero = [d for d in diffs if d != 0]
        if len(nonzero) < self.MIN_DIFFERENCES:
            return False
        return bool(wilcoxon(nonzero, alternative="less").pvalue < self.p_threshold)


def splits(study: ResolvedStudy) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Per split, per task: its examples, disjoint, a seeded shuffle of the examples the study draws."""
    search = _search(study)
    out: dict[str, dict[str, tuple[Any, ...]]] = {name: {} for name in SPLITS}
    for ref in study.spec.tasks:
        items = list(study.sample_of(ref)[0])
        random.Random(stable_seed(study.spec.seed, "search-split", ref.task)).shuffle(items)
        out["dev"][ref.task] = tuple(items[: search.dev])
        out["test"][ref.task] = tuple(items[search.dev : search.dev + search.test])
    return out


def _search(study: ResolvedStudy) -> SearchSpec:
    if study.spec.search is None:
        raise UserError("the study has no `search:` block (see the README's Search section)", file=study.path, field="search")
    return study.spec.search


def family_ids(study: ResolvedStudy) -> list[str]:
    from ..study.spec import study_library

    stimulus = _search(study).space.stimulus
    if stimulus is None or isinstance(stimulus, list):
        return []
    return [item.id for item in study_library(study.spec, study.path).items(stimulus.family)]


def split_study(study: ResolvedStudy, split: str, items: dict[str, tuple[Any, ...]], conditions: list[dict[str, Any]],
                model_params: dict[str, Any]) -> ResolvedStudy:
    """The study as a run of `conditions` on one split's examples: its name `<study>.<split>`, no
    search block, each model's simulated accuracy kept for these conditions only."""
    spec = study.spec
    names = {c["name"] for c in conditions}
    models = []
    for model in spec.models:
        update: dict[str, Any] = {"params": {**model.params, **model_params}}
        if model.simulate is not None:
            update["simulate"] = model.simulate.model_copy(update={
                key: {k: v for k, v in getattr(model.simulate, key).items() if k in names} for key in ("accuracy", "answer_format")})
        models.append(model.model_copy(update=update))
    run_spec = spec.model_copy(update={
        "name": f"{spec.name}.{split}", "conditions": [ConditionSpec.model_validate(c) for c in conditions], "sweep": None,
        "search": None, "control": None, "rating": None, "models": models,
        "tasks": [ref.model_copy(update={"data_sha256": None}) for ref in spec.tasks]})  # the split's own, set below
    resolved = resolve_study(run_spec, study.path)
    refs, samples = [], dict(resolved.samples)
    for ref in resolved.spec.tasks:
        drawn = resolved.samples[ref.task]
        sample = TaskSample(drawn.task, len(items[ref.task]), drawn.shots, drawn.seed, items[ref.task], drawn.pool)
        samples[ref.task] = sample
        refs.append(ref.model_copy(update={"n": sample.n, "data_sha256": sample.digest()}))
    return resolved.model_copy(update={"spec": resolved.spec.model_copy(update={"tasks": refs}), "samples": samples})


def control_condition(study: ResolvedStudy) -> dict[str, Any]:
    spec = next(c for c in study.condition_specs if c.name == study.control_name)
    return next(c for c in study.spec.conditions if c.name == spec.name).model_dump(mode="json", exclude_defaults=True)


def suggest(trial: optuna.Trial, search: SearchSpec, ids: list[str]) -> dict[str, Any]:
    """The trial's values of every dimension of the space."""
    space = search.space
    values: dict[str, Any] = {}
    if ids:
        values["stimulus"] = trial.suggest_categorical("stimulus", ids)
    if space.placement:
        values["placement"] = trial.suggest_categorical("placement", space.placement)
    for prefix, choices in (("param", space.params), ("model", space.model)):
        for key, choice in choices.items():
            name = f"{prefix}.{key}"
            if isinstance(choice, Range) and choice.is_int:
                values[name] = trial.suggest_int(name, int(choice.low), int(choice.high), step=int(choice.step or 1), log=choice.log)
            elif isinstance(choice, Range):
                values[name] = trial.suggest_float(name, choice.low, choice.high, step=choice.step, log=choice.log)
            else:
                values[name] = trial.suggest_categorical(name, choice)
    if space.heart is not None:
        for r in range(space.heart.rounds):
            values[f"heart.{r}"] = trial.suggest_categorical(f"heart.{r}", space.heart.emotions)
    return values


class AskTellGrid(optuna.samplers.GridSampler):
    """Optuna's grid, asked and told by the search's own loop, whose budget ends the search: the
    grid's stop when it is exhausted (`study.stop`, which works only inside `study.optimize`) is
    left out."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: optuna.trial.TrialState, values: Any) -> None:
        return None


def sampler_of(search: SearchSpec, family: list[str], seed: int) -> optuna.samplers.BaseSampler:
    """The block's sampler, seeded; `family`: the ids of the space's stimulus family, if it names one."""
    name = SAMPLER_ALIASES.get(search.sampler, search.sampler)
    cls = getattr(optuna.samplers, name)
    if name == "GridSampler":
        return AskTellGrid(categorical_values(search.space, family), seed=seed)
    return cls(seed=seed)


def storage_of(search: SearchSpec, db: Path | None, name: str) -> tuple[Any, Path | None]:
    """The Optuna storage and the lock file workers take to ask for a trial: a journal file beside
    the log (`<log>.search/<name>.journal`) unless the study names a storage URL; in memory
    without a log."""
    if search.storage is not None:
        lock = Path(f"{db}.search") / f"{_UNSAFE.sub('_', name)}.ask-lock" if db else None
        return search.storage, lock
    if db is None:
        return optuna.storages.InMemoryStorage(), None
    from optuna.storages.journal import JournalFileBackend

    path = Path(f"{db}.search") / f"{_UNSAFE.sub('_', name)}.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path))), path.with_name(path.name + ".ask-lock")


def _asking(lock: Path | None) -> contextlib.AbstractContextManager[None]:
    if lock is None:
        return contextlib.nullcontext()
    lock.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(lock)


def _me() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start(os.getpid())}


def _dead(trial: optuna.trial.FrozenTrial) -> bool:
    worker = trial.user_attrs.get("worker")
    if worker is None:  # asked, then killed before it could say whose it is (both under the ask lock)
        return True
    return worker["host"] == socket.gethostname() and process_start(worker["pid"]) != worker["start"]


COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)


def _reap(study: optuna.Study) -> None:
    """Trials a dead process left RUNNING: failed, and their values asked again (the next ask gets them)."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _dead(trial):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def _next_trial(study: optuna.Study, budget: int, lock: Path | None) -> optuna.Trial | None:
    with _asking(lock):
        _reap(study)
        if len(study.get_trials(deepcopy=False, states=COUNTED)) >= budget:
            return None
        pause_point("search_ask")  # a test holds two workers here: without the lock both would ask
        trial = study.ask()
        trial.set_user_attr("worker", _me())
        return trial


@dataclass
class Search:
    """One search of a study: `evaluate` runs split studies (LogEvaluator or `simulated`)."""

    study: ResolvedStudy
    evaluate: Evaluator
    db: Path | None = None
    budget: int | None = None
    seed_offset: int = 0
    _splits: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.search = _search(self.study)
        family = family_ids(self.study)
        self.ids = stimulus_ids(self.search.space, family)  # the stimulus choices, `none` among them if asked
        self._splits = splits(self.study)
        self.control = control_condition(self.study)
        self.name = self.study.spec.name
        storage, self.lock = storage_of(self.search, self.db, self.name)
        self.pruner = ControlWilcoxonPruner(self.search.prune_p)
        try:
            self.optuna = optuna.create_study(
                storage=storage, study_name=self.name, direction="maximize", load_if_exists=True, pruner=self.pruner,
                sampler=sampler_of(self.search, family, self.study.spec.seed + self.seed_offset))
        except Exception as exc:  # noqa: BLE001 - whatever the storage's driver raises, one line naming the key
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise UserError(f"cannot open the search's storage: {first}", file=self.study.path, field="search.storage") from None
        # the pruner's steps: the dev examples in split order, a chunk at a time (a quarter of each task's)
        self.steps: dict[str, int] = {}
        self.chunks: list[frozenset[str]] = []
        dev = self._splits["dev"]
        size = max(2, -(-self.search.dev // 4))
        for start in range(0, self.search.dev, size):
            self.chunks.append(frozenset(item.id for items in dev.values() for item in items[start : start + size]))
        for task, items in dev.items():
            for item in items:
                self.steps.setdefault(f"{task}\x1f{item.id}", len(self.steps))

    def scores(self, split: str, conditions: list[dict[str, Any]], model_params: dict[str, Any] | None = None,
               events: Events = (), only: frozenset[str] | None = None) -> pd.DataFrame:
        study = split_study(self.study, split, self._splits[split], conditions, model_params or {})
        frame = self.evaluate(study, events, only)
        frame["step"] = frame["example"].map(self.steps)
        frame["example"] = frame["model"].astype(str) + "\x1f" + frame["example"]  # paired per model too
        return frame

    def control_dev(self) -> pd.DataFrame:
        frame = self.scores("dev", [self.control], events=(("search_control", {"search": self.name}),))
        self.pruner.control = _per_step(frame)
        return frame

    def candidate_score(self, trial: optuna.Trial, condition: dict[str, Any], model_params: dict[str, Any], events: Events) -> float:
        """The candidate's mean dev score; with pruning, run a chunk of examples at a time, each
        example's score reported as a step, and stopped (TrialPruned) once it is worse than the control."""
        if not self.search.pruning:
            return _mean(self.scores("dev", [condition], model_params, events))
        seen: frozenset[str] = frozenset()
        for chunk in self.chunks:
            seen |= chunk
            frame = self.scores("dev", [condition], model_params, events, only=seen)
            for step, value in _per_step(frame[frame["item_id"].isin(chunk)]).items():
                trial.report(value, step)  # each example once, when its chunk has run
            if len(seen) < sum(map(len, self.chunks)) and trial.should_prune():  # all seen: it completes
                raise optuna.TrialPruned()
        return _mean(frame)

    def run_trials(self) -> None:
        """Ask, run and tell trials until the storage holds the budget (with other workers' trials)."""
        budget = self.budget or self.search.trials
        while (trial := _next_trial(self.optuna, budget, self.lock)) is not None:
            values = suggest(trial, self.search, self.ids)
            condition, model_params = candidate(self.search.space, values, {})
            trial.set_user_attr("condition", condition)
            trial.set_user_attr("model_params", model_params)
            try:
                value = self.candidate_score(trial, condition, model_params, (("search_trial", {"search": self.name, "trial": trial.number, "params": values}),))
            except optuna.TrialPruned:
                self.optuna.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            except BaseException:
                self.optuna.tell(trial, state=optuna.trial.TrialState.FAIL)
                self.optuna.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
                raise
            self.optuna.tell(trial, value)

    def confirm(self, control_dev: pd.DataFrame) -> dict[str, Any]:
        finished = len(self.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))
        if not self.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            return self._nothing_to_confirm(finished)
        best = self.optuna.best_trial
        winner, model_params = best.user_attrs["condition"], best.user_attrs["model_params"]
        complete = self.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        dev = self.scores("dev", [winner], model_params)
        dev_pair = per_example(pd.concat([control_dev, dev])).pair(self.control["name"], winner["name"])
        note = None
        if winner["name"] == self.control["name"] or winner["name"] == NONE and not winner.get("solver"):
            test_frame = self.scores("test", [self.control])
            stats: dict[str, Any] = {"delta": 0.0}
            note = f"the best candidate, {winner['name']}, sends what the control sends: nothing to confirm"
        else:
            test_frame = self.scores("test", [self.control, winner], model_params, (("search_confirm", {"search": self.name, "trial": best.number}),))
            stats = compare_pair(per_example(test_frame).pair(self.control["name"], winner["name"]), "auto", self.search.level)
        return {
            "winner": winner, "model_params": model_params, "best_trial": best.number, "best_params": dict(best.params),
            "best_value": best.value, "n_trials": finished, "note": note,
            "candidates": len({t.user_attrs["condition"]["name"] for t in complete}),
            "control_dev": float(np.mean(dev_pair.x)) if dev_pair.x.size else None,
            "dev_delta": float(np.mean(dev_pair.y - dev_pair.x)) if dev_pair.x.size else None,
            "n_test": int(test_frame["example"].nunique()), "level": self.search.level,
            **{k: stats.get(k) for k in ("delta", "ci_low", "ci_high", "p_value", "test")},
        }


    def _nothing_to_confirm(self, finished: int) -> dict[str, Any]:
        """Every candidate was pruned: none is a winner, the control stays."""
        return {
            "winner": self.control, "model_params": {}, "best_trial": None, "best_params": {}, "best_value": None, "n_trials": finished,
            "candidates": 0, "control_dev": None, "dev_delta": None, "n_test": 0, "level": self.search.level,
            **dict.fromkeys(("delta", "ci_low", "ci_high", "p_value", "test")),
            "note": f"all {finished} candidates were pruned (worse than the control on the dev examples they ran): no winner to confirm",
        }


def _mean(frame: pd.DataFrame) -> float:
    return float(np.nanmean(frame["value"])) if frame["value"].notna().any() else 0.0


def _per_step(frame: pd.DataFrame) -> dict[int, float]:
    """Each example's mean value (over models and repeats), by its step."""
    return {int(step): float(v) for step, v in frame.groupby("step")["value"].mean().items() if not np.isnan(v)}


def search(study: ResolvedStudy, evaluate: Evaluator, db: Path | None = None, *, budget: int | None = None, seed_offset: int = 0) -> dict[str, Any]:
    """Run a search's trials (those its storage lacks) and confirm its winner: the facts SearchResult reports."""
    return conclude(Search(study, evaluate, db, budget, seed_offset))


def conclude(engine: Search) -> dict[str, Any]:
    """The control's dev run, the trials the storage lacks, and the confirmation of the winner,
    kept in the search's storage and its log (workbench.reports.searches)."""
    from ..reports.searches import record_confirmation

    control_dev = engine.control_dev()
    engine.run_trials()
    facts = {"search": engine.name, "storage": _storage_label(engine), **engine.confirm(control_dev)}
    record_confirmation(engine.optuna, engine.db, facts, engine.control["name"])
    return facts


def _storage_label(engine: Search) -> str:
    if engine.search.storage is not None:
        return engine.search.storage
    return str(engine.lock.with_suffix("")) if engine.lock is not None else "memory"

