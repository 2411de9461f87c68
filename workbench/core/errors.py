"""Errors the user can act on. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, get_args

if TYPE_CHECKING:  # the CLI imports this module at start-up, before anything needs pydantic
    from pydantic import BaseModel, ValidationError


class UserError(Exception):
    """Bad input: names the file, the field and what is allowed."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.detail = message
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class Problem(NamedTuple):
    """The one error of a pydantic ValidationError worth showing, in the user's terms."""

    kind: str  # pydantic's error type: extra_forbidden, missing, value_error, ...
    path: str  # where in the input: `a.b[0].c`, without pydantic's union-branch and validator labels
    key: str  # the last key of the path (the unknown or missing one)
    message: str  # pydantic's message, without its "Value error, " prefix
    allowed: tuple[str, ...]  # the keys of the model the key belongs to (empty when unknown)
    input: Any


# Parts of pydantic's error locations that name a union branch or a validator wrapper, not a key.
_SCALAR_BRANCHES = frozenset({"str", "int", "float", "bool"})
# A scalar branch with a validator of its own (core.schema.Name) is labelled `function-after[check_name(), str]`.
_CHECKED_SCALARS = tuple(f", {kind}]" for kind in _SCALAR_BRANCHES)
_LABEL_PREFIXES = ("function-", "list[", "dict[", "tuple[", "literal[", "nullable[")
# How an error type reads to the user; the rest keep pydantic's message.
_WORDING = {"extra_forbidden": "unknown key {key!r}", "missing": "is required"}


def first_problem(exc: ValidationError, model: type[BaseModel] | None = None) -> Problem:
    """The first error, except that for a union such as `str | StimulusRef` whose scalar branch
    failed ("not a string") the structured branch's error, which says what is wrong inside, wins.
    `model` (the validated class) lets the path drop branch labels and the error list allowed keys."""
    err = _shown(exc.errors())
    loc = tuple(err["loc"])
    path, _ = _walk(model, loc)
    _, parent = _walk(model, loc[:-1])
    return Problem(
        kind=err["type"],
        path=path,
        key=str(loc[-1]) if loc else "",
        message=err["msg"].removeprefix("Value error, "),
        allowed=tuple(parent[0].model_fields) if parent else (),
        input=err.get("input"),
    )


def _shown(errors: list[Any]) -> Any:
    first = errors[0]
    cut = next((i for i, part in enumerate(first["loc"]) if _is_scalar_branch(part)), None)
    if cut is None or not first["type"].endswith("_type"):  # the value was a scalar, and a bad one: say why
        return first

    def other_branch(err: Any) -> bool:  # the same union, a branch that is not a scalar one
        loc = err["loc"]
        return loc[:cut] == first["loc"][:cut] and len(loc) > cut and not _is_scalar_branch(loc[cut])

    return next(filter(other_branch, errors), first)


def _is_scalar_branch(part: Any) -> bool:
    return part in _SCALAR_BRANCHES or (str(part).startswith("function-") and str(part).endswith(_CHECKED_SCALARS))


def validation_error(
    exc: ValidationError,
    *,
    file: str | None = None,
    field: str = "",
    model: type[BaseModel] | None = None,
    whole: str = "",
    wording: Mapping[str, str] | None = None,
    allowed: Sequence[str] | None = None,
) -> UserError:
    """A ValidationError as a UserError: its first problem at `field` + the error's path (`whole`
    names the value when the error is about all of it), unknown keys with the keys allowed there.
    `wording` replaces the message of an error type; it may use {key} and {allowed}."""
    problem = first_problem(exc, model)
    keys = ", ".join(problem.allowed if allowed is None else allowed)
    template = {**_WORDING, **(wording or {})}.get(problem.kind, "{message}")
    message = template.format(key=problem.key, allowed=keys, message=problem.message)
    if problem.kind == "extra_forbidden" and keys and "{allowed}" not in template:
        message += f" (allowed: {keys})"
    where = problem.path or whole
    joined = f"{field}{'' if where.startswith('[') or not field or not where else '.'}{where}"
    return UserError(message, file=file, field=joined or "(top level)")


def _walk(model: type[BaseModel] | None, loc: Sequence[Any]) -> tuple[str, tuple[type[BaseModel], ...]]:
    """The path of a pydantic location as the user wrote it (`a.b[0].c`), and the models a key
    after it may belong to, found by following the fields' annotations from `model`."""
    path = ""
    inside: tuple[type[BaseModel], ...] = (model,) if model is not None else ()
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        branch = next((m for m in inside if m.__name__ == part), None)
        if branch is not None:  # the branch of a union of models pydantic tried
            inside = (branch,)
            continue
        if part in _SCALAR_BRANCHES or str(part).startswith(_LABEL_PREFIXES):
            continue
        path += f".{part}" if path else str(part)
        owner = next((m for m in inside if part in m.model_fields), None)
        inside = _models_in(owner.model_fields[part].annotation) if owner else ()
    return path, inside


def _models_in(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The pydantic models inside an annotation such as list[str | StimulusRef] or SimulatorSpec | None."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return (annotation,)
    found: dict[type[BaseModel], None] = {}
    for arg in get_args(annotation):
        found.update(dict.fromkeys(_models_in(arg)))
    return tuple(found)


class LogFault(Exception):
    """The log cannot be written or read as it stands: the disk is full or read-only, or one of
    its files is damaged. One line naming the path and what to do; the CLI exits with code 1."""

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


class LogDamaged(LogFault):
    """A file of the log (a Parquet segment or the DuckDB file) cannot be read."""
