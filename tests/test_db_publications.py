"""The outbox on both backends: due rows, dependencies, leases, backoff, give up and retry,
and the digests that skip re-publishing an unchanged board."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from evaluator.db.models import Publication, PublicationStatus, PublicationTarget
from evaluator.db.publications import (
    FIRST_BACKOFF,
    MAX_BACKOFF,
    claim_due,
    content_digest,
    done,
    enqueue,
    failed,
    last_done_digest,
    last_sent_digests,
    record_sent,
    retry,
)
from evaluator.db.store import Store
from evaluator.db.submissions import intake_submission
from tests.databases import claim_concurrently, seed_phase

P = PublicationStatus
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
SECOND = timedelta(seconds=1)


def add(store: Store, count: int = 1, *, target: str = "github", action: str = "publish",
        digest: str | None = None) -> list[int]:
    with store.write() as session:
        phase, _ = seed_phase(session)
        return [enqueue(session, target, action, {"n": n}, phase_id=phase.id,
                        digest=digest).id for n in range(count)]


def report_and_ack(store: Store) -> tuple[int, int]:
    """An EvalAI report and the queue ack that waits for it."""
    with store.write() as session:
        phase, _ = seed_phase(session)
        report = enqueue(session, "evalai", "report", {"score": 1}, phase_id=phase.id)
        ack = enqueue(session, "evalai", "ack", {"receipt": "r"}, phase_id=phase.id,
                      after=report)
        return report.id, ack.id


def get(store: Store, publication_id: int) -> Publication:
    with store.session() as session:
        row = session.get(Publication, publication_id)
        assert row is not None
        return row


def ids(rows: list[Publication]) -> list[int]:
    return [row.id for row in rows]


# ---- claim_due --------------------------------------------------------------------------


def test_claim_due_takes_pending_rows_oldest_first_under_a_lease(store: Store) -> None:
    rows = add(store, 3)
    claimed = claim_due(store, "publisher", LEASE, now=T0)
    assert ids(claimed) == rows
    for row in claimed:
        assert (row.lease_owner, row.lease_expires_at, row.status) == (
            "publisher", T0 + LEASE, P.PENDING)
    assert get(store, rows[0]).lease_owner == "publisher"
    assert claim_due(store, "publisher", LEASE, now=T0) == []  # all leased
    assert claim_due(store, "other", LEASE, now=T0 + LEASE - SECOND) == []


def test_claim_due_honours_the_limit(store: Store) -> None:
    rows = add(store, 5)
    assert ids(claim_due(store, "a", LEASE, limit=2, now=T0)) == rows[:2]
    assert ids(claim_due(store, "b", LEASE, limit=2, now=T0)) == rows[2:4]
    assert ids(claim_due(store, "c", LEASE, limit=2, now=T0)) == rows[4:]


def test_claim_due_skips_done_and_failed_rows(store: Store) -> None:
    finished, given_up, pending = add(store, 3)
    done(store, finished, now=T0)
    failed(store, given_up, "404", retryable=False, now=T0)
    assert ids(claim_due(store, "p", LEASE, now=T0)) == [pending]


def test_claim_due_waits_for_next_attempt_at(store: Store) -> None:
    (row,) = add(store)
    claim_due(store, "p", LEASE, now=T0)
    when = failed(store, row, "503", retryable=True, now=T0)
    assert when is not None and when > T0
    stored = get(store, row)
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)  # lease released
    assert claim_due(store, "p", LEASE, now=when - SECOND) == []
    assert ids(claim_due(store, "p", LEASE, now=when)) == [row]


def test_the_ack_waits_until_the_report_is_done(store: Store) -> None:
    report_id, ack_id = report_and_ack(store)
    assert get(store, ack_id).depends_on_id == report_id
    assert ids(claim_due(store, "p", LEASE, now=T0)) == [report_id]
    # The report failing for now keeps the ack waiting, also once it is due again.
    when = failed(store, report_id, "503", retryable=True, now=T0)
    assert when is not None
    assert claim_due(store, "p", LEASE, now=T0 + SECOND) == []
    assert ids(claim_due(store, "p", LEASE, now=when)) == [report_id]
    done(store, report_id, now=when)
    assert ids(claim_due(store, "p", LEASE, now=when + SECOND)) == [ack_id]


def test_the_ack_of_a_report_that_gave_up_is_not_sent(store: Store) -> None:
    report_id, ack_id = report_and_ack(store)
    failed(store, report_id, "400 bad request", retryable=False, now=T0)
    assert claim_due(store, "p", LEASE, now=T0 + timedelta(days=1)) == []
    retry(store, report_id)  # the operator fixed it
    assert ids(claim_due(store, "p", LEASE, now=T0 + timedelta(days=1))) == [report_id]
    done(store, report_id)
    assert ids(claim_due(store, "p", LEASE, now=T0 + timedelta(days=1))) == [ack_id]


def test_an_expired_lease_can_be_taken_over(store: Store) -> None:
    rows = add(store, 2)
    assert ids(claim_due(store, "crashed", LEASE, now=T0)) == rows
    assert claim_due(store, "successor", LEASE, now=T0 + LEASE) == []  # not yet past expiry
    taken = claim_due(store, "successor", LEASE, now=T0 + LEASE + SECOND)
    assert ids(taken) == rows
    assert {row.lease_owner for row in taken} == {"successor"}
    assert get(store, rows[0]).lease_expires_at == T0 + 2 * LEASE + SECOND


def test_a_late_failure_of_a_lost_lease_does_not_undo_a_delivery(store: Store) -> None:
    report_id, ack_id = report_and_ack(store)
    claim_due(store, "slow", LEASE, now=T0)
    claim_due(store, "successor", LEASE, now=T0 + LEASE + SECOND)  # slow's lease ran out
    done(store, report_id, now=T0 + LEASE + 2 * SECOND)
    # The slow publisher's try ends in an error: EvalAI holds the report all the same.
    assert failed(store, report_id, "400", retryable=False, now=T0 + LEASE + 3 * SECOND) is None
    assert get(store, report_id).status is P.DONE
    assert ids(claim_due(store, "successor", LEASE, now=T0 + 2 * LEASE)) == [ack_id]


def test_concurrent_publishers_never_share_a_row(store: Store) -> None:
    """3 publishers, each with its own Store on the same database, claiming small batches at
    the same moment until nothing is due: every row is claimed by exactly one of them."""
    rows = add(store, 30)
    claims = claim_concurrently(
        store, [f"publisher-{n}" for n in range(3)],
        lambda own, owner: ids(claim_due(own, owner, LEASE, limit=3)))
    every = [row for owned in claims.values() for row in owned]
    assert sorted(every) == rows
    with store.session() as session:
        owners = dict(session.execute(sa.select(Publication.id, Publication.lease_owner)).all())
    for owner, owned in claims.items():
        assert all(owners[row] == owner for row in owned)


# ---- done, failed, retry ----------------------------------------------------------------


def test_done_records_when_and_clears_the_lease_and_error(store: Store) -> None:
    (row,) = add(store)
    claim_due(store, "p", LEASE, now=T0)
    failed(store, row, "timeout", retryable=True, now=T0)
    claim_due(store, "p", LEASE, now=T0 + timedelta(hours=1))
    done(store, row, now=T0 + timedelta(hours=1))
    stored = get(store, row)
    assert (stored.status, stored.done_at, stored.last_error, stored.lease_owner,
            stored.lease_expires_at, stored.attempts) == (
        P.DONE, T0 + timedelta(hours=1), None, None, None, 1)
    done(store, 98765)  # an unknown row is ignored


def test_retryable_failures_back_off_doubling_with_jitter_up_to_the_cap(store: Store) -> None:
    (row,) = add(store)
    now = T0
    for attempt in range(1, 12):
        when = failed(store, row, f"503 try {attempt}", retryable=True, now=now)
        step = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1))
        assert when is not None
        delay = (when - now).total_seconds()
        assert 0.5 * step - 1e-3 <= delay <= step + 1e-3, (attempt, delay)
        stored = get(store, row)
        assert (stored.status, stored.attempts, stored.next_attempt_at, stored.last_error) == (
            P.PENDING, attempt, when, f"503 try {attempt}")
        now = when
    assert step == MAX_BACKOFF


@pytest.mark.parametrize("retry_after", [60.0, 600.0])
def test_retry_after_is_honoured(store: Store, retry_after: float) -> None:
    (row,) = add(store)
    for attempt in range(1, 4):  # backoff steps 5, 10, 20 s: below retry_after
        when = failed(store, row, "429", retryable=True, retry_after=retry_after, now=T0)
        assert when == T0 + timedelta(seconds=retry_after), attempt
    # Once the backoff exceeds retry_after, the backoff wins.
    for _ in range(8):
        when = failed(store, row, "429", retryable=True, retry_after=retry_after, now=T0)
    assert when is not None
    assert (when - T0).total_seconds() >= max(retry_after, 0.5 * MAX_BACKOFF) - 1e-3
    assert when == get(store, row).next_attempt_at


def test_retry_after_beyond_the_cap_waits_the_cap(store: Store) -> None:
    """MAX_BACKOFF bounds every wait, also an absurd Retry-After."""
    (row,) = add(store)
    when = failed(store, row, "429", retryable=True, retry_after=10 * MAX_BACKOFF, now=T0)
    assert when == T0 + timedelta(seconds=MAX_BACKOFF)


def test_a_permanent_failure_gives_up_until_retried(store: Store) -> None:
    (row,) = add(store)
    claim_due(store, "p", LEASE, now=T0)
    assert failed(store, row, "x" * 5000, retryable=False, now=T0) is None
    stored = get(store, row)
    assert (stored.status, stored.attempts, stored.lease_owner) == (P.FAILED, 1, None)
    assert stored.last_error == "x" * 4000
    assert claim_due(store, "p", LEASE, now=T0 + timedelta(days=30)) == []
    retry(store, row)
    stored = get(store, row)
    assert (stored.status, stored.next_attempt_at, stored.attempts) == (P.PENDING, None, 0)
    assert ids(claim_due(store, "p", LEASE, now=T0)) == [row]
    when = failed(store, row, "503", retryable=True, now=T0)  # the first try again
    assert when is not None and when <= T0 + timedelta(seconds=FIRST_BACKOFF)
    assert failed(store, 98765, "gone", retryable=True) is None


def test_retry_leaves_pending_and_done_rows_alone(store: Store) -> None:
    pending, finished = add(store, 2)
    when = failed(store, pending, "503", retryable=True, now=T0)
    done(store, finished, now=T0)
    retry(store, pending)
    retry(store, finished)
    retry(store, 98765)
    assert get(store, pending).next_attempt_at == when  # the backoff still applies
    assert get(store, finished).status is P.DONE


# ---- digests ----------------------------------------------------------------------------


def test_last_done_digest_is_the_newest_done_one(store: Store) -> None:
    with store.write() as session:
        phase, _ = seed_phase(session)
        phase_id = phase.id
        assert last_done_digest(session, "github", ["publish"], phase_id=phase_id) is None

        def row(digest: str, target: str = "github", action: str = "publish") -> int:
            return enqueue(session, target, action, {}, phase_id=phase_id, digest=digest).id

        old, new, newer_pending, newer_failed = (row("old"), row("new"), row("pending"),
                                                 row("failed"))
        other_target, other_action = row("files", target="files"), row("ack", action="ack")
    # Done out of id order: `new` was done last.
    done(store, new, now=T0 + timedelta(hours=1))
    done(store, old, now=T0)
    failed(store, newer_failed, "422", retryable=False, now=T0 + timedelta(hours=2))
    done(store, other_target, now=T0 + timedelta(hours=3))
    done(store, other_action, now=T0 + timedelta(hours=3))
    with store.session() as session:
        assert last_done_digest(session, "github", ["publish"], phase_id=phase_id) == "new"
        files = PublicationTarget.FILES
        assert last_done_digest(session, files, ["publish"], phase_id=phase_id) == "files"
        assert last_done_digest(session, "github", ["ack"], phase_id=phase_id) == "ack"
        assert last_done_digest(session, "github", ["publish"], phase_id=phase_id + 1) is None
    assert get(store, newer_pending).status is P.PENDING


def test_last_sent_digests_agree_with_last_done_digest_per_submission(store: Store) -> None:
    with store.write() as session:
        phase, team = seed_phase(session)
        subs = [intake_submission(session, phase=phase, team=team, source="evalai",
                                  source_id=str(pk), file_url="u")[0].id for pk in (1, 2, 3)]
        report = {s: enqueue(session, "evalai", "report", {}, submission_id=s,
                             digest=f"report-{s}").id for s in subs}
        record_sent(session, "evalai", "rank", submission_id=subs[0], digest="rank-newer")
        enqueue(session, "evalai", "report", {}, submission_id=subs[1], digest="pending")
    done(store, report[subs[0]], now=T0)  # before the rank record's done_at (now)
    done(store, report[subs[1]], now=T0)
    with store.session() as session:
        many = last_sent_digests(session, "evalai", ["report", "rank"], subs)
        one = {s: last_done_digest(session, "evalai", ["report", "rank"], submission_id=s)
               for s in subs}
    assert many == {s: d for s, d in one.items() if d is not None}
    assert many == {subs[0]: "rank-newer", subs[1]: f"report-{subs[1]}"}


def test_content_digest_depends_on_content_only() -> None:
    board = {"phase": "dev", "entries": [{"team": "a", "q": 1.5, "tasks": {"x": 1, "y": 2}}]}
    reordered = {"entries": [{"tasks": {"y": 2, "x": 1}, "q": 1.5, "team": "a"}],
                 "phase": "dev"}
    assert content_digest(board) == content_digest(reordered)
    assert len(content_digest(board)) == 64
    assert content_digest(board) != content_digest({**board, "phase": "test"})
    assert content_digest([1, 2]) != content_digest([2, 1])  # list order is content
    with_numpy = {"phase": "dev", "entries": [
        {"team": "a", "q": np.float64(1.5), "tasks": {"x": np.int64(1), "y": 2}}]}
    assert content_digest(with_numpy) == content_digest(board)


def test_content_digest_writes_nan_as_null() -> None:
    assert content_digest({"q": float("nan")}) == content_digest({"q": None})
    assert content_digest({"q": [math.inf, np.float32("nan")]}) == content_digest(
        {"q": [None, None]})
    assert content_digest({"q": float("nan")}) != content_digest({"q": 0.0})
