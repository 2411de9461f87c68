"""Secrets out of logged text: a provider's error message may quote the key it was sent, and the
message goes into the log (`calls.error`, `trials.error`) and onto the console."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .credentials import secret_values

MASK = "***"


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value of the environment (read now, not at import) masked."""
    for value in secret_values(os.environ if environ is None else environ):
        text = text.replace(value, MASK)
    return text
