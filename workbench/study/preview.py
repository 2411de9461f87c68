"""Preview a condition: the exact messages its trial on one example of a task sends.

The preview is a one-condition study resolved and expanded by the runner's own code
(`resolve_study`, `iter_trials`), so what it shows is what a run with that condition, task entry
and seed sends, byte for byte. A condition whose stimuli run as a program of several calls
(multi-agent perspectives, HEART feedback) shows each call, the answers it has not got shown by
placeholders.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.errors import UserError, validation_error
from ..core.messages import Message, Messages, to_pairs
from ..stimuli import PLACEMENTS, AppliedStimulus, StimulusLibrary, builtin_library
from ..stimuli.catalog import Catalogue, authorship, catalogue
from ..stimuli.catalog import preview as program_calls
from .expand import iter_trials
from .spec import StudySpec, read_spec, resolve_study, study_library

PREVIEW_MODEL = "sim/preview"  # never called: a preview sends nothing
PREVIEW_CONDITION = "preview"
CONDITION_FIELD = "conditions[0]."
PREVIEW_LABEL = "(condition preview)"  # what errors name as the file when no study file is given
DEFAULT_EXAMPLES = 5  # the examples a preview draws when no study file lists the task
PREVIOUS_ANSWER = "<the previous answer>"  # a feedback turn follows an answer the preview has not got


@dataclass(frozen=True)
class PreviewCall:
    purpose: str  # "answer"; "agent:<id>" and "synthesis" for a multi-agent program; "feedback"
    messages: tuple[tuple[str, str], ...]  # (role, content), as the log's messages_json holds them

    def to_json(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "messages": [{"role": role, "content": content} for role, content in self.messages]}


@dataclass(frozen=True)
class AppliedEntry:
    """A stimulus as the previewed trial applies it, with where its text comes from."""

    id: str
    version: str
    placement: str
    params: Mapping[str, Any]
    citation: str | None
    authored: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "placement": self.placement, "params": dict(self.params), "citation": self.citation, "authored": self.authored}


@dataclass(frozen=True)
class ConditionPreview:
    """What one trial of the condition sends. `calls[0]` is the trial's prompt (its messages_json)
    for a one-call condition; `placeholders` says whether later calls show stand-in answers."""

    task: str
    example: int
    item_id: str
    solver: str
    calls: tuple[PreviewCall, ...]
    stimuli: tuple[AppliedEntry, ...]
    placeholders: bool

    @property
    def messages(self) -> tuple[tuple[str, str], ...]:
        """The trial's prompt: the messages its first call sends."""
        return self.calls[0].messages

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task, "example": self.example, "item_id": self.item_id, "solver": self.solver,
            "calls": [c.to_json() for c in self.calls], "stimuli": [s.to_json() for s in self.stimuli], "placeholders": self.placeholders,
        }


def preview_condition(
    stimuli: Sequence[str | Mapping[str, Any]],
    task: str,
    *,
    example: int = 0,
    seed: int | None = None,
    solver: str | None = None,
    solver_params: Mapping[str, Any] | None = None,
    study_path: str | Path | None = None,
    library: StimulusLibrary | None = None,
) -> ConditionPreview:
    """The messages a condition with `stimuli` (references as a study file writes them) sends on
    example `example` of `task`. With `study_path`, as in that study: its stimulus files, its seed
    and its entry for the task (n, shots, data file, variant) when it lists the task; else the
    task's first DEFAULT_EXAMPLES examples drawn with `seed` (default 0)."""
    label = str(study_path) if study_path is not None else PREVIEW_LABEL
    study = read_spec(study_path) if study_path is not None else None
    entry = next((ref for ref in study.tasks if ref.task == task), None) if study else None
    condition: dict[str, Any] = {"name": PREVIEW_CONDITION, "stimuli": list(stimuli)}
    condition.update({"solver": solver} if solver else {})
    condition.update({"solver_params": dict(solver_params)} if solver_params else {})
    raw = {
        "name": PREVIEW_CONDITION,
        "models": [{"id": PREVIEW_MODEL}],
        "conditions": [condition],
        "tasks": [entry.model_dump(exclude_none=True, exclude={"data_sha256"}) if entry else {"task": task, "n": DEFAULT_EXAMPLES}],
        "seed": seed if seed is not None else (study.seed if study else 0),
        "stimulus_files": study.stimulus_files if study else [],
    }
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, file=label, model=StudySpec) from None
    library = study_library(spec, label, library)  # the study's stimulus files read once, here
    try:
        resolved = resolve_study(spec.model_copy(update={"stimulus_files": []}), label, library)
    except UserError as exc:  # the one condition is the caller's: its fields are named as a condition's own
        field = exc.field.removeprefix(CONDITION_FIELD) if exc.field else exc.field
        raise UserError(exc.detail, file=exc.file, field=field) from None
    examples = resolved.samples[task].n
    if not 0 <= example < examples:
        raise UserError(f"example {example} is not one of the {examples} drawn (0 to {examples - 1})", field="example")
    trial = next(itertools.islice(iter_trials(resolved, PREVIEW_CONDITION), example, None))
    return ConditionPreview(
        task=task, example=example, item_id=trial.item.id, solver=trial.solver, calls=_calls(trial.messages, trial.stimuli),
        stimuli=tuple(_entry(s, library) for s in trial.stimuli),
        placeholders=any(PLACEMENTS.get(s.placement).stage == "program" for s in trial.stimuli),
    )


def study_catalogue(study_path: str | Path | None = None) -> Catalogue:
    """The stimulus library as the browser lists it; with `study_path`, that study's stimulus files in it too."""
    if study_path is None:
        return catalogue(builtin_library())
    return catalogue(study_library(read_spec(study_path), str(study_path)))


def _calls(messages: Messages, stimuli: Sequence[AppliedStimulus]) -> tuple[PreviewCall, ...]:
    """The calls the trial makes: its prompt, or, for a stimulus run as a program (multi-agent),
    the program's calls; a feedback stimulus adds the turn that follows an answer (a stand-in).
    The program's calls are the catalogue's preview, as `workbench stimuli render` prints them."""
    program = next((s for s in stimuli if PLACEMENTS.get(s.placement).program), None)
    if program is not None:
        return tuple(_call(c["purpose"], c["messages"]) for c in program_calls(program, messages))
    calls = [PreviewCall("answer", to_pairs(messages))]
    answered = (*messages, Message.text("assistant", PREVIOUS_ANSWER))
    for stimulus in stimuli:
        if PLACEMENTS.get(stimulus.placement).stage == "program":
            calls += [_call("feedback", c["messages"]) for c in program_calls(stimulus, answered)]
    return tuple(calls)


def _call(purpose: str, messages: list[dict[str, str]]) -> PreviewCall:
    return PreviewCall(purpose, tuple((m["role"], m["content"]) for m in messages))


def _entry(stimulus: AppliedStimulus, library: StimulusLibrary) -> AppliedEntry:
    item = library.get(stimulus.id)
    return AppliedEntry(
        id=stimulus.id, version=stimulus.version, placement=stimulus.placement, params=stimulus.params,
        citation=None if item.authored else item.citation, authored=authorship(item),
    )
