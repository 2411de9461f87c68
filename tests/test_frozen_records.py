"""The direct __init__ of the hot frozen dataclasses keeps what @dataclass(frozen=True) promises."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from workbench.core.frozen import direct_init
from workbench.core.identity import ByIdentity
from workbench.providers import ModelRequest


@direct_init
@dataclass(frozen=True)
class Sample:
    name: str
    count: int = 3
    tags: list[str] = field(default_factory=list)


def test_defaults_factories_equality_and_immutability_are_the_dataclasses() -> None:
    a, b = Sample("x"), Sample("x")
    assert a == b and hash(Sample("y", 1, ())) == hash(Sample("y", 1, ()))  # type: ignore[arg-type]
    assert (a.count, a.tags) == (3, []) and a.tags is not b.tags  # a new list per instance
    assert Sample("x", tags=["t"]).tags == ["t"] and Sample(name="z", count=5).count == 5
    assert dataclasses.replace(a, count=4) == Sample("x", 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.count = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]
    assert ModelRequest("m", (("user", "hi"),), ()) == ModelRequest(model="m", messages=(("user", "hi"),), params=(), repeat=0, purpose="answer")


def test_classes_it_cannot_build_exactly_are_refused() -> None:
    @dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None: ...

    @dataclass
    class Mutable:
        x: int

    @dataclass(frozen=True)
    class Hidden:
        x: int
        y: int = field(default=0, init=False)

    for cls in (Checked, Mutable, Hidden):
        with pytest.raises(TypeError):
            direct_init(cls)


def test_by_identity_computes_once_per_object_and_never_for_a_lookalike() -> None:
    made: list[object] = []
    memo: ByIdentity[int] = ByIdentity(limit=2)
    first, twin = [1], [1]
    assert memo.get(first, "len", lambda o: made.append(o) or len(o)) == 1
    assert memo.get(first, "len", lambda o: made.append(o) or len(o)) == 1 and made == [first]
    memo.get(twin, "len", lambda o: made.append(o) or len(o))  # equal, not the same object
    assert len(made) == 2 and made[1] is twin
    memo.get(first, "other tag", len)  # past the limit: starts afresh, still right
    assert memo.get(first, "len", lambda o: 7) == 7
