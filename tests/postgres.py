"""A throwaway PostgreSQL server for the store tests (pytest plugin, see conftest.py).

Uses Debian's packaged binaries (/usr/lib/postgresql/<version>/bin): initdb into a temporary
folder, start on a free loopback port (unix socket in the same folder), stop at the end of
the session. As root the server runs as the `postgres` user, because initdb refuses root.
When the binaries are missing it tries `apt-get install postgresql` (root only); the tests
that need the server are skipped, with the reason, only when that is impossible too.

PROBEBOARD_TEST_POSTGRES_URL=postgresql://user@host/db uses an existing server instead
(each test still gets a database of its own; the user needs CREATEDB).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

URL_VARIABLE = "PROBEBOARD_TEST_POSTGRES_URL"
INSTALL_TIMEOUT = 600  # seconds for apt-get update + install
SERVER_USER = "postgres"  # Debian's package creates it


@dataclass
class PostgresServer:
    """A running server; `create_database()` gives each test a fresh, empty database."""

    url: URL  # of the maintenance database
    created: list[str] = field(default_factory=list)

    def create_database(self) -> str:
        import psycopg

        name = f"probeboard_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(**_connect_args(self.url), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_databases(self) -> None:
        import psycopg

        with psycopg.connect(**_connect_args(self.url), autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    existing = os.environ.get(URL_VARIABLE)
    if existing:
        url = make_url(existing).set(drivername="postgresql+psycopg")
        server = PostgresServer(url)
        yield server
        server.drop_databases()
        return
    bin_dir = find_binaries() or install_binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed under /usr/lib/postgresql/*/bin and could "
                    "not be installed (needs root and apt-get: apt-get install postgresql); "
                    f"or set {URL_VARIABLE}")
    with _running_server(bin_dir) as url:
        yield PostgresServer(url)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of one database on the session's server, shared by the session's tests."""
    return postgres_server.create_database()


def find_binaries() -> Path | None:
    """The newest installed version's bin folder, or None."""
    found = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        match = re.fullmatch(r"\d+(\.\d+)?", initdb.parent.parent.name)
        if match and os.access(initdb, os.X_OK):
            found.append((float(initdb.parent.parent.name), initdb.parent))
    return max(found)[1] if found else None


def install_binaries() -> Path | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    log.warning("PostgreSQL binaries missing; installing Debian's postgresql package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "postgresql"]):
            subprocess.run(command, env=env, check=True, capture_output=True,
                           timeout=INSTALL_TIMEOUT)
    except (subprocess.SubprocessError, OSError) as error:
        log.warning("installing PostgreSQL failed: %s", error)
        return None
    return find_binaries()


@contextlib.contextmanager
def _running_server(bin_dir: Path) -> Iterator[URL]:
    as_root = os.geteuid() == 0
    if as_root:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.skip(f"running as root and there is no {SERVER_USER!r} user to run "
                        "PostgreSQL as (initdb refuses root)")
    # Not under pytest's tmp_path: that sits in a 0700 folder the server user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="probeboard-pg-"))
    if as_root:
        os.chown(root, account.pw_uid, account.pw_gid)
    data, sockets, logfile = root / "data", root / "sockets", root / "server.log"
    port = _free_port()

    def run(*args: str) -> None:
        command = [str(bin_dir / args[0]), *args[1:]]
        if as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            server_log = logfile.read_text(errors="replace") if logfile.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}{server_log}")

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync")
        (root / "sockets").mkdir()
        if as_root:
            os.chown(sockets, account.pw_uid, account.pw_gid)
        # Durability off: a test server that is thrown away needs speed, not fsync.
        options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        run("pg_ctl", "-D", str(data), "-l", str(logfile), "-o", options, "-w", "-t", "30",
            "start")
        try:
            yield URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1",
                             port=port, database="postgres")
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _connect_args(url: URL) -> dict[str, object]:
    args: dict[str, object] = {"dbname": url.database or "postgres"}
    for key, value in (("host", url.host), ("port", url.port), ("user", url.username),
                       ("password", url.password)):
        if value is not None:
            args[key] = value
    return args
