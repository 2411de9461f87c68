"""Result records: the frozen dataclasses of statistics and costs, turned into plain dicts for
JSON, tables and exports in one way."""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any


def finite(data: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON has no NaN or infinity: they become null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}


class Record:
    """Mixin for dataclasses: `to_dict` gives the fields (nested records as dicts)."""

    def to_dict(self, json_safe: bool = False) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        return finite(data) if json_safe else data
