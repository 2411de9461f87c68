"""The `workbench` command: thin commands over the engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .cli_stimuli import stimuli_app
from .errors import UserError
from .paths import DEFAULT_DB

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Prompt-Affect Workbench: run and analyse stimulus studies.")
runs_app = typer.Typer(no_args_is_help=True, help="Runs in a log.")
models_app = typer.Typer(no_args_is_help=True, help="Model adapters.")
tasks_app = typer.Typer(no_args_is_help=True, help="Task suites: list tasks, sample examples.")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(tasks_app, name="tasks")
app.add_typer(stimuli_app, name="stimuli")

out = Console()
err = Console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="DuckDB log file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="Study file (YAML).")],
    db: DbOption = DEFAULT_DB,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new run instead of resuming this study's run.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the models even for requests already in the log.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run a study (or resume it), log every call, print the per-condition table."""
    from .study import load_study

    resolved = load_study(study)  # validate before the heavy imports, so bad input fails fast

    from .rounds import by_condition, condition_costs, round_curve
    from .runner import Runner
    from .stats import condition_table, trial_frame
    from .store import connect_reader
    from .task_scores import task_scores
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, transient=as_json, disable=not err.is_terminal and as_json,
    ) as bar:
        task_id = bar.add_task(resolved.spec.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task_id, completed=done, total=total)

        runner = Runner(resolved, db, fresh=fresh, use_cache=not no_cache, log=lambda m: err.print(m, highlight=False), progress=progress)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result (--json)
            summary = asyncio.run(runner.run())
    con = connect_reader(db)
    try:
        rows = condition_table(
            trial_frame(con, summary.run_id), resolved.control_name, resolved.spec.errors, order=list(resolved.conditions)
        )
        per_task = task_scores(con, summary.run_id, resolved.spec.errors)
        costs = by_condition(condition_costs(con, summary.run_id, resolved.spec.errors))
        curve = round_curve(con, summary.run_id, resolved.spec.errors)
    finally:
        con.close()
    loops = {c.condition for c in costs.values() if c.mean_rounds is not None}
    if as_json:
        payload: dict[str, Any] = {
            "run_id": summary.run_id,
            "db": str(db),
            "trials_planned": summary.trials_planned,
            "trials_done": summary.trials_done,
            "errors": summary.errors,
            "model_calls": summary.model_calls,
            "cache_hits": summary.cache_hits,
            "interrupted": summary.interrupted,
            "conditions": [
                {"name": r.condition, **{k: v for k, v in r.to_dict().items() if k != "condition"}, **_loop_columns(costs.get((r.model, r.condition)))}
                for r in rows
            ],
            "tasks": per_task,
            "rounds": [p.to_dict() for p in curve if p.condition in loops],
        }
        out.print_json(json.dumps(payload))
    else:
        _print_condition_table(summary, rows, resolved.control_name, resolved.spec.errors, costs)
        if len(resolved.tasks) > 1:
            _print_task_table(per_task)
        if loops:
            _print_round_table([p for p in curve if p.condition in loops])
    if summary.interrupted:
        err.print(f"interrupted: run the same command again to resume {summary.run_id}")
        raise typer.Exit(130)


def _loop_columns(cost: Any) -> dict[str, Any]:
    """What the rounds analysis adds to a condition's row: rounds used (None without a loop), and
    whether it consumed gold labels (an oracle verifier)."""
    if cost is None:
        return {"mean_rounds": None, "consumes_gold": False, "mean_tokens": None}
    return {"mean_rounds": cost.mean_rounds, "consumes_gold": cost.consumes_gold, "mean_tokens": cost.mean_tokens}


def _print_condition_table(summary: Any, rows: list[Any], control: str, errors: str, costs: dict[Any, Any]) -> None:
    gold_note = "; GOLD: the condition's loop read gold labels (oracle verifier), an upper bound" if any(c.consumes_gold for c in costs.values()) else ""
    table = Table(title=f"run {summary.run_id}", caption=f"errors count as {'wrong' if errors == 'wrong' else 'excluded'}; p: exact McNemar vs {control}{gold_note}")
    for column in ("model", "condition", "n", "errors", "accuracy", f"Δ vs {control}", "p", "rounds", "tokens"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for r in rows:
        loop = _loop_columns(costs.get((r.model, r.condition)))
        table.add_row(
            r.model, r.condition + (" GOLD" if loop["consumes_gold"] else ""), str(r.n), str(r.errors), f"{r.accuracy:.3f}",
            "" if r.delta is None else f"{r.delta:+.3f}", "" if r.p_value is None else f"{r.p_value:.4f}",
            "" if loop["mean_rounds"] is None else f"{loop['mean_rounds']:.2f}", "" if loop["mean_tokens"] is None else f"{loop['mean_tokens']:.0f}",
        )
    out.print(table)
    out.print(
        f"trials {summary.trials_done}/{summary.trials_planned}, errors {summary.errors}, "
        f"model calls {summary.model_calls}, cache hits {summary.cache_hits}; log: {summary.db_path}",
        highlight=False,
    )


def _print_round_table(points: list[Any]) -> None:
    table = Table(title="per round", caption="accuracy of the answer held after round t; pass@t: a correct answer in rounds 0..t; tokens: mean per trial through t")
    for column in ("model", "condition", "t", "n", "accuracy", "pass@t", "tokens"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for p in points:
        name = p.condition + (" GOLD" if p.consumes_gold else "")
        table.add_row(p.model, name, str(p.round), str(p.n), f"{p.accuracy:.3f}", f"{p.pass_at:.3f}", f"{p.mean_tokens:.0f}")
    out.print(table)


def _print_task_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="per task", caption="normalized: BIG-bench's preferred score, 0 at chance, 100 at the maximum")
    for column in ("model", "condition", "task", "n", "errors", "score", "normalized"):
        table.add_column(column, justify="left" if column in ("model", "condition", "task") else "right")
    for r in rows:
        normalized = "" if r["normalized"] is None else f"{r['normalized']:.1f}"
        table.add_row(r["model"], r["condition"], r["task"], str(r["n"]), str(r["errors"]), f"{r['score'] or 0.0:.3f}", normalized)
    out.print(table)


@runs_app.command("list")
def runs_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """List the runs in a log with their progress."""
    from .store import query

    if not db.exists() and not Path(str(db) + ".segments").exists():
        _fail(f"{db}: no log here (run a study first, or pass --db)")
    rows = query(
        db,
        "SELECT r.run_id, r.name, r.created_at, r.trials_planned, "
        "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id) AS trials_done, "
        "(SELECT count(*) FROM trials t WHERE t.run_id = r.run_id AND t.status = 'error') AS errors, "
        "(SELECT e.event FROM run_events e WHERE e.run_id = r.run_id ORDER BY e.event_at DESC LIMIT 1) AS status "
        "FROM runs r ORDER BY r.created_at",
    )
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=str(db))
    for column in ("run_id", "name", "created_at", "trials", "errors", "status"):
        table.add_column(column, no_wrap=column in ("run_id", "created_at"))
    for r in rows:
        table.add_row(r["run_id"], r["name"], str(r["created_at"])[:19], f"{r['trials_done']}/{r['trials_planned']}", str(r["errors"]), r["status"] or "")
    out.print(table)


@models_app.command("check")
def models_check(
    model: Annotated[str, typer.Argument(help="A model id: local/default, sim/<name> or any litellm model string.")] = "local/default",
    prompt: Annotated[str, typer.Option(help="The prompt to send.")] = "What is 2 + 3? Answer with a number.",
    as_json: JsonOption = False,
) -> None:
    """Answer one prompt with MODEL and print the answer and latency."""
    import time

    from .messages import Message, to_dicts
    from .providers import ModelRequest, TrialContext, complete_with_retries, open_pool
    from .study import ModelSpec

    spec = ModelSpec(id=model, params={"temperature": 0.0, "max_tokens": 32})

    async def check() -> dict[str, Any]:
        pool = await asyncio.to_thread(open_pool, [spec], lambda m: err.print(m, highlight=False))
        try:
            messages = (Message.text("system", "You are a helpful assistant."), Message.text("user", prompt))
            request = ModelRequest.build(spec.id, to_dicts(messages), spec.params, 0, "check")
            started = time.perf_counter()
            outcome = await complete_with_retries(pool.get(spec.id), request, TrialContext("check", ("5",), 0), max_retries=1, timeout_s=spec.timeout_s)
            return {
                "model": model,
                "ok": outcome.error is None,
                "answer": outcome.response.text if outcome.response else None,
                "error": str(outcome.error) if outcome.error else None,
                "latency_s": round(time.perf_counter() - started, 3),
            }
        finally:
            await pool.close()

    result = asyncio.run(check())
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
    from .tasks.catalog import task_rows

    rows = task_rows(suite)
    if suite is not None and not rows:
        from .tasks import builtin_suites

        _fail(f"unknown suite {suite!r} (suites: {', '.join(sorted(builtin_suites()))})")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="tasks", caption="n_available 0: the task reads the data file a study names with `path`; --json shows variants and scorer profiles")
    for column in ("id", "metric", "n_available", "data"):
        table.add_column(column, justify="right" if column == "n_available" else "left", no_wrap=column == "id")
    for r in rows:
        table.add_row(r["id"], r["metric"], str(r["n_available"]), r["data"])
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
    from .tasks.catalog import sample_rows

    result = sample_rows(task, n, seed, shots=shots, path=path, variant=variant)
    if as_json:
        out.print_json(json.dumps(result))
        return
    for row in result["items"]:
        out.rule(f"{result['task']} #{row['id']}")
        out.print(row["messages"][-1]["content"], highlight=False, markup=False)
        out.print(f"[bold]targets:[/] {' | '.join(row['targets'])}", highlight=False)


def main() -> None:
    try:
        code = app(standalone_mode=False)  # click returns an Exit's code in this mode
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors carry their own exit code (2); typer vendors its own click, so match the shape
        if hasattr(exc, "exit_code") and hasattr(exc, "format_message"):
            err.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
