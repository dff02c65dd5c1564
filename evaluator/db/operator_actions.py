"""What an operator does by hand, each change with its audit row (who, when, why, what).

    find_submission  a submission of the challenge, by id or `evalai:PK` (locked)
    existing_phase   a phase of the challenge that the daemon has created
    requeue          a failed, finished or held submission back to submitted
    rescore          every failed or finished submission of a phase back to submitted
    set_hidden       a submission off (or back on) the standings: disqualified
    set_baseline     a submission marked (or unmarked) as a non-competing baseline
    recent, about    the trail, for `probeboard status` and `probeboard show`

Every function works in the caller's write transaction, so the change, its OperatorAction
row and the follow-ups the caller adds (standings snapshot, outbox rows) commit together.
A refused action raises before it changes anything.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db import models
from evaluator.db.challenges import find_phase
from evaluator.db.models import (
    OUTCOMES,
    Challenge,
    OperatorAction,
    Phase,
    Source,
    Submission,
    SubmissionStatus,
)
from evaluator.support.errors import NotFound, OperatorRefused

EVALAI_PREFIX = "evalai:"


def find_submission(session: Session, challenge: str, reference: str) -> Submission:
    """The submission `reference` names: our id (`42`) or EvalAI's pk (`evalai:1234`)."""
    text = reference.strip()
    if text.lower().startswith(EVALAI_PREFIX) and text[len(EVALAI_PREFIX):].isdigit():
        pk = str(int(text[len(EVALAI_PREFIX):]))
        submission = session.scalar(sa.select(Submission).where(
            Submission.source == Source.EVALAI, Submission.source_id == pk).with_for_update())
        if submission is None:
            raise NotFound(f"no submission with EvalAI pk {pk} has been taken in; check the "
                           "pk on EvalAI, or wait for the daemon's next poll")
    elif text.isdigit():
        submission = session.get(Submission, int(text), with_for_update=True)
        if submission is None:
            raise NotFound(f"no submission {text}; `probeboard status` lists recent ones, "
                           "or name it by EvalAI's pk as evalai:PK")
    else:
        raise NotFound(f"{reference!r} names no submission; give its id (e.g. 42) or its "
                       "EvalAI pk (e.g. evalai:1234)")
    owner = submission.phase.challenge.slug
    if owner != challenge:
        raise NotFound(f"submission {submission.id} belongs to challenge {owner!r}, not to "
                       f"{challenge!r} (the one --settings names); pass that challenge's "
                       "settings file")
    return submission


def existing_phase(session: Session, challenge: str, slug: str) -> Phase:
    phase = find_phase(session, challenge, slug)
    if phase is None:
        raise NotFound(f"phase {slug!r} of challenge {challenge!r} has no submissions yet "
                       "(the daemon creates it on its first pass); nothing to do")
    return phase


def record(session: Session, action: str, *, actor: str, reason: str, phase: Phase,
           submission: Submission | None = None,
           details: dict[str, Any] | None = None) -> OperatorAction:
    if not reason.strip():
        raise OperatorRefused(f"{action}: give a reason (--reason \"...\"); it is kept with "
                              "the action for whoever looks later")
    row = OperatorAction(actor=actor, action=action, reason=reason.strip(),
                         phase_id=phase.id,
                         submission_id=submission.id if submission is not None else None,
                         details=details)
    session.add(row)
    session.flush()
    return row


def requeue(session: Session, submission: Submission, *, actor: str,
            reason: str) -> OperatorAction:
    """Back to submitted (IllegalTransition, saying what to do, unless failed, finished or
    held): the next pass evaluates it again and reports the new outcome."""
    was = str(submission.status)
    models.requeue(submission)
    return record(session, "requeue", actor=actor, reason=reason, phase=submission.phase,
                  submission=submission, details={"from": was})


def rescore(session: Session, phase: Phase, *, actor: str, reason: str) -> OperatorAction:
    """Every failed or finished submission of the phase back to submitted, in this one
    transaction. Refused while one of them is being evaluated: it may have read the
    labels from before the fix."""
    rows = session.scalars(
        sa.select(Submission).where(Submission.phase_id == phase.id)
        .order_by(Submission.id).with_for_update()
    ).all()
    running = [s.id for s in rows if s.status is SubmissionStatus.RUNNING]
    if running:
        raise OperatorRefused(
            f"phase {phase.slug}: submissions {_ids(running)} are being evaluated now and may "
            "have read the labels from before the fix; run the rescore again once they have "
            "finished (`probeboard status` lists the running ones)")
    chosen = [s for s in rows if s.status in OUTCOMES]
    if not chosen:
        raise OperatorRefused(f"phase {phase.slug} has no finished or failed submission to "
                              "rescore; the waiting ones are scored with the current labels")
    for submission in chosen:
        models.requeue(submission)
    return record(session, "rescore", actor=actor, reason=reason, phase=phase,
                  details={"requeued": [s.id for s in chosen]})


def set_hidden(session: Session, submission: Submission, hidden: bool, *, actor: str,
               reason: str) -> OperatorAction:
    """Hide (disqualify) or show again: a hidden submission is in no standings."""
    if submission.hidden == hidden:
        undo = "unhide" if hidden else "hide"
        raise OperatorRefused(f"submission {submission.id} is already "
                              f"{'hidden' if hidden else 'shown'}; `probeboard {undo} "
                              f"{submission.id}` is the opposite")
    submission.hidden = hidden
    return record(session, "hide" if hidden else "unhide", actor=actor, reason=reason,
                  phase=submission.phase, submission=submission)


def set_baseline(session: Session, submission: Submission, baseline: bool, *, actor: str,
                 reason: str) -> OperatorAction:
    """Mark or unmark a baseline: listed and ranked, but non-competing (protocol §7)."""
    if submission.is_baseline == baseline:
        undo = (f"probeboard baseline {submission.id} --off" if baseline
                else f"probeboard baseline {submission.id}")
        raise OperatorRefused(f"submission {submission.id} is already "
                              f"{'a baseline' if baseline else 'not a baseline'}; `{undo}` "
                              "is the opposite")
    submission.is_baseline = baseline
    return record(session, "baseline" if baseline else "baseline-off", actor=actor,
                  reason=reason, phase=submission.phase, submission=submission)


def recent(session: Session, challenge: str, limit: int = 10) -> list[OperatorAction]:
    """The challenge's newest actions first."""
    return list(session.scalars(
        sa.select(OperatorAction).join(Phase, OperatorAction.phase_id == Phase.id)
        .join(Challenge).where(Challenge.slug == challenge)
        .order_by(OperatorAction.id.desc()).limit(limit)
    ))


def about(session: Session, submission: Submission) -> list[OperatorAction]:
    """The actions on this submission, and the rescores of its phase that requeued it,
    oldest first."""
    rows = session.scalars(
        sa.select(OperatorAction).where(sa.or_(
            OperatorAction.submission_id == submission.id,
            sa.and_(OperatorAction.phase_id == submission.phase_id,
                    OperatorAction.action == "rescore"),
        )).order_by(OperatorAction.id)
    ).all()
    return [row for row in rows if row.submission_id == submission.id
            or submission.id in (row.details or {}).get("requeued", [])]


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
