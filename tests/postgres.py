"""A real PostgreSQL server for tests, from Debian's binaries (`.ci/run` installs `postgresql`).

`postgres_server()` runs initdb in a fresh temporary directory and starts the server there on a
free port of 127.0.0.1 only (its socket in that directory too), so nothing of the machine's own
PostgreSQL is used or touched; it stops the server (`pg_ctl stop -m fast`) and removes the directory
when left. PostgreSQL refuses to run as root: under uid 0 every server command runs as `nobody`.

Roles: `workbench` (trust on 127.0.0.1, owns the database `search`) and `workbench_pw`, whose
password is checked (scram-sha-256) so that a test can show a password coming from PGPASSWORD
(it owns `search_pw`). A database's owner may create tables in its public schema (PostgreSQL 15).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"
DATABASE = "search"
USER = "workbench"
PASSWORD_USER = "workbench_pw"
PASSWORD = "pw-for-tests-only"
PASSWORD_DATABASE = "search_pw"
_SUPERUSER = "postgres"
_START_TIMEOUT = 60  # seconds; initdb and the first start are slow on a busy machine


@dataclass(frozen=True)
class PostgresServer:
    port: int
    directory: Path

    @property
    def url(self) -> str:
        """The trusted role's URL: no password in it."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def password_url(self) -> str:
        """The password role's URL, password left out: it comes from PGPASSWORD."""
        return f"postgresql://{PASSWORD_USER}@127.0.0.1:{self.port}/{PASSWORD_DATABASE}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def postmaster_pid(self) -> int | None:
        """The server's process id from its pid file, while the file exists."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None


def bin_dir() -> Path | None:
    """The newest Debian PostgreSQL's bin directory (/usr/lib/postgresql/<major>/bin), if any."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    numbered = [p for p in found if re.fullmatch(r"\d+", p.parent.name)]
    return max(numbered, key=lambda p: int(p.parent.name), default=None)


def _as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL exits at once when run as root: drop to an unprivileged user then."""
    return ["runuser", "-u", UNPRIVILEGED_USER, "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str]) -> None:
    result = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=_START_TIMEOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}")


_HBA = f"""\
local all all trust
host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


@contextlib.contextmanager
def postgres_server(binaries: Path) -> Iterator[PostgresServer]:
    # Under /tmp itself (not pytest's 0700 tmp tree) so that the unprivileged user can reach it.
    directory = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user=UNPRIVILEGED_USER)
    server = PostgresServer(port=_free_port(), directory=directory)
    try:
        _run([str(binaries / "initdb"), "-D", str(server.data), "-U", _SUPERUSER, "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"])
        (server.data / "pg_hba.conf").write_text(_HBA)
        # Bound to 127.0.0.1 only; durability off because the data dies with the test session.
        # `postgres` runs as this process's child (not daemonised by pg_ctl start) so that it is
        # reaped here, even where the machine's pid 1 reaps no orphans.
        options = [
            "-c", "listen_addresses=127.0.0.1", "-p", str(server.port), "-k", str(directory), "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "password_encryption=scram-sha-256",
        ]
        with open(directory / "server.log", "wb") as log:
            process = subprocess.Popen(_as_server_user([str(binaries / "postgres"), "-D", str(server.data), *options]), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            _wait_ready(server, process)
            _create_roles(server)
            yield server
        finally:
            _stop(binaries, server, process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(server: PostgresServer, process: subprocess.Popen[bytes]) -> None:
    import psycopg

    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            psycopg.connect(host="127.0.0.1", port=server.port, user=_SUPERUSER, dbname="postgres", connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (server.directory / "server.log").read_text(errors="replace")
                raise RuntimeError(f"PostgreSQL did not start (exit {process.returncode}): {log[-2000:]}") from None
            time.sleep(0.1)


def _stop(binaries: Path, server: PostgresServer, process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (clients cut off, no waiting for them); killed if it hangs, and always reaped."""
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        _run([str(binaries / "pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop"])
    try:
        process.wait(timeout=_START_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _create_roles(server: PostgresServer) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host="127.0.0.1", port=server.port, user=_SUPERUSER, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(USER)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(PASSWORD_USER), sql.Literal(PASSWORD)))
        for database, owner in ((DATABASE, USER), (PASSWORD_DATABASE, PASSWORD_USER)):
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
