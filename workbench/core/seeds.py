"""Every seed the workbench derives: stable across processes and machines (unlike hash()), so a
study's trials, demos and repeats are the same wherever it runs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, identical across processes and machines (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def query_seed(study_seed: int, task_id: str, item_id: str, repeat: int) -> int:
    """The seed of one query: shared by its conditions (paired), new for each repeat."""
    return stable_seed(study_seed, task_id, item_id, repeat) % (2**31 - 1)


def repeat_seed(seed: Any, repeat: int) -> Any:
    """The seed a repeat sends when the model's params set one: that seed for repeat 0 (a
    single-repeat study sends what it always sent), one derived from it and the repeat index after,
    so repeats are new samples and not one request sent again. None (no seed) stays None."""
    return seed if repeat == 0 or seed is None else stable_seed(seed, "repeat", repeat) % (2**31 - 1)


def draw_demos(pool: Sequence[T], k: int, seed: int) -> list[T]:
    """k demos resampled per query (as the source papers do), seeded by the trial's seed."""
    if k == 0:
        return []
    return random.Random(seed).sample(pool, min(k, len(pool)))
