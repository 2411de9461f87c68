"""Blind ratings of a run's outputs by human raters (the study's `rating:` block; the UI's Rate page).

A rater is shown units in a seeded random order: in `single` mode one output, in `pair` mode a
rated condition's output beside the control's on the same example, its sides drawn at random.
What a rater sees holds the example's input and the responses only: no condition, no stimulus,
no trial id (a unit is named by a digest of its trials). The order is drawn per rater from
(the block's seed, else the study's; the rater's name): each rater has an order of their own, so
an order effect does not fall on one condition, and the same rater gets the same order every
time. Ratings are analysed as scores (a trial's score on a scale: the mean of its ratings) with
the comparison table `compare` builds, and raters' agreement is Krippendorff's alpha.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import duckdb
import krippendorff
import numpy as np
import pandas as pd

from ..core.errors import UserError
from ..core.records import Record
from ..core.text import check_name
from ..study.spec import NoRatingBlock, RatingScale, RatingSpec
from .table import Comparison, compare

SIDES = ("A", "B")  # what a pair's outputs are called on screen


@dataclass(frozen=True)
class Output(Record):
    """One output as a rater sees it: its side (`A`/`B` in a pair; empty alone) and the response."""

    side: str
    response: str


@dataclass(frozen=True)
class Unit(Record):
    """What a rater rates at once: an example's input and one output, or two side by side."""

    unit_id: str  # a digest of the unit's trials: names it without telling its condition
    position: int  # in the rater's order, from 1
    task_input: str
    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class _Placed:
    """A unit with the trials behind its outputs (never shown): (trial_id, attempt) per output."""

    unit: Unit
    trials: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RatingPlan:
    """A run's rating block as logged, its control and the seed its orders are drawn from."""

    run_id: str
    spec: RatingSpec
    control: str
    seed: int

    def scale(self, name: str) -> RatingScale:
        return next(s for s in self.spec.scales if s.name == name)


def rating_plan(con: duckdb.DuckDBPyConnection, run_id: str, label: str) -> RatingPlan:
    """The rating block of the run's logged study; UserError when it has none."""
    row = con.execute("SELECT spec_json FROM runs WHERE run_id = ?", [run_id]).fetchone()
    spec = json.loads(row[0]) if row and row[0] else {}
    if not spec.get("rating"):
        raise NoRatingBlock(
            f"run {run_id}'s study has no `rating:` block, so its outputs are not rated; add one to the study file "
            "(e.g. `rating: {scales: [{name: quality, min: 1, max: 5}]}`) and run it again",
            file=label,
        )
    flagged = con.execute("SELECT condition FROM conditions WHERE run_id = ? AND is_control", [run_id]).fetchone()
    names = [c["name"] for c in spec.get("conditions", [])]
    control = flagged[0] if flagged else (spec.get("control") or (names[0] if names else "control"))
    rating = RatingSpec.model_validate(spec["rating"])
    return RatingPlan(run_id, rating, control, int(rating.seed if rating.seed is not None else spec.get("seed", 0)))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def order_seed(seed: int, rater: str) -> np.random.Generator:
    """The rater's generator: from the plan's seed and the rater's name."""
    return np.random.default_rng([seed % 2**64, int(_digest(rater), 16)])


def _outputs(con: duckdb.DuckDBPyConnection, plan: RatingPlan) -> pd.DataFrame:
    """The run's answered trials (latest attempts) of the rated conditions and tasks."""
    frame = con.execute(
        "SELECT trial_id, attempt, condition, model, task, item_id, repeat, coalesce(item_input, '') AS item_input, response_text "
        "FROM trials WHERE run_id = ? AND response_text IS NOT NULL AND status <> 'error' ORDER BY trial_id",
        [plan.run_id],
    ).df()
    for key, column in (("conditions", "condition"), ("tasks", "task")):
        wanted = getattr(plan.spec, key)
        if wanted is not None:
            frame = frame[frame[column].isin(wanted)]
    return frame


def _units(frame: pd.DataFrame, plan: RatingPlan) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(unit id, input, rows) for every unit of the run, in unit-id order (the base the orders permute)."""
    rows = list(frame.itertuples(index=False))
    if plan.spec.mode == "single":
        units = [(_digest(plan.run_id, r.trial_id), r.item_input, (r,)) for r in rows]
    else:
        by_example: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            by_example.setdefault((r.model, r.task, r.item_id, r.repeat), {})[r.condition] = r
        units = [
            (_digest(plan.run_id, control.trial_id, other.trial_id), control.item_input, (control, other))
            for found in by_example.values()
            if (control := found.get(plan.control)) is not None
            for condition, other in sorted(found.items())
            if condition != plan.control
        ]
    return sorted(units, key=lambda u: u[0])


def queue(con: duckdb.DuckDBPyConnection, plan: RatingPlan, rater: str) -> list[_Placed]:
    """Every unit of the run in the rater's order (rated ones included)."""
    units = _units(_outputs(con, plan), plan)
    rng = order_seed(plan.seed, rater)
    order = rng.permutation(len(units))
    flips = rng.integers(0, 2, len(units))  # a pair's sides, per unit of the base order
    placed = []
    for position, index in enumerate(order, start=1):
        unit_id, shown_input, rows = units[index]
        rows = rows[::-1] if flips[index] else rows
        sides = SIDES if len(rows) == 2 else ("",)
        outputs = tuple(Output(side, str(r.response_text)) for side, r in zip(sides, rows))
        placed.append(_Placed(Unit(unit_id, position, str(shown_input), outputs), tuple((str(r.trial_id), int(r.attempt or 1)) for r in rows)))
    return placed


def rated_units(con: duckdb.DuckDBPyConnection, run_id: str, rater: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT DISTINCT unit_id FROM ratings WHERE run_id = ? AND rater = ?", [run_id, rater]).fetchall()}


def check_rater(rater: str) -> str:
    try:
        return check_name(rater.strip())
    except ValueError as exc:
        raise UserError(str(exc), field="rater") from None


def rating_rows(plan: RatingPlan, placed: _Placed, rater: str, values: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ratings rows of one unit: `values` maps each output's side ("" alone, "A"/"B" in a pair)
    to a value per scale; every output needs every scale, each a whole point of its scale."""
    rows = []
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    trials = dict(zip((o.side for o in placed.unit.outputs), placed.trials))
    unknown = sorted(set(values) - set(trials))
    if unknown:
        raise UserError(f"unknown side {unknown[0]!r} (allowed: {', '.join(repr(s) for s in trials)})", field="values")
    for side, (trial_id, attempt) in trials.items():
        given = values.get(side, {})
        for scale in plan.spec.scales:
            where = f"values[{side!r}].{scale.name}" if side else f"values.{scale.name}"
            value = given.get(scale.name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not scale.min <= value <= scale.max:
                raise UserError(f"must be a whole number from {scale.min} to {scale.max}; got {value!r}", field=where)
            partner = next((t for s, (t, _) in trials.items() if s != side), None)
            rows.append({
                "run_id": plan.run_id, "rater": rater, "unit_id": placed.unit.unit_id, "trial_id": trial_id, "attempt": attempt,
                "scale": scale.name, "value": int(value), "rated_at": now, "position": placed.unit.position,
                "order_seed": plan.seed, "side": side or None, "partner_trial_id": partner,
            })
        extra = sorted(set(given) - {s.name for s in plan.spec.scales})
        if extra:
            raise UserError(f"unknown scale {extra[0]!r} (allowed: {', '.join(s.name for s in plan.spec.scales)})", field="values")
    return rows


# -- analysis ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Agreement(Record):
    """Krippendorff's alpha of one scale across raters (None with a reason when it cannot be had)."""

    scale: str
    level: str
    alpha: float | None
    raters: int
    units: int  # outputs rated by at least two raters
    note: str | None = None


def ratings_frame(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """The run's ratings, one row per rater, unit, output and scale, with the output's trial."""
    return con.execute(
        "SELECT r.rater, r.unit_id, r.trial_id, r.scale, r.value, t.model, t.condition, t.task, t.item_id, t.repeat "
        "FROM ratings r JOIN trials t ON t.trial_id = r.trial_id WHERE r.run_id = ? ORDER BY r.scale, r.rater, r.unit_id, r.trial_id",
        [run_id],
    ).df()


def reliability_matrix(ratings: pd.DataFrame) -> np.ndarray:
    """Raters (rows) by rated outputs (columns: an output within its unit), NaN where a rater gave none."""
    wide = ratings.pivot_table(index="rater", columns=["unit_id", "trial_id"], values="value", aggfunc="first")
    return wide.to_numpy(dtype=float)


def agreement(ratings: pd.DataFrame, scale: str, level: str) -> Agreement:
    """Krippendorff's alpha (the `krippendorff` package) at `level` (interval or ordinal)."""
    matrix = reliability_matrix(ratings) if len(ratings) else np.empty((0, 0))
    raters = matrix.shape[0]
    shared = int((np.sum(~np.isnan(matrix), axis=0) >= 2).sum()) if matrix.size else 0
    if raters < 2 or shared == 0:
        return Agreement(scale, level, None, raters, shared, "needs two raters who rated the same output")
    try:
        alpha = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))
    except ValueError as exc:  # e.g. every rating the same value: agreement is undefined
        return Agreement(scale, level, None, raters, shared, str(exc).rstrip("."))
    return Agreement(scale, level, None if np.isnan(alpha) else alpha, raters, shared, "undefined: no variation in the ratings" if np.isnan(alpha) else None)


def scale_frame(ratings: pd.DataFrame) -> pd.DataFrame:
    """One scale's ratings as trials with a score (the mean of the trial's ratings, across raters
    and the pairs it was shown in), in the columns the comparison table reads."""
    keys = ["model", "condition", "task", "item_id", "repeat", "trial_id"]
    frame = ratings.groupby(keys, as_index=False, sort=True)["value"].mean().rename(columns={"value": "score"})
    return frame.assign(status="ok", n_calls=1, consumes_gold=False, chance=np.nan).drop(columns="trial_id")


def compare_scale(ratings: pd.DataFrame, control: str, order: Sequence[str], task_order: Sequence[str], **options: Any) -> Comparison | None:
    """The comparison table of one scale's ratings against the control (None without ratings)."""
    if ratings.empty:
        return None
    return compare(scale_frame(ratings), control, order=order, task_order=task_order, **options)
