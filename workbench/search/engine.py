"""A search: Optuna samples candidate conditions from a study's `search:` space; each candidate runs
on the dev split of every task's examples through the runner (a run of its own, so every model
call is a `calls` row, cached and resumable as any run's), scored by its mean; the control runs
once on the dev split. The winner and the control then run on the disjoint test split and are
compared by the paired test `compare` uses, beside the dev estimate (the winner's curse).

Workers sharing a storage (core.optuna_storage) run exactly the budget together, and a failed
trial (its process killed, or its run stopped) has its values asked again, so its half-done run
resumes rather than repeats: both are core.shared_trials'.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optuna
import pandas as pd

from ..core.errors import UserError
from ..core.optuna_storage import SearchStorage, open_storage
from ..core.seeds import stable_seed
from ..core.shared_trials import run_shared_trials
from ..run.scheduler import Runner
from ..run.simulate import simulated_frame
from ..stats.frame import load_run
from ..stats.table import compare_pair, per_example, scored_frame
from ..study.search import NONE, OBJECTIVES, SAMPLER_ALIASES, default_journal, Range, SearchSpec, candidate, categorical_values, stimulus_ids, stimulus_slots
from ..study.spec import ConditionSpec, ResolvedStudy, TaskSample, resolve_study
from .baseline import Optimised, baseline_facts, optimise, starting_condition

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
    values: dict[str, Any] = {slot: trial.suggest_categorical(slot, choices) for slot, choices in stimulus_slots(space, ids).items()}
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


def search_storage(study: ResolvedStudy, db: Path | None, storage: str | None = None) -> SearchStorage:
    """The search's Optuna storage (core.optuna_storage): `storage` (`--storage`) or the study's
    `search.storage`, a relative file taken from the log's directory; by default a journal file
    beside the log, `<log>.search/<study name>.journal`; in memory without a log (the `simulated`
    evaluator's statistical checks)."""
    setting = storage if storage is not None else _search(study).storage
    if setting is None:
        if db is None:
            return SearchStorage(optuna.storages.InMemoryStorage(), "memory", lambda _name: contextlib.nullcontext())
        journal = default_journal(db, study.spec.name)
        journal.parent.mkdir(parents=True, exist_ok=True)
        setting = str(journal)
    return open_storage(setting, base_dir=db.parent if db is not None else None, **_storage_source(study, storage))


def _storage_source(study: ResolvedStudy, storage: str | None) -> dict[str, Any]:
    """Where a storage setting was given, as a UserError names it: `--storage` or the study file's key."""
    return {"file": None, "field": "--storage"} if storage is not None else {"file": study.path, "field": "search.storage"}


@dataclass
class Search:
    """One search of a study: `evaluate` runs split studies (LogEvaluator or `simulated`)."""

    study: ResolvedStudy
    evaluate: Evaluator
    db: Path | None = None
    budget: int | None = None
    seed_offset: int = 0
    storage_setting: str | None = None  # `--storage`: overrides the study's `search.storage`
    _splits: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.search = _search(self.study)
        family = family_ids(self.study)
        self.ids = stimulus_ids(self.search.space, family)  # the stimulus choices, `none` among them if asked
        self._splits = splits(self.study)
        self.control = control_condition(self.study)
        self.name = self.study.spec.name
        self.storage = search_storage(self.study, self.db, self.storage_setting)
        self.pruner = ControlWilcoxonPruner(self.search.prune_p)
        try:
            self.optuna = optuna.create_study(
                storage=self.storage.storage, study_name=self.name, directions=[OBJECTIVES[o] for o in self.search.objectives], load_if_exists=True, pruner=self.pruner,
                sampler=sampler_of(self.search, family, self.study.spec.seed + self.seed_offset))
        except Exception as exc:  # noqa: BLE001 - whatever the storage's driver raises, one line naming the key
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise UserError(f"cannot open the search's storage {self.storage.shown}: {first}", **_storage_source(self.study, self.storage_setting)) from None
        if len(self.search.objectives) > 1 and self.optuna.metric_names is None:
            # the objectives by name in the storage: optuna-dashboard and the search's report show them so
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.optuna.set_metric_names(list(self.search.objectives))
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

    def candidate_score(self, trial: optuna.Trial, condition: dict[str, Any], model_params: dict[str, Any], events: Events) -> float | list[float]:
        """The candidate's mean dev score, or the value of each objective (score, tokens) in the
        block's order; with pruning (one objective only), run a chunk of examples at a time, each
        example's score reported as a step, and stopped (TrialPruned) once it is worse than the control."""
        if not self.search.pruning:
            frame = self.scores("dev", [condition], model_params, events)
            values = [OBJECTIVE_VALUES[o](frame) for o in self.search.objectives]
            return values if len(values) > 1 else values[0]
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
        """Run trials until the storage holds the budget (with other workers' trials): the shared
        budget, and a failed trial's values asked again, are core.shared_trials'."""
        run_shared_trials(self.optuna, self.objective, self.budget or self.search.trials, self.storage.budget_lock)

    def objective(self, trial: optuna.Trial) -> float:
        """A trial's candidate, drawn (or its values kept, when it runs a failed trial again) and scored."""
        values = suggest(trial, self.search, self.ids)
        condition, model_params = candidate(self.search.space, values, {})
        trial.set_user_attr("condition", condition)
        trial.set_user_attr("model_params", model_params)
        return self.candidate_score(trial, condition, model_params, (("search_trial", {"search": self.name, "trial": trial.number, "params": values}),))

    def confirm(self, control_dev: pd.DataFrame) -> dict[str, Any]:
        finished = len(self.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))
        if not self.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            return self._nothing_to_confirm(finished)
        front = self.pareto()
        best = self.optuna.best_trial if front is None else self.optuna.get_trials(deepcopy=False)[front[0]["trial"]]
        winner, model_params = best.user_attrs["condition"], best.user_attrs["model_params"]
        complete = self.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        dev = self.scores("dev", [winner], model_params)
        dev_pair = per_example(pd.concat([control_dev, dev])).pair(self.control["name"], winner["name"])
        note = None
        baseline = self.baseline()  # the optimised instruction, run on the test split beside them
        beside = [baseline.condition] if baseline is not None and baseline.condition is not None else []
        if winner["name"] == self.control["name"] or winner["name"] == NONE and not winner.get("solver"):
            test_frame = self.scores("test", [self.control, *beside])
            stats: dict[str, Any] = {"delta": 0.0}
            note = f"the best candidate, {winner['name']}, sends what the control sends: nothing to confirm"
        else:
            test_frame = self.scores("test", [self.control, winner, *beside], model_params, (("search_confirm", {"search": self.name, "trial": best.number}),))
            stats = compare_pair(per_example(test_frame).pair(self.control["name"], winner["name"]), "auto", self.search.level)
        return {
            "winner": winner, "model_params": model_params, "best_trial": best.number, "best_params": dict(best.params),
            "best_value": best.values[self.search.objectives.index("score")], "n_trials": finished, "note": note, "pareto": front,
            "candidates": len({t.user_attrs["condition"]["name"] for t in complete}),
            "control_dev": float(np.mean(dev_pair.x)) if dev_pair.x.size else None,
            "dev_delta": float(np.mean(dev_pair.y - dev_pair.x)) if dev_pair.x.size else None,
            "n_test": int(test_frame["example"].nunique()), "level": self.search.level,
            **{k: stats.get(k) for k in ("delta", "ci_low", "ci_high", "p_value", "test")},
            "baseline": None if baseline is None else baseline_facts(
                baseline, test_frame, self.control["name"], winner["name"] if note is None else self.control["name"], self.search.level),
        }

    def baseline(self) -> Optimised | None:
        """The `baseline:` block's optimised instruction (None without one), optimised on the dev split."""
        spec = self.search.baseline
        if spec is None:
            return None
        return optimise(split_study(self.study, "optimise", self._splits["dev"], [starting_condition(spec)], {}), self.db, self.name, spec)

    def _nothing_to_confirm(self, finished: int) -> dict[str, Any]:
        """Every candidate was pruned: none is a winner, the control stays."""
        return {
            "winner": self.control, "model_params": {}, "best_trial": None, "best_params": {}, "best_value": None, "n_trials": finished,
            "candidates": 0, "control_dev": None, "dev_delta": None, "n_test": 0, "level": self.search.level,
            **dict.fromkeys(("delta", "ci_low", "ci_high", "p_value", "test", "baseline")),
            "note": f"all {finished} candidates were pruned (worse than the control on the dev examples they ran): no winner to confirm",
            "pareto": None,
        }

    def pareto(self) -> list[dict[str, Any]] | None:
        """A search of several objectives: its Pareto front (Optuna's best trials), one member per
        candidate (its first trial), highest score first (then fewest tokens): the first is the
        candidate the search confirms. None for a search of one objective."""
        objectives = self.search.objectives
        if len(objectives) == 1:
            return None
        front: dict[str, dict[str, Any]] = {}
        for trial in sorted(self.optuna.best_trials, key=lambda t: t.number):
            name = trial.user_attrs["condition"]["name"]
            front.setdefault(name, {"trial": trial.number, "params": dict(trial.params), "condition": name, **dict(zip(objectives, trial.values))})
        return sorted(front.values(), key=lambda m: (-m["score"], m.get("tokens", 0.0), m["trial"]))


def _mean(frame: pd.DataFrame) -> float:
    return float(np.nanmean(frame["value"])) if frame["value"].notna().any() else 0.0


def _tokens(frame: pd.DataFrame) -> float:
    """Mean tokens (prompt and completion, every call) a trial cost."""
    return float(frame["tokens"].mean()) if len(frame) else 0.0


OBJECTIVE_VALUES: dict[str, Callable[[pd.DataFrame], float]] = {"score": _mean, "tokens": _tokens}


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
    """The storage as shown: never a password (core.optuna_storage refuses one in a URL)."""
    return engine.storage.shown

