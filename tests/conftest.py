"""Shared fixtures. Tests use the real parts: the embedded llama.cpp server, DuckDB files on
disk, subprocesses for the CLI. The model cache (weights, server build) is the user's own, so
the expensive preparation happens once per machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def local_server() -> Iterator[Any]:
    """The embedded model server, prepared and started once for the whole test session.

    CLI subprocesses find it through the server state file in the cache and hold it too; the
    session's hold keeps it running between them.
    """
    from workbench.providers.local_models import ensure_server

    server = ensure_server("local/default", log=lambda m: print(m, file=sys.stderr))
    yield server
    server.release()


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `workbench ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def run_json(*args: str, **kwargs: Any) -> dict[str, Any]:
    result = run_cli(*args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sim_study(**overrides: Any) -> dict[str, Any]:
    """A small study on the simulated model; override any key."""
    study: dict[str, Any] = {
        "name": "simstudy",
        "models": [{"id": "sim/planted", "params": {"temperature": 0.0}, "simulate": {"accuracy": {"control": 0.5, "EP02": 0.8}}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "NP01", "stimuli": ["NP01"]}],
        "tasks": [{"task": "ii/sum", "n": 20}],
        "repeats": 1,
        "seed": 0,
        "concurrency": 4,
    }
    study.update(overrides)
    return study


def write_study(path: Path, study: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path
