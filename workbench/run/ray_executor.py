"""A run's trials on a Ray cluster (`workbench run STUDY --executor ray [--address HOST:PORT]`).

The driver (the `workbench run` process) plans the run and skips what is logged as a local run
does, then cuts the pending trials into chunks of whole examples (a shared round or prompt stays
in one gateway's cache) and sends each chunk to a Ray task: the trials themselves and the
gateway's settings, which pickle. The task opens a gateway of its own, executes the trials as the
local schedule does and writes their rows as segments of the log with a SegmentWriter of its own,
so the log must be on storage every worker reaches (this machine's disk, or a shared one). The
driver counts each finished chunk for the progress, and compacts at the end as any run does.

A worker that dies takes its chunk's unwritten batch with it: Ray runs the chunk again (up to
CHUNK_RETRIES times), and the new attempt skips the trials its predecessor had landed, so each
trial is logged once. An interrupt cancels the chunks under way (their landed batches stay) and
the run resumes as a local one does.

Ray is an optional extra, imported when the executor is chosen. Without --address the run
starts a Ray instance of its own on this machine, on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..plugins import load_builtins
from ..scoring.extract import scoring_memo
from ..solvers.base import Trial
from ..store import SegmentWriter, connect_reader, log_exists
from .batching import BatchWriter
from .cache import ResponseCache
from .execute import execute
from .gateway import Gateway, GatewaySettings
from .retry import last_error_kind
from .scheduler import Runner, _stopped, logged_answers, stop_on_signals

INSTALL = "pip install 'prompt-affect-workbench[ray]'"
CONNECT_TIMEOUT_S = 5.0  # an --address that does not answer fails within this (Ray itself retries for minutes)
CHUNK_RETRIES = 3  # times Ray runs a chunk again whose worker died
CHUNKS_PER_CPU = 4  # chunks per worker slot: finer progress and less work lost to a dead worker, against per-chunk start-up
MAX_CHUNK_TRIALS = 5_000
CANCEL_WAIT_S = 5.0  # for cancelled chunks' workers to be gone before what they landed is counted
IN_FLIGHT_PER_CPU = 2  # chunks handed to Ray ahead of the workers: the rest wait in the driver, not in Ray's object store
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

Outcome = tuple[str, int, str | None]  # a trial's status, attempt, and its last call's error kind


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk's task sends back: its trials' outcomes and the gateway's counts."""

    outcomes: list[Outcome]
    model_calls: int
    cache_hits: int
    resumed: int  # trials an earlier attempt of the chunk (its worker died) had landed


def _address_parts(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"{address!r} is not HOST:PORT (a Ray cluster's head, as `ray start --head` prints it)", field="--address")
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    try:
        socket.create_connection(_address_parts(address), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with `ray start --head`, or leave out --address to run on this machine",
            field="--address",
        ) from None


def _import_ray(address: str | None) -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray reports nothing home
    if address is None or _address_parts(address)[0] in LOOPBACK:
        # Else Ray takes the machine's network address for its own, even for a cluster on 127.0.0.1.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UserError(f"the ray executor needs Ray, which is not installed: {INSTALL} (or pip install ray)", field="--executor") from None
    return ray


class RayExecutor:
    """Runs a runner's pending trials as Ray tasks, at `address` (HOST:PORT of a cluster's head)
    or on a Ray instance of this machine started for the run."""

    def __init__(self, address: str | None = None) -> None:
        if address is not None:
            _check_reachable(address)
        self.address = address
        self.ray = _import_ray(address)

    async def schedule(self, runner: Runner, pending: Iterator[Trial], count: int, gateway: Gateway, log: BatchWriter) -> None:
        if not count:
            return
        try:
            self._join()
            with stop_on_signals(runner.stop):  # after ray.init, which sets handlers of its own
                cpus, chunks, resumed = await self._run_chunks(runner, pending, count, gateway)
        finally:  # an interrupt while joining too: a Ray instance started for the run stops with it
            self.ray.shutdown()
        log.add("run_events", runner._event("ray", address=self.address, cpus=cpus, chunks=chunks, resumed=resumed))

    def _join(self) -> None:
        # The driver's own Ray instance, when it starts one: on loopback, without a dashboard.
        own = {"address": "local", "include_dashboard": False} if self.address is None else {"address": self.address}
        try:
            with _stderr_silenced():
                self.ray.init(**own, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:  # answered at the port, refused to let us in
            if self.address is None:
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"could not join the Ray cluster at {self.address}: {reason} (a cluster with token authentication needs RAY_AUTH_MODE=token and its token)",
                field="--address",
            ) from None

    async def _run_chunks(self, runner: Runner, pending: Iterator[Trial], count: int, gateway: Gateway) -> tuple[int, int, int]:
        """Run the chunks, at most IN_FLIGHT_PER_CPU per worker slot handed to Ray at once;
        (worker slots, chunks, trials resumed from dead workers' chunks)."""
        ray = self.ray
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        chunks = chunked(pending, count, cpus)  # cut from the stream as they are sent: the plan is never a list
        task = ray.remote(max_retries=CHUNK_RETRIES, num_cpus=1)(run_chunk)
        db = str(runner.db_path.resolve())
        concurrency = runner.study.spec.concurrency
        in_flight: dict[asyncio.Future[Any], tuple[Any, list[Trial]]] = {}  # future -> (Ray's ref, its chunk)
        sent = resumed = 0

        def submit() -> None:
            nonlocal sent
            chunk = next(chunks, None)
            if chunk is not None:
                ref = task.remote(chunk, gateway.settings, db, concurrency)
                in_flight[asyncio.wrap_future(ref.future())] = (ref, chunk)
                sent += 1

        for _ in range(cpus * IN_FLIGHT_PER_CPU):
            submit()
        stopped = asyncio.ensure_future(_stopped(runner.stop))
        try:
            while in_flight:
                done, _ = await asyncio.wait([*in_flight, stopped], return_when=asyncio.FIRST_COMPLETED)
                if runner.stop.stopped:
                    runner.summary.interrupted = True
                    break
                for future in done:
                    del in_flight[future]
                    result: ChunkResult = future.result()  # a chunk that failed for good fails the run
                    for outcome in result.outcomes:
                        runner.count_landed(*outcome)
                    gateway.model_calls += result.model_calls  # the run's counts: its workers' calls
                    gateway.cache_hits += result.cache_hits
                    resumed += result.resumed
                    runner._report()
                    submit()
        finally:
            stopped.cancel()
            for ref, _ in in_flight.values():  # interrupted, or a chunk failed: the others stop too
                ray.cancel(ref, force=True)
        if in_flight:
            await asyncio.wait(in_flight, timeout=CANCEL_WAIT_S)  # their workers are gone: nothing lands after the count
            for future in in_flight:
                if future.done() and not future.cancelled():
                    future.exception()  # Ray's TaskCancelledError, expected: not reported as never retrieved
            cancelled = [trial for _, chunk in in_flight.values() for trial in chunk]
            for status, attempt in (await asyncio.to_thread(_landed, runner.db_path, runner.run_id, cancelled)).values():
                runner.count_landed(status, attempt, None)  # what the cancelled chunks had landed
            runner._report()
        return cpus, sent, resumed


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Ray's core writes each retry of a refused connection to the process's stderr (a line a
    second, for half a minute): the run says what went wrong in one line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def chunked(pending: Iterator[Trial], count: int, cpus: int) -> Iterator[list[Trial]]:
    """The `count` trials of `pending` in chunks of whole examples (every condition and repeat of
    one: the plan yields them one after another), about CHUNKS_PER_CPU per worker slot, in the
    order planned."""
    size = max(1, min(MAX_CHUNK_TRIALS, math.ceil(count / (cpus * CHUNKS_PER_CPU))))
    chunk: list[Trial] = []
    example: tuple[str, str, str] | None = None
    for trial in pending:
        this = (trial.model.id, trial.task.id, trial.item.id)
        if this != example and len(chunk) >= size:
            yield chunk
            chunk = []
        example = this
        chunk.append(trial)
    if chunk:
        yield chunk


def _key(trial: Trial) -> str:
    return f"{trial.trial_id}:{trial.attempt}"


def _landed(db_path: Path, run_id: str, trials: list[Trial]) -> dict[str, tuple[str, int]]:
    """Of `trials` (at their attempts), those the log holds: key -> (status, attempt)."""
    if not log_exists(db_path):
        return {}
    con = connect_reader(db_path)
    try:
        rows = con.execute(
            "SELECT trial_id || ':' || attempt, status, attempt FROM trials WHERE run_id = ? AND trial_id || ':' || attempt IN (SELECT unnest(?))",
            [run_id, [_key(t) for t in trials]],
        ).fetchall()
    finally:
        con.close()
    return {key: (status, attempt) for key, status, attempt in rows}


def run_chunk(trials: list[Trial], settings: GatewaySettings, db_path: str, concurrency: int) -> ChunkResult:
    """A Ray task: execute `trials` (those not logged yet) and log them to `db_path`."""
    load_builtins()  # a fresh worker has imported only what unpickling needed
    return asyncio.run(_run_chunk(trials, settings, Path(db_path), concurrency))


async def _run_chunk(trials: list[Trial], settings: GatewaySettings, db_path: Path, concurrency: int) -> ChunkResult:
    # Landed already: by an attempt of this chunk whose worker died (Ray gives a task no attempt number).
    landed = await asyncio.to_thread(_landed, db_path, trials[0].run_id, trials)
    todo = [t for t in trials if _key(t) not in landed]
    outcomes: list[Outcome] = [(status, attempt, None) for status, attempt in landed.values()]
    # The answers logged so far (earlier runs', and this run's other chunks'), as a local run's cache holds them.
    models = sorted({t.model.id for t in todo})
    cache = await asyncio.to_thread(logged_answers, db_path, models) if settings.use_cache else ResponseCache()
    try:
        gateway = await settings.open(cache=cache)
    except BaseException:
        await cache.close()
        raise
    try:
        with SegmentWriter(db_path) as segments:
            log = BatchWriter(segments)
            queue = iter(todo)

            async def worker() -> None:
                for trial in queue:
                    rows = await execute(trial, gateway)
                    for table, table_rows in rows.tables():
                        log.extend(table, table_rows)
                    outcomes.append((rows.trial["status"], trial.attempt, last_error_kind(rows.calls)))
                    if log.due():
                        await log.maybe_flush()

            with scoring_memo():  # as the local schedule: trials of one example score an answer text once
                workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
            await asyncio.gather(*workers)
            await log.flush(fold=False)  # the driver compacts at the end
    finally:
        await gateway.close()
        await cache.close()
    return ChunkResult(outcomes, gateway.model_calls, gateway.cache_hits, len(landed))

