"""Malformed user files (study, stimulus and task data files) end in one line naming the file and
the field, exit code 2, nothing written, in bounded time and memory (issue 13, "bad input").

The reproductions of the causes fuzzing found run the real CLI; the property tests generate
malformed files with hypothesis and call the loader in-process (a process per example would take
minutes), each example under a watchdog for hangs and a CPU-time bound for runaway work."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from workbench.core.errors import UserError
from workbench.study.spec import load_study

STUDY = """name: s
models:
  - id: sim/x
    params: {params}
conditions:
  - name: control
tasks:
  - task: {task}
    n: 2
{extra}"""
STIMULI = "family: mine\nversion: '1'\nauthored: true\nitems:\n- id: MY/a\n  text: {text}\n"
CUSTOM_TASK = "custom/q\n    path: {path}\n    metric: em"


def study_text(params: str = "{temperature: 0.0}", task: str = "ii/sum", extra: str = "") -> str:
    return STUDY.format(params=params, task=task, extra=extra)


def alias_bomb(levels: int, width: int = 9) -> str:
    """A flow sequence whose last element stands for width**levels values: `&a1 [*a0, *a0, ...]`."""
    chain = [f"&a0 [{', '.join(['x'] * width)}]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(chain)}]"


def nested(depth: int, inner: str = "1") -> str:
    return "{a: " * depth + inner + "}" * depth


def _write(directory: Path, files: dict[str, bytes | str]) -> None:
    for name, content in files.items():
        path = directory / name
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)


def _fifo(directory: Path) -> str:
    os.mkfifo(directory / "pipe.jsonl")
    return "pipe.jsonl"


def _dev_zero(directory: Path) -> str:
    (directory / "zero.yaml").symlink_to("/dev/zero")
    return "zero.yaml"


# name -> (files written beside the study, study text (or a function of the directory giving it), needles of the message)
REPRODUCTIONS: dict[str, tuple[dict[str, bytes | str], Any, tuple[str, ...]]] = {
    "study file in latin-1": ({}, study_text().replace("name: s", "name: caf\xe9").encode("latin-1"), ("s.yaml", "line 1", "UTF-8")),
    "stimulus file in latin-1": (
        {"st.yaml": STIMULI.format(text="caf\xe9").encode("latin-1")}, study_text(extra="stimulus_files: [st.yaml]"), ("st.yaml", "line 6", "UTF-8"),
    ),
    "stimulus file in UTF-16": (
        {"st.yaml": STIMULI.format(text="cafe").encode("utf-16")}, study_text(extra="stimulus_files: [st.yaml]"), ("st.yaml", "line 1", "UTF-16"),
    ),
    "NUL byte in a stimulus file name": ({}, study_text(extra='stimulus_files: ["a\\0b"]'), ("s.yaml", "stimulus_files[0]", "NUL")),
    "stimulus file linked to /dev/zero": (
        {}, lambda d: study_text(extra=f"stimulus_files: [{_dev_zero(d)}]"), ("s.yaml", "stimulus_files[0]", "character device"),
    ),
    "task data file that is a FIFO": ({}, lambda d: study_text(task=CUSTOM_TASK.format(path=_fifo(d))), ("s.yaml", "tasks[0].path", "FIFO")),
    "YAML nested 500 deep": ({}, study_text(extra="description: " + "[" * 500 + "]" * 500), ("s.yaml", "line 10", "nested more than")),
    "params nested 400 deep": ({}, study_text(params=nested(400)), ("s.yaml", "line 4", "nested more than")),
    "9^9 alias bomb in params": ({}, study_text(params=f"{{temperature: 0.0, bomb: {alias_bomb(9)}}}"), ("s.yaml", "line 4", "aliases expand")),
    "9^6 alias bomb in params": ({}, study_text(params=f"{{temperature: 0.0, bomb: {alias_bomb(6)}}}"), ("s.yaml", "line 4", "aliases expand")),
    "task path of 300 characters": ({}, study_text(task=CUSTOM_TASK.format(path="a" * 300)), ("s.yaml", "tasks[0].path", "too long")),
    "CSV cell over 131,072 characters": (
        {"big.csv": "input,target\n" + "x" * 140_000 + ",1\nb,2\n"}, study_text(task=CUSTOM_TASK.format(path="big.csv")), ("big.csv", "line 2", "131,072"),
    ),
    "!!timestamp on a non-date": ({}, study_text(extra="description: !!timestamp 2024-02-30x"), ("s.yaml", "line 10", "!!timestamp")),
    "!!bool on a non-boolean": ({}, study_text(extra="description: !!bool maybe"), ("s.yaml", "line 10", "!!bool")),
}


@pytest.mark.parametrize("case", sorted(REPRODUCTIONS))
def test_a_malformed_file_is_one_line_naming_the_file_and_field(tmp_path: Path, case: str) -> None:
    files, study, needles = REPRODUCTIONS[case]
    _write(tmp_path, files)
    text = study(tmp_path) if callable(study) else study
    _write(tmp_path, {"s.yaml": text})
    result = run_cli("run", str(tmp_path / "s.yaml"), "--db", str(tmp_path / "runs" / "log.duckdb"), timeout=60)
    message = result.stderr.strip()
    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert all(needle in message for needle in needles), (needles, message)
    assert not (tmp_path / "runs").exists(), "a rejected study writes nothing"


# -- generated malformed files ----------------------------------------------------------------------
CPU_LIMIT_S = 20.0  # CPU seconds an example may take (a loaded machine stretches wall time, not CPU time)
HANG_LIMIT_S = 120.0  # wall seconds before an example counts as hung (a FIFO blocks without using CPU)


class Hung(Exception):
    pass


@contextlib.contextmanager
def watchdog() -> Iterator[None]:
    """Interrupt an example that blocks (SIGALRM breaks a blocked open or read) and fail one that
    computes for longer than CPU_LIMIT_S."""

    def hung(signum: int, frame: Any) -> None:
        raise Hung(f"still loading after {HANG_LIMIT_S:.0f} s")

    previous = signal.signal(signal.SIGALRM, hung)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, HANG_LIMIT_S)  # pytest-timeout's alarm, if it set one
    started, began = time.process_time(), time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - began), 0.001))
    spent = time.process_time() - started
    assert spent < CPU_LIMIT_S, f"took {spent:.1f} s of CPU"


def check_load(directory: Path, study: Path, named: Callable[[UserError], bool]) -> None:
    """Loading `study` gives a study whose identity can be computed, or one line of UserError
    naming a file; never another exception, a hang, or a file written."""
    before = sorted(p.name for p in directory.iterdir())
    with watchdog():
        try:
            load_study(study).spec_hash()  # the spec hash serialises every value (params included)
        except UserError as exc:
            message = str(exc)
            assert "\n" not in message and "\r" not in message, message
            assert named(exc), message
    assert sorted(p.name for p in directory.iterdir()) == before, "loading wrote a file"


def names_a_file(directory: Path) -> Callable[[UserError], bool]:
    """The error names a file and its field, or a file of `directory` when the whole file is at fault."""
    return lambda exc: exc.file is not None and (exc.field is not None or Path(exc.file).resolve().parent == directory.resolve())


def in_directory() -> contextlib.AbstractContextManager[str]:
    return tempfile.TemporaryDirectory(prefix="bad-input-")


# Values that YAML reads oddly or not at all, placed where a well-formed value stood.
NASTY_YAML = st.one_of(
    st.sampled_from([
        "!!bool maybe", "!!timestamp 2024-02-30x", "!!timestamp 2024-02-30", "!!int abc", "!!float x", "!!binary '!!!'", "!!binary aGk=",
        "!!set {a, b}", "!!omap [a]", "!!pairs [[a]]", "!!python/object/apply:os.system [echo]", "!foo bar", "*nope", "&a [*a]",
        "&a {b: *a}", "!!str [1]", "!!map x", "!!seq x", "!!null x", '"\\ud800"', '"\\0"', '"\\e[31m"', "{? [a]: 1}", "[1, 2", "{a: 1",
        "!!int " + "9" * 5000, "1" * 5000, "1e999", ".nan", "-.inf", "0x1F", "2024-01-01", "~", "'", '"', "- a\n- b", "&x 1\nz: &x 2",
        "{<<: [1]}", "{<<: *nope}", "\t1", "%YAML 1.1", "---\nb: 2", "...", "? ", "|\n bad", "\x00", "\x1b[2J", "\ufeffa", "\u2028",
    ]),
    st.integers(1, 700).map(lambda d: "[" * d + "]" * d),
    st.integers(1, 500).map(nested),
    st.tuples(st.integers(1, 9), st.integers(2, 9)).map(lambda lw: alias_bomb(*lw)),
    st.integers(0, 100_000).map(lambda n: "x" * n),
    st.text(max_size=40),
)
# What a path field of a study may name.
BAD_PATHS = ["missing", "nul", "long", "dir", "fifo", "dev_zero", "loop", "tilde", "dev_null", "stdin", "empty", "surrogate"]
PATHS = st.one_of(st.just("ok"), st.sampled_from(BAD_PATHS))  # half of the examples read the file


def make_path(directory: Path, kind: str, name: str, content: bytes) -> str:
    """Create what `kind` names in `directory` (if anything) and return the path a study gives for it."""
    target = directory / name
    create: dict[str, Callable[[], object]] = {
        "ok": lambda: target.write_bytes(content),
        "empty": lambda: target.write_bytes(b""),
        "dir": target.mkdir,
        "fifo": lambda: os.mkfifo(target),
        "dev_zero": lambda: target.symlink_to("/dev/zero"),
        "loop": lambda: target.symlink_to(target),
    }
    if kind in create:
        create[kind]()
        return name
    given = {
        "missing": "nope-" + name, "nul": name + "\0x", "long": "a" * 300 + name, "tilde": "~no-such-user-here/" + name,
        "dev_null": "/dev/null", "stdin": "/dev/stdin", "surrogate": name + "\udc80",
    }
    return given[kind]


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> bytes:
    """`text` with a few of its values replaced by nasty ones, then perhaps encoded wrongly, cut
    short or with bytes inserted."""
    lines = text.split("\n")
    valued = [i for i, line in enumerate(lines) if ": " in line]
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.sampled_from(valued))
        key = lines[index].split(": ", 1)[0]
        lines[index] = f"{key}: {draw(NASTY_YAML)}"
    out = "\n".join(lines)
    encoding = draw(st.one_of(st.just("utf-8"), st.sampled_from(["utf-8-sig", "latin-1", "utf-16", "utf-32", "cp1252"])))
    data = out.encode(encoding, errors="surrogatepass" if encoding == "utf-8" else "replace")
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if draw(st.integers(0, 19)) == 0:
        data = data[: draw(st.integers(1, len(data)))]
    return data


STUDY_BASE = yaml.safe_dump({
    "name": "fuzz", "description": "a study", "models": [{"id": "sim/x", "params": {"temperature": 0.0, "top_p": 1.0}}],
    "conditions": [{"name": "control"}, {"name": "calm", "stimuli": ["MY/a"]}],
    "tasks": [{"task": "custom/q", "path": "TASKPATH", "metric": "em", "n": 1}],  # no generated task: drawing one takes 60 ms
    "stimulus_files": ["STIMPATH"],
}, sort_keys=False)
STIMULUS_BASE = STIMULI.format(text="Take a deep breath.") + "  valence: positive\n- id: MY/b\n  text: Stay calm.\n  placement: prefix\n"
TASK_RECORDS = ['{"input": "a", "target": "b"}', '{"input": "c", "targets": ["d", "e"]}', '{"input": "f", "choices": ["g", "h"], "answer": 1}']
# Bad JSON values for a task data line.
NASTY_JSON = st.one_of(
    st.sampled_from([
        '{"input": "a", "target": "\\ud800"}', '{"input": 1e999, "target": 1}', '{"input": "a", "target": ' + "9" * 5000 + "}",
        '{"input": "a", "target": NaN}', '[1, 2]', '"x"', "null", '{"input": "a"', '{"input": {"a": 1}, "target": [1]}',
        '{"input": "a", "choices": "gh", "answer": "g"}', '{"input": "a", "choices": [1, 1], "answer": 9}', "\x00", "\ufeff{}",
    ]),
    st.integers(1, 5000).map(lambda d: '{"input": "a", "target": "b", "extra": ' + "[" * d + "]" * d + "}"),
    st.integers(0, 150_000).map(lambda n: '{"input": "' + "x" * n + '", "target": "b"}'),
    st.text(max_size=40),
)
NASTY_CSV = st.one_of(
    st.sampled_from(['a,"b', '"a"b",c', "a,b,c,d", "\x00,1", 'a,"[1, 2"', ',', '"', "a\rb,c"]),
    st.integers(0, 150_000).map(lambda n: "x" * n + ",b"),
    st.text(max_size=40),
)


@st.composite
def task_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A JSONL or CSV task data file with some of its lines bad, in some encoding."""
    if draw(st.booleans()):
        lines = list(TASK_RECORDS)
        nasty, name = NASTY_JSON, "q.jsonl"
    else:
        lines = ["input,target,choices,answer", "a,b,,", 'c,,"[""d"", ""e""]",0']
        nasty, name = NASTY_CSV, "q.csv"
    for _ in range(draw(st.integers(1, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(nasty))
    text = "\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="surrogatepass" if encoding == "utf-8" else "replace")
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return name, data


def _study_with(directory: Path, study: bytes, stimulus: tuple[str, bytes], task: tuple[str, bytes], kinds: tuple[str, str]) -> Path:
    stim_path = make_path(directory, kinds[0], *stimulus)
    task_path = make_path(directory, kinds[1], *task)
    for placeholder, value in ((b"STIMPATH", stim_path), (b"TASKPATH", task_path)):
        study = study.replace(placeholder, _yaml_str(value))
    path = directory / "study.yaml"
    path.write_bytes(study)
    return path


def _yaml_str(value: str) -> bytes:
    """A double-quoted YAML scalar of `value` (NUL and lone surrogates escaped), without the quotes."""
    escaped = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return escaped.encode("ascii")


# No shrinking: a failing example is reported as generated, so that a regression that hangs
# (HANG_LIMIT_S per try) fails in minutes rather than after hundreds of shrinking tries.
FUZZ_SETTINGS = dict(
    derandomize=True, database=None, deadline=None, print_blob=False, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.slow  # 4-17 s each, with the machine's load
@settings(max_examples=1000, **FUZZ_SETTINGS)
@given(study=mutated_text(STUDY_BASE.replace("STIMPATH", '"STIMPATH"').replace("TASKPATH", '"TASKPATH"')), kinds=st.tuples(PATHS, PATHS))
def test_generated_study_files_load_or_fail_with_one_line(study: bytes, kinds: tuple[str, str]) -> None:
    with in_directory() as root:
        directory = Path(root)
        path = _study_with(directory, study, ("mine.yaml", STIMULUS_BASE.encode()), ("q.jsonl", "\n".join(TASK_RECORDS).encode()), kinds)
        check_load(directory, path, names_a_file(directory))


@pytest.mark.slow
@settings(max_examples=1000, **FUZZ_SETTINGS)
@given(stimulus=mutated_text(STIMULUS_BASE), kind=PATHS)
def test_generated_stimulus_files_load_or_fail_with_one_line(stimulus: bytes, kind: str) -> None:
    with in_directory() as root:
        directory = Path(root)
        study = STUDY_BASE.replace("STIMPATH", '"STIMPATH"').replace("TASKPATH", '"TASKPATH"').encode()
        path = _study_with(directory, study, ("mine.yaml", stimulus), ("q.jsonl", "\n".join(TASK_RECORDS).encode()), (kind, "ok"))
        check_load(directory, path, names_a_file(directory))


@pytest.mark.slow
@settings(max_examples=1000, **FUZZ_SETTINGS)
@given(task=task_file(), kind=PATHS)
def test_generated_task_files_load_or_fail_with_one_line(task: tuple[str, bytes], kind: str) -> None:
    with in_directory() as root:
        directory = Path(root)
        study = STUDY_BASE.replace("STIMPATH", '"STIMPATH"').replace("TASKPATH", '"TASKPATH"').encode()
        path = _study_with(directory, study, ("mine.yaml", STIMULUS_BASE.encode()), task, ("ok", kind))
        check_load(directory, path, names_a_file(directory))
