"""The scoring database: engine setup, sessions and migrations.

SQLite by default (one file next to the daemon), PostgreSQL by changing the URL; the code
is the same. On SQLite every connection runs in WAL mode with synchronous=FULL (a
committed score survives a power cut), a busy timeout, and foreign keys on; write
transactions start with BEGIN IMMEDIATE so two writers queue on the database lock instead
of both reading, then failing to upgrade to a write lock (SQLITE_BUSY with no retry).

    store = open_store("sqlite:///probeboard.db")   # or postgresql://user@host/db
    store.upgrade()                                  # Alembic to head, at every start
    with store.write() as session:                   # one committed write transaction
        ...
    with store.session() as session:                 # reads
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session

from evaluator.support.errors import ConfigError
from evaluator.support.jsonio import dumps_strict

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("probeboard.db")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT = 30.0  # seconds a SQLite writer waits for the lock before "database is locked"
# Serialises concurrent `upgrade()` calls on PostgreSQL (two daemons starting at once).
_PG_UPGRADE_LOCK = 0x70726F62  # "prob"
_WRITE_OPTION = "probeboard_write"


class Store:
    """An open scoring database. Cheap to keep for the process's lifetime."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Shares the pool; only marks its transactions as writes (BEGIN IMMEDIATE on SQLite).
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})

    @property
    def url(self) -> URL:
        return self.engine.url

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads; anything left uncommitted is rolled back at the end."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on normal exit, rolled back on an exception."""
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (Alembic); a no-op when it is already there."""
        with self._migrating() as connection:
            before = _current_revision(connection)
            command.upgrade(alembic_config(connection), revision)
            after = _current_revision(connection)
        if before != after:
            log.info("database %s upgraded from %s to %s",
                     self.url.render_as_string(hide_password=True), before or "empty", after)

    def downgrade(self, revision: str) -> None:
        with self._migrating() as connection:
            command.downgrade(alembic_config(connection), revision)

    @contextmanager
    def _migrating(self) -> Iterator[Connection]:
        """One write transaction for a migration.

        On SQLite, batch migrations rebuild a table (copy, drop, rename); with foreign keys
        enforced, dropping a table that other rows refer to fails ("FOREIGN KEY constraint
        failed"), so a database holding data could not be upgraded. Enforcement is switched
        off for the migration (the pragma is a no-op inside a transaction, so before BEGIN)
        and the whole database is checked before COMMIT instead. On PostgreSQL, concurrent
        upgrades (two daemons starting at once) queue on an advisory lock.
        """
        with self._write_engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                _driver_execute(connection, "PRAGMA foreign_keys=OFF")
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql(
                            f"SELECT pg_advisory_xact_lock({_PG_UPGRADE_LOCK})")
                    yield connection
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError("the migration left rows whose foreign keys "
                                               f"point nowhere (table, rowid, parent): {broken}")
            finally:
                if sqlite and not connection.invalidated:
                    _driver_execute(connection, "PRAGMA foreign_keys=ON")

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return _current_revision(connection)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, path: Path | str = DEFAULT_PATH,
               busy_timeout: float = BUSY_TIMEOUT, echo: bool = False) -> Store:
    """Open (not create tables: call Store.upgrade()) the database at url, or SQLite at path."""
    parsed = make_url(url) if url else URL.create("sqlite", database=str(Path(path)))
    if parsed.drivername == "postgresql":
        # psycopg 3 is the dependency we ship; SQLAlchemy's bare default is psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # Each pooled connection would get its own empty database.
            raise ConfigError("the scoring database must be a SQLite file, not an in-memory "
                              "database: pass a path, e.g. sqlite:///probeboard.db")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, echo=echo, json_serializer=dumps_strict,
            connect_args={"timeout": busy_timeout},
        )
        _configure_sqlite(engine, busy_timeout)
    else:
        engine = sa.create_engine(parsed, echo=echo, json_serializer=dumps_strict,
                                  pool_pre_ping=True)
    return Store(engine)


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    """The SQLAlchemy pysqlite recipe: we emit BEGIN ourselves, IMMEDIATE for writes."""

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from issuing its own (deferred) BEGIN and its COMMIT before DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes
        # fails with SQLITE_BUSY immediately (no busy wait) when another writer got in first.
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def alembic_config(connection: Connection) -> Config:
    """Alembic configured in code (no alembic.ini): our scripts, this open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _driver_execute(connection: Connection, statement: str) -> None:
    """Run a statement on the DB-API connection itself, outside any transaction."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
