"""Named points where a test holds a process for a moment, to deliver a real signal there (a
Ctrl-C during start-up or compaction) rather than hoping to hit them by timing.

`WORKBENCH_PAUSE_AT=POINT:MARKER` makes the process create the file MARKER when it reaches POINT
and wait there HOLD_S seconds, then go on. Unset, as outside tests, a point reads one variable."""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "WORKBENCH_PAUSE_AT"
HOLD_S = 2.0
POINTS = frozenset({"startup", "compaction", "search_ask"})  # where the workbench calls pause_point


def pause_point(name: str) -> None:
    point, _, marker = os.environ.get(PAUSE_ENV, "").partition(":")
    if point == name and marker:
        Path(marker).touch()
        time.sleep(HOLD_S)
