"""The outbox: what must be sent out (EvalAI results and acks, GitHub and file boards),
written in the transaction of the change it follows, sent later, retried until done.

    enqueue    add a row (optionally after another row: the ack waits for the report)
    claim_due  one publisher takes the due rows under a lease, oldest first
    done       the target holds it
    failed     try again after a backoff that doubles (capped), or give up when the
               error cannot pass by itself
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from evaluator.db.models import Publication, PublicationStatus, PublicationTarget, utcnow
from evaluator.db.store import Store
from evaluator.support.jsonio import dumps_strict, to_json_value

P = PublicationStatus
FIRST_BACKOFF = 5.0  # seconds after the first failure
MAX_BACKOFF = 15 * 60.0  # never wait longer than this between tries


def content_digest(payload: Any) -> str:
    """sha256 of a payload's canonical JSON: equal content, equal digest."""
    text = dumps_strict(to_json_value(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def enqueue(session: Session, target: PublicationTarget | str, action: str,
            payload: dict[str, Any], *, phase_id: int | None = None,
            submission_id: int | None = None, after: Publication | None = None,
            digest: str | None = None) -> Publication:
    row = Publication(
        target=PublicationTarget(target), action=action, payload=to_json_value(payload),
        phase_id=phase_id, submission_id=submission_id, content_digest=digest,
        depends_on_id=after.id if after is not None else None, status=P.PENDING,
    )
    session.add(row)
    session.flush()
    return row


def enqueue_once(session: Session, target: PublicationTarget | str, action: str, *,
                 phase_id: int) -> Publication:
    """A phase-wide publication (a board, re-PUT ranks): one pending row is enough, since
    it sends the state of the moment it runs; a row already held by a publisher is not."""
    waiting = session.scalars(
        sa.select(Publication)
        .where(Publication.target == PublicationTarget(target), Publication.action == action,
               Publication.phase_id == phase_id, Publication.status == P.PENDING,
               Publication.lease_owner.is_(None), Publication.depends_on_id.is_(None))
        .limit(1)
    ).first()
    return waiting or enqueue(session, target, action, {}, phase_id=phase_id)


def record_sent(session: Session, target: PublicationTarget | str, action: str, *,
                submission_id: int | None = None, phase_id: int | None = None,
                digest: str | None = None) -> Publication:
    """A row for something sent while handling another row (a rank re-PUT): done already,
    kept so the next change is compared with what the target now shows."""
    row = enqueue(session, target, action, {}, submission_id=submission_id,
                  phase_id=phase_id, digest=digest)
    row.status = P.DONE
    row.done_at = utcnow()
    return row


def last_done_digest(session: Session, target: PublicationTarget | str, actions: list[str],
                     *, phase_id: int | None = None,
                     submission_id: int | None = None) -> str | None:
    """The content digest of the newest publication of these kinds (of this phase or
    submission, when given) that reached its target."""
    query = (sa.select(Publication.content_digest)
             .where(Publication.target == PublicationTarget(target),
                    Publication.action.in_(actions), Publication.status == P.DONE,
                    Publication.content_digest.is_not(None))
             .order_by(Publication.done_at.desc(), Publication.id.desc()).limit(1))
    if phase_id is not None:
        query = query.where(Publication.phase_id == phase_id)
    if submission_id is not None:
        query = query.where(Publication.submission_id == submission_id)
    return session.scalar(query)


def last_sent_digests(session: Session, target: PublicationTarget | str, actions: list[str],
                      submission_ids: Iterable[int]) -> dict[int, str]:
    """last_done_digest of many submissions in one query: submission id -> digest."""
    rows = session.execute(
        sa.select(Publication.submission_id, Publication.content_digest)
        .where(Publication.target == PublicationTarget(target),
               Publication.action.in_(actions), Publication.status == P.DONE,
               Publication.content_digest.is_not(None),
               Publication.submission_id.in_(list(submission_ids)))
        .order_by(Publication.done_at, Publication.id)
    ).all()
    return {submission_id: digest for submission_id, digest in rows}  # the newest wins


def claim_due(store: Store, owner: str, lease: timedelta, *, limit: int = 50,
              now: datetime | None = None) -> list[Publication]:
    """Pending rows that are due, whose dependency is done and that no live lease holds."""
    now = now or utcnow()
    before = aliased(Publication)
    with store.write() as session:
        rows = session.scalars(
            sa.select(Publication)
            .outerjoin(before, Publication.depends_on_id == before.id)
            .where(
                Publication.status == P.PENDING,
                sa.or_(Publication.next_attempt_at.is_(None), Publication.next_attempt_at <= now),
                sa.or_(Publication.lease_expires_at.is_(None),
                       Publication.lease_expires_at < now),
                sa.or_(Publication.depends_on_id.is_(None), before.status == P.DONE),
            )
            .order_by(Publication.id).limit(limit)
            .with_for_update(of=Publication, skip_locked=True)
        ).all()
        for row in rows:
            row.lease_owner = owner
            row.lease_expires_at = now + lease
        return list(rows)


def done(store: Store, publication_id: int, *, digest: str | None = None,
         now: datetime | None = None) -> None:
    """The target holds it; `digest` records what exactly was sent."""
    with store.write() as session:
        row = session.get(Publication, publication_id)
        if row is None:
            return
        if digest is not None:
            row.content_digest = digest
        row.status = P.DONE
        row.done_at = now or utcnow()
        row.last_error = None
        row.lease_owner = row.lease_expires_at = None


def failed(store: Store, publication_id: int, error: str, *, retryable: bool,
           retry_after: float | None = None, now: datetime | None = None) -> datetime | None:
    """Record a failed try. A retryable one is due again after a jittered, doubling backoff
    (at least `retry_after`, capped at MAX_BACKOFF); returns when, or None when the row
    gave up for good. A row that is no longer pending is left alone: a publisher whose
    lease ran out while it tried must not undo another's delivery (a report turned failed
    after it was done would hold its ack back for good)."""
    now = now or utcnow()
    with store.write() as session:
        row = session.get(Publication, publication_id)
        if row is None or row.status is not P.PENDING:
            return None
        row.attempts = (row.attempts or 0) + 1
        row.last_error = error[:4000]
        row.lease_owner = row.lease_expires_at = None
        if not retryable:
            row.status = P.FAILED
            return None
        delay = backoff(row.attempts)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF))
        row.next_attempt_at = now + timedelta(seconds=delay)
        return row.next_attempt_at


def backoff(attempts: int) -> float:
    """Seconds before try number attempts + 1: doubling from FIRST_BACKOFF, capped, with
    jitter in [0.5, 1] of the step so that many failed rows do not retry in lockstep."""
    step = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, attempts - 1))
    return step * random.uniform(0.5, 1.0)


def retry(store: Store, publication_id: int) -> None:
    """Make a failed (given up) row pending again: the operator fixed the cause, so its
    tries start afresh (a new failure backs off from FIRST_BACKOFF, not from the cap)."""
    with store.write() as session:
        row = session.get(Publication, publication_id)
        if row is not None and row.status is P.FAILED:
            row.status = P.PENDING
            row.next_attempt_at = None
            row.attempts = 0
