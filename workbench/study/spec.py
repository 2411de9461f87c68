"""Study files: parse YAML safely, validate with pydantic, check every id against the registries.

Any problem becomes a UserError naming the file, the field path and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import UserError, validation_error
from ..core.input_files import load_yaml, parse_yaml, text_as_file, user_path
from ..core.optuna_storage import check_storage
from ..core.schema import Name, Seed, Strict
from ..core.text import NAME_MAX
from ..plugins import load_builtins
from ..providers.credentials import find_credential
from ..providers.spec import ModelSpec
from ..scoring.extract import DEFAULT_EXTRACTOR, EXTRACTORS
from ..scoring.scorers import SCORERS, extracts
from ..solvers.base import DEFAULT_SOLVER, SOLVERS, consumes_gold, prepare_solver
from ..solvers.dspy_programs import DSPY_PROGRAMS
from ..stimuli import AppliedStimulus, StimulusLibrary, builtin_library, choose_solver, resolve
from ..tasks import DEFAULT_SHOTS, TaskConfig, TaskItem, TaskSpec, resolve_task
from .search import Range, SearchSpec, candidate_names, stimulus_ids
from .sweep import SweepSpec, expand_all


# The most trials one run may plan (models x conditions x examples x repeats). A run expands its
# trials up front at about 5.4 KB each (measured, issue 16), so 2,000,000 stay near 11 GB; raise it
# once trials are expanded as a stream.
MAX_TRIALS = 2_000_000


def model_spec(**fields: Any) -> ModelSpec:
    """A ModelSpec from command-line values (`models check`): a bad value is a UserError naming the
    option (e.g. --api-base), not a traceback."""
    try:
        spec = ModelSpec(**fields)
    except ValidationError as exc:
        error = validation_error(exc, model=ModelSpec)
        raise UserError(error.detail, field=_option(error.field)) from None
    found = find_credential(spec.params, spec.api_base)
    if found:
        raise UserError(found.message, field=_option(found.field.split(".")[0]))
    return spec


def _option(field: str | None) -> str | None:
    return f"--{field.replace('_', '-')}" if field else None


class StimulusRef(Strict):
    id: Name
    placement: str | None = None
    separator: Literal["none", "space", "newline"] | None = None
    variant: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _params_at_top_level(cls, value: Any) -> Any:
        """`{id: SAC/warmth, level: 5}`: keys that are not the reference's own are its parameters."""
        if not isinstance(value, dict) or not isinstance(value.get("params", {}), dict):
            return value
        extra = {k: v for k, v in value.items() if k not in cls.model_fields}
        if not extra:
            return value
        given = value.get("params") or {}
        twice = sorted(set(extra) & set(given))
        if twice:
            raise ValueError(f"parameter {twice[0]!r} is given twice (at the top level and under params)")
        return {**{k: v for k, v in value.items() if k in cls.model_fields}, "params": {**given, **extra}}


class ConditionSpec(Strict):
    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[A-Za-z0-9_.:+=\-]+$")
    stimuli: list[Name | StimulusRef] = Field(default_factory=list)
    solver: str | None = None  # a registered solver; default: the one the stimuli need, else single_turn
    solver_params: dict[str, Any] = Field(default_factory=dict)

    def refs(self) -> list[StimulusRef]:
        return [StimulusRef(id=s) if isinstance(s, str) else s for s in self.stimuli]


class TaskRef(Strict):
    task: Name
    n: int | Literal["all"] = 20  # `all`: every example (TaskSpec.all_examples), resolved to the number when the study loads
    shots: int = Field(0, ge=0)  # few-shot demos per query; `true` means DEFAULT_SHOTS (5, as the source papers)
    seed: Seed | None = None
    path: str | None = None  # data file (relative to the study file): original data or a custom task
    variant: str | None = None  # a named instruction variant, e.g. "ape"
    instruction: str | None = None  # the instruction text of a custom task (or to override one)
    metric: str | None = None  # a registered metric (required for custom/ tasks)
    parser: str | None = None  # a registered answer parser
    scorer: str | None = None  # a scorer profile, e.g. "negativeprompt-v1"
    # Filled in when the study is loaded: a fingerprint of the examples and demos it draws, so the
    # run id (and the logged spec) change when the data do. Set in a study file, it must match.
    data_sha256: str | None = None
    program: str | None = None  # a registered DSPy program answers this task (workbench.solvers.dspy_programs)
    extractor: str | None = None  # the answer extractor of this task (workbench.scoring.extract); None: the study's

    @field_validator("n", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"must be a whole number of at least 1, or `all` (every example the task has); got {value!r}")

    @field_validator("shots", mode="before")
    @classmethod
    def _shots_flag(cls, value: Any) -> Any:
        return {True: DEFAULT_SHOTS, False: 0}.get(value, value) if isinstance(value, bool) else value


# The scale a `rating:` block gets when it names none. EmotionPrompt's human study (Li et al. 2023,
# arXiv:2307.11760, v7) had 106 participants rate outputs on "performance, truthfulness, and
# responsibility" (its abstract, verbatim); the 1-5 range and the end labels are authored by the
# workbench (the paper's tables could not be read: ../shared/reference/protocols.md, section 1).
EMOTIONPROMPT_SCALES = ("performance", "truthfulness", "responsibility")
RATING_MODES = ("single", "pair")


class RatingScale(Strict):
    """One scale of a rating block: whole points from `min` to `max`; `labels` names some or all points."""

    name: Name
    min: int = 1
    max: int = 5
    labels: dict[int, str] = Field(default_factory=dict)

    @field_validator("min", "max", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number; got {value!r}")
        return value

    @model_validator(mode="after")
    def _points(self) -> RatingScale:
        if not self.min < self.max <= self.min + 100:
            raise ValueError(f"max must be above min and at most min + 100 points; got min {self.min}, max {self.max}")
        outside = sorted(k for k in self.labels if not self.min <= k <= self.max)
        if outside:
            raise ValueError(f"labels name point {outside[0]}, outside the scale ({self.min} to {self.max})")
        return self

    def points(self) -> list[int]:
        return list(range(self.min, self.max + 1))


def _default_scales() -> list[RatingScale]:
    return [RatingScale(name=name, labels={1: "very poor", 5: "very good"}) for name in EMOTIONPROMPT_SCALES]


class RatingSpec(Strict):
    """`rating:` in a study file: blind human rating of the run's outputs (the UI's Rate page).

    conditions, tasks: which to rate (default all); mode `pair` shows each rated condition's output
    beside the control's on the same example, sides drawn at random; seed: the order's (default the
    study's seed)."""

    scales: list[RatingScale] = Field(default_factory=_default_scales, min_length=1)
    mode: Literal["single", "pair"] = "single"
    conditions: list[str] | None = None
    tasks: list[str] | None = None
    seed: Seed | None = None
    agreement: Literal["interval", "ordinal"] = "interval"  # Krippendorff's alpha's level of measurement

    @model_validator(mode="after")
    def _unique_scales(self) -> RatingSpec:
        names = [s.name for s in self.scales]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scale names must be unique; repeated: {', '.join(dupes)}")
        return self


# What the UI's Rate page offers a run without a rating block.
RATING_EXAMPLE = "rating:\n  scales:\n    - {name: quality, min: 1, max: 5, labels: {1: very poor, 5: very good}}\n  mode: single"


class NoRatingBlock(UserError):
    """A run's study has no `rating:` block: nothing of it is rated."""


class StudySpec(Strict):
    name: Name  # printable: the run id, the terminal and the exports show it; no file is named by it
    description: str = ""
    models: list[ModelSpec] = Field(min_length=1)
    conditions: list[ConditionSpec] = Field(default_factory=list)
    sweep: SweepSpec | list[SweepSpec] | None = None  # expands into more conditions (workbench/sweep.py)
    tasks: list[TaskRef] = Field(min_length=1)
    repeats: int = Field(1, ge=1)  # the trials it plans are at most MAX_TRIALS
    seed: Seed = 0
    concurrency: int = Field(4, ge=1, le=256)
    control: str | None = None
    errors: Literal["wrong", "exclude"] = "wrong"
    no_answer: Literal["wrong", "exclude"] = "wrong"  # trials whose response holds no answer of the task's type
    extractor: str = DEFAULT_EXTRACTOR  # how a metric-scored task's answer is read from the response
    stimulus_files: list[str] = Field(default_factory=list)
    judge: ModelSpec | None = None  # the model that grades judge-scored tasks (any model id)
    rating: RatingSpec | None = None  # blind human rating of the outputs (the UI's Rate page)
    search: SearchSpec | None = None  # an Optuna search over candidate conditions (workbench/search/)

    @model_validator(mode="after")
    def _unique_names(self) -> StudySpec:
        if not self.conditions and not self.sweeps():
            raise ValueError("a study needs `conditions` or a `sweep`")
        names = [c.name for c in self.conditions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"condition names must be unique; repeated: {', '.join(dupes)}")
        model_ids = [m.id for m in self.models]
        if len(set(model_ids)) != len(model_ids):
            raise ValueError("model ids must be unique")
        if self.control is not None and self.control not in names and not self.sweeps():
            raise ValueError(f"control {self.control!r} is not a condition (conditions: {', '.join(names)})")
        return self

    def sweeps(self) -> list[SweepSpec]:
        return [] if self.sweep is None else (list(self.sweep) if isinstance(self.sweep, list) else [self.sweep])

    def canonical_json(self) -> str:
        """The logged spec, which the run id hashes. `rating` appears only when a study sets it, so
        the run identity of a study without one is what it was before the key existed. `search`
        never appears: it chooses which conditions a search runs, each run's spec lists them."""
        dumped = self.model_dump(mode="json")
        if dumped.get("rating") is None:
            dumped.pop("rating", None)
        dumped.pop("search", None)
        return json.dumps(dumped, sort_keys=True, separators=(",", ":"))


def control_of(conditions: list[ConditionSpec], control: str | None) -> str:
    if control:
        return control
    plain = [c.name for c in conditions if not c.stimuli]
    return "control" if "control" in plain else (plain[0] if plain else conditions[0].name)


@dataclass(frozen=True)
class TaskSample:
    """A task entry's examples and demo pool, drawn once when the study is resolved, with the
    task, n, shots and seed they were drawn for."""

    task: TaskSpec
    n: int
    shots: int
    seed: int
    items: tuple[TaskItem, ...]
    pool: tuple[TaskItem, ...]

    def digest(self) -> str:
        """The entry's data_sha256: 16 hex digits over the ids (content fingerprints) drawn."""
        return hashlib.sha256("\n".join(item.id for item in [*self.items, *self.pool]).encode()).hexdigest()[:16]


def task_seed(ref: TaskRef, study_seed: int) -> int:
    return study_seed if ref.seed is None else ref.seed


@dataclass(frozen=True)
class ConditionSolver:
    """What answers a condition's trials: its solver and parameters, and whether they read gold labels."""

    solver: str
    params: tuple[tuple[str, Any], ...]
    consumes_gold: bool


def task_dspy_solver(task: TaskSpec) -> ConditionSolver | None:
    """A task's DSPy program, which answers it in every condition instead of the conditions' solvers."""
    return ConditionSolver("dspy", (("program", task.program),), False) if task.program else None


class ResolvedStudy(BaseModel):
    """A validated study with every reference resolved against the registries.

    `condition_specs` are all conditions as they run: the study's own and those its sweep
    expands to, each with its solver decided. `samples` holds each task's draw, the one its
    data_sha256 fingerprints and its trials run."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    spec: StudySpec
    path: str
    tasks: dict[str, TaskSpec]
    conditions: dict[str, tuple[AppliedStimulus, ...]]
    condition_specs: tuple[ConditionSpec, ...] = ()
    samples: dict[str, TaskSample] = Field(default_factory=dict)

    @property
    def control_name(self) -> str:
        return control_of(list(self.condition_specs), self.spec.control)

    def solver_of(self, condition: str, task: TaskSpec | None = None) -> ConditionSolver:
        """The solver of `condition` (on `task`, whose DSPy program, if it has one, replaces it)."""
        if task is not None and task.program:
            return task_dspy_solver(task)  # type: ignore[return-value]
        spec = next(c for c in self.condition_specs if c.name == condition)
        solver = spec.solver or DEFAULT_SOLVER
        return ConditionSolver(solver, tuple(sorted(spec.solver_params.items())), consumes_gold(solver, spec.solver_params))


    def stimuli_sha256(self) -> str:
        """16 hex digits over what the conditions send besides the task data, as data_sha256 is
        for the examples: each condition's applied stimuli (ids, versions, texts, parts, params,
        placements, the HEART phrases its bank draws included) and its solver plan (solver and
        parameters, with the templates and prompts a plan carries)."""
        return _fingerprint(
            [
                {"condition": c.name, "solver": c.solver, "solver_params": c.solver_params, "stimuli": [s.model_dump(mode="json") for s in self.conditions[c.name]]}
                for c in self.condition_specs
            ]
        )

    def spec_hash(self) -> str:
        """The run's identity: the study spec as resolved (data_sha256 included) and stimuli_sha256."""
        return _fingerprint([self.spec.canonical_json(), self.stimuli_sha256()])

    @property
    def warnings(self) -> list[str]:
        """What the study may not do as meant (it runs anyway): see study_warnings."""
        return study_warnings(self.spec, self.path)

    def extractor_of(self, ref: TaskRef) -> str | None:
        """The extractor that scores a task entry's trials; None for a task its scorer grades
        without one (a judge)."""
        return (ref.extractor or self.spec.extractor) if extracts(self.tasks[ref.task]) else None

    def sample_of(self, ref: TaskRef) -> tuple[tuple[TaskItem, ...], tuple[TaskItem, ...]]:
        """The examples and demo pool of a task entry: the draw made when the study was resolved;
        drawn anew only if the study was changed since (re-seeded, as simulations do, or a task replaced)."""
        seed = task_seed(ref, self.spec.seed)
        sample = self.samples.get(ref.task)
        if sample is None or sample.task is not self.tasks[ref.task] or (sample.n, sample.shots, sample.seed) != (ref.n, ref.shots, seed):
            sample = draw_sample(self.tasks[ref.task], ref, seed)
        return sample.items, sample.pool


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def study_warnings(spec: StudySpec, label: str) -> list[str]:
    """Repeats of a model sampled at temperature 0: greedy decoding gives every repeat the same
    answer whatever its seed, so they add calls, not samples. (Simulated models draw per repeat.)"""
    if spec.repeats == 1:
        return []
    return [
        f"{label}: models[{index}].params.temperature: repeats: {spec.repeats} at temperature 0 on {model.id}: greedy decoding answers "
        "every repeat alike (its seed changes nothing), so the repeats add calls, not samples; raise the temperature or set repeats: 1"
        for index, model in enumerate(spec.models)
        if model.params.get("temperature") == 0 and not model.id.startswith("sim/")
    ]


def draw_sample(task: TaskSpec, ref: TaskRef, seed: int) -> TaskSample:
    items, pool = task.sample(ref.n, ref.shots, seed)
    return TaskSample(task, ref.n, ref.shots, seed, tuple(items), tuple(pool))


def load_study(path: str | Path, library: StimulusLibrary | None = None) -> ResolvedStudy:
    """Read and validate a study file; raise UserError on the first problem."""
    return resolve_study(read_spec(path), str(path), library)


def read_spec(path: str | Path) -> StudySpec:
    """A study file's spec, its fields validated, nothing it names resolved yet."""
    return spec_of(load_yaml(path), str(path))


def study_from_text(text: str, label: str, library: StimulusLibrary | None = None) -> ResolvedStudy:
    """A study's text validated as if read from the file `label` (where it will be saved: relative
    paths in it resolve from there), within the caps and with the messages of `load_study`."""
    return resolve_study(spec_of(parse_yaml(text_as_file(text, label), label), label), label, library)


def study_mapping(raw: Any, label: str) -> dict[str, Any]:
    """A parsed study file's top level, which must be a mapping."""
    if not isinstance(raw, dict):
        raise UserError("a study file must be a mapping with name, models, conditions and tasks", file=label)
    return raw


def spec_of(raw: Any, label: str) -> StudySpec:
    """A parsed study file's spec (plain data from the file `label`), its fields validated."""
    try:
        return StudySpec.model_validate(study_mapping(raw, label))
    except ValidationError as exc:
        raise validation_error(exc, file=label, model=StudySpec) from None


def _resolve_task(ref: TaskRef, index: int, label: str, base: Path, study_seed: int) -> tuple[TaskSpec, TaskRef, TaskSample]:
    """The configured task, its data read and its sample drawn now, so a bad data file fails
    before anything is written: with the data file and line when the file is at fault. Returns
    the task, the entry with its data fingerprint (and `n: all` as its number) and the draw the
    fingerprint covers."""
    try:
        task = resolve_task(TaskConfig.of(ref), base)
        if ref.n == "all":
            ref = ref.model_copy(update={"n": task.all_examples(ref.shots)})
        sample = draw_sample(task, ref, task_seed(ref, study_seed))
    except UserError as exc:
        if exc.file is not None:
            raise UserError(f"{exc.detail} (tasks[{index}] of {label})", file=exc.file, field=exc.field) from None
        raise UserError(exc.detail, file=label, field=f"tasks[{index}].{exc.field or 'task'}") from None
    digest = sample.digest()
    if ref.data_sha256 is not None and ref.data_sha256 != digest:
        raise UserError(f"the task's examples differ from those this study recorded (data_sha256 {digest}, recorded {ref.data_sha256})", file=label, field=f"tasks[{index}].data_sha256")
    return task, ref.model_copy(update={"data_sha256": digest}), sample


def study_library(spec: StudySpec, label: str, library: StimulusLibrary | None = None) -> StimulusLibrary:
    """The stimulus library a study's conditions draw from: `library` (the built-in one) plus the
    study's stimulus files, found relative to the study file."""
    library = library or builtin_library()
    if not spec.stimulus_files:
        return library
    base = Path(label).parent
    files = [user_path(p, base=base, field=f"stimulus_files[{i}]", file=label, what="stimulus file") for i, p in enumerate(spec.stimulus_files)]
    return library.with_files(files)


def resolve_study(spec: StudySpec, label: str, library: StimulusLibrary | None = None) -> ResolvedStudy:
    _check_credentials(spec, label)
    load_builtins()  # the solvers, task sources and providers the study names
    library = study_library(spec, label, library)
    base = Path(label).parent
    tasks: dict[str, TaskSpec] = {}
    samples: dict[str, TaskSample] = {}
    refs: list[TaskRef] = []
    for index, ref in enumerate(spec.tasks):
        if ref.task in tasks:
            raise UserError(f"task {ref.task!r} is listed twice", file=label, field=f"tasks[{index}].task")
        tasks[ref.task], fingerprinted, samples[ref.task] = _resolve_task(ref, index, label, base, spec.seed)
        refs.append(fingerprinted)
        if ref.program is not None:  # the study names the DSPy program that answers this task
            if ref.program not in DSPY_PROGRAMS:
                raise UserError(DSPY_PROGRAMS.unknown_message(ref.program), file=label, field=f"tasks[{index}].program")
            tasks[ref.task] = tasks[ref.task].model_copy(update={"program": ref.program})
    spec = spec.model_copy(update={"tasks": refs})
    all_conditions, fields = _with_sweeps(spec, library, label)
    conditions: dict[str, tuple[AppliedStimulus, ...]] = {}
    condition_specs: list[ConditionSpec] = []
    for condition, where in zip(all_conditions, fields):
        applied = []
        for s_index, ref in enumerate(condition.refs()):
            field = f"{where}.stimuli[{s_index}]"
            try:
                library.get(ref.id)
            except UserError as exc:  # the library names its own field; here the reference is the field
                raise UserError(exc.detail, file=label, field=field) from None
            try:
                applied.append(
                    resolve(library, ref.id, placement=ref.placement, separator=ref.separator, variant=ref.variant, params=ref.params)
                )
            except UserError as exc:
                raise UserError(exc.detail, file=label, field=f"{field}.{exc.field}" if exc.field else field) from None
        solver = _program_of(condition, applied, label, where)
        try:
            plan, with_program = prepare_solver(solver, condition.solver_params, tuple(applied), library)
        except UserError as exc:
            raise UserError(exc.detail, file=label, field=f"{where}.{exc.field}" if exc.field else where) from None
        conditions[condition.name] = with_program
        condition_specs.append(condition.model_copy(update={"solver": solver, "solver_params": plan}))
    searched = _check_search(spec, library, label)
    for where, model in _named_models(spec):
        for key in ("accuracy", "answer_format"):
            for name in (getattr(model.simulate, key) if model.simulate else {}):
                if name not in conditions and name not in searched:
                    raise UserError(
                        f"unknown condition {name!r} (conditions: {', '.join(conditions)})",
                        file=label,
                        field=f"{where}.simulate.{key}",
                    )
    _check_programs_and_judge(spec, tasks, condition_specs, label)
    _check_rating(spec, condition_specs, label)
    _check_extractors(spec, label)
    _check_trial_count(spec, samples, len(condition_specs), label)
    return ResolvedStudy(spec=spec, path=label, tasks=tasks, conditions=conditions, condition_specs=tuple(condition_specs), samples=samples)


def _check_search(spec: StudySpec, library: StimulusLibrary, label: str) -> set[str]:
    """The search block's stimuli, placements and HEART emotions must exist; returns the names of
    its candidates when the space is finite (a simulated model may plant accuracy on them)."""
    if spec.search is None:
        return set()
    for index, ref in enumerate(spec.tasks):
        if spec.search.dev + spec.search.test > int(ref.n):
            raise UserError(f"the search's dev ({spec.search.dev}) and test ({spec.search.test}) splits need {spec.search.dev + spec.search.test} "
                            f"of the task's examples; it draws n={ref.n}: raise tasks[{index}].n or lower them", file=label, field="search.test")
    if spec.search.storage is not None:  # a password in a storage URL would be logged and shown: it comes from elsewhere
        check_storage(spec.search.storage, file=label)  # its kind and form, without connecting
        found = find_credential({}, spec.search.storage)
        if found:
            raise UserError("the storage URL holds a credential, which would be logged and shown: give it through the environment "
                            "(PGPASSWORD or ~/.pgpass, which the PostgreSQL driver reads)", file=label, field="search.storage")
    space = spec.search.space
    where = "search.space"
    family_ids: list[str] = []
    if space.stimulus is not None and not isinstance(space.stimulus, list):
        try:
            library.family(space.stimulus.family)
        except UserError as exc:
            raise UserError(exc.detail, file=label, field=f"{where}.stimulus.family") from None
        family_ids = [item.id for item in library.items(space.stimulus.family)]
    ids = [i for i in stimulus_ids(space, family_ids) if i != "none"]
    if space.stack > 1 and space.stack > len(set(ids)):
        raise UserError(f"a stack of {space.stack} stimuli needs {space.stack} distinct ones to choose from; the space has {len(set(ids))}",
                        file=label, field=f"{where}.stack")
    # each stimulus resolved with the first value of each searched parameter (a range's low end)
    params = {key: choice.low if isinstance(choice, Range) else choice[0] for key, choice in space.params.items()}
    for index, stimulus_id in enumerate(ids):
        field = f"{where}.stimulus" if family_ids else f"{where}.stimulus[{index}]"
        try:
            resolve(library, stimulus_id, params=params)
        except UserError as exc:
            raise UserError(exc.detail, file=label, field=field) from None
    for index, placement in enumerate(space.placement):
        try:
            resolve(library, ids[0], placement=placement) if ids else None
        except UserError as exc:
            raise UserError(exc.detail, file=label, field=f"{where}.placement[{index}]") from None
    if space.heart is not None:
        heart = space.heart
        steps = (heart.emotions * heart.rounds)[: max(heart.rounds, len(heart.emotions))]
        params = {**heart.params, "rounds": len(steps), "mode": heart.mode, "schedule": {"name": "sequence", "steps": steps}}
        try:
            prepare_solver("heart", params, (), library)
        except UserError as exc:
            raise UserError(exc.detail, file=label, field=f"{where}.heart.{exc.field}" if exc.field else f"{where}.heart") from None
    return candidate_names(space, family_ids) or set()


def _named_models(spec: StudySpec) -> list[tuple[str, ModelSpec]]:
    """The study's models and its judge, each with its field path."""
    return [(f"models[{i}]", m) for i, m in enumerate(spec.models)] + ([("judge", spec.judge)] if spec.judge else [])


def _check_credentials(spec: StudySpec, label: str) -> None:
    """Keys come from the environment: a model's params or api_base carrying one stops the study
    before anything is read, run or logged."""
    for where, model in _named_models(spec):
        found = find_credential(model.params, model.api_base)
        if found:
            raise UserError(found.message, file=label, field=f"{where}.{found.field}")


def _with_sweeps(spec: StudySpec, library: StimulusLibrary, label: str) -> tuple[list[ConditionSpec], list[str]]:
    """The study's conditions and those its sweep expands to, with the field each error should name."""
    conditions = list(spec.conditions)
    fields = [f"conditions[{i}]" for i in range(len(conditions))]
    if not spec.sweeps():
        return conditions, fields
    try:
        swept = expand_all(spec.sweeps(), library, [c.name for c in conditions])
    except UserError as exc:
        raise UserError(exc.detail, file=label, field=exc.field) from None
    for raw in swept:
        where = f"sweep (condition {raw['name']})"
        try:
            conditions.append(ConditionSpec.model_validate(raw))
        except ValidationError as exc:
            raise validation_error(exc, file=label, field=where, model=ConditionSpec) from None
        fields.append(where)
    names = [c.name for c in conditions]
    if spec.control is not None and spec.control not in names:
        raise UserError(f"control {spec.control!r} is not a condition (conditions: {', '.join(names)})", file=label, field="control")
    return conditions, fields


def _program_of(condition: ConditionSpec, applied: list[AppliedStimulus], label: str, where: str) -> str:
    """The solver a condition runs: the one it names, else the one its stimuli need, else single_turn."""
    try:
        solver = choose_solver(applied, condition.solver, DEFAULT_SOLVER)
    except UserError as exc:
        raise UserError(exc.detail, file=label, field=f"{where}.{exc.field}") from None
    if solver not in SOLVERS:
        raise UserError(SOLVERS.unknown_message(solver), file=label, field=f"{where}.solver")
    return solver


def _check_programs_and_judge(spec: StudySpec, tasks: dict[str, TaskSpec], conditions: list[ConditionSpec], label: str) -> None:
    """A DSPy program that answers a task (`tasks[].program`) replaces the conditions' solvers, so
    it cannot be combined with a condition that runs another one (`solver: dspy` with a program is
    the condition-level form). A task graded by a judge needs the study to name the judge model."""
    custom = [c.name for c in conditions if c.solver != DEFAULT_SOLVER]
    for index, ref in enumerate(spec.tasks):
        program = tasks[ref.task].program
        if program is not None and program not in DSPY_PROGRAMS:  # named by the task's suite file
            raise UserError(DSPY_PROGRAMS.unknown_message(program), file=label, field=f"tasks[{index}].program")
        if program is not None and custom:
            raise UserError(
                f"task {ref.task} runs the DSPy program {program!r}, which cannot be combined with the solver of condition(s) {', '.join(custom)}",
                file=label,
                field=f"tasks[{index}].program",
            )
        if program is not None and spec.search is not None and spec.search.baseline is not None:
            raise UserError(f"task {ref.task} runs the DSPy program {program!r} in every condition, the search's baseline too: "
                            "name the program in search.baseline.program instead", file=label, field=f"tasks[{index}].program")
        if SCORERS.get(tasks[ref.task].scoring).needs_judge and spec.judge is None:
            raise UserError(
                f"task {ref.task} is graded by a judge model: add `judge: {{id: local/default}}` (any model id) to the study",
                file=label,
                field="judge",
            )


def _check_trial_count(spec: StudySpec, samples: dict[str, TaskSample], conditions: int, label: str) -> None:
    """A run expands its trials up front (study/expand.py): a plan past MAX_TRIALS is refused from
    its factors before any trial is made, rather than filling memory with no output."""
    examples = sum(len(sample.items) for sample in samples.values())
    planned = len(spec.models) * conditions * examples * spec.repeats
    if planned > MAX_TRIALS:
        raise UserError(
            f"the study plans {planned:,} trials ({len(spec.models)} model(s) x {conditions} condition(s) x {examples} example(s) x "
            f"{spec.repeats} repeat(s)); a run holds at most {MAX_TRIALS:,}: lower repeats, the tasks' n or the conditions",
            file=label,
            field="repeats",
        )


def _check_extractors(spec: StudySpec, label: str) -> None:
    """Every extractor the study names must be registered (workbench.scoring.extract.EXTRACTORS)."""
    named = [("extractor", spec.extractor)] + [(f"tasks[{i}].extractor", ref.extractor) for i, ref in enumerate(spec.tasks) if ref.extractor]
    for field, name in named:
        if name not in EXTRACTORS:
            raise UserError(EXTRACTORS.unknown_message(name), file=label, field=field)


def _check_rating(spec: StudySpec, condition_specs: list[ConditionSpec], label: str) -> None:
    """The rating block names conditions and tasks of the study; pair mode needs the control and another."""
    rating = spec.rating
    if rating is None:
        return
    conditions = [c.name for c in condition_specs]
    known = {"conditions": conditions, "tasks": [t.task for t in spec.tasks]}
    for key, names in known.items():
        for index, name in enumerate(getattr(rating, key) or []):
            if name not in names:
                raise UserError(f"unknown {key[:-1]} {name!r} (allowed: {', '.join(names)})", file=label, field=f"rating.{key}[{index}]")
    rated = rating.conditions or conditions
    control = control_of(condition_specs, spec.control)
    if rating.mode == "pair" and (control not in rated or len(set(rated)) < 2):
        raise UserError(
            f"pair mode shows each rated condition beside the control {control!r}: list the control and at least one other condition",
            file=label, field="rating.conditions",
        )
