"""The runner's logged rows stay byte-identical through changes to its speed: a small simulated
study (a HEART loop, a free-answer and a choice task, two repeats, transient errors and retries) is
run and every row of trials, calls, rounds and scores, less the columns that record when and how
long, is compared with a fixture written by the code before the runner was made faster.

Regenerate the fixture only for an intended change of the rows:
    python tests/test_runner_rows_stable.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from workbench.run.scheduler import run_study
from workbench.store import query
from workbench.study.spec import StudySpec, resolve_study

FIXTURE = Path(__file__).parent / "data" / "runner_rows_stable.json"
TABLES = {"trials": "trial_id", "calls": "call_id", "rounds": "round_id", "scores": "trial_id, extractor"}
VOLATILE = {"started_at", "finished_at", "scored_at", "latency_s"}  # when and how long, not what


def _study() -> dict[str, Any]:
    return {
        "name": "rows-stable",
        "models": [{"id": "sim/stable", "params": {"temperature": 0.0}, "max_retries": 1,
                    "simulate": {"accuracy": {"control": 0.4, "EP02": 0.7}, "default_accuracy": 0.5, "error_rate": 0.45}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]},
                       {"name": "heart", "solver": "heart", "solver_params": {"rounds": 3, "mode": "oracle"}}],
        "tasks": [{"task": "ii/sum", "n": 4}, {"task": "bbh/causal_judgment", "n": 4}],
        "repeats": 2,
        "seed": 11,
        "concurrency": 1,  # one at a time: which repeat finds the other's cached answer is then fixed
    }


def _rows(db: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table, order in TABLES.items():
        rows = query(db, f"SELECT * FROM {table} ORDER BY {order}")
        out[table] = [{k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                       for k, v in row.items() if k not in VOLATILE} for row in rows]
    return out


def _run(tmp: Path) -> dict[str, list[dict[str, Any]]]:
    db = tmp / "log.duckdb"
    run_study(resolve_study(StudySpec.model_validate(_study()), "rows-stable"), db)
    return _rows(db)


def test_logged_rows_match_those_of_the_runner_before_it_was_made_faster(tmp_path: Path) -> None:
    expected = json.loads(FIXTURE.read_text())
    got = json.loads(json.dumps(_run(tmp_path)))
    assert {t: len(r) for t, r in got.items()} == {t: len(r) for t, r in expected.items()}
    assert any(r["retries"] for r in got["calls"]) and any(r["error"] for r in got["trials"]), "the study must retry and fail"
    assert any(r["condition"] == "heart" for r in got["rounds"]), "the study must include HEART rounds"
    for table in TABLES:
        for g, e in zip(got[table], expected[table]):
            assert g == e, f"{table} row differs"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        FIXTURE.write_text(json.dumps(_run(Path(tmp)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}", file=sys.stderr)
