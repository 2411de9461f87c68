"""Tasks from the user's files: JSONL or CSV records with `input` and `target` (or `targets`, or
`choices` with `answer`), referenced by path in a study. A bad record fails with the file, the
line and the field, before anything runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.input_files import csv_rows, json_lines, parse_json
from . import CAPACITY, SOURCES, TaskItem, TaskSpec, seeded_order, with_choices

SOURCE = "custom.file"
ANSWER_FIELDS = ("target", "targets", "choices")


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a .jsonl or .csv file; a malformed line is a UserError."""
    if path.suffix.lower() == ".csv":
        yield from _csv_records(path)
    elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        yield from _jsonl_records(path)
    else:
        raise UserError("a task data file must be .jsonl or .csv", file=str(path))


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, record in json_lines(path):
        if not isinstance(record, dict):
            raise UserError("each line must be a JSON object", file=str(path), field=f"line {number}")
        yield number, record


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV cells are text; `targets` and `choices` cells hold JSON lists, empty cells are absent."""
    for number, row in csv_rows(path):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if key is None:
                raise UserError("more cells than header columns", file=str(path), field=f"line {number}")
            if value is None or value == "":
                continue
            if key in ("targets", "choices"):
                try:
                    value = parse_json(value, str(path))
                except UserError as exc:
                    raise UserError(f'must be a JSON list, e.g. ["a", "b"] ({exc.detail})', file=str(path), field=f"line {number}, field {key!r}") from None
            record[key] = value
        yield number, record


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def _texts(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not value:
        return None
    texts = [_text(v) for v in value]
    return None if any(t is None or t == "" for t in texts) else texts  # type: ignore[misc]


def parse_record(record: dict[str, Any], where: str, file: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(input, targets, choices) of one record, or a UserError naming the line and field."""

    def bad(name: str, message: str) -> UserError:
        return UserError(message, file=file, field=f"{where}, field {name!r}")

    text = _text(record.get("input"))
    if not text:
        raise bad("input", "is required: a non-empty string")
    given = [name for name in ANSWER_FIELDS if name in record]
    if len(given) != 1:
        raise bad("target", f"give exactly one of {', '.join(ANSWER_FIELDS)} (with `answer` for choices); found {', '.join(given) or 'none'}")
    if "target" in record:
        target = _text(record["target"])
        if target is None or target == "":
            raise bad("target", "must be a non-empty string or number")
        return text, (target,), ()
    if "targets" in record:
        targets = _texts(record["targets"])
        if targets is None:
            raise bad("targets", "must be a non-empty list of non-empty strings")
        return text, tuple(targets), ()
    choices = _texts(record["choices"])
    if choices is None or len(choices) < 2 or len(set(choices)) != len(choices):
        raise bad("choices", "must be a list of at least two distinct non-empty strings")
    answer = record.get("answer")
    if isinstance(answer, str) and answer.strip().lstrip("-").isdigit() and answer not in choices:
        answer = int(answer)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < len(choices):
            raise bad("answer", f"index {answer} is outside the {len(choices)} choices (0-based)")
        answer = choices[answer]
    if answer not in choices:
        raise bad("answer", f"must be one of the choices or its 0-based index; got {record.get('answer')!r}")
    return text, (str(answer),), tuple(choices)


Build = Callable[[str], list[TaskItem]]  # path -> items, raising UserError on a bad record


def register_file_source(name: str, build: Build) -> None:
    """Register a source over a data file named by the task's `path`: read once per file version,
    items drawn in a seeded order of their ids."""

    def items_of(spec: TaskSpec) -> tuple[TaskItem, ...]:
        path = Path(spec.source_args["path"])
        return _cached(build, str(path), path.stat().st_mtime_ns)

    def source(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
        items = items_of(spec)
        return [items[i] for i in seeded_order([item.id for item in items], spec.id, seed)[:n]]

    SOURCES.add(name, source)
    CAPACITY.add(name, lambda spec: len(items_of(spec)))


@functools.lru_cache(maxsize=32)
def _cached(build: Build, path: str, mtime_ns: int) -> tuple[TaskItem, ...]:
    items = tuple(build(path))
    if not items:
        raise UserError("has no records", file=path)
    return items


def custom_items(path: str) -> list[TaskItem]:
    items: list[TaskItem] = []
    ids: dict[str, int] = {}
    for number, record in records(Path(path)):
        where = f"line {number}"
        text, targets, choices = parse_record(record, where, path)
        item_id = _text(record.get("id")) or f"line-{number}"
        if item_id in ids:
            raise UserError(f"id {item_id!r} repeats line {ids[item_id]}", file=path, field=f"{where}, field 'id'")
        ids[item_id] = number
        extra = tuple(sorted((k, v) for k, v in record.items() if k not in ("id", "input", "answer", *ANSWER_FIELDS)))
        items.append(TaskItem(id=item_id, input=with_choices(text, choices), targets=targets, choices=choices, meta=extra))
    return items


register_file_source(SOURCE, custom_items)
