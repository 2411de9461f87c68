"""Answer parsers on the shapes small models actually answer in."""

from __future__ import annotations

import pytest

from workbench.scoring.metrics import PARSERS


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("8 + 63 = 71", "8", "71"),
        ("The answer is 1,200.", "1200", "1200"),
        ("-3.50 then 2", "-3.5", "2"),
        ("no digits here", "no digits here", "no digits here"),
    ],
)
def test_number_parsers(text: str, first: str, last: str) -> None:
    assert PARSERS.get("number")(text) == first
    assert PARSERS.get("last_number")(text) == last
