"""`workbench stimuli list | show | render`: browse the stimulus library and see exactly what a
stimulus sends. Thin: the work is in workbench.stimuli.catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.table import Table

from ..core.errors import UserError
from ..core.input_files import parse_yaml
from .terminal import stdout_console

stimuli_app = typer.Typer(no_args_is_help=True, help="The stimulus library: list, show, render.")
out = stdout_console()  # stimulus texts are printed as written

FileOption = Annotated[Optional[list[Path]], typer.Option("--file", help="A user stimulus file (same schema); repeatable.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _library(files: list[Path] | None, stimulus_id: str | None = None) -> Any:
    from ..stimuli import builtin_library

    library = builtin_library()
    library = library.with_files(files) if files else library
    if stimulus_id is not None:
        try:
            library.get(stimulus_id)
        except UserError as exc:
            raise UserError(f"{exc.detail} (see `workbench stimuli list`)", field="ID") from None
    return library


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


@stimuli_app.command("list")
def list_stimuli(
    family: Annotated[Optional[str], typer.Option("--family", help="Only this family.")] = None,
    files: FileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stimuli with their family, text (where one), and citation or authored label."""
    from ..stimuli.catalog import summary

    library = _library(files)
    if family is not None:
        try:
            library.family(family)
        except UserError as exc:
            raise UserError(exc.detail, field="--family") from None
    rows = [summary(item) for item in library.items(family)]
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} stimuli")
    for column in ("id", "family", "placement", "text", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        text = row["text"] if row["text"] is not None else f"(rendered from {', '.join(row['params']) or 'its data'})"
        source = row.get("authored_by") or "cited"
        table.add_row(row["id"], row["family"], row["placement"], text, source)
    out.print(table, highlight=False)


@stimuli_app.command("show")
def show(
    stimulus_id: Annotated[str, typer.Argument(metavar="ID", help="A stimulus id, e.g. EP02 or SAC/warmth.")],
    files: FileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Everything about one stimulus: texts, variants, citation, parameters, data."""
    from ..stimuli.catalog import detail

    library = _library(files, stimulus_id)
    payload = detail(library.get(stimulus_id), library)
    if as_json:
        _print_json(payload)
    else:
        print(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=100), end="")


@stimuli_app.command("cite")
def cite(
    target: Annotated[str, typer.Argument(metavar="ID|FAMILY", help="A stimulus id (e.g. EP02) or a family (e.g. emotionprompt).")],
    files: FileOption = None,
) -> None:
    """Print BibTeX for a stimulus family (or the family of a stimulus id)."""
    from ..export.bibliography import bibliography, of_family

    library = _library(files)
    if target in library.families():
        family = library.family(target)
    elif target in library:
        family = library.family(library.get(target).family)
    else:
        raise UserError(f"no stimulus or family {target!r} (families: {', '.join(library.families())}; `workbench stimuli list` shows every id)", field="ID")
    print(bibliography([of_family(family)], f"BibTeX for the stimulus family {family.name}.", workbench=False), end="")


def _params(pairs: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {pair!r}", field="--param")
        params[key] = parse_yaml(value, f"--param {key}")
    return params


@stimuli_app.command("render")
def render(
    stimulus_id: Annotated[str, typer.Argument(metavar="ID", help="A stimulus id.")],
    prompt: Annotated[str, typer.Option("--prompt", help="The user prompt to apply it to.")],
    placement: Annotated[Optional[str], typer.Option("--placement", help="Where it goes (default: the stimulus's own).")] = None,
    separator: Annotated[Optional[str], typer.Option("--separator", help="none, space or newline.")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="A text variant, e.g. promptbench or compound.")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="A parameter as KEY=VALUE, e.g. level=5; repeatable.")] = None,
    system: Annotated[Optional[str], typer.Option("--system", help="The system message of the prompt (default: a helpful-assistant line).")] = None,
    answer: Annotated[Optional[str], typer.Option("--answer", help="The previous answer (feedback placement).")] = None,
    files: FileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the exact messages the stimulus produces on a prompt (every call for a program)."""
    from ..stimuli.catalog import DEFAULT_SYSTEM
    from ..stimuli.catalog import render as render_messages

    try:
        result = render_messages(
            _library(files, stimulus_id), stimulus_id, prompt, placement=placement, separator=separator, variant=variant,
            params=_params(param), system=DEFAULT_SYSTEM if system is None else system, answer=answer,
        )
    except UserError as exc:
        if exc.file or not exc.field:
            raise
        field = f"--param {exc.field.removeprefix('params.')}" if exc.field.startswith("params.") else f"--{exc.field}"
        raise UserError(exc.detail, field=field) from None
    if as_json:
        _print_json(result)
        return
    for call in result["calls"]:
        if len(result["calls"]) > 1:
            print(f"=== call: {call['purpose']}")
        for message in call["messages"]:
            print(f"[{message['role']}]\n{message['content']}\n")
