"""Gold isolation: a solver never reads the gold; verifier-free HEART never causes a read of it
before the runner's final scoring; the oracle reads it only through the runner's verifier.

The items here carry targets sealed from the start (a SealedTargets that also records every
permitted read, with its phase and whether a solver was running at the time), so not only the
solver but every part of the pipeline is held to the access phases of workbench/gold.py. The
simulated model reads the gold to plant its effects, only in the runner's `provider` phase;
`test_heart_local.py` runs the verifier-free check on the embedded model, which never reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import write_study
from workbench.scoring import gold
from workbench.run.scheduler import run_study
from workbench.solvers.base import SOLVERS, Solution
from workbench.store import connect_reader
from workbench.study.spec import load_study
from workbench.tasks import SOURCES, TaskSpec

SOURCE = "test.sealed_gold"
SOLVING: ContextVar[bool] = ContextVar("solving", default=False)
READS: list[tuple[str, str, bool]] = []  # (item input, phase, a solver was running)
VIEWS: list[tuple[str, bool, bool]] = []  # (condition, the solver's gold is sealed, it holds a verifier)


class RecordedGold(gold.SealedTargets):
    """Sealed targets that log each permitted read."""

    __slots__ = ("key",)

    def __init__(self, targets: Any, key: str) -> None:
        super().__init__(targets)
        self.key = key

    def opened(self, phase: gold.Phase) -> None:
        READS.append((self.key, phase, SOLVING.get()))


def _sealed_source(task: TaskSpec, n: int, seed: int) -> list[Any]:
    inner = task.model_copy(update={"source": task.source_args["inner"]})
    return [replace(item, targets=RecordedGold(item.targets, item.input)) for item in SOURCES.get(inner.source)(inner, n, seed)]


if SOURCE not in SOURCES:
    SOURCES.add(SOURCE, _sealed_source)


@pytest.fixture()
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Mark the time a solver runs (its own context: concurrent trials do not mix)."""
    original = SOLVERS.get("heart")

    async def probed(trial: Any, generate: Any) -> Solution:
        VIEWS.append((trial.condition, isinstance(trial.item.targets, gold.SealedTargets), trial.verify is not None))
        token = SOLVING.set(True)
        try:
            return await original(trial, generate)
        finally:
            SOLVING.reset(token)

    monkeypatch.setitem(SOLVERS._items, "heart", probed)
    READS.clear()
    VIEWS.clear()
    yield
    READS.clear()
    VIEWS.clear()


def sealed_study(path: Path, conditions: list[dict[str, Any]], model: dict[str, Any], n: int = 8) -> Any:
    """A study whose items' gold is sealed from the moment they are made."""
    study = {
        "name": "sealed", "models": [model], "conditions": conditions,
        "tasks": [{"task": "math/word_problems", "n": n}], "seed": 5, "concurrency": 4,
    }
    resolved = load_study(write_study(path, study))
    task = resolved.tasks["math/word_problems"]
    sealed = task.model_copy(update={"source": SOURCE, "source_args": {**task.source_args, "inner": task.source}})
    return resolved.model_copy(update={"tasks": {"math/word_problems": sealed}})


def verifier_free_conditions(rounds: int) -> list[dict[str, Any]]:
    return [
        {"name": final, "solver": "heart", "solver_params": {"rounds": rounds, "mode": "verifier_free", "final": final}}
        for final in ("last", "majority", "self_verify", "synthesis")
    ]


def check_verifier_free(db: Path, run_id: str, model_reads_gold: bool) -> None:
    con = connect_reader(db)
    rows = con.execute("SELECT condition, status, error, score, consumes_gold FROM trials WHERE run_id = ?", [run_id]).fetchall()
    scored_rounds = con.execute("SELECT count(*) FROM rounds WHERE run_id = ? AND score IS NOT NULL", [run_id]).fetchone()[0]
    con.close()
    assert rows and all(status == "ok" and score is not None and consumes is False for _, status, _, score, consumes in rows), rows
    assert scored_rounds > 0, "each round's answer is scored, at final scoring"
    during_solving = {phase for _, phase, solving in READS if solving}
    assert "scoring" not in during_solving, "verifier-free mode read the gold before final scoring"
    assert during_solving == ({"provider"} if model_reads_gold else set())
    assert {phase for _, phase, solving in READS if not solving} == {"data", "scoring"}
    assert VIEWS and all(sealed and not verifier for _, sealed, verifier in VIEWS), "a verifier-free solver holds no verifier"


def test_verifier_free_mode_never_reads_the_gold_before_final_scoring(tmp_path: Path, probe: None) -> None:
    model = {"id": "sim/g", "params": {"temperature": 0.0}, "simulate": {"default_accuracy": 0.4, "judge_accuracy": 0.7}}
    study = sealed_study(tmp_path / "s.yaml", verifier_free_conditions(rounds=3), model)
    summary = run_study(study, tmp_path / "log.duckdb", use_cache=False)
    check_verifier_free(tmp_path / "log.duckdb", summary.run_id, model_reads_gold=True)


def test_the_oracle_reads_the_gold_only_through_the_runners_verifier(tmp_path: Path, probe: None) -> None:
    """The same probe sees the oracle's reads while the loop runs: so the check above can fail."""
    model = {"id": "sim/g", "params": {"temperature": 0.0}, "simulate": {"default_accuracy": 0.4}}
    conditions = [{"name": "oracle", "solver": "heart", "solver_params": {"rounds": 3, "mode": "oracle"}}]
    summary = run_study(sealed_study(tmp_path / "s.yaml", conditions, model), tmp_path / "log.duckdb", use_cache=False)
    assert summary.errors == 0
    assert {phase for _, phase, solving in READS if solving} == {"provider", "scoring"}
    assert VIEWS and all(sealed and verifier for _, sealed, verifier in VIEWS)
    con = connect_reader(tmp_path / "log.duckdb")
    assert {r[0] for r in con.execute("SELECT consumes_gold FROM trials").fetchall()} == {True}
    con.close()


@pytest.mark.parametrize("sealed_from_the_start", [True, False])
def test_a_solver_that_reads_the_gold_fails_its_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sealed_from_the_start: bool) -> None:
    """The runner seals every trial it hands a solver, whatever the task; reading the targets, or
    scoring against them, raises inside the solver and the trial is an error, not a result."""

    async def peek(trial: Any, generate: Any) -> Solution:
        return Solution(text=str(trial.item.targets[0]))

    async def score_itself(trial: Any, generate: Any) -> Solution:
        reply = await generate(trial.messages)
        trial.task.score(reply.text, trial.item)
        return Solution(text=reply.text)

    monkeypatch.setitem(SOLVERS._items, "peek", peek)
    monkeypatch.setitem(SOLVERS._items, "score_itself", score_itself)
    model = {"id": "sim/g", "simulate": {"default_accuracy": 1.0}}
    conditions = [{"name": "control"}, {"name": "peek", "solver": "peek"}, {"name": "score_itself", "solver": "score_itself"}]
    path = tmp_path / "s.yaml"
    study = sealed_study(path, conditions, model, n=3) if sealed_from_the_start else load_study(write_study(path, {
        "name": "plain", "models": [model], "conditions": conditions, "tasks": [{"task": "math/word_problems", "n": 3}]}))
    summary = run_study(study, tmp_path / "log.duckdb")
    con = connect_reader(tmp_path / "log.duckdb")
    rows = con.execute("SELECT condition, status, error, score FROM trials WHERE run_id = ?", [summary.run_id]).fetchall()
    con.close()
    for condition, status, error, score in rows:
        if condition == "control":
            assert status == "ok" and score == 1.0
        else:
            assert status == "error" and error.startswith("GoldSealedError: the gold answer is sealed"), error


def test_sealed_targets_open_only_inside_an_access_phase() -> None:
    sealed = gold.SealedTargets(("42",))
    for read in (lambda: sealed[0], lambda: list(sealed), lambda: len(sealed)):
        with pytest.raises(gold.GoldSealedError):
            read()
    assert repr(sealed) == "SealedTargets(<sealed>)"
    for phase in gold.PHASES:
        with gold.access(phase):
            assert list(sealed) == ["42"] and sealed[0] == "42"
    with pytest.raises(gold.GoldSealedError):
        sealed[0]


@pytest.mark.parametrize("score, correct", [(1.0, True), (1.0 - 1e-12, True), (0.999, False), (0.0, False)])
def test_one_correct_cut_off_for_the_oracle_the_judges_reference_check_and_the_rounds(score: float, correct: bool) -> None:
    """The oracle verifier, the judge's model-free reference check and the per-round accuracy read
    scores through scoring.is_correct: float noise below 1.0 still counts as correct."""
    import pandas as pd

    from workbench.scoring.scorers import ScoreCase
    from workbench.scoring.metrics import is_correct
    from workbench.tasks.judge import reference_match

    class Fixed:  # a task whose scorer gives `score` for any text
        def score(self, text: str, item: Any) -> tuple[str, float]:
            return text, score

    task: Any = Fixed()
    assert gold.oracle(task, None)("answer").correct is correct  # type: ignore[arg-type]
    assert reference_match(ScoreCase(task=task, item=None, text="answer", seed=0)) is correct  # type: ignore[arg-type]
    assert is_correct(pd.Series([score, 0.0])).tolist() == [correct, False]
