"""One conversion of a pydantic ValidationError into a UserError (workbench.core.errors.validation_error),
used by every file loader: the error shown, its path as the user wrote it, the keys allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from workbench.core.errors import UserError, first_problem, validation_error
from workbench.study.spec import StudySpec
from workbench.tasks import load_suite_file


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int
    colour: str = "red"


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parts: list[str | Inner] = []

    @field_validator("name")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > 3:
            raise ValueError("a name has at most 3 letters")
        return value


def _error(model: type[BaseModel], raw: dict) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    return caught.value


def _study(**changes) -> dict:
    return {"name": "x", "models": [{"id": "sim/x"}], "conditions": [{"name": "a"}], "tasks": [{"task": "ii/sum", "n": 2}], **changes}


def test_the_structured_branch_of_a_union_is_shown_at_a_path_without_branch_labels() -> None:
    error = validation_error(_error(Outer, {"name": "x", "parts": ["a", {"size": "big"}]}), file="f.yaml", model=Outer)
    assert (error.field, error.detail) == ("parts[1].size", "Input should be a valid integer, unable to parse string as an integer")
    study = _error(StudySpec, _study(conditions=[{"name": "a", "stimuli": [{"id": "EP02", "separator": "tab"}]}]))
    assert validation_error(study, model=StudySpec).field == "conditions[0].stimuli[0].separator"


def test_pydantics_value_error_prefix_is_dropped() -> None:
    error = validation_error(_error(Outer, {"name": "long"}), file="f.yaml", model=Outer)
    assert str(error) == "f.yaml: name: a name has at most 3 letters"


def test_an_unknown_key_lists_the_keys_of_the_model_it_sits_in() -> None:
    nested = validation_error(_error(Outer, {"name": "x", "parts": [{"size": 1, "shade": 2}]}), model=Outer, field="thing")
    assert (nested.field, nested.detail) == ("thing.parts[0].shade", "unknown key 'shade' (allowed: size, colour)")
    sweep = validation_error(_error(StudySpec, _study(sweep={"stimuli": ["EP01"], "solver": "x"})), model=StudySpec)
    assert sweep.field == "sweep.solver" and sweep.detail.startswith("unknown key 'solver' (allowed: stimuli, families,")


def test_wording_and_the_whole_value() -> None:
    missing = validation_error(_error(Inner, {}), field="schedule", model=Inner, wording={"missing": "is required (parameters: {allowed})"})
    assert (missing.field, missing.detail) == ("schedule.size", "is required (parameters: size, colour)")
    top = validation_error(_error(StudySpec, _study(conditions=[{"name": "a"}, {"name": "a"}])), model=StudySpec)
    assert (top.field, top.detail) == ("(top level)", "condition names must be unique; repeated: a")
    problem = first_problem(_error(Inner, {"size": [1, 2]}), Inner)
    assert (problem.kind, problem.path, problem.input) == ("int_type", "size", [1, 2])


def test_a_task_suite_names_an_unknown_key_and_what_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    task = {"name": "q", "instruction": "Say it.", "metric": "em", "source": "custom.file", "template": {"sytem": "x"}}
    path.write_text(yaml.safe_dump({"suite": "mine", "version": "1", "tasks": [task]}), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_suite_file(path)
    assert caught.value.field == "tasks[0].template.sytem"
    assert caught.value.detail.startswith("unknown key 'sytem' (allowed: system, user")
