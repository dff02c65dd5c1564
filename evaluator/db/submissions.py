"""Submissions: idempotent intake, and the lease under which one worker evaluates one.

    intake      the same (source, source_id) twice is one row; a redelivered queue message
                only refreshes the receipt handle
    claim_next  the oldest submitted row becomes running under (owner, expiry), in one
                write transaction (BEGIN IMMEDIATE on SQLite, SKIP LOCKED on PostgreSQL)
    renew       the heartbeat: extends the lease while the owner still holds it
    release     a clean shutdown hands the lease back (no attempt counted)
    expire      a lease whose owner died puts the row back (attempt + 1); past the attempt
                cap the submission fails with a message instead of crash-looping
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db.engine import Store
from evaluator.db.models import (
    Phase,
    Source,
    Submission,
    SubmissionStatus,
    Team,
    transition,
    utcnow,
)

S = SubmissionStatus
CRASHED_MESSAGE = (
    "The evaluation of this file stopped {attempts} times without finishing (the "
    "evaluator was restarted or ran out of memory). Check that the file has one row per "
    "sample and the expected columns, then submit again."
)


def intake_submission(session: Session, *, phase: Phase, team: Team, source: Source | str,
                      source_id: str, receipt_handle: str | None = None,
                      **fields: object) -> tuple[Submission, bool]:
    """Record a submission once: (submission, created). A second intake of the same
    (source, source_id) returns the stored row untouched but for the newest receipt
    handle, so polling twice is harmless and the ack uses the live handle."""
    source = Source(source)
    existing = session.scalar(sa.select(Submission).where(
        Submission.source == source, Submission.source_id == source_id))
    if existing is not None:
        if receipt_handle is not None:
            existing.receipt_handle = receipt_handle
        return existing, False
    submission = Submission(phase=phase, team=team, source=source, source_id=source_id,
                            status=S.SUBMITTED, receipt_handle=receipt_handle, **fields)
    session.add(submission)
    session.flush()
    return submission, True


@dataclass(frozen=True)
class Claim:
    """What a worker needs of the submission it claimed (plain values: no session)."""

    id: int
    phase: str
    source: Source
    source_id: str
    file_url: str
    attempts: int


def claim_next(store: Store, owner: str, lease: timedelta, *,
               phase_ids: list[int] | None = None,
               now: datetime | None = None) -> Claim | None:
    """Take the oldest submitted submission (optionally of these phases) under a lease."""
    now = now or utcnow()
    with store.write() as session:
        query = (sa.select(Submission).where(Submission.status == S.SUBMITTED)
                 .order_by(Submission.submitted_at, Submission.id).limit(1)
                 .with_for_update(skip_locked=True))
        if phase_ids is not None:
            query = query.where(Submission.phase_id.in_(phase_ids))
        submission = session.scalars(query).first()
        if submission is None:
            return None
        transition(submission, S.RUNNING, now=now)
        submission.lease_owner = owner
        submission.lease_expires_at = now + lease
        return Claim(submission.id, submission.phase.slug, submission.source,
                     submission.source_id, submission.file_url or "", submission.attempts)


def leased(session: Session, submission_id: int, owner: str) -> Submission | None:
    """The submission if `owner` still holds its lease (for a write in this session)."""
    submission = session.get(Submission, submission_id, with_for_update=True)
    if submission is None or submission.status is not S.RUNNING:
        return None
    return submission if submission.lease_owner == owner else None


def renew(store: Store, submission_id: int, owner: str, lease: timedelta, *,
          now: datetime | None = None) -> bool:
    """Extend the lease; False when the owner lost it (expired and taken back)."""
    now = now or utcnow()
    with store.write() as session:
        done = session.execute(
            sa.update(Submission)
            .where(Submission.id == submission_id, Submission.lease_owner == owner,
                   Submission.status == S.RUNNING)
            .values(lease_expires_at=now + lease)
        )
        return bool(done.rowcount)


def release(store: Store, submission_id: int, owner: str, *,
            count_attempt: bool = False) -> bool:
    """Hand the lease back: submitted again. A clean shutdown or a passing outside problem
    counts no attempt; a crashed evaluation does (`count_attempt`)."""
    with store.write() as session:
        submission = leased(session, submission_id, owner)
        if submission is None:
            return False
        transition(submission, S.SUBMITTED, lost=count_attempt)
        return True


def expire_leases(store: Store, *, max_attempts: int, now: datetime | None = None,
                  on_failed: Callable[[Session, Submission], None] | None = None) -> list[int]:
    """Put back every running submission whose lease ran out; one that has now been lost
    `max_attempts` times fails instead (with `on_failed` in the same transaction, to
    report it). Returns the ids handled."""
    now = now or utcnow()
    with store.write() as session:
        expired = session.scalars(
            sa.select(Submission)
            .where(Submission.status == S.RUNNING, Submission.lease_expires_at < now)
            .with_for_update(skip_locked=True)
        ).all()
        for submission in expired:
            if submission.attempts + 1 < max_attempts:
                transition(submission, S.SUBMITTED, now=now)  # counts the lost attempt
                continue
            submission.attempts += 1
            submission.stdout = ""
            submission.stderr = CRASHED_MESSAGE.format(attempts=submission.attempts)
            transition(submission, S.FAILED, now=now)
            if on_failed is not None:
                on_failed(session, submission)
        return [submission.id for submission in expired]
