"""What every page shares: which log it reads, which run, and how errors are shown (one line,
never a traceback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from .. import api
from ..core.paths import DEFAULT_DB

DB_KEY = "db"  # session_state key of the log path, shared by every page
RUN_KEY = "run_id"  # session_state key of the chosen run


def default_db() -> str:
    return os.environ.get("WORKBENCH_DB") or str(DEFAULT_DB)


def log_path() -> Path:
    """The log every page reads and writes, chosen in the sidebar (default: $WORKBENCH_DB, else the CLI's default)."""
    if DB_KEY not in st.session_state:
        st.session_state[DB_KEY] = default_db()
    value = st.sidebar.text_input("Log file", key=DB_KEY, help="The DuckDB log the runs are written to (the CLI's --db).")
    return Path(value)


@contextmanager
def page_errors() -> Iterator[None]:
    """Show what the library raises as the one line the CLI prints, and stop the page there."""
    try:
        yield
    except api.LogFault as exc:  # LogDamaged is one: the message names the file and suggests `workbench log repair`
        st.error(str(exc), icon=":material/error:")
        st.stop()
    except api.UserError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
