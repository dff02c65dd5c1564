"""What follows a submission's final status (db.evaluations.finish / fail hand it the
transaction) or an operator's hide, unhide or baseline change, written in the same
transaction as it: the standings snapshot and the outbox rows (outbox/actions.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.daemon.outbox.actions import Action
from evaluator.daemon.settings import Settings
from evaluator.db import publications
from evaluator.db.models import (
    Phase,
    Publication,
    PublicationStatus,
    PublicationTarget,
    Source,
    Submission,
    SubmissionStatus,
)
from leaderboard.phase_board import snapshot

EVALAI = PublicationTarget.EVALAI


@dataclass(frozen=True)
class FollowUps:
    """The daemon's outbox steps, for the targets its settings configure."""

    settings: Settings

    def after_final(self, session: Session, submission: Submission) -> None:
        """Snapshot the standings and enqueue what the outside world must hear. The
        standings move when a submission finishes, or when a requeued one that was scored
        before fails (it drops out)."""
        phase = submission.phase
        moved = submission.status is SubmissionStatus.FINISHED or bool(submission.evaluations)
        if moved:
            snapshot(session, phase, reason=f"submission {submission.id} {submission.status}")
        if submission.source is Source.EVALAI and self.settings.evalai is not None:
            report = publications.enqueue(session, EVALAI, Action.REPORT, {},
                                          submission_id=submission.id)
            publications.enqueue(session, EVALAI, Action.ACK, {},
                                 submission_id=submission.id, after=report)
            if moved:
                publications.enqueue(session, EVALAI, Action.RANKS, {}, phase_id=phase.id,
                                     after=report)
        self.boards(session, phase)

    def after_operator(self, session: Session, submission: Submission, *,
                       evalai_action: Action, reason: str) -> None:
        """What follows a hide, unhide or baseline change, in its transaction: the
        standings snapshot, the submission's state at EvalAI (`evalai_action`: REPORT shows
        or hides it, BASELINE sets its flag), every rank that moved, and the boards."""
        phase = submission.phase
        snapshot(session, phase, reason=reason)
        if self.settings.evalai is not None:
            first = None
            if submission.source is Source.EVALAI and (
                    evalai_action is not Action.REPORT
                    or submission.status is SubmissionStatus.FINISHED):
                first = publications.enqueue(session, EVALAI, evalai_action, {},
                                             submission_id=submission.id)
            publications.enqueue(session, EVALAI, Action.RANKS, {}, phase_id=phase.id,
                                 after=first)
        self.boards(session, phase)

    def boards(self, session: Session, phase: Phase) -> None:
        if self.settings.publish_folder is not None:
            publications.enqueue_once(session, PublicationTarget.FILES, Action.BOARD,
                                      phase_id=phase.id)
        if self.settings.github is not None:
            publications.enqueue_once(session, PublicationTarget.GITHUB, Action.BOARD,
                                      phase_id=phase.id)


def ack_again(session: Session, submission: Submission) -> None:
    """A queue message came back for a submission that was reported: the ack's delete went
    out with an older receipt handle, which SQS may answer with 200 and keep the message.
    Delete it again with the handle just received, after the report as always (nothing to
    do while the submission is not final or an ack still waits)."""
    reports = session.scalars(
        sa.select(Publication)
        .where(Publication.submission_id == submission.id, Publication.target == EVALAI,
               Publication.action.in_([Action.REPORT, Action.ACK]))
        .order_by(Publication.id.desc())
    ).all()
    report = next((row for row in reports if row.action == Action.REPORT), None)
    waiting = any(row.action == Action.ACK and row.status is PublicationStatus.PENDING
                  for row in reports)
    if submission.status in (SubmissionStatus.FINISHED, SubmissionStatus.FAILED) \
            and report is not None and not waiting:
        publications.enqueue(session, EVALAI, Action.ACK, {}, submission_id=submission.id,
                             after=report)
