"""How much of a measured effect is the parser's: the format shares of a logged run, per extractor.

For every condition and task of a run (and per condition across its tasks), under each extractor
(`strict`: the task's own parser; `flexible`: the answer-type extraction), from the logged
`response_text` with no model call:

- no_answer: the share of responses with no answer of the task's type;
- gold_but_zero: the share of zero-scored responses (wrong or no answer) that contain the gold
  (extract.mentions_gold), and the same count over all responses.

    python -m bench.extraction_shares [--db runs/format_check.duckdb] [--run RUN] [--json]
        [--show no_answer|gold_but_zero --extractor flexible]

`--show` prints those responses, to read by hand: which hold no answer of the task's type (EP01
makes the embedded model answer only a confidence number) and which are extraction misses.
Errored trials (no response) are left out and counted. The run by default: the latest in the log.
Study: studies/format_check.yaml.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.scoring.extract import DIAGNOSTIC_EXTRACTORS, NO_ANSWER, mentions_gold, score_text
from workbench.store import query
from workbench.tasks import TaskItem, TaskSpec, get_task

# What a trial row records of its task that the scoring reads (the answer type comes from the
# task's current declaration).
LOGGED_FIELDS = ("instruction", "parser", "parser_args", "parse_targets", "choice_match", "metric")


@dataclass(frozen=True)
class Reading:
    condition: str
    task: str
    extractor: str
    item_id: str
    text: str
    targets: tuple[str, ...]
    answer: str | None
    score: float | None
    status: str
    rule: str
    gold: bool  # the response names the gold (mentions_gold)


def task_as_logged(task_json: str) -> TaskSpec:
    logged = json.loads(task_json)
    return get_task(logged["id"]).model_copy(update={k: logged[k] for k in LOGGED_FIELDS if k in logged})


def trial_rows(db: Path, run: str | None) -> tuple[str, list[dict[str, Any]]]:
    if run is None:
        latest = query(db, "SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1")
        if not latest:
            raise SystemExit(f"no runs in {db}")
        run = latest[0]["run_id"]
    sql = "SELECT condition, task, task_json, item_id, item_input, targets_json, response_text FROM trials WHERE run_id = ? ORDER BY condition, task, item_id"
    return run, query(db, sql, [run])


def readings(rows: list[dict[str, Any]], extractors: tuple[str, ...]) -> tuple[list[Reading], int]:
    out, errored = [], 0
    specs: dict[str, TaskSpec] = {}
    for row in rows:
        if row["response_text"] is None:
            errored += 1
            continue
        spec = specs.setdefault(row["task_json"], task_as_logged(row["task_json"]))
        item = TaskItem(id=row["item_id"], input=row["item_input"], targets=tuple(json.loads(row["targets_json"])))
        gold = mentions_gold(spec, item, row["response_text"])
        for extractor in extractors:
            scored = score_text(spec, item, row["response_text"], extractor)
            out.append(
                Reading(row["condition"], row["task"], extractor, item.id, row["response_text"], item.targets, scored.answer, scored.value, scored.status, scored.rule, gold)
            )
    return out, errored


def shares(group: list[Reading]) -> dict[str, Any]:
    n = len(group)
    zero = [r for r in group if not r.score]
    gold_zero = sum(r.gold for r in zero)
    return {
        "n": n,
        "score": sum(r.score or 0.0 for r in group) / n if n else None,
        "no_answer": sum(r.status == NO_ANSWER for r in group) / n if n else None,
        "zero_scored": len(zero),
        "gold_but_zero": gold_zero / len(zero) if zero else 0.0,
        "gold_but_zero_of_all": gold_zero / n if n else None,
    }


def table(found: list[Reading]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[Reading]] = defaultdict(list)
    for r in found:
        groups[(r.condition, r.task, r.extractor)].append(r)
        groups[(r.condition, "all", r.extractor)].append(r)
    return [{"condition": c, "task": t, "extractor": e, **shares(g)} for (c, t, e), g in sorted(groups.items())]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:5.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("runs/format_check.duckdb"))
    parser.add_argument("--run", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show", choices=("no_answer", "gold_but_zero"), default=None)
    parser.add_argument("--extractor", default="flexible")
    args = parser.parse_args()
    run, rows = trial_rows(args.db, args.run)
    found, errored = readings(rows, DIAGNOSTIC_EXTRACTORS)
    if args.show:
        wanted = [r for r in found if r.extractor == args.extractor]
        picked = [r for r in wanted if r.status == NO_ANSWER] if args.show == "no_answer" else [r for r in wanted if not r.score and r.gold]
        for r in picked:
            print(f"--- {r.condition} {r.task} {r.item_id} gold={list(r.targets)} answer={r.answer!r} rule={r.rule}\n{r.text}")
        return
    result = table(found)
    if args.json:
        print(json.dumps({"run_id": run, "errored": errored, "rows": result}, indent=2))
        return
    print(f"run {run}: {len(rows)} trials, {errored} errored (left out)")
    print(f"{'condition':10s} {'task':18s} {'extractor':9s} {'n':>4s} {'score':>6s} {'no answer':>9s} {'gold but 0':>10s} {'(of all)':>8s}")
    for r in result:
        print(f"{r['condition']:10s} {r['task']:18s} {r['extractor']:9s} {r['n']:4d} {r['score']:6.3f} {_pct(r['no_answer']):>9s} {_pct(r['gold_but_zero']):>10s} {_pct(r['gold_but_zero_of_all']):>8s}")


if __name__ == "__main__":
    main()
