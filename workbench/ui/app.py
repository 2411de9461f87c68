"""The UI's entry: the page list and the settings every page shares."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

# (file in pages/, title, icon): the order of the navigation
PAGE_LIST = (
    ("design.py", "Design", ":material/edit_note:"),
    ("run.py", "Run", ":material/play_arrow:"),
    ("results.py", "Results", ":material/table_chart:"),
    ("rate.py", "Rate", ":material/star_rate:"),
    ("export.py", "Export", ":material/download:"),
)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def main() -> None:
    st.set_page_config(page_title="Prompt-Affect Workbench", page_icon="📊", layout="wide")
    if st.get_option("server.address") not in LOOPBACK:  # started without the checkout's .streamlit/config.toml: it may listen on every address
        st.error(
            "The workbench serves this machine only: start it in the checkout with `streamlit run app.py` "
            "(its .streamlit/config.toml binds 127.0.0.1), or pass --server.address 127.0.0.1."
        )
        st.stop()
    pages = [st.Page(PAGES / file, title=title, icon=icon, default=i == 0) for i, (file, title, icon) in enumerate(PAGE_LIST)]
    st.navigation(pages).run()
