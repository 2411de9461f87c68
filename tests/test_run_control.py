"""A run driven from Python: stopped from another asyncio task through its StopHandle, it resumes
as an interrupted run does (no trial lost or run twice); its progress callbacks report done,
errors, no-answer and pending; a re-run with nothing pending reads no call history."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conftest import sim_study, write_study
from workbench.run.cache import ResponseCache
from workbench.run.control import Progress, StopHandle
from workbench.run.scheduler import Runner, run_study
from workbench.store import query
from workbench.study.spec import load_study

COLUMNS = "trial_id, condition, item_id, repeat, seed, status, score, response_text, n_calls"


def _study(tmp_path: Path, name: str, **simulate: Any) -> Any:
    study = sim_study(name=name, concurrency=4)
    study["models"][0]["simulate"] = {"accuracy": {"control": 0.5, "EP02": 0.8}, "answer_format": {"NP01": "confidence_only"}, **simulate}
    study["models"][0]["max_retries"] = 0  # errors stay errors
    return load_study(write_study(tmp_path / f"{name}.yaml", study))


def _trials(db: Path, run_id: str) -> list[tuple]:
    return [tuple(r.values()) for r in query(db, f"SELECT {COLUMNS} FROM trials WHERE run_id = ? ORDER BY trial_id", [run_id])]


def test_a_run_stopped_from_another_task_resumes_without_losing_or_repeating_a_trial(tmp_path: Path) -> None:
    study = _study(tmp_path, "stoppable", latency_ms=20.0, error_rate=0.1)
    db = tmp_path / "log.duckdb"
    seen: list[Progress] = []
    stop = StopHandle()

    async def main() -> Any:
        runner = Runner(study, db, progress=seen.append, stop=stop, max_attempts=1)  # its errors are not retried: no trial runs twice
        run = asyncio.create_task(runner.run())

        async def stopper() -> None:
            while not seen or seen[-1].done < 12:
                await asyncio.sleep(0.005)
            stop.stop()

        await asyncio.gather(run, stopper())
        return run.result()

    first = asyncio.run(main())
    assert first.interrupted and 12 <= first.trials_done < first.trials_planned == 60
    landed = _trials(db, first.run_id)
    assert len(landed) == first.trials_done  # what it reported done has landed, nothing more

    resumed: list[Progress] = []
    second = run_study(study, db, progress=resumed.append, max_attempts=1)
    assert not second.interrupted and second.run_id == first.run_id
    assert second.trials_run_now == 60 - first.trials_done
    assert resumed[0].done == first.trials_done and resumed[0].pending == 60 - first.trials_done
    rows = _trials(db, first.run_id)
    assert len(rows) == len({r[0] for r in rows}) == 60  # none lost, none repeated
    assert set(landed) <= set(rows)  # what landed before the stop stays as it was

    # The same study run without a stop logs the same trials.
    whole = run_study(study, tmp_path / "whole.duckdb", max_attempts=1)
    assert _trials(tmp_path / "whole.duckdb", whole.run_id) == rows

    # Progress: done counts up by one per landed trial; errors and no-answer as logged.
    statuses = [r[5] for r in rows]
    last = resumed[-1]
    assert (last.total, last.done, last.pending) == (60, 60, 0)
    assert last.errors == statuses.count("error") > 0
    assert last.no_answer == statuses.count("no_answer") > 0
    assert [p.done for p in resumed] == list(range(first.trials_done, 61))
    assert [p.run_now for p in seen] == list(range(0, first.trials_done + 1))


def test_a_rerun_with_nothing_pending_reads_no_call_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study(tmp_path, "rerun")
    db = tmp_path / "log.duckdb"
    first = run_study(study, db)
    assert first.trials_done == 60 and first.model_calls == 60
    loaded: list[str] = []
    put = ResponseCache.put
    monkeypatch.setattr(ResponseCache, "put", lambda self, key, response: (loaded.append(key), put(self, key, response))[1])
    again = run_study(study, db)
    assert again.trials_run_now == 0 and again.trials_done == 60
    assert loaded == [], f"a run with nothing pending loaded {len(loaded)} logged answers"
    # with trials pending (a fresh run of the same study) the log's answers still serve them
    fresh = run_study(study, db, fresh=True)
    assert fresh.cache_hits == 60 and fresh.model_calls == 0 and len(loaded) == 60


def test_a_run_collects_cyclic_garbage_less_often_and_restores_the_pace_after(tmp_path: Path) -> None:
    import gc

    from workbench.run.scheduler import RUN_GC_THRESHOLDS

    study = _study(tmp_path, "collecting")
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    run_study(study, tmp_path / "log.duckdb", progress=lambda _: during.append(gc.get_threshold()))
    assert during and all(t[0] >= RUN_GC_THRESHOLDS[0] for t in during)
    assert gc.get_threshold() == before

    with pytest.raises(RuntimeError):  # a run that fails restores it too

        def fail(_: Progress) -> None:
            raise RuntimeError("progress callback failed")

        run_study(study, tmp_path / "other.duckdb", progress=fail)
    assert gc.get_threshold() == before
