"""The `workbench` command: argument parsing and printing over workbench.api."""

from __future__ import annotations

from . import interrupts


def main() -> None:
    """The command's entry point; an interrupt while it starts (app.py and its imports load for
    about a second) ends it as one during a run does."""
    with interrupts.handled():
        from .app import main as app_main

        app_main()


__all__ = ["main"]
