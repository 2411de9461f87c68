"""`search:` blocks: the space an Optuna search samples candidate conditions from, its objective,
sampler, budget, dev/test splits and storage (the engine is workbench/search/).

    search:
      space:
        stimulus: {family: emotionprompt}     # or [EP01, NP02, none]; `none`: no stimulus
        stack: 2                              # up to 2 distinct stimuli a candidate (default 1)
        placement: [suffix, prefix]
        params: {level: {low: 1, high: 5}}    # stimulus parameters: int range, float range or a list
        heart: {rounds: 2, mode: oracle, emotions: [anger, happiness]}   # one categorical per round
        model: {temperature: {low: 0.0, high: 1.0}}
      objective: score                        # or [score, tokens]: a Pareto front of both
      trials: 20
      dev: 20
      test: 40

A candidate is a condition named from its values as a sweep names its conditions
(`EP02.suffix.level=3`, `heart=anger-happiness`), so planting by name and the log read alike. A
stack of stimuli joins their ids with `+` in the space's order (`EP02+EP07.suffix`): each slot of
the stack is a categorical (`stimulus`, `stimulus.1`, ...; `none` allowed after the first), and
slots that repeat a stimulus or list the same ones in another order make the same candidate.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..core.schema import Name, Strict
from .sweep import _UNSAFE, condition_name

NONE = "none"  # the stimulus choice that adds no stimulus
# Sampler names a study may write; any other class of optuna.samplers may be named too.
SAMPLER_ALIASES = {"tpe": "TPESampler", "grid": "GridSampler", "random": "RandomSampler", "brute_force": "BruteForceSampler"}
# Each objective of a search and Optuna's direction for it: the mean dev score, and the mean
# tokens (prompt and completion, over every call) a dev trial costs.
OBJECTIVES = {"score": "maximize", "tokens": "minimize"}


def default_journal(db: Path, name: str) -> Path:
    """Where the search `name` keeps its trials when its study names no storage: a journal file
    beside the log `db` (the engine writes it, reports read it)."""
    return Path(f"{db}.search") / f"{_UNSAFE.sub('_', name)}.journal"
MAX_STACK = 5  # the most stimuli one candidate may stack
# Samplers of optuna.samplers that optimise a single objective only (they raise when asked for several).
SINGLE_OBJECTIVE_SAMPLERS = ("CmaEsSampler",)
# The most candidates a categorical space may hold when grid search or planting must list them all.
MAX_LISTED = 10_000


class Range(Strict):
    """An int range when both ends (and the step) are written as whole numbers (`1`, not `1.0`), else a float range."""

    low: int | float
    high: int | float
    step: int | float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"needs finite low <= high; got low {self.low}, high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step if self.step is not None else 0))


Choice = Range | list[Any]


class StimulusChoice(Strict):
    family: Name
    none: bool = False  # also try no stimulus


class HeartSpace(Strict):
    """A HEART schedule: one emotion per feedback round, each round a categorical."""

    rounds: int = Field(ge=1, le=10)
    mode: Literal["oracle", "verifier_free"] = "oracle"
    emotions: list[Name] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)  # other solver_params of the heart loop (final, template...)

    @field_validator("params")
    @classmethod
    def _not_the_schedule(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(value) & {"rounds", "mode", "schedule", "feedback"})
        if taken:
            raise ValueError(f"{taken[0]!r} is set by the search (rounds, mode, schedule); remove it from params")
        return value


class SearchSpace(Strict):
    stimulus: StimulusChoice | list[Name] | None = None
    stack: int = Field(1, ge=1, le=MAX_STACK, strict=True)  # up to this many distinct stimuli a candidate, in the space's order
    placement: list[Name] = Field(default_factory=list)
    params: dict[str, Choice] = Field(default_factory=dict)  # the stimulus's parameters (SAC level, Big Five intensity)
    heart: HeartSpace | None = None
    model: dict[str, Choice] = Field(default_factory=dict)  # model parameters (temperature, top_p...)

    @model_validator(mode="after")
    def _something(self) -> SearchSpace:
        if self.stimulus is None and self.heart is None and not self.model:
            raise ValueError("the space needs `stimulus`, `heart` or `model` to search")
        if self.stimulus is None and (self.placement or self.params):
            raise ValueError("`placement` and `params` choose how a stimulus is placed: add `stimulus`")
        for key, choice in {**self.params, **self.model}.items():
            if isinstance(choice, list) and not choice:
                raise ValueError(f"{key!r} needs at least one value")
        return self

    @field_validator("stack")
    @classmethod
    def _stacks_stimuli(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and info.data.get("stimulus") is None:
            raise ValueError("`stack` stacks stimuli: add `stimulus`")
        return value


class BaselineSpec(Strict):
    """An optimised-instruction baseline (workbench/search/baseline.py): a DSPy optimiser tunes a
    program's instruction on the dev split, on the study's first model; the instruction it finds is
    a condition the confirmation runs beside the control and the winner."""

    optimizer: Literal["copro", "miprov2"]
    program: Name = "predict"  # a registered DSPy program (workbench/solvers/dspy_programs.py)
    breadth: int = Field(2, ge=2, le=20, strict=True)  # COPRO: instructions proposed per round (DSPy needs more than 1)
    depth: int = Field(1, ge=1, le=10, strict=True)  # COPRO: rounds of proposals
    candidates: int = Field(2, ge=1, le=20, strict=True)  # MIPROv2: instructions proposed (num_candidates)
    trials: int = Field(2, ge=1, le=100, strict=True)  # MIPROv2: its own search's trials (num_trials)
    temperature: float | None = Field(None, ge=0, le=2)  # the proposals' temperature; default the model's own params

    @field_validator("program")
    @classmethod
    def _known_program(cls, value: str) -> str:
        from ..solvers.dspy_programs import DSPY_PROGRAMS

        if value not in DSPY_PROGRAMS:
            raise ValueError(DSPY_PROGRAMS.unknown_message(value))
        return value


class SearchSpec(Strict):
    space: SearchSpace
    # `score`: the mean score on the dev split (the study's errors and no_answer policies); or a list
    # of OBJECTIVES, score among them: a multi-objective search, its Pareto front reported
    objective: str | list[str] = "score"
    # counts are whole numbers as written: `20`, not `20.0` or "20"
    sampler: Name = "tpe"  # tpe, grid, random, brute_force, or a class of optuna.samplers (seeded by the study's seed)
    trials: int = Field(20, ge=1, le=100_000, strict=True)
    dev: int = Field(ge=2, strict=True)  # examples of each task the candidates are scored on
    test: int = Field(ge=2, strict=True)  # other examples of each task the winner and the control are confirmed on
    storage: str | None = None  # default: <log>.search/<study name>.journal; or an Optuna storage URL
    level: float = Field(0.95, gt=0, lt=1)  # the confirmation's interval level
    pruning: bool = False  # stop a candidate whose dev examples so far are worse than the control's (one-sided Wilcoxon)
    prune_p: float = Field(0.1, gt=0, lt=1)  # the p-value below which it stops
    baseline: BaselineSpec | None = None  # a DSPy-optimised instruction, confirmed beside the winner

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        import optuna  # here, not at import: loading a study without search needs no optuna

        name = SAMPLER_ALIASES.get(value, value)
        found = getattr(optuna.samplers, name, None)
        if not (isinstance(found, type) and issubclass(found, optuna.samplers.BaseSampler)) or name.startswith("Base"):
            raise ValueError(f"unknown sampler {value!r} (allowed: {', '.join(SAMPLER_ALIASES)}, or a class of optuna.samplers)")
        return value

    @field_validator("sampler")
    @classmethod
    def _samples_every_objective(cls, value: str, info: ValidationInfo) -> str:
        objectives = objectives_of(info.data.get("objective", "score"))
        if len(objectives) > 1 and SAMPLER_ALIASES.get(value, value) in SINGLE_OBJECTIVE_SAMPLERS:
            raise ValueError(f"sampler {value!r} optimises one objective; {list(objectives)} needs another (tpe, random, NSGAIISampler...)")
        return value

    @field_validator("objective", mode="before")
    @classmethod
    def _known_objectives(cls, value: Any) -> Any:
        names = value if isinstance(value, list) else [value]
        allowed = ", ".join(OBJECTIVES)
        for name in names:
            if not (isinstance(name, str) and name in OBJECTIVES):
                raise ValueError(f"unknown objective {name!r} (allowed: {allowed}, or a list of them such as [score, tokens])")
        if len(set(names)) != len(names) or "score" not in names:  # the winner is the best score (of the front)
            raise ValueError(f"the objectives name each of {allowed} at most once, score among them; got {value!r}")
        return value

    @field_validator("pruning")
    @classmethod
    def _prunes_one_objective(cls, value: bool, info: ValidationInfo) -> bool:
        if value and len(objectives_of(info.data.get("objective", "score"))) > 1:
            raise ValueError("Optuna cannot prune a search of several objectives: set `pruning: false` or one `objective`")
        return value

    @property
    def objectives(self) -> tuple[str, ...]:
        """The objectives in the order Optuna gets their values."""
        return objectives_of(self.objective)

    @model_validator(mode="after")
    def _grid_is_finite(self) -> SearchSpec:
        if SAMPLER_ALIASES.get(self.sampler, self.sampler) in ("GridSampler", "BruteForceSampler"):
            ranged = [k for k, c in {**self.space.params, **self.space.model}.items() if isinstance(c, Range) and not c.is_int]
            if ranged:
                raise ValueError(f"sampler {self.sampler!r} needs a finite space; {ranged[0]!r} is a float range (list its values)")
        return self


def objectives_of(objective: str | list[str]) -> tuple[str, ...]:
    return tuple(objective) if isinstance(objective, list) else (objective,)


def stimulus_ids(space: SearchSpace, family_ids: list[str]) -> list[str]:
    """The stimulus choices (ids and `none`), a family's listed by the caller from the library."""
    if space.stimulus is None:
        return []
    if isinstance(space.stimulus, StimulusChoice):
        return family_ids + ([NONE] if space.stimulus.none else [])
    return list(space.stimulus)


def stimulus_slots(space: SearchSpace, ids: list[str]) -> dict[str, list[str]]:
    """The categorical of each slot of the stack: the first over the stimulus choices, each later
    one over them and `none` (a shorter stack)."""
    if not ids:
        return {}
    later = ids if NONE in ids else [*ids, NONE]
    return {"stimulus": ids, **{f"stimulus.{slot}": later for slot in range(1, space.stack)}}


def stacked(space: SearchSpace, values: dict[str, Any]) -> list[str]:
    """The distinct stimuli a candidate's slots chose, in the space's order (a list's order, a
    family's ids in id order, as the library lists them), so one combination has one name."""
    chosen = {v for k, v in values.items() if k == "stimulus" or k.startswith("stimulus.")} - {NONE}
    return sorted(chosen, key=space.stimulus.index) if isinstance(space.stimulus, list) else sorted(chosen)


def candidate(space: SearchSpace, values: dict[str, Any], base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The study-file condition a candidate's values make, and its model parameters. `values` holds
    `stimulus` (and `stimulus.<slot>` for a stack), `placement`, `param.<key>`, `heart.<round>`,
    `model.<key>` as the space has them. Stacked stimuli share the placement and parameters and
    apply in the space's order (as a condition's `stimuli` list stacks)."""
    parts: list[str] = []
    condition: dict[str, Any] = {}
    stack = stacked(space, values)
    if stack:
        params = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("param.")}
        placed = {"placement": values["placement"]} if "placement" in values else {}
        condition["stimuli"] = [{"id": stimulus, "params": params, **placed} for stimulus in stack]
        parts.append(condition_name("+".join(stack), values.get("placement", ""), None, None, params))
    elif "stimulus" in values:
        parts.append(NONE)
    if space.heart is not None:
        steps = [values[f"heart.{r}"] for r in range(space.heart.rounds)]
        condition["solver"] = "heart"
        condition["solver_params"] = {**space.heart.params, "rounds": space.heart.rounds, "mode": space.heart.mode,
                                      "schedule": {"name": "sequence", "steps": steps}}
        parts.append("heart=" + "-".join(steps))
    model = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("model.")}
    parts += [f"{k}={v}" for k, v in model.items()]
    condition["name"] = ".".join(parts) or NONE
    return {"name": condition.pop("name"), **condition}, {**base, **model}


def categorical_values(space: SearchSpace, family_ids: list[str]) -> dict[str, list[Any]] | None:
    """Every value of each dimension when all are finite (lists or int ranges with a step of 1), else None."""
    dims: dict[str, list[Any]] = dict(stimulus_slots(space, stimulus_ids(space, family_ids)))
    if space.placement:
        dims["placement"] = list(space.placement)
    for prefix, choices in (("param", space.params), ("model", space.model)):
        for key, choice in choices.items():
            if isinstance(choice, Range):
                if not choice.is_int:
                    return None
                dims[f"{prefix}.{key}"] = list(range(int(choice.low), int(choice.high) + 1, int(choice.step or 1)))
            else:
                dims[f"{prefix}.{key}"] = list(choice)
    if space.heart is not None:
        dims.update({f"heart.{r}": list(space.heart.emotions) for r in range(space.heart.rounds)})
    return dims


def candidate_names(space: SearchSpace, family_ids: list[str]) -> set[str] | None:
    """The names of every candidate of a finite space of at most MAX_LISTED candidates, else None."""
    dims = categorical_values(space, family_ids)
    if dims is None or math.prod(len(v) for v in dims.values()) > MAX_LISTED:
        return None
    return {candidate(space, dict(zip(dims, combo)), {})[0]["name"] for combo in itertools.product(*dims.values())}
