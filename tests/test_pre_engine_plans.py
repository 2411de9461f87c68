"""The bundled studies expand into the very trials the code before the engine redesign (issue 12)
made: ids, seeds, conditions, solvers, their plans and the prompts (tests/data/pre_engine/trials.json)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from workbench.core.messages import to_dicts
from workbench.study.spec import load_study
from workbench.study.expand import expand

REPO = Path(__file__).resolve().parent.parent
RECORDED = json.loads((REPO / "tests/data/pre_engine/trials.json").read_text())


def _row(t) -> dict:
    return {
        "trial_id": t.trial_id,
        "seed": t.seed,
        "condition": t.condition,
        "task": t.task.id,
        "item": t.item.id,
        "repeat": t.repeat,
        "solver": t.solver,
        "solver_params": json.dumps(list(t.solver_params), sort_keys=True, default=str),
        "messages_sha256": hashlib.sha256(json.dumps(to_dicts(t.messages), sort_keys=True).encode()).hexdigest(),
    }


@pytest.mark.parametrize("study", sorted(RECORDED))
def test_bundled_study_expands_as_before(study: str) -> None:
    trials = expand(load_study(REPO / "studies" / f"{study}.yaml"), "baseline")
    got = [_row(t) for t in trials]
    want = RECORDED[study]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == {key: w[key] for key in g}, g["trial_id"]


def test_expanded_trials_are_whole_trials() -> None:
    """expand builds trials without Trial.__init__ (workbench.solvers.base.holding): each
    has every field, and no other, and equals the trial __init__ makes of its fields."""
    from dataclasses import fields

    from workbench.solvers.base import Trial

    names = {f.name for f in fields(Trial)}
    for trial in expand(load_study(REPO / "studies" / "quickstart.yaml"), "baseline"):
        assert set(vars(trial)) == names
        assert trial == Trial(**vars(trial))
