"""A provider error that quotes an API key (as some providers' auth errors do) leaves no trace of
the key in the log or on the console: ProviderError masks secret environment values."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import sim_study, write_study
from workbench.providers import ProviderError, ProviderPool
from workbench.providers.redact import redact

KEY = "sk-test-0123456789abcdefSECRET"


class LeakyProvider:
    """Fails every call the way a provider rejecting a key does: by quoting it."""

    endpoint = "leaky"

    async def complete(self, request, context, attempt):  # noqa: ANN001 - the Provider protocol
        raise ProviderError(f"Incorrect API key provided: {KEY}. You can find your API key at https://example.invalid", kind="authentication", transient=False)

    def cache_scope(self, context) -> str:  # noqa: ANN001
        return ""

    async def close(self) -> None:
        return None


def _text_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE data_type = 'VARCHAR' AND database_name = current_database()"
    ).fetchall()


@pytest.mark.parametrize("as_json", [False, True])
def test_a_key_quoted_in_a_provider_error_is_neither_logged_nor_printed(tmp_path: Path, monkeypatch, capsys, as_json: bool) -> None:
    from workbench import cli
    from workbench.run import gateway

    monkeypatch.setenv("LEAKY_API_KEY", KEY)
    monkeypatch.setattr(gateway, "open_pool", lambda specs, log: ProviderPool(providers={s.id: LeakyProvider() for s in specs}))
    study = write_study(tmp_path / "s.yaml", sim_study())
    db = tmp_path / "log.duckdb"
    monkeypatch.setattr(sys, "argv", ["workbench", "run", str(study), "--db", str(db), *(["--json"] if as_json else [])])
    cli.main()
    printed = capsys.readouterr()
    assert KEY not in printed.out and KEY not in printed.err
    con = duckdb.connect(str(db), read_only=True)  # compacted: the file holds every row
    columns = _text_columns(con)
    assert ("calls", "error") in columns and ("trials", "error") in columns
    leaks = [(t, c) for t, c in columns if con.execute(f'SELECT count(*) FROM "{t}" WHERE contains("{c}", ?)', [KEY]).fetchone()[0]]
    assert leaks == []
    assert con.execute("SELECT count(*) FROM calls WHERE error LIKE 'Incorrect API key provided: ***.%'").fetchone()[0] == 60


def test_a_key_quoted_by_a_failing_program_is_not_logged(tmp_path: Path, monkeypatch) -> None:
    """A solver (a DSPy program, a multi-call stimulus) that raises is an errored trial; its message is masked too."""
    from types import SimpleNamespace

    from workbench.run import execute
    from workbench.run import scheduler as runner

    async def leaky_solver(trial, generate):  # noqa: ANN001 - the Solver protocol
        raise RuntimeError(f"request rejected for key {KEY}")

    monkeypatch.setenv("LEAKY_API_KEY", KEY)
    monkeypatch.setattr(execute, "SOLVERS", SimpleNamespace(get=lambda name: leaky_solver))
    study = write_study(tmp_path / "s.yaml", sim_study())
    db = tmp_path / "log.duckdb"
    from workbench.study.spec import load_study

    summary = asyncio.run(runner.Runner(load_study(study), db).run())
    assert summary.errors == summary.trials_planned == 60
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM trials WHERE contains(error, ?)", [KEY]).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM trials WHERE error = 'RuntimeError: request rejected for key ***'").fetchone()[0] == 60


def test_redact_masks_secret_looking_variables_only() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-abcdefgh1234",
        "GITHUB_TOKEN": "ghp_0123456789",
        "AWS_SECRET": "aws-secret-value",
        "DB_PASSWORD": "hunter2hunter2",
        "MY_API_KEY_FILE": "/keys/openai.txt",
        "SHORT_KEY": "1234567",  # too short to mask: it would blank out ordinary text
        "HOME": "/home/someone",
    }
    text = " ".join(environ.values())
    assert redact(text, environ) == "*** *** *** *** *** 1234567 /home/someone"
    # a key containing another is masked whole, not leaving its tail behind
    assert redact("sk-abcdefgh1234-extended", {"A_KEY": "sk-abcdefgh1234", "B_KEY": "sk-abcdefgh1234-extended"}) == "***"


def test_the_cut_to_length_comes_after_the_masking(monkeypatch) -> None:
    """A long message is cut short; cutting first could leave the start of a key behind."""
    monkeypatch.setenv("LEAKY_API_KEY", KEY)
    error = ProviderError("x" * 495 + " " + KEY, kind="bad_request", transient=False)
    assert KEY[:4] not in str(error) and len(str(error)) <= 500
