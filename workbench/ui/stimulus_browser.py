"""The stimulus library browser (placeholder until the ui-stimuli part lands)."""

from __future__ import annotations

from typing import Any


def stimulus_browser(task: str | None, key: str = "stimuli", study_path: str | None = None) -> dict[str, Any] | None:
    return None
