"""Scoring-database fixtures: each test that takes `store` runs on SQLite and on a real
PostgreSQL (tests/postgres.py starts it once per session, only when needed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evaluator.db.challenges import get_or_create_challenge, get_or_create_phase, get_or_create_team
from evaluator.db.engine import Store, open_store
from evaluator.db.models import Phase, Team

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes URLs of fresh, empty databases on the parametrized backend."""
    if request.param == "sqlite":
        counter = iter(range(1000))
        return lambda: f"sqlite:///{tmp_path}/store{next(counter)}.db"
    server = request.getfixturevalue("postgres_server")  # started only when needed
    return server.create_database


@pytest.fixture
def empty_store(new_url: Callable[[], str]) -> Iterator[Store]:
    store = open_store(new_url())
    yield store
    store.close()


@pytest.fixture
def store(empty_store: Store) -> Store:
    empty_store.upgrade()
    return empty_store


def seed_phase(session: Any, **phase: Any) -> tuple[Phase, Team]:
    challenge = get_or_create_challenge(session, "embed-2026", "Embedding compression")
    settings: dict[str, Any] = {"tasks": ["biomass_mean", "clouds"], **phase}
    scoring = {"k_folds": settings.pop("k_folds", 5), "seed": settings.pop("seed", 42)}
    phase_row = get_or_create_phase(session, challenge, "development", scoring=scoring,
                                    **settings)
    team = get_or_create_team(session, challenge, source="evalai", source_id="17",
                              name="team seventeen")
    return phase_row, team
