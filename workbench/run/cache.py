"""The run's answers by cache key: one key, one answer, live and replayed alike.

A key keeps the first answer it got: read from the log, the first logged (the log's answers are
taken in the order they finished); live, the first to land. A call whose key is being fetched
by another trial at that moment waits for that call instead of sampling beside it, so trials that
send the very same request at once (HEART's shared round 0, conditions with the same prompt) get
one answer, the one a `--fresh` replay of the log serves them.

Memory stays bounded on runs of millions of calls: the log's answers are not loaded whole but
copied once into a private DuckDB file (`AnswerStore`, indexed by key) and looked up per batch of
keys the running trials ask for, and live answers beyond the most recent MEMORY_ANSWERS move there
too. A compact set of key digests says which keys the store may hold, so most misses ask nothing."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ..providers import ModelResponse

MEMORY_ANSWERS = 50_000  # answers kept in memory (trials of one example run side by side: their sharing is recent)
SPILL_EVERY = 10_000  # answers moved to the store at once
READER_MEMORY = "256MB"  # what the log's reader may hold while the log's answers are copied
_FIELDS = ("response_text", "prompt_tokens", "completion_tokens", "cost", "latency_s", "finish_reason")
_SCHEMA = pa.schema([("cache_key", pa.string()), ("response_text", pa.string()), ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
                     ("cost", pa.float64()), ("latency_s", pa.float64()), ("finish_reason", pa.string())])


def digest(key: str) -> int:
    """A key's 8-byte digest: what the set of stored keys holds instead of the keys."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _response(row: Sequence[object]) -> ModelResponse:
    text, p_tok, c_tok, cost, latency, finish = row
    return ModelResponse(text=text, prompt_tokens=p_tok, completion_tokens=c_tok, cost=cost, latency_s=latency, finish_reason=finish)  # type: ignore[arg-type]


class AnswerStore:
    """Answers on disk in a private DuckDB file, one per key (the first put), looked up per batch."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="workbench-answers-"))
        self._con = duckdb.connect(str(self._dir / "answers.duckdb"), config={"threads": 1, "memory_limit": "256MB", "temp_directory": str(self._dir / "spill")})
        self._con.execute(
            "CREATE TABLE answers (cache_key VARCHAR PRIMARY KEY, response_text VARCHAR, prompt_tokens BIGINT, "
            "completion_tokens BIGINT, cost DOUBLE, latency_s DOUBLE, finish_reason VARCHAR)"
        )
        self._lock = threading.Lock()  # fetched in a thread, filled from the event loop
        self._sorted = np.empty(0, dtype=np.uint64)  # digests of the keys copied from the log
        self._added: set[int] = set()  # and of those added since

    def copy_logged(self, reader: duckdb.DuckDBPyConnection, models: Sequence[str]) -> int:
        """Copy the log's first answer of each key from `models` (`reader`: connect_reader's)."""
        # The reader's DuckDB works within a bound too, spilling to this store's folder beyond it.
        reader.execute(f"SET memory_limit = '{READER_MEMORY}'")
        reader.execute(f"SET temp_directory = '{self._dir / 'spill'}'")
        relation = reader.sql(
            "SELECT cache_key, response_text, prompt_tokens, completion_tokens, cost, latency_s, finish_reason "
            "FROM calls_landed WHERE error IS NULL AND NOT cached AND model IN (SELECT unnest(?)) "
            "QUALIFY row_number() OVER (PARTITION BY cache_key ORDER BY finished_at, started_at, call_id) = 1",
            params=[list(models)],
        ).to_arrow_reader(50_000)
        digests = []
        with self._lock:
            for batch in relation:
                self._insert("INSERT INTO", batch)
                digests.append(np.fromiter((digest(k) for k in batch.column(0).to_pylist()), dtype=np.uint64, count=batch.num_rows))
        self._sorted = np.unique(np.concatenate(digests)) if digests else self._sorted
        return int(sum(len(d) for d in digests))

    def _insert(self, verb: str, rows: pa.Table | pa.RecordBatch) -> None:
        self._con.register("incoming", rows)
        try:
            self._con.execute(f"{verb} answers SELECT * FROM incoming")
        finally:
            self._con.unregister("incoming")

    def may_hold(self, key: str) -> bool:
        d = digest(key)
        if d in self._added:
            return True
        i = int(np.searchsorted(self._sorted, d))
        return i < len(self._sorted) and int(self._sorted[i]) == d

    def add(self, answers: dict[str, ModelResponse]) -> None:
        """Keep `answers` (keys the store does not hold: the cache asked it before calling)."""
        table = pa.Table.from_pydict(
            {"cache_key": list(answers), **{f: [getattr(r, f.removeprefix("response_")) for r in answers.values()] for f in _FIELDS}},
            schema=_SCHEMA,
        )
        with self._lock:
            self._insert("INSERT OR IGNORE INTO", table)
        self._added.update(map(digest, answers))

    def fetch(self, keys: Iterable[str]) -> dict[str, ModelResponse]:
        """The answers of those of `keys` the store holds: one indexed query for the batch."""
        keys = list(keys)
        with self._lock:
            rows = self._con.execute(
                f"SELECT cache_key, {', '.join(_FIELDS)} FROM answers WHERE cache_key IN ({', '.join('?' * len(keys))})", keys
            ).fetchall() if keys else []
        return {row[0]: _response(row[1:]) for row in rows}

    def close(self) -> None:
        with self._lock:
            self._con.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class _Fetch:
    """A key being fetched; its event is made only when another call waits for it (most never do)."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event: asyncio.Event | None = None


class ResponseCache:
    def __init__(self, store: AnswerStore | None = None, memory_answers: int | None = None) -> None:
        self._answers: dict[str, ModelResponse] = {}  # the recent ones, oldest first
        self._moving: dict[str, ModelResponse] = {}  # older ones on their way to the store
        self._fetching: dict[str, _Fetch] = {}
        self._store = store
        self._memory_answers = memory_answers or MEMORY_ANSWERS
        self._wanted: dict[str, asyncio.Future[ModelResponse | None]] = {}  # keys the next lookup asks the store for
        self._lookup: asyncio.Task[None] | None = None

    def put(self, key: str, response: ModelResponse) -> None:
        """Remember `response` for `key` unless the key has an answer already (the first one stays)."""
        if key in self._answers or key in self._moving:
            return
        self._answers[key] = response
        if len(self._answers) > self._memory_answers:
            oldest = next(iter(self._answers))
            self._moving[oldest] = self._answers.pop(oldest)
            if len(self._moving) >= SPILL_EVERY:
                self._spill()

    def _spill(self) -> None:
        if self._store is None:
            self._store = AnswerStore()
        self._store.add(self._moving)
        self._moving = {}

    def answer(self, key: str) -> ModelResponse | None:
        """The key's answer if memory has it now, without waiting (most lookups need no wait)."""
        return self._answers.get(key) or self._moving.get(key)

    def stored(self, key: str) -> bool:
        """Whether the store may hold `key` (then `load` asks it)."""
        return self._store is not None and self._store.may_hold(key)

    async def load(self, key: str) -> ModelResponse | None:
        """The store's answer for `key`, looked up with the other keys wanted meanwhile (one query per batch)."""
        wanted = self._wanted.get(key)
        if wanted is None:
            wanted = self._wanted[key] = asyncio.get_running_loop().create_future()
            if self._lookup is None or self._lookup.done():
                self._lookup = asyncio.ensure_future(self._look_up())
        return await asyncio.shield(wanted)

    async def _look_up(self) -> None:
        store = self._store
        assert store is not None
        while self._wanted:  # keys wanted while a query ran make the next batch
            batch, self._wanted = self._wanted, {}
            try:
                found = await asyncio.to_thread(store.fetch, list(batch))
            except BaseException as exc:
                for future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                raise
            for key, future in batch.items():
                response = found.get(key)
                if response is not None:
                    self.put(key, response)
                if not future.done():
                    future.set_result(response)

    async def close(self) -> None:
        """Wait for a lookup under way, then remove the store's file."""
        if self._lookup is not None and not self._lookup.done():
            await asyncio.gather(self._lookup, return_exceptions=True)
        if self._store is not None:
            self._store.close()
            self._store = None

    def being_fetched(self, key: str) -> bool:
        """Whether another call is fetching `key` now (then `get` waits for it)."""
        return key in self._fetching

    async def get(self, key: str) -> ModelResponse | None:
        """The key's answer, after waiting for a call that is fetching it; None: the caller fetches it."""
        while self.answer(key) is None and (fetch := self._fetching.get(key)) is not None:
            if fetch.event is None:
                fetch.event = asyncio.Event()
            await fetch.event.wait()
        return self.answer(key)

    def start_fetch(self, key: str) -> _Fetch:
        """Mark `key` as being fetched by the caller, who calls `end_fetch` when done (in a
        `finally`): callers of `get` for it wait until then (if it failed, one of them fetches the
        key in turn). Plain calls, not an async context manager: the gateway makes one per call."""
        return self._fetching.setdefault(key, _Fetch())

    def end_fetch(self, key: str, fetch: _Fetch) -> None:
        if self._fetching.get(key) is fetch:
            del self._fetching[key]
        if fetch.event is not None:
            fetch.event.set()
