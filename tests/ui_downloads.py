"""What a page offers for download in AppTest: AppTest keeps a download's bytes in its media file
manager, out of the test's reach, and keeps a deferred one's callable there uncalled. This one
records both by the download's file name, as the browser would get them."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import app_test


class Downloads(dict[str, Any]):
    """file name -> bytes, or the callable that makes them on click."""

    def content(self, name: str) -> bytes:
        found = self[name]
        data = found() if callable(found) else found
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def recorded_downloads(monkeypatch: pytest.MonkeyPatch) -> Downloads:
    """The downloads the AppTests run from now on offer (the test's monkeypatch undoes it)."""
    seen = Downloads()

    class Recording(MediaFileManager):
        def add(self, path_or_data: Any, mimetype: str, coordinates: str, file_name: str | None = None, is_for_static_download: bool = False) -> str:
            if is_for_static_download and file_name:
                seen[file_name] = path_or_data
            return super().add(path_or_data, mimetype, coordinates, file_name=file_name, is_for_static_download=is_for_static_download)

        def add_deferred(self, data_callable: Any, mimetype: str | None, coordinates: str, file_name: str | None = None, *, element_id: str = "") -> str:
            if file_name:
                seen[file_name] = data_callable
            return super().add_deferred(data_callable, mimetype, coordinates, file_name=file_name, element_id=element_id)

    monkeypatch.setattr(app_test, "MediaFileManager", Recording)
    return seen
