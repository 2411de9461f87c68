"""Run a study: expand trials, skip those already logged, call models concurrently, log.

Resumable by construction: a trial is done when its row has landed in the log, and a killed
run loses at most the trials of its unflushed batch, which simply run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import json
import signal
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..core.errors import UserError
from ..scoring.extract import ERROR, NO_ANSWER, scoring_memo
from ..providers.local_models import Notice
from ..store import SCHEMA_VERSION, RunLocked, SegmentWriter, compact, connect_reader, log_exists, run_lock
from ..providers.spec import ModelSpec
from ..solvers.base import Trial
from ..study.expand import count_trials, iter_trial_keys, iter_trials
from ..study.spec import ResolvedStudy
from .batching import BatchWriter
from .cache import AnswerStore, ResponseCache
from .control import Progress, ProgressCallback, StopHandle
from .execute import TrialRows, execute
from .retry import MAX_ATTEMPTS, Errored, TransientErrors, errored_trials, last_error_kind, to_retry
from ..core.clock import utc_now_us
from ..core.pauses import pause_point
from .gateway import Gateway, GatewaySettings

@dataclass
class RunSummary:
    run_id: str
    db_path: str
    trials_planned: int
    trials_done: int = 0
    trials_run_now: int = 0
    errors: int = 0
    no_answer: int = 0  # trials whose response held no answer of the task's type
    model_calls: int = 0
    cache_hits: int = 0
    interrupted: bool = False
    compacted: bool = False
    retried: int = 0  # trials run again now after a transient error
    transient: TransientErrors = dataclasses.field(default_factory=TransientErrors)  # errored trials a re-run retries, or gave up on


def study_models(study: ResolvedStudy) -> list[ModelSpec]:
    """The study's models and its judge (a judge with a study model's id shares its provider)."""
    judge = study.spec.judge
    models = list(study.spec.models)
    return models + [judge] if judge is not None and judge.id not in {m.id for m in models} else models


def gateway_settings(study: ResolvedStudy, trials: Collection[Trial] | Collection[str], *, use_cache: bool = True) -> GatewaySettings:
    """The gateway the run executes `trials` (or trials of these model ids) through: the models
    they call (none when there are none), the study's judge, its models' retries and timeouts."""
    judge = study.spec.judge
    called = {t if isinstance(t, str) else t.model.id for t in trials}
    needed = [m for m in study_models(study) if m is judge or m.id in called] if trials else []
    return GatewaySettings(models=tuple(needed), judge=judge, use_cache=use_cache)


def _compact_at_end(db_path: Path) -> bool:
    pause_point("compaction")
    return compact(db_path, threads=1)  # one DuckDB thread: nothing runs beside it now


def run_id_for(study: ResolvedStudy, fresh: bool) -> str:
    base = f"{study.spec.name}-{study.spec_hash()[:10]}"
    return f"{base}-{time.strftime('%Y%m%dT%H%M%S')}" if fresh else base


def already_running(run_id: str, pid: int | None) -> str:
    """What refuses a second process for a run that one runs (the CLI adds its --fresh)."""
    holder = f" (pid {pid})" if pid else ""
    return f"run {run_id} is already running in another process{holder}; wait for it to finish or stop it (a stopped run resumes where it was)"


class Executor(Protocol):
    """Where a run's pending trials execute, when not in this process (workbench.run.executors
    names them): it runs `pending`, updates the runner's summary and reports progress as the
    local schedule does, and stops when the runner's stop handle (or SIGINT/SIGTERM) does."""

    async def schedule(self, runner: Runner, pending: Iterator[Trial], count: int, gateway: Gateway, log: BatchWriter) -> None: ...


class Runner:
    def __init__(
        self, study: ResolvedStudy, db_path: Path, *, fresh: bool = False, use_cache: bool = True, log: Notice | None = None,
        progress: ProgressCallback | None = None, stop: StopHandle | None = None, max_attempts: int = MAX_ATTEMPTS,
        events: tuple[tuple[str, dict[str, Any]], ...] = (), only: frozenset[str] | None = None, executor: Executor | None = None,
    ) -> None:
        self.study = study
        self.db_path = Path(db_path)
        self.run_id = run_id_for(study, fresh)
        self.use_cache = use_cache
        self.say: Notice = log or (lambda _: None)
        self.progress: ProgressCallback | None = progress
        self.stop = stop or StopHandle()
        self.cache = ResponseCache()  # the log's answers the pending trials may use, and theirs
        self.only = only  # item ids: this session runs only their trials (a search's chunk of examples); None: all
        self.events = events  # logged as run_events at each session's start (a search's trial number)
        self.executor = executor  # None: the trials run in this process (the local schedule)
        self.max_attempts = max_attempts  # a trial that ended in a transient error runs again on resume until it has run this often
        self.summary = RunSummary(run_id=self.run_id, db_path=str(self.db_path), trials_planned=0, transient=TransientErrors(max_attempts))

    # -- setup -------------------------------------------------------------------------------
    def _landed(self) -> tuple[dict[bytes, str], bool, dict[str, Errored]]:
        """The run's trials already logged (id digest -> status: 12 bytes, not the id's text,
        as a resumed run of millions holds them all), whether the run is registered, and the
        errored ones among them (read only when there are some)."""
        if not log_exists(self.db_path):
            return {}, False, {}
        con = connect_reader(self.db_path)
        try:
            result = con.execute("SELECT trial_id, status FROM trials WHERE run_id = ?", [self.run_id])
            done: dict[bytes, str] = {}
            statuses: dict[str, str] = {}  # one string per status, shared by all its trials
            while batch := result.fetchmany(50_000):
                for trial_id, status in batch:
                    done[_id_digest(trial_id)] = statuses.setdefault(status, status)
            registered = bool(con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [self.run_id]).fetchone()[0])
            errored = errored_trials(con, self.run_id) if ERROR in statuses else {}
        finally:
            con.close()
        return done, registered, errored

    def _plan(self, done: dict[bytes, str], errored: dict[str, Errored]) -> Plan:
        """One pass over the plan's trial ids (none rendered): what is done, what runs now."""
        retry = to_retry(errored, self.max_attempts)
        plan = Plan(retry=retry)
        for key in iter_trial_keys(self.study, self.run_id):
            status = done.get(_id_digest(key.trial_id))
            if status is not None:
                plan.done += 1
                plan.errors += status == ERROR
                plan.no_answer += status == NO_ANSWER
                if key.trial_id in errored:
                    plan.errored[key.trial_id] = errored[key.trial_id]
            if (status is None or key.trial_id in retry) and (self.only is None or key.item_id in self.only):
                plan.pending += 1
                plan.models.add(key.model_id)
        plan.retry = {trial_id: attempt for trial_id, attempt in retry.items() if trial_id in plan.errored}
        return plan

    def _pending(self, done: dict[bytes, str], retry: dict[str, int]) -> Iterator[Trial]:
        """The trials to run now, rendered one at a time in the plan's order (a retried one as its next attempt)."""
        for trial in iter_trials(self.study, self.run_id):
            if self.only is not None and trial.item.id not in self.only:
                continue
            if trial.trial_id in retry:
                yield dataclasses.replace(trial, attempt=retry[trial.trial_id])
            elif _id_digest(trial.trial_id) not in done:
                yield trial

    def _logged_answers(self, models: list[str]) -> ResponseCache:
        """A cache of the log's answers from `models` (the models the pending trials call): called
        only when trials are pending, so a run with nothing left to do reads no call history."""
        return logged_answers(self.db_path, models) if self.use_cache else ResponseCache()

    def _run_rows(self, planned: int) -> dict[str, list[dict[str, Any]]]:
        spec = self.study.spec
        control = self.study.control_name
        solvers = {name: self.study.solver_of(name) for name in self.study.conditions}
        return {
            "runs": [
                {
                    "run_id": self.run_id,
                    "name": spec.name,
                    "study_path": self.study.path,
                    "spec_json": spec.canonical_json(),
                    "spec_hash": self.study.spec_hash(),
                    "stimuli_sha256": self.study.stimuli_sha256(),
                    "seed": spec.seed,
                    "trials_planned": planned,
                    "created_at": utc_now_us(),
                    "workbench_version": __version__,
                    "git_sha": _git_sha(),
                    "packages_json": _packages_json(),
                    "schema_version": SCHEMA_VERSION,
                }
            ],
            "conditions": [
                {
                    "run_id": self.run_id,
                    "condition": name,
                    "is_control": name == control,
                    "stimuli_json": json.dumps([s.model_dump() for s in stimuli]),
                    "solver": solvers[name].solver,
                    "solver_params_json": json.dumps(dict(solvers[name].params), sort_keys=True),
                    "consumes_gold": solvers[name].consumes_gold,
                }
                for name, stimuli in self.study.conditions.items()
            ],
        }

    def _event(self, event: str, **detail: Any) -> dict[str, Any]:
        return {"event_id": f"{self.run_id}:{time.time_ns()}", "run_id": self.run_id, "event": event, "event_at": utc_now_us(), "detail_json": json.dumps(detail)}

    # -- execution ---------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(run_lock(self.db_path, self.run_id))
            except RunLocked as exc:
                raise UserError(f"{already_running(self.run_id, exc.pid)}, or pass --fresh to start a separate run") from None
            return await self._run()

    async def _run(self) -> RunSummary:
        with fewer_collections():
            return await self._run_trials()

    async def _run_trials(self) -> RunSummary:
        new_log = not log_exists(self.db_path)  # before this run's first flush creates it
        # The trials are a stream: counted, checked against the log by id, and rendered only as
        # the workers take them, so a run of millions holds no list of them.
        self.summary.trials_planned = count_trials(self.study)
        done, registered, errored = self._landed()
        # Trials that ended in a transient error run again, as their next attempt (the earlier ones stay logged).
        plan = self._plan(done, errored)
        retry = plan.retry
        self.summary.retried = len(retry)
        self.summary.trials_done = plan.done - len(retry)
        # and the trials run now add theirs as they land
        self.summary.errors = plan.errors - len(retry)
        self.summary.no_answer = plan.no_answer
        for trial_id, e in plan.errored.items():
            if trial_id not in retry:
                self.summary.transient.count(e.attempt, e.kind)  # used up its attempts (a permanent error counts nowhere)
        # the writer's lock, held until the run's last batch has landed, keeps other processes'
        # cleanup off a batch on its way
        with SegmentWriter(self.db_path) as segments:
            log = BatchWriter(segments)
            if not registered:
                for table, rows in self._run_rows(self.summary.trials_planned).items():
                    for row in rows:
                        log.add(table, row)
            log.add("run_events", self._event("resumed" if plan.done else "started", pending=plan.pending, retried=len(retry)))
            if self.study.warnings:
                log.add("run_events", self._event("warnings", messages=self.study.warnings))
            for event, detail in self.events:
                log.add("run_events", self._event(event, **detail))
            await log.flush()
            self._report()
            settings = gateway_settings(self.study, plan.models, use_cache=self.use_cache)
            # A log this run has just created holds no answers: no reader is built to find none. An
            # executor's workers open their own models and caches: this process calls no model then,
            # and its gateway only carries the settings and counts the workers' calls.
            local = self.executor is None
            self.cache = ResponseCache() if new_log or not local else await asyncio.to_thread(self._logged_answers, [m.id for m in settings.models])
            pause_point("startup")
            try:
                gateway = await settings.open(self.say, self.cache) if local else Gateway(settings, {}, self.cache)
            except BaseException:
                await self.cache.close()
                raise
            try:
                schedule = self._schedule if local else functools.partial(self.executor.schedule, self)
                await schedule(self._pending(done, retry), plan.pending, gateway, log)
            finally:
                log.add("run_events", self._event("interrupted" if self.summary.interrupted else "finished", done=self.summary.trials_done))
                try:
                    await log.flush(fold=False)  # the run compacts below: folding this batch in first would do it twice
                finally:  # also when the disk refused the batch: the gateway's server is shared
                    await gateway.close()
                    await self.cache.close()
                self.summary.model_calls, self.summary.cache_hits = gateway.model_calls, gateway.cache_hits
        self.summary.compacted = await asyncio.to_thread(_compact_at_end, self.db_path)
        return self.summary

    async def _schedule(self, pending: Iterator[Trial], count: int, gateway: Gateway, log: BatchWriter) -> None:
        """Execute the `count` trials of `pending` at the study's concurrency, logging each trial
        as it lands, until all are done or the stop handle (or SIGINT/SIGTERM) stops the run."""
        stop = self.stop
        queue = pending  # shared: each worker takes the next trial, so trials start in order

        async def worker() -> None:
            for trial in queue:
                if stop.stopped:
                    return
                rows = await execute(trial, gateway)
                self._landed_now(rows, log)
                self._report()  # before the flush, which a stop may cancel: what is reported is in the batch
                if log.due():
                    await log.maybe_flush()

        # `concurrency` workers rather than a task per trial: as many trials run at once, without
        # a waiting task (and its memory) for every pending trial. They share one scoring memo
        # (each task starts in a copy of this context): trials of one example that got the same
        # answer text score it once.
        with scoring_memo():
            workers = [asyncio.ensure_future(worker()) for _ in range(min(self.study.spec.concurrency, count))]
        with stop_on_signals(stop):
            all_done = asyncio.gather(*workers)
            waiter = asyncio.ensure_future(_stopped(stop))
            await asyncio.wait([all_done, waiter], return_when=asyncio.FIRST_COMPLETED)
            if stop.stopped:
                self.summary.interrupted = True
                for task in workers:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await all_done
            else:
                await all_done
            waiter.cancel()

    def _landed_now(self, rows: TrialRows, log: BatchWriter) -> None:
        for table, table_rows in rows.tables():
            log.extend(table, table_rows)
        self.count_landed(rows.trial["status"], rows.trial["attempt"], last_error_kind(rows.calls))

    def count_landed(self, status: str, attempt: int, error_kind: str | None) -> None:
        """Count a trial this session ran (here, or an executor's worker) in the summary."""
        self.summary.trials_done += 1
        self.summary.trials_run_now += 1
        self.summary.no_answer += status == NO_ANSWER
        if status == ERROR:
            self.summary.errors += 1
            self.summary.transient.count(attempt, error_kind)

    def _report(self) -> None:
        if self.progress is None:
            return
        s = self.summary
        self.progress(Progress(total=s.trials_planned, done=s.trials_done, errors=s.errors, no_answer=s.no_answer, run_now=s.trials_run_now, run_id=self.run_id))


@dataclass
class Plan:
    """A run's trials against its log: those done (with their errors and no-answer trials, and
    the errored ones as the log holds them), those that run now and the models they call."""

    retry: dict[str, int]  # trial id -> the attempt it runs as now
    done: int = 0
    errors: int = 0
    no_answer: int = 0
    pending: int = 0
    models: set[str] = dataclasses.field(default_factory=set)
    errored: dict[str, Errored] = dataclasses.field(default_factory=dict)


def _id_digest(trial_id: str) -> bytes:
    """A trial id's compact form (ids are 24 hex digits: 12 bytes), for the set of done trials."""
    try:
        return bytes.fromhex(trial_id)
    except ValueError:  # not an id this workbench made: kept whole
        return trial_id.encode()


_COLLECTING = threading.Lock()
_runs_collecting_less = 0
_thresholds: tuple[int, int, int] = gc.get_threshold()
RUN_GC_THRESHOLDS = (200_000, 20, 20)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """The cycle collector runs less often while runs are under way, and as before after the
    last ends. A run allocates a few short-lived containers per row and keeps its trials and
    cache to the end, so at the default pace (a collection every 700 new containers, old ones
    rescanned now and then) collecting was a tenth of a simulated run's time; rows hold no cycles.
    Each young collection rescans the rows still waiting for their batch: one per 200,000 new
    containers took 0.01 s of a 12,000-trial run, one per 50,000 took 0.04 s."""
    global _runs_collecting_less, _thresholds
    with _COLLECTING:
        if _runs_collecting_less == 0:
            _thresholds = gc.get_threshold()
            gc.set_threshold(*(max(now, run) for now, run in zip(_thresholds, RUN_GC_THRESHOLDS)))
        _runs_collecting_less += 1
    try:
        yield
    finally:
        with _COLLECTING:
            _runs_collecting_less -= 1
            if _runs_collecting_less == 0:
                gc.set_threshold(*_thresholds)


@contextlib.contextmanager
def stop_on_signals(stop: StopHandle) -> Iterator[None]:
    """SIGINT and SIGTERM trigger `stop` meanwhile (in the running loop), as a run's interrupt."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.stop)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def logged_answers(db_path: Path, models: list[str]) -> ResponseCache:
    """A cache of the answers the log `db_path` holds from `models`, kept in a private indexed
    file and looked up per batch of keys (an executor's worker builds its own the same way)."""
    if not models or not log_exists(db_path):
        return ResponseCache()
    store = AnswerStore()
    try:
        con = connect_reader(db_path)
        try:
            store.copy_logged(con, models)
        finally:
            con.close()
    except BaseException:
        store.close()
        raise
    return ResponseCache(store)


async def _stopped(stop: StopHandle, poll_s: float = 0.05) -> None:
    """Returns once the handle is triggered (polled: it may be set from another thread)."""
    while not stop.stopped:
        await asyncio.sleep(poll_s)


def run_study(study: ResolvedStudy, db_path: Path, **kwargs: Any) -> RunSummary:
    return asyncio.run(Runner(study, db_path, **kwargs).run())


@functools.cache  # the code this process runs: what it imported at its start
def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@functools.cache  # read once per process (8 metadata files: a tenth of a small run's time)
def _packages_json() -> str:
    """The versions of the packages a run depends on, as the `runs` row logs them (JSON)."""
    versions = {}
    for name in ("litellm", "duckdb", "pydantic", "dspy", "optuna", "scipy", "statsmodels", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return json.dumps(versions, sort_keys=True)
