"""The states every page meets, each said in one line of words, never a traceback: no log, an
empty log, a log of an older schema, a log being written, a damaged log; a bug's message; user
text escaped for Markdown (hypothesis: it renders as exactly that text); an unreachable model."""

from __future__ import annotations

import gzip
import html
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from conftest import REPO, sim_study, write_study
from workbench import api
from workbench.store import SCHEMA_VERSION, SegmentWriter, compact, segments_dir
from workbench.ui.common import md_text

PAGES = REPO / "workbench" / "ui" / "pages"
SCHEMA_V1 = REPO / "tests" / "data" / "schema_v1" / "log.duckdb.gz"


def no_log(root: Path) -> Path:
    return root / "none.duckdb"


def empty_log(root: Path) -> Path:
    db = root / "empty.duckdb"
    compact(db)  # a log file with today's tables and no row
    return db


def older_log(root: Path) -> Path:
    db = root / "old.duckdb"
    with gzip.open(SCHEMA_V1, "rb") as source, open(db, "wb") as target:
        shutil.copyfileobj(source, target)
    return db


def damaged_log(root: Path) -> Path:
    db = root / "damaged.duckdb"
    with SegmentWriter(db) as writer:
        writer.write({"runs": [{"run_id": "first"}]})  # a new log's first batch makes the file
        writer.write({"runs": [{"run_id": "second"}]})  # the next stays a segment until a compaction
    segment = next((segments_dir(db) / "runs").glob("*.parquet"))
    segment.write_bytes(b"not parquet at all" * 10)
    return db


# state -> (how to make a log in it, what the sidebar says of it)
STATES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (no_log, "No log at"),
    "empty": (empty_log, "This log holds no run yet"),
    "older": (older_log, f"older workbench (schema 1; today's is {SCHEMA_VERSION}"),
    "damaged": (damaged_log, "is damaged"),
}


def page(name: str, db: Path) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    at.session_state["db"] = str(db)
    return at.run()


def said(at: AppTest) -> list[str]:
    """Every alert on the page and in its sidebar, Markdown escapes undone."""
    alerts = [*at.error, *at.warning, *at.info, *at.sidebar.error, *at.sidebar.warning, *at.sidebar.info]
    return [a.value.replace("\\", "") for a in alerts]


@pytest.mark.parametrize("state", sorted(STATES))
def test_each_log_state_is_said_in_words(state: str, tmp_path: Path) -> None:
    make, words = STATES[state]
    db = make(tmp_path)
    found = api.log_state(db)
    assert found.state == state and "\n" not in found.message
    assert words in found.message
    if state == "damaged":
        assert "workbench log repair" in found.message


@pytest.mark.parametrize("name", ["design", "run", "results", "rate", "export"])
@pytest.mark.parametrize("state", sorted(STATES))
def test_every_page_says_the_logs_state_and_never_fails(name: str, state: str, tmp_path: Path) -> None:
    make, words = STATES[state]
    at = page(name, make(tmp_path))
    assert not at.exception, at.exception
    assert any(words in line for line in said(at)), said(at)


@pytest.mark.parametrize("name", ["design", "run", "results", "rate", "export"])
def test_a_log_being_written_is_said_so(name: str, tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    with SegmentWriter(db):  # a run holds its writer's lock while it writes
        assert api.log_state(db).state == "writing"
        at = page(name, db)
        assert not at.exception, at.exception
        assert any("A run is writing to this log now" in line for line in said(at)), said(at)
    assert api.log_state(db).state == "empty"  # the writer gone


def test_a_bug_is_one_line_on_the_page_and_its_traceback_in_the_servers_log(caplog: pytest.LogCaptureFixture) -> None:
    def script() -> None:
        from workbench.ui.common import page_errors

        with page_errors():
            raise ValueError("no such <b>thing</b>\nsecond line")

    with caplog.at_level(logging.ERROR, logger="workbench.ui"):
        at = AppTest.from_function(script).run()
    assert not at.exception
    assert [e.value for e in at.error] == [md_text("ValueError: no such <b>thing</b> second line (a bug: please report it)")]
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)


RENDERER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# What Markdown cannot carry as text and makes U+FFFD: NUL, and whitespace control codes at either end.
UNCARRIED = "\0\x0b\x1c\x1d\x1e\x1f\x85"


def rendered_text(markdown: str) -> str:
    """The text of `markdown` rendered, after checking it is one paragraph without a tag in it."""
    out = RENDERER.render(markdown)
    if not out:
        return ""
    assert out.startswith("<p>") and out.endswith("</p>\n"), out
    inner = out[len("<p>"):-len("</p>\n")]
    assert "<" not in inner, out  # no tag: no link, image, emphasis, HTML, code, line break
    return html.unescape(inner)


MARKUP = st.sampled_from(list(" \t\n\r\x0b\x0c\x1c\x85\u2003\u00a0*_[]()!<>&#|`\\~$:.-+=/hw1")) | st.characters(codec="utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(MARKUP) | st.text())
def test_md_text_renders_as_exactly_the_text(text: str) -> None:
    shown = rendered_text(md_text(text))
    assert len(shown) == len(text)
    assert all(a == b or (b == "\ufffd" and a in UNCARRIED) for a, b in zip(text, shown)), (text, md_text(text), shown)


@pytest.mark.parametrize("text", ["![x](http://127.0.0.1:9/x.png)", "<img src=x onerror=alert(1)>", "[a](javascript:alert(1))", "http://127.0.0.1:9/",
                                  "# title", "    code", "- item\n1. item", "| a | b |\n|---|---|", "$x^2$", ":red[x]", "a  \nb"])
def test_md_text_makes_no_markup_of_attacks(text: str) -> None:
    assert rendered_text(md_text(text)) == text


@pytest.mark.slow  # the client's retries of a refused connection back off: 5 to 20 s
def test_an_unreachable_model_server_is_one_line_of_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")  # litellm wants one before it connects

    def script() -> None:
        from workbench.ui.common import model_status

        model_status([("openai/test-model", "http://127.0.0.1:9/v1")])

    at = AppTest.from_function(script, default_timeout=120).run()
    assert not at.exception
    [line] = [e.value.replace("\\", "") for e in at.error]
    assert line.startswith("openai/test-model at http://127.0.0.1:9/v1: server unreachable (") and "\n" not in line


def test_an_embedded_model_whose_server_does_not_start_is_one_line_of_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """Breaking the embedded server for real would break the machine's model cache: its start fails here as it does there."""
    from workbench.providers import litellm_provider

    def failing(model_id: str, log: object) -> None:
        raise RuntimeError("the llama.cpp server exited with code 1;\nsee /tmp/server.log")

    monkeypatch.setattr(litellm_provider, "ensure_server", failing)
    check = api.check_model("local/default", "What is 2 + 3?")
    assert not check.ok and check.kind == "server_start"
    assert check.summary == "local/default: its model server did not start (the llama.cpp server exited with code 1; see /tmp/server.log)"


def test_a_log_a_real_run_is_writing_is_said_so_on_the_export_page(tmp_path: Path) -> None:
    study = sim_study(name="slow", tasks=[{"task": "ii/sum", "n": 40}], concurrency=1)
    study["models"][0]["simulate"]["latency_ms"] = 250  # 120 trials: half a minute, longer than the test looks
    db = tmp_path / "live.duckdb"
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while api.log_state(db).state != "writing":
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() is not None else "no writer"
            time.sleep(0.2)
        at = page("export", db)
        assert not at.exception, at.exception
        assert any("A run is writing to this log now" in line for line in said(at)), said(at)
    finally:
        process.send_signal(signal.SIGINT)  # stops as Ctrl-C does: it resumes later
        process.wait(timeout=60)
