"""Seeded procedural item sources for tasks whose answers can be generated with certainty."""

from __future__ import annotations

import random

from . import SOURCES, TaskItem, TaskSpec, stable_seed


def _distinct_items(spec: TaskSpec, n: int, seed: int, make) -> list[TaskItem]:
    """Draw until n items with distinct inputs; item ids are content-addressed."""
    rng = random.Random(stable_seed(spec.id, spec.version, seed))
    seen: set[str] = set()
    items: list[TaskItem] = []
    attempts = 0
    while len(items) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"{spec.id} cannot produce {n} distinct items")
        text, targets = make(rng, spec.source_args)
        if text in seen:
            continue
        seen.add(text)
        items.append(TaskItem(id=f"{len(items):05d}", input=text, targets=tuple(targets)))
    return items


def _sum(rng: random.Random, args: dict) -> tuple[str, list[str]]:
    low, high = args.get("low", 0), args.get("high", 99)
    a, b = rng.randint(low, high), rng.randint(low, high)
    return f"{a} {b}", [str(a + b)]


@SOURCES.register("ii.sum")
def sum_items(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    return _distinct_items(spec, n, seed, _sum)
