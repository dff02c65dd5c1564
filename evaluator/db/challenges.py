"""Challenges, phases and teams: found or created by their natural keys."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from evaluator.db.models import Challenge, Phase, Source, Team
from evaluator.support.errors import PhaseSettingsMismatch
from evaluator.support.jsonio import to_json_value

STANDALONE_CHALLENGE = "standalone"


def get_or_create_challenge(session: Session, slug: str, title: str | None = None) -> Challenge:
    challenge = session.scalar(sa.select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        challenge = Challenge(slug=slug, title=title or slug)
        session.add(challenge)
        session.flush()
    return challenge


def find_phase(session: Session, challenge: str, slug: str) -> Phase | None:
    return session.scalars(
        sa.select(Phase).join(Phase.challenge)
        .where(Phase.slug == slug, Phase.challenge.has(slug=challenge))
    ).first()


def challenge_phases(session: Session, challenge: str) -> list[Phase]:
    return list(session.scalars(
        sa.select(Phase).join(Challenge).where(Challenge.slug == challenge).order_by(Phase.slug)
    ))


def get_or_create_phase(session: Session, challenge: Challenge, slug: str, *,
                        scoring: dict[str, Any], tasks: list[str], **settings: Any) -> Phase:
    """The phase `slug` of challenge, created with these scoring settings (K and seed
    among them) and task set the first time.

    An existing phase must have been scored the same way: other settings raise
    PhaseSettingsMismatch naming each differing key, instead of ranking runs whose fold
    scores are not comparable.
    """
    # Compared and stored as JSON holds them: a tuple read back is a list, NaN is null.
    scoring = to_json_value(dict(scoring))
    phase = session.scalar(
        sa.select(Phase).where(Phase.challenge_id == challenge.id, Phase.slug == slug)
    )
    if phase is None:
        phase = Phase(challenge=challenge, slug=slug, k_folds=scoring["k_folds"],
                      seed=scoring["seed"], tasks=list(tasks), scoring=dict(scoring),
                      **settings)
        session.add(phase)
        session.flush()
        return phase
    check_phase_settings(phase, scoring, tasks)
    return phase


def check_phase_settings(phase: Phase, scoring: dict[str, Any], tasks: list[str]) -> None:
    scoring = to_json_value(dict(scoring))
    known = dict(phase.scoring or {"k_folds": phase.k_folds, "seed": phase.seed})
    differences: dict[str, tuple[object, object]] = {
        key: (known.get(key), scoring.get(key))
        for key in sorted(known.keys() | scoring.keys())
        if key in known and known.get(key) != scoring.get(key)
    }
    if sorted(phase.tasks) != sorted(tasks):
        differences["tasks"] = (sorted(phase.tasks), sorted(tasks))
    if differences:
        raise PhaseSettingsMismatch(phase.slug, differences)
    if phase.scoring is None:  # a phase from before settings were kept: adopt these
        phase.scoring = dict(scoring)


def get_or_create_team(session: Session, challenge: Challenge, *, source: Source | str,
                       source_id: str, name: str) -> Team:
    team = session.scalar(sa.select(Team).where(
        Team.challenge_id == challenge.id, Team.source == Source(source),
        Team.source_id == source_id,
    ))
    if team is None:
        team = Team(challenge=challenge, source=Source(source), source_id=source_id, name=name)
        session.add(team)
        session.flush()
    elif team.name != name:
        team.name = name  # teams rename themselves on EvalAI; the pk stays
    return team
