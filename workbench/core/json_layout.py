"""The log's JSON layouts, each from one encoder built once.

`sorted_json` is the text of `json.dumps(value, sort_keys=True, default=str)` and `plain_json` that
of `json.dumps(value)`. json.dumps builds a new encoder on every call (the C one too, behind
JSONEncoder.encode), which was over a third of the time of a cache key and of each JSON column of
a trial's rows. The log's values are never circular, so the encoders skip that check."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

try:
    from json.encoder import c_make_encoder
except ImportError:  # pragma: no cover - an interpreter without the C accelerator
    c_make_encoder = None


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encoder(sort_keys: bool, default: Any) -> Any:
    if c_make_encoder is None:  # pragma: no cover
        slow = json.JSONEncoder(sort_keys=sort_keys, default=default)
        return lambda value: slow.encode(value)
    encode = c_make_encoder(None, default, encode_basestring_ascii, None, ": ", ", ", sort_keys, False, True)
    return lambda value: "".join(encode(value, 0))


sorted_json = _encoder(True, str)
sorted_json.__doc__ = "json.dumps(value, sort_keys=True, default=str)"
plain_json = _encoder(False, _refuse)
plain_json.__doc__ = "json.dumps(value)"
