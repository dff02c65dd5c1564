"""What EvalAI and the participant are told of a result: the participant's stdout and the
numbers of every finished result of a phase, computed from the database when they are
sent, so a retried row always sends the current standings. In a hidden-task phase neither
names a task.
"""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from evaluator.daemon.settings import Settings
from evaluator.db.evaluations import latest_evaluation
from evaluator.db.models import (
    Phase,
    Source,
    SubmissionStatus,
)
from evaluator.scoring.results import EvaluationResult
from leaderboard.phase_board import phase_standings

HIDDEN_STDERR = ("The organisers have taken this submission off the leaderboard. Ask them "
                 "for the reason.")


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


def _put(row: dict[str, float], label: str, value: float) -> None:
    if math.isfinite(float(value)):  # EvalAI takes numbers only: a missing one is left out
        row[label] = round(float(value), 6)


def _shown(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "not available"
