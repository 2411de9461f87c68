"""The Run page."""

from __future__ import annotations

import streamlit as st

from workbench.ui.common import log_path, page_errors

st.title("Run")
with page_errors():
    db = log_path()
