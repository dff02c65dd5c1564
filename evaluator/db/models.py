"""The scoring database: SQLAlchemy 2.x models, one table per noun.

    challenge 1-n phase 1-n submission 1-n evaluation 1-n task_score
    challenge 1-n team  1-n submission
    phase 1-n standings_snapshot (history: every recomputed board is kept)
    publication: the outbox of things to publish (EvalAI result, GitHub board, files)

The schema is created and upgraded only by the Alembic migrations in
evaluator/db/migrations/versions; the tests check that the migrations and these models agree.

Submission status (one column, one state machine; `transition()` is the only writer):

    submitted --claim--> running --> finished
        |                   |   \\--> failed
        |                   |--child crashed--> submitted  (attempts + 1)
        |                   |--lease expired--> submitted  (interruptions + 1)
        |                   |--lease expired too often--> held
        |                   \\--> cancelled
        \\--> cancelled
    failed   --organiser re-run--> submitted
    finished --organiser re-run--> submitted
    held     --organiser re-run--> submitted
    cancelled is final.

Two counters, because whose fault it is differs. `attempts` counts evaluations whose child
died under a live daemon (the file may be what kills it; at the cap the submission fails).
`interruptions` counts leases that ran out because the daemon itself died (a restart, a
kill, the VM's OOM killer): not the file's fault, so it never fails the submission; a file
that takes the daemon down every time is held for the organiser at its own cap.

An operator requeues by hand (`probeboard requeue` / `rescore`, `requeue()` below) only from
a final outcome, failed or finished: a running submission belongs to its worker's lease,
and a requeued one starts with a fresh attempt count. A re-run keeps the earlier
evaluations: each run adds an evaluation row, and the standings use the latest one.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from evaluator.support.errors import IllegalTransition

# Deterministic constraint names: the same on SQLite and PostgreSQL, so later migrations
# can name the constraint they change.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones and hands back naive values; PostgreSQL hands back aware ones
    in the session's zone. Storing UTC and re-attaching UTC on read makes both the same.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StoredString(sa.TypeDecorator[str]):
    """VARCHAR that stores a StrEnum member as its value: drivers need not (psycopg dumps a
    Python Enum by its name)."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else str(value)


class CountingRule(enum.StrEnum):
    """Which submissions of a team count in a phase's standings (protocol section 7)."""

    LATEST_PUBLIC = "latest_public"
    BEST = "best"


class Source(enum.StrEnum):
    EVALAI = "evalai"
    LOCAL = "local"  # standalone `probeboard evaluate`


class SubmissionStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    HELD = "held"  # for the organiser: the daemon died too often while evaluating it


class PublicationTarget(enum.StrEnum):
    EVALAI = "evalai"
    GITHUB = "github"
    FILES = "files"


class PublicationStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


def _enum(cls: type[enum.StrEnum], name: str) -> sa.Enum:
    # VARCHAR + CHECK rather than a native PostgreSQL ENUM: adding a value later is then an
    # ordinary migration on both backends.
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), list[Any]: sa.JSON(),
    }


class Challenge(Base):
    __tablename__ = "challenge"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    phases: Mapped[list[Phase]] = relationship(back_populates="challenge")
    teams: Mapped[list[Team]] = relationship(back_populates="challenge")


class Phase(Base):
    """One leaderboard: its own K, seed, task set and visibility rules."""

    __tablename__ = "phase"
    __table_args__ = (sa.UniqueConstraint("challenge_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id"))
    slug: Mapped[str] = mapped_column(sa.String(100))
    k_folds: Mapped[int]
    seed: Mapped[int]
    tasks: Mapped[list[Any]]  # task names scored in this phase
    counting_rule: Mapped[CountingRule] = mapped_column(
        _enum(CountingRule, "counting_rule"), default=CountingRule.LATEST_PUBLIC
    )
    # Development feedback shows only mean Q: per-task numbers would leak the hidden tasks.
    hidden_tasks: Mapped[bool] = mapped_column(default=True)
    show_per_task_after_close: Mapped[bool] = mapped_column(default=False)
    opens_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]
    # The scoring settings every run of the phase uses (EvaluationConfig.scoring_settings());
    # a run with other settings is refused: its fold scores would not be comparable.
    scoring: Mapped[dict[str, Any] | None]

    challenge: Mapped[Challenge] = relationship(back_populates="phases")
    submissions: Mapped[list[Submission]] = relationship(back_populates="phase")
    standings: Mapped[list[StandingsSnapshot]] = relationship(
        back_populates="phase", order_by="StandingsSnapshot.id"
    )


class Team(Base):
    __tablename__ = "team"
    __table_args__ = (sa.UniqueConstraint("challenge_id", "source", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    source: Mapped[Source] = mapped_column(_enum(Source, "team_source"))
    source_id: Mapped[str] = mapped_column(sa.String(100))  # EvalAI team pk, or the method name

    challenge: Mapped[Challenge] = relationship(back_populates="teams")
    submissions: Mapped[list[Submission]] = relationship(back_populates="team")


class Submission(Base):
    """One uploaded file. Intake is idempotent: (source, source_id) is unique."""

    __tablename__ = "submission"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id"),
        sa.Index(None, "phase_id", "status"),  # the claim query and the standings query
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phase_id: Mapped[int] = mapped_column(sa.ForeignKey("phase.id"))
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("team.id"), index=True)
    source: Mapped[Source] = mapped_column(_enum(Source, "submission_source"))
    source_id: Mapped[str] = mapped_column(sa.String(300))  # EvalAI pk, or the run folder
    status: Mapped[SubmissionStatus] = mapped_column(
        _enum(SubmissionStatus, "submission_status"), default=SubmissionStatus.SUBMITTED
    )
    file_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    file_name: Mapped[str | None] = mapped_column(sa.String(300))
    is_public: Mapped[bool] = mapped_column(default=False)
    is_baseline: Mapped[bool] = mapped_column(default=False)
    is_host: Mapped[bool] = mapped_column(default=False)
    method_name: Mapped[str | None] = mapped_column(sa.String(200))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    stdout: Mapped[str | None] = mapped_column(sa.Text)
    stderr: Mapped[str | None] = mapped_column(sa.Text)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    interruptions: Mapped[int] = mapped_column(default=0)
    # Where the file is (EvalAI's input_file URL, or the inbox path) and the newest queue
    # receipt handle: a redelivered message only refreshes it, and the ack uses the newest.
    file_url: Mapped[str | None] = mapped_column(sa.Text)
    receipt_handle: Mapped[str | None] = mapped_column(sa.Text)
    hidden: Mapped[bool] = mapped_column(default=False)  # disqualified / hidden by the host

    phase: Mapped[Phase] = relationship(back_populates="submissions")
    team: Mapped[Team] = relationship(back_populates="submissions")
    evaluations: Mapped[list[Evaluation]] = relationship(
        back_populates="submission", order_by="Evaluation.id"
    )


class Evaluation(Base):
    """One scoring run of a submission: what ran (config, code) and how long it took."""

    __tablename__ = "evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("submission.id"), index=True)
    config_digest: Mapped[str] = mapped_column(sa.String(64))  # EvaluationConfig.digest()
    config: Mapped[dict[str, Any]]
    code_version: Mapped[str] = mapped_column(sa.String(100))
    seed: Mapped[int]
    probe_type: Mapped[str] = mapped_column(sa.String(20))
    embedding_dim: Mapped[int | None]
    warnings: Mapped[list[Any]]  # shown to the participant with the result
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(sa.Double)
    mean_quality: Mapped[float | None] = mapped_column(sa.Double)  # None when not finite

    submission: Mapped[Submission] = relationship(back_populates="evaluations")
    task_scores: Mapped[list[TaskScore]] = relationship(
        back_populates="evaluation", order_by="TaskScore.task", cascade="all, delete-orphan"
    )


class TaskScore(Base):
    """Q, mean and std of one task, and its per-fold scores s_k (NaN stored as null)."""

    __tablename__ = "task_score"
    __table_args__ = (sa.UniqueConstraint("evaluation_id", "task"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluation.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(20))
    samples: Mapped[int | None]
    quality: Mapped[float | None] = mapped_column(sa.Double)
    mean: Mapped[float | None] = mapped_column(sa.Double)
    std: Mapped[float | None] = mapped_column(sa.Double)
    failed_folds: Mapped[int] = mapped_column(default=0)
    fold_scores: Mapped[list[Any]]
    metrics: Mapped[dict[str, Any]]  # extra report metrics, never used for ranking
    hyperparameters: Mapped[dict[str, Any] | None]

    evaluation: Mapped[Evaluation] = relationship(back_populates="task_scores")


class StandingsSnapshot(Base):
    """A phase's standings as computed at one moment; rows are only ever added."""

    __tablename__ = "standings_snapshot"
    __table_args__ = (sa.Index(None, "phase_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phase_id: Mapped[int] = mapped_column(sa.ForeignKey("phase.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(sa.String(200))  # e.g. "submission 42 finished"
    # entries: submission id, team, rank, mean_q, weighted_score, task_q, competing
    payload: Mapped[dict[str, Any]]

    phase: Mapped[Phase] = relationship(back_populates="standings")


class Publication(Base):
    """The outbox: written in the same transaction as the change it publishes, sent later.

    `action` says what to do at the target (e.g. report a result, ack a queue message,
    publish a board); a row runs once `next_attempt_at` has passed (backoff after a
    failure) and the row it `depends_on` is done (the ack waits for the report). One
    publisher at a time holds a row through its lease.
    """

    __tablename__ = "publication"
    __table_args__ = (
        sa.CheckConstraint(
            "phase_id IS NOT NULL OR submission_id IS NOT NULL", name="has_subject"
        ),
        sa.Index(None, "status", "created_at"),
        sa.Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phase_id: Mapped[int | None] = mapped_column(sa.ForeignKey("phase.id"))
    submission_id: Mapped[int | None] = mapped_column(sa.ForeignKey("submission.id"))
    target: Mapped[PublicationTarget] = mapped_column(_enum(PublicationTarget, "target"))
    # What the row asks for: one of the daemon's outbox actions (evaluator.daemon.outbox.
    # actions), stored as its string; the outbox itself is generic.
    action: Mapped[str] = mapped_column(StoredString(40))
    payload: Mapped[dict[str, Any]]
    # sha256 of what is published: a board whose content equals the last one sent is skipped.
    content_digest: Mapped[str | None] = mapped_column(sa.String(64))
    depends_on_id: Mapped[int | None] = mapped_column(sa.ForeignKey("publication.id"))
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires_at: Mapped[datetime | None]
    status: Mapped[PublicationStatus] = mapped_column(
        _enum(PublicationStatus, "publication_status"), default=PublicationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class OperatorAction(Base):
    """What an operator did by hand (requeue, rescore, hide, baseline...): who, when, why."""

    __tablename__ = "operator_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(StoredString(40))
    reason: Mapped[str] = mapped_column(sa.Text)
    phase_id: Mapped[int | None] = mapped_column(sa.ForeignKey("phase.id"))
    submission_id: Mapped[int | None] = mapped_column(sa.ForeignKey("submission.id"))
    details: Mapped[dict[str, Any] | None]  # e.g. the submissions a rescore requeued

    phase: Mapped[Phase | None] = relationship()


S = SubmissionStatus
TRANSITIONS: dict[SubmissionStatus, frozenset[SubmissionStatus]] = {
    S.SUBMITTED: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.FINISHED, S.FAILED, S.SUBMITTED, S.CANCELLED, S.HELD}),
    S.FAILED: frozenset({S.SUBMITTED}),
    S.FINISHED: frozenset({S.SUBMITTED}),
    S.HELD: frozenset({S.SUBMITTED}),
    S.CANCELLED: frozenset(),
}
# The outcomes a rescore evaluates again, and where an operator may requeue from (subsets
# of the moves to SUBMITTED above).
OUTCOMES: frozenset[SubmissionStatus] = frozenset({S.FAILED, S.FINISHED})
REQUEUE_FROM: frozenset[SubmissionStatus] = OUTCOMES | {S.HELD}
REQUEUE_REFUSALS = {
    S.SUBMITTED: "it is already waiting for the daemon's next pass",
    S.RUNNING: "it is being evaluated now; requeue it once it has finished or failed "
               "(`probeboard status` lists the running ones)",
    S.CANCELLED: "cancelled is final; the team has to submit again",
}


class Loss(enum.Enum):
    """Why a running evaluation stopped without an outcome: the counter it adds one to."""

    CHILD_CRASHED = "attempts"  # its child died under a live daemon: maybe the file's doing
    DAEMON_DIED = "interruptions"  # its lease ran out: the daemon itself stopped


def transition(submission: Submission, new_status: SubmissionStatus | str,
               *, now: datetime | None = None, lost: Loss | None = None) -> None:
    """Move a submission to new_status, keeping its timestamps, lease and counters in step.

    running -> submitted or held adds one to the counter of `lost` (module docstring); a
    worker that hands its lease back at a clean shutdown loses nothing (None).

    Raises IllegalTransition for a move the state machine (module docstring) forbids.
    """
    new = SubmissionStatus(new_status)
    old = SubmissionStatus(submission.status)
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(submission.id, old, new, sorted(TRANSITIONS[old]))
    now = now or utcnow()
    if old is S.RUNNING and lost is not None:
        setattr(submission, lost.value, (getattr(submission, lost.value) or 0) + 1)
    if new is S.RUNNING:
        submission.started_at = now
        submission.finished_at = None
    elif new in (S.FINISHED, S.FAILED, S.CANCELLED):
        submission.finished_at = now
    elif new is S.SUBMITTED:
        submission.started_at = None
        submission.finished_at = None
    if new is not S.RUNNING:
        submission.lease_owner = None
        submission.lease_expires_at = None
    submission.status = new


def requeue(submission: Submission, *, now: datetime | None = None) -> None:
    """An operator's re-run: a failed, finished or held submission is evaluated again by the
    next pass, with fresh counts (the operator fixed what stopped it).

    Raises IllegalTransition, saying why and what to do, from any other status.
    """
    old = SubmissionStatus(submission.status)
    if old not in REQUEUE_FROM:
        raise IllegalTransition(submission.id, old, S.SUBMITTED, sorted(TRANSITIONS[old]),
                                reason=REQUEUE_REFUSALS[old])
    transition(submission, S.SUBMITTED, now=now)
    submission.attempts = 0
    submission.interruptions = 0
