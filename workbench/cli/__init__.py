"""The `workbench` command: argument parsing and printing over workbench.api."""

from .app import app, main

__all__ = ["app", "main"]
