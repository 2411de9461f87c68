"""The stimulus browser (Design page): pick a stimulus by family, see its text, its citation or
authored label and the exact messages a condition with it sends on an example of the task, set
its parameters and placement, and add it as a condition.

Every text here is the library's or the user's: shown as text, never as markdown. A stimulus's
text and the messages are shown in read-only text areas, which keep every character (st.text and
st.code strip leading and trailing whitespace, and a prompt's layout is part of what is sent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from .. import api

EXAMPLES_SHOWN = 5  # the examples of the task a user can preview (the preview's default draw)
SHORT_TEXT = 60  # characters of a stimulus's text in its selectbox label
DEFAULT_VARIANT = "paper"  # the text a reference without `variant` applies


def _label(entry: api.CatalogEntry) -> str:
    if entry.text is None:
        return f"{entry.id}: (rendered from {', '.join(p.name for p in entry.parameters) or 'its data'})"
    text = " ".join(entry.text.split())
    return f"{entry.id}: {text[:SHORT_TEXT]}{'...' if len(text) > SHORT_TEXT else ''}"


# -- one widget per parameter kind (api.Parameter.kind) ------------------------------------------
def _range(param: api.Parameter, key: str, cast: Callable[[Any], Any], step: Any) -> Any:
    low, high = cast(param.minimum), cast(param.maximum)
    value = cast(param.default) if param.default is not None else low
    return st.slider(param.name, min_value=low, max_value=high, value=value, step=step, key=key)


def _integer(param: api.Parameter, key: str) -> Any:
    if param.minimum is None or param.maximum is None:
        return st.number_input(param.name, value=int(param.default or 0), step=1, key=key)
    return _range(param, key, int, 1)


def _number(param: api.Parameter, key: str) -> Any:
    if param.minimum is None or param.maximum is None:
        return st.number_input(param.name, value=float(param.default or 0.0), key=key)
    return _range(param, key, float, 0.05)


def _choice(param: api.Parameter, key: str) -> Any:
    index = param.choices.index(param.default) if param.default in param.choices else 0
    return st.selectbox(param.name, param.choices, index=index, key=key)


def _text(param: api.Parameter, key: str) -> Any:
    value = st.text_input(param.name, value=param.default or "", key=key, help="Empty: the default.")
    return value or None


def _list(param: api.Parameter, key: str) -> Any:
    value = st.text_input(f"{param.name} (comma-separated)", value=", ".join(param.default or []), key=key, help="Empty: the default.")
    return [part.strip() for part in value.split(",") if part.strip()] or None


def _flag(param: api.Parameter, key: str) -> Any:
    return st.checkbox(param.name, value=bool(param.default), key=key)


PARAMETER_WIDGETS: dict[str, Callable[[api.Parameter, str], Any]] = {
    "integer": _integer, "number": _number, "choice": _choice, "text": _text, "list": _list, "flag": _flag,
}


def _reference(entry: api.CatalogEntry, key: str) -> dict[str, Any]:
    """The stimulus reference the widgets describe, as a study file writes it: its parameters at
    the top level, each only where it is required or differs from its default."""
    reference: dict[str, Any] = {"id": entry.id}
    for param in entry.parameters:
        value = PARAMETER_WIDGETS[param.kind](param, f"{key}.param.{entry.id}.{param.name}")
        if param.required or value != param.default:
            reference[param.name] = value
    placement = st.selectbox("Placement", entry.placements, key=f"{key}.placement.{entry.id}", help="The first is the stimulus's own.")
    if placement != entry.placements[0]:
        reference["placement"] = placement
    if entry.variants:
        variant = st.selectbox("Variant", (DEFAULT_VARIANT, *entry.variants), key=f"{key}.variant.{entry.id}")
        if variant != DEFAULT_VARIANT:
            reference["variant"] = variant
    return reference


def exact_text(label: str, text: str, key: str) -> None:
    """`text` exactly as it is, in a read-only text area (its value set on every run, as a keyed
    widget otherwise keeps its first)."""
    st.session_state[key] = text
    st.text_area(label, key=key, height="content", disabled=True)


def _show_preview(preview: api.ConditionPreview, key: str) -> None:
    for c, call in enumerate(preview.calls):
        if len(preview.calls) > 1:
            st.text(f"Call: {call.purpose}")
        for m, (role, content) in enumerate(call.messages):
            exact_text(role, content, f"{key}.message.{c}.{m}")
    if preview.placeholders:
        st.text("Answers the program has not got yet are shown as stand-ins (<...>).")


def stimulus_browser(task: str | None, key: str = "stimuli", study_path: str | None = None) -> dict[str, Any] | None:
    """Browse the stimulus library; return the reference of the stimulus to add as a condition
    when "Add as condition" is pressed, else None. `task`: whose example the messages are shown
    on; `study_path`: a study whose stimulus files (and task entry) count too."""
    try:
        catalogue = api.stimulus_catalogue(study_path)
    except api.UserError as exc:  # the study's own stimulus files do not load: browse the library's
        st.text(f"The study's stimulus files are left out: {exc}")
        catalogue, study_path = api.stimulus_catalogue(None), None
    family = st.selectbox("Family", catalogue.families, key=f"{key}.family")
    entries = {entry.id: entry for entry in catalogue.of_family(family)}
    chosen = st.selectbox("Stimulus", list(entries), format_func=lambda sid: _label(entries[sid]), key=f"{key}.stimulus.{family}")
    entry = entries[chosen]
    st.text(f"{entry.id}  (family {entry.family}, version {entry.version})")
    if entry.text is None:
        st.text("Its text is rendered from its parameters: see the messages below.")
    else:
        exact_text("Text", entry.text, f"{key}.text")
    st.text(f"Citation: {entry.citation}" if entry.citation else entry.authored or "")
    if entry.authored and entry.inspired_by:
        st.text(f"Inspired by: {entry.inspired_by}")
    reference = _reference(entry, key)
    loads = True
    if task is None:
        st.text("Choose a task to see the messages this condition sends.")
    else:
        example = st.selectbox("Example", range(EXAMPLES_SHOWN), key=f"{key}.example")
        try:
            _show_preview(api.preview_condition([reference], task, example=example, study_path=study_path), key)
        except api.UserError as exc:  # e.g. a HEART phrase, which only the HEART loop applies
            loads = False
            st.text("This condition does not load as set:")
            st.code(str(exc), language=None, wrap_lines=True)
    if st.button("Add as condition", key=f"{key}.add", disabled=not loads):
        return reference
    return None
