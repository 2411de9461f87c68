"""Task suites as data: `tasks/<suite>.yaml` names each task's instruction, item source,
parser and metric; item sources are registered functions, never branches on task names.

A study refers to a task by id and may configure it (`path` to a data file, an instruction
variant, a scorer profile); `resolve_task` returns the configured spec as a new object and
checks its data before anything runs.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..scoring import gold
from ..scoring.answers import ANSWER_TYPES, CANDIDATE_SOURCES
from ..core.items import TaskItem
from ..core.references import Reference
from ..core.seeds import stable_seed
from ..core.errors import UserError, validation_error
from ..core.input_files import load_yaml, user_path
from ..scoring.extract import DEFAULT_EXTRACTOR, EXTRACTORS, score_text
from ..core.messages import Message, Messages, template_fields
from ..core.paths import data_dir
from ..plugins import load_builtins
from ..core.registry import Registry
from ..scoring.metrics import CHOICE_MATCHERS, METRICS, PARSERS
from ..scoring.task_scores import normalized_score


ItemSource = Callable[["TaskSpec", int, int], list[TaskItem]]
"""(task, n, seed) -> up to n items (fewer only when the source holds fewer), the same on every
machine for the same seed; the first k of n+m items are the k items, so demos drawn after the
examples never overlap them."""

SOURCES: Registry[ItemSource] = Registry("task item source")

Capacity = Callable[["TaskSpec"], int]
"""How many distinct items a source can give for a task (used by `tasks list`)."""

CAPACITY: Registry[Capacity] = Registry("task capacity")

DEFAULT_SHOTS = 5  # demos per query in few-shot mode, as in the source papers (NegativePrompt num_demos)
DEFAULT_SHOTS_POOL = 50  # generated demo pool per task when demos come from the item source
ALL_LIMIT = 50_000  # `n: all` takes at most this many examples (a generator may have trillions)
DEFAULT_CHOICE_PREFIX = "\n  choice: "  # BIG-bench's default line before each choice (json_task.py)


def with_choices(text: str, choices: Sequence[str], prefix: str = DEFAULT_CHOICE_PREFIX) -> str:
    """The input with its choices appended, one per line, as BIG-bench formats them."""
    return text + "".join(prefix + choice for choice in choices)


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = "You are a helpful assistant."
    user: str = "{instruction}\n\n{input}"
    demo: str = "Input: {input}\nOutput: {output}"
    demo_joiner: str = "\n\n"
    # Further named places in `user`, with their text in a plain prompt, for stimuli to fill:
    # `preamble` takes a `prefix` stimulus; a stimulus's part `slot:<name>` fills slot <name>
    # (workbench.stimuli.placements). Other names in `user` are the item's metadata fields.
    slots: dict[str, str] = Field(default_factory=dict)

    @field_validator("slots")
    @classmethod
    def _own_names(cls, slots: dict[str, str]) -> dict[str, str]:
        taken = sorted(set(slots) & {"instruction", "demos", "input"})
        if taken:
            raise ValueError(f"slot {taken[0]!r} is filled by the task itself; name another")
        return slots


class ScorerChoice(BaseModel):
    """A parser and metric a named scorer profile uses for one task."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parser: str = "raw"
    metric: str
    parser_args: dict[str, Any] = Field(default_factory=dict)
    answer_type: str = "verbatim"  # the profile's metric reads the whole response itself


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    suite: str
    name: str
    version: str
    instruction: str
    instructions: dict[str, str] = Field(default_factory=dict)  # named variants, e.g. the APE prompt
    variant: str = "original"
    metric: str
    parser: str = "first_line"
    parser_args: dict[str, Any] = Field(default_factory=dict)
    parse_targets: bool = False  # pass the gold targets through the parser too (one spelling for both)
    choice_match: str | None = None  # a CHOICE_MATCHERS name: maps an answer onto one of the item's choices
    answer_type: str = "text"  # an ANSWER_TYPES name (workbench/answers.py): where flexible extraction looks
    candidates: tuple[str, ...] = ()  # the closed label set of a `label` task
    candidates_from: str | None = None  # or a CANDIDATE_SOURCES name giving each item's candidates
    source: str | None = None  # None: the task needs a data file (`path` in the study)
    source_args: dict[str, Any] = Field(default_factory=dict)
    demo_args: dict[str, Any] | None = None  # source args of a separate demo split; None: demos follow the items
    file_source: str | None = None  # the loader used when the study gives `path`
    file_args: dict[str, Any] = Field(default_factory=dict)  # its source args (the path is added)
    file_demo_args: dict[str, Any] | None = None  # its demo split (e.g. induce), if the files have one
    profiles: dict[str, ScorerChoice] = Field(default_factory=dict)
    scorer_profile: str = "default"
    template: Template = Field(default_factory=Template)
    chance: float | None = None  # the metric's random-chance score (BIG-bench low_score)
    citation: str | None = None
    references: list[Reference] = Field(default_factory=list)  # structured: `workbench tasks cite`, references.bib
    data_citation: str | None = None
    n_available: int | None = None
    authored: bool = False  # items come from the workbench's own word lists, not a publication
    scoring: str = "metric"  # a registered scorer (workbench.scoring.scorers.SCORERS), e.g. `judge`
    scoring_args: dict[str, Any] = Field(default_factory=dict)  # its arguments, e.g. {rubric: truthfulness}
    program: str | None = None  # a registered DSPy program as the system under test (workbench.solvers.dspy_programs)

    # -- items -------------------------------------------------------------------------------
    def items(self, n: int, seed: int) -> list[TaskItem]:
        """Up to n items; each id carries a fingerprint of the example's content, so a resumed
        run never takes a logged trial for an example whose text or gold has changed since."""
        if self.source is None:
            raise UserError(f"task {self.id} has no built-in items: give `path` to its data file in the study", field="path")
        with gold.access("data"):  # the fingerprint covers the gold
            return [replace(item, id=f"{item.id}#{fingerprint(item)}") for item in SOURCES.get(self.source)(self, n, seed)]

    def available(self) -> int:
        """How many distinct items this task can give (0 when it needs a data file)."""
        if self.source is None:
            return 0
        if self.source in CAPACITY:
            return CAPACITY.get(self.source)(self)
        return self.n_available or 0

    def all_examples(self, shots: int) -> int:
        """What `n: all` takes with `shots` demos per query: every item the source holds, less the
        demo pool when demos are drawn from the same items. UserError(field="n") when that is
        unknown (a task that needs a data file), none is left, or it passes ALL_LIMIT."""
        available = self.available()
        if available == 0:
            raise UserError(f"task {self.id} does not know how many examples it has: give a number", field="n")
        count = available - (_pool_size(shots) if shots and self.demo_args is None else 0)
        if count < 1:
            raise UserError(f"task {self.id} has {available} examples, all needed for its demo pool with shots={shots}", field="n")
        if count > ALL_LIMIT:
            raise UserError(f"task {self.id} can give {count} examples; `n: all` takes at most {ALL_LIMIT}: give a number", field="n")
        return count

    def sample(self, n: int, shots: int, seed: int) -> tuple[list[TaskItem], list[TaskItem]]:
        """The n examples and the pool few-shot demos are drawn from (disjoint from them)."""
        if self.demo_args is not None:
            items = self.items(n, seed)
            pool = self.with_source_args(**self.demo_args).items(_pool_size(shots), seed) if shots else []
        else:
            pool_all = self.items(n + (_pool_size(shots) if shots else 0), seed)
            items, pool = pool_all[:n], pool_all[n:]
        if len(items) < n:
            raise UserError(f"task {self.id} has {len(items)} examples; the study asks for n={n}", field="n")
        if shots and len(pool) < shots:
            raise UserError(f"task {self.id} leaves {len(pool)} examples for demos; the study asks for shots={shots}", field="shots")
        return items, pool

    # -- derived specs (never mutate) --------------------------------------------------------
    def with_source_args(self, **args: Any) -> TaskSpec:
        return self.model_copy(update={"source_args": {**self.source_args, **args}})

    def with_variant(self, variant: str) -> TaskSpec:
        """The task with a named instruction variant (`original` is the suite file's instruction)."""
        if variant == self.variant:
            return self
        if variant not in self.instructions:
            known = ", ".join([self.variant, *sorted(self.instructions)])
            raise UserError(f"task {self.id} has no instruction variant {variant!r} (variants: {known})", field="variant")
        return self.model_copy(update={"instruction": self.instructions[variant], "variant": variant})

    def with_profile(self, profile: str) -> TaskSpec:
        if profile == "default":
            return self
        if profile not in self.profiles:
            known = ", ".join(["default", *sorted(self.profiles)])
            raise UserError(f"task {self.id} has no scorer profile {profile!r} (profiles: {known})", field="scorer")
        choice = self.profiles[profile]
        update = {"parser": choice.parser, "metric": choice.metric, "parser_args": choice.parser_args, "answer_type": choice.answer_type}
        return self.model_copy(update={**update, "scorer_profile": profile})

    # -- prompt and score --------------------------------------------------------------------
    def render(self, item: TaskItem, demos: Sequence[TaskItem] = (), seed: int | None = None) -> Messages:
        """The control prompt for `item`: system message and a user message with named slots.
        `seed` is the query's: it picks the answer each demo shows (`demo_answer`)."""
        demo_text = self.template.demo_joiner.join(
            self.template.demo.format(input=d.input, output=demo_answer(d, seed)) for d in demos
        )
        own = (("instruction", self.instruction), ("demos", demo_text), ("input", item.input), *self.template.slots.items())
        named = template_fields(self.template.user) - {name for name, _ in own}
        # the template may show item metadata (SAC-Induced: the factor's stem and answer labels, the item's trait)
        user = Message(role="user", template=self.template.user, slots=(*own, *((k, str(v)) for k, v in item.meta if k in named)))
        return (_system_message(self.template.system), user)

    def parse(self, raw_text: str, item: TaskItem) -> str | None:
        """The answer in raw text as the default extractor reads it (None: no answer of the task's
        type); needs no gold (a verifier-free loop votes on it)."""
        return EXTRACTORS.get(DEFAULT_EXTRACTOR)(self, item, raw_text).answer

    def parser_answer(self, raw_text: str, item: TaskItem) -> str:
        """The task's own parser and choice matcher on raw text: what the `strict` extractor reads."""
        answer = PARSERS.get(self.parser)(raw_text, **self.parser_args)
        if self.choice_match and item.choices:
            answer = CHOICE_MATCHERS.get(self.choice_match)(answer, item.choices)
        return answer

    def score(self, raw_text: str, item: TaskItem) -> tuple[str | None, float]:
        """The answer the default extractor reads and its score; no answer of the task's type
        scores 0, as a wrong answer (the `scores` rows keep the two apart). A parser that
        rejects the text (raises Unparseable: an inventory answer naming no option) raises."""
        scored = score_text(self, item, raw_text)
        return scored.answer, scored.value if scored.value is not None else 0.0

    def score_answer(self, answer: str, item: TaskItem) -> float:
        """The task's metric on an extracted answer against the item's gold targets."""
        parse = PARSERS.get(self.parser)
        targets = tuple(parse(t, **self.parser_args) for t in item.targets) if self.parse_targets else item.targets
        metric = METRICS.get(self.metric)
        score = metric(answer, targets, item=item) if getattr(metric, "wants_item", False) else metric(answer, targets)
        return float(score)

    def normalized(self, mean_score: float, maximum: float = 1.0) -> float | None:
        """BIG-bench's normalised preferred score: 0 at random chance, 100 at the maximum."""
        return normalized_score(mean_score, self.chance, maximum)

    def descriptor(self) -> dict[str, Any]:
        """What the log records of the task as run: enough to rebuild its prompts and scores."""
        return {
            "id": self.id,
            "suite": self.suite,
            "version": self.version,
            "instruction": self.instruction,
            "variant": self.variant,
            "metric": self.metric,
            "parser": self.parser,
            "parser_args": self.parser_args,
            "parse_targets": self.parse_targets,
            "choice_match": self.choice_match,
            "answer_type": self.answer_type,
            "candidates": list(self.candidates),
            "candidates_from": self.candidates_from,
            "scorer_profile": self.scorer_profile,
            "source": self.source,
            "source_args": self.source_args,
            "demo_args": self.demo_args,
            "chance": self.chance,
            "template": self.template.model_dump(),
            "scoring": self.scoring,
            "scoring_args": self.scoring_args,
            "program": self.program,
        }


@functools.lru_cache(maxsize=256)
def _system_message(text: str) -> Message:
    """A task's system message: one for all its prompts (a message is immutable)."""
    return Message.text("system", text)


def demo_answer(demo: TaskItem, seed: int | None) -> str:
    """The answer a few-shot demo shows: its worked solution if it has one, else one of its gold
    answers drawn at random, as the NegativePrompt code draws it (seeded here by the query's seed
    and the demo, so every condition of a query shows the same); without a seed, the first."""
    if demo.demo_output is not None:
        return demo.demo_output
    if seed is None or len(demo.targets) == 1:
        return demo.targets[0]
    return random.Random(stable_seed(seed, demo.id)).choice(demo.targets)


def _pool_size(shots: int) -> int:
    return max(DEFAULT_SHOTS_POOL, 10 * shots)


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    version: str
    description: str = ""
    citation: str | None = None
    references: list[Reference] = Field(default_factory=list)
    data_citation: str | None = None
    template: Template = Field(default_factory=Template)
    file_source: str | None = None
    file_args: dict[str, Any] = Field(default_factory=dict)
    file_demo_args: dict[str, Any] | None = None
    custom_source: str | None = None  # set when studies may define their own tasks in this suite
    defaults: dict[str, Any] = Field(default_factory=dict)  # task fields shared by the suite's tasks
    tasks: list[dict[str, Any]] = Field(default_factory=list)


def fingerprint(item: TaskItem) -> str:
    """8 hex digits of sha256 over the example's input, targets and choices."""
    content = "\x1e".join((item.input, "\x1f".join(item.targets), "\x1f".join(item.choices)))
    return hashlib.sha256(content.encode()).hexdigest()[:8]


def seeded_order(keys: Sequence[str], *seed_parts: object) -> list[int]:
    """Indices of `keys` in a seeded order that depends only on the keys and the seed, so it is
    the same on any machine and Python version, and a longer draw extends a shorter one."""
    salt = "\x1f".join(map(str, seed_parts))
    return sorted(range(len(keys)), key=lambda i: hashlib.sha256(f"{salt}\x1f{keys[i]}".encode()).digest())


def load_suite_file(path: Path) -> tuple[SuiteFile, list[TaskSpec]]:
    try:
        suite = SuiteFile.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise validation_error(exc, file=str(path), model=SuiteFile) from None
    specs = []
    for index, entry in enumerate(suite.tasks):
        try:
            spec = TaskSpec.model_validate(
                {
                    "suite": suite.suite,
                    "version": suite.version,
                    "citation": suite.citation,
                    "references": suite.references,
                    "data_citation": suite.data_citation,
                    "template": suite.template,
                    "file_source": suite.file_source,
                    "file_args": suite.file_args,
                    "file_demo_args": suite.file_demo_args,
                    **suite.defaults,
                    **entry,
                    "id": f"{suite.suite}/{entry.get('name')}",
                }
            )
        except ValidationError as exc:
            raise validation_error(exc, file=str(path), field=f"tasks[{index}]", model=TaskSpec) from None
        _check_names(spec, str(path), f"tasks[{index}]")
        _check_scoring(spec, str(path), f"tasks[{index}]")
        specs.append(spec)
    return suite, specs


def _check_names(spec: TaskSpec, file: str | None, where: str) -> None:
    """Every registry name a spec uses must exist (checked when loaded, not when a trial runs)."""
    checks = [(PARSERS, spec.parser, "parser"), (METRICS, spec.metric, "metric")]
    checks += [(SOURCES, name, label) for name, label in ((spec.source, "source"), (spec.file_source, "file_source")) if name]
    checks += [(CHOICE_MATCHERS, spec.choice_match, "choice_match")] if spec.choice_match else []
    checks += [(ANSWER_TYPES, spec.answer_type, "answer_type")]
    checks += [(CANDIDATE_SOURCES, spec.candidates_from, "candidates_from")] if spec.candidates_from else []
    for profile, choice in spec.profiles.items():
        checks += [(PARSERS, choice.parser, f"profiles.{profile}.parser"), (METRICS, choice.metric, f"profiles.{profile}.metric")]
        checks += [(ANSWER_TYPES, choice.answer_type, f"profiles.{profile}.answer_type")]
    for registry, name, label in checks:
        if name not in registry:
            raise UserError(registry.unknown_message(name), file=file, field=f"{where}.{label}" if where else label)
    _check_candidates(spec, file, where)


def _check_candidates(spec: TaskSpec, file: str | None, where: str) -> None:
    """A closed answer type needs its candidates, from one place: listed or a source."""
    field = f"{where}.candidates" if where else "candidates"
    if spec.candidates and spec.candidates_from:
        raise UserError("give `candidates` or `candidates_from`, not both", file=file, field=field)
    declared = bool(spec.candidates or spec.candidates_from)
    if ANSWER_TYPES.get(spec.answer_type).closed and not declared:
        raise UserError(f"answer_type {spec.answer_type!r} needs `candidates` (the labels) or `candidates_from` ({', '.join(CANDIDATE_SOURCES.names())})", file=file, field=field)


def _check_scoring(spec: TaskSpec, file: str, where: str) -> None:
    """The task's scorer and its arguments (a DSPy `program` it names is checked where a study
    uses the task: programs are solvers, a layer above the tasks)."""
    from ..scoring.scorers import SCORERS

    if spec.scoring not in SCORERS:
        raise UserError(SCORERS.unknown_message(spec.scoring), file=file, field=f"{where}.scoring")
    try:
        SCORERS.get(spec.scoring).check(spec)
    except ValueError as exc:
        raise UserError(str(exc), file=file, field=f"{where}.scoring_args") from None


# Directories of suite files that plugins add (a task source plugin registers its own).
SUITE_DIRS: Registry[Path] = Registry("task suite directory")


@functools.cache
def builtin_suites() -> dict[str, tuple[SuiteFile, dict[str, TaskSpec]]]:
    """The bundled suites (`tasks/*.yaml`), then those of the plugins' SUITE_DIRS."""
    load_builtins()  # the item sources, parsers, metrics and scorers the suite files name, and the plugins' directories
    plugin_files = [path for name in SUITE_DIRS for path in sorted(SUITE_DIRS.get(name).glob("*.yaml"))]
    return merge_suites((str(path), *load_suite_file(path)) for path in [*sorted(data_dir("tasks").glob("*.yaml")), *plugin_files])


def merge_suites(loaded: Iterable[tuple[str, SuiteFile, list[TaskSpec]]]) -> dict[str, tuple[SuiteFile, dict[str, TaskSpec]]]:
    """Suites by name from (file, suite, tasks) as loaded; files of one suite add up their tasks
    (the first file's header stands for the suite). A task id given twice is a UserError naming
    the file, never a silent overwrite."""
    suites: dict[str, tuple[SuiteFile, dict[str, TaskSpec]]] = {}
    for file, suite, specs in loaded:
        _, known = suites.setdefault(suite.suite, (suite, {}))
        for index, spec in enumerate(specs):
            if spec.id in known:
                raise UserError(f"task {spec.id} is defined twice", file=file, field=f"tasks[{index}].name")
            known[spec.id] = spec
    return suites


def builtin_tasks() -> dict[str, TaskSpec]:
    return {task_id: spec for _, specs in builtin_suites().values() for task_id, spec in specs.items()}


def get_task(task_id: str) -> TaskSpec:
    tasks = builtin_tasks()
    if task_id not in tasks:
        close = difflib.get_close_matches(task_id, tasks, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown task {task_id!r}{hint}", field="task")
    return tasks[task_id]


@dataclass(frozen=True)
class TaskConfig:
    """What a study may set on a task; the study's TaskRef carries the same fields."""

    task: str
    path: str | None = None
    variant: str | None = None
    instruction: str | None = None
    metric: str | None = None
    parser: str | None = None
    scorer: str | None = None

    @classmethod
    def of(cls, ref: Any) -> TaskConfig:
        names = [p for p in inspect.signature(cls).parameters]
        return cls(**{name: getattr(ref, name, None) for name in names})


def resolve_task(config: TaskConfig, base_dir: Path | None = None) -> TaskSpec:
    """The task as a study configures it, as a new spec, with every registry name it uses checked
    and its data file's existence. The file is read when items are drawn (workbench.study.spec draws
    them as the study loads, so a bad file still fails before anything runs).

    Raises UserError naming the field of the task entry (`task`, `path`, `metric`, ...).
    """
    suite_name = config.task.split("/", 1)[0] if "/" in config.task else ""
    suites = builtin_suites()
    suite = suites.get(suite_name, (None, {}))[0]
    if suite is not None and suite.custom_source and config.task not in suites[suite_name][1]:
        spec = _custom_spec(suite, config)
    else:
        spec = get_task(config.task)
    if config.path is not None:
        loader = spec.file_source
        if loader is None:
            raise UserError(f"task {spec.id} takes no data file (its items are generated)", field="path")
        path = user_path(config.path, base=base_dir, field="path", what="data file", directories=True)
        spec = spec.model_copy(
            update={"source": loader, "source_args": {**spec.file_args, "path": str(path.resolve())}, "demo_args": spec.file_demo_args}
        )
    if config.variant is not None:
        spec = spec.with_variant(config.variant)
    if config.instruction is not None:
        spec = spec.model_copy(update={"instruction": config.instruction, "variant": "study"})
    if config.scorer is not None:
        spec = spec.with_profile(config.scorer)
    updates = {k: v for k, v in (("metric", config.metric), ("parser", config.parser)) if v is not None}
    if updates:
        spec = spec.model_copy(update=updates)
    _check_names(spec, None, "")  # the overrides, and a custom task's suite defaults, included
    if spec.source is None:
        raise UserError(f"task {spec.id} has no built-in items: give `path` to its data file", field="path")
    return spec


def _custom_spec(suite: SuiteFile, config: TaskConfig) -> TaskSpec:
    if config.path is None:
        raise UserError(f"a {suite.suite}/ task needs `path` to its JSONL or CSV file", field="path")
    if config.metric is None:
        raise UserError(f"a {suite.suite}/ task needs a `metric` (known: {', '.join(METRICS.names())})", field="metric")
    return TaskSpec(
        id=config.task,
        suite=suite.suite,
        name=config.task.split("/", 1)[1],
        version=suite.version,
        instruction=config.instruction or "",
        metric=config.metric,
        source=None,
        file_source=suite.custom_source,
        template=suite.template,
        **suite.defaults,
    )
