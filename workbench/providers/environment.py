"""Which environment variables a model's provider reads its credentials from, and whether each is
set: names only, never a value (the Design page shows them).

litellm's `validate_environment(model)` knows the variables per provider but names only the
missing ones. To name them all it is asked once per model as if the environment were empty, through
a view of `os.environ` that is empty for the asking thread only (other threads, and litellm's other
readers, keep seeing the real environment), then each name is looked up in the real one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .kinds import DEFAULT_PROVIDER, PROVIDERS, kind_of


@dataclass(frozen=True)
class EnvVariable:
    """An environment variable a model needs, and whether it is set (its value is never read)."""

    model: str
    name: str
    set: bool

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "variable": self.name, "set": self.set}


class _EnvironView(MutableMapping[str, str]):
    """`os.environ`, except empty for the threads that asked (`hidden.on`); writes go to `os.environ`."""

    def __init__(self) -> None:
        self.hidden = threading.local()

    def _seen(self) -> Mapping[str, str]:
        return {} if getattr(self.hidden, "on", False) else os.environ

    def __getitem__(self, key: str) -> str:
        return self._seen()[key]

    def __setitem__(self, key: str, value: str) -> None:
        os.environ[key] = value

    def __delitem__(self, key: str) -> None:
        del os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._seen())

    def __len__(self) -> int:
        return len(self._seen())


class _OsView:
    """The `os` module with `environ` replaced."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


_LOCK = threading.Lock()


@lru_cache(maxsize=256)
def _variables_of(model_id: str) -> tuple[str, ...]:
    """The variables litellm reads for `model_id`: those it calls missing in an empty environment."""
    from .litellm_provider import _litellm

    utils = _litellm().utils
    view = _EnvironView()
    with _LOCK:  # one swap of litellm.utils' `os` at a time
        real_os = utils.os
        utils.os = _OsView(view)
        view.hidden.on = True
        try:
            found = utils.validate_environment(model=model_id)
        finally:
            view.hidden.on = False
            utils.os = real_os
    return tuple(found.get("missing_keys") or ())


def needs_credentials(model_id: str) -> bool:
    """Models served by litellm (not local/*, sim/* or a plugin's kind) read keys from the environment."""
    return kind_of(model_id) is PROVIDERS.get(DEFAULT_PROVIDER)


def credential_status(model_id: str) -> tuple[EnvVariable, ...]:
    """The variables `model_id` needs, each with whether it is set in this process's environment."""
    if not needs_credentials(model_id):
        return ()
    return tuple(EnvVariable(model_id, name, name in os.environ) for name in _variables_of(model_id))
