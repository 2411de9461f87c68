"""Small things a new user tries: `--db` naming a directory, `models check --api-base`, and
tables printed whole when the output is not a wide terminal."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli, run_json, sim_study, write_study
from workbench.core.errors import UserError
from workbench.core.paths import DEFAULT_DB, resolve_db_path

NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_-.", min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))


def _tiny_study(tmp_path: Path) -> Path:
    return write_study(tmp_path / "s.yaml", sim_study(tasks=[{"task": "ii/sum", "n": 2}]))


def test_db_naming_an_existing_directory_logs_inside_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs_dir"
    runs.mkdir()
    out = run_json("run", str(_tiny_study(tmp_path)), "--db", str(runs))
    assert out["db"] == str(runs / DEFAULT_DB.name) and (runs / DEFAULT_DB.name).is_file()
    listed = run_cli("runs", "list", "--db", str(runs))
    assert listed.returncode == 0 and out["run_id"] in listed.stdout


def test_db_with_a_trailing_slash_is_a_directory_created_for_the_log(tmp_path: Path) -> None:
    out = run_json("run", str(_tiny_study(tmp_path)), "--db", f"{tmp_path / 'newruns'}/")
    assert (tmp_path / "newruns").is_dir() and (tmp_path / "newruns" / DEFAULT_DB.name).is_file()
    assert out["db"] == str(tmp_path / "newruns" / DEFAULT_DB.name)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(NAMES, min_size=1, max_size=3), slash=st.booleans())
def test_resolve_db_path_reads_a_trailing_slash_as_a_directory(tmp_path: Path, parts: list[str], slash: bool) -> None:
    given_path = "/".join([str(tmp_path / "fresh"), *parts]) + ("/" if slash else "")
    resolved = resolve_db_path(given_path)
    expected = Path(given_path.rstrip("/"))
    assert resolved == (expected / DEFAULT_DB.name if slash else expected)
    assert not (tmp_path / "fresh").exists(), "resolving creates nothing"


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rest=st.lists(NAMES, min_size=1, max_size=2), slash=st.booleans())
def test_db_through_a_file_is_a_one_line_error(tmp_path: Path, rest: list[str], slash: bool) -> None:
    blocking = tmp_path / "notes.txt"
    blocking.write_text("not a directory")
    given_path = "/".join([str(blocking), *rest]) + ("/" if slash else "")
    with pytest.raises(UserError):
        resolve_db_path(given_path)
    result = run_cli("runs", "list", "--db", given_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and f"--db: {blocking} is a file" in result.stderr


@pytest.mark.parametrize("given_path", ["x" * 300, "runs/a\x00b.duckdb"], ids=["name too long", "NUL byte"])
def test_db_naming_no_file_is_a_one_line_error(given_path: str) -> None:
    with pytest.raises(UserError, match="^--db: the log path .* is (too long|not a valid file name)"):
        resolve_db_path(given_path)
    if "\x00" not in given_path:  # a process argument cannot hold a NUL byte
        result = run_cli("runs", "list", "--db", given_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0


def test_tables_print_whole_at_80_columns(tmp_path: Path) -> None:
    result = run_cli("tasks", "list", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "metric" in line)
    assert "n_available" in header and "…" not in result.stdout
    stimuli = run_cli("stimuli", "list", env={"COLUMNS": "80"})
    assert stimuli.returncode == 0 and "…" not in stimuli.stdout


def test_models_check_refuses_credentials_in_the_api_base() -> None:
    result = run_cli("models", "check", "openai/mine", "--api-base", "http://user:secret@127.0.0.1:9/v1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--api-base: credentials in the URL" in result.stderr and "secret" not in result.stderr


@pytest.mark.local_model
def test_models_check_reaches_an_openai_compatible_server_through_api_base(local_server: Any) -> None:
    """The embedded llama.cpp server is an OpenAI-compatible server like any other: reached by
    --api-base alone, with no OPENAI_API_BASE in the environment."""
    env = {"OPENAI_API_KEY": "sk-local-no-key", "OPENAI_API_BASE": "", "OPENAI_BASE_URL": ""}
    out = run_json("models", "check", "openai/any-name", "--api-base", local_server.api_base, env=env, timeout=300)
    assert out["ok"] is True and out["answer"], out
