"""Load the stimulus library: `stimuli/*.yaml` (one file per family) plus any user files in the
same schema. Every problem names the file, the item and the field."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.errors import UserError, validation_error
from ..core.input_files import load_yaml
from ..core.registry import Registry
from ..core.paths import data_dir
from ..plugins import load_builtins
from .model import Family, FamilyFile, StimulusItem
from .renderers import RENDERERS

_COMMON_FIELDS = set(StimulusItem.model_fields) - {"data"}
COMPOUND_VARIANT = "compound"


@dataclass(frozen=True)
class LoadedFile:
    family: Family
    items: list[StimulusItem]
    replaces: bool


class StimulusLibrary:
    def __init__(self, items: Iterable[StimulusItem], families: dict[str, Family] | None = None) -> None:
        self._families = dict(families or {})
        self._items: dict[str, StimulusItem] = {}
        for item in items:
            if item.id in self._items:
                raise UserError(f"stimulus id {item.id!r} is defined twice", field="id")
            self._items[item.id] = item
        for item in list(self._items.values()):
            if item.compound_of:
                self._items[item.id] = self._with_compound(item)

    def _with_compound(self, item: StimulusItem) -> StimulusItem:
        """Add the literal concatenation of the items a compound names as its `compound` variant."""
        missing = [part for part in item.compound_of if part not in self._items]
        if missing:
            raise UserError(f"stimulus {item.id} is a compound of unknown stimuli {', '.join(missing)}", field="compound_of")
        text = " ".join(self._items[part].text_for(None) for part in item.compound_of)
        return item.model_copy(update={"variants": {**item.variants, COMPOUND_VARIANT: text}})

    def __contains__(self, stimulus_id: object) -> bool:
        return stimulus_id in self._items

    def ids(self) -> list[str]:
        return sorted(self._items)

    def get(self, stimulus_id: str) -> StimulusItem:
        try:
            return self._items[stimulus_id]
        except KeyError:
            close = difflib.get_close_matches(stimulus_id, self._items, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f" (families: {', '.join(self.families())}; `workbench stimuli list` shows every id)"
            raise UserError(f"unknown stimulus {stimulus_id!r}{hint}", field="stimuli") from None

    def items(self, family: str | None = None) -> list[StimulusItem]:
        return [self._items[k] for k in sorted(self._items) if family is None or self._items[k].family == family]

    def family(self, name: str) -> Family:
        try:
            return self._families[name]
        except KeyError:
            raise UserError(f"unknown stimulus family {name!r} (families: {', '.join(self.families())})", field="family") from None

    def families(self) -> list[str]:
        return sorted(self._families)

    def with_files(self, paths: Sequence[Path]) -> StimulusLibrary:
        """This library plus user files; a file with `replaces: true` replaces its family's items."""
        items = dict(self._items)
        families = dict(self._families)
        for path in paths:
            loaded = load_family_file(path, self)
            name = loaded.family.name
            if loaded.replaces:
                items = {k: v for k, v in items.items() if v.family != name}
                families[name] = _inherit(families.get(name), loaded.family)
            elif name in families and loaded.family.data:
                raise UserError(
                    f"family {name!r} is already defined by {families[name].file}; set `replaces: true` to replace it",
                    file=str(path), field="data",
                )
            else:
                families.setdefault(name, loaded.family)
            for item in loaded.items:
                if item.id in items:
                    raise UserError(f"stimulus id {item.id!r} is already defined; choose another id", file=str(path), field="items")
                items[item.id] = item
        return StimulusLibrary(items.values(), families)


def _inherit(builtin: Family | None, replacement: Family) -> Family:
    """A replacing file keeps the built-in family's data (templates, scales) unless it brings its own."""
    if builtin is None or replacement.data:
        return replacement
    return replacement.model_copy(update={"data": builtin.data})


def load_family_file(path: Path, base: StimulusLibrary | None = None) -> LoadedFile:
    """Parse and validate one family file; errors name the file, the item and the field.

    A file without `data` for a family `base` already has (a user's extra or replacement phrases)
    is checked against that family's data, which it inherits."""
    label = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise UserError("a stimulus file must be a mapping with family, version and items", file=label)
    try:
        spec = FamilyFile.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, file=label, model=FamilyFile) from None
    family = Family(
        name=spec.family, version=spec.version, citation=spec.citation, authored=spec.authored,
        inspired_by=spec.inspired_by, references=spec.references, notes=spec.notes, source=spec.source, data=spec.data, file=label,
    )
    if not spec.data and base is not None and spec.family in base.families():
        family = family.model_copy(update={"data": base.family(spec.family).data})
    items = [_load_item(entry, index, spec, family) for index, entry in enumerate(spec.items)]
    _check_family_data(items, family)
    for index, item in enumerate(items):
        check = RENDERERS.get(item.renderer).check
        if check is not None:
            try:
                check(item, family)
            except UserError as exc:
                raise UserError(exc.detail, file=label, field=f"items[{index}] ({item.id}).{exc.field or 'item'}") from None
    return LoadedFile(family=family, items=items, replaces=spec.replaces)


def _load_item(entry: Any, index: int, spec: FamilyFile, family: Family) -> StimulusItem:
    label = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
    where = f"items[{index}] ({label})"
    if not isinstance(entry, dict):
        raise UserError("an item must be a mapping with at least an id", file=family.file, field=where)
    merged: dict[str, Any] = {
        "family": spec.family, "version": spec.version, "citation": spec.citation, "authored": spec.authored,
        "inspired_by": spec.inspired_by, **spec.defaults, **entry,
    }
    renderer_name = merged.get("renderer", "text")
    if renderer_name not in RENDERERS:
        raise UserError(RENDERERS.unknown_message(str(renderer_name)), file=family.file, field=f"{where}.renderer")
    renderer = RENDERERS.get(renderer_name)
    extra = {k: v for k, v in merged.items() if k not in _COMMON_FIELDS}
    common = {k: v for k, v in merged.items() if k in _COMMON_FIELDS}
    try:
        fields = renderer.item_fields.model_validate(extra)
    except ValidationError as exc:  # an item's keys are the common ones and its renderer's
        allowed = sorted(_COMMON_FIELDS - {"family"}) + list(renderer.item_fields.model_fields)
        raise validation_error(
            exc, file=family.file, field=where, model=renderer.item_fields, wording={"extra_forbidden": "unknown field {key!r}"}, allowed=allowed
        ) from None
    try:
        item = StimulusItem.model_validate({**common, "data": fields.model_dump(mode="json")})
    except ValidationError as exc:
        raise validation_error(exc, file=family.file, field=where, model=StimulusItem, whole="item") from None
    if renderer.needs_text and not item.text:
        raise UserError("is required (the stimulus text)", file=family.file, field=f"{where}.text")
    return item


def _check_family_data(items: list[StimulusItem], family: Family) -> None:
    for name in sorted({item.renderer for item in items}):
        model: type[BaseModel] | None = RENDERERS.get(name).family_data
        if model is None:
            continue
        try:
            model.model_validate(family.data)
        except ValidationError as exc:
            raise validation_error(exc, file=family.file, field="data", model=model) from None


# Directories of family files that plugins add (a stimulus family plugin registers its own).
FAMILY_DIRS: Registry[Path] = Registry("stimulus family directory")


@functools.cache
def builtin_library() -> StimulusLibrary:
    """The bundled families (`stimuli/*.yaml`), then those of the plugins' FAMILY_DIRS."""
    load_builtins()  # the renderers the family files name, and the plugins' directories
    items: list[StimulusItem] = []
    known: dict[str, Family] = {}
    plugin_files = [path for name in FAMILY_DIRS for path in sorted(FAMILY_DIRS.get(name).glob("*.yaml"))]
    for path in [*sorted(data_dir("stimuli").glob("*.yaml")), *plugin_files]:
        loaded = load_family_file(path)
        if loaded.family.name in known:
            raise UserError(f"family {loaded.family.name!r} is also defined by {known[loaded.family.name].file}", file=str(path), field="family")
        known[loaded.family.name] = loaded.family
        items.extend(loaded.items)
    return StimulusLibrary(items, known)
