"""The Streamlit UI: widgets, then one call of `workbench.api` per action; no engine logic here.

`streamlit run app.py` opens it. Each page is a script in `pages/` (so a test can run one page
alone with streamlit.testing's AppTest); `common.py` holds what every page shares: the log
chooser, the run chooser and how errors are shown."""
