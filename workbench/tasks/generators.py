"""Seeded procedural item sources: helpers shared by the generated suites.

Two shapes: an enumerable domain (every possible input is listed, then put in a seeded order that
depends only on the inputs and the seed), and a random draw (inputs drawn from a seeded RNG until
n distinct). Either way the first k of a longer draw are the k of a shorter one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..core.errors import UserError
from . import CAPACITY, SOURCES, TaskItem, TaskSpec, seeded_order
from ..core.seeds import stable_seed

Example = tuple[str, tuple[str, ...]]  # (input, targets)
Domain = Callable[[TaskSpec], list[Example]]
Draw = Callable[[random.Random, dict], Example]


def check_capacity(spec: TaskSpec, n: int, capacity: int) -> None:
    """A study asking for more distinct examples than a generator has fails on its `n`."""
    if n > capacity:
        raise UserError(f"task {spec.id} can generate {capacity} distinct examples; asked for {n}", field="n")


def register_enumerated(name: str, domain: Domain) -> None:
    """Register a source over a finite list of (input, targets), drawn in a seeded order."""

    def source(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
        examples = domain(spec)
        order = seeded_order([text for text, _ in examples], spec.id, spec.version, seed)
        return [TaskItem(id=f"{k:05d}", input=examples[i][0], targets=examples[i][1]) for k, i in enumerate(order[:n])]

    SOURCES.add(name, source)
    CAPACITY.add(name, lambda spec: len(domain(spec)))


def register_drawn(name: str, draw: Draw, capacity: Callable[[TaskSpec], int]) -> None:
    """Register a source that draws random examples until n have distinct inputs."""

    def source(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
        check_capacity(spec, n, capacity(spec))
        return distinct_items(spec, n, seed, draw)

    SOURCES.add(name, source)
    CAPACITY.add(name, capacity)


def distinct_items(spec: TaskSpec, n: int, seed: int, make: Draw) -> list[TaskItem]:
    """Draw until n items with distinct inputs; item ids are their positions in the draw."""
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
