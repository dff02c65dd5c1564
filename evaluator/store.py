"""The scoring database: engine setup, sessions, migrations, and recording results.

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

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session

from evaluator.models import (
    Challenge,
    CountingRule,
    Evaluation,
    Phase,
    Source,
    Submission,
    SubmissionStatus,
    TaskScore,
    Team,
    transition,
    utcnow,
)
from evaluator.results import EvaluationResult, TaskResult

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("probeboard.db")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT = 30.0  # seconds a SQLite writer waits for the lock before "database is locked"
STANDALONE_CHALLENGE = "standalone"
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

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

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
        with self._write_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_UPGRADE_LOCK})")
            before = _current_revision(connection)
            command.upgrade(alembic_config(connection), revision)
            after = _current_revision(connection)
        if before != after:
            log.info("database %s upgraded from %s to %s",
                     self.url.render_as_string(hide_password=True), before or "empty", after)

    def downgrade(self, revision: str) -> None:
        with self._write_engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)

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
            raise ValueError("the store needs a SQLite file, not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, echo=echo, json_serializer=_dump_json,
            connect_args={"timeout": busy_timeout},
        )
        _configure_sqlite(engine, busy_timeout)
    else:
        engine = sa.create_engine(parsed, echo=echo, json_serializer=_dump_json,
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


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_scripts_config()).get_current_head()


def revisions() -> list[str]:
    """Every migration revision, oldest first."""
    scripts = ScriptDirectory.from_config(_scripts_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def _scripts_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# ---- recording ------------------------------------------------------------------------


def code_version() -> str:
    try:
        return metadata.version("probeboard")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "unknown"


def get_or_create_challenge(session: Session, slug: str, title: str | None = None) -> Challenge:
    challenge = session.scalar(sa.select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        challenge = Challenge(slug=slug, title=title or slug)
        session.add(challenge)
        session.flush()
    return challenge


def get_or_create_phase(session: Session, challenge: Challenge, slug: str, *, k_folds: int,
                        seed: int, tasks: list[str], **settings: Any) -> Phase:
    """The phase `slug` of challenge; an existing phase is returned unchanged."""
    phase = session.scalar(
        sa.select(Phase).where(Phase.challenge_id == challenge.id, Phase.slug == slug)
    )
    if phase is None:
        phase = Phase(challenge=challenge, slug=slug, k_folds=k_folds, seed=seed,
                      tasks=list(tasks), **settings)
        session.add(phase)
        session.flush()
    return phase


def get_or_create_team(session: Session, challenge: Challenge, *, source: Source | str,
                       source_id: str, name: str) -> Team:
    team = session.scalar(sa.select(Team).where(
        Team.challenge_id == challenge.id, Team.source == Source(source),
        Team.source_id == source_id,
    ))
    if team is None:
        team = Team(challenge=challenge, source=Source(source), source_id=source_id, name=name)
        session.add(team)
        session.flush()
    elif team.name != name:
        team.name = name  # teams rename themselves on EvalAI; the pk stays
    return team


def intake_submission(session: Session, *, phase: Phase, team: Team, source: Source | str,
                      source_id: str, **fields: Any) -> tuple[Submission, bool]:
    """Record a submission once: (submission, created). A second intake of the same
    (source, source_id) returns the stored row untouched, so polling twice is harmless."""
    source = Source(source)
    existing = session.scalar(sa.select(Submission).where(
        Submission.source == source, Submission.source_id == source_id))
    if existing is not None:
        return existing, False
    submission = Submission(phase=phase, team=team, source=source, source_id=source_id,
                            status=SubmissionStatus.SUBMITTED, **fields)
    session.add(submission)
    session.flush()
    return submission, True


def record_evaluation(session: Session, submission: Submission, result: EvaluationResult,
                      code_version: str, *, finished_at: datetime | None = None) -> Evaluation:
    """Add one evaluation and its task scores (NaN -> null); does not change the status."""
    finished_at = finished_at or utcnow()
    config = result.config
    evaluation = Evaluation(
        submission=submission,
        config_digest=config.digest(),
        config=_plain(config.to_dict()),
        code_version=code_version,
        seed=config.seed,
        probe_type=config.probe_type,
        embedding_dim=result.embedding_dim,
        warnings=_plain(list(result.warnings)),
        started_at=finished_at - timedelta(seconds=result.seconds),
        finished_at=finished_at,
        seconds=_finite(result.seconds),
        mean_quality=_finite(result.mean_quality) if result.tasks else None,
        task_scores=[_task_score(task) for task in result.tasks],
    )
    session.add(evaluation)
    session.flush()
    return evaluation


def record_local_run(store: Store, result: EvaluationResult, *, phase: str, method_name: str,
                     run_dir: Path | str, file_sha256: str | None = None,
                     file_name: str | None = None,
                     version: str | None = None) -> tuple[int, bool]:
    """Store a standalone `probeboard evaluate` run: (submission id, created).

    Challenge 'standalone', phase = --phase, team = method name, one submission per run
    folder (source 'local', source_id = PHASE/RUN_FOLDER): recording the same folder
    twice adds nothing.
    """
    run_dir = Path(run_dir)
    source_id = f"{phase}/{run_dir.name}"
    config = result.config
    with store.write() as session:
        challenge = get_or_create_challenge(session, STANDALONE_CHALLENGE,
                                            "Standalone benchmark runs")
        phase_row = get_or_create_phase(
            session, challenge, phase, k_folds=config.k_folds, seed=config.seed,
            tasks=[task.name for task in result.tasks],
            counting_rule=CountingRule.BEST, hidden_tasks=False,
        )
        team = get_or_create_team(session, challenge, source=Source.LOCAL,
                                  source_id=method_name, name=method_name)
        submission, created = intake_submission(
            session, phase=phase_row, team=team, source=Source.LOCAL, source_id=source_id,
            file_sha256=file_sha256, file_name=file_name, method_name=method_name,
            is_public=True,
        )
        if created:
            finished = utcnow()
            transition(submission, SubmissionStatus.RUNNING,
                       now=finished - timedelta(seconds=result.seconds))
            record_evaluation(session, submission, result, version or code_version(),
                              finished_at=finished)
            transition(submission, SubmissionStatus.FINISHED, now=finished)
        return submission.id, created


def _task_score(task: TaskResult) -> TaskScore:
    return TaskScore(
        task=task.name,
        kind=task.kind,
        samples=int(task.samples),
        quality=_finite(task.quality),
        mean=_finite(task.mean),
        std=_finite(task.std),
        failed_folds=int(task.failed_folds),
        fold_scores=[_finite(score) for score in np.asarray(task.scores, dtype=float).tolist()],
        metrics=_plain(dict(task.metrics)),
        hyperparameters=_plain(dict(task.hyperparameters)),
    )


def _finite(value: Any) -> float | None:
    """NaN/inf -> None: JSON has no NaN (PostgreSQL rejects it) and SQLite reads it as null."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _finite(value)
    return value


def _dump_json(value: Any) -> str:
    # allow_nan=False: a NaN that slipped past _plain fails loudly instead of writing
    # JSON that PostgreSQL rejects and SQLite stores as unreadable-by-strict-parsers text.
    return json.dumps(value, allow_nan=False)
