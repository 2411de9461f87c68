"""Planning before spending: what a run of a study would cost and what it could detect, without
calling a model (`workbench plan`, `workbench run --dry-run`).

- Calls at most: each trial's program declares its maximum through its solver's registration
  (workbench.solvers.base.SolverSetup.max_calls) and its task's scorer the judge calls
  (workbench.scoring.scorers.Scorer.judge_calls).
- The cache: each trial's program is walked once against a recording gateway that notes every request and
  answers with a filler of max_tokens tokens that no scorer accepts and no loop stops on (the
  longest path); the key of its first request is what the run would look up first. Keys are
  looked up in the log per batch, with parametrised SQL.
- Tokens: the walked requests' prompts, counted as the run's models would (litellm's counter; the
  simulator's word count), and max_tokens per answer.
- Time: the mean latency of the model's past calls in the log, else its simulated latency, else
  (with `measure`) a few calls of the study's own first prompts; otherwise unknown.
- Cost: litellm's cost map (`litellm.cost_per_token`) on those tokens; local and simulated models are free.
- Power: the exact McNemar power of each comparison with the control at the planned n
  (workbench.stats.power), with Bonferroni/Holm over the comparisons `compare` corrects together
  (the conditions against the control within a model and task), and the n for 80% power.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run.execute import call_for, solve_and_score
from ..providers.local_models import LOCAL_MODELS, Notice
from ..core.messages import Messages
from ..providers import ModelRequest, Provider, build_provider, cache_key
from ..core.records import Record
from ..run.retry import errored_trials, to_retry
from ..run.scheduler import run_id_for
from ..scoring.scorers import SCORERS
from ..core.calls import Generate, Generation
from ..solvers.base import max_calls
from ..stats import power_paired_binary
from ..store import connect_reader, log_exists
from ..providers.spec import ModelSpec
from ..study.spec import ResolvedStudy
from ..solvers.base import Trial
from ..study.expand import expand

BATCH = 1000  # trials walked and looked up in the log at a time
ASSUMED_COMPLETION_TOKENS = 256  # per answer, where a model's params set no max_tokens
MEASURED_CALLS = 4  # calls timed by `measure` on a local model the log has no calls of (after a warm-up call)
REFERENCE_EFFECT = 0.10  # the low-power warning's effect: 10 points of accuracy
LOW_POWER = 0.5
TARGET_POWER = 0.8


@dataclass(frozen=True)
class ConditionPlan(Record):
    model: str
    condition: str
    solver: str
    trials: int
    trials_done: int  # already logged in the run this study resumes (skipped)
    calls_per_trial_max: int | None  # the program's calls plus the judge's; None: the solver declares none
    calls_max: int | None
    cached_first_calls: int  # trials whose first request is in the log's cache
    new_calls_max: int | None  # calls the run may still make: pending trials, less cached first calls


@dataclass(frozen=True)
class ModelPlan(Record):
    model: str
    calls_max: int | None
    new_calls_max: int | None
    prompt_tokens_max: int  # over the new calls, on each program's longest path
    completion_tokens_max: int  # max_tokens (or ASSUMED_COMPLETION_TOKENS) per new call
    max_tokens_assumed: bool  # the model's params set no max_tokens
    latency_s: float | None  # mean seconds per call
    latency_source: str  # log (N calls) | simulated | measured (N calls) | unknown
    seconds_max: float | None  # new calls x latency / the study's concurrency
    cost_usd_max: float | None
    cost_source: str  # litellm cost map | local (free) | simulated (free) | not in litellm's cost map


@dataclass(frozen=True)
class ComparisonPower(Record):
    model: str
    task: str
    condition: str
    control: str
    n: int  # examples per condition (repeats are averaged per example)
    comparisons: int  # corrected together with this one (Holm's strictest step, Bonferroni)
    effect: float
    baseline: float
    alpha: float
    power: float
    n_for_80: int | None  # examples per condition for 80% power; None: beyond the search limit


@dataclass(frozen=True)
class Plan(Record):
    study: str
    run_id: str
    db: str
    effect: float
    baseline: float
    alpha: float
    concurrency: int
    trials: int
    trials_done: int
    calls_max: int | None
    cached_first_calls: int
    new_calls_max: int | None
    seconds_max: float | None
    cost_usd_max: float | None
    conditions: list[ConditionPlan] = field(default_factory=list)
    models: list[ModelPlan] = field(default_factory=list)
    power: list[ComparisonPower] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """What `workbench plan --json` prints."""
        return self.to_dict(json_safe=True)

    def summary(self) -> str:
        """The line `workbench plan` ends with: trials, calls, cached, time and cost at most."""
        cost = "unknown" if self.cost_usd_max is None else f"{self.cost_usd_max:.4f} USD"
        return (
            f"trials {self.trials} ({self.trials_done} done), model calls at most {count_text(self.calls_max)} "
            f"({self.cached_first_calls} first calls cached, at most {count_text(self.new_calls_max)} new), "
            f"time at most {duration_text(self.seconds_max)}, cost at most {cost}; log: {self.db}"
        )


def count_text(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# -- power ------------------------------------------------------------------------------------
def comparison_power(study: ResolvedStudy, effect: float = REFERENCE_EFFECT, baseline: float = 0.5, alpha: float = 0.05) -> list[ComparisonPower]:
    """Each condition against the control, per model and task, at the task's planned n.
    Raises BadFigure for an impossible baseline, effect or alpha."""
    control = study.control_name
    treated = [c for c in study.conditions if c != control]
    rows: list[ComparisonPower] = []
    if not treated:  # a study of one condition compares nothing
        return rows
    figures: dict[int, tuple[float, int | None]] = {}
    for model in study.spec.models:
        for ref in study.spec.tasks:
            n = int(ref.n)
            if n not in figures:
                figures[n] = _power_at(n, len(treated), effect, baseline, alpha)
            power, needed = figures[n]
            rows += [ComparisonPower(model.id, ref.task, c, control, n, len(treated), effect, baseline, alpha, power, needed) for c in treated]
    return rows


class BadFigure(ValueError):
    """An impossible effect, baseline or alpha; `parameter` names plan_study's argument."""

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter
        self.detail = detail


_PARAMETERS = {"p_control": "baseline", "delta": "effect"}  # power_paired_binary's names -> the plan's


def _power_at(n: int, comparisons: int, effect: float, baseline: float, alpha: float) -> tuple[float, int | None]:
    try:
        at_n = power_paired_binary(baseline, effect, n, alpha=alpha, comparisons=comparisons).power
    except ValueError as exc:
        parameter, _, detail = str(exc).partition(": ")
        raise BadFigure(_PARAMETERS.get(parameter, parameter), detail) from None
    try:
        needed: int | None = power_paired_binary(baseline, effect, power=TARGET_POWER, alpha=alpha, comparisons=comparisons).n
    except ValueError:  # more examples than the search goes to
        needed = None
    return at_n, needed


def low_power_warning(study: ResolvedStudy, baseline: float = 0.5, alpha: float = 0.05) -> str | None:
    """A warning when every comparison has power below 50% to detect a 10-point difference."""
    rows = comparison_power(study, REFERENCE_EFFECT, baseline, alpha)
    if not rows or any(r.power >= LOW_POWER for r in rows):
        return None
    best = max(rows, key=lambda r: r.power)
    needed = f"about {best.n_for_80} examples per task give 80%" if best.n_for_80 else "no n within reach gives 80%"
    return (
        f"every comparison has power below {LOW_POWER:.0%} to detect a {REFERENCE_EFFECT * 100:.0f}-point difference "
        f"(at most {best.power:.2f} with n={best.n} and {best.comparisons} comparison(s) corrected together, baseline {baseline:g}); {needed}"
    )


# -- walking the programs ---------------------------------------------------------------------
@dataclass(frozen=True)
class WalkedCall:
    model: ModelSpec
    request: ModelRequest
    key: str  # the cache key the run would look up


def filler(model: ModelSpec) -> str:
    """An answer of about max_tokens tokens that no scorer accepts, no verifier passes and no
    verdict reader reads as correct: it walks a program's longest path."""
    return " ".join(["~"] * completion_tokens(model)[0])


def completion_tokens(model: ModelSpec) -> tuple[int, bool]:
    """Tokens per answer at most, and whether that is assumed (no max_tokens in the params)."""
    limit = model.params.get("max_tokens")
    return (int(limit), False) if isinstance(limit, int) and limit > 0 else (ASSUMED_COMPLETION_TOKENS, True)


async def walk(trial: Trial, judge: ModelSpec | None, providers: dict[str, Provider]) -> list[WalkedCall]:
    """The requests the trial's program sends, in order, when every answer is a filler: the very
    requests (and cache keys) the runner builds, through the same program (workbench.execute)."""
    calls: list[WalkedCall] = []

    def recording(model: ModelSpec) -> Generate:
        provider = providers[model.id]

        async def generate(messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Generation:
            index = len(calls)
            request, context = call_for(trial, model, messages, purpose, index, sim_targets)
            calls.append(WalkedCall(model, request, cache_key(request, provider.endpoint, provider.cache_scope(context))))
            return Generation(text=filler(model), call_index=index)

        return generate

    await solve_and_score(trial, recording, judge)
    return calls


async def _walk_all(trials: Sequence[Trial], judge: ModelSpec | None, providers: dict[str, Provider]) -> list[list[WalkedCall]]:
    return list(await asyncio.gather(*(walk(t, judge, providers) for t in trials)))


def _batches(items: Sequence[Trial], size: int = BATCH) -> Iterator[Sequence[Trial]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the log ----------------------------------------------------------------------------------
class _LogLookup:
    """The log's answers to the plan's questions, per batch; an absent log knows nothing."""

    def __init__(self, db: Path) -> None:
        self.con = connect_reader(db) if log_exists(db) else None
        self._retried: dict[str, set[str]] = {}  # run id -> its trials a resume runs again (transient errors)

    def cached(self, keys: list[str]) -> set[str]:
        if self.con is None or not keys:
            return set()
        rows = self.con.execute(
            "SELECT DISTINCT cache_key FROM calls_landed WHERE error IS NULL AND NOT cached AND cache_key IN (SELECT unnest(?))", [keys]
        ).fetchall()
        return {r[0] for r in rows}

    def done(self, run_id: str, trial_ids: list[str]) -> set[str]:
        if self.con is None or not trial_ids:
            return set()
        rows = self.con.execute("SELECT trial_id FROM trials WHERE run_id = ? AND trial_id IN (SELECT unnest(?))", [run_id, trial_ids]).fetchall()
        if run_id not in self._retried:  # read once per run, as the runner does at its start
            self._retried[run_id] = set(to_retry(errored_trials(self.con, run_id)))
        return {r[0] for r in rows} - self._retried[run_id]

    def latency(self, model: str, endpoint: str) -> tuple[float | None, int]:
        """Mean seconds per answered, uncached call of the model at this endpoint, and how many."""
        if self.con is None:
            return None, 0
        count, mean = self.con.execute(
            "SELECT count(*), avg(latency_s) FROM calls_landed WHERE model = ? AND endpoint = ? AND error IS NULL AND NOT cached AND latency_s IS NOT NULL",
            [model, endpoint],
        ).fetchone()
        return (float(mean) if count else None), int(count)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


# -- tokens, time and cost --------------------------------------------------------------------
def _litellm() -> Any:
    from ..providers.litellm_provider import _litellm as quiet_litellm

    return quiet_litellm()


def count_tokens(model: str, messages: tuple[tuple[str, str], ...]) -> int:
    """Prompt tokens as the model's log rows would count them: the simulator counts words;
    others by litellm's counter (the model's tokenizer where litellm knows it, else tiktoken's)."""
    if model.startswith("sim/"):
        return sum(len(content.split()) for _, content in messages)
    with contextlib.redirect_stdout(io.StringIO()):  # litellm prints provider hints
        return int(_litellm().token_counter(model=model, messages=[{"role": r, "content": c} for r, c in messages]))


def model_cost(model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float | None, str]:
    """US dollars from litellm's cost map (LITELLM_LOCAL_MODEL_COST_MAP=True: its bundled copy, no network)."""
    if model.startswith("sim/"):
        return 0.0, "simulated (free)"
    if model in LOCAL_MODELS:
        return 0.0, "local (free)"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            prompt_cost, completion_cost = _litellm().cost_per_token(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    except Exception:  # noqa: BLE001 - litellm raises several kinds for a model it cannot price
        return None, "not in litellm's cost map"
    return float(prompt_cost + completion_cost), "litellm cost map"


def measure_latency(model: ModelSpec, requests: list[ModelRequest], concurrency: int, log: Notice) -> list[float]:
    """Seconds of a few real calls of the study's own first prompts, sent `concurrency` at a
    time as the run sends them (so a server that answers one at a time shows its queue, as the
    log's latencies do), after one untimed call that warms the server up. Starts a local server."""
    from ..providers import TrialContext, complete_with_retries, open_pool

    async def timed() -> list[float]:
        pool = await asyncio.to_thread(open_pool, [model], log)
        provider, gate = pool.get(model.id), asyncio.Semaphore(concurrency)

        async def one(request: ModelRequest) -> float | None:
            async with gate:
                outcome = await complete_with_retries(provider, request, TrialContext("plan", (), 0), max_retries=1, timeout_s=model.timeout_s)
            return outcome.response.latency_s if outcome.response is not None else None

        try:
            await one(requests[0])
            seconds = await asyncio.gather(*(one(r) for r in requests[1 : MEASURED_CALLS + 1]))
            return [s for s in seconds if s is not None]
        finally:
            await pool.close()

    return asyncio.run(timed())


# -- the plan ---------------------------------------------------------------------------------
@dataclass
class _Tally:
    """One model and condition's trials, counted as the batches go."""

    trials: int = 0
    done: int = 0
    per_trial_max: int | None = 0
    calls_max: int | None = 0
    cached: int = 0
    new_calls_max: int | None = 0
    solvers: set[str] = field(default_factory=set)

    def add(self, solver: str, per_trial: int | None, new: int | None, done: bool, cached: bool) -> None:
        self.trials += 1
        self.done += done
        self.cached += cached
        self.solvers.add(solver)
        self.per_trial_max = None if per_trial is None or self.per_trial_max is None else max(self.per_trial_max, per_trial)
        self.calls_max = _plus(self.calls_max, per_trial)
        self.new_calls_max = _plus(self.new_calls_max, new)


@dataclass
class _ModelTally:
    """One model's calls, and the tokens of those the run may still make."""

    calls_max: int | None = 0
    new_calls_max: int | None = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: list[ModelRequest] = field(default_factory=list)  # the first few it would send (what `measure` sends)

    def add(self, calls: int | None, new: int | None) -> None:
        self.calls_max, self.new_calls_max = _plus(self.calls_max, calls), _plus(self.new_calls_max, new)

    def spend(self, call: WalkedCall) -> None:
        self.prompt_tokens += count_tokens(call.model.id, call.request.messages)
        self.completion_tokens += completion_tokens(call.model)[0]
        if len(self.requests) <= MEASURED_CALLS:
            self.requests.append(call.request)


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def plan_study(
    study: ResolvedStudy,
    db: Path,
    *,
    effect: float = REFERENCE_EFFECT,
    baseline: float = 0.5,
    alpha: float = 0.05,
    fresh: bool = False,
    use_cache: bool = True,
    measure: bool = False,
    log: Notice = lambda _: None,
) -> Plan:
    """What `run` with these options would do, computed without calling a model and without
    writing anything (`measure` times a few calls of local models the log knows nothing of).
    Raises BadFigure for an impossible baseline, effect or alpha."""
    power = comparison_power(study, effect, baseline, alpha)  # bad figures fail before any work
    db = Path(db)
    run_id = run_id_for(study, fresh)
    spec = study.spec
    judge = spec.judge
    models = {m.id: m for m in [*spec.models, *([judge] if judge else [])]}
    providers = {model_id: build_provider(m) for model_id, m in models.items()}
    conditions: dict[tuple[str, str], _Tally] = {}
    per_model = {model_id: _ModelTally() for model_id in models}
    lookup = _LogLookup(db)
    try:
        trials = expand(study, run_id)
        for batch in _batches(trials):
            walked = asyncio.run(_walk_all(batch, judge, providers))
            cached = lookup.cached([calls[0].key for calls in walked if calls]) if use_cache else set()
            done = lookup.done(run_id, [t.trial_id for t in batch])
            for trial, calls in zip(batch, walked):
                own = max_calls(trial.solver, dict(trial.solver_params), trial.stimuli)
                judged = SCORERS.get(trial.task.scoring).judge_calls if judge is not None else 0
                first_cached = bool(calls) and calls[0].key in cached
                pending = trial.trial_id not in done
                new_own = (None if own is None else own - first_cached) if pending else 0
                new_judged = judged if pending else 0
                tally = conditions.setdefault((trial.model.id, trial.condition), _Tally())
                tally.add(trial.solver, _plus(own, judged), _plus(new_own, new_judged), not pending, first_cached)
                per_model[trial.model.id].add(own, new_own)
                if judge is not None:
                    per_model[judge.id].add(judged, new_judged)
                for call in calls[first_cached:] if pending else []:  # the calls the run may still make
                    per_model[call.model.id].spend(call)
        model_plans = [_model_plan(models[model_id], tally, providers[model_id], lookup, spec.concurrency, measure, log) for model_id, tally in per_model.items()]
    finally:
        lookup.close()
    condition_plans = [
        ConditionPlan(model, condition, ", ".join(sorted(t.solvers)), t.trials, t.done, t.per_trial_max, t.calls_max, t.cached, t.new_calls_max)
        for (model, condition), t in conditions.items()
    ]
    warnings = [w for w in [low_power_warning(study, baseline, alpha)] if w]
    unknown = sorted({c.solver for c in condition_plans if c.calls_per_trial_max is None})
    if unknown:
        warnings.append(f"solver(s) {', '.join(unknown)} declare no maximum of model calls: calls, time and cost are unknown")
    seconds = [m.seconds_max for m in model_plans if m.new_calls_max != 0]
    costs = [m.cost_usd_max for m in model_plans]
    return Plan(
        study=spec.name,
        run_id=run_id,
        db=str(db),
        effect=effect,
        baseline=baseline,
        alpha=alpha,
        concurrency=spec.concurrency,
        trials=len(trials),
        trials_done=sum(c.trials_done for c in condition_plans),
        calls_max=_sum(c.calls_max for c in condition_plans),
        cached_first_calls=sum(c.cached_first_calls for c in condition_plans),
        new_calls_max=_sum(c.new_calls_max for c in condition_plans),
        seconds_max=None if any(s is None for s in seconds) else sum(s or 0.0 for s in seconds),
        cost_usd_max=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        conditions=condition_plans,
        models=model_plans,
        power=power,
        warnings=warnings,
    )


def _sum(values: Iterable[int | None]) -> int | None:
    total: int | None = 0
    for value in values:
        total = _plus(total, value)
    return total


def _model_plan(model: ModelSpec, tally: _ModelTally, provider: Provider, lookup: _LogLookup, concurrency: int, measure: bool, log: Notice) -> ModelPlan:
    latency, source = _latency(model, tally, provider, lookup, concurrency, measure, log)
    seconds = None if latency is None or tally.new_calls_max is None else tally.new_calls_max * latency / concurrency
    cost, cost_source = model_cost(model.id, tally.prompt_tokens, tally.completion_tokens)
    return ModelPlan(
        model=model.id,
        calls_max=tally.calls_max,
        new_calls_max=tally.new_calls_max,
        prompt_tokens_max=tally.prompt_tokens,
        completion_tokens_max=tally.completion_tokens,
        max_tokens_assumed=completion_tokens(model)[1],
        latency_s=latency,
        latency_source=source,
        seconds_max=seconds,
        cost_usd_max=None if cost is None or tally.new_calls_max is None else cost,
        cost_source=cost_source,
    )


def _latency(model: ModelSpec, tally: _ModelTally, provider: Provider, lookup: _LogLookup, concurrency: int, measure: bool, log: Notice) -> tuple[float | None, str]:
    """Seconds per call: the simulator's planted latency; else the log's past calls of the model;
    else, for a local model and only when asked, a short measurement."""
    if model.id.startswith("sim/"):
        return (model.simulate.latency_ms if model.simulate else 0.0) / 1000, "simulated"
    mean, count = lookup.latency(model.id, provider.endpoint)
    if mean is not None:
        return mean, f"log ({count} calls)"
    if measure and model.id in LOCAL_MODELS and len(tally.requests) > 1:
        seconds = measure_latency(model, tally.requests, concurrency, log)
        if seconds:
            return sum(seconds) / len(seconds), f"measured ({len(seconds)} calls)"
    return None, "unknown"

