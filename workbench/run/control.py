"""What code outside a run sees of it while it runs: progress reports and a stop handle.

A run reports `Progress` after registering and after every trial that lands; a `StopHandle` may
be triggered from any thread or task, and the run then stops as an interrupted run does (what
landed stays, the rest runs on resume).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    total: int  # the run's planned trials
    done: int  # trials logged, by earlier sessions of the run and this one
    errors: int  # of done: trials whose status is error
    no_answer: int  # of done: trials whose response held no answer of the task's type
    run_now: int  # of done: trials this session executed
    run_id: str = ""  # the run reported on

    @property
    def pending(self) -> int:
        return self.total - self.done


ProgressCallback = Callable[[Progress], None]


class StopHandle:
    """Ask a run to stop; safe to trigger from another thread, task or signal handler."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()
