"""The stimulus library's data types: items and families as loaded from `stimuli/*.yaml`, and a
stimulus as a condition applies it (what the log records). No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.references import Reference
from ..core.errors import UserError

SEPARATORS: dict[str, str] = {"none": "", "space": " ", "newline": "\n"}
Separator = Literal["none", "space", "newline"]

DEFAULT_VARIANT = "paper"


class StimulusItem(BaseModel):
    """One stimulus. Published material carries a `citation`; the workbench's or a user's own text
    carries `authored: true` (and may name what it is modelled on in `inspired_by`).

    Fields a family's renderer needs beyond these (SAC adjectives, HEART emotion, ...) live in
    `data`, validated by that renderer when the file is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    text: str | None = None
    family: str = ""
    version: str = ""
    valence: str | None = None
    theory: list[str] = Field(default_factory=list)
    variants: dict[str, str] = Field(default_factory=dict)
    citation: str | None = None
    authored: bool = False
    inspired_by: str | None = None
    placement: str | None = None
    separator: Separator | None = None
    renderer: str = "text"
    source: dict[str, Any] = Field(default_factory=dict)
    compound_of: list[str] = Field(default_factory=list)
    code_pnum: int | None = None
    notes: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cited_or_authored(self) -> StimulusItem:
        if not self.citation and not self.authored:
            raise ValueError("needs a `citation` (published material) or `authored: true` (the workbench's or user's own)")
        return self

    def text_for(self, variant: str | None) -> str:
        if variant is None or variant == DEFAULT_VARIANT:
            if self.text is None:
                raise UserError(f"stimulus {self.id} has no plain text")
            return self.text
        if variant not in self.variants:
            allowed = ", ".join([DEFAULT_VARIANT, *self.variants])
            raise UserError(f"stimulus {self.id} has no variant {variant!r} (allowed: {allowed})", field="variant")
        return self.variants[variant]


class Family(BaseModel):
    """A family's shared metadata and data (templates, scales) as its file declares them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    citation: str | None = None
    authored: bool = False
    inspired_by: str | None = None
    references: list[Reference] = Field(default_factory=list)  # structured: `workbench stimuli cite`, references.bib
    notes: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)  # where the family's texts come from (commit, files, status)
    data: dict[str, Any] = Field(default_factory=dict)
    file: str = ""


class FamilyFile(BaseModel):
    """The schema of a `stimuli/*.yaml` file (the built-in ones and a user's own alike)."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field(min_length=1)
    version: str = Field(min_length=1)
    citation: str | None = None
    authored: bool = False
    inspired_by: str | None = None
    references: list[Reference] = Field(default_factory=list)
    notes: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    replaces: bool = False  # a user file that replaces the built-in items of its family
    defaults: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    items: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_defaults(self) -> FamilyFile:
        unknown = set(self.defaults) - {"placement", "separator", "renderer"}
        if unknown:
            raise ValueError(f"unknown default {sorted(unknown)[0]!r} (allowed: placement, separator, renderer)")
        return self


class AppliedStimulus(BaseModel):
    """A stimulus as a condition applies it: what the log records for each trial.

    `text` is exactly what the placement inserts; `parts` holds any further rendered texts a
    placement uses (a feedback template, the multi-agent prompts); `params` are the resolved
    parameters, defaults included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    family: str
    version: str
    text: str
    placement: str
    separator: Separator
    variant: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    parts: dict[str, str] = Field(default_factory=dict)

    @property
    def varies_by_item(self) -> bool:
        """Whether `for_item` may give another stimulus than this one (a part is an item template)."""
        return any(key.startswith(ITEM_PART) for key in self.parts)

    def for_item(self, meta: Mapping[str, Any]) -> AppliedStimulus:
        """The stimulus as the trial of one task item applies it. A part named `item:text`,
        `item:params.<name>` or `item:<part>` is a format template over the item's metadata (SAC's
        "{trait_name}": the trait the item asks about) that sets the text, a parameter or a part;
        an item without the fields they name keeps the condition's rendering. Either way the
        templates are dropped: the trial records what it applied."""
        templates = {key.removeprefix(ITEM_PART): text for key, text in self.parts.items() if key.startswith(ITEM_PART)}
        if not templates:
            return self
        parts = {k: v for k, v in self.parts.items() if not k.startswith(ITEM_PART)}
        try:
            filled = {target: text.format_map(meta) for target, text in templates.items()}
        except KeyError:
            return self.model_copy(update={"parts": parts})
        params = {**self.params, **{t.removeprefix("params."): v for t, v in filled.items() if t.startswith("params.")}}
        parts.update({t: v for t, v in filled.items() if t != "text" and not t.startswith("params.")})
        return self.model_copy(update={"text": filled.get("text", self.text), "params": params, "parts": parts})


ITEM_PART = "item:"  # parts filled per trial from the task item (AppliedStimulus.for_item)
