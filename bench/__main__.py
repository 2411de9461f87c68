"""python -m bench [--quick] [--json] [--only NAME]...: run the benchmarks and print their figures
(a table, or with --json one JSON object). Exit code 0 when every benchmark ran (a target missed
is a figure, not an error), 1 when one failed, 2 on bad flags."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from bench import BENCHMARKS
from bench.harness import run_all


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad flags: one line naming what is wrong, exit code 2 (the README's rule)."""
        message = "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)  # a line break in an argument stays on the line
        print(f"python -m bench: {message} (flags: --quick, --json, --only {{{','.join(BENCHMARKS)}}})", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="every benchmark at a size that runs in a few minutes on 2 cores")
    parser.add_argument("--json", action="store_true", help="print one JSON object: machine, quick, figures")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME", help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    return parser


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _table(report: dict[str, Any]) -> Table:
    box = report["machine"]
    title = f"{box['cpu_count']} x {box['cpu_model']}, {box['memory_gib']} GiB, Python {box['python']}, load {box['load_average']}"
    table = Table(title=f"Benchmarks{' (quick)' if report['quick'] else ''} on {title}", show_lines=True)
    for column in ("figure", "value", "unit", "target", "met", "baseline", "detail"):
        table.add_column(column, overflow="fold")
    marks = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}
    for entry in report["figures"]:
        target = None if entry["target"] is None else f"{'>=' if entry['goal'] == 'at_least' else '<'} {_shown(entry['target'])}"
        table.add_row(entry["name"], _shown(entry["value"]), entry["unit"] or "", target or "-", marks[entry["met"]], _shown(entry["baseline"]), entry["detail"])
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = args.only or BENCHMARKS
    report = run_all(names, args.quick, lambda message: print(message, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(report))
    else:
        Console().print(_table(report))
    return 1 if any(entry.get("failed") for entry in report["figures"]) else 0


if __name__ == "__main__":
    sys.exit(main())
