"""The `workbench` command: thin commands over the engine."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import interrupts
from .stimuli import stimuli_app
from ..core.errors import LogFault, UserError
from ..core.paths import DEFAULT_DB, resolve_db_path
from ..core.text import visible
from .terminal import stdout_console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Prompt-Affect Workbench: run and analyse stimulus studies.")
runs_app = typer.Typer(no_args_is_help=True, help="Runs in a log.")
models_app = typer.Typer(no_args_is_help=True, help="Model adapters.")
tasks_app = typer.Typer(no_args_is_help=True, help="Task suites: list tasks, sample examples.")
log_app = typer.Typer(no_args_is_help=True, help="The log's files: check them, set damaged ones aside.")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(tasks_app, name="tasks")
app.add_typer(stimuli_app, name="stimuli")
app.add_typer(log_app, name="log")

# Markup off: model ids, task names and paths are the user's text, and a `[` in one must print as is.
out = stdout_console()
err = Console(stderr=True, markup=False)

DbOption = Annotated[Path, typer.Option("--db", parser=resolve_db_path, help="DuckDB log file, or a directory (an existing one, or a path ending in /) to hold it as workbench.duckdb.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_error(message: str) -> None:
    # visible(): a path or name in the message may hold control characters (ESC) the terminal would run
    err.print(Text.assemble(("error:", "bold red"), f" {visible(message)}"), highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    _print_error(message)
    raise typer.Exit(code)


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="Study file (YAML).")],
    db: DbOption = DEFAULT_DB,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new run instead of resuming this study's run.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the models even for requests already in the log.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (as `workbench plan`) and stop: no call, nothing written.")] = False,
    executor: Annotated[str, typer.Option("--executor", help="Where the trials execute: local (this process) or ray (a Ray cluster).")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="With --executor ray: the cluster's head, HOST:PORT (default: a Ray instance of this machine, started for the run).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a study (or resume it), log every call, print the per-condition table."""
    from .. import api

    resolved = api.load_study(study)  # validate before the heavy imports, so bad input fails fast
    if dry_run:
        _plan(resolved, db, as_json, fresh=fresh, use_cache=not no_cache)
        return
    for warning in api.study_warnings(resolved):
        _print_warning(warning)
    interrupts.resumable()  # from here an interrupt leaves a run to resume, in start-up and compaction too

    with Progress(
        TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, transient=as_json, disable=not err.is_terminal and as_json,
    ) as bar:
        task_id = bar.add_task(resolved.spec.name, total=None)

        def progress(report: api.Progress) -> None:
            interrupts.resumable(report.run_id)
            bar.update(task_id, completed=report.done, total=report.total)

        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result (--json)
            result = api.run(resolved, db, fresh=fresh, use_cache=not no_cache, progress=progress, log=lambda m: err.print(m, highlight=False), executor=executor, address=address)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
    else:
        _print_run(result)
    for note in result.retry_notes():
        err.print(note, highlight=False, soft_wrap=True)
    if result.interrupted:
        interrupts.resumable(result.run_id)
        interrupts.exit_interrupted()


def _print_run(result: Any) -> None:
    from ..scoring.policies import Unscored

    _print_condition_table(result, list(result.rows), result.control, Unscored(result.errors_policy, result.no_answer_policy), result.costs, result.flagged, result.extractor)
    if not result.single_task:
        _print_task_table(list(result.tasks))
    if result.flagged:
        _print_format_table(_wide_console(), [f for f in result.format if f.is_control or f.flagged or (f.model, f.condition) in result.flagged])
    for name, report in result.reports.items():
        _print_report(name, report)
    if result.rounds:
        _print_round_table(list(result.rounds))


@app.command()
def search(
    study: Annotated[Path, typer.Argument(help="Study file (YAML) with a `search:` block.")],
    db: DbOption = DEFAULT_DB,
    trials: Annotated[Optional[int], typer.Option("--trials", min=1, help="Trials in all (default: the block's `trials`); a resumed search runs only those it lacks.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes sharing the search.")] = 1,
    write: Annotated[Optional[Path], typer.Option("--write", help="Write a study file with the control and the winner.")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="The search's Optuna storage in place of the block's `storage`: a journal file, postgresql://USER@HOST[:PORT]/DB (password from PGPASSWORD) or sqlite:///PATH.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search a study's `search:` space with Optuna (or resume the search), then confirm the winner on the test split."""
    from .. import api

    resolved = api.load_study(study)
    with contextlib.redirect_stdout(sys.stderr):
        result = api.search(resolved, db, trials=trials, workers=workers, log=lambda m: err.print(m, highlight=False), winner_study=write, storage=storage)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    c = result.confirmation
    if result.baseline:
        out.print(_baseline_line(result.baseline), highlight=False, soft_wrap=True)
    if result.note:
        out.print(f"{result.search}: {result.n_trials} trials; {result.note}", highlight=False, soft_wrap=True)
        return
    out.print(f"{result.search}: {result.n_trials} trials, {c['candidates']} candidates; best {result.winner['name']} (trial {result.best_trial}, dev score {result.best_value:.3f})", highlight=False, soft_wrap=True)
    out.print(f"winner - control: dev {_num(c['dev_delta'])}; test {_num(c['delta'])} [{_num(c['ci_low'])}, {_num(c['ci_high'])}] p={_num(c['p_value'])} ({c['test']}, n={c['n_test']})", highlight=False, soft_wrap=True)
    if result.pareto:
        front = ", ".join(f"{m['condition']} ({m['score']:.3f}, {m['tokens']:.0f} tokens)" for m in result.pareto)
        out.print(f"Pareto front, highest score first (the one confirmed): {front}", highlight=False, soft_wrap=True)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"


def _baseline_line(baseline: dict[str, Any]) -> str:
    """The optimised-instruction baseline in one line: its test deltas, or why there is none."""
    if baseline["error"]:
        return f"baseline {baseline['name']}: the optimiser failed: {baseline['error']}"
    versus, winner = baseline["vs_control"], baseline["winner_vs_baseline"]
    beat = f"; winner - baseline {_num(winner['delta'])} p={_num(winner['p_value'])}" if winner else ""
    return f"baseline {baseline['name']} - control: test {_num(versus['delta'])} [{_num(versus['ci_low'])}, {_num(versus['ci_high'])}] p={_num(versus['p_value'])}{beat}"


@app.command()
def plan(
    study: Annotated[Path, typer.Argument(help="Study file (YAML).")],
    db: DbOption = DEFAULT_DB,
    effect: Annotated[float, typer.Option("--effect", help="The difference each comparison's power is given for (0.10: 10 points of accuracy).")] = 0.10,
    baseline: Annotated[float, typer.Option("--baseline", help="The control's accuracy assumed for power (0.5: the most variable).")] = 0.5,
    measure: Annotated[bool, typer.Option("--measure", help="Time a few calls of local models the log has no calls of (starts their server).")] = False,
    as_json: JsonOption = False,
) -> None:
    """What running STUDY would take: trials, model calls at most, calls already cached, time,
    cost, and the power of each comparison. Calls no model, writes nothing."""
    from ..api import load_study

    _plan(load_study(study), db, as_json, effect=effect, baseline=baseline, measure=measure)


def _plan(resolved: Any, db: Path, as_json: bool, **options: Any) -> None:
    """Compute and print a plan: the table (or JSON) on stdout, its warnings on stderr."""
    from .. import api

    result = api.plan(resolved, db, log=lambda m: err.print(m, highlight=False), **options)
    for warning in result.warnings:
        _print_warning(warning)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    _print_plan(result)


def _wide_console() -> Console:
    """stdout; piped output is not squeezed into 80 columns."""
    return out


def _print_warning(message: str) -> None:
    err.print(Text.assemble(("warning:", "bold yellow"), f" {visible(message)}"), highlight=False, soft_wrap=True)


def _print_plan(plan: Any) -> None:
    from ..reports.plan import count_text, duration_text

    console = _wide_console()
    table = Table(title=f"plan: {plan.study} (run {plan.run_id})", caption="calls ≤: the program's calls at most (loops to their last round) plus the judge's; cached: trials whose first request is in the log's cache")
    for column in ("model", "condition", "solver", "trials", "done", "calls/trial ≤", "calls ≤", "cached", "new calls ≤"):
        table.add_column(column, justify="left" if column in ("model", "condition", "solver") else "right")
    for c in plan.conditions:
        table.add_row(c.model, c.condition, c.solver, str(c.trials), str(c.trials_done), count_text(c.calls_per_trial_max), count_text(c.calls_max), str(c.cached_first_calls), count_text(c.new_calls_max))
    console.print(table)
    table = Table(title="spending", caption=f"time: new calls x mean latency / concurrency {plan.concurrency}; tokens: the prompts on each program's longest path, max_tokens per answer")
    for column in ("model", "new calls ≤", "prompt tokens ≤", "completion tokens ≤", "s/call", "latency from", "time ≤", "cost ≤ (USD)", "price from"):
        table.add_column(column, justify="left" if column in ("model", "latency from", "price from") else "right")
    for m in plan.models:
        table.add_row(
            m.model, count_text(m.new_calls_max), str(m.prompt_tokens_max), f"{m.completion_tokens_max}{' (assumed)' if m.max_tokens_assumed else ''}",
            "" if m.latency_s is None else f"{m.latency_s:.3f}", m.latency_source, duration_text(m.seconds_max),
            "unknown" if m.cost_usd_max is None else f"{m.cost_usd_max:.4f}", m.cost_source,
        )
    console.print(table)
    if plan.power:
        table = Table(title=f"power at a {plan.effect * 100:+.0f}-point difference", caption=f"exact McNemar, baseline {plan.baseline:g}, alpha {plan.alpha:g} over the comparisons corrected together (Bonferroni, Holm's first step)")
        for column in ("model", "task", "n", "comparisons", "power", "n for 80%"):
            table.add_column(column, justify="left" if column in ("model", "task") else "right")
        shown: set[tuple[str, str]] = set()
        for r in plan.power:  # every condition of a model and task has the same n and family
            if (r.model, r.task) not in shown:
                shown.add((r.model, r.task))
                table.add_row(r.model, r.task, str(r.n), str(r.comparisons), f"{r.power:.3f}", "" if r.n_for_80 is None else str(r.n_for_80))
        console.print(table)
    console.print(plan.summary(), highlight=False)


def _print_condition_table(summary: Any, rows: list[Any], control: str, policy: Any, costs: dict[Any, Any], flagged: set[tuple[str, str]], extractor: str | None) -> None:
    from ..api import loop_columns
    from ..stats.format_check import FORMAT_MARK

    tests = ", ".join(sorted({r.test for r in rows if r.test})) or "none"
    gold_note = "; GOLD: the condition's loop read gold labels (oracle verifier), an upper bound" if any(c.consumes_gold for c in costs.values()) else ""
    format_note = f"; {FORMAT_MARK}: the effect may be one of answer format (format diagnostic below)" if flagged else ""
    title = f"run {summary.run_id}" + (f" · extractor {extractor}" if extractor else "")
    table = Table(title=title, caption=f"{policy.note()}; p vs {control}: {tests}{gold_note}{format_note}")
    for column in ("model", "condition", "n", "errors", "no answer", "accuracy", f"Δ vs {control}", "p", "rounds", "tokens"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for r in rows:
        loop = loop_columns(costs.get((r.model, r.condition)))
        mark = (" GOLD" if loop["consumes_gold"] else "") + (f" {FORMAT_MARK}" if (r.model, r.condition) in flagged else "")
        table.add_row(
            r.model, r.condition + mark, str(r.n), str(r.errors), str(r.no_answer), f"{r.accuracy:.3f}",
            "" if r.delta is None else f"{r.delta:+.3f}", "" if r.p_value is None else f"{r.p_value:.4f}",
            "" if loop["mean_rounds"] is None else f"{loop['mean_rounds']:.2f}", "" if loop["mean_tokens"] is None else f"{loop['mean_tokens']:.0f}",
        )
    _wide_console().print(table)
    out.print(
        f"trials {summary.trials_done}/{summary.trials_planned}, errors {summary.errors}, no answer {summary.no_answer}, "
        f"model calls {summary.model_calls}, cache hits {summary.cache_hits}; log: {summary.db_path}",
        highlight=False,
    )


def _print_round_table(points: list[Any]) -> None:
    table = Table(
        title="per round",
        caption="accuracy of the answer held after round t; pass@t: a correct answer in rounds 0..t; tokens: mean per trial through t; "
        "final (strategy): the trial's final answer as its strategy settled it, tokens of all its calls",
    )
    for column in ("model", "condition", "t", "n", "accuracy", "pass@t", "tokens"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for p in points:
        name = p.condition + (" GOLD" if p.consumes_gold else "")
        step = str(p.round) if p.step == "round" else f"final ({p.strategy or '?'})"
        table.add_row(p.model, name, step, str(p.n), f"{p.accuracy:.3f}", f"{p.pass_at:.3f}", f"{p.mean_tokens:.0f}")
    out.print(table)


def _print_task_table(rows: list[dict[str, Any]]) -> None:
    gold = "; GOLD: read gold labels (oracle verifier), an upper bound" if any(r["consumes_gold"] for r in rows) else ""
    table = Table(title="per task", caption=f"normalized: BIG-bench's preferred score, 0 at chance, 100 at the maximum{gold}")
    for column in ("model", "condition", "task", "n", "errors", "no answer", "score", "normalized"):
        table.add_column(column, justify="left" if column in ("model", "condition", "task") else "right")
    for r in rows:
        normalized = "" if r["normalized"] is None else f"{r['normalized']:.1f}"
        name = r["condition"] + (" GOLD" if r["consumes_gold"] else "")
        table.add_row(r["model"], name, r["task"], str(r["n"]), str(r["errors"]), str(r["no_answer"]), f"{r['score'] or 0.0:.3f}", normalized)
    _wide_console().print(table)


def _print_report(name: str, rows: list[dict[str, Any]], console: Console | None = None) -> None:
    from ..reports import REPORTS

    columns = REPORTS.get(name).columns
    table = Table(title=name)
    for column in columns:
        table.add_column(column, justify="left" if isinstance(rows[0][column], str) else "right")
    for row in rows:
        table.add_row(*("" if row[c] is None else f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    (console or _wide_console()).print(table)


@runs_app.command("list")
def runs_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """List the runs in a log with their progress."""
    from .. import api

    listing = api.list_runs(db)
    if as_json:
        out.print_json(json.dumps(listing.to_json()))
        return
    rows = listing.runs
    table = Table(title=str(db))
    for column in ("run_id", "name", "created_at", "trials", "errors", "no answer", "status"):
        table.add_column(column, no_wrap=column in ("run_id", "created_at"))
    for r in rows:
        table.add_row(r["run_id"], r["name"], str(r["created_at"])[:19], f"{r['trials_done']}/{r['trials_planned']}", str(r["errors"]), str(r["no_answer"]), r["status"] or "")
    out.print(table)


RunOption = Annotated[Optional[str], typer.Option("--run", help="Run id (default: the latest run in the log).")]
AdjustOption = Annotated[str, typer.Option("--adjust", help="Multiple-comparison correction: holm, bh, bonferroni or none.")]
FamilyOption = Annotated[str, typer.Option("--family", help="Comparisons corrected together: model (conditions vs control per model and task), model-tasks or run.")]
TestOption = Annotated[str, typer.Option("--test", help="auto (exact McNemar for one 0/1 outcome per example, else paired t on per-example means), mcnemar, midp, mcnemar_chi2, t, wilcoxon or permutation.")]
ConditionsOption = Annotated[Optional[str], typer.Option("--conditions", help="Comma-separated conditions to compare with the control (the family; default all).")]
ControlOption = Annotated[Optional[str], typer.Option("--control", help="The condition to compare with (default: the study's control).")]
ErrorsOption = Annotated[Optional[str], typer.Option("--errors", help="Override the study's choice: wrong or exclude.")]
LevelOption = Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")]
NoAnswerOption = Annotated[Optional[str], typer.Option("--no-answer", help="Override the study's choice for trials with no answer: wrong or exclude.")]
ExtractorOption = Annotated[Optional[str], typer.Option("--extractor", help="Use this extractor's scores (default: the run's own; see `workbench rescore`).")]


def _compare_options(adjust: str, family: str, test: str, conditions: str | None, control: str | None, errors: str | None, level: float,
                     no_answer: str | None, extractor: str | None) -> dict[str, Any]:
    return {"adjust": adjust, "family": family, "test": test, "conditions": conditions, "control": control, "errors": errors, "level": level,
            "no_answer": no_answer, "extractor": extractor}


def _warn(message: str) -> None:
    err.print(message, highlight=False)


@app.command()
def compare(
    db: DbOption = DEFAULT_DB,
    run: RunOption = None,
    as_json: JsonOption = False,
    adjust: AdjustOption = "holm",
    family: FamilyOption = "model",
    test: TestOption = "auto",
    conditions: ConditionsOption = None,
    control: ControlOption = None,
    errors: ErrorsOption = None,
    level: LevelOption = 0.95,
    no_answer: NoAnswerOption = None,
    extractor: ExtractorOption = None,
) -> None:
    """The comparison table of a run: each condition against the control, per task and across tasks."""
    from .. import api

    compared = api.compare(db, run, log=_warn, **_compare_options(adjust, family, test, conditions, control, errors, level, no_answer, extractor))
    if as_json:
        out.print_json(json.dumps(compared.to_json()))
        return
    _print_comparison(compared)


def _print_comparison(compared: Any) -> None:
    from ..export import COLUMNS, OMNIBUS_COLUMNS, POOLED_COLUMNS, notes, omnibus_cells, pooled_cells, row_cells, with_relative_header
    from ..stats.format_check import FORMAT_MARK

    result = compared.table
    # The terminal gets the main columns (the model in the title when there is one); --json and
    # export carry every effect size. Piped output is not squeezed into 80 columns.
    models = sorted({r.model for r in result.rows})
    shown = {"task", "condition", "n", "errors", "no_answer", "accuracy", "delta", "relative", "p", "p_adjusted"} | ({"model"} if len(models) > 1 else set())
    title = f"run {compared.run_id}" + (f" · {models[0]}" if len(models) == 1 else "") + (f" · extractor {result.extractor}" if result.extractor else "") + _partial_label(result)
    console = _wide_console()
    _print_cells(console, title, [c for c in with_relative_header(COLUMNS, result.rows) if c[0] in shown], [row_cells(r) for r in result.rows])
    across = {"condition", "tasks", "pooled", "i2", "p_adjusted", "relative", "gee"} | ({"model"} if len(models) > 1 else set())
    if result.pooled:
        columns = [c for c in with_relative_header(POOLED_COLUMNS, result.pooled) if c[0] in across]
        _print_cells(console, "across tasks" + _partial_label(result), columns, [pooled_cells(r) for r in result.pooled])
    if result.omnibus:
        _print_cells(console, "all conditions at once", [c for c in OMNIBUS_COLUMNS if c[0] != "model" or len(models) > 1], [omnibus_cells(r) for r in result.omnibus])
    if result.format:
        _print_format_table(console, result.format, f"format diagnostic ({FORMAT_MARK}: the effect may be one of answer format)")
    for line in notes(result, shown | (across if result.pooled else set())):
        console.print(line, highlight=False)
    _print_cost_table(list(compared.costs))
    if compared.rounds:
        _print_round_table(list(compared.rounds))
    for name, report in compared.reports.items():
        _print_report(name, report, console)


def _partial_label(result: Any) -> str:
    return f" · PARTIAL RUN ({result.trials_done} of {result.trials_planned} trials)" if result.partial else ""


def _print_format_table(console: Console, rows: list[Any], title: str = "format diagnostic") -> None:
    from ..export import FORMAT_COLUMNS, format_cells

    shown = [c for c in FORMAT_COLUMNS if c[0] != "model" or len({r.model for r in rows}) > 1]
    _print_cells(console, title, shown, [format_cells(r) for r in rows])


def _print_cost_table(costs: list[Any]) -> None:
    table = Table(title="gain against cost", caption="per trial: feedback rounds used, model calls, prompt + completion tokens; GOLD: read gold labels (oracle)")
    for column in ("model", "condition", "n", "no answer", "accuracy", "rounds", "calls", "tokens", "tokens/correct"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for c in costs:
        table.add_row(
            c.model, c.condition + (" GOLD" if c.consumes_gold else ""), str(c.n), str(c.no_answer), f"{c.accuracy:.3f}",
            "" if c.mean_rounds is None else f"{c.mean_rounds:.2f}", f"{c.mean_calls:.2f}", f"{c.mean_tokens:.0f}",
            "" if c.tokens_per_correct is None else f"{c.tokens_per_correct:.0f}",
        )
    _wide_console().print(table)


def _print_cells(console: Console, title: str, columns: list[tuple[str, str]], rows: list[dict[str, str]]) -> None:
    table = Table(title=title)
    for key, label in columns:
        table.add_column(label, justify="left" if key in ("model", "task", "condition", "delta", "relative", "pooled", "gee") else "right")
    for cells in rows:
        table.add_row(*[cells[key] + (cells["mark"] if key == "p_adjusted" else "") for key, _ in columns])
    console.print(table, highlight=False)


@app.command()
def export(
    db: DbOption = DEFAULT_DB,
    run: RunOption = None,
    layout: Annotated[str, typer.Option("--layout", help="full (every statistic) or paper (tasks x conditions, as the source papers print it).")] = "full",
    format: Annotated[Optional[str], typer.Option("--format", help="latex, markdown, csv, parquet, trials.csv or trials.parquet (default: from the --out name).")] = None,
    out_file: Annotated[Optional[str], typer.Option("--out", help="The file to write (its ending gives the format: .tex .md .csv .parquet); - or none: stdout.")] = None,
    trials: Annotated[Optional[str], typer.Option("--trials", help="Also write the per-trial data: FILE.csv or FILE.parquet (- for CSV on stdout).")] = None,
    figures: Annotated[Optional[Path], typer.Option("--figures", help="Directory for the forest plot and heatmap (PDF and PNG).")] = None,
    relative: Annotated[bool, typer.Option("--relative", help="paper layout: add each condition's relative gain over the control.")] = False,
    standalone: Annotated[bool, typer.Option("--standalone", help="LaTeX: a complete document instead of a table to \\input.")] = False,
    no_bib: Annotated[bool, typer.Option("--no-bib", help="Do not write references.bib beside the files.")] = False,
    adjust: AdjustOption = "holm",
    family: FamilyOption = "model",
    test: TestOption = "auto",
    conditions: ConditionsOption = None,
    control: ControlOption = None,
    errors: ErrorsOption = None,
    level: LevelOption = 0.95,
    no_answer: NoAnswerOption = None,
    extractor: ExtractorOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON (run_id, written); needs --out FILE, as stdout carries it.")] = False,
) -> None:
    """Write the comparison table (LaTeX, Markdown, CSV, Parquet; to a file or stdout), the
    per-trial data, figures (PDF and PNG), and a references.bib beside them."""
    from .. import api

    exported = api.export(
        db, run, layout=layout, format=format, out=out_file, trials=trials, figures=figures, relative=relative, standalone=standalone, bib=not no_bib,
        files_only=as_json, log=_warn, **_compare_options(adjust, family, test, conditions, control, errors, level, no_answer, extractor),
    )
    if as_json:
        out.print_json(json.dumps(exported.to_json()))
        return
    if exported.to_stdout:
        sys.stdout.write(exported.stdout)
        sys.stdout.flush()
    listing = err if exported.to_stdout else out  # stdout carries the table itself
    for path in exported.written:
        listing.print(str(path), highlight=False)


@app.command()
def ratings(
    db: DbOption = DEFAULT_DB,
    run: RunOption = None,
    adjust: AdjustOption = "holm",
    family: FamilyOption = "model",
    test: TestOption = "auto",
    level: LevelOption = 0.95,
    as_json: JsonOption = False,
) -> None:
    """Ratings of a run's outputs (its study's `rating` block; the UI's Rate page): agreement between
    raters (Krippendorff's alpha) and each condition against the control, per scale."""
    from .. import api

    analysis = api.rating_analysis(db, run, adjust=adjust, family=family, test=test, level=level)
    if as_json:
        out.print_json(json.dumps(analysis.to_json()))
        return
    out.print(f"run {analysis.run_id}: {analysis.ratings} ratings by {len(analysis.raters)} rater(s)", highlight=False)
    agreement = Table(title="agreement (Krippendorff's alpha)")
    for column in ("scale", "alpha", "level", "raters", "outputs rated twice+", "note"):
        agreement.add_column(column)
    for a in analysis.agreement:
        agreement.add_row(a.scale, "" if a.alpha is None else f"{a.alpha:.3f}", a.level, str(a.raters), str(a.units), a.note or "")
    out.print(agreement)
    for scale, table in analysis.tables.items():
        rows = Table(title=f"{scale}: mean rating against {table.control}")
        for column in ("model", "task", "condition", "examples", "mean", "difference", "interval", "p", "p adjusted", "test"):
            rows.add_column(column, justify="left" if column in ("model", "task", "condition", "test") else "right")
        for r in table.rows:
            interval = "" if r.ci_low is None else f"{r.ci_low:.2f} to {r.ci_high:.2f}"
            rows.add_row(r.model, r.task, r.condition, str(r.examples), _number(r.accuracy), _number(r.delta), interval, _number(r.p_value), _number(r.p_adjusted), r.test or "")
        _wide_console().print(rows)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


@app.command()
def rescore(
    run: Annotated[str, typer.Argument(help="The run id (see `workbench runs list`).")],
    extractor: Annotated[str, typer.Option("--extractor", help="The answer extractor to score the stored responses with, e.g. strict or flexible.")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Score a logged run again with another extractor, from its stored responses (no model call)."""
    from ..reports.rescore import rescore as rescore_run

    summary = rescore_run(db, run, extractor)
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
        return
    out.print(
        f"run {summary.run_id}, extractor {summary.extractor}: {summary.scored} trials scored now ({summary.no_answer} with no answer, "
        f"{summary.errors} errors), {summary.already} already scored, {summary.not_extracted} graded without an extractor; "
        f"model calls 0. Read them with `workbench compare --run {summary.run_id} --extractor {summary.extractor}`.",
        highlight=False,
    )


@app.command()
def trials(
    run: Annotated[Optional[str], typer.Argument(help="The run id (default: the latest run in the log).")] = None,
    db: DbOption = DEFAULT_DB,
    condition: Annotated[Optional[str], typer.Option("--condition", help="Only this condition (with --changed: paired with the control).")] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="Only this task.")] = None,
    changed: Annotated[bool, typer.Option("--changed", help="The pairs whose outcome differs from the control's, side by side (the discordant pairs).")] = False,
    score: Annotated[Optional[int], typer.Option("--score", min=0, max=1, help="1: correct outcomes only; 0: the others (wrong, no answer, errors).")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="Only this status: ok, no_answer or error.")] = None,
    extractor: ExtractorOption = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many trials (or pairs).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show trials: the prompt, the response, the extracted answer, the gold and the score."""
    from .. import api

    found = api.list_trials(db, run, condition=condition, task=task, changed=changed, score=score, status=status, extractor=extractor, limit=limit)
    if as_json:
        out.print_json(json.dumps(found.to_json()))
        return
    _print_trials(found.listing)


def _print_trials(listing: Any) -> None:
    """Each trial, or each discordant pair side by side; all model and user text escaped."""
    fields = (("prompt", lambda v: v.prompt), ("response", lambda v: v.response), ("answer", lambda v: v.answer),
              ("gold", lambda v: " | ".join(v.gold)), ("score", lambda v: f"{'' if v.score is None else f'{v.score:g}'} ({v.status})"),
              ("rule", lambda v: v.rule or ""))
    views = [(t,) for t in listing.trials] if not listing.changed else listing.pairs
    for group in views:
        head = group[-1]
        table = Table(title=Text(visible(f"{head.task} · {head.item_id} · repeat {head.repeat} · {head.model}")), show_lines=True)
        table.add_column("")
        for view in group:
            table.add_column(Text(visible(view.condition + (" (control)" if view.condition == listing.control else ""))), overflow="fold")
        for name, get in fields:
            table.add_row(name, *[Text(visible(get(view))) for view in group])
        out.print(table)
    shown = len(listing.pairs) if listing.changed else len(listing.trials)
    what = "pairs whose outcome differs from the control's" if listing.changed else "trials"
    out.print(f"{shown} {what}; run {listing.run_id}, extractor {listing.extractor or 'none (judge-graded)'}", highlight=False)


@app.command()
def power(
    baseline: Annotated[float, typer.Option("--baseline", help="The control's expected accuracy.")],
    delta: Annotated[float, typer.Option("--delta", help="The expected difference, condition minus control (e.g. 0.05).")],
    n: Annotated[Optional[int], typer.Option("--n", help="Paired examples: give the power at this n (default: plan the n).")] = None,
    target: Annotated[float, typer.Option("--power", help="The power to plan for.")] = 0.8,
    discordance: Annotated[Optional[float], typer.Option("--discordance", help="Share of examples the two conditions disagree on (default: as if independent).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Family-wise significance level.")] = 0.05,
    comparisons: Annotated[int, typer.Option("--comparisons", help="Conditions compared with the control (Bonferroni/Holm alpha).")] = 1,
    test: Annotated[str, typer.Option("--test", help="exact (McNemar), midp or normal (Connor's approximation).")] = "exact",
    simulate: Annotated[int, typer.Option("--simulate", help="Also measure the power on this many simulated studies (0: no).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Plan a study: the examples needed to detect a difference, or the power at a given n."""
    from ..reports.power import simulated_power
    from ..stats import power_paired_binary

    try:
        plan = power_paired_binary(baseline, delta, n, power=target, discordance=discordance, alpha=alpha, comparisons=comparisons, test=test)
    except ValueError as exc:
        parameter, _, message = str(exc).partition(": ")
        options = {"p_control": "--baseline", "delta": "--delta", "discordance": "--discordance", "alpha": "--alpha",
                   "comparisons": "--comparisons", "test": "--test", "power": "--power", "n": "--n"}
        _fail(f"{options.get(parameter, parameter)}: {message}")
    result: dict[str, Any] = plan.to_dict()
    if simulate > 0:
        import os

        result["simulated"] = simulated_power(
            baseline, delta, plan.n, discordance=discordance, alpha=alpha, comparisons=comparisons, test=test, studies=simulate, workers=os.cpu_count() or 1
        )
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(
        f"{plan.n} paired examples give power {plan.power:.3f} ({plan.test} test at alpha {plan.alpha_per_comparison:.4g} per comparison, "
        f"{plan.comparisons} comparison(s); baseline {plan.p_control:g}, difference {plan.delta:+g}, discordance {plan.discordance:.3f})",
        highlight=False,
    )
    if "simulated" in result:
        sim = result["simulated"]
        out.print(f"simulated model: detected in {sim['power']:.3f} ± {sim['se']:.3f} of {sim['studies']} studies", highlight=False)


@models_app.command("check")
def models_check(
    model: Annotated[str, typer.Argument(help="A model id: local/default, sim/<name> or any litellm model string.")] = "local/default",
    prompt: Annotated[str, typer.Option(help="The prompt to send.")] = "What is 2 + 3? Answer with a number.",
    api_base: Annotated[Optional[str], typer.Option("--api-base", help="The server to send it to, e.g. http://127.0.0.1:8000/v1 for your own OpenAI-compatible server (model openai/<name>); as a study's `api_base`.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Answer one prompt with MODEL and print the answer and latency."""
    from .. import api

    result = api.check_model(model, prompt, api_base=api_base, log=lambda m: err.print(m, highlight=False)).to_json()
    if as_json:
        out.print_json(json.dumps(result))
    elif result["ok"]:
        out.print(f"{model}: {result['answer']!r} in {result['latency_s']:.2f} s", highlight=False)
    else:
        out.print(f"{model}: failed after {result['latency_s']:.2f} s: {result['error']}", highlight=False)
    if not result["ok"]:
        raise typer.Exit(1)


@tasks_app.command("list")
def tasks_list(
    suite: Annotated[Optional[str], typer.Option("--suite", help="Only this suite (ii, bbh, math, custom, ...).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the built-in tasks with their metric and how many examples they can give."""
    from ..tasks.catalog import task_rows

    rows = task_rows(suite)
    if suite is not None and not rows:
        from ..tasks import builtin_suites

        _fail(f"unknown suite {suite!r} (suites: {', '.join(sorted(builtin_suites()))})")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="tasks", caption="n_available 0: the task reads the data file a study names with `path`; --json shows variants and scorer profiles")
    for column in ("id", "metric", "n_available", "data"):
        table.add_column(column, justify="right" if column == "n_available" else "left", no_wrap=column == "id")
    for r in rows:
        scored = r["metric"] if r["scoring"] == "metric" else f"{r['scoring']} ({', '.join(map(str, r['scoring_args'].values()))})"
        table.add_row(r["id"], scored, str(r["n_available"]), r["data"])
    out.print(table)


@tasks_app.command("sample")
def tasks_sample(
    task: Annotated[str, typer.Argument(help="A task id, e.g. ii/sum or bbh/snarks.")],
    n: Annotated[int, typer.Option("-n", min=1, help="How many examples.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="The study seed.")] = 0,
    shots: Annotated[int, typer.Option("--shots", min=0, help="Few-shot demos per example.")] = 0,
    path: Annotated[Optional[str], typer.Option("--path", help="Data file or directory, for tasks that read one.")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Instruction variant, e.g. ape.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the examples (and prompts) a study with this seed would run."""
    from ..tasks.catalog import sample_rows

    result = sample_rows(task, n, seed, shots=shots, path=path, variant=variant)
    if as_json:
        out.print_json(json.dumps(result))
        return
    for row in result["items"]:
        out.rule(f"{result['task']} #{row['id']}")
        out.print(row["messages"][-1]["content"], highlight=False)
        out.print(Text.assemble(("targets:", "bold"), f" {' | '.join(row['targets'])}"), highlight=False)


@tasks_app.command("cite")
def tasks_cite(target: Annotated[str, typer.Argument(metavar="TASK|SUITE", help="A task id (e.g. ii/sum) or a suite (e.g. bbh).")]) -> None:
    """Print BibTeX for a task, or for every task of a suite."""
    from ..export.bibliography import bibliography, of_task
    from ..tasks import builtin_suites, builtin_tasks

    suites, tasks = builtin_suites(), builtin_tasks()
    specs = list(suites[target][1].values()) if target in suites else [tasks[target]] if target in tasks else []
    if not specs:
        raise UserError(f"no task or suite {target!r} (suites: {', '.join(sorted(suites))}; `workbench tasks list` shows every task)", field="TASK")
    sys.stdout.write(bibliography([of_task(s) for s in specs], f"BibTeX for {target}.", workbench=False))


@tasks_app.command("check")
def tasks_check(
    task: Annotated[str, typer.Argument(help="A task id, e.g. ii/sentiment or bbh/object_counting.")],
    path: Annotated[Optional[str], typer.Option("--path", help="Data file or directory, for tasks that read one.")] = None,
    n: Annotated[Optional[int], typer.Option("-n", min=1, help="Check only the first N items (default: all).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="The seed the items are drawn with.")] = 0,
    extractor: Annotated[str, typer.Option("--extractor", help="The extractor the reworded answers are read with.")] = "flexible",
    as_json: JsonOption = False,
) -> None:
    """Check the scorer: gold answers, reworded gold answers score 1; wrong and hedged answers score 0."""
    from ..tasks.check import check

    result = check(task, path=path, n=n, seed=seed, extractor=extractor)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        summary = f"{result.task} ({result.answer_type}, extractor {result.extractor}): {result.checks} checks on {result.items} items, {len(result.failures)} failed"
        out.print(summary, highlight=False, soft_wrap=True)
        for f in result.failures:  # one block each: responses are long and span lines, so repr() shows them whole
            got = "no answer" if f.score is None else f"{f.score:g} (answer {f.answer!r})"
            out.print(f"failed: item {f.item_id}, {f.case}: expected {f.expected:g}, got {got} [rule: {f.rule}]\n  response: {f.text!r}", highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@log_app.command("check")
def log_check(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Read every file of the log whole; list the damaged ones (exit 1 if any)."""
    from .. import api

    result = api.check_log(db)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
    else:
        for damage in result.damaged:
            out.print(f"damaged: {damage.path}: {damage.reason}", highlight=False, soft_wrap=True)
        out.print(f"{db}: every file reads" if result.ok else f"{len(result.damaged)} damaged; `workbench log repair --db {db}` sets them aside", highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@log_app.command("repair")
def log_repair(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Set the log's damaged files aside in <log>.quarantine/ (nothing is deleted), keep the rest;
    a damaged DuckDB file is rebuilt from the segments. Run it while no run writes to the log."""
    from .. import api

    result = api.repair_log(db)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    for source, target, reason in result.moved:
        out.print(f"set aside: {source} -> {target} ({reason})", highlight=False, soft_wrap=True)
    if result.rebuilt:
        kept = ", ".join(result.salvaged) or "none"
        lost = ", ".join(result.lost) or "none"
        out.print(
            f"rebuilt {db} from its segments and the tables of the damaged file that still read ({kept}); "
            f"lost: the rows of {lost} that only the damaged file held (it is kept in the quarantine folder)",
            highlight=False, soft_wrap=True,
        )
    if result.moved:
        out.print(f"the log now holds {result.runs} runs and {result.trials} trials; run a study again to redo its missing trials", highlight=False, soft_wrap=True)
    else:
        out.print(f"{db}: nothing damaged, nothing moved", highlight=False, soft_wrap=True)


def main() -> None:
    from ..plugins import load_builtins

    try:
        load_builtins()
        code = app(standalone_mode=False)  # click returns an Exit's code in this mode
        if code == interrupts.INTERRUPTED:  # typer makes an interrupt in a command a silent Exit(130)
            interrupts.exit_interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as exc:
        _print_error(str(exc))
        sys.exit(2)
    except LogFault as exc:  # the disk or the log's files, not the user's input
        _print_error(str(exc))
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # click turns an interrupt into an Abort
        interrupts.exit_interrupted()
    except Exception as exc:  # usage errors carry their own exit code (2); typer vendors its own click, so match the shape
        if hasattr(exc, "exit_code") and hasattr(exc, "format_message"):
            _print_error(exc.format_message())
            sys.exit(exc.exit_code)
        from ..api import log_fault_of

        fault = log_fault_of(exc)
        if fault is None:
            raise
        _print_error(str(fault))
        sys.exit(1)


if __name__ == "__main__":
    main()
