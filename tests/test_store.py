"""The scoring database on SQLite and PostgreSQL: migrations, locking, state machine, records."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from evaluator.db.challenges import get_or_create_challenge
from evaluator.db.evaluations import record_evaluation, record_local_run
from evaluator.db.models import (
    TRANSITIONS,
    Base,
    Challenge,
    Evaluation,
    Loss,
    Phase,
    Publication,
    PublicationTarget,
    Source,
    StandingsSnapshot,
    Submission,
    SubmissionStatus,
    Team,
    transition,
)
from evaluator.db.store import Store, open_store
from evaluator.db.submissions import intake_submission
from evaluator.support.errors import ConfigError, IllegalTransition
from tests.builders import make_result
from tests.databases import head_revision, revisions, seed_phase

TABLES = {"challenge", "phase", "team", "submission", "evaluation", "task_score",
          "standings_snapshot", "publication"}


# ---- migrations ------------------------------------------------------------------------


def test_upgrade_from_empty_to_head(empty_store: Store) -> None:
    assert empty_store.current_revision() is None
    empty_store.upgrade()
    assert empty_store.current_revision() == head_revision()
    tables = set(sa.inspect(empty_store.engine).get_table_names())
    assert tables >= TABLES


def test_upgrade_is_idempotent_and_keeps_data(store: Store) -> None:
    with store.write() as session:
        get_or_create_challenge(session, "kept")
    store.upgrade()
    store.upgrade()
    assert store.current_revision() == head_revision()
    with store.session() as session:
        assert session.scalars(sa.select(Challenge.slug)).all() == ["kept"]


def test_upgrade_from_every_earlier_revision(new_url: Callable[[], str]) -> None:
    for revision in [None, *revisions()]:
        store = open_store(new_url())
        try:
            if revision is not None:
                store.upgrade(revision)
            store.upgrade()
            assert store.current_revision() == head_revision()
            with store.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                assert compare_metadata(context, Base.metadata) == []
        finally:
            store.close()


def test_downgrade_to_empty_and_back(store: Store) -> None:
    store.downgrade("base")
    assert not set(sa.inspect(store.engine).get_table_names()) & TABLES
    store.upgrade()
    assert store.current_revision() == head_revision()


def test_migrations_create_exactly_the_models_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.slow
def test_migrations_ship_in_the_built_package(tmp_path: Path) -> None:
    """A deployed install has no source tree: the wheel itself must carry the migrations."""
    root, source = Path(__file__).parents[1], tmp_path / "source"
    for name in ("evaluator", "leaderboard"):  # a copy: building writes build/ beside it
        shutil.copytree(root / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(tmp_path), str(source)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("probeboard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = "evaluator/db/migrations/"
    assert {migrations + "env.py", migrations + "script.py.mako"} <= names
    shipped = {name.rsplit("/", 1)[1] for name in names
               if name.startswith(migrations + "versions/") and name.endswith(".py")}
    assert {f"{revision}_" for revision in revisions()} <= {name[:5] for name in shipped}
    assert {"leaderboard/render/board.css", "leaderboard/render/board.js"} <= names


# ---- SQLite settings and locking -------------------------------------------------------


def test_sqlite_pragmas_are_in_force(tmp_path: Path) -> None:
    store = open_store(path=tmp_path / "store.db")
    store.upgrade()
    with store.engine.connect() as connection:
        pragma = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                      "busy_timeout": 30_000}


def test_sqlite_writes_begin_immediate(tmp_path: Path) -> None:
    """A second writer waits for the lock (busy timeout), then fails with 'locked';
    readers are never blocked (WAL)."""
    path = tmp_path / "store.db"
    first = open_store(path=path)
    first.upgrade()
    second = open_store(path=path, busy_timeout=0.2)
    statements: list[str] = []
    sa.event.listen(first.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: statements.append(statement))
    with first.write() as session:
        # Nothing written yet: the lock was taken by BEGIN IMMEDIATE itself.
        session.execute(sa.select(1))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), second.write() as other:
            other.execute(sa.select(1))
        assert time.monotonic() - started >= 0.15  # it waited for the busy timeout
        with second.session() as reader:
            assert reader.scalar(sa.select(sa.func.count()).select_from(Challenge)) == 0
    assert "BEGIN IMMEDIATE" in statements
    statements.clear()
    with first.session() as reader:
        reader.execute(sa.select(1))
    assert statements[0] == "BEGIN"


def test_sqlite_concurrent_upgrade_waits_instead_of_deadlocking(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    holder, starter = open_store(path=path), open_store(path=path, busy_timeout=10)
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            starter.upgrade()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    with holder.write() as session:
        session.execute(sa.text("CREATE TABLE marker (id INTEGER)"))
        thread = threading.Thread(target=upgrade)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waiting on the lock
    thread.join(10)
    assert not thread.is_alive() and not errors
    assert starter.current_revision() == head_revision()


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        open_store("sqlite://")


# ---- submission state machine ----------------------------------------------------------


@pytest.mark.parametrize("old", list(SubmissionStatus))
@pytest.mark.parametrize("new", list(SubmissionStatus))
def test_state_machine_moves(old: SubmissionStatus, new: SubmissionStatus) -> None:
    submission = Submission(status=old, attempts=0, lease_owner="worker-1")
    legal = {
        ("submitted", "running"), ("submitted", "cancelled"),
        ("running", "finished"), ("running", "failed"), ("running", "submitted"),
        ("running", "cancelled"), ("running", "held"), ("failed", "submitted"),
        ("finished", "submitted"), ("held", "submitted"),
    }
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == legal
    if (old, new) in legal:
        transition(submission, new)
        assert submission.status is new
    else:
        with pytest.raises(IllegalTransition, match=f"cannot go from {old} to {new}"):
            transition(submission, new)
        assert submission.status is old


def test_state_machine_keeps_times_lease_and_attempts() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    submission = Submission(status=SubmissionStatus.SUBMITTED, attempts=0, interruptions=0)
    transition(submission, "running", now=t0)
    submission.lease_owner, submission.lease_expires_at = "w1", t0 + timedelta(minutes=5)
    assert submission.started_at == t0 and submission.lease_owner == "w1"
    transition(submission, "submitted", now=t0 + timedelta(minutes=6), lost=Loss.DAEMON_DIED)
    assert (submission.attempts, submission.interruptions) == (0, 1)
    assert submission.lease_owner is None and submission.started_at is None
    transition(submission, "running", now=t0 + timedelta(minutes=6))
    transition(submission, "submitted", lost=Loss.CHILD_CRASHED)
    assert (submission.attempts, submission.interruptions) == (1, 1)
    transition(submission, "running", now=t0 + timedelta(minutes=7))
    transition(submission, "finished", now=t0 + timedelta(minutes=8))
    assert submission.finished_at == t0 + timedelta(minutes=8)
    assert submission.lease_expires_at is None
    transition(submission, "submitted")  # organiser re-run: not a lost run
    assert submission.attempts == 1 and submission.finished_at is None
    with pytest.raises(ValueError):
        transition(submission, "paused")


# ---- intake and records ----------------------------------------------------------------


def test_intake_is_idempotent(store: Store) -> None:
    with store.write() as session:
        phase, team = seed_phase(session)
        first, created = intake_submission(session, phase=phase, team=team, source="evalai",
                                           source_id="9001", file_name="a.csv", is_public=True)
        assert created
    with store.write() as session:
        phase, team = seed_phase(session)  # get-or-create again: same rows
        again, created = intake_submission(session, phase=phase, team=team, source="evalai",
                                           source_id="9001", file_name="other.csv")
        assert not created and again.id == first.id and again.file_name == "a.csv"
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Submission)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Team)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Phase)) == 1
    # The database itself refuses a duplicate, whatever the code does.
    with pytest.raises(IntegrityError), store.write() as session:
        session.add(Submission(phase_id=first.phase_id, team_id=first.team_id,
                               source=Source.EVALAI, source_id="9001"))


def test_constraints_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError), store.write() as session:  # foreign keys (SQLite too)
        session.add(Submission(phase_id=999, team_id=999, source=Source.LOCAL, source_id="x"))
    with store.write() as session:
        phase, team = seed_phase(session)
        submission, _ = intake_submission(session, phase=phase, team=team, source="local",
                                          source_id="y")
    with store.write() as session:  # every status the state machine knows is allowed
        for status in SubmissionStatus:
            session.execute(sa.text("UPDATE submission SET status = :status WHERE id = :id"),
                            {"id": submission.id, "status": status.value})
    with pytest.raises(IntegrityError), store.write() as session:  # status CHECK
        session.execute(sa.text("UPDATE submission SET status = 'paused' WHERE id = :id"),
                        {"id": submission.id})
    with pytest.raises(IntegrityError), store.write() as session:  # outbox needs a subject
        session.add(Publication(target=PublicationTarget.FILES, payload={}))


def test_record_evaluation_round_trip(store: Store) -> None:
    result = make_result(seed=7)
    with store.write() as session:
        phase, team = seed_phase(session)
        submission, _ = intake_submission(session, phase=phase, team=team, source="evalai",
                                          source_id="1")
        transition(submission, "running")
        record_evaluation(session, submission, result, "1.2.3")
        transition(submission, "finished")
    with store.session() as session:
        stored = session.scalars(sa.select(Submission)).one()
        assert stored.status is SubmissionStatus.FINISHED
        assert stored.started_at is not None and stored.started_at.tzinfo is UTC
        (evaluation,) = stored.evaluations
        assert evaluation.config_digest == result.config.digest()
        assert evaluation.config["k_folds"] == result.config.k_folds
        assert (evaluation.code_version, evaluation.seed) == ("1.2.3", 7)
        assert evaluation.seconds == pytest.approx(result.seconds)
        assert evaluation.mean_quality == pytest.approx(result.mean_quality)
        assert evaluation.warnings == result.warnings
        by_task = {score.task: score for score in evaluation.task_scores}
        assert sorted(by_task) == sorted(task.name for task in result.tasks)
        for task in result.tasks:
            score = by_task[task.name]
            assert (score.kind, score.samples, score.failed_folds) == (
                task.kind, task.samples, task.failed_folds)
            assert score.quality == pytest.approx(task.quality)
            assert score.mean == pytest.approx(task.mean)
            assert score.std == pytest.approx(task.std)
            assert score.fold_scores == [None if math.isnan(s) else pytest.approx(s)
                                         for s in task.scores]
        assert by_task["biomass_mean"].fold_scores[3] is None  # the failed fold
        assert by_task["clouds"].metrics == {
            "accuracy": 0.8, "roc_auc": None, "confusion_matrix": [[10, 2], [3, 20]]}
        assert by_task["biomass_mean"].metrics["mae"] == pytest.approx(0.09)


def test_json_columns_round_trip(store: Store) -> None:
    payload = {
        "entries": [
            {"submission": 1, "team": "Zürich ✓", "rank": 1, "mean_q": 14.874,
             "weighted_score": 1.94496, "task_q": {"t1": 10.0, "t2": None}, "competing": True},
            {"submission": 2, "team": "baseline", "rank": 2, "mean_q": -0.786,
             "weighted_score": 2.0, "task_q": {"t1": 0.0, "t2": 9.0}, "competing": False},
        ],
        "weights": [0.52752, 0.47248],
    }
    with store.write() as session:
        phase, _ = seed_phase(session, hidden_tasks=False)
        session.add(StandingsSnapshot(phase=phase, reason="submission 2 finished",
                                      payload=payload))
        session.add(Publication(phase_id=phase.id, target=PublicationTarget.GITHUB,
                                action="board", payload={"files": ["board.json"], "n": 3}))
    with store.session() as session:
        snapshot = session.scalars(sa.select(StandingsSnapshot)).one()
        assert snapshot.payload == payload
        assert snapshot.created_at.tzinfo is UTC
        phase_row = session.scalars(sa.select(Phase)).one()
        assert phase_row.tasks == ["biomass_mean", "clouds"]
        assert phase_row.counting_rule == "latest_public" and not phase_row.hidden_tasks
        publication = session.scalars(sa.select(Publication)).one()
        assert publication.status == "pending" and publication.attempts == 0
        assert publication.payload == {"files": ["board.json"], "n": 3}
    # NaN is not JSON: it must fail loudly rather than write what PostgreSQL rejects.
    # (SQLite's dialect wraps the serializer's ValueError in a StatementError, psycopg's not.)
    with pytest.raises((ValueError, StatementError), match="not JSON compliant"), \
            store.write() as session:
        session.add(StandingsSnapshot(phase_id=phase.id, reason="bad",
                                      payload={"mean_q": float("nan")}))


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.write() as session:
        session.add(Challenge(slug="c", title="c", created_at=datetime(2026, 1, 1)))


def test_record_local_run_is_idempotent_per_run_folder(store: Store, tmp_path: Path) -> None:
    result = make_result()
    run_dir = tmp_path / "dev" / "my_encoder_20240309_140507"
    first = record_local_run(store, result, phase="dev", method_name="my_encoder",
                             run_dir=run_dir, file_sha256="ab" * 32)
    again = record_local_run(store, result, phase="dev", method_name="my_encoder",
                             run_dir=run_dir)
    other = record_local_run(store, result, phase="dev", method_name="my_encoder",
                             run_dir=run_dir.with_name("my_encoder_20240310_000000"))
    assert first[1] and not again[1] and other[1]
    assert again[0] == first[0] != other[0]
    with store.session() as session:
        submission = session.get(Submission, first[0])
        assert submission is not None
        assert submission.status is SubmissionStatus.FINISHED
        assert (submission.source, submission.source_id) == ("local", "dev/" + run_dir.name)
        assert submission.team.name == "my_encoder"
        assert submission.phase.slug == "dev"
        assert submission.phase.challenge.slug == "standalone"
        assert submission.phase.k_folds == result.config.k_folds
        assert [e.code_version for e in submission.evaluations] == [metadata.version("probeboard")]
        assert session.scalar(sa.select(sa.func.count()).select_from(Evaluation)) == 2
