"""The workbench as a library: the one API that the CLI, the UI, a search objective and every
executor call, and nothing else needs.

    from workbench import api
    result = api.run("studies/quickstart.yaml", "runs.duckdb", progress=print)
    result.to_json()  # what `workbench run --json` prints

Each function returns a frozen result with `to_json()`: the JSON the matching CLI command prints
with `--json`. Bad input raises workbench.errors.UserError (one line: file, field, what is allowed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .core.errors import LogDamaged, LogFault, UserError
from .run.control import Progress, ProgressCallback, StopHandle
from .study.spec import RATING_EXAMPLE, NoRatingBlock, ResolvedStudy, load_study

__all__ = [
    "ComparisonResult", "ExportResult", "LogCheck", "LogDamaged", "LogFault", "LogRepair", "Progress", "RunList", "RunResult", "StopHandle",
    "TrialList", "UserError", "check_log", "compare", "export", "list_runs", "list_trials", "load_study", "log_fault_of", "plan", "repair_log", "run",
    "run_async", "SearchResult", "search", "study_warnings", "summarise",
]

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default log: library callers see nothing unless they pass `log`."""


def _resolved(study: str | Path | ResolvedStudy) -> ResolvedStudy:
    return study if isinstance(study, ResolvedStudy) else load_study(study)


def _existing_log(db: str | Path) -> Path:
    from .store import log_exists

    db = Path(db)
    if not log_exists(db):
        raise UserError("no log here (run a study first, or pass --db)", file=str(db))
    return db


def _reader(db: Path) -> Any:
    from .store import connect_reader

    return connect_reader(db)


# -- plan ----------------------------------------------------------------------------------------
def plan(
    study: str | Path | ResolvedStudy, db: str | Path, *, fresh: bool = False, use_cache: bool = True, effect: float = 0.10,
    baseline: float = 0.5, measure: bool = False, log: Log | None = None,
) -> Any:
    """What running `study` would take (workbench.reports.plan.Plan): no model call (unless `measure`
    times local models), nothing written. `to_json()` is what `workbench plan --json` prints."""
    from .core.paths import resolve_db_path
    from .reports.plan import BadFigure, plan_study

    try:
        return plan_study(_resolved(study), resolve_db_path(db), log=log or _quiet, fresh=fresh, use_cache=use_cache, effect=effect, baseline=baseline, measure=measure)
    except BadFigure as exc:
        raise UserError(exc.detail, field=f"--{exc.parameter}") from None


def study_warnings(study: str | Path | ResolvedStudy) -> list[str]:
    """What to tell before running `study`: what it may not do as meant (e.g. repeats at
    temperature 0), and power below 50% at a 10-point difference."""
    from .reports.plan import low_power_warning

    resolved = _resolved(study)
    return [w for w in [*resolved.warnings, low_power_warning(resolved)] if w]


# -- run and summarise ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    """A run as `workbench run` shows it: its counts, the per-condition table, per-task scores,
    suite reports, rounds of loops and the format diagnostic. The counts of calls (model_calls,
    cache_hits) are this session's when it comes from `run`, the whole log's from `summarise`."""

    run_id: str
    db: str
    trials_planned: int
    trials_done: int
    errors: int
    no_answer: int
    extractor: str | None
    model_calls: int
    cache_hits: int
    interrupted: bool
    warnings: tuple[str, ...]
    control: str
    errors_policy: str
    no_answer_policy: str
    single_task: bool
    rows: tuple[Any, ...]  # workbench.stats.ConditionRow, one per model and condition
    costs: Mapping[tuple[str, str], Any]  # (model, condition) -> workbench.rounds.ConditionCost
    tasks: tuple[dict[str, Any], ...]
    reports: Mapping[str, list[dict[str, Any]]]  # e.g. traits, perspectives (workbench.reports)
    rounds: tuple[Any, ...]  # workbench.rounds.RoundPoint of the conditions that loop
    format: tuple[Any, ...]  # workbench.stats.format_check rows
    flagged: frozenset[tuple[str, str]]  # (model, condition) the format diagnostic flags
    retried: int = 0  # trials run again after a transient error (this session's; the whole run's from the log)
    transient_kinds: Mapping[str, int] = field(default_factory=dict)  # errored trials a re-run retries, by kind of error
    transient_exhausted: int = 0  # trials still ending in a transient error after their last attempt: they stay errors

    @property
    def transient_errors(self) -> int:
        """Errored trials that ended in a transient error and that running the study again retries."""
        return sum(self.transient_kinds.values())

    def retry_notes(self) -> list[str]:
        """Lines saying which trials ran again after a transient error, how many a re-run retries and which gave up."""
        from .run.retry import retry_notes

        return retry_notes(self.retried, self.transient_kinds, self.transient_exhausted)

    @property
    def db_path(self) -> str:
        return self.db

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "db": self.db,
            "trials_planned": self.trials_planned,
            "trials_done": self.trials_done,
            "errors": self.errors,
            "no_answer": self.no_answer,
            "extractor": self.extractor,
            "model_calls": self.model_calls,
            "cache_hits": self.cache_hits,
            "interrupted": self.interrupted,
            "retried": self.retried,
            "transient_errors": self.transient_errors,
            "transient_kinds": dict(self.transient_kinds),
            "transient_exhausted": self.transient_exhausted,
            "warnings": list(self.warnings),
            "conditions": [
                {
                    "name": r.condition, **{k: v for k, v in r.to_dict().items() if k != "condition"},
                    **loop_columns(self.costs.get((r.model, r.condition))), "format_flag": (r.model, r.condition) in self.flagged,
                }
                for r in self.rows
            ],
            "tasks": list(self.tasks),
            **self.reports,
            "rounds": [p.to_dict() for p in self.rounds],
            "format": [f.to_dict(json_safe=True) for f in self.format],
        }


def loop_columns(cost: Any) -> dict[str, Any]:
    """What the rounds analysis adds to a condition's row: rounds used (None without a loop), and
    whether it consumed gold labels (an oracle verifier)."""
    if cost is None:
        return {"mean_rounds": None, "consumes_gold": False, "mean_tokens": None}
    return {"mean_rounds": cost.mean_rounds, "consumes_gold": cost.consumes_gold, "mean_tokens": cost.mean_tokens}


async def run_async(
    study: str | Path | ResolvedStudy, db: str | Path, *, fresh: bool = False, use_cache: bool = True,
    progress: ProgressCallback | None = None, stop: StopHandle | None = None, log: Log | None = None, max_attempts: int | None = None,
    executor: str = "local", address: str | None = None,
) -> RunResult:
    """Run `study` (or resume its run) in the running event loop; see `run`."""
    from .run.executors import executor_for
    from .run.scheduler import Runner

    resolved = _resolved(study)
    attempts = {} if max_attempts is None else {"max_attempts": max_attempts}
    chosen = executor_for(executor, address)  # a bad name, a missing Ray or an unreachable cluster fail before the run starts
    runner = Runner(resolved, Path(db), fresh=fresh, use_cache=use_cache, log=log or _quiet, progress=progress, stop=stop, executor=chosen, **attempts)
    session = await runner.run()
    return await asyncio.to_thread(summarise, db, session.run_id, study=resolved, session=session)


def run(
    study: str | Path | ResolvedStudy, db: str | Path, *, fresh: bool = False, use_cache: bool = True,
    progress: ProgressCallback | None = None, stop: StopHandle | None = None, log: Log | None = None, max_attempts: int | None = None,
    executor: str = "local", address: str | None = None,
) -> RunResult:
    """Run `study` (a path or a resolved study), or resume its run, logging every call to `db`.
    `progress` gets a Progress (done, errors, no_answer, pending) after each trial; `stop.stop()`,
    from any thread or task, ends the run as an interrupt does (RunResult.interrupted; running the
    same study again resumes it). A resume runs again the trials that ended in a transient error,
    each at most `max_attempts` times in all (default: workbench.run.retry.MAX_ATTEMPTS, 4).
    `executor`: where the trials execute, "local" (this process) or "ray" (a Ray cluster at
    `address`, HOST:PORT, or a Ray instance of this machine; workbench.run.ray_executor).
    Call from synchronous code; from async code use `run_async`."""
    return asyncio.run(run_async(study, db, fresh=fresh, use_cache=use_cache, progress=progress, stop=stop, log=log, max_attempts=max_attempts, executor=executor, address=address))


@dataclass(frozen=True)
class _RunFacts:
    """What the summary needs of the study: from the resolved study when there is one, else the log."""

    control: str
    errors: str
    no_answer: str
    conditions: tuple[str, ...]
    tasks: tuple[str, ...]
    warnings: tuple[str, ...]


def _facts_of(study: ResolvedStudy) -> _RunFacts:
    spec = study.spec
    return _RunFacts(study.control_name, spec.errors, spec.no_answer, tuple(study.conditions), tuple(study.tasks), tuple(study.warnings))


def _facts_from_log(db: Path, run_id: str | None) -> tuple[str, _RunFacts]:
    from .stats import load_run

    data = load_run(db, run_id)
    con = _reader(db)
    try:
        found = con.execute(
            "SELECT detail_json FROM run_events WHERE run_id = ? AND event = 'warnings' ORDER BY event_at DESC LIMIT 1", [data.run_id]
        ).fetchone()
    finally:
        con.close()
    warnings = tuple(json.loads(found[0]).get("messages", [])) if found else ()
    return data.run_id, _RunFacts(data.control, data.errors, data.no_answer, tuple(data.conditions), tuple(data.tasks), warnings)


def _session_from_log(con: Any, run_id: str) -> dict[str, Any]:
    """The counts `run` reports of its session, as the log holds them for the whole run."""
    from .run.retry import errored_trials, transient_errors

    planned, done, errors, no_answer, retried = con.execute(
        "SELECT r.trials_planned, count(t.trial_id), count(*) FILTER (WHERE t.status = 'error'), count(*) FILTER (WHERE t.status = 'no_answer'), "
        "count(*) FILTER (WHERE t.attempt > 1) FROM runs r LEFT JOIN trials t ON t.run_id = r.run_id WHERE r.run_id = ? GROUP BY r.trials_planned", [run_id]
    ).fetchone()
    transient = transient_errors(errored_trials(con, run_id)) if errors else None
    calls, hits = con.execute("SELECT count(*) FILTER (WHERE NOT coalesce(cached, false)), count(*) FILTER (WHERE cached) FROM calls WHERE run_id = ?", [run_id]).fetchone()
    last = con.execute("SELECT event FROM run_events WHERE run_id = ? ORDER BY event_at DESC LIMIT 1", [run_id]).fetchone()
    return {
        "trials_planned": int(planned or 0), "trials_done": int(done), "errors": int(errors), "no_answer": int(no_answer),
        "model_calls": int(calls), "cache_hits": int(hits), "interrupted": bool(last and last[0] == "interrupted"), "retried": int(retried),
        **_transient_counts(transient),
    }


def _transient_counts(transient: Any) -> dict[str, Any]:
    """RunResult's counts of transient errors from a run.retry.TransientErrors (None: no error)."""
    if transient is None:
        return {"transient_kinds": {}, "transient_exhausted": 0}
    return {"transient_kinds": dict(transient.retryable), "transient_exhausted": transient.exhausted}


def summarise(db: str | Path, run_id: str | None = None, *, study: ResolvedStudy | None = None, session: Any = None) -> RunResult:
    """A run read from the log into the RunResult `workbench run --json` prints (default: the
    latest run). `study`, when given, supplies the condition and task order and the warnings
    (else they come from the log); `session` (a runner RunSummary) the counts of one session."""
    from .reports import run_reports
    from .reports.rounds import by_condition, gain_and_cost
    from .stats import condition_table, trial_frame
    from .stats.extractor_view import own_extractor
    from .stats.format_check import format_diagnostic, read_format
    from .scoring.task_scores import task_scores

    db = Path(db)
    if study is not None and run_id is not None:
        facts = _facts_of(study)
    else:
        run_id, facts = _facts_from_log(db, run_id)
    con = _reader(db)
    try:
        counts = _session_from_log(con, run_id) if session is None else {
            **{k: getattr(session, k) for k in ("trials_planned", "trials_done", "errors", "no_answer", "model_calls", "cache_hits", "interrupted", "retried")},
            **_transient_counts(session.transient),
        }
        frame = trial_frame(con, run_id)
        per_task = task_scores(con, run_id, facts.errors, facts.no_answer)
        reports = run_reports(con, run_id, facts.control)  # e.g. traits, perspectives
        cost_list, curve = gain_and_cost(con, run_id, facts.errors, facts.no_answer)
        extractor = own_extractor(con, run_id)
        format_rows = format_diagnostic(
            read_format(con, run_id, extractor), facts.control, extractor, errors=facts.errors, no_answer=facts.no_answer,
            order=list(facts.conditions), task_order=list(facts.tasks),
        )
    finally:
        con.close()
    costs = by_condition(cost_list)
    rows = condition_table(frame, facts.control, facts.errors, order=list(facts.conditions), no_answer=facts.no_answer)
    single_task = len(facts.tasks) == 1
    loops = {c.condition for c in costs.values() if c.mean_rounds is not None}
    return RunResult(
        run_id=run_id, db=str(db), extractor=extractor, warnings=facts.warnings, control=facts.control, errors_policy=facts.errors,
        no_answer_policy=facts.no_answer, single_task=single_task, rows=tuple(rows), costs=costs, tasks=tuple(per_task),
        reports={name: in_study_order(found, facts.conditions) for name, found in reports.items()},
        rounds=tuple(p for p in in_study_order(curve, facts.conditions) if p.condition in loops), format=tuple(format_rows),
        flagged=flagged_conditions(format_rows, single_task), **counts,
    )


T = TypeVar("T")


def in_study_order(rows: Sequence[T], conditions: Sequence[str]) -> list[T]:
    """Rows (records or dicts with a model and a condition) grouped by model, conditions in the
    study's order; a stable sort, so each condition's rows keep their order (rounds, traits)."""
    position = {name: i for i, name in enumerate(conditions)}
    models: dict[str, int] = {}

    def key(row: Any) -> tuple[int, int]:
        model, condition = (row["model"], row["condition"]) if isinstance(row, Mapping) else (row.model, row.condition)
        return models.setdefault(str(model), len(models)), position.get(condition, len(position))

    return sorted(rows, key=key)


def flagged_conditions(format_rows: Sequence[Any], single_task: bool) -> frozenset[tuple[str, str]]:
    """(model, condition) pairs the format diagnostic flags over the run's tasks (the `all` row, or the one task's)."""
    return frozenset((f.model, f.condition) for f in format_rows if f.flagged and (single_task or f.task == "all"))


# -- compare -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonResult:
    """A run's comparison as `workbench compare` shows it: the statistics table (per task, across
    tasks, omnibus, format diagnostic), gain against cost, rounds of loops and suite reports."""

    run_id: str
    name: str
    table: Any  # workbench.stats.table comparison result
    costs: tuple[Any, ...]
    rounds: tuple[Any, ...]
    reports: Mapping[str, list[dict[str, Any]]]

    def to_frame(self) -> Any:
        """Every table of the comparison as one pandas DataFrame, a row per line of the CSV export
        (its `table` column says which table: workbench.export.TABLE_NAMES)."""
        from .export import comparison_frame

        return comparison_frame(self.table)

    def to_json(self) -> dict[str, Any]:
        payload = {"run_id": self.run_id, "name": self.name, **self.table.to_dict(json_safe=True)}
        return {**payload, "costs": [c.to_dict() for c in self.costs], "rounds": [p.to_dict() for p in self.rounds], **self.reports}


@dataclass(frozen=True)
class CompareOptions:
    """The choices of a comparison, as `workbench compare` takes them (None: the study's own)."""

    adjust: str = "holm"
    family: str = "model"
    test: str = "auto"
    conditions: tuple[str, ...] | None = None
    control: str | None = None
    errors: str | None = None
    level: float = 0.95
    no_answer: str | None = None
    extractor: str | None = None


def partial_warning(table: Any, run_id: str) -> str | None:
    """A run still being written (or stopped) is compared as it stands, with this warning."""
    if not table.partial:
        return None
    return (
        f"warning: run {run_id} is partial ({table.trials_done} of {table.trials_planned} trials logged): "
        "tests use only examples with every repeat logged in both conditions; p-values will change as it fills"
    )


def compare_choices() -> dict[str, tuple[str, ...]]:
    """What each of `compare`'s options allows (the extractors: those a log may hold scores of)."""
    from .scoring.extract import EXTRACTORS
    from .stats.multiplicity import METHODS as ADJUST_METHODS
    from .stats.table import ERROR_POLICIES, FAMILIES, TEST_NAMES

    return {"adjust": tuple(ADJUST_METHODS), "family": tuple(FAMILIES), "test": tuple(TEST_NAMES), "errors": tuple(ERROR_POLICIES),
            "no_answer": tuple(ERROR_POLICIES), "extractor": tuple(EXTRACTORS)}


def _check_options(options: CompareOptions) -> None:
    allowed = compare_choices()
    choices = {"--adjust": (options.adjust, allowed["adjust"]), "--family": (options.family, allowed["family"]), "--test": (options.test, allowed["test"])}
    if options.errors is not None:
        choices["--errors"] = (options.errors, allowed["errors"])
    if options.no_answer is not None:
        choices["--no-answer"] = (options.no_answer, allowed["no_answer"])
    for option, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"{value!r} is not allowed (allowed: {', '.join(allowed)})", field=option)
    if not 0.5 <= options.level < 1.0:
        raise UserError(f"{options.level} is not allowed (allowed: 0.5 to below 1, e.g. 0.95)", field="--level")


def _comparison_table(db: Path, run_id: str | None, options: CompareOptions, con: Any) -> tuple[Any, Any]:
    """The run's data and its comparison table with the format diagnostic, read with the reader
    `con` (which is left showing the table's extractor); bad options raise UserError before
    anything is read or written."""
    from .stats import compare as compare_frame
    from .stats import load_run
    from .stats.format_check import format_diagnostic, read_format_counted, with_format

    _check_options(options)
    data = load_run(db, run_id, options.extractor, counted=True, con=con)  # grouped by DuckDB: thousands of rows for millions of trials
    if data.frame.empty:
        raise UserError(f"run {data.run_id} has no trials yet", file=str(db))
    chosen = options.control or data.control
    if chosen not in set(data.frame["condition"]):
        raise UserError(f"{chosen!r} has no trials in run {data.run_id} (conditions: {', '.join(data.conditions)})", field="--control")
    wanted = None if options.conditions is None else list(options.conditions)
    try:
        table = compare_frame(
            data.frame, chosen, errors=options.errors or data.errors, adjust=options.adjust, family=options.family, level=options.level,
            test=options.test, conditions=wanted, order=data.conditions, task_order=data.tasks, repeats=data.repeats,
            planned=data.trials_planned, no_answer=options.no_answer or data.no_answer, extractor=data.extractor,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    scores = read_format_counted(con, data.run_id, data.extractor)  # grouped by DuckDB, as the table's trials
    rows = format_diagnostic(
        scores, table.control, data.extractor, errors=table.errors_policy, no_answer=table.no_answer_policy, level=table.level,
        conditions=wanted, order=data.conditions, task_order=data.tasks,
    )
    return data, with_format(table, rows)


def compare(db: str | Path, run_id: str | None = None, *, log: Log | None = None, **options: Any) -> ComparisonResult:
    """Each condition of a run (default: the latest) against the control, per task and across
    tasks; `options` are CompareOptions' fields (adjust, family, test, conditions, control,
    errors, level, no_answer, extractor). `log` gets the partial-run warning."""
    from .reports import run_reports

    db, chosen = Path(db), _options(options)
    _check_options(chosen)  # before the log is opened
    con = _reader(_existing_log(db))  # one reader for the whole comparison: opening one costs a tenth of a second on a large log
    try:
        data, table = _comparison_table(db, run_id, chosen, con)
        warning = partial_warning(table, data.run_id)
        if warning:
            (log or _quiet)(warning)
        reports = run_reports(con, data.run_id, chosen.control or data.control)  # e.g. traits, sac_induced, as `run` shows them
        costs, curve = _gain_and_cost(con, data, table, chosen.extractor)
    finally:
        con.close()
    reports = {name: in_study_order(found, data.conditions) for name, found in reports.items()}
    return ComparisonResult(data.run_id, data.name, table, tuple(costs), tuple(curve), reports)


def _gain_and_cost(con: Any, data: Any, table: Any, extractor: str | None) -> tuple[list[Any], list[Any]]:
    """Every condition's gain against cost and the rounds of those that loop (in the study's
    order), under the table's extractor and policies; `con` is left showing that extractor."""
    from .reports.rounds import gain_and_cost
    from .stats.extractor_view import use_extractor

    use_extractor(con, data.run_id, extractor)
    costs, curve = gain_and_cost(con, data.run_id, table.errors_policy, table.no_answer_policy)
    loops = {(c.model, c.condition) for c in costs if c.mean_rounds is not None}
    return costs, [p for p in in_study_order(curve, data.conditions) if (p.model, p.condition) in loops]


def _options(options: Mapping[str, Any]) -> CompareOptions:
    conditions = options.get("conditions")
    if isinstance(conditions, str):  # the CLI's comma-separated list
        conditions = tuple(c.strip() for c in conditions.split(",") if c.strip())
    return CompareOptions(**{**options, "conditions": None if conditions is None else tuple(conditions)})


# -- the UI's Results page: what changes a log, a comparison's figures, a run's examples -----------
def log_stamp(db: str | Path) -> tuple[int, ...]:
    """A cheap fingerprint of the log `db` (sizes and times of its files, nothing read): it
    changes whenever a trial lands, so a cache keyed on it shows a run being written as it fills."""
    from .store import log_stamp as stamp

    return stamp(Path(db))


def figures_png(compared: ComparisonResult) -> dict[str, bytes]:
    """The comparison's figures as PNG, by the names `workbench export --figures` gives their
    files: forest and heatmap, and for a run whose conditions loop, rounds and cost."""
    from .export.figures import comparison_figures, png_bytes

    return {name: png_bytes(figure) for name, figure in comparison_figures(compared.table, compared.rounds, compared.costs).items()}


def comparison_notes(compared: ComparisonResult) -> list[str]:
    """The sentences that explain the comparison's table, as `workbench compare` prints them under it."""
    from .export import notes

    return notes(compared.table)


@dataclass(frozen=True)
class ExampleList:
    """A run's examples (task, item), each with the conditions whose outcome differs from the
    control's on it in some repeat (workbench.reports.trial_view.ExampleEntry)."""

    run_id: str
    examples: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "examples": [e.to_dict(True) for e in self.examples]}


def list_examples(db: str | Path, run_id: str | None = None, *, extractor: str | None = None) -> ExampleList:
    """The examples of a run (default: the latest) and where their outcomes changed, read without
    the prompts and responses; `list_trials(item=...)` then reads one example's trials."""
    from .reports.trial_view import example_index

    found, examples = example_index(Path(db), run_id, extractor=extractor)
    return ExampleList(found, tuple(examples))


__all__ += ["ExampleList", "compare_choices", "comparison_notes", "figures_png", "list_examples", "log_stamp"]


# -- export --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the files (table, trials, figures, references.bib), and the text it
    gives for stdout (`--out -`), which the caller writes."""

    run_id: str
    written: tuple[Path, ...]
    to_stdout: bool = False  # the table or the trials went to stdout: `stdout` holds them
    stdout: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "written": [str(p) for p in self.written]}


def export(
    db: str | Path, run_id: str | None = None, *, layout: str = "full", format: str | None = None, out: str | None = None,
    trials: str | None = None, figures: str | Path | None = None, relative: bool = False, standalone: bool = False, bib: bool = True,
    files_only: bool = False, log: Log | None = None, **options: Any,
) -> ExportResult:
    """Write the comparison table (LaTeX, Markdown, CSV, Parquet; `out` None or "-": returned as
    ExportResult.stdout), the per-trial data, figures and a references.bib beside them. Every
    content is made before any file is written; `files_only` refuses an export to stdout (the
    CLI's --json, whose manifest stdout carries). `options`: as for `compare`."""
    from .export import write_atomic
    from .export.request import check_bib_paths, resolve

    request = resolve(layout, format, out, trials, None if figures is None else Path(figures), bib=bib)
    check_bib_paths(request.bib_paths())
    if files_only and request.to_stdout:
        raise UserError("the table or the trials would go to stdout, which carries the JSON: pass --out FILE (and --trials FILE)", field="--json")
    made = _export_contents(Path(db), run_id, request, relative=relative, standalone=standalone, log=log, options=options)
    written: list[Path] = []
    stdout: list[str] = []
    for path, content in made.contents:
        if path is None:
            stdout.append(content if isinstance(content, str) else content.decode())
        else:
            write_atomic(path, content)
            written.append(path)
    return ExportResult(made.run_id, tuple(written), request.to_stdout, "".join(stdout))


@dataclass(frozen=True)
class _ExportContents:
    run_id: str
    contents: tuple[tuple[Path | None, str | bytes], ...]  # (path, None: stdout; content), in the order they are written
    provenance: Any  # workbench.export.context.Provenance


def _export_contents(db: Path, run_id: str | None, request: Any, *, relative: bool, standalone: bool, log: Log | None, options: Mapping[str, Any]) -> _ExportContents:
    """Every file an export request (workbench.export.request.ExportRequest) asks for, made before
    any is written: `export` writes them, `export_files` hands them over as bytes."""
    from .export.bibliography import run_bibliography
    from .export.context import ExportContext, run_provenance
    from .export.figures import figure_files
    from .export.layouts import render
    from .export.trials import TRIAL_RENDERERS, trial_records
    from .reports.searches import confirmations
    from .stats import load_run

    table = None
    chosen = _options(options)
    if request.tables or request.figures is not None:
        _check_options(chosen)
        con = _reader(_existing_log(db))
        try:
            data, table = _comparison_table(db, run_id, chosen, con)
        finally:
            con.close()
        warning = partial_warning(table, data.run_id)
        if warning:
            (log or _quiet)(warning)
    else:
        data = load_run(db, run_id)
    provenance = run_provenance(db, data.run_id)
    contents: list[tuple[Path | None, str | bytes]] = []
    context = ExportContext(name=data.name, provenance=provenance.text, relative=relative, standalone=standalone, searches=tuple(confirmations(db)))
    contents += [(output.path, render(table, request.layout, output.format.name, context)) for output in request.tables]
    if request.trials is not None:
        contents.append((request.trials.path, TRIAL_RENDERERS[request.trials.format.name](trial_records(db, data.run_id))))
    if request.figures is not None:
        con = _reader(db)
        try:
            costs, curve = _gain_and_cost(con, data, table, chosen.extractor)  # a loop's rounds and cost, as `compare` shows them
        finally:
            con.close()
        figures = figure_files(table, provenance=provenance.text, created=provenance.started, rounds=curve, costs=costs)
        contents += [(request.figures / name, content) for name, content in figures.items()]
    bib_paths = request.bib_paths()
    if bib_paths:
        bib_text = run_bibliography(db, data.run_id)
        contents += [(path, bib_text) for path in bib_paths]
    return _ExportContents(data.run_id, tuple(contents), provenance)


# -- listings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialList:
    """Trials of a run with prompt, response, answer, gold and score (workbench.trial_view)."""

    listing: Any

    def to_json(self) -> dict[str, Any]:
        return self.listing.to_dict()


def list_trials(
    db: str | Path, run_id: str | None = None, *, condition: str | None = None, task: str | None = None, changed: bool = False,
    score: int | None = None, status: str | None = None, extractor: str | None = None, limit: int | None = None, item: str | None = None,
) -> TrialList:
    """Trials of a run (default: the latest), filtered as `workbench trials` filters them; `item`:
    one example's trials only."""
    from .scoring.extract import ERROR, NO_ANSWER, OK
    from .reports.trial_view import trial_listing

    statuses = (OK, NO_ANSWER, ERROR)
    if status is not None and status not in statuses:
        raise UserError(f"{status!r} is not allowed (allowed: {', '.join(statuses)})", field="--status")
    return TrialList(trial_listing(
        Path(db), run_id, condition=condition, task=task, changed=changed, score=score, status=status, extractor=extractor, limit=limit, item=item,
    ))


@dataclass(frozen=True)
class RunList:
    """The runs in a log with their progress and last event."""

    db: str
    runs: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> list[dict[str, Any]]:
        return json.loads(json.dumps(list(self.runs), default=str))


def list_runs(db: str | Path) -> RunList:
    """The runs in the log `db`, oldest first."""
    from .store import query

    db = _existing_log(db)
    rows = query(
        db,
        "SELECT r.run_id, r.name, r.created_at, r.trials_planned, "
        "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id) AS trials_done, "
        "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id AND t.status = 'error') AS errors, "
        "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id AND t.status = 'no_answer') AS no_answer, "
        "(SELECT e.event FROM run_events e WHERE e.run_id = r.run_id ORDER BY e.event_at DESC LIMIT 1) AS status "
        "FROM runs r ORDER BY r.created_at",
    )
    return RunList(str(db), tuple(rows))


# -- the log's health ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LogCheck:
    """The files of a log that cannot be read whole (workbench.store.Damage: path, reason)."""

    db: str
    damaged: tuple[Any, ...]

    @property
    def ok(self) -> bool:
        return not self.damaged

    def to_json(self) -> dict[str, Any]:
        return {"db": self.db, "ok": self.ok, "damaged": [{"path": str(d.path), "reason": d.reason} for d in self.damaged]}


def log_fault_of(exc: BaseException) -> LogFault | None:
    """An error met deep in reading a log (a damaged block of its DuckDB file) as the LogFault it
    is, or None: what the CLI prints as one line when no reader could tell the file beforehand."""
    from .store import damage_met

    return damage_met(exc)


def check_log(db: str | Path) -> LogCheck:
    """Read every file of the log `db` whole (its segments and its DuckDB file): `workbench log check`."""
    from .store import check_log as damaged_files

    db = _existing_log(db)
    return LogCheck(str(db), tuple(damaged_files(db)))


@dataclass(frozen=True)
class LogRepair:
    """What a repair set aside (from, to, why); whether the DuckDB file was rebuilt, from the
    segments and the tables of it that still read (`salvaged`; the rows of the `lost` ones that
    no segment holds are lost); the runs and trials the log holds after it."""

    db: str
    moved: tuple[tuple[Path, Path, str], ...]
    rebuilt: bool
    salvaged: tuple[str, ...]
    lost: tuple[str, ...]
    runs: int
    trials: int

    def to_json(self) -> dict[str, Any]:
        return {
            "db": self.db, "moved": [{"from": str(a), "to": str(b), "reason": why} for a, b, why in self.moved],
            "rebuilt": self.rebuilt, "salvaged": list(self.salvaged), "lost": list(self.lost), "runs": self.runs, "trials": self.trials,
        }


def repair_log(db: str | Path) -> LogRepair:
    """Set the damaged files of the log `db` aside in `<db>.quarantine/` (nothing is deleted) and
    keep the rest readable; a damaged DuckDB file is rebuilt from the segments (what only it held
    is lost, the file kept in the quarantine folder): `workbench log repair`. Run it while no run
    writes to the log."""
    from .store import query
    from .store import repair_log as set_aside

    db = _existing_log(db)
    done = set_aside(db)
    runs, trials = query(db, "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM trials) AS trials")[0].values()
    return LogRepair(str(db), done.moved, done.rebuilt, done.salvaged, done.lost, int(runs), int(trials))


# -- models --------------------------------------------------------------------------------------
SERVER_START = "server_start"  # ModelCheck.kind of an embedded model whose server did not start


@dataclass(frozen=True)
class ModelCheck:
    """One prompt answered by one model through the gateway (cache off, one retry)."""

    model: str
    ok: bool
    answer: str | None
    error: str | None
    latency_s: float
    kind: str | None = None  # the error's kind (workbench.providers.base: connection, timeout, authentication...)
    api_base: str | None = None

    @property
    def summary(self) -> str:
        """One line in words: the answer's time, or what failed where (e.g. `server unreachable`)."""
        from .providers.base import TRANSIENT_KINDS

        if self.ok:
            return f"{self.model} answered in {self.latency_s:.2f} s"
        words = {**TRANSIENT_KINDS, SERVER_START: "its model server did not start"}.get(self.kind or "") or (self.kind or "failed").replace("_", " ")
        return f"{self.model}{f' at {self.api_base}' if self.api_base else ''}: {words} ({' '.join(str(self.error).split())})"

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "ok": self.ok, "answer": self.answer, "error": self.error, "latency_s": self.latency_s}


def check_model(model: str, prompt: str, *, api_base: str | None = None, log: Log | None = None) -> ModelCheck:
    """Send `prompt` to `model` (at `api_base`, if given) as a trial's call would go: `workbench models check`."""
    import time

    from .core.messages import Message, to_dicts
    from .providers import ModelRequest, TrialContext
    from .run.gateway import GatewaySettings
    from .study.spec import model_spec

    spec = model_spec(id=model, api_base=api_base, params={"temperature": 0.0, "max_tokens": 32}, max_retries=1)

    async def check() -> ModelCheck:
        try:
            gateway = await GatewaySettings(models=(spec,), use_cache=False).open(log or _quiet)
        except RuntimeError as exc:  # an embedded model's server that does not start (workbench.providers.local_models)
            return ModelCheck(model=model, ok=False, answer=None, error=" ".join(str(exc).split()), latency_s=0.0, kind=SERVER_START, api_base=api_base)
        try:
            messages = (Message.text("system", "You are a helpful assistant."), Message.text("user", prompt))
            request = ModelRequest.build(spec.id, to_dicts(messages), spec.params, 0, "check")
            started = time.perf_counter()
            result = await gateway.call(spec, request, TrialContext("check", ("5",), 0))
            return ModelCheck(
                model=model, ok=result.error is None, answer=result.response.text if result.response else None,
                error=str(result.error) if result.error else None, latency_s=round(time.perf_counter() - started, 3),
                kind=result.error.kind if result.error else None, api_base=api_base,
            )
        finally:
            await gateway.close()

    return asyncio.run(check())


# -- the UI's Design page: study drafts, previews of conditions, credentials ------------------------
# The stimulus browser: the library's catalogue and the exact messages of a condition.
from .stimuli.catalog import Catalogue, CatalogEntry, Parameter  # noqa: E402  (the section's result types)
from .study.preview import AppliedEntry, ConditionPreview, PreviewCall  # noqa: E402

__all__ += ["AppliedEntry", "CatalogEntry", "Catalogue", "ConditionPreview", "Parameter", "PreviewCall", "preview_condition", "stimulus_catalogue"]


def stimulus_catalogue(study_path: str | Path | None = None) -> Catalogue:
    """The stimulus library by family: each stimulus's id, version, text, citation or authored
    label, parameters (kind, range or choices, default), placements and variants. With
    `study_path`, that study's stimulus files are in it too."""
    from .study.preview import study_catalogue

    return study_catalogue(study_path)


def preview_condition(
    stimuli: Sequence[str | Mapping[str, Any]], task: str, *, example: int = 0, seed: int | None = None, solver: str | None = None,
    solver_params: Mapping[str, Any] | None = None, study_path: str | Path | None = None,
) -> ConditionPreview:
    """The exact messages a condition with `stimuli` (references as a study file writes them:
    "EP02" or {"id": "SAC/warmth", "level": 5, "placement": "system"}) sends on example `example`
    of `task`, built by the runner's own code (workbench.study.preview)."""
    from .study.preview import preview_condition as preview

    return preview(stimuli, task, example=example, seed=seed, solver=solver, solver_params=solver_params, study_path=study_path)

from .study.draft import (  # noqa: E402  (the Design page's form: drafts and their choices)
    check_draft, choices_with, edited, field_text, form_number, form_text, heart_choices, model_choices, new_condition_name, new_draft, open_draft, parse_field, policy_choices,
    render_draft, schedule_parts, schedule_value, solver_choices, task_choices, task_examples, updated, with_entries, HEART_SOLVER, SIMULATED_MODEL, WHOLE_LIMIT,
)


def check_study_text(text: str, path: str | Path) -> ResolvedStudy:
    """A study's text checked as `workbench run` checks the file `path` it will be saved as (its
    relative paths resolve from there): the same caps, rules and one-line UserError."""
    from .study.spec import study_from_text

    return study_from_text(text, str(path))


@dataclass(frozen=True)
class SavedStudy:
    """A study saved from a draft: where, whether a write was needed, and its run identity."""

    path: str
    written: bool
    spec_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "written": self.written, "spec_hash": self.spec_hash}


def save_study(draft: Mapping[str, Any], path: str | Path, *, overwrite: bool = False) -> SavedStudy:
    """Write a draft as the study file `path` (atomically) once it passes `workbench run`'s checks
    there; a different file already at `path` is replaced only with `overwrite`."""
    from .export import write_atomic
    from .study.draft import needs_write

    label = str(path)
    text = render_draft(draft)
    needed = needs_write(label, text, overwrite)
    resolved = check_study_text(text, label)
    if needed:
        try:
            write_atomic(Path(label).expanduser(), text)
        except OSError as exc:
            raise UserError(f"cannot write the file ({exc.strerror or exc})", file=label) from None
    return SavedStudy(label, needed, resolved.spec_hash())


def credential_status(models: Sequence[str]) -> list[Any]:
    """For each model, the environment variables its provider reads keys from and whether each is
    set (workbench.providers.environment.EnvVariable: names only, never a value); local/* and sim/*
    need none."""
    from .providers.environment import credential_status as of_model

    return [variable for model in dict.fromkeys(models) for variable in of_model(model)]


__all__ += [
    "SavedStudy", "check_draft", "check_study_text", "choices_with", "credential_status", "edited", "field_text", "form_number", "form_text", "heart_choices", "model_choices", "new_condition_name",
    "new_draft", "open_draft", "parse_field", "policy_choices", "render_draft", "save_study", "schedule_parts", "schedule_value",
    "solver_choices", "task_choices", "task_examples", "updated", "with_entries", "HEART_SOLVER", "SIMULATED_MODEL", "WHOLE_LIMIT",
]


# -- runs in the background and their progress, read from the log ----------------------------------
from .reports.progress import ConditionProgress, RunProgress  # noqa: E402  (this part's records, light imports)
from .run.background import LaunchState as BackgroundRun  # noqa: E402

__all__ += [
    "BackgroundRun", "ConditionProgress", "RunProgress", "background_run", "background_runs", "cancel_run", "has_log", "resume_run",
    "run_progress", "run_statuses", "start_run",
]


def _log_file(db: str | Path) -> Path:
    from .core.paths import resolve_db_path

    return resolve_db_path(db).absolute()


def has_log(db: str | Path) -> bool:
    """Whether the log `db` (a file, or a directory holding one, as --db takes it) exists yet."""
    from .store import log_exists

    return log_exists(_log_file(db))


def start_run(study: str | Path, db: str | Path) -> BackgroundRun:
    """Start `workbench run STUDY --db DB` (the CLI itself) in a detached background process and
    return its state; it outlives the caller, and `background_run(db)` finds it again. The study
    is validated first: a bad one raises UserError and starts nothing. A run that a live process
    runs already (launched here or a `workbench run` in a terminal) raises UserError too."""
    from .run import background
    from .run.scheduler import already_running, run_id_for
    from .store import run_lock_holder

    log_file = _log_file(db)
    resolved = load_study(study)
    run_id = run_id_for(resolved, fresh=False)
    launched = background.launch_of(log_file, run_id)
    pid = launched.launch.pid if launched is not None and launched.running else run_lock_holder(log_file, run_id)
    if pid is not None:
        raise UserError(already_running(run_id, pid))
    return background.start(Path(study).absolute(), log_file, run_id)


def background_run(db: str | Path, run_id: str | None = None) -> BackgroundRun | None:
    """The latest background launch on the log `db` (or the one of `run_id`) as it stands now:
    running, finished, interrupted, failed (with the CLI's one-line message) or lost; None: none."""
    from .run import background

    log_file = _log_file(db)
    if run_id is not None:
        return background.launch_of(log_file, run_id)
    found = background.launches(log_file)
    return found[0] if found else None


def background_runs(db: str | Path) -> list[BackgroundRun]:
    """Every background launch on the log `db`, the latest first."""
    from .run import background

    return background.launches(_log_file(db))


def _launched(db: str | Path, run_id: str | None) -> BackgroundRun:
    found = background_run(db, run_id)
    if found is None:
        raise UserError("no run was started in the background on this log", file=str(db))
    return found


def cancel_run(db: str | Path, run_id: str | None = None, *, wait_s: float = 30.0) -> BackgroundRun:
    """Interrupt the background run (default: the latest launch) as Ctrl-C does: it stops, exits
    130 and resumes later. Waits up to `wait_s` for it to end and returns its state then."""
    from .run import background

    return background.interrupt(_launched(db, run_id), wait_s)


def resume_run(db: str | Path, run_id: str | None = None) -> BackgroundRun:
    """Launch the study of a background run (default: the latest launch) again: the CLI resumes its run."""
    return start_run(_launched(db, run_id).launch.study, db)


def run_progress(db: str | Path, run_id: str) -> RunProgress | None:
    """`run_id`'s progress read from the log while it is written (cheap: a page polls it); None
    while the run is not in the log yet (its process starting)."""
    from .reports.progress import read_progress

    return read_progress(_log_file(db), run_id)


def run_statuses(db: str | Path) -> RunList:
    """The runs of the log with a status that says whether a process runs them now: `running`
    (a live process holds the run's lock), `finished`, `interrupted`, or `stopped` (its last
    session ended without a word: killed). Resuming any but a finished one runs what is left."""
    from .store import run_lock_holder

    from .reports.progress import SESSION_ENDS

    log_file = _log_file(db)
    listing = list_runs(log_file)

    def status(row: dict[str, Any]) -> str:
        if run_lock_holder(log_file, row["run_id"]) is not None:
            return "running"
        return str(row["status"]) if row["status"] in SESSION_ENDS else "stopped"  # a session's last word, or none: killed

    return RunList(listing.db, tuple({**row, "status": status(row)} for row in listing.runs))



# -- ratings of outputs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RatingScaleInfo:
    """A scale as the rater sees it: its points and their labels (a point without one: "")."""

    name: str
    points: tuple[int, ...]
    labels: Mapping[int, str]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "points": list(self.points), "labels": {str(k): v for k, v in self.labels.items()}}


@dataclass(frozen=True)
class RatingQueue:
    """What a rater has left to rate in a run, in their order (blind: inputs and responses only),
    and how far they are: `done` of `total` units rated."""

    run_id: str
    rater: str
    mode: str
    scales: tuple[RatingScaleInfo, ...]
    pending: tuple[Any, ...]  # workbench.stats.ratings.Unit, the next first
    done: int
    total: int

    @property
    def next(self) -> Any | None:
        return self.pending[0] if self.pending else None

    def progress_text(self) -> str:
        return f"{self.done} of {self.total} rated"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "rater": self.rater, "mode": self.mode, "scales": [s.to_json() for s in self.scales],
            "pending": [u.to_dict() for u in self.pending], "done": self.done, "total": self.total,
        }


@dataclass(frozen=True)
class RatingAnalysis:
    """A run's ratings: per scale, Krippendorff's alpha across raters and the comparison table
    of the conditions against the control (a trial's score: the mean of its ratings)."""

    run_id: str
    raters: tuple[str, ...]
    ratings: int
    agreement: tuple[Any, ...]  # workbench.stats.ratings.Agreement per scale
    tables: Mapping[str, Any]  # scale -> workbench.stats.table.Comparison (scales with ratings)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "raters": list(self.raters), "ratings": self.ratings,
            "agreement": [a.to_dict(json_safe=True) for a in self.agreement],
            "scales": {name: table.to_dict(json_safe=True) for name, table in self.tables.items()},
        }


def _rating_run(db: str | Path, run_id: str | None) -> tuple[Path, Any, Any]:
    """The log, an open reader and the run's rating plan (default run: the latest)."""
    from .stats.ratings import rating_plan

    db = _existing_log(db)
    con = _reader(db)
    try:
        if run_id is None:
            latest = con.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
            if latest is None:
                raise UserError("the log holds no runs", file=str(db))
            run_id = latest[0]
        elif con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] == 0:
            raise UserError(f"no run {run_id!r} in this log", file=str(db), field="--run")
        return db, con, rating_plan(con, run_id, str(db))
    except BaseException:
        con.close()
        raise


def rating_scales(db: str | Path, run_id: str | None = None) -> tuple[RatingScaleInfo, ...]:
    """The scales of a run's rating block; NoRatingBlock (a UserError) when its study has none."""
    _, con, plan = _rating_run(db, run_id)
    con.close()
    return _scales_of(plan)


def _scales_of(plan: Any) -> tuple[RatingScaleInfo, ...]:
    return tuple(RatingScaleInfo(s.name, tuple(s.points()), dict(s.labels)) for s in plan.spec.scales)


def _queue_of(plan: Any, placed: Sequence[Any], rated: set[str], rater: str) -> RatingQueue:
    pending = tuple(p.unit for p in placed if p.unit.unit_id not in rated)
    return RatingQueue(plan.run_id, rater, plan.spec.mode, _scales_of(plan), pending, len(placed) - len(pending), len(placed))


def rating_queue(db: str | Path, run_id: str | None, rater: str) -> RatingQueue:
    """The outputs `rater` has still to rate in a run (default: the latest), blind and in the
    rater's seeded order (workbench.stats.ratings), with their progress."""
    from .stats.ratings import check_rater, queue, rated_units

    rater = check_rater(rater)
    _, con, plan = _rating_run(db, run_id)
    try:
        return _queue_of(plan, queue(con, plan, rater), rated_units(con, plan.run_id, rater), rater)
    finally:
        con.close()


def save_rating(db: str | Path, run_id: str, rater: str, unit_id: str, values: Mapping[str, Mapping[str, Any]]) -> RatingQueue:
    """Log `rater`'s rating of one unit of the queue: `values` maps each output's side ("" for a
    single output, "A"/"B" in a pair) to a value per scale. A value off its scale, an unknown unit
    or one the rater rated already is a UserError; nothing is written then. Returns the queue after it."""
    from .stats.ratings import check_rater, queue, rated_units, rating_rows
    from .store import SegmentWriter

    rater = check_rater(rater)
    path, con, plan = _rating_run(db, run_id)
    try:
        placed = queue(con, plan, rater)
        rated = rated_units(con, plan.run_id, rater)
    finally:
        con.close()
    unit = next((p for p in placed if p.unit.unit_id == unit_id), None)
    if unit is None:
        raise UserError(f"no output {unit_id!r} to rate in run {plan.run_id}", field="unit_id")
    if unit_id in rated:
        raise UserError(f"{rater} has rated {unit_id} already (a rating is kept as first given)", field="unit_id")
    rows = rating_rows(plan, unit, rater, values)
    with SegmentWriter(path) as writer:  # a batch of its own: no lock on the file, beside a run's writer
        writer.write({"ratings": rows}, fold=False)
    return _queue_of(plan, placed, rated | {unit_id}, rater)


def rating_analysis(db: str | Path, run_id: str | None = None, **options: Any) -> RatingAnalysis:
    """A run's ratings analysed like any score: per scale, the conditions against the control with
    `compare`'s tests, intervals and corrections (`options`: adjust, family, test, level) and
    Krippendorff's alpha across raters at the block's `agreement` level."""
    from .stats.ratings import agreement, compare_scale, ratings_frame

    chosen = CompareOptions(**options)
    _check_options(chosen)
    _, con, plan = _rating_run(db, run_id)
    try:
        ratings = ratings_frame(con, plan.run_id)
        spec = json.loads(con.execute("SELECT spec_json FROM runs WHERE run_id = ?", [plan.run_id]).fetchone()[0])
    finally:
        con.close()
    order = [c["name"] for c in spec.get("conditions", [])]
    tasks = [t["task"] for t in spec.get("tasks", [])]
    compared = {"adjust": chosen.adjust, "family": chosen.family, "test": chosen.test, "level": chosen.level}
    agreements, tables = [], {}
    for scale in plan.spec.scales:
        rated = ratings[ratings["scale"] == scale.name]
        agreements.append(agreement(rated, scale.name, plan.spec.agreement))
        table = compare_scale(rated, plan.control, order, tasks, **compared)
        if table is not None:
            tables[scale.name] = table
    return RatingAnalysis(plan.run_id, tuple(sorted(set(ratings["rater"]))), len(ratings), tuple(agreements), tables)


__all__ += ["NoRatingBlock", "RATING_EXAMPLE", "RatingAnalysis", "RatingQueue", "RatingScaleInfo", "rating_analysis", "rating_queue", "rating_scales", "save_rating"]


# -- exports as bytes (the UI's downloads) ---------------------------------------------------------
__all__ += ["ExportChoices", "ExportFiles", "LogState", "export_choices", "export_files", "log_state"]


@dataclass(frozen=True)
class ExportFiles:
    """An export's files as bytes, by name: `table.tex`, `table.md`, `table.csv`, `table.parquet`,
    `trials.csv` or `trials.parquet`, `figures/forest.pdf` (.png, and heatmap), `references.bib`
    (and `figures/references.bib`). Each holds the bytes `workbench export` writes to that file
    for the same log path, run and options: the same code makes them."""

    run_id: str
    files: Mapping[str, bytes]
    started: Any = None  # the run's start (UTC, from the log): the date of a zip's entries

    def figures_zip(self) -> bytes:
        """The figures and their references.bib as a zip, named as `--figures DIR` writes them in
        DIR; its bytes follow from the files and the run's start alone."""
        from .export import zip_bytes
        from .export.request import FIGURES_DIR

        prefix = f"{FIGURES_DIR.as_posix()}/"
        return zip_bytes({name.removeprefix(prefix): content for name, content in self.files.items() if name.startswith(prefix)}, self.started)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "files": {name: len(content) for name, content in self.files.items()}}


def export_files(
    db: str | Path, run_id: str | None = None, *, layout: str = "full", tables: Sequence[str] = ("latex", "markdown", "csv"),
    trials: str | None = None, figures: bool = False, relative: bool = False, standalone: bool = False, bib: bool = True,
    log: Log | None = None, **options: Any,
) -> ExportFiles:
    """What `export` writes, as bytes by name, with no file written: the comparison table in each
    of `tables` (latex, markdown, csv, parquet), the per-trial data (`trials`: trials.csv or
    trials.parquet), the figures (`figures`) and a references.bib beside them (`bib`). `options`:
    as for `compare`. The log's path, as given, is in the tables' provenance comment: give the
    path `workbench export --db` gets for the same bytes."""
    from .export.request import download_request

    request = download_request(layout, tables, trials, figures, bib)
    made = _export_contents(Path(db), run_id, request, relative=relative, standalone=standalone, log=log, options=options)
    files = {path.as_posix(): content.encode("utf-8") if isinstance(content, str) else content for path, content in made.contents if path is not None}
    return ExportFiles(made.run_id, files, made.provenance.started)


@dataclass(frozen=True)
class ExportChoices:
    """What an export may be asked for, as `workbench export` and `compare` allow it."""

    layouts: Mapping[str, str]  # name -> what it shows
    tables: tuple[str, ...]  # formats of the comparison table
    trials: tuple[str, ...]  # formats of the per-trial data
    adjust: tuple[str, ...]
    family: tuple[str, ...]
    test: tuple[str, ...]
    policies: tuple[str, ...]  # for errors and for no answers
    conditions: tuple[str, ...] = ()  # the run's, in the study's order (--control, --conditions)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "layouts": dict(self.layouts)}


def export_choices(db: str | Path | None = None, run_id: str | None = None) -> ExportChoices:
    """The layouts, formats and comparison options an export takes (the UI's choices), with the
    conditions of the run `run_id` of the log `db` when given."""
    from .export.layouts import FORMATS, LAYOUTS
    from .stats.multiplicity import METHODS as ADJUST_METHODS
    from .stats.table import ERROR_POLICIES, FAMILIES, TEST_NAMES
    from .store import query

    conditions: tuple[str, ...] = ()
    if db is not None and run_id is not None:
        logged = query(_existing_log(db), "SELECT r.spec_json, c.condition FROM conditions c JOIN runs r USING (run_id) WHERE c.run_id = ?", [run_id])
        order = [c.get("name") for c in json.loads(logged[0]["spec_json"] or "{}").get("conditions", [])] if logged else []
        conditions = tuple(sorted({row["condition"] for row in logged}, key=lambda c: (order.index(c) if c in order else len(order), c)))
    formats = [FORMATS.get(name) for name in FORMATS]
    return ExportChoices(
        {name: LAYOUTS.get(name).description for name in LAYOUTS}, tuple(f.name for f in formats if not f.per_trial),
        tuple(f.name for f in formats if f.per_trial), tuple(ADJUST_METHODS), tuple(FAMILIES), tuple(TEST_NAMES), tuple(ERROR_POLICIES), conditions,
    )


# -- the log's state, as every page says it before reading the log ---------------------------------
@dataclass(frozen=True)
class LogState:
    """What a page tells of its log before it reads it: `state` (LOG_STATES) and a one-line
    `message` in words; `readable` when the pages can show it."""

    db: str
    state: str
    message: str
    schema: int | None = None  # the file's schema version (None: no file yet)

    @property
    def readable(self) -> bool:
        return self.state in READABLE_STATES

    def to_json(self) -> dict[str, Any]:
        return {"db": self.db, "state": self.state, "message": self.message, "schema": self.schema, "readable": self.readable}


LOG_STATES = ("missing", "unreadable", "damaged", "newer", "writing", "empty", "older", "current")
READABLE_STATES = ("writing", "empty", "older", "current")


def log_state(db: str | Path) -> LogState:
    """The state of the log `db`, cheaply (its file opened, not read; its segments' footers read):
    no log yet, not a log, damaged (`check_log` reads every file whole), written by a newer
    workbench, being written by a run now, empty, written by an older workbench (read as it is,
    upgraded by the next run or re-score on it), or current."""
    from .core.paths import resolve_db_path
    from .store import SCHEMA_VERSION, STORAGE_VERSION, glance, log_exists

    db = resolve_db_path(db)  # as the CLI reads --db: a folder holds its log; a path naming no file is a UserError
    if not log_exists(db):
        return LogState(str(db), "missing", f"No log at {db} yet: running a study makes it (the Run page, or `workbench run STUDY --db {db}`).")
    try:
        seen = glance(db)
    except LogFault as exc:  # LogDamaged: its message names the file and `workbench log repair`
        return LogState(str(db), "damaged", str(exc))
    except UserError as exc:
        return LogState(str(db), "unreadable", str(exc))
    schema = seen.schema
    if schema is not None and schema > SCHEMA_VERSION:
        return LogState(str(db), "newer", f"This log was written by a newer workbench (schema {schema}; this one knows up to {SCHEMA_VERSION}): update the workbench to read it.", schema)
    if seen.writers:
        return LogState(str(db), "writing", "A run is writing to this log now: the pages show it as it stands, and more as you reload.", schema)
    if not seen.has_runs:
        return LogState(str(db), "empty", "This log holds no run yet: running a study fills it.", schema)
    storage = "" if seen.storage == STORAGE_VERSION else f"; DuckDB storage {seen.storage}, today's {STORAGE_VERSION}"
    if schema is not None and (schema < SCHEMA_VERSION or storage):
        by = f"an older workbench (schema {schema}; today's is {SCHEMA_VERSION}{storage})" if schema < SCHEMA_VERSION else f"another DuckDB ({storage[2:]})"
        return LogState(str(db), "older", f"This log was written by {by}: it is read as it is, and the next run or re-score on it upgrades it in place.", schema)
    return LogState(str(db), "current", "The log is in today's schema.", schema)


@dataclass(frozen=True)
class SearchResult:
    """A search of a study's `search:` space (`workbench search --json`): the best candidate on the
    dev split and its confirmation against the control on the disjoint test split.

    `confirmation`: `delta` (winner minus control on the test split) with `ci_low`, `ci_high`,
    `p_value` and `test` (the paired test `compare` chooses), beside `dev_delta` (the same
    difference on the dev split the winner was chosen on: larger, the winner's curse) and
    `candidates` (distinct candidate conditions scored).

    `pareto`: a search of several objectives (`objective: [score, tokens]`) reports its Pareto
    front, one entry per candidate (`trial`, `params`, `condition`, `score`, `tokens`), highest
    score first; the candidate it confirms is that first one, and `best_value` is its score. None
    for a search of one objective."""

    search: str
    storage: str
    best_params: dict[str, Any]
    best_value: float | None  # None: every candidate was pruned (`note` says so; `winner` is the control)
    best_trial: int | None
    n_trials: int
    winner: dict[str, Any]
    model_params: dict[str, Any]
    confirmation: dict[str, Any]
    note: str | None = None
    pareto: list[dict[str, Any]] | None = None
    # the `baseline:` block's DSPy-optimised instruction (workbench/search/baseline.py): `name`, `condition` (a study
    # file's condition), `instructions` per task, `error`, and on the test split `vs_control` (baseline - control)
    # and `winner_vs_baseline`, each `delta`, `ci_low`, `ci_high`, `p_value`, `test`; None without the block
    baseline: dict[str, Any] | None = None

    def winner_condition(self) -> dict[str, Any]:
        """The winner as a study file's `conditions[]` entry."""
        return dict(self.winner)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


_CONFIRMATION = ("delta", "ci_low", "ci_high", "p_value", "test", "dev_delta", "control_dev", "candidates", "n_test", "level")


def search(
    study: str | Path | ResolvedStudy, db: str | Path, *, trials: int | None = None, workers: int = 1, log: Log | None = None,
    winner_study: str | Path | None = None, storage: str | None = None,
) -> SearchResult:
    """Run (or resume) the Optuna search of `study`'s `search:` block, logging every model call of
    its candidates to `db` as runs named `<study>.dev` and `<study>.test`, then confirm the winner.
    `trials` overrides the block's budget (all workers together run that many); `workers` more
    processes share the search's storage. `winner_study`: a study file written with the control and
    the winner (the search block dropped). `storage` (`--storage`): the search's Optuna storage in
    place of the block's `storage` (README: Search storage)."""
    from .search.engine import LogEvaluator, Search, conclude

    resolved = _resolved(study)
    if workers < 1:
        raise UserError(f"workers must be at least 1; got {workers}", field="--workers")
    engine = Search(resolved, LogEvaluator(Path(db), log or _quiet), Path(db), trials, storage_setting=storage)  # opens the storage: a bad one fails here, alone
    others = [_spawn_worker(resolved, Path(db), trials, index, storage) for index in range(1, workers)]
    try:
        facts = conclude(engine)
    finally:
        for process in others:
            process.join()
    failed = [p.exitcode for p in others if p.exitcode]
    if failed:
        raise UserError(f"{len(failed)} search worker process(es) failed (exit code {failed[0]})", field="--workers")
    result = SearchResult(
        search=facts["search"], storage=facts["storage"], best_params=facts["best_params"], best_value=facts["best_value"], best_trial=facts["best_trial"],
        n_trials=facts["n_trials"], winner=facts["winner"], model_params=facts["model_params"], confirmation={k: facts[k] for k in _CONFIRMATION},
        note=facts["note"], pareto=facts["pareto"], baseline=facts.get("baseline"),
    )
    if winner_study is not None:
        write_winner_study(resolved, result, winner_study)
    return result


def _spawn_worker(study: ResolvedStudy, db: Path, trials: int | None, index: int, storage: str | None) -> Any:
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=_search_worker, args=(study.path, str(db), trials, index, storage), daemon=False)
    process.start()
    return process


def _search_worker(path: str, db: str, trials: int | None, index: int, storage: str | None) -> None:
    """A second worker of `search`: its trials only (the first confirms), its sampler seeded apart,
    on the first one's storage."""
    from .search.engine import LogEvaluator, Search

    engine = Search(load_study(path), LogEvaluator(Path(db)), Path(db), trials, seed_offset=index, storage_setting=storage)
    engine.run_trials()


def write_winner_study(study: ResolvedStudy, result: SearchResult, out: str | Path) -> None:
    """The study file with its control and the search's winner as conditions (and the optimised
    baseline's, if any), the search block and sweeps dropped, the winner's model parameters set on every model."""
    import yaml

    from .core.input_files import load_yaml

    raw = dict(load_yaml(study.path))
    raw.pop("search", None)
    raw.pop("sweep", None)
    control = [c for c in raw.get("conditions", []) if isinstance(c, dict) and c.get("name") == study.control_name]
    optimised = [result.baseline["condition"]] if result.baseline and result.baseline.get("condition") else []
    raw["conditions"] = (control or [{"name": study.control_name}]) + [result.winner_condition()] + optimised
    if result.model_params:
        raw["models"] = [{**m, "params": {**m.get("params", {}), **result.model_params}} for m in raw["models"]]
    target = Path(out)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(yaml.safe_dump(raw, sort_keys=False))
    temporary.replace(target)  # nothing half written


# -- reading a search ----------------------------------------------------------------------------
def searches(db: str | Path) -> tuple[str, ...]:
    """The searches the log `db` holds (`workbench search` runs), in the order they began."""
    from .reports.searches import search_names

    return tuple(search_names(_existing_log(db)))


def search_report(db: str | Path, search: str | None = None, *, storage: str | None = None) -> Any:
    """A search of the log `db` (default: its latest) as the Results page shows it
    (workbench.reports.searches.SearchReport): every trial with the best value so far, the
    parameters' importances, and the confirmation, the dev estimate beside the test estimate.
    The trials come from the search's storage: the journal beside the log, else the one its
    confirmation recorded, else `storage` (a journal path or database URL; a password comes from
    the environment, as for the search)."""
    from .reports.searches import search_report as report

    found = searches(db)
    if search is None and not found:
        raise UserError("this log holds no search (run `workbench search STUDY --db LOG`)", file=str(db))
    return report(Path(db), search if search is not None else found[-1], storage)


__all__ += ["search_report", "searches"]
