"""`search:` blocks: the space an Optuna search samples candidate conditions from, its objective,
sampler, budget, dev/test splits and storage (the engine is workbench/search/).

    search:
      space:
        stimulus: {family: emotionprompt}     # or [EP01, NP02, none]; `none`: no stimulus
        placement: [suffix, prefix]
        params: {level: {low: 1, high: 5}}    # stimulus parameters: int range, float range or a list
        heart: {rounds: 2, mode: oracle, emotions: [anger, happiness]}   # one categorical per round
        model: {temperature: {low: 0.0, high: 1.0}}
      trials: 20
      dev: 20
      test: 40

A candidate is a condition named from its values as a sweep names its conditions
(`EP02.suffix.level=3`, `heart=anger-happiness`), so planting by name and the log read alike.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..core.schema import Name, Strict
from .sweep import condition_name

NONE = "none"  # the stimulus choice that adds no stimulus
# Sampler names a study may write; any other class of optuna.samplers may be named too.
SAMPLER_ALIASES = {"tpe": "TPESampler", "grid": "GridSampler", "random": "RandomSampler", "brute_force": "BruteForceSampler"}
OBJECTIVES = ("score",)
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
    objective: Literal["score"] = "score"  # the mean score on the dev split (the study's errors and no_answer policies)
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

    @model_validator(mode="after")
    def _grid_is_finite(self) -> SearchSpec:
        if SAMPLER_ALIASES.get(self.sampler, self.sampler) in ("GridSampler", "BruteForceSampler"):
            ranged = [k for k, c in {**self.space.params, **self.space.model}.items() if isinstance(c, Range) and not c.is_int]
            if ranged:
                raise ValueError(f"sampler {self.sampler!r} needs a finite space; {ranged[0]!r} is a float range (list its values)")
        return self


def stimulus_ids(space: SearchSpace, family_ids: list[str]) -> list[str]:
    """The stimulus choices (ids and `none`), a family's listed by the caller from the library."""
    if space.stimulus is None:
        return []
    if isinstance(space.stimulus, StimulusChoice):
        return family_ids + ([NONE] if space.stimulus.none else [])
    return list(space.stimulus)


def candidate(space: SearchSpace, values: dict[str, Any], base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The study-file condition a candidate's values make, and its model parameters. `values` holds
    `stimulus`, `placement`, `param.<key>`, `heart.<round>`, `model.<key>` as the space has them."""
    parts: list[str] = []
    condition: dict[str, Any] = {}
    stimulus = values.get("stimulus")
    if stimulus is not None and stimulus != NONE:
        params = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("param.")}
        ref: dict[str, Any] = {"id": stimulus, "params": params}
        if "placement" in values:
            ref["placement"] = values["placement"]
        condition["stimuli"] = [ref]
        parts.append(condition_name(stimulus, values.get("placement", ""), None, None, params))
    elif stimulus == NONE:
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
    dims: dict[str, list[Any]] = {}
    ids = stimulus_ids(space, family_ids)
    if ids:
        dims["stimulus"] = ids
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
