"""Resolve a reference (id, placement, separator, variant, parameters) against the library into
the AppliedStimulus a condition applies and the log records."""

from __future__ import annotations

from typing import Any

from ..core.errors import UserError
from .library import StimulusLibrary
from .model import SEPARATORS, AppliedStimulus
from .placements import PLACEMENTS
from .renderers import RENDERERS, validate_params

DEFAULT_PLACEMENT = "suffix"


def resolve(
    library: StimulusLibrary,
    stimulus_id: str,
    *,
    placement: str | None = None,
    separator: str | None = None,
    variant: str | None = None,
    params: dict[str, Any] | None = None,
) -> AppliedStimulus:
    """Fix a library item's text, placement, separator and parameters as a condition will apply it.

    The separator is the reference's, else (for prefix and suffix) the family's, which is the
    source paper's, else the placement's own default."""
    item = library.get(stimulus_id)
    chosen = placement or item.placement or DEFAULT_PLACEMENT
    if chosen not in PLACEMENTS:
        raise UserError(PLACEMENTS.unknown_message(chosen), field="placement")
    where = PLACEMENTS.get(chosen)
    renderer = RENDERERS.get(item.renderer)
    if renderer.placements is not None and chosen not in renderer.placements:
        raise UserError(f"{item.id} can only be placed as {', '.join(sorted(renderer.placements))}, not {chosen!r}", field="placement")
    if where.program is not None and (renderer.placements is None or chosen not in renderer.placements):
        raise UserError(f"placement {chosen!r} needs a stimulus made for it, and {item.id} is not", field="placement")
    if separator is not None and separator not in SEPARATORS:
        raise UserError(f"unknown separator {separator!r} (allowed: {', '.join(SEPARATORS)})", field="separator")
    chosen_separator = separator or (item.separator if where.inherits_separator else None) or where.default_separator
    checked = validate_params(item.id, renderer, params or {})
    rendered = renderer.render(item, library.family(item.family), checked, variant)
    return AppliedStimulus(
        id=item.id,
        family=item.family,
        version=item.version,
        text=rendered.text,
        placement=chosen,
        separator=chosen_separator,  # type: ignore[arg-type]
        variant=variant,
        params=rendered.params if rendered.params is not None else checked.model_dump(mode="json"),
        parts=rendered.parts,
    )
