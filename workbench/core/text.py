"""User text made safe to show, and the names a study may give: what reaches a terminal, an
error message or an export file never carries raw control characters."""

from __future__ import annotations

import unicodedata

NAME_MAX = 200  # characters of a study, model, task or stimulus name: well under a file name's 255 bytes


def visible(text: str | None) -> str:
    """User and model text made safe to print: control and format characters (escape sequences,
    bidirectional overrides) shown as escapes; newlines and tabs kept."""
    if text is None:
        return ""
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf") else escaped(ch) for ch in text)


def escaped(ch: str) -> str:
    """One character as its Python escape (`\\x1b`, `\\u202e`): printable ASCII, whatever it was."""
    return ch.encode("unicode_escape").decode("ascii")


def check_name(value: str) -> str:
    """A name of at most NAME_MAX printable characters (no control characters: ESC, NUL, newlines)."""
    if not value or len(value) > NAME_MAX or not value.isprintable():
        shown = repr(value[:60]) + ("..." if len(value) > 60 else "")  # repr escapes what is not printable
        raise ValueError(f"must be 1 to {NAME_MAX} printable characters (no control characters such as ESC, NUL or newlines); got {len(value)} characters: {shown}")
    return value
