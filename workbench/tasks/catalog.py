"""What `workbench tasks list` and `tasks sample` show: plain dicts built from the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import TaskConfig, TaskSpec, builtin_tasks, resolve_task


def _data(spec: TaskSpec) -> str:
    if spec.source is None:
        return "file (give path)"
    if spec.authored:
        return "generated (workbench)"
    return spec.data_citation.split(",")[0] if spec.data_citation else spec.source


def task_rows(suite: str | None = None) -> list[dict[str, Any]]:
    """One row per built-in task, in suite order; n_available is 0 for tasks that need a file."""
    rows = []
    for spec in builtin_tasks().values():
        if suite is not None and spec.suite != suite:
            continue
        rows.append(
            {
                "id": spec.id,
                "suite": spec.suite,
                "name": spec.name,
                "metric": spec.metric,
                "parser": spec.parser,
                "answer_type": spec.answer_type,  # where the flexible extractor looks (workbench/answers.py)
                "candidates": list(spec.candidates),
                "candidates_from": spec.candidates_from,
                "scoring": spec.scoring,  # `metric` (parser + metric) or e.g. `judge`, with scoring_args
                "scoring_args": spec.scoring_args,
                "program": spec.program,
                "n_available": spec.available(),
                "data": _data(spec),
                "needs_path": spec.source is None,
                "takes_path": spec.file_source is not None,
                "instruction": spec.instruction,
                "variants": ["original", *sorted(spec.instructions)],
                "scorer_profiles": ["default", *sorted(spec.profiles)],
                "chance": spec.chance,
                "version": spec.version,
            }
        )
    return rows


def sample_rows(task: str, n: int, seed: int, *, shots: int = 0, path: str | None = None, variant: str | None = None) -> dict[str, Any]:
    """The first n examples a study with this seed would run, with their rendered prompts (and
    the demos the first repeat of each would show)."""
    from ..core.messages import to_dicts
    from ..core.seeds import draw_demos, query_seed

    spec = resolve_task(TaskConfig(task=task, path=path, variant=variant), Path.cwd())
    items, pool = spec.sample(n, shots, seed)
    rows = []
    for item in items:
        query = query_seed(seed, spec.id, item.id, 0)
        demos = draw_demos(pool, shots, query)
        rows.append(
            {
                "id": item.id,
                "input": item.input,
                "targets": list(item.targets),
                "choices": list(item.choices),
                "demo_ids": [d.id for d in demos],
                "messages": to_dicts(spec.render(item, demos, query)),
            }
        )
    return {"task": spec.id, "seed": seed, "shots": shots, "n_available": spec.available(), "descriptor": spec.descriptor(), "items": rows}
