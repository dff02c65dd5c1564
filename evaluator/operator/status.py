"""`probeboard status`: what the daemon is doing, from the database and status.json, and
what the operators did last."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from evaluator.daemon.settings import Settings
from evaluator.db import operator_actions
from evaluator.db.models import Phase, Publication, PublicationStatus, Submission
from evaluator.db.models import SubmissionStatus as S
from evaluator.db.store import open_store
from evaluator.operator.show import action_json


def daemon_status(settings: Settings) -> dict[str, Any]:
    store = open_store(settings.database)
    try:
        store.upgrade()
        with store.session() as session:
            counts = session.execute(
                sa.select(Phase.slug, Submission.status, sa.func.count())
                .join(Submission.phase).group_by(Phase.slug, Submission.status)
            ).all()
            running = session.scalars(
                sa.select(Submission).where(Submission.status == S.RUNNING)).all()
            held = session.scalars(
                sa.select(Submission).where(Submission.status == S.HELD)).all()
            failed = session.scalars(
                sa.select(Submission).where(Submission.status == S.FAILED)
                .order_by(Submission.finished_at.desc()).limit(10)).all()
            outbox = session.execute(
                sa.select(Publication.target, Publication.action, Publication.status,
                          sa.func.count())
                .where(Publication.status != PublicationStatus.DONE)
                .group_by(Publication.target, Publication.action, Publication.status)
            ).all()
            stuck = session.scalars(
                sa.select(Publication).where(Publication.last_error.is_not(None),
                                             Publication.status != PublicationStatus.DONE)
                .order_by(Publication.id.desc()).limit(5)).all()
            phases: dict[str, dict[str, int]] = {}
            for slug, status, count in counts:
                phases.setdefault(slug, {})[str(status)] = count
            return {
                "daemon": _status_file(settings),
                "phases": phases,
                "running": [{"submission": s.id, "owner": s.lease_owner,
                             "lease_expires_at": s.lease_expires_at} for s in running],
                "held": [{"submission": s.id, "team": s.team.name,
                          "interruptions": s.interruptions} for s in held],
                "recently_failed": [{"submission": s.id, "team": s.team.name,
                                     "message": (s.stderr or "")[:200]} for s in failed],
                "outbox": [{"target": str(t), "action": a, "status": str(st), "count": n}
                           for t, a, st, n in outbox],
                "outbox_errors": [{"publication": p.id, "attempts": p.attempts,
                                   "next_attempt_at": p.next_attempt_at,
                                   "last_error": (p.last_error or "")[:300]} for p in stuck],
                "operator_actions": [action_json(row) for row in
                                     operator_actions.recent(session, settings.challenge)],
            }
    finally:
        store.close()


def _status_file(settings: Settings) -> dict[str, Any]:
    path = settings.workdir / "status.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {"note": f"no {path} yet: the daemon has not completed a pass"}
