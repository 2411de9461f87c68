"""Task suites as data: `tasks/<suite>.yaml` names each task's instruction, item source,
parser and metric; item sources are registered functions, never branches on task names."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError
from ..messages import Message, Messages
from ..paths import data_dir
from ..registry import Registry
from ..scoring import METRICS, PARSERS


@dataclass(frozen=True)
class TaskItem:
    """One example. `targets` are the accepted gold answers."""

    id: str
    input: str
    targets: tuple[str, ...]
    choices: tuple[str, ...] = ()
    meta: tuple[tuple[str, Any], ...] = field(default=())


ItemSource = Callable[["TaskSpec", int, int], list[TaskItem]]
"""(task, n, seed) -> n items, the same on every machine for the same seed."""

SOURCES: Registry[ItemSource] = Registry("task item source")


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = "You are a helpful assistant."
    user: str = "{instruction}\n\n{input}"
    demo: str = "Input: {input}\nOutput: {output}"
    demo_joiner: str = "\n\n"


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    suite: str
    name: str
    version: str
    instruction: str
    metric: str
    parser: str = "first_line"
    source: str
    source_args: dict[str, Any] = Field(default_factory=dict)
    template: Template = Field(default_factory=Template)
    citation: str | None = None
    n_available: int | None = None
    scoring: str = "metric"  # a registered scorer (workbench.scorers.SCORERS), e.g. `judge`
    scoring_args: dict[str, Any] = Field(default_factory=dict)  # its arguments, e.g. {rubric: truthfulness}
    program: str | None = None  # a registered DSPy program as the system under test (workbench.programs)

    def items(self, n: int, seed: int) -> list[TaskItem]:
        return SOURCES.get(self.source)(self, n, seed)

    def render(self, item: TaskItem, demos: Sequence[TaskItem] = ()) -> Messages:
        """The control prompt for `item`: system message and a user message with named slots."""
        demo_text = self.template.demo_joiner.join(
            self.template.demo.format(input=d.input, output=d.targets[0]) for d in demos
        )
        user = Message(
            role="user",
            template=self.template.user,
            slots=(("instruction", self.instruction), ("demos", demo_text), ("input", item.input)),
        )
        return (Message.text("system", self.template.system), user)

    def score(self, raw_text: str, item: TaskItem) -> tuple[str, float]:
        answer = PARSERS.get(self.parser)(raw_text)
        return answer, METRICS.get(self.metric)(answer, item.targets)

    def descriptor(self) -> dict[str, Any]:
        """What the log records of the task as run."""
        return {
            "id": self.id,
            "version": self.version,
            "metric": self.metric,
            "parser": self.parser,
            "template": self.template.model_dump(),
            "scoring": self.scoring,
            "scoring_args": self.scoring_args,
            "program": self.program,
        }


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    version: str
    citation: str | None = None
    template: Template = Field(default_factory=Template)
    tasks: list[dict[str, Any]]


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, identical across processes and machines (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def load_suite_file(path: Path) -> list[TaskSpec]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        suite = SuiteFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read task suite: {exc}", file=str(path)) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(err["msg"], file=str(path), field=".".join(map(str, err["loc"]))) from None
    specs = []
    for index, entry in enumerate(suite.tasks):
        try:
            spec = TaskSpec.model_validate(
                {
                    "suite": suite.suite,
                    "version": suite.version,
                    "citation": suite.citation,
                    "template": suite.template,
                    **entry,
                    "id": f"{suite.suite}/{entry.get('name')}",
                }
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(err["msg"], file=str(path), field=f"tasks[{index}].{'.'.join(map(str, err['loc']))}") from None
        for registry, name, label in ((SOURCES, spec.source, "source"), (PARSERS, spec.parser, "parser"), (METRICS, spec.metric, "metric")):
            if name not in registry:
                raise UserError(registry.unknown_message(name), file=str(path), field=f"tasks[{index}].{label}")
        _check_scoring_and_program(spec, str(path), f"tasks[{index}]")
        specs.append(spec)
    return specs


def _check_scoring_and_program(spec: TaskSpec, file: str, where: str) -> None:
    from ..programs import PROGRAMS
    from ..scorers import SCORERS

    if spec.scoring not in SCORERS:
        raise UserError(SCORERS.unknown_message(spec.scoring), file=file, field=f"{where}.scoring")
    try:
        SCORERS.get(spec.scoring).check(spec)
    except ValueError as exc:
        raise UserError(str(exc), file=file, field=f"{where}.scoring_args") from None
    if spec.program is not None and spec.program not in PROGRAMS:
        raise UserError(PROGRAMS.unknown_message(spec.program), file=file, field=f"{where}.program")


@functools.cache
def builtin_tasks() -> dict[str, TaskSpec]:
    from . import generators, inventory, judge, perspectives  # noqa: F401  (register sources, parsers, scorers)

    specs: dict[str, TaskSpec] = {}
    for path in sorted(data_dir("tasks").glob("*.yaml")):
        for spec in load_suite_file(path):
            specs[spec.id] = spec
    return specs


def get_task(task_id: str) -> TaskSpec:
    tasks = builtin_tasks()
    if task_id not in tasks:
        import difflib

        close = difflib.get_close_matches(task_id, tasks, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown task {task_id!r}{hint}", field="task")
    return tasks[task_id]
