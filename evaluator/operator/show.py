"""`probeboard show`: one submission with its log, as the organiser sees it (every task
named): status and times, its evaluations' scores, what the participant was told, the
outbox rows about it and the operator actions that touched it. Reads only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from evaluator.daemon.settings import Settings
from evaluator.db import operator_actions
from evaluator.db.models import (
    Evaluation,
    OperatorAction,
    Publication,
    Source,
    SubmissionStatus,
)
from evaluator.operator.actions import operator_store

HELD_LINE = (
    "held for the organiser: the daemon stopped {times} times while evaluating this file "
    "(killed, restarted or out of memory), so it is not evaluated again on its own and the "
    "participant was told nothing; find the cause in the daemon's log, then `probeboard "
    "requeue {id} --reason ...` tries again"
)


def submission_view(settings: Settings, reference: str) -> dict[str, Any]:
    with operator_store(settings) as store, store.session() as session:
        submission = operator_actions.find_submission(session, settings.challenge, reference)
        outbox = session.scalars(sa.select(Publication)
                                 .where(Publication.submission_id == submission.id)
                                 .order_by(Publication.id)).all()
        return {
            "submission": submission.id,
            "evalai_pk": (int(submission.source_id)
                          if submission.source is Source.EVALAI else None),
            "team": submission.team.name,
            "phase": submission.phase.slug,
            "status": str(submission.status),
            "attempts": submission.attempts,
            "interruptions": submission.interruptions,
            "hidden": submission.hidden,
            "baseline": submission.is_baseline,
            "public": submission.is_public,
            "submitted_at": submission.submitted_at,
            "started_at": submission.started_at,
            "finished_at": submission.finished_at,
            "lease": ({"owner": submission.lease_owner,
                       "expires_at": submission.lease_expires_at}
                      if submission.lease_owner else None),
            "file_url": submission.file_url,
            "evaluations": [_evaluation(e) for e in submission.evaluations],
            "stdout": submission.stdout,
            "stderr": submission.stderr,
            "outbox": [{"publication": row.id, "target": str(row.target),
                        "action": row.action, "status": str(row.status),
                        "attempts": row.attempts, "created_at": row.created_at,
                        "done_at": row.done_at, "next_attempt_at": row.next_attempt_at,
                        "last_error": row.last_error} for row in outbox],
            "operator_actions": [action_json(row)
                                 for row in operator_actions.about(session, submission)],
        }


def action_json(row: OperatorAction) -> dict[str, Any]:
    """One audit row: when, who, what, on which target, why."""
    target = (f"submission {row.submission_id}" if row.submission_id is not None
              else f"phase {row.phase.slug if row.phase else row.phase_id}")
    return {"at": row.created_at, "by": row.actor, "action": row.action, "target": target,
            "reason": row.reason, "details": row.details}


def _evaluation(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "evaluation": evaluation.id,
        "finished_at": evaluation.finished_at,
        "seconds": evaluation.seconds,
        "code_version": evaluation.code_version,
        "mean_q": evaluation.mean_quality,
        "task_q": {score.task: score.quality for score in evaluation.task_scores},
        "failed_folds": sum(score.failed_folds for score in evaluation.task_scores),
        "warnings": list(evaluation.warnings),
    }


def as_json(view: dict[str, Any]) -> str:
    return json.dumps(view, indent=2, default=_plain)


def as_text(view: dict[str, Any]) -> str:
    """The same for a person: one block per part, outputs indented as they were."""
    pk = f" (EvalAI pk {view['evalai_pk']})" if view["evalai_pk"] is not None else ""
    flags = [name for name in ("hidden", "baseline") if view[name]]
    flags.append("public" if view["public"] else "private")
    lines = [
        f"submission {view['submission']}{pk}: team {view['team']}, phase {view['phase']}",
        f"status: {view['status']} (attempts {view['attempts']}, interruptions "
        f"{view['interruptions']}; {', '.join(flags)})",
        "times: " + ", ".join(f"{name} {_plain(view[name + '_at'])}"
                              for name in ("submitted", "started", "finished")
                              if view[name + "_at"] is not None),
        f"file: {view['file_url'] or '-'}",
    ]
    if view["status"] == SubmissionStatus.HELD:
        lines.append(HELD_LINE.format(id=view["submission"], times=view["interruptions"]))
    if view["lease"]:
        lines.append(f"lease: {view['lease']['owner']} until "
                     f"{_plain(view['lease']['expires_at'])}")
    for evaluation in view["evaluations"]:
        lines.append(f"evaluation {evaluation['evaluation']} at "
                     f"{_plain(evaluation['finished_at'])}: mean Q {_q(evaluation['mean_q'])}"
                     f" ({evaluation['failed_folds']} failed folds)")
        lines += [f"  {task}: Q {_q(q)}" for task, q in evaluation["task_q"].items()]
    for name in ("stdout", "stderr"):
        if view[name]:
            lines.append(f"{name}:")
            lines += [f"  {line}" for line in view[name].splitlines()]
    if view["outbox"]:
        lines.append("outbox:")
    for row in view["outbox"]:
        error = f": {row['last_error']}" if row["last_error"] else ""
        lines.append(f"  {row['publication']} {row['target']} {row['action']}: "
                     f"{row['status']} after {row['attempts']} failed tries{error}"
                     if row["attempts"] else
                     f"  {row['publication']} {row['target']} {row['action']}: {row['status']}")
    if view["operator_actions"]:
        lines.append("operator actions:")
    for action in view["operator_actions"]:
        lines.append(f"  {_plain(action['at'])} {action['by']}: {action['action']} "
                     f"({action['reason']})")
    return "\n".join(lines)


def _q(value: float | None) -> str:
    return "not available" if value is None else f"{value:.4f}"


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)
