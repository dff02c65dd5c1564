"""The operator's commands: requeue, rescore, hide / unhide, baseline.

Each writes its change, its audit row (evaluator/db/operator_actions.py) and its
follow-ups (standings snapshot, outbox rows) in one transaction, and nothing when it is
refused. Nothing is sent from here: the daemon's next pass evaluates what was requeued
and its publisher sends the outbox, retried until done like every other publication.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from evaluator.daemon.outbox.actions import Action
from evaluator.daemon.outbox.followups import FollowUps
from evaluator.daemon.settings import Settings
from evaluator.db import operator_actions
from evaluator.db.challenges import check_phase_settings
from evaluator.db.models import Submission
from evaluator.db.store import Store, open_store
from evaluator.scoring.tasks import read_tasks, select_tasks
from evaluator.support.errors import PhaseSettingsMismatch

NEXT_PASS = "the daemon's next pass"
RESCORE_FIX = ("a rescore scores with the phase's own settings and task set, only label "
               "values may change: put the settings file and the label folder's task files "
               "back as they were, or score the new settings as a new phase (a new slug)")


@dataclass(frozen=True)
class Actor:
    """Who acts and why (both kept in the operator_action row)."""

    who: str
    why: str


def login_name() -> str:
    """The default --by: the login name ($LOGNAME, $USER, ... then the password file)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no such variables and no passwd entry (a bare container)
        return "unknown"


@contextmanager
def operator_store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings.database)
    try:
        store.upgrade()
        yield store
    finally:
        store.close()


def requeue(settings: Settings, reference: str, actor: Actor) -> str:
    with operator_store(settings) as store, store.write() as session:
        submission = operator_actions.find_submission(session, settings.challenge, reference)
        action = operator_actions.requeue(session, submission, actor=actor.who,
                                          reason=actor.why)
        return (f"{_named(submission)} requeued (was {(action.details or {})['from']}); "
                f"{NEXT_PASS} evaluates it again, reports the outcome and updates the boards")


def rescore(settings: Settings, phase_slug: str, actor: Actor) -> str:
    """Requeue every failed or finished submission of the phase after a label fix. The
    settings file and the label folder must still give the phase's own scoring settings
    and task set (PhaseSettingsMismatch otherwise, saying what to do)."""
    phase_settings = settings.phase(phase_slug)
    tasks = select_tasks(read_tasks(phase_settings.labels), phase_settings.scoring.task_filter)
    with operator_store(settings) as store, store.write() as session:
        phase = operator_actions.existing_phase(session, settings.challenge, phase_slug)
        try:
            check_phase_settings(phase, phase_settings.scoring.scoring_settings(),
                                 [task.name for task in tasks])
        except PhaseSettingsMismatch as error:
            raise PhaseSettingsMismatch(phase_slug, error.differences, fix=RESCORE_FIX) from None
        action = operator_actions.rescore(session, phase, actor=actor.who, reason=actor.why)
        count = len((action.details or {})["requeued"])
        where = " and on EvalAI" if settings.evalai is not None else ""
        return (f"phase {phase_slug}: {count} submissions requeued; {NEXT_PASS} scores them "
                "with the current labels, and the new scores replace the old ones in the "
                f"standings, the boards{where}")


def set_hidden(settings: Settings, reference: str, hidden: bool, actor: Actor) -> str:
    with operator_store(settings) as store, store.write() as session:
        submission = operator_actions.find_submission(session, settings.challenge, reference)
        operator_actions.set_hidden(session, submission, hidden, actor=actor.who,
                                    reason=actor.why)
        verb = "hidden" if hidden else "shown again"
        return _follow(settings, session, submission, Action.REPORT, verb)


def set_baseline(settings: Settings, reference: str, baseline: bool, actor: Actor) -> str:
    with operator_store(settings) as store, store.write() as session:
        submission = operator_actions.find_submission(session, settings.challenge, reference)
        operator_actions.set_baseline(session, submission, baseline, actor=actor.who,
                                      reason=actor.why)
        verb = "marked as a baseline" if baseline else "no longer a baseline"
        return _follow(settings, session, submission, Action.BASELINE, verb)


def _follow(settings: Settings, session: Session, submission: Submission,
            evalai_action: Action, verb: str) -> str:
    FollowUps(settings).after_operator(
        session, submission, evalai_action=evalai_action,
        reason=f"submission {submission.id} {verb} by the operator")
    where = " and its state and the ranks on EvalAI" if settings.evalai is not None else ""
    return f"{_named(submission)} {verb}; {NEXT_PASS} republishes the boards{where}"


def _named(submission: Submission) -> str:
    return (f"submission {submission.id} (team {submission.team.name}, "
            f"phase {submission.phase.slug})")
