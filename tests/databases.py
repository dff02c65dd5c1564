"""Scoring-database fixtures: each test that takes `store` runs on SQLite and on a real
PostgreSQL (tests/postgres.py starts it once per session, only when needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from evaluator.db.challenges import get_or_create_challenge, get_or_create_phase, get_or_create_team
from evaluator.db.models import Phase, Team
from evaluator.db.store import MIGRATIONS_DIR, Store, open_store

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


def claim_concurrently(store: Store, owners: list[str],
                       claim: Callable[[Store, str], list[int]]) -> dict[str, list[int]]:
    """Each owner, with its own Store (own connections) on `store`'s database, starts at
    the same moment and calls `claim` until it returns nothing; what each one got."""
    stores = [open_store(store.url.render_as_string(hide_password=False)) for _ in owners]
    claims: dict[str, list[int]] = {owner: [] for owner in owners}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(owners))

    def work(owner: str, own: Store) -> None:
        try:
            barrier.wait()
            while got := claim(own, owner):
                claims[owner].extend(got)
        except BaseException as error:  # reported by the calling thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=pair)
               for pair in zip(owners, stores, strict=True)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for own in stores:
            own.close()
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), "a claimer hung"
    return claims


def revisions() -> list[str]:
    """Every migration revision the project ships, oldest first."""
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def head_revision() -> str:
    return revisions()[-1]
