"""Rows on their way to the log: buffered in memory and appended as Parquet segments in batches
(every FLUSH_EVERY_TRIALS trials or FLUSH_EVERY_S seconds), written in a thread so trials keep
running meanwhile (they do not wait for it). A killed run loses at most its unwritten batches,
whose trials run again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..store import SegmentWriter

FLUSH_EVERY_S = 1.0
FLUSH_EVERY_TRIALS = 512
MAX_BEHIND_TRIALS = 8 * FLUSH_EVERY_TRIALS  # unwritten trials at most, while a write is under way


class BatchWriter:
    """Buffers rows by table and hands them to a SegmentWriter in batches, in order.

    A batch is written in the background while trials keep running: `maybe_flush` never waits for
    a write (nor for the compaction a write may start), it hands over the next batch only once the
    previous one is written, so the batches grow while the writer is busy, up to MAX_BEHIND_TRIALS
    trials, where trials wait for it."""

    def __init__(self, writer: SegmentWriter) -> None:
        self.writer = writer
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.pending_trials = 0
        self.last_flush = time.monotonic()
        self._writing: asyncio.Task[None] | None = None

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)
        if table == "trials":
            self.pending_trials += 1

    def extend(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Add `rows` to `table` at once (the runner adds each trial's rows table by table)."""
        if rows:
            self.rows.setdefault(table, []).extend(rows)
            if table == "trials":
                self.pending_trials += len(rows)

    def due(self) -> bool:
        """Whether a batch is due: checked after every trial, without a coroutine for each."""
        return self.pending_trials >= FLUSH_EVERY_TRIALS or time.monotonic() - self.last_flush >= FLUSH_EVERY_S

    async def maybe_flush(self) -> None:
        if not self.due():
            return
        while self._writing is not None and not self._writing.done():  # again after a wait: another worker may have handed over meanwhile
            if self.pending_trials < MAX_BEHIND_TRIALS:
                return  # the writer is busy: this batch grows meanwhile
            await asyncio.shield(self._writing)
        self._hand_over()

    async def flush(self, fold: bool = True) -> None:
        """Write everything added so far, and wait until it is written. `fold=False`: the last
        batch of a run, which compacts right after, skips the writer's periodic compaction."""
        while self._writing is not None and not self._writing.done():  # one write at a time, in order
            await asyncio.shield(self._writing)
        self._hand_over(fold)
        if self._writing is not None:
            await asyncio.shield(self._writing)

    def _hand_over(self, fold: bool = True) -> None:
        """Start writing the batch in a thread (a failed write raises at the next wait for it)."""
        if self._writing is not None and self._writing.done():
            self._writing.result()
        rows, self.rows = self.rows, {}
        self.pending_trials = 0
        self.last_flush = time.monotonic()
        if rows:
            self._writing = asyncio.ensure_future(asyncio.to_thread(self.writer.write, rows, fold))
