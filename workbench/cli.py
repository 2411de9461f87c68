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
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
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

    from .runner import Runner
    from .stats import condition_table, trial_frame
    from .store import connect_reader
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
    finally:
        con.close()
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
            "conditions": [{"name": r.condition, **{k: v for k, v in r.to_dict().items() if k != "condition"}} for r in rows],
        }
        out.print_json(json.dumps(payload))
    else:
        _print_condition_table(summary, rows, resolved.control_name, resolved.spec.errors)
    if summary.interrupted:
        err.print(f"interrupted: run the same command again to resume {summary.run_id}")
        raise typer.Exit(130)


def _print_condition_table(summary: Any, rows: list[Any], control: str, errors: str) -> None:
    table = Table(title=f"run {summary.run_id}", caption=f"errors count as {'wrong' if errors == 'wrong' else 'excluded'}; p: exact McNemar vs {control}")
    for column in ("model", "condition", "n", "errors", "accuracy", f"Δ vs {control}", "p"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for r in rows:
        table.add_row(
            r.model, r.condition, str(r.n), str(r.errors), f"{r.accuracy:.3f}",
            "" if r.delta is None else f"{r.delta:+.3f}", "" if r.p_value is None else f"{r.p_value:.4f}",
        )
    out.print(table)
    out.print(
        f"trials {summary.trials_done}/{summary.trials_planned}, errors {summary.errors}, "
        f"model calls {summary.model_calls}, cache hits {summary.cache_hits}; log: {summary.db_path}",
        highlight=False,
    )


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
