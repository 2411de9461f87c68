"""BatchWriter hands batches to the segment writer in the background, one at a time and in order."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from workbench.run import batching
from workbench.run.batching import BatchWriter


class SlowWriter:
    """Records each batch's trials and whether two writes ever overlapped."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.folds: list[bool] = []
        self.active = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def write(self, rows: dict[str, list[dict[str, Any]]], fold: bool = True) -> None:
        with self._lock:
            self.active += 1
            self.overlapped |= self.active > 1
        time.sleep(0.02)
        with self._lock:
            self.active -= 1
            self.batches.append([r["n"] for r in rows.get("trials", [])])
            self.folds.append(fold)


def test_workers_do_not_wait_for_writes_and_writes_never_overlap(monkeypatch: Any) -> None:
    monkeypatch.setattr(batching, "FLUSH_EVERY_TRIALS", 2)
    monkeypatch.setattr(batching, "MAX_BEHIND_TRIALS", 6)
    writer = SlowWriter()
    log = BatchWriter(writer)  # type: ignore[arg-type]
    counter = iter(range(200))

    async def worker() -> None:
        for n in counter:
            log.add("trials", {"n": n})
            await asyncio.sleep(0)  # other workers land trials between this one's and its flush
            await log.maybe_flush()

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(8)))
        log.add("trials", {"n": 200})  # the run's last event
        await log.flush(fold=False)

    asyncio.run(main())
    assert not writer.overlapped, "two batches were written at once"
    assert [n for batch in writer.batches for n in batch] == list(range(201)), "every trial once, in order"
    assert len(writer.batches) < 100, "batches grow while the writer is busy"
    assert writer.folds[-1] is False and all(writer.folds[:-1])
