"""The daemon against the in-repo EvalAI- and GitHub-compatible servers, over real HTTP:
submissions in through EvalAI's queue, results and dynamic ranks back to EvalAI, boards
to a GitHub branch in one commit per change."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from evaluator.daemon.service import Daemon
from evaluator.daemon.settings import load_settings
from evaluator.db.models import Publication
from leaderboard.render.escape import markdown_text
from tests.daemon_setup import BOARD_REPO as REPO
from tests.daemon_setup import (
    GITHUB_TOKEN,
    HOSTILE_HEADER,
    make_challenge,
    secrets,
    write_evalai_settings,
)
from tests.servers.evalai import EvalAIServer, World
from tests.servers.github import GitHubServer


def daemon_for(tmp_path: Path, evalai: EvalAIServer, world: World,
               github: GitHubServer) -> Daemon:
    labels, _, _ = make_challenge(tmp_path)
    path = write_evalai_settings(tmp_path, labels, evalai.url, world, github=github)
    return Daemon(load_settings(path, environ=secrets(world)), owner="test-daemon")


def files(tmp_path: Path) -> tuple[bytes, bytes]:
    informative = (tmp_path / "challenge" / "submission.csv").read_bytes()
    unrelated = (tmp_path / "challenge" / "unrelated.csv").read_bytes()
    return informative, unrelated


def puts(evalai: EvalAIServer) -> int:
    return sum(1 for r in evalai.requests if r.method == "PUT")


def test_submissions_are_scored_reported_ranked_and_published(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer, caplog: pytest.LogCaptureFixture) -> None:
    world, server = evalai_world, evalai_server
    daemon = daemon_for(tmp_path, server, world, github)
    informative, unrelated = files(tmp_path)
    one, two = world.participants
    dev, final = world.phases["dev"], world.phases["final"]
    first = server.submit(one, dev, informative)
    second = server.submit(two, dev, unrelated)
    broken = server.submit(two, dev, HOSTILE_HEADER.encode() + b"a,1\n")
    in_final = server.submit(one, final, informative)
    try:
        counts = daemon.run_once()
    finally:
        daemon.close()
    assert counts["new"] == 4 and counts["evaluated"] == 4

    # EvalAI holds the final states, and every message was acked after its report.
    assert [server.submission(s.pk).status for s in (first, second, broken, in_final)] == [
        "finished", "finished", "failed", "finished"]
    assert server.pending_messages() == []
    board = server.leaderboard(world.phase_splits["dev"])
    assert [e["submission__participant_team__team_name"] for e in board] == [
        "probeboard-team-1", "probeboard-team-2"]  # each team once, in our rank order
    dev_result = dict(zip(["Rank", "Weighted score", "Mean Q"], board[0]["result"],
                          strict=False))
    assert dev_result["Rank"] == 1 and "biomass" not in str(board)  # hidden tasks
    final_board = server.leaderboard(world.phase_splits["final"])
    assert len(final_board[0]["result"]) == 5  # rank, score, mean Q and the two tasks

    # GitHub: one commit with both phases' boards, the README's own text kept.
    commits = github.commits(REPO, "main")
    assert len(commits) == 2
    published = github.files(REPO, "main")
    assert {"leaderboard/dev/leaderboard.json", "leaderboard/final/leaderboard.json",
            "leaderboard/dev/leaderboard.html"} <= set(published)
    readme = published["README.md"].decode()
    assert readme.startswith("# Embedding challenge\n\nOur own words stay.")
    assert readme.endswith("\nFooter stays too.\n")
    assert markdown_text("probeboard-team-1") in readme
    assert GITHUB_TOKEN not in caplog.text and world.host.jwt not in caplog.text

    # Nothing new: nothing sent again.
    before = (puts(server), len(github.commits(REPO, "main")))
    restarted = Daemon(daemon.settings, owner="test-daemon")
    try:
        assert restarted.run_once()["published"] == 0
    finally:
        restarted.close()
    assert (puts(server), len(github.commits(REPO, "main"))) == before


def test_ranks_move_when_others_submit_and_old_results_are_re_put(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer) -> None:
    world, server = evalai_world, evalai_server
    daemon = daemon_for(tmp_path, server, world, github)
    informative, unrelated = files(tmp_path)
    one, two = world.participants
    dev = world.phases["dev"]
    try:
        early_one = server.submit(one, dev, informative)
        early_two = server.submit(two, dev, unrelated)
        daemon.run_once()
        assert _ranks(server, world) == {"probeboard-team-1": 1, "probeboard-team-2": 2}
        # The latest public submission counts: team 1 now submits a weak file, team 2 a
        # good one, and the platform must show the new order, not team 1's stale rank 1.
        server.submit(one, dev, unrelated)
        server.submit(two, dev, informative)
        daemon.run_once()
    finally:
        daemon.close()
    assert _ranks(server, world) == {"probeboard-team-2": 1, "probeboard-team-1": 2}
    board = server.leaderboard(world.phase_splits["dev"])
    assert [e["submission__id"] for e in board] != [early_one.pk, early_two.pk]
    assert len(github.commits(REPO, "main")) == 3  # one commit per change


def _ranks(server: EvalAIServer, world: World) -> dict[str, int]:
    return {e["submission__participant_team__team_name"]: e["result"][0]
            for e in server.leaderboard(world.phase_splits["dev"])}


def test_an_outage_delays_publishing_and_loses_nothing(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer) -> None:
    world, server = evalai_world, evalai_server
    daemon = daemon_for(tmp_path, server, world, github)
    informative, _ = files(tmp_path)
    submission = server.submit(world.participants[0], world.phases["dev"], informative)
    server.fail("update_submission", times=50, status=503)  # EvalAI down for PATCH and PUT
    try:
        daemon.run_once()
        assert server.submission(submission.pk).status != "finished"
        assert server.pending_messages() != []  # never acked before the report is in
        with daemon.store.session() as session:
            waiting = {row.action: row.status for row in session.scalars(
                sa.select(Publication).where(Publication.target == "evalai"))}
        assert waiting == {"report": "pending", "ack": "pending", "ranks": "pending"}
        server.clear_faults()
        with daemon.store.write() as session:  # time passes: the backoff is over
            session.execute(sa.update(Publication).values(next_attempt_at=None))
        daemon.run_once()
    finally:
        daemon.close()
    assert server.submission(submission.pk).status == "finished"
    assert server.pending_messages() == []
