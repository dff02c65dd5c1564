"""Standings snapshots: the newest of a phase (its history grows with every change)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db.models import Phase, StandingsSnapshot


def latest_snapshot(session: Session, phase: Phase) -> StandingsSnapshot | None:
    """The newest snapshot only, without loading the phase's whole history."""
    return session.scalars(
        sa.select(StandingsSnapshot).where(StandingsSnapshot.phase_id == phase.id)
        .order_by(StandingsSnapshot.id.desc()).limit(1)
    ).first()
