"""One task example as data (task sources make them, scoring reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskItem:
    """One example. `targets` are the accepted gold answers; `choices`, when present, the
    options a multiple-choice answer is matched to; `demo_output` the text a few-shot demo
    shows as its answer (a worked solution, say), else one of the targets (`demo_answer`)."""

    id: str
    input: str
    targets: tuple[str, ...]
    choices: tuple[str, ...] = ()
    meta: tuple[tuple[str, Any], ...] = field(default=())
    demo_output: str | None = None
