"""The pages, each a script Streamlit runs (and AppTest can run alone)."""
