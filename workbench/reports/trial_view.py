"""The trial viewer: what was asked, what came back, what was read from it, and how it scored.

`trial_listing` selects a run's trials (by condition, task, outcome, status) under an extractor
(default: the run's own). With `changed`, it pairs each selected trial of a treated condition with
the control's trial of the same model, example and repeat, and keeps the pairs whose outcomes
differ: the discordant pairs that drive the paired test. The outcome is the trial's score, 0 for
an errored trial or one with no answer (as they count by default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..scoring.extract import OK
from ..core.records import Record
from ..scoring.metrics import is_correct
from ..stats.extractor_view import use_extractor
from ..store import connect_reader, log_exists


@dataclass(frozen=True)
class TrialView(Record):
    trial_id: str
    model: str
    condition: str
    task: str
    item_id: str
    repeat: int
    prompt: str  # the last user message sent
    response: str | None
    answer: str | None  # as the extractor read it
    gold: list[str]
    score: float | None
    status: str
    extractor: str | None
    rule: str | None  # the extractor's rule that found the answer

    @property
    def outcome(self) -> float:
        return float(self.score) if self.status == OK and self.score is not None else 0.0


@dataclass(frozen=True)
class TrialListing:
    run_id: str
    control: str
    extractor: str | None
    trials: list[TrialView] = field(default_factory=list)
    pairs: list[tuple[TrialView, TrialView]] = field(default_factory=list)  # (control, condition), with `changed`
    changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        head = {"run_id": self.run_id, "control": self.control, "extractor": self.extractor}
        if self.changed:
            return {**head, "pairs": [{"control": c.to_dict(True), "condition": t.to_dict(True)} for c, t in self.pairs]}
        return {**head, "trials": [t.to_dict(True) for t in self.trials]}


_SELECT = (
    "SELECT t.trial_id, t.model, t.condition, t.task, t.item_id, t.repeat, t.messages_json, t.response_text, t.answer, "
    "t.targets_json, t.score, t.status, t.extractor, s.rule FROM trials t "
    "LEFT JOIN scores s ON s.trial_id = t.trial_id AND s.extractor = t.extractor WHERE t.run_id = ?"
)


def _prompt(messages_json: str | None) -> str:
    messages = json.loads(messages_json or "[]")
    return next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


def _view(row: tuple[Any, ...]) -> TrialView:
    trial_id, model, condition, task, item_id, repeat, messages_json, response, answer, targets_json, score, status, extractor, rule = row
    return TrialView(
        trial_id=trial_id, model=model, condition=condition, task=task, item_id=item_id, repeat=int(repeat or 0),
        prompt=_prompt(messages_json), response=response, answer=answer, gold=list(json.loads(targets_json or "[]")),
        score=score, status=status, extractor=extractor, rule=rule,
    )


def _keep(view: TrialView, score: int | None, status: str | None) -> bool:
    if status is not None and view.status != status:
        return False
    return score is None or bool(is_correct(view.outcome)) == bool(score)


def trial_listing(
    db_path: Path,
    run_id: str | None = None,
    *,
    condition: str | None = None,
    task: str | None = None,
    changed: bool = False,
    score: int | None = None,
    status: str | None = None,
    extractor: str | None = None,
    limit: int | None = None,
    item: str | None = None,
) -> TrialListing:
    """The run's trials (default: the latest run) that pass the filters, in the study's order of
    examples; `score` 1 keeps correct outcomes, 0 the others; `item` one example's trials (read
    alone: the Results page's paired view of a large run). UserError on an unknown log, run,
    condition, task, item or extractor."""
    db_path = Path(db_path)
    con, run_id = _run_reader(db_path, run_id)
    try:
        used = use_extractor(con, run_id, extractor)
        flags = con.execute("SELECT condition, is_control FROM conditions WHERE run_id = ?", [run_id]).fetchall()
        one_item = "" if item is None else " AND t.item_id = ?"
        rows = con.execute(_SELECT + one_item + " ORDER BY t.model, t.task, t.item_id, t.repeat", [run_id, *([] if item is None else [item])]).fetchall()
    finally:
        con.close()
    control = _control(flags)
    views = [_view(r) for r in rows]
    if item is not None and not views:
        raise UserError(f"no example {item!r} in run {run_id}", field="--item")
    _check_choice("--condition", condition, {v.condition for v in views})
    _check_choice("--task", task, {v.task for v in views})
    chosen = [v for v in views if (task is None or v.task == task) and _keep(v, score, status)]
    if not changed:
        picked = [v for v in chosen if condition is None or v.condition == condition]
        return TrialListing(run_id, control, used, trials=picked[:limit] if limit else picked)
    if condition == control:
        raise UserError(f"--changed pairs a condition with the control ({control}): name another condition", field="--condition")
    controls = {(v.model, v.task, v.item_id, v.repeat): v for v in views if v.condition == control}
    pairs = []
    for view in chosen:
        twin = controls.get((view.model, view.task, view.item_id, view.repeat))
        if view.condition == control or (condition is not None and view.condition != condition) or twin is None:
            continue
        if abs(view.outcome - twin.outcome) > 1e-9:
            pairs.append((twin, view))
    return TrialListing(run_id, control, used, pairs=pairs[:limit] if limit else pairs, changed=True)


def _check_choice(option: str, value: str | None, present: set[str]) -> None:
    if value is not None and value not in present:
        raise UserError(f"{value!r} is not in the run ({', '.join(sorted(present)) or 'nothing'})", field=option)


def _run_reader(db_path: Path, run_id: str | None) -> tuple[Any, str]:
    """A reader of the log and the run asked for (default: the latest); UserError when there is none."""
    if not log_exists(db_path):
        raise UserError("no log here (run a study first, or pass --db)", file=str(db_path))
    con = connect_reader(db_path)
    runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY created_at").fetchall()]
    if not runs:
        con.close()
        raise UserError("the log holds no runs", file=str(db_path))
    run_id = run_id or runs[-1]
    if run_id not in runs:
        con.close()
        raise UserError(f"no run {run_id!r} (runs: {', '.join(runs)})", file=str(db_path), field="RUN")
    return con, run_id


def _control(flags: list[tuple[str, bool]]) -> str:
    return next((c for c, is_control in flags if is_control), flags[0][0] if flags else "control")


@dataclass(frozen=True)
class ExampleEntry(Record):
    """One example (task, item) of a run and the conditions whose outcome differs from the
    control's on it in some repeat: what `trial_listing(changed=True)` pairs for it."""

    task: str
    item_id: str
    changed: tuple[str, ...]  # conditions with a discordant pair on this example


# A trial's outcome as TrialView.outcome has it (the score of an answered trial, else 0), per
# (model, task, item, repeat), against the control's, computed by DuckDB: the example index of a
# 100,000-trial run without reading its prompts and responses.
_DISCORDANT = """
WITH outcome AS (
    SELECT model, task, item_id, repeat, condition, CASE WHEN status = ? AND score IS NOT NULL THEN score ELSE 0 END AS value
    FROM trials WHERE run_id = ?
)
SELECT e.task, e.item_id, list(DISTINCT d.condition ORDER BY d.condition) FILTER (WHERE d.condition IS NOT NULL) AS changed
FROM (SELECT DISTINCT task, item_id FROM outcome) e
LEFT JOIN (
    SELECT o.task, o.item_id, o.condition FROM outcome o JOIN outcome c
    ON c.condition = ? AND o.condition <> ? AND o.model = c.model AND o.task = c.task AND o.item_id = c.item_id AND o.repeat = c.repeat
    WHERE abs(o.value - c.value) > 1e-9
) d ON d.task = e.task AND d.item_id = e.item_id
GROUP BY e.task, e.item_id ORDER BY e.task, e.item_id
"""


def example_index(db_path: Path, run_id: str | None = None, *, extractor: str | None = None) -> tuple[str, list[ExampleEntry]]:
    """The run (default: the latest) and its examples, each with the conditions that have a
    discordant pair with the control on it under `extractor` (default: the run's own)."""
    con, run_id = _run_reader(Path(db_path), run_id)
    try:
        use_extractor(con, run_id, extractor)
        control = _control(con.execute("SELECT condition, is_control FROM conditions WHERE run_id = ?", [run_id]).fetchall())
        rows = con.execute(_DISCORDANT, [OK, run_id, control, control]).fetchall()
    finally:
        con.close()
    return run_id, [ExampleEntry(str(task), str(item), tuple(changed or ())) for task, item, changed in rows]
