"""The log's timestamps: UTC, naive (DuckDB TIMESTAMP), to the microsecond."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

_EPOCH = datetime(1970, 1, 1)


def utc_now() -> datetime:
    """Now in UTC, naive. The epoch plus the clock's microseconds: the value of
    datetime.now(timezone.utc).replace(tzinfo=None) in half its time (a trial logs six)."""
    return _EPOCH + timedelta(microseconds=time.time_ns() // 1000)
