"""Run a study: expand trials, skip those already logged, call models concurrently, log.

Resumable by construction: a trial is done when its row has landed in the log, and a killed
run loses at most the trials of its unflushed batch, which simply run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__, gold
from ..errors import UserError
from ..local_models import Log
from ..messages import Messages, to_dicts
from ..providers import ModelResponse, ProviderPool, SampleKeys, complete_with_retries
from ..providers import open_pool
from .cache import ResponseCache
from .execute import call_for, request_params, solve_and_score, status
from ..extract import ERROR, NO_ANSWER
from ..score_log import item_json, logged_extractors, round_value, score_row
from ..solvers import Generate, Generation, RoundRecord
from ..store import SCHEMA_VERSION, RunLocked, SegmentWriter, compact, connect_reader, log_exists, run_lock
from ..study import ModelSpec, ResolvedStudy
from ..trials import Trial, expand
from .control import Progress, ProgressCallback, StopHandle

FLUSH_EVERY_S = 1.0
FLUSH_EVERY_TRIALS = 512


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


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def run_id_for(study: ResolvedStudy, fresh: bool) -> str:
    base = f"{study.spec.name}-{study.spec.spec_hash()[:10]}"
    return f"{base}-{time.strftime('%Y%m%dT%H%M%S')}" if fresh else base


class _Log:
    """Buffers finished rows and appends them as segments in batches."""

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


class Runner:
    def __init__(self, study: ResolvedStudy, db_path: Path, *, fresh: bool = False, use_cache: bool = True, log: Log | None = None, progress: ProgressCallback | None = None, stop: StopHandle | None = None) -> None:
        self.study = study
        self.db_path = Path(db_path)
        self.run_id = run_id_for(study, fresh)
        self.use_cache = use_cache
        self.say: Log = log or (lambda _: None)
        self.progress: ProgressCallback = progress or (lambda _: None)
        self.stop = stop or StopHandle()
        self.cache = ResponseCache()
        self.summary = RunSummary(run_id=self.run_id, db_path=str(self.db_path), trials_planned=0)

    # -- setup -------------------------------------------------------------------------------
    def _models(self) -> list[ModelSpec]:
        """The study's models and its judge (a judge with a study model's id shares its provider)."""
        judge = self.study.spec.judge
        models = list(self.study.spec.models)
        return models + [judge] if judge is not None and judge.id not in {m.id for m in models} else models

    def _existing(self, trial_ids: set[str]) -> tuple[dict[str, str], bool]:
        """The run's trials already logged (id -> status), whether the run is registered; fills the cache."""
        if not log_exists(self.db_path):
            return {}, False
        con = connect_reader(self.db_path)
        try:
            rows = con.execute("SELECT trial_id, status FROM trials WHERE run_id = ?", [self.run_id]).fetchall()
            done = {trial_id: status for trial_id, status in rows if trial_id in trial_ids}
            registered = bool(con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [self.run_id]).fetchone()[0])
            if self.use_cache:
                models = [m.id for m in self._models()]
                rows = con.execute(
                    "SELECT cache_key, response_text, prompt_tokens, completion_tokens, cost, latency_s, finish_reason "
                    "FROM calls_landed WHERE error IS NULL AND NOT cached AND model IN (SELECT unnest(?)) "
                    "ORDER BY finished_at, started_at, call_id",  # the first logged answer of a key is its answer
                    [models],
                ).fetchall()
                for key, text, p_tok, c_tok, cost, latency, finish in rows:
                    self.cache.put(key, ModelResponse(text=text, prompt_tokens=p_tok, completion_tokens=c_tok, cost=cost, latency_s=latency, finish_reason=finish))
        finally:
            con.close()
        return done, registered

    def _run_rows(self, trials: list[Trial]) -> dict[str, list[dict[str, Any]]]:
        spec = self.study.spec
        control = self.study.control_name
        programs = {name: self.study.program(name) for name in self.study.conditions}
        return {
            "runs": [
                {
                    "run_id": self.run_id,
                    "name": spec.name,
                    "study_path": self.study.path,
                    "spec_json": spec.canonical_json(),
                    "spec_hash": spec.spec_hash(),
                    "seed": spec.seed,
                    "trials_planned": len(trials),
                    "created_at": _now(),
                    "workbench_version": __version__,
                    "git_sha": _git_sha(),
                    "packages_json": json.dumps(_package_versions(), sort_keys=True),
                    "schema_version": SCHEMA_VERSION,
                }
            ],
            "conditions": [
                {
                    "run_id": self.run_id,
                    "condition": name,
                    "is_control": name == control,
                    "stimuli_json": json.dumps([s.model_dump() for s in stimuli]),
                    "solver": programs[name].solver,
                    "solver_params_json": json.dumps(dict(programs[name].params), sort_keys=True),
                    "consumes_gold": programs[name].consumes_gold,
                }
                for name, stimuli in self.study.conditions.items()
            ],
        }

    def _event(self, event: str, **detail: Any) -> dict[str, Any]:
        return {"event_id": f"{self.run_id}:{time.time_ns()}", "run_id": self.run_id, "event": event, "event_at": _now(), "detail_json": json.dumps(detail)}

    # -- execution ---------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(run_lock(self.db_path, self.run_id))
            except RunLocked as exc:
                holder = f" (pid {exc.pid})" if exc.pid else ""
                raise UserError(
                    f"run {self.run_id} is already running in another process{holder}; wait for it to finish or stop it "
                    "(a stopped run resumes where it was), or pass --fresh to start a separate run"
                ) from None
            return await self._run()

    async def _run(self) -> RunSummary:
        trials = expand(self.study, self.run_id)
        self.summary.trials_planned = len(trials)
        done, registered = self._existing({t.trial_id for t in trials})
        pending = [t for t in trials if t.trial_id not in done]
        self.summary.trials_done = len(done)
        # and the trials run now add theirs as they land
        self.summary.errors = sum(s == ERROR for s in done.values())
        self.summary.no_answer = sum(s == NO_ANSWER for s in done.values())
        writer = SegmentWriter(self.db_path)
        log = _Log(writer)
        if not registered:
            for table, rows in self._run_rows(trials).items():
                for row in rows:
                    log.add(table, row)
        log.add("run_events", self._event("resumed" if done else "started", pending=len(pending)))
        if self.study.warnings:
            log.add("run_events", self._event("warnings", messages=self.study.warnings))
        await log.flush()
        self._report()
        pool = ProviderPool()
        if pending:
            needed = [m for m in self._models() if m is self.study.spec.judge or any(t.model.id == m.id for t in pending)]
            pool = await asyncio.to_thread(open_pool, needed, self.say)
        semaphore = asyncio.Semaphore(self.study.spec.concurrency)
        stop = self.stop
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.stop)

        async def one(trial: Trial) -> None:
            async with semaphore:
                if stop.stopped:
                    return
                rows = await self._run_trial(trial, pool)
            for call in rows["calls"]:
                log.add("calls", call)
            for round_row in rows["rounds"]:
                log.add("rounds", round_row)
            for score_row in rows["scores"]:
                log.add("scores", score_row)
            log.add("trials", rows["trial"])
            self.summary.trials_done += 1
            self.summary.trials_run_now += 1
            self.summary.errors += rows["trial"]["status"] == ERROR
            self.summary.no_answer += rows["trial"]["status"] == NO_ANSWER
            await log.maybe_flush()
            self._report()

        try:
            tasks = [asyncio.ensure_future(one(t)) for t in pending]
            waiter = asyncio.ensure_future(_stopped(stop))
            all_done = asyncio.gather(*tasks)
            await asyncio.wait([all_done, waiter], return_when=asyncio.FIRST_COMPLETED)
            if stop.stopped:
                self.summary.interrupted = True
                for task in tasks:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await all_done
            else:
                await all_done
            waiter.cancel()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            log.add("run_events", self._event("interrupted" if self.summary.interrupted else "finished", done=self.summary.trials_done))
            await log.flush()
            await pool.close()
        self.summary.compacted = await asyncio.to_thread(compact, self.db_path)
        return self.summary

    def _report(self) -> None:
        s = self.summary
        self.progress(Progress(total=s.trials_planned, done=s.trials_done, errors=s.errors, no_answer=s.no_answer, run_now=s.trials_run_now))

    async def _run_trial(self, trial: Trial, pool: ProviderPool) -> dict[str, Any]:
        calls: list[dict[str, Any]] = []
        started = _now()
        params = request_params(trial.model, trial)  # logged as sent: a seed of the user's own is made new per repeat
        keys = SampleKeys()  # the trial's calls: a request sent again is a new sample

        def door(model: ModelSpec) -> Generate:
            """The trial's one way to a model (its own, or the study's judge): cached, retried, logged."""
            provider = pool.get(model.id)

            async def generate(messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Generation:
                index = len(calls)
                request, context = call_for(trial, model, messages, purpose, index, sim_targets)
                key = keys.key(request, provider.endpoint, provider.cache_scope(context))
                call_started = _now()
                cached = await self.cache.get(key) if self.use_cache else None
                if cached is not None:
                    self.summary.cache_hits += 1
                    response, error, retries = cached, None, 0
                else:
                    self.summary.model_calls += 1
                    # Others wanting this key meanwhile wait for this call (with the cache on).
                    async with self.cache.fetching(key) if self.use_cache else contextlib.nullcontext():
                        # A simulated model plants its effects against the gold; the solver is suspended meanwhile.
                        with gold.access("provider"):
                            outcome = await complete_with_retries(provider, request, context, max_retries=model.max_retries, timeout_s=model.timeout_s)
                        response, error, retries = outcome.response, outcome.error, outcome.retries
                        if response is not None:
                            self.cache.put(key, response)
                calls.append(
                    {
                        "call_id": f"{trial.trial_id}:{index}",
                        "trial_id": trial.trial_id,
                        "run_id": trial.run_id,
                        "call_index": index,
                        "purpose": purpose,
                        "model": model.id,
                        "endpoint": provider.endpoint,
                        "params_json": json.dumps(dict(request.params), sort_keys=True),
                        "repeat": trial.repeat,
                        "cache_key": key,
                        "messages_json": json.dumps(request.message_dicts()),
                        "response_text": response.text if response else None,
                        "finish_reason": response.finish_reason if response else None,
                        "prompt_tokens": response.prompt_tokens if response else 0,
                        "completion_tokens": response.completion_tokens if response else 0,
                        "cost": 0.0 if cached is not None or response is None else response.cost,
                        "latency_s": response.latency_s if response else None,
                        "cached": cached is not None,
                        "retries": retries,
                        "error": str(error) if error else None,
                        "error_kind": error.kind if error else None,
                        "started_at": call_started,
                        "finished_at": _now(),
                    }
                )
                return Generation(text=response.text if response else None, error=f"{error.kind}: {error}" if error else None, call_index=index)

            return generate

        solution, scored = await solve_and_score(trial, door, self.study.spec.judge)
        with gold.access("scoring"):  # after final scoring: the log records the gold and scores each round
            targets_json = json.dumps(list(trial.item.targets))
            rounds = [self._round_row(trial, record, calls) for record in solution.rounds]
            scores = [score_row(trial.trial_id, trial.run_id, trial.task, trial.item, solution.text, name) for name in logged_extractors(trial.extractor)]
        answer, score = scored.answer, scored.value
        details = {**solution.details, **({"scoring": scored.details} if scored.details else {})}
        return {
            "calls": calls,
            "rounds": rounds,
            "scores": scores,
            "trial": {
                "trial_id": trial.trial_id,
                "run_id": trial.run_id,
                "condition": trial.condition,
                "model": trial.model.id,
                "model_params_json": json.dumps(params, sort_keys=True),
                "task": trial.task.id,
                "task_version": trial.task.version,
                "task_json": json.dumps(trial.task.descriptor(), sort_keys=True),
                "item_id": trial.item.id,
                "item_input": trial.item.input,
                "item_json": item_json(trial.item),
                "targets_json": targets_json,
                "repeat": trial.repeat,
                "seed": trial.seed,
                "stimuli_json": json.dumps([s.model_dump() for s in trial.stimuli]),
                "messages_json": json.dumps(to_dicts(trial.messages)),
                "response_text": solution.text,
                "answer": answer,
                "score": score,
                "status": status(solution, scored),
                "error": solution.error or scored.error,
                "details_json": json.dumps(details, sort_keys=True, default=str),
                "n_calls": len(calls),
                "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
                "completion_tokens": sum(c["completion_tokens"] for c in calls),
                "cost": sum(c["cost"] for c in calls),
                "latency_s": sum(c["latency_s"] or 0.0 for c in calls),
                "cached": bool(calls) and all(c["cached"] for c in calls),
                "started_at": started,
                "finished_at": _now(),
                "consumes_gold": trial.consumes_gold,
                "extractor": trial.extractor,
            },
        }

    @staticmethod
    def _round_row(trial: Trial, record: RoundRecord, calls: list[dict[str, Any]]) -> dict[str, Any]:
        """A round as the `rounds` table logs it, its answer scored now (final scoring)."""
        own = [calls[i] for i in record.call_indices]
        score = round_value(trial.task, trial.item, record.text, trial.extractor) if record.text is not None else None
        return {
            "round_id": f"{trial.trial_id}:{record.round}",
            "trial_id": trial.trial_id,
            "run_id": trial.run_id,
            "condition": trial.condition,
            "round": record.round,
            "emotion": record.emotion,
            "tone": record.tone,
            "phrase_id": record.phrase_id,
            "asserts_error": record.asserts_error,
            "feedback": record.feedback,
            "messages_json": json.dumps(to_dicts(record.messages)),
            "response_text": record.text,
            "answer": record.answer,
            "verdict": record.verdict,
            "verdict_source": record.verdict_source,
            "score": score,
            "consumes_gold": trial.consumes_gold,
            "prompt_tokens": sum(c["prompt_tokens"] for c in own),
            "completion_tokens": sum(c["completion_tokens"] for c in own),
            "latency_s": sum(c["latency_s"] or 0.0 for c in own),
            "call_id": own[0]["call_id"] if own else None,
            "call_ids_json": json.dumps([c["call_id"] for c in own]),
            "error": record.error,
        }


async def _stopped(stop: StopHandle, poll_s: float = 0.05) -> None:
    """Returns once the handle is triggered (polled: it may be set from another thread)."""
    while not stop.stopped:
        await asyncio.sleep(poll_s)


def run_study(study: ResolvedStudy, db_path: Path, **kwargs: Any) -> RunSummary:
    return asyncio.run(Runner(study, db_path, **kwargs).run())


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in ("litellm", "duckdb", "pydantic", "dspy", "optuna", "scipy", "statsmodels", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions
