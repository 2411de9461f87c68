"""Rows on their way to the log: buffered in memory and appended as Parquet segments in batches
(every FLUSH_EVERY_TRIALS trials or FLUSH_EVERY_S seconds), written in a thread so trials keep
running meanwhile. A killed run loses at most its unflushed batch, whose trials run again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from ..store import SegmentWriter

FLUSH_EVERY_S = 1.0
FLUSH_EVERY_TRIALS = 512


class BatchWriter:
    """Buffers rows by table and hands them to a SegmentWriter in batches, in order."""

    def __init__(self, writer: SegmentWriter) -> None:
        self.writer = writer
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.pending_trials = 0
        self.last_flush = time.monotonic()
        self._lock = asyncio.Lock()

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)
        if table == "trials":
            self.pending_trials += 1

    def add_all(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for table, row in rows:
            self.add(table, row)

    async def maybe_flush(self) -> None:
        if self.pending_trials >= FLUSH_EVERY_TRIALS or time.monotonic() - self.last_flush >= FLUSH_EVERY_S:
            await self.flush()

    async def flush(self) -> None:
        """Hand the batch to a thread so trials keep running while Parquet is written."""
        rows, self.rows = self.rows, {}
        self.pending_trials = 0
        self.last_flush = time.monotonic()
        if rows:
            async with self._lock:  # batches land in order
                await asyncio.to_thread(self.writer.write, rows)
