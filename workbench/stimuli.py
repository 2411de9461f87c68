"""The stimulus library: load `stimuli/*.yaml`, resolve references, apply stimuli to messages.

Applying a stimulus is a pure function of (messages, stimulus, parameters) returning new messages;
placements are registered functions, so a family's data names how it is applied.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import UserError
from .messages import Message, Messages, last_index, replace_at
from .paths import data_dir
from .registry import Registry

SEPARATORS: dict[str, str] = {"none": "", "space": " ", "newline": "\n"}
Separator = Literal["none", "space", "newline"]


class StimulusItem(BaseModel):
    """One stimulus of a family file. Either `citation` (inherited from the family) or `authored`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str | None = None
    family: str = ""
    version: str = ""
    valence: str | None = None
    theory: list[str] = Field(default_factory=list)
    variants: dict[str, str] = Field(default_factory=dict)
    citation: str | None = None
    authored: bool = False
    placement: str | None = None
    separator: Separator | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    compound_of: list[str] = Field(default_factory=list)
    code_pnum: int | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _cited_or_authored(self) -> StimulusItem:
        if not self.citation and not self.authored:
            raise ValueError("needs a `citation` (published material) or `authored: true` (the workbench's or user's own)")
        return self

    def text_for(self, variant: str | None) -> str:
        if variant is None or variant == "paper":
            if self.text is None:
                raise UserError(f"stimulus {self.id} has no plain text", field="stimuli")
            return self.text
        if variant not in self.variants:
            allowed = ", ".join(["paper", *self.variants])
            raise UserError(f"stimulus {self.id} has no variant {variant!r} (allowed: {allowed})", field="stimuli")
        return self.variants[variant]


class FamilyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family: str
    version: str
    citation: str | None = None
    authored: bool = False
    defaults: dict[str, str] = Field(default_factory=dict)
    items: list[dict[str, Any]]


class AppliedStimulus(BaseModel):
    """A stimulus as a condition applies it: what the log records for each trial."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    family: str
    version: str
    text: str
    placement: str
    separator: Separator
    variant: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class StimulusLibrary:
    def __init__(self, items: Iterable[StimulusItem]) -> None:
        self._items: dict[str, StimulusItem] = {}
        for item in items:
            if item.id in self._items:
                raise UserError(f"stimulus id {item.id!r} is defined twice", field="id")
            self._items[item.id] = item

    def __contains__(self, stimulus_id: object) -> bool:
        return stimulus_id in self._items

    def ids(self) -> list[str]:
        return sorted(self._items)

    def get(self, stimulus_id: str) -> StimulusItem:
        try:
            return self._items[stimulus_id]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(stimulus_id, self._items, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown stimulus {stimulus_id!r}{hint}", field="stimuli") from None

    def items(self, family: str | None = None) -> list[StimulusItem]:
        return [self._items[k] for k in sorted(self._items) if family is None or self._items[k].family == family]

    def with_files(self, paths: Sequence[Path]) -> StimulusLibrary:
        return StimulusLibrary([*self._items.values(), *(item for p in paths for item in load_family_file(p))])


def load_family_file(path: Path) -> list[StimulusItem]:
    """Parse one family file; errors name the file, the item and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read stimulus file: {exc}", file=str(path)) from None
    try:
        family = FamilyFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(err["msg"], file=str(path), field=_loc(err["loc"])) from None
    items = []
    for index, entry in enumerate(family.items):
        merged = {
            "family": family.family,
            "version": family.version,
            "citation": family.citation,
            "authored": family.authored,
            **{k: v for k, v in family.defaults.items() if k in ("placement", "separator")},
            **entry,
        }
        try:
            items.append(StimulusItem.model_validate(merged))
        except ValidationError as exc:
            err = exc.errors()[0]
            label = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
            field = _loc(err["loc"]) or "item"
            raise UserError(err["msg"], file=str(path), field=f"items[{index}] ({label}).{field}") from None
    return items


def _loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.cache
def builtin_library() -> StimulusLibrary:
    return StimulusLibrary(item for path in sorted(data_dir("stimuli").glob("*.yaml")) for item in load_family_file(path))


# ---------------------------------------------------------------------------------------------
# Placements: pure functions (messages, stimulus) -> messages.

Placement = Callable[[Messages, AppliedStimulus], Messages]
PLACEMENTS: Registry[Placement] = Registry("placement")

# The slot of the user message that EmotionPrompt/NegativePrompt attach to: the task instruction.
INSTRUCTION_SLOT = "instruction"


def _edit_user_text(messages: Messages, edit: Callable[[str], str]) -> Messages:
    index = last_index(messages, "user")
    if index is None:
        raise ValueError("the prompt has no user message to attach the stimulus to")
    message = messages[index]
    if message.slot(INSTRUCTION_SLOT) is not None:
        updated = message.with_slot(INSTRUCTION_SLOT, edit(message.slot(INSTRUCTION_SLOT) or ""))
    else:
        updated = Message.text(message.role, edit(message.content))
    return replace_at(messages, index, updated)


@PLACEMENTS.register("suffix")
def place_suffix(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    sep = SEPARATORS[stimulus.separator]
    return _edit_user_text(messages, lambda text: f"{text}{sep}{stimulus.text}")


@PLACEMENTS.register("prefix")
def place_prefix(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    sep = SEPARATORS[stimulus.separator]
    return _edit_user_text(messages, lambda text: f"{stimulus.text}{sep}{text}")


@PLACEMENTS.register("system")
def place_system(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """Append to the system message (newline between), or open the conversation with one."""
    if messages and messages[0].role == "system":
        current = messages[0].content
        sep = SEPARATORS[stimulus.separator] if current else ""
        return replace_at(messages, 0, Message.text("system", f"{current}{sep}{stimulus.text}"))
    return (Message.text("system", stimulus.text), *messages)


def apply(messages: Messages, stimulus: AppliedStimulus) -> Messages:
    """Return new messages with `stimulus` applied at its placement; the input is left unchanged."""
    return PLACEMENTS.get(stimulus.placement)(messages, stimulus)


def apply_all(messages: Messages, stimuli: Sequence[AppliedStimulus]) -> Messages:
    for stimulus in stimuli:
        messages = apply(messages, stimulus)
    return messages


def resolve(
    library: StimulusLibrary,
    stimulus_id: str,
    *,
    placement: str | None = None,
    separator: str | None = None,
    variant: str | None = None,
    params: dict[str, Any] | None = None,
) -> AppliedStimulus:
    """Fix a library item's text, placement and separator as a condition will apply it."""
    item = library.get(stimulus_id)
    chosen_placement = placement or item.placement or "suffix"
    if chosen_placement not in PLACEMENTS:
        raise UserError(PLACEMENTS.unknown_message(chosen_placement), field="placement")
    chosen_separator = separator or item.separator or ("newline" if chosen_placement == "system" else "space")
    if chosen_separator not in SEPARATORS:
        raise UserError(f"unknown separator {chosen_separator!r} (allowed: {', '.join(SEPARATORS)})", field="separator")
    return AppliedStimulus(
        id=item.id,
        family=item.family,
        version=item.version,
        text=item.text_for(variant),
        placement=chosen_placement,
        separator=chosen_separator,  # type: ignore[arg-type]
        variant=variant,
        params=params or {},
    )
