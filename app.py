"""The workbench in the browser: `streamlit run app.py` (it listens on 127.0.0.1 only)."""

from workbench.ui.app import main

main()
