"""What every page shares: which log it reads, which run, and how errors are shown (one line,
never a traceback)."""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from .. import api
from ..core.paths import DEFAULT_DB

DB_KEY = "db"  # session_state key of the log path, shared by every page
CHOSEN_DB_KEY = "chosen_db"  # the log chosen, kept across pages (no widget owns it)
RUN_KEY = "run_id"  # session_state key of the chosen run

log = logging.getLogger("workbench.ui")  # the server's log: where a bug's traceback goes, never the page


def default_db() -> str:
    return os.environ.get("WORKBENCH_DB") or str(DEFAULT_DB)


# How the sidebar says a log's state (api.LOG_STATES): the states a page can show as info, the
# others (damaged, unreadable, newer) as errors; a current log needs no word.
STATE_ALERTS = {"missing": "info", "empty": "info", "writing": "info", "older": "info", "current": None}


def _keep_db() -> None:
    st.session_state[CHOSEN_DB_KEY] = st.session_state[DB_KEY]


def log_path() -> Path:
    """The log every page reads and writes, chosen in the sidebar (default: $WORKBENCH_DB, else
    the CLI's default), with its state in words under it (api.log_state)."""
    # Streamlit forgets a widget's value when another page is shown: the choice is kept under a
    # key no widget owns, and the input starts from it on every page.
    if CHOSEN_DB_KEY not in st.session_state:
        st.session_state[CHOSEN_DB_KEY] = st.session_state.get(DB_KEY) or default_db()
    st.session_state[DB_KEY] = st.session_state[CHOSEN_DB_KEY]
    value = st.sidebar.text_input(
        "Log file", key=DB_KEY, on_change=_keep_db, help="The DuckDB log the runs are written to (the CLI's --db).",
    )
    state = api.log_state(value)  # a path naming no file: a UserError, which page_errors shows
    alert = STATE_ALERTS.get(state.state, "error")
    if alert is not None:
        getattr(st.sidebar, alert)(md_text(state.message), icon=f":material/{alert}:")
    return Path(state.db)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


@contextmanager
def page_errors() -> Iterator[None]:
    """Show what the library raises as the one line the CLI prints, and stop the page there; any
    other error is a bug: one line naming it on the page, its traceback in the server's log."""
    try:
        yield
    except (api.LogFault, api.UserError) as exc:  # LogDamaged is a LogFault: the message names the file and `workbench log repair`
        st.error(md_text(one_line(exc)), icon=":material/error:")
        st.stop()
    except Exception as exc:  # st.stop() and reruns are no Exception: they pass
        fault = api.log_fault_of(exc)  # a damaged block met deep in a query
        if fault is not None:
            st.error(md_text(one_line(fault)), icon=":material/error:")
        else:
            log.exception("the page failed")
            st.error(md_text(f"{type(exc).__name__}: {one_line(exc)} (a bug: please report it)"), icon=":material/bug_report:")
        st.stop()


# CommonMark lets a backslash escape every ASCII punctuation character: escaped, none of them
# makes markup (emphasis, links, images, HTML, headings, tables, math, Streamlit's :colour[...]).
_ESCAPED = frozenset(string.punctuation)
# Line ends would start blocks (headings, lists, code): they go as character references, which
# are text; so does whitespace at either end, which a paragraph strips, and tabs, which indent.
_REFERENCED = frozenset("\n\r\t\f")


def _referable(c: str) -> bool:
    """Whether a character reference carries `c` (CommonMark turns those of control codes into U+FFFD)."""
    code = ord(c)
    return not (code <= 0x08 or code == 0x0B or 0x0E <= code <= 0x1F or 0x7F <= code <= 0x9F)


def md_text(text: str) -> str:
    """`text` as Markdown that renders as exactly that text: for user text (names, prompts,
    responses, paths) inside st.markdown, st.error and the like. Only what Markdown cannot carry
    becomes U+FFFD, as Markdown itself makes it: NUL, and a control code that is whitespace
    (U+000B, U+001C to U+001F, U+0085) at either end."""
    marked = ["\\" + c if c in _ESCAPED else f"&#{ord(c)};" if c in _REFERENCED else c for c in str(text).replace("\0", "\ufffd")]
    for ends in (range(len(marked)), range(len(marked) - 1, -1, -1)):  # whitespace at the start, then at the end
        for i in ends:
            if not marked[i].isspace():
                break
            marked[i] = f"&#{ord(marked[i])};" if _referable(marked[i]) else "\ufffd"
    return "".join(marked)


def model_status(models: Sequence[tuple[str, str | None]], prompt: str = "What is 2 + 3? Answer with a number.") -> list[api.ModelCheck]:
    """Whether each (model, api_base) answers, one line each in words (`workbench models check`):
    st.success, or st.error saying what failed where (e.g. server unreachable)."""
    checks = [api.check_model(model, prompt, api_base=api_base) for model, api_base in models]
    for check in checks:
        (st.success if check.ok else st.error)(md_text(check.summary), icon=":material/check_circle:" if check.ok else ":material/error:")
    return checks
