"""The console the CLI prints to stdout with."""

from __future__ import annotations

from rich.console import Console

# Piped or redirected, rich would squeeze every table into 80 columns (or $COLUMNS) and cut its
# headers ("n_availab…"); a file or a pipe has no width, so tables print whole up to this one.
PIPED_WIDTH = 200


def stdout_console() -> Console:
    """stdout: on a terminal, the terminal's width (rich wraps cells to fit); piped, PIPED_WIDTH
    or $COLUMNS, whichever is wider."""
    console = Console(markup=False)
    return console if console.is_terminal else Console(markup=False, width=max(console.width, PIPED_WIDTH))
