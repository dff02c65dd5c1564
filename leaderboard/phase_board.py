"""A phase's standings from the scoring database: recompute, snapshot, board."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from evaluator.db.evaluations import latest_evaluation
from evaluator.db.models import Evaluation, Phase, StandingsSnapshot, Submission, SubmissionStatus
from evaluator.support.jsonio import finite
from leaderboard.board import Board
from leaderboard.standings import Scored, Standings, build_board, standings

# A requeued submission keeps its place with its last scores until its new evaluation
# replaces them: a rescore moves the board from the old scores to the new ones, never
# through a board without them. One that fails on the re-run drops out.
COUNTED_STATUSES = (SubmissionStatus.FINISHED, SubmissionStatus.SUBMITTED,
                    SubmissionStatus.RUNNING)


def scored_submissions(session: Session, phase: Phase) -> list[Scored]:
    """Every scored submission of the phase that the host has not hidden, with its latest
    evaluation's scores: the finished ones, and the requeued ones that were scored
    before."""
    rows = session.scalars(
        sa.select(Submission)
        .where(Submission.phase_id == phase.id, Submission.status.in_(COUNTED_STATUSES),
               Submission.hidden.is_(False))
        .options(selectinload(Submission.team),
                 selectinload(Submission.evaluations).selectinload(Evaluation.task_scores))
    ).all()
    scored = []
    for submission in rows:
        latest = latest_evaluation(submission)
        if latest is None:
            continue
        scores = {score.task: score for score in latest.task_scores}
        scored.append(Scored(
            submission_id=submission.id,
            team=submission.team.name,
            submitted_at=submission.submitted_at,
            is_public=submission.is_public,
            task_quality={task: _number(score.quality) for task, score in scores.items()},
            is_baseline=submission.is_baseline,
            is_host=submission.is_host,
            label=(submission.method_name or submission.team.name)
            if submission.is_baseline else "",
            fold_scores={task: np.array([_number(v) for v in score.fold_scores])
                         for task, score in scores.items()},
        ))
    return scored


def phase_standings(session: Session, phase: Phase) -> Standings:
    return standings(scored_submissions(session, phase), list(phase.tasks),
                     phase.counting_rule)


def snapshot(session: Session, phase: Phase, reason: str) -> StandingsSnapshot:
    """Store the phase's current standings (the history behind the rank-evolution chart)."""
    result = phase_standings(session, phase)
    ranking = result.ranking
    entries = [
        {
            "submission_id": entry.submission_id,
            "team": entry.shown_name,
            "rank": int(ranking.rank[i]) if ranking.ranked[i] else None,
            "mean_q": finite(ranking.mean_quality[i]),
            "weighted_score": finite(ranking.weighted_score[i]),
            "task_q": {task: finite(q) for task, q in entry.task_quality.items()},
            "competing": entry.competing,
        }
        for i, entry in enumerate(result.entries)
    ]
    row = StandingsSnapshot(phase_id=phase.id, reason=reason,
                            payload={"tasks": result.tasks, "entries": entries})
    session.add(row)
    session.flush()
    return row


def phase_board(session: Session, phase: Phase, *, now: datetime | None = None,
                resamples: int = 1000) -> Board:
    history = [
        (row.created_at, {e["team"]: e["rank"] for e in row.payload["entries"]
                          if e["rank"] is not None})
        for row in session.scalars(
            sa.select(StandingsSnapshot).where(StandingsSnapshot.phase_id == phase.id)
            .order_by(StandingsSnapshot.created_at, StandingsSnapshot.id)
        )
    ]
    return build_board(
        phase_standings(session, phase), challenge=phase.challenge.title or phase.challenge.slug,
        phase=phase.slug, hidden_tasks=phase.hidden_tasks, generated_at=now or datetime.now(UTC),
        history=history, resamples=resamples,
    )


def _number(value: float | None) -> float:
    return np.nan if value is None else float(value)
