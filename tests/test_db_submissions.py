"""Submissions on both backends: idempotent intake, and the lease under which one worker
evaluates one (claim_next, renew, release, expire_leases)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from evaluator.db.challenges import get_or_create_phase
from evaluator.db.models import Loss, Publication, Submission, SubmissionStatus, requeue
from evaluator.db.store import Store, open_store
from evaluator.db.submissions import (
    claim_next,
    expire_leases,
    intake_submission,
    release,
    renew,
)
from tests.databases import claim_concurrently, seed_phase

S = SubmissionStatus
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def add_submissions(store: Store, *submitted_at: datetime, phase_slug: str = "development",
                    prefix: str = "") -> list[int]:
    """One submitted row per time, in this order (ids ascend in argument order)."""
    ids = []
    with store.write() as session:
        phase, team = seed_phase(session)
        if phase_slug != "development":
            phase = get_or_create_phase(session, phase.challenge, phase_slug,
                                        scoring={"k_folds": 5, "seed": 42},
                                        tasks=list(phase.tasks))
        for n, when in enumerate(submitted_at):
            submission, created = intake_submission(
                session, phase=phase, team=team, source="evalai",
                source_id=f"{prefix}{phase_slug}-{n}", submitted_at=when)
            assert created
            ids.append(submission.id)
    return ids


def get(store: Store, submission_id: int) -> Submission:
    with store.session() as session:
        submission = session.get(Submission, submission_id)
        assert submission is not None
        return submission


# ---- intake -----------------------------------------------------------------------------


def test_intake_twice_is_one_row_and_refreshes_only_the_receipt(store: Store) -> None:
    with store.write() as session:
        phase, team = seed_phase(session)
        first, created = intake_submission(
            session, phase=phase, team=team, source="evalai", source_id="9001",
            receipt_handle="receipt-1", file_url="https://evalai/file-1.csv",
            file_name="a.csv", is_public=True, submitted_at=T0)
        assert created
    with store.write() as session:
        phase, team = seed_phase(session)
        again, created = intake_submission(
            session, phase=phase, team=team, source="evalai", source_id="9001",
            receipt_handle="receipt-2", file_url="https://evalai/other.csv",
            file_name="b.csv", is_public=False, submitted_at=T0 + LEASE)
        assert not created and again.id == first.id
    with store.write() as session:  # a redelivery without a handle keeps the newest one
        phase, team = seed_phase(session)
        intake_submission(session, phase=phase, team=team, source="evalai", source_id="9001")
    with store.session() as session:
        (stored,) = session.scalars(sa.select(Submission)).all()
        assert stored.receipt_handle == "receipt-2"
        assert (stored.file_url, stored.file_name, stored.is_public, stored.submitted_at) == (
            "https://evalai/file-1.csv", "a.csv", True, T0)
        assert stored.status is S.SUBMITTED and stored.attempts == 0


def test_intake_keeps_sources_apart(store: Store) -> None:
    with store.write() as session:
        phase, team = seed_phase(session)
        a, _ = intake_submission(session, phase=phase, team=team, source="evalai",
                                 source_id="1")
        b, created = intake_submission(session, phase=phase, team=team, source="local",
                                       source_id="1")
        assert created and a.id != b.id


# ---- claim_next -------------------------------------------------------------------------


def test_claim_takes_the_oldest_submitted_first(store: Store) -> None:
    # Ids ascend in argument order; submission times do not.
    late, early, middle = add_submissions(store, T0 + 2 * LEASE, T0, T0 + LEASE)
    now = T0 + 3 * LEASE
    claimed = [claim_next(store, f"worker-{n}", LEASE, now=now) for n in range(3)]
    assert [c.id for c in claimed if c is not None] == [early, middle, late]
    assert claim_next(store, "worker-3", LEASE, now=now) is None
    for n, submission_id in enumerate((early, middle, late)):
        stored = get(store, submission_id)
        assert stored.status is S.RUNNING
        assert stored.lease_owner == f"worker-{n}"
        assert stored.lease_expires_at == now + LEASE
        assert stored.started_at == now and stored.attempts == 0


def test_claim_breaks_ties_by_id(store: Store) -> None:
    ids = add_submissions(store, T0, T0, T0)
    assert [claim_next(store, "w", LEASE).id for _ in ids] == ids  # type: ignore[union-attr]


def test_claim_skips_what_is_not_submitted(store: Store) -> None:
    running, finished, cancelled, waiting = add_submissions(store, T0, T0, T0, T0)
    assert claim_next(store, "w1", LEASE).id == running  # type: ignore[union-attr]
    with store.write() as session:
        for submission_id, status in ((finished, S.FINISHED), (cancelled, S.CANCELLED)):
            submission = session.get(Submission, submission_id)
            assert submission is not None
            submission.status = status
    assert claim_next(store, "w2", LEASE).id == waiting  # type: ignore[union-attr]
    assert claim_next(store, "w3", LEASE) is None


def test_claim_filters_by_phase(store: Store) -> None:
    (dev,) = add_submissions(store, T0)
    (test,) = add_submissions(store, T0 + LEASE, phase_slug="test")
    test_phase = get(store, test).phase_id
    claimed = claim_next(store, "w", LEASE, phase_ids=[test_phase])
    assert claimed is not None and claimed.id == test
    assert claim_next(store, "w", LEASE, phase_ids=[test_phase]) is None
    assert claim_next(store, "w", LEASE, phase_ids=[]) is None
    assert get(store, dev).status is S.SUBMITTED
    assert claim_next(store, "w", LEASE).id == dev  # type: ignore[union-attr]


def test_claim_on_an_empty_database_is_none(store: Store) -> None:
    assert claim_next(store, "w", LEASE) is None


def test_concurrent_claimers_never_share_a_submission(store: Store) -> None:
    """4 workers, each with its own Store (own connections) on the same database, claim
    until nothing is left: every submission is claimed exactly once."""
    ids = add_submissions(store, *(T0 + timedelta(seconds=n) for n in range(20)))
    claims = claim_concurrently(
        store, [f"worker-{n}" for n in range(4)],
        lambda own, owner: [c.id] if (c := claim_next(own, owner, LEASE)) else [])
    every = [submission_id for owned in claims.values() for submission_id in owned]
    assert sorted(every) == sorted(ids)  # all claimed, none twice
    with store.session() as session:
        owners = dict(session.execute(sa.select(Submission.id, Submission.lease_owner)).all())
        statuses = set(session.scalars(sa.select(Submission.status)))
    assert statuses == {S.RUNNING}
    for owner, owned in claims.items():
        assert all(owners[submission_id] == owner for submission_id in owned)


CLAIMER = """
import sys, time
from datetime import timedelta
from pathlib import Path
from evaluator.db.store import open_store
from evaluator.db.submissions import claim_next
url, owner, go = sys.argv[1:]
store = open_store(url)
while not Path(go).exists():
    time.sleep(0.005)
while (claimed := claim_next(store, owner, timedelta(minutes=5))) is not None:
    print(claimed.id, flush=True)
"""


def test_concurrent_processes_never_share_a_submission_on_sqlite(tmp_path: Path) -> None:
    """The same on SQLite across processes: only the file lock (BEGIN IMMEDIATE) orders them."""
    url = f"sqlite:///{tmp_path}/store.db"
    store = open_store(url)
    store.upgrade()
    ids = add_submissions(store, *(T0 + timedelta(seconds=n) for n in range(40)))
    store.close()
    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMER, url, f"process-{n}", str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).parents[1])
                 for n in range(3)]
    time.sleep(0.5)  # let them import and wait at the start line
    go.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    claimed = [int(line) for stdout, _ in outputs for line in stdout.split()]
    assert sorted(claimed) == sorted(ids)


# ---- renew and release ------------------------------------------------------------------


def test_renew_extends_only_for_the_owner(store: Store) -> None:
    (submission_id,) = add_submissions(store, T0)
    claim_next(store, "owner", LEASE, now=T0)
    assert renew(store, submission_id, "owner", LEASE, now=T0 + timedelta(minutes=4))
    assert get(store, submission_id).lease_expires_at == T0 + timedelta(minutes=9)
    assert not renew(store, submission_id, "intruder", LEASE, now=T0 + timedelta(minutes=5))
    assert get(store, submission_id).lease_expires_at == T0 + timedelta(minutes=9)
    assert not renew(store, submission_id + 1000, "owner", LEASE)


def test_renew_fails_once_the_lease_was_taken_back(store: Store) -> None:
    (submission_id,) = add_submissions(store, T0)
    claim_next(store, "owner", LEASE, now=T0)
    # Still before expiry: nothing is taken back.
    assert not expire_leases(store, max_interruptions=3,
                             now=T0 + LEASE - timedelta(seconds=1))
    assert expire_leases(store, max_interruptions=3,
                         now=T0 + LEASE + timedelta(seconds=1)).requeued == [submission_id]
    assert not renew(store, submission_id, "owner", LEASE, now=T0 + 2 * LEASE)
    stored = get(store, submission_id)
    assert stored.status is S.SUBMITTED and stored.lease_expires_at is None
    # Claimed again by someone else: the old owner still cannot renew.
    assert claim_next(store, "successor", LEASE, now=T0 + 2 * LEASE) is not None
    assert not renew(store, submission_id, "owner", LEASE, now=T0 + 2 * LEASE)
    assert renew(store, submission_id, "successor", LEASE, now=T0 + 2 * LEASE)


def test_release_hands_back_without_counting_an_attempt(store: Store) -> None:
    (submission_id,) = add_submissions(store, T0)
    claim_next(store, "owner", LEASE, now=T0)
    assert not release(store, submission_id, "intruder")
    assert get(store, submission_id).status is S.RUNNING
    assert release(store, submission_id, "owner")
    stored = get(store, submission_id)
    assert (stored.status, stored.attempts, stored.lease_owner, stored.lease_expires_at,
            stored.started_at) == (S.SUBMITTED, 0, None, None, None)
    assert not release(store, submission_id, "owner")  # no longer held
    claimed = claim_next(store, "next", LEASE, now=T0 + LEASE)
    assert claimed is not None and claimed.id == submission_id and claimed.attempts == 0


# ---- expire_leases ----------------------------------------------------------------------


def test_expired_lease_counts_an_interruption_and_goes_back(store: Store) -> None:
    expiring, live = add_submissions(store, T0, T0 + timedelta(seconds=1))
    claim_next(store, "dead-worker", LEASE, now=T0)
    claim_next(store, "live-worker", 2 * LEASE, now=T0)
    expired = expire_leases(store, max_interruptions=3, now=T0 + LEASE + timedelta(seconds=1))
    assert (expired.requeued, expired.held, len(expired)) == ([expiring], [], 1)
    stored = get(store, expiring)
    assert (stored.status, stored.attempts, stored.interruptions, stored.lease_owner,
            stored.lease_expires_at) == (S.SUBMITTED, 0, 1, None, None)
    assert get(store, live).status is S.RUNNING
    assert get(store, live).lease_owner == "live-worker"


def test_the_interruption_cap_holds_the_submission_and_tells_the_participant_nothing(
        store: Store) -> None:
    """A daemon that dies is not the file's fault: no attempt is counted and no failure
    reported, however often; at the cap the submission waits for the organiser."""
    (submission_id,) = add_submissions(store, T0)
    now = T0
    for interruption in (1, 2):
        claim_next(store, f"worker-{interruption}", LEASE, now=now)
        now += 2 * LEASE
        assert expire_leases(store, max_interruptions=3, now=now).requeued == [submission_id]
        stored = get(store, submission_id)
        assert (stored.status, stored.attempts, stored.interruptions) == (
            S.SUBMITTED, 0, interruption)
    claim_next(store, "worker-3", LEASE, now=now)
    now += 2 * LEASE
    expired = expire_leases(store, max_interruptions=3, now=now)
    assert (expired.requeued, expired.held) == ([], [submission_id])
    stored = get(store, submission_id)
    assert (stored.status, stored.attempts, stored.interruptions, stored.finished_at,
            stored.lease_owner, stored.stdout, stored.stderr) == (
        S.HELD, 0, 3, None, None, None, None)
    with store.session() as session:
        assert session.scalars(sa.select(Publication)).all() == []
    assert claim_next(store, "worker-4", LEASE, now=now) is None
    # The organiser's requeue starts both counts afresh.
    with store.write() as session:
        requeue(session.get(Submission, submission_id))
    claimed = claim_next(store, "worker-5", LEASE, now=now)
    assert claimed is not None and claimed.id == submission_id
    assert (get(store, submission_id).attempts, get(store, submission_id).interruptions) == (0, 0)


def test_a_crashed_child_counts_an_attempt_and_no_interruption(store: Store) -> None:
    (submission_id,) = add_submissions(store, T0)
    claim_next(store, "worker", LEASE, now=T0)
    assert release(store, submission_id, "worker", lost=Loss.CHILD_CRASHED)
    stored = get(store, submission_id)
    assert (stored.status, stored.attempts, stored.interruptions) == (S.SUBMITTED, 1, 0)
