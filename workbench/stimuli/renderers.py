"""Renderers: how a family turns an item and a condition's parameters into the text a placement
inserts. A family file names its renderer (`defaults.renderer`, `text` unless said otherwise), so
parameterised families (SAC levels, Big Five intensities) are data plus one registered function,
never branches on family names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.errors import UserError, first_problem
from ..core.registry import Registry
from .model import Family, StimulusItem

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Strict):
    """A stimulus that takes no parameters."""


class NoFields(Strict):
    """An item with no fields beyond the common ones."""


@dataclass(frozen=True)
class Rendered:
    text: str
    parts: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None  # the parameters as resolved (defaults filled from the item), if not as given


def no_variant(item: StimulusItem, variant: str | None) -> None:
    if variant is not None:
        raise UserError(f"stimulus {item.id} is rendered from parameters and has no text variants", field="variant")


RenderFn = Callable[[StimulusItem, Family, Any, "str | None"], Rendered]
"""(item, family, validated params, variant) -> Rendered. Pure."""


@dataclass(frozen=True)
class Renderer:
    render: RenderFn
    params: type[BaseModel] = NoParams
    item_fields: type[BaseModel] = NoFields
    family_data: type[BaseModel] | None = None
    needs_text: bool = False  # items must carry `text`
    placements: frozenset[str] | None = None  # the placements it can be used with; None: any text placement
    check: Callable[[StimulusItem, Family], None] | None = None  # cross-checks an item against its family's data


RENDERERS: Registry[Renderer] = Registry("renderer")


def fields_of(item: StimulusItem, model: type[M]) -> M:
    """An item's renderer-specific fields, typed (validated once already when the file loaded)."""
    return model.model_validate(item.data)


def data_of(family: Family, model: type[M]) -> M:
    return model.model_validate(family.data)


def validate_params(stimulus_id: str, renderer: Renderer, params: dict[str, Any]) -> BaseModel:
    """Check a condition's parameters against the renderer's schema; errors name the parameter."""
    try:
        return renderer.params.model_validate(params)
    except ValidationError as exc:
        problem = first_problem(exc, renderer.params)
        name = problem.path or "params"
        allowed = ", ".join(renderer.params.model_fields) or "none"
        if problem.kind == "extra_forbidden":
            message = f"{stimulus_id} has no parameter {name!r} (parameters: {allowed})"
        elif problem.kind == "missing":
            message = f"{stimulus_id} needs parameter {name!r} (parameters: {allowed})"
        else:
            hint = " (a list of values belongs in a `sweep:` block)" if isinstance(problem.input, list) else ""
            message = f"{stimulus_id} parameter {name!r}: {problem.message}, got {problem.input!r}{hint}"
        raise UserError(message, field=f"params.{name}") from None


def _render_text(item: StimulusItem, family: Family, params: Any, variant: str | None) -> Rendered:
    return Rendered(text=item.text_for(variant))


RENDERERS.add("text", Renderer(render=_render_text, needs_text=True))
