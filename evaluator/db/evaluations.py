"""Evaluations: a submission's scores, recorded together with everything that follows.

`finish` and `fail` write the scores (or the error), the final status, and the step the
caller hands in (`AfterFinal`: the daemon's outbox adds the standings snapshot and the rows
that report and publish) in the same transaction: either all of it is committed or none,
so a crash leaves a submission that is still running under its lease, never one that is
finished but unreported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session

from evaluator.db.challenges import (
    STANDALONE_CHALLENGE,
    get_or_create_challenge,
    get_or_create_phase,
    get_or_create_team,
)
from evaluator.db.models import (
    CountingRule,
    Evaluation,
    Source,
    Submission,
    SubmissionStatus,
    TaskScore,
    transition,
    utcnow,
)
from evaluator.db.store import Store
from evaluator.db.submissions import intake_submission, leased
from evaluator.scoring.results import EvaluationResult, TaskResult
from evaluator.support.jsonio import code_version, finite, to_json_value


class AfterFinal(Protocol):
    """What follows a final status inside its transaction (evaluator.daemon.outbox's
    FollowUps; a standalone run's standings snapshot)."""

    def after_final(self, session: Session, submission: Submission) -> None: ...


def record_evaluation(session: Session, submission: Submission, result: EvaluationResult,
                      version: str, *, finished_at: datetime | None = None) -> Evaluation:
    """Add one evaluation and its task scores (NaN -> null); does not change the status."""
    finished_at = finished_at or utcnow()
    config = result.config
    evaluation = Evaluation(
        submission=submission,
        config_digest=config.digest(),
        config=to_json_value(config.to_dict()),
        code_version=version,
        seed=config.seed,
        probe_type=config.probe_type,
        embedding_dim=result.embedding_dim,
        warnings=to_json_value(list(result.warnings)),
        started_at=finished_at - timedelta(seconds=result.seconds),
        finished_at=finished_at,
        seconds=finite(result.seconds),
        mean_quality=finite(result.mean_quality) if result.tasks else None,
        task_scores=[_task_score(task) for task in result.tasks],
    )
    session.add(evaluation)
    session.flush()
    return evaluation


def finish(store: Store, submission_id: int, owner: str, result: EvaluationResult, *,
           stdout: str, after: AfterFinal | None = None) -> bool:
    """Record the scores and move the submission to finished, with `after` in the same
    transaction. False (nothing written) when `owner` no longer holds the lease."""
    with store.write() as session:
        submission = leased(session, submission_id, owner)
        if submission is None:
            return False
        now = utcnow()
        record_evaluation(session, submission, result, code_version(), finished_at=now)
        submission.stdout = stdout
        submission.stderr = ""
        transition(submission, SubmissionStatus.FINISHED, now=now)
        if after is not None:
            after.after_final(session, submission)
        return True


def fail(store: Store, submission_id: int, owner: str, *, stderr: str,
         after: AfterFinal | None = None) -> bool:
    """Move the submission to failed with the participant's message, `after` in the same
    transaction. False (nothing written) when `owner` no longer holds the lease."""
    with store.write() as session:
        submission = leased(session, submission_id, owner)
        if submission is None:
            return False
        submission.stdout = ""
        submission.stderr = stderr
        transition(submission, SubmissionStatus.FAILED)
        if after is not None:
            after.after_final(session, submission)
        return True


def latest_evaluation(submission: Submission) -> Evaluation | None:
    """The newest finished evaluation (an unfinished one never counts)."""
    done = [e for e in submission.evaluations if e.finished_at is not None]
    return max(done, key=lambda e: (e.finished_at, e.id)) if done else None


def record_local_run(store: Store, result: EvaluationResult, *, phase: str, method_name: str,
                     run_dir: Path | str, file_sha256: str | None = None,
                     file_name: str | None = None, is_baseline: bool = False,
                     after: AfterFinal | None = None) -> tuple[int, bool]:
    """Store a standalone `probeboard evaluate` run: (submission id, created).

    Challenge 'standalone', phase = --phase, team = method name, one submission per run
    folder (source 'local', source_id = PHASE/RUN_FOLDER): recording the same folder
    twice adds nothing. A phase keeps the scoring settings of its first run.
    """
    run_dir = Path(run_dir)
    source_id = f"{phase}/{run_dir.name}"
    with store.write() as session:
        challenge = get_or_create_challenge(session, STANDALONE_CHALLENGE,
                                            "Standalone benchmark runs")
        phase_row = get_or_create_phase(
            session, challenge, phase, scoring=result.config.scoring_settings(),
            tasks=[task.name for task in result.tasks],
            counting_rule=CountingRule.BEST, hidden_tasks=False,
        )
        team = get_or_create_team(session, challenge, source=Source.LOCAL,
                                  source_id=method_name, name=method_name)
        submission, created = intake_submission(
            session, phase=phase_row, team=team, source=Source.LOCAL, source_id=source_id,
            file_sha256=file_sha256, file_name=file_name, method_name=method_name,
            is_public=True, is_baseline=is_baseline,
        )
        if created:
            finished = utcnow()
            transition(submission, SubmissionStatus.RUNNING,
                       now=finished - timedelta(seconds=result.seconds))
            record_evaluation(session, submission, result, code_version(),
                              finished_at=finished)
            transition(submission, SubmissionStatus.FINISHED, now=finished)
            if after is not None:
                after.after_final(session, submission)
        return submission.id, created


def _task_score(task: TaskResult) -> TaskScore:
    return TaskScore(
        task=task.name,
        kind=task.kind,
        samples=int(task.samples),
        quality=finite(task.quality),
        mean=finite(task.mean),
        std=finite(task.std),
        failed_folds=int(task.failed_folds),
        fold_scores=[finite(score) for score in np.asarray(task.scores, dtype=float).tolist()],
        metrics=to_json_value(dict(task.metrics)),
        hyperparameters=to_json_value(dict(task.hyperparameters)),
    )
