"""Evaluations on both backends: finish/fail write scores, final status and the caller's
follow-up in one transaction, only under the lease; latest_evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db.evaluations import fail, finish, latest_evaluation, record_evaluation
from evaluator.db.models import (
    Evaluation,
    Publication,
    PublicationTarget,
    StandingsSnapshot,
    Submission,
    SubmissionStatus,
    TaskScore,
    transition,
)
from evaluator.db.publications import enqueue
from evaluator.db.store import Store
from evaluator.db.submissions import claim_next, expire_leases, intake_submission
from tests.builders import make_result
from tests.databases import seed_phase

S = SubmissionStatus
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def claimed(store: Store, owner: str = "worker") -> int:
    """A new submission, claimed by owner."""
    with store.write() as session:
        phase, team = seed_phase(session)
        count = session.scalar(sa.select(sa.func.count()).select_from(Submission)) or 0
        intake_submission(session, phase=phase, team=team, source="evalai",
                          source_id=str(count + 1))
    submission = claim_next(store, owner, LEASE)
    assert submission is not None
    return submission.id


class Report:
    """What the daemon adds when a submission ends: a board snapshot and its report."""

    def after_final(self, session: Session, submission: Submission) -> None:
        session.add(StandingsSnapshot(phase_id=submission.phase_id, payload={"entries": []},
                                      reason=f"submission {submission.id} {submission.status}"))
        enqueue(session, PublicationTarget.EVALAI, "report",
                {"status": str(submission.status)}, submission_id=submission.id)


class BrokenReport(Report):
    def after_final(self, session: Session, submission: Submission) -> None:
        super().after_final(session, submission)
        session.flush()  # the rows reached the database before the failure
        raise RuntimeError("follow-up broke")


follow_up = Report()
broken_follow_up = BrokenReport()


def counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {model.__tablename__: session.scalar(
                    sa.select(sa.func.count()).select_from(model)) or 0
                for model in (Evaluation, TaskScore, StandingsSnapshot, Publication)}


def get(store: Store, submission_id: int) -> Submission:
    with store.session() as session:
        submission = session.get(Submission, submission_id)
        assert submission is not None
        return submission


NOTHING = {"evaluation": 0, "task_score": 0, "standings_snapshot": 0, "publication": 0}


# ---- finish -----------------------------------------------------------------------------


def test_finish_writes_scores_status_output_and_follow_up_together(store: Store) -> None:
    submission_id = claimed(store)
    result = make_result()
    assert finish(store, submission_id, "worker", result, stdout="scored 2 tasks",
                  after=follow_up)
    stored = get(store, submission_id)
    assert (stored.status, stored.stdout, stored.stderr) == (S.FINISHED, "scored 2 tasks", "")
    assert stored.lease_owner is None and stored.lease_expires_at is None
    assert stored.finished_at is not None
    with store.session() as session:
        (evaluation,) = session.scalars(sa.select(Evaluation)).all()
        assert evaluation.submission_id == submission_id
        assert evaluation.finished_at == stored.finished_at
        assert evaluation.mean_quality == pytest.approx(result.mean_quality)
        assert sorted(score.task for score in evaluation.task_scores) == [
            "biomass_mean", "clouds"]
        snapshot = session.scalars(sa.select(StandingsSnapshot)).one()
        assert snapshot.reason == f"submission {submission_id} finished"
        report = session.scalars(sa.select(Publication)).one()
        assert (report.submission_id, report.action, report.payload) == (
            submission_id, "report", {"status": "finished"})


def test_finish_whose_follow_up_raises_writes_nothing(store: Store) -> None:
    submission_id = claimed(store)
    with pytest.raises(RuntimeError, match="follow-up broke"):
        finish(store, submission_id, "worker", make_result(), stdout="scored",
               after=broken_follow_up)
    stored = get(store, submission_id)
    assert (stored.status, stored.lease_owner, stored.stdout, stored.finished_at) == (
        S.RUNNING, "worker", None, None)
    assert counts(store) == NOTHING
    # The worker still holds the lease and can finish properly.
    assert finish(store, submission_id, "worker", make_result(), stdout="scored",
                  after=follow_up)
    assert counts(store) == {**NOTHING, "evaluation": 1, "task_score": 2,
                             "standings_snapshot": 1, "publication": 1}


def test_a_worker_that_lost_the_lease_writes_nothing(store: Store) -> None:
    submission_id = claimed(store, "slow-worker")
    later = datetime.now(UTC) + 2 * LEASE
    assert expire_leases(store, max_interruptions=3, now=later).requeued == [submission_id]
    # Taken back, not yet claimed again.
    assert not finish(store, submission_id, "slow-worker", make_result(), stdout="late",
                      after=follow_up)
    assert not fail(store, submission_id, "slow-worker", stderr="late", after=follow_up)
    assert get(store, submission_id).status is S.SUBMITTED
    # Claimed by another worker: the slow one still cannot write over it.
    successor = claim_next(store, "successor", LEASE, now=later)
    assert successor is not None and successor.id == submission_id
    assert not finish(store, submission_id, "slow-worker", make_result(), stdout="late",
                      after=follow_up)
    assert not fail(store, submission_id, "slow-worker", stderr="late", after=follow_up)
    stored = get(store, submission_id)
    assert (stored.status, stored.lease_owner, stored.stdout, stored.stderr) == (
        S.RUNNING, "successor", None, None)
    assert counts(store) == NOTHING
    assert finish(store, submission_id, "successor", make_result(), stdout="on time")
    assert get(store, submission_id).stdout == "on time"
    # Finished: nobody holds a lease any more.
    assert not finish(store, submission_id, "successor", make_result(), stdout="twice")
    assert counts(store)["evaluation"] == 1


def test_finish_of_an_unknown_submission_is_false(store: Store) -> None:
    assert not finish(store, 12345, "worker", make_result(), stdout="")
    assert not fail(store, 12345, "worker", stderr="")


# ---- fail -------------------------------------------------------------------------------


def test_fail_writes_message_status_and_follow_up_together(store: Store) -> None:
    submission_id = claimed(store)
    assert fail(store, submission_id, "worker", stderr="column 3 is not a number",
                after=follow_up)
    stored = get(store, submission_id)
    assert (stored.status, stored.stdout, stored.stderr, stored.lease_owner) == (
        S.FAILED, "", "column 3 is not a number", None)
    assert stored.finished_at is not None
    assert counts(store) == {**NOTHING, "standings_snapshot": 1, "publication": 1}
    with store.session() as session:
        report = session.scalars(sa.select(Publication)).one()
        assert report.payload == {"status": "failed"}


def test_fail_whose_follow_up_raises_writes_nothing(store: Store) -> None:
    submission_id = claimed(store)
    with pytest.raises(RuntimeError, match="follow-up broke"):
        fail(store, submission_id, "worker", stderr="bad file", after=broken_follow_up)
    stored = get(store, submission_id)
    assert (stored.status, stored.lease_owner, stored.stderr) == (S.RUNNING, "worker", None)
    assert counts(store) == NOTHING


# ---- latest_evaluation ------------------------------------------------------------------


def test_latest_evaluation_ignores_unfinished_ones(store: Store) -> None:
    result = make_result()
    with store.write() as session:
        phase, team = seed_phase(session)
        submission, _ = intake_submission(session, phase=phase, team=team, source="evalai",
                                          source_id="1")
        transition(submission, S.RUNNING)
        older = record_evaluation(session, submission, result, "1", finished_at=T0)
        newest = record_evaluation(session, submission, result, "1",
                                   finished_at=T0 + timedelta(hours=1))
        # A later row that finished earlier does not win; unfinished rows never count.
        record_evaluation(session, submission, result, "1", finished_at=T0 + timedelta(minutes=30))
        for _ in range(2):
            unfinished = record_evaluation(session, submission, result, "1")
            unfinished.finished_at = None
        tie = record_evaluation(session, submission, result, "1",
                                finished_at=T0 + timedelta(hours=1))
        transition(submission, S.FINISHED)
        submission_id, older_id, newest_id, tie_id = submission.id, older.id, newest.id, tie.id
    with store.session() as session:
        stored = session.get(Submission, submission_id)
        assert stored is not None
        assert sum(e.finished_at is None for e in stored.evaluations) == 2
        latest = latest_evaluation(stored)
        assert latest is not None and latest.id == tie_id  # same time: the later row
        assert newest_id < tie_id and older_id < newest_id


def test_latest_evaluation_of_only_unfinished_runs_is_none(store: Store) -> None:
    with store.write() as session:
        phase, team = seed_phase(session)
        submission, _ = intake_submission(session, phase=phase, team=team, source="evalai",
                                          source_id="1")
        assert latest_evaluation(submission) is None
        evaluation = record_evaluation(session, submission, make_result(), "1")
        evaluation.finished_at = None
        submission_id = submission.id
    with store.session() as session:
        stored = session.get(Submission, submission_id)
        assert stored is not None and len(stored.evaluations) == 1
        assert latest_evaluation(stored) is None


def test_a_rerun_adds_an_evaluation_and_becomes_the_latest(store: Store) -> None:
    submission_id = claimed(store)
    assert finish(store, submission_id, "worker", make_result(), stdout="first")
    with store.write() as session:  # the organiser re-runs it
        submission = session.get(Submission, submission_id)
        assert submission is not None
        transition(submission, S.SUBMITTED)
    assert claim_next(store, "worker-2", LEASE) is not None
    assert finish(store, submission_id, "worker-2", make_result(seed=7), stdout="second")
    with store.session() as session:
        stored = session.get(Submission, submission_id)
        assert stored is not None and len(stored.evaluations) == 2
        latest = latest_evaluation(stored)
        assert latest is not None and latest.seed == 7
        assert stored.stdout == "second" and stored.attempts == 0
