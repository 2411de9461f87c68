"""A study as an editable document (the Design page's form) and back.

A draft is the study file's plain data (a dict in the file's key order): opened from a file by the
loader `workbench run` uses, edited field by field, rendered back to YAML that `workbench run`
accepts unchanged (comments do not survive) and checked by `study_from_text` with the runner's
rules and messages. The form's choices (models, tasks, solvers, HEART settings) come from the
registries here, so the page holds widgets only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import UserError
from ..core.input_files import load_yaml, parse_yaml
from ..plugins import load_builtins
from ..providers.local_models import LOCAL_MODELS
from ..solvers.base import SOLVERS
from ..solvers.heart import FEEDBACK, SCHEDULES, SOLVER, STRATEGIES
from ..solvers.heart.plan import DEFAULT_PHRASES, ORACLE_STRATEGY, PHRASE_CHOICES, HeartConfig
from ..stimuli import feedback_phrases
from ..tasks import TaskConfig, builtin_tasks, resolve_task
from .spec import ResolvedStudy, StudySpec, study_from_text, study_mapping

SIMULATED_MODEL = "sim/default"  # a simulated model (any sim/<name>): answers at once, no server
HEART_SOLVER = SOLVER  # the solver whose settings the form shows
WHOLE_LIMIT = 2**53 - 1  # the largest whole number a browser's number input holds exactly

# What the Design page starts from: the quickstart's shape on the embedded model.
NEW_STUDY: dict[str, Any] = {
    "name": "new-study",
    "models": [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 32}}],
    "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
    "tasks": [{"task": "ii/sum", "n": 20}],
    "repeats": 1,
    "seed": 0,
    "concurrency": 2,
}


def new_draft() -> dict[str, Any]:
    return copy.deepcopy(NEW_STUDY)


def open_draft(path: str | Path) -> dict[str, Any]:
    """A study file's data, read as `workbench run` reads it (same caps and messages); its fields
    are checked when the draft is (`check_draft`), so a file with a bad value still opens."""
    return study_mapping(load_yaml(path), str(path))


def render_draft(draft: Mapping[str, Any]) -> str:
    """The draft as a study file: YAML in the draft's key order."""
    return yaml.safe_dump(dict(draft), sort_keys=False, allow_unicode=True, default_flow_style=False, width=math.inf)


def check_draft(draft: Mapping[str, Any], path: str | Path) -> ResolvedStudy:
    """The draft validated as the file it will be saved as, exactly as `workbench run` would."""
    return study_from_text(render_draft(draft), str(path))


def field_text(value: Any) -> str:
    """A field's value as one line of YAML for a text input ("" for nothing)."""
    if value is None or value == [] or value == {}:
        return ""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=math.inf).strip().removesuffix("...").strip()


def parse_field(text: str, label: str, field: str) -> Any:
    """A field typed as YAML (stimuli, a sweep, a schedule); None when blank; a UserError names
    the study file and the field."""
    if not text.strip():
        return None
    try:
        return parse_yaml(text, label)
    except UserError as exc:
        raise UserError(exc.detail, file=label, field=f"{field} ({exc.field})" if exc.field else field) from None


def updated(mapping: Mapping[str, Any] | None, **values: Any) -> dict[str, Any]:
    """`mapping` with `values` set in place (new keys after the others); a None value drops its key."""
    result = dict(mapping or {})
    for key, value in values.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def with_entries(draft: Mapping[str, Any], section: str, items: list[Any]) -> dict[str, Any]:
    """The draft with its list `section` (models, tasks, conditions) set to `items`; a value there
    that is not a list is kept for the check to name, and an absent section stays absent while empty."""
    current = draft.get(section)
    if (current is not None and not isinstance(current, list)) or (current is None and not items):
        return dict(draft)
    return updated(draft, **{section: items})


def edited(original: Any, shown: Any, value: Any) -> Any:
    """A field's value after the form: the original while the widget still shows what it was
    given (so values the widget cannot hold, and unset keys, survive a save), else the widget's."""
    return original if value == shown else value


def form_number(value: Any, whole: bool = True) -> int | float | None:
    """What a number input can show of a value (a whole one: an int within `WHOLE_LIMIT`; else a
    float), else nothing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if whole:
        return value if isinstance(value, int) and abs(value) <= WHOLE_LIMIT else None
    return float(value) if math.isfinite(value) else None


def form_text(value: Any) -> str:
    """What a text input shows of a value: the string, else its YAML."""
    return value if isinstance(value, str) else field_text(value)


def choices_with(choices: list[Any], current: Any) -> list[Any]:
    """A choice list that holds the current value too (a bad one, to be shown and corrected)."""
    return choices if current in choices else [*choices, current]


# -- the form's choices --------------------------------------------------------------------------
def model_choices(current: str | None = None) -> list[str]:
    """Models to choose from: the embedded ones, a simulated one, and the one the study names
    (any litellm model string may be typed in as well)."""
    return list(dict.fromkeys([*LOCAL_MODELS, SIMULATED_MODEL, *([current] if current else [])]))


def task_choices(current: str | None = None) -> list[str]:
    load_builtins()
    return list(dict.fromkeys([*builtin_tasks(), *([current] if current else [])]))


def solver_choices() -> list[str]:
    load_builtins()
    return SOLVERS.names()


def policy_choices() -> list[str]:
    """The values of `errors` and `no_answer`."""
    return list(StudySpec.model_fields["errors"].annotation.__args__)  # type: ignore[union-attr]


def heart_choices() -> dict[str, list[str]]:
    """The values each HEART setting takes (README's HEART table): modes, final strategies of a
    verifier-free loop, feedback kinds, emotion schedules, histories and phrase choices."""
    load_builtins()
    return {
        "mode": list(DEFAULT_PHRASES),
        "final": [name for name in STRATEGIES.names() if name != ORACLE_STRATEGY],
        "feedback": FEEDBACK.names(),
        "schedule": SCHEDULES.names(),
        "history": list(HeartConfig.model_fields["history"].annotation.__args__),  # type: ignore[union-attr]
        "phrases": list(PHRASE_CHOICES),
        "emotions": list(feedback_phrases.emotions()),
        "templates": list(feedback_phrases.feedback_templates()),
    }


def schedule_parts(schedule: Any) -> tuple[Any, dict[str, Any] | None]:
    """A HEART schedule as its name and its options: `alternating` -> ("alternating", None),
    `{name: random, emotions: [anger]}` -> ("random", {"emotions": ["anger"]})."""
    if isinstance(schedule, Mapping):
        return schedule.get("name"), {k: v for k, v in schedule.items() if k != "name"} or None
    return schedule, None


def schedule_value(name: Any, options: Any, original: Any) -> Any:
    """The schedule from its parts; the original value when the parts are those of it (so a study
    that wrote `{name: alternating}` keeps that form and its run identity)."""
    if (name, options) == schedule_parts(original):
        return original
    if name is None:
        return None
    return {"name": name, **options} if isinstance(options, Mapping) and options else name


def new_condition_name(draft: Mapping[str, Any], base: str) -> str:
    """A condition name from `base` (a stimulus id: `/` and other characters a name may not hold,
    as ConditionSpec.name's pattern says, become `-`), numbered if the draft has it already."""
    cleaned = "".join(c if c.isalnum() or c in "_.:+=-" else "-" for c in base) or "condition"
    names = {c.get("name") for c in draft.get("conditions") or [] if isinstance(c, Mapping)}
    name, number = cleaned, 2
    while name in names:
        name, number = f"{cleaned}-{number}", number + 1
    return name


def task_examples(entry: Mapping[str, Any], study_seed: Any, study_path: str | Path, n: int = 3) -> list[dict[str, Any]]:
    """A few examples (input and gold) of a study's task entry as its seed draws them; its data
    file (`path`) resolves from the study file's folder. A UserError when the task cannot give them."""
    load_builtins()
    task, path = entry.get("task"), entry.get("path")
    if not isinstance(task, str) or not isinstance(path, str | None):
        raise UserError("choose a task to see its examples")
    seed = next((s for s in (entry.get("seed"), study_seed) if form_number(s) is not None), 0)
    spec = resolve_task(TaskConfig(task=task, path=path), Path(study_path).parent)
    items, _ = spec.sample(n, 0, int(seed))
    return [{"id": item.id, "input": item.input, "targets": " | ".join(item.targets)} for item in items]


def needs_write(path: str | Path, text: str, overwrite: bool) -> bool:
    """Whether saving `text` at `path` writes: not when the file holds it already. A different
    file there is refused unless `overwrite`; something that is not a regular file always is."""
    label = str(path)
    if not label.strip() or "\0" in label:
        raise UserError("give the path to save the study at (a file name, e.g. studies/mine.yaml)", field="Save as")
    target = Path(label).expanduser()
    if not target.exists():
        return True
    if not target.is_file():
        raise UserError("is not a regular file: choose another path to save the study at", file=label)
    try:
        same = target.read_bytes() == text.encode("utf-8")
    except OSError:
        same = False
    if not same and not overwrite:
        raise UserError("a different file exists at this path: tick Overwrite to replace it, or choose another path", file=label)
    return not same
