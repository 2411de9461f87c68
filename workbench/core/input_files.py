"""Reading the user's files (study, stimulus, task data and rubric files) within bounds.

Every loader of a file the user names goes through here, so that any file, however malformed,
ends in a UserError naming the file and the field (or line) in bounded time and memory:
paths are checked before use (NUL bytes, names too long), only regular files are opened (a FIFO
would block, /dev/zero never ends), at most a capped number of bytes is read, text must be
UTF-8, YAML is parsed with a depth cap and a cap on what aliases add (the "billion laughs"), its
tags' constructors cannot escape with a traceback, and JSON and CSV values are capped likewise.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from types import GeneratorType
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.composer import ComposerError

from .errors import UserError

YAML_LIMIT = 1 << 20  # bytes of a YAML file (bundled ones are under 30 KB; pure-Python YAML reads ~0.1-1 MB/s)
DATA_LIMIT = 32 << 20  # bytes of a task data file (JSONL, CSV, JSON)
MAX_DEPTH = 64  # nesting of YAML and JSON values (pydantic stops serialising at about 256)
ALIAS_BUDGET = 10_000  # values YAML aliases may add beyond those written out
CSV_CELL_LIMIT = csv.field_size_limit()  # Python's own cap (131,072 characters), kept

# Why a path cannot be used, by errno; other errors show their strerror.
_PATH_PROBLEMS = {
    errno.ENOENT: "does not exist",
    errno.ENAMETOOLONG: "is too long (a name in a path may have at most 255 bytes)",
    errno.ENOTDIR: "runs through something that is not a directory",
    errno.ELOOP: "runs through a loop of symbolic links",
    errno.EACCES: "is not readable (permission denied)",
}
# What a path names when it is not what a loader reads.
_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}
# Byte-order marks of encodings a file is often saved in by mistake (UTF-32 first: its LE mark starts with UTF-16's).
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def shown(text: object, limit: int = 60) -> str:
    """A user's value for a one-line message: repr (control characters escaped), long ones cut."""
    quoted = repr(str(text))
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 5]}...{quoted[-1]} ({len(str(text))} characters)"


def path_problem(exc: OSError | ValueError) -> str:
    """What is wrong with a path, as a phrase after the path: "does not exist", ..."""
    if not isinstance(exc, OSError):  # a NUL byte, or a lone surrogate that cannot be encoded
        return "is not a valid file name"
    return _PATH_PROBLEMS.get(exc.errno or 0, f"cannot be read ({exc.strerror})")


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS.items() if test(mode)), "not a regular file")


def user_path(given: str | Path, *, base: Path | None = None, field: str, file: str | None = None, what: str = "file", directories: bool = False) -> Path:
    """The path a field of a user's file names (relative to `base`), checked to name an existing
    regular file (or directory, if `directories`). A UserError at `file`/`field` otherwise."""

    def bad(problem: str) -> UserError:
        return UserError(f"{what} {shown(given)} {problem}", file=file, field=field)

    text = str(given)
    if "\0" in text:
        raise bad("contains a NUL byte")
    try:
        path = Path(text).expanduser()
        mode = os.stat(base / path if base is not None else path).st_mode
    except RuntimeError:  # `~name` of an unknown user
        raise bad("starts with ~ of an unknown user") from None
    except (OSError, ValueError) as exc:
        raise bad(path_problem(exc)) from None
    if not (stat.S_ISREG(mode) or (directories and stat.S_ISDIR(mode))):
        raise bad(f"is {_kind(mode)}, not a {'file or directory' if directories else 'regular file'}")
    return base / path if base is not None else path


def read_bytes(path: str | Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file; a FIFO, device or directory is refused before a
    byte is read (opened non-blocking, so a FIFO without a writer cannot hang the open)."""
    label = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the file: it {path_problem(exc)}", file=label) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # checked before fdopen, which refuses a directory with IsADirectoryError
            raise UserError(f"cannot read the file: it is {_kind(mode)}, not a regular file", file=label)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", file=label) from None
    finally:
        os.close(fd)
    return within_limit(data, limit, label)


def within_limit(data: bytes, limit: int, label: str) -> bytes:
    if len(data) > limit:
        raise UserError(f"the file is larger than {limit:,} bytes, the most this kind of file may have", file=label)
    return data


def decode(data: bytes, file: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is dropped); anything else names the line and byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        read = exc.object  # the bytes after a UTF-8 mark, which exc.start counts in
        line = read[: exc.start].count(b"\n") + 1
        guess = next((f"; it looks like {name}" for bom, name in _BOMS if data.startswith(bom)), "")
        raise UserError(f"not UTF-8 text (byte 0x{read[exc.start]:02x}){guess}: save the file as UTF-8", file=file, field=f"line {line}") from None


def read_text(path: str | Path, limit: int = YAML_LIMIT) -> str:
    return decode(read_bytes(path, limit), str(path))


def text_as_file(text: str, label: str, limit: int = YAML_LIMIT) -> str:
    """Text given in place of a file's (typed in an editor) held to the file's caps: at most
    `limit` bytes of UTF-8 (a lone surrogate is refused as a file's invalid byte is)."""
    return decode(within_limit(text.encode("utf-8", "surrogatepass"), limit, label), label)


# -- YAML ----------------------------------------------------------------------------------------
class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with MAX_DEPTH and ALIAS_BUDGET enforced while composing (before any
    value is built), and tag constructors whose errors become YAML errors with the value's line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._written = 0  # nodes written out in the file so far
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for with its aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # `&a [*a]`: a value that contains itself
                raise ComposerError(None, None, "an alias refers to the value it is inside of", mark)
            return node
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"values are nested more than {MAX_DEPTH} levels deep", mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._written += 1
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value if isinstance(node, yaml.SequenceNode) else []
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > self._written + ALIAS_BUDGET:
            raise ComposerError(None, None, f"aliases expand this value to {size:,} values, more than {ALIAS_BUDGET:,} beyond those written", mark)
        self._sizes[id(node)] = size
        return node


_CONSTRUCTOR_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
# Tags of YAML's types that JSON lacks: a study's values are logged and hashed as JSON.
_REFUSED_TAGS = ("tag:yaml.org,2002:binary", "tag:yaml.org,2002:set", "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs")


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _guarded(construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A constructor whose failure on a value its tag does not fit (`!!bool maybe`) is a
    ConstructorError at the value, and whose strings are valid Unicode (no lone surrogates)."""

    def fail(node: Any) -> ConstructorError:
        value = node.value if isinstance(node, yaml.ScalarNode) else node.id
        return ConstructorError(None, None, f"{_short_tag(node.tag)} cannot hold {shown(value)}", node.start_mark)

    def steps(made: Iterator[Any], node: Any) -> Iterator[Any]:  # collections are filled after they are yielded
        try:
            yield from made
        except _CONSTRUCTOR_ERRORS:
            raise fail(node) from None

    def guarded(loader: Any, node: Any) -> Any:
        try:
            made = construct(loader, node)
            if isinstance(made, str):
                made.encode("utf-8")  # "\ud800" is valid YAML but no text
        except _CONSTRUCTOR_ERRORS:
            raise fail(node) from None
        return steps(made, node) if isinstance(made, GeneratorType) else made

    return guarded


def _refused(loader: Any, node: Any) -> Any:
    raise ConstructorError(None, None, f"{_short_tag(node.tag)} values are not allowed (only strings, numbers, booleans, null, dates, lists and mappings)", node.start_mark)


_BoundedLoader.yaml_constructors = {
    tag: _refused if tag in _REFUSED_TAGS else _guarded(construct) for tag, construct in yaml.SafeLoader.yaml_constructors.items()
}


def parse_yaml(text: str, file: str) -> Any:
    """One YAML document, as plain data; any problem is a UserError naming the file and line."""
    try:
        loader = _BoundedLoader(text)  # checks the characters first
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join("; ".join(filter(None, (exc.context, exc.problem))).split())  # one line
        raise UserError(f"not valid YAML: {problem}", file=file, field=f"line {mark.line + 1}" if mark else None) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. NUL
        line = text[: exc.position].count("\n") + 1
        raise UserError(f"not valid YAML: character {exc.character!r} is not allowed", file=file, field=f"line {line}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML: {' '.join(str(exc).split())}", file=file) from None


def load_yaml(path: str | Path, limit: int = YAML_LIMIT) -> Any:
    return parse_yaml(read_text(path, limit), str(path))


# -- JSON and CSV --------------------------------------------------------------------------------
def _check_plain(value: Any, file: str, field: str | None) -> Any:
    """A parsed JSON value nested at most MAX_DEPTH deep whose strings are valid Unicode."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(f"values are nested more than {MAX_DEPTH} levels deep", file=file, field=field)
        if isinstance(item, dict):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            stack.extend((part, depth + 1) for part in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise UserError(f"the string {shown(item)} is not valid Unicode (an unpaired surrogate)", file=file, field=field) from None
    return value


def parse_json(text: str, file: str, field: str | None = None) -> Any:
    """One JSON value; a syntax error names the column (and line, when the text has several)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = field or f"line {exc.lineno}"
        raise UserError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=file, field=where) from None
    except RecursionError:
        raise UserError(f"values are nested more than {MAX_DEPTH} levels deep", file=file, field=field) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise UserError(f"not valid JSON: {exc}", file=file, field=field) from None
    return _check_plain(value, file, field)


def load_json(path: str | Path, limit: int = DATA_LIMIT) -> Any:
    return parse_json(read_text(path, limit), str(path))


def json_lines(path: str | Path, limit: int = DATA_LIMIT) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSON Lines file."""
    lines = io.StringIO(read_text(path, limit), newline=None)  # lines end at \n, \r\n or \r only, as in a file opened as text
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, parse_json(line, str(path), f"line {number}")


def csv_rows(path: str | Path, limit: int = DATA_LIMIT) -> Iterator[tuple[int, dict[str | None, Any]]]:
    """(line number where the row starts, row by header) of a CSV file; a malformed row or a
    cell over CSV_CELL_LIMIT characters is a UserError naming the line."""
    label = str(path)
    reader = csv.DictReader(io.StringIO(read_text(path, limit), newline=""))
    start = 2
    try:
        for row in reader:
            number, start = start, reader.line_num + 1
            yield number, row
    except csv.Error as exc:
        problem = f"a cell is longer than {CSV_CELL_LIMIT:,} characters" if "field limit" in str(exc) else f"not valid CSV: {exc}"
        raise UserError(problem, file=label, field=f"line {start}") from None
