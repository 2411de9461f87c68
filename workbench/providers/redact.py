"""Secrets out of logged text: a provider's error message may quote the key it was sent, and the
message goes into the log (`calls.error`, `trials.error`) and onto the console."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Names of environment variables that hold secrets: *_KEY, *_TOKEN, *_SECRET, *PASSWORD, *API_KEY*.
SECRET_NAME = re.compile(r"(_KEY|_TOKEN|_SECRET|PASSWORD)$|API_KEY")
MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would blank out ordinary words
MASK = "***"


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of secret-looking variables, longest first (a key containing another goes whole)."""
    found = {value for name, value in environ.items() if SECRET_NAME.search(name.upper()) and len(value) >= MIN_SECRET_LENGTH}
    return sorted(found, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value of the environment (read now, not at import) masked."""
    for value in secret_values(os.environ if environ is None else environ):
        text = text.replace(value, MASK)
    return text
