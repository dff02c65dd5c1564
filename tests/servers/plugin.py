"""pytest fixtures for the in-repo test servers (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon_setup import BOARD_README, BOARD_REPO, GITHUB_TOKEN
from tests.servers.evalai import EvalAIServer, World
from tests.servers.github import GitHubServer


@pytest.fixture
def evalai_server() -> Iterator[EvalAIServer]:
    """A fresh EvalAI-compatible server on loopback; redelivery after 0.3 s, not 30 s."""
    server = EvalAIServer(visibility_timeout=0.3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def evalai_world(evalai_server: EvalAIServer) -> World:
    """The challenge of ../shared/evalai-real's fixtures: host1, two teams, dev and final."""
    return evalai_server.add_default_challenge()


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    """A GitHub-compatible server holding the organisers' board repository, whose README
    has the leaderboard markers between text of their own."""
    server = GitHubServer(token=GITHUB_TOKEN).start()
    server.create_repo(BOARD_REPO, {"README.md": BOARD_README})
    try:
        yield server
    finally:
        server.stop()
