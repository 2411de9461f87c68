"""The log's JSON layout of a value: keys sorted, values JSON lacks written as their str.

The same text as `json.dumps(value, sort_keys=True, default=str)`, from one encoder built once:
json.dumps builds a new encoder on every call given arguments, which was over a third of the
time of a cache key (one per model call)."""

from __future__ import annotations

import json
from typing import Any

_SORTED = json.JSONEncoder(sort_keys=True, default=str)


def sorted_json(value: Any) -> str:
    return _SORTED.encode(value)
