"""What follows a submission's final status (evaluations.finish / fail) or an operator's
hide, unhide or baseline change, written in the same transaction as it: the standings
snapshot and the outbox rows.

    EvalAI   report   PUT finished (result + stdout) or failed (stderr); a hidden
                      finished one is PUT cancelled, which takes it off EvalAI's board
             ack      delete the queue message, only once the report is done (again when the
                      message comes back: ack_again)
             ranks    re-PUT every counted result whose rank or weighted score moved
             baseline PATCH the submission's is_baseline flag
    GitHub   board    one commit with every phase's boards
    files    board    the phase's boards in the publish folder

Also the participant's stdout and the result numbers EvalAI shows: computed from the
database when they are sent, so a retried row always sends the current standings.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db import publications
from evaluator.db.evaluations import latest_evaluation
from evaluator.db.models import (
    Phase,
    Publication,
    PublicationStatus,
    PublicationTarget,
    Source,
    StandingsSnapshot,
    Submission,
    SubmissionStatus,
)
from evaluator.results import EvaluationResult
from evaluator.settings import Settings
from leaderboard.phase_board import phase_standings, snapshot

HIDDEN_STDERR = ("The organisers have taken this submission off the leaderboard. Ask them "
                 "for the reason.")


def after_final(settings: Settings, session: Session, submission: Submission) -> None:
    """Snapshot the standings and enqueue what the outside world must hear. The standings
    move when a submission finishes, or when a requeued one that was scored before fails
    (it drops out)."""
    phase = submission.phase
    moved = submission.status is SubmissionStatus.FINISHED or bool(submission.evaluations)
    if moved:
        snapshot(session, phase, reason=f"submission {submission.id} {submission.status}")
    if submission.source is Source.EVALAI and settings.evalai is not None:
        report = publications.enqueue(session, PublicationTarget.EVALAI, "report", {},
                                      submission_id=submission.id)
        publications.enqueue(session, PublicationTarget.EVALAI, "ack", {},
                             submission_id=submission.id, after=report)
        if moved:
            publications.enqueue(session, PublicationTarget.EVALAI, "ranks", {},
                                 phase_id=phase.id, after=report)
    enqueue_boards(settings, session, phase)


def after_operator(settings: Settings, session: Session, submission: Submission, *,
                   evalai_action: str, reason: str) -> None:
    """What follows a hide, unhide or baseline change, in its transaction: the standings
    snapshot, the submission's state at EvalAI (`evalai_action`: "report" shows or hides
    it, "baseline" sets its flag), every rank that moved, and the boards."""
    phase = submission.phase
    snapshot(session, phase, reason=reason)
    if settings.evalai is not None:
        first = None
        if submission.source is Source.EVALAI and (
                evalai_action != "report" or submission.status is SubmissionStatus.FINISHED):
            first = publications.enqueue(session, PublicationTarget.EVALAI, evalai_action,
                                         {}, submission_id=submission.id)
        publications.enqueue(session, PublicationTarget.EVALAI, "ranks", {},
                             phase_id=phase.id, after=first)
    enqueue_boards(settings, session, phase)


def ack_again(session: Session, submission: Submission) -> None:
    """A queue message came back for a submission that was reported: the ack's delete went
    out with an older receipt handle, which SQS may answer with 200 and keep the message.
    Delete it again with the handle just received, after the report as always (nothing to
    do while the submission is not final or an ack still waits)."""
    reports = session.scalars(
        sa.select(Publication)
        .where(Publication.submission_id == submission.id,
               Publication.target == PublicationTarget.EVALAI,
               Publication.action.in_(["report", "ack"]))
        .order_by(Publication.id.desc())
    ).all()
    report = next((row for row in reports if row.action == "report"), None)
    waiting = any(row.action == "ack" and row.status is PublicationStatus.PENDING
                  for row in reports)
    if submission.status in (SubmissionStatus.FINISHED, SubmissionStatus.FAILED) \
            and report is not None and not waiting:
        publications.enqueue(session, PublicationTarget.EVALAI, "ack", {},
                             submission_id=submission.id, after=report)


def enqueue_boards(settings: Settings, session: Session, phase: Phase) -> None:
    if settings.publish_folder is not None:
        publications.enqueue_once(session, PublicationTarget.FILES, "board", phase_id=phase.id)
    if settings.github is not None:
        publications.enqueue_once(session, PublicationTarget.GITHUB, "board", phase_id=phase.id)


def participant_stdout(result: EvaluationResult, hidden_tasks: bool) -> str:
    """What the participant reads with a finished result: the mean Q, per-task Q only when
    the phase reveals its tasks, failed folds as a count, and the reader's warnings."""
    lines = [f"Mean quality score Q: {_shown(result.mean_quality)} (higher is better)."]
    if not hidden_tasks:
        lines += [f"  {task.name}: Q = {_shown(task.quality)}" for task in result.tasks]
    failed = sum(task.failed_folds for task in result.tasks)
    folds = sum(len(task.scores) for task in result.tasks)
    if failed:
        lines.append(f"{failed} of {folds} cross-validation folds could not be scored "
                     "(constant predictions or a degenerate split); they count as missing.")
    lines += [f"Warning: {warning}" for warning in result.warnings]
    lines.append("Your rank on the leaderboard moves as other teams submit.")
    return "\n".join(lines) + "\n"


def evalai_numbers(settings: Settings, session: Session,
                   phase: Phase) -> dict[int, dict[str, float]]:
    """The result numbers of every finished, not hidden EvalAI submission of the phase, by
    submission id.

    Counted submissions carry their rank, weighted score and mean Q (and per-task Q where
    tasks are revealed). Every other finished one carries a rank just below the last
    counted entry: EvalAI keeps each team's best entry by Rank, so an older submission
    must never hold a better rank than the one that counts.
    """
    assert settings.evalai is not None
    labels = settings.evalai.labels
    result = phase_standings(session, phase)
    ranking = result.ranking
    shown = {s.id for s in phase.submissions if s.source is Source.EVALAI
             and s.status is SubmissionStatus.FINISHED and not s.hidden}
    numbers: dict[int, dict[str, float]] = {}
    for i, entry in enumerate(result.entries):
        if entry.submission_id not in shown:
            continue  # requeued: its report follows its new evaluation
        row: dict[str, float] = {}
        if ranking.ranked[i]:
            row[labels["rank"]] = int(ranking.rank[i])
            _put(row, labels["weighted_score"], ranking.weighted_score[i])
        _put(row, labels["mean_q"], ranking.mean_quality[i])
        if not phase.hidden_tasks:
            for task in result.tasks:
                _put(row, task, entry.task_quality.get(task, math.nan))
        numbers[entry.submission_id] = row
    below = len(result.entries) + 1
    for submission in phase.submissions:
        if submission.id not in shown:
            continue  # a hidden one is cancelled at EvalAI: no PUT may list it again
        row = numbers.setdefault(submission.id, {})
        row.setdefault(labels["rank"], below)
        evaluation = latest_evaluation(submission)
        if labels["mean_q"] not in row and evaluation and evaluation.mean_quality is not None:
            _put(row, labels["mean_q"], evaluation.mean_quality)
    return numbers


def latest_snapshot(session: Session, phase: Phase) -> StandingsSnapshot | None:
    """The newest snapshot only (a phase's history grows with every submission)."""
    return session.scalars(
        sa.select(StandingsSnapshot).where(StandingsSnapshot.phase_id == phase.id)
        .order_by(StandingsSnapshot.id.desc()).limit(1)
    ).first()


def _put(row: dict[str, float], label: str, value: float) -> None:
    if math.isfinite(float(value)):  # EvalAI takes numbers only: a missing one is left out
        row[label] = round(float(value), 6)


def _shown(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "not available"
