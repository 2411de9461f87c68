"""A bibliographic entry as data: the `references` of stimulus families and task suites.

Here, below the data models that carry it; workbench/export/bibliography.py renders it as BibTeX.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VENUE_FIELD = {"inproceedings": "booktitle", "article": "journal"}


class Reference(BaseModel):
    """One bibliographic entry. `author` lists "Last, First" names ("others" for et al.)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_:.-]*$")
    type: Literal["misc", "article", "inproceedings"] = "misc"
    author: list[str] = Field(min_length=1)
    title: str = Field(min_length=1)
    year: int
    eprint: str | None = None  # an arXiv identifier
    booktitle: str | None = None
    journal: str | None = None
    url: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _venue(self) -> Reference:
        needed = VENUE_FIELD.get(self.type)
        if needed and not getattr(self, needed):
            raise ValueError(f"a {self.type} reference needs `{needed}`")
        return self
