"""Shared fixtures. Tests use the real parts: the embedded llama.cpp server, DuckDB files on
disk, subprocesses for the CLI. The model cache (weights, server build) is the user's own, so
the expensive preparation happens once per machine."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server from Debian's binaries for the whole session (tests/postgres.py):
    in a temporary directory, on 127.0.0.1 only, stopped and removed at the end. Skipped only
    where the binaries are absent (`.ci/run` installs them, so CI runs it)."""
    from postgres import bin_dir, postgres_server

    binaries = bin_dir()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/<version>/bin/initdb); .ci/run installs Debian's postgresql")
    with postgres_server(binaries) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres: Any) -> str:
    """postgresql://workbench@127.0.0.1:PORT/search: a trusted role, no password."""
    return str(postgres.url)


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


@pytest.fixture
def ui_for(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """ui_for(db, env=None) -> tests/browser.py's UI: `streamlit run app.py` serving the log `db`
    and a headless Chromium on it, both stopped after the test; a failing test leaves a
    screenshot of every browser it opened in the artifacts folder."""
    from browser import UI, browser, ui_server

    with contextlib.ExitStack() as stack:
        opened: list[Any] = []

        def open_ui(db: Path, env: dict[str, str] | None = None, *, performance_log: bool = False) -> Any:
            server = stack.enter_context(ui_server(db, env))
            ui = UI(stack.enter_context(browser(performance_log=performance_log)), server)
            opened.append(ui)
            return ui

        request.node.opened_uis = opened
        yield open_ui


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Screenshot the browsers of a failed UI test (see ui_for) before they close."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for i, ui in enumerate(getattr(item, "opened_uis", ())):
            with contextlib.suppress(Exception):  # a dead browser has nothing to show
                ui.screenshot(f"FAILED-{item.name}-{i}")
