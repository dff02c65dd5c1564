"""Submissions: idempotent intake, and the lease under which one worker evaluates one.

    intake      the same (source, source_id) twice is one row; a redelivered queue message
                only refreshes the receipt handle
    claim_next  the oldest submitted row becomes running under (owner, expiry), in one
                write transaction (BEGIN IMMEDIATE on SQLite, SKIP LOCKED on PostgreSQL)
    renew       the heartbeat: extends the lease while the owner still holds it
    release     hands the lease back: a clean shutdown or an outside problem counts
                nothing, a crashed child one attempt
    expire      a lease whose owner died puts the row back (interruption + 1): the daemon's
                death is not the file's fault, so it never fails the submission; at the
                interruption cap (a file that takes the daemon down every time) the
                submission is held for the organiser instead of crash-looping
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db.models import (
    Loss,
    Phase,
    Source,
    Submission,
    SubmissionStatus,
    Team,
    transition,
    utcnow,
)
from evaluator.db.store import Store

S = SubmissionStatus
CRASHED_MESSAGE = (
    "The evaluation of this file crashed {attempts} times without finishing (its process "
    "was killed, most often for using more memory than it may). Check that the file has "
    "one row per sample and the expected columns, then submit again."
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
            lost: Loss | None = None) -> bool:
    """Hand the lease back: submitted again. A clean shutdown or a passing outside problem
    counts nothing; a crashed child counts an attempt (`Loss.CHILD_CRASHED`)."""
    with store.write() as session:
        submission = leased(session, submission_id, owner)
        if submission is None:
            return False
        transition(submission, S.SUBMITTED, lost=lost)
        return True


@dataclass(frozen=True)
class Expired:
    """What expire_leases did: the ids put back in the queue, and those held."""

    requeued: list[int]
    held: list[int]

    def __len__(self) -> int:
        return len(self.requeued) + len(self.held)


def expire_leases(store: Store, *, max_interruptions: int,
                  now: datetime | None = None) -> Expired:
    """Put back every running submission whose lease ran out (its daemon died); one whose
    evaluation has now been cut short `max_interruptions` times is held for the organiser
    (`probeboard show` says so, `probeboard requeue` tries again). The participant is told
    nothing: the file is not known to be at fault."""
    now = now or utcnow()
    expired = Expired([], [])
    with store.write() as session:
        rows = session.scalars(
            sa.select(Submission)
            .where(Submission.status == S.RUNNING, Submission.lease_expires_at < now)
            .with_for_update(skip_locked=True)
        ).all()
        for submission in rows:
            held = submission.interruptions + 1 >= max_interruptions
            transition(submission, S.HELD if held else S.SUBMITTED, now=now,
                       lost=Loss.DAEMON_DIED)
            (expired.held if held else expired.requeued).append(submission.id)
    return expired
