"""The daemon killed with SIGKILL at every step, then restarted: nothing lost, nothing doubled.

`probeboard run --once` runs as a real child process against the in-repo EvalAI and GitHub
servers, with PROBEBOARD_CRASH_AT naming the step at which it kills itself
(evaluator/support/crashpoints.py). The restart, a new daemon in the test's process, runs as if
minutes had passed (the dead process's leases have run out); a last pass must then find
nothing left to do.

The challenge: team 2's weak file is scored and reported alone first (rank 1), then team 1
sends a good file (which moves team 2 to rank 2: a rank re-PUT) and team 2 a file over the
size cap (failed). Every crash is in the handling of those two.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaluator.daemon.service import Daemon
from evaluator.daemon.settings import Settings, load_settings
from evaluator.db.models import Phase, Publication, Submission, utcnow
from evaluator.db.store import open_store
from evaluator.support.crashpoints import ENVIRONMENT
from leaderboard.phase_board import phase_standings
from tests.builders import child_env
from tests.daemon_setup import BOARD_REPO, make_challenge, secrets, write_evalai_settings
from tests.servers.evalai import EvalAIServer, World
from tests.servers.github import GitHubServer

WORKERS = {"concurrent": 1, "threads": 1, "wall_seconds": 120, "memory_mb": 6144,
           "max_file_mb": 1, "lease_seconds": 30, "max_attempts": 3, "max_interruptions": 5}
OVER_THE_CAP = b"x" * (2**20 + 1)

# Each step, in the order one pass reaches it (NAME:N is the N-th time: the second
# submission's; see evaluator/support/crashpoints.py), and what the restart finds to do:
# (expired leases, new submissions, evaluations).
POINTS = {
    "intake": (0, 1, 2),               # the good file's intake committed, the other not received
    "claimed": (1, 0, 2),              # the good file leased, nothing evaluated
    "evaluating": (1, 0, 2),           # its evaluation child runs
    "committed": (0, 0, 1),            # its scores, status and outbox rows committed
    "committed:2": (0, 0, 0),          # the oversized file's failure committed
    "evalai.report.sent": (0, 0, 0),   # EvalAI holds the good file's result; not marked done
    "evalai.ack.deleting": (0, 0, 0),  # the report is done, the queue message not yet deleted
    "evalai.ack.sent": (0, 0, 0),      # the message deleted; not marked done
    "evalai.rank.sent": (0, 0, 0),     # team 2's new rank re-PUT; not recorded
    "github.ref-update": (0, 0, 0),    # the board's commit made, the branch not yet moved to it
    "github.board.sent": (0, 0, 0),    # the branch moved; not marked done
}


def crash_settings(tmp_path: Path, server: EvalAIServer, world: World,
                   github: GitHubServer) -> Path:
    """The small challenge, fed by the EvalAI server and published to GitHub, with the
    crash tests' worker limits."""
    return write_evalai_settings(tmp_path, make_challenge(tmp_path)[0], server.url, world,
                                 github=github, workers=WORKERS)


@pytest.mark.parametrize(("point", "left"), POINTS.items(), ids=list(POINTS))
def test_a_sigkill_at_any_step_then_a_restart_changes_nothing_but_the_time(
        point: str, left: tuple[int, int, int], tmp_path: Path, evalai_server: EvalAIServer,
        evalai_world: World, github: GitHubServer) -> None:
    server, world = evalai_server, evalai_world
    path = crash_settings(tmp_path, server, world, github)
    settings = load_settings(path, environ=secrets(world))
    one, two = world.participants
    dev = world.phases["dev"]
    challenge = tmp_path / "challenge"
    weak = server.submit(two, dev, (challenge / "unrelated.csv").read_bytes())
    one_pass(settings)
    good = server.submit(one, dev, (challenge / "submission.csv").read_bytes())
    too_big = server.submit(two, dev, OVER_THE_CAP)

    crashed = daemon(path, world, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    time_passes(settings)
    counts = one_pass(settings)  # the restart
    assert (counts["expired"], counts["new"], counts["evaluated"]) == left

    # Nothing is left to do: a further pass polls the queue and sends nothing.
    sent = writes(server, github)
    assert one_pass(settings) == {"expired": 0, "new": 0, "evaluated": 0, "published": 0}
    assert writes(server, github) == sent

    # EvalAI: each final status set, never flipped, repeated only where the crash came
    # between a PUT and its record; every queue message acked.
    finals = {
        weak.pk: ["finished"] * (2 + (point == "evalai.rank.sent")),  # report, new rank
        good.pk: ["finished"] * (1 + (point == "evalai.report.sent")),
        too_big.pk: ["failed"],
    }
    for pk, expected in finals.items():
        history = server.submission(pk).history
        assert history[history.index(expected[0]):] == expected, (pk, history)
        assert set(history[:history.index(expected[0])]) == {"running"}, (pk, history)
    assert server.pending_messages() == []
    shown = {entry["submission__participant_team__team_name"]: entry["result"][0]
             for entry in server.leaderboard(world.phase_splits["dev"])}
    assert shown == {"probeboard-team-1": 1, "probeboard-team-2": 2}

    # The database: one row per submission and team, one evaluation and standings snapshot
    # per scored file, one report and one ack per submission, every publication done.
    database = tmp_path / "probeboard.db"
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT s.source_id, s.status, count(e.id) FROM submission s "
            "LEFT JOIN evaluation e ON e.submission_id = s.id GROUP BY s.id").fetchall()
        outbox = connection.execute(
            "SELECT s.source_id, p.action, count(*) FROM publication p "
            "JOIN submission s ON s.id = p.submission_id "
            "WHERE p.action IN ('report', 'ack') GROUP BY s.id, p.action").fetchall()
        unfinished = connection.execute(
            "SELECT count(*) FROM publication WHERE status != 'done'").fetchone()[0]
        teams, snapshots = connection.execute(
            "SELECT (SELECT count(*) FROM team), (SELECT count(*) FROM standings_snapshot)"
        ).fetchone()
    assert sorted(rows) == sorted([(str(weak.pk), "finished", 1), (str(good.pk), "finished", 1),
                                   (str(too_big.pk), "failed", 0)])
    assert sorted(outbox) == sorted((str(pk), action, 1) for pk in finals
                                    for action in ("report", "ack"))
    assert unfinished == 0
    assert (teams, snapshots) == (2, 2)  # a snapshot per finished file

    # GitHub: the board of the standings as the database computes them, in one commit
    # after the first board; a commit that the crash left unreferenced is not on the branch.
    commits = github.commits(BOARD_REPO, "main")
    assert len(commits) == 3  # the README, team 2 alone, both teams
    assert published_ranks(github, "dev") == standings_ranks(settings, "dev") == {
        "probeboard-team-1": 1, "probeboard-team-2": 2}


def test_restarts_of_the_daemon_never_use_up_a_valid_file_s_attempts(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer) -> None:
    """The daemon killed mid-evaluation more often than workers.max_attempts (a flaky VM,
    an over-eager cron restart): the lost leases are not the file's fault, so the file is
    scored as soon as a daemon lives long enough, and reported once."""
    server, world = evalai_server, evalai_world
    path = crash_settings(tmp_path, server, world, github)
    settings = load_settings(path, environ=secrets(world))
    valid = server.submit(world.participants[0], world.phases["dev"],
                          (tmp_path / "challenge" / "submission.csv").read_bytes())
    for _ in range(WORKERS["max_attempts"] + 1):
        assert daemon(path, world, crash_at="evaluating").returncode == -signal.SIGKILL
        time_passes(settings)
    counts = one_pass(settings)
    assert (counts["expired"], counts["evaluated"]) == (1, 1)
    history = server.submission(valid.pk).history
    assert history[-1:] == ["finished"] and set(history[:-1]) == {"running"}, history
    assert server.pending_messages() == []
    with sqlite3.connect(tmp_path / "probeboard.db") as connection:
        status, attempts, interruptions, stderr = connection.execute(
            "SELECT status, attempts, interruptions, stderr FROM submission").fetchone()
    assert (status, attempts, interruptions, stderr) == (
        "finished", 0, WORKERS["max_attempts"] + 1, "")


def test_a_file_that_kills_the_daemon_every_time_is_held_for_the_organiser(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer, caplog: pytest.LogCaptureFixture) -> None:
    """A poison pill (every daemon that evaluates it dies) is held at
    workers.max_interruptions with an ALERT and a `probeboard show` line; the participant is
    told nothing false (no failure that blames the file), the queue moves on, and the
    organiser's requeue scores it."""
    server, world = evalai_server, evalai_world
    path = crash_settings(tmp_path, server, world, github)
    settings = load_settings(path, environ=secrets(world))
    one, two = world.participants
    dev = world.phases["dev"]
    deadly = server.submit(one, dev, (tmp_path / "challenge" / "submission.csv").read_bytes())
    after = server.submit(two, dev, OVER_THE_CAP)
    for _ in range(WORKERS["max_interruptions"]):
        assert daemon(path, world, crash_at="claimed").returncode == -signal.SIGKILL
        time_passes(settings)
    with caplog.at_level(logging.ERROR):
        counts = one_pass(settings)
    assert (counts["expired"], counts["evaluated"]) == (1, 1)
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert len(alerts) == 1 and "held" in alerts[0], alerts
    assert server.submission(deadly.pk).history == []  # still submitted: nothing false
    assert server.submission(after.pk).history == ["running", "failed"]
    assert [m["submission_pk"] for m in server.pending_messages()] == [deadly.pk]
    with sqlite3.connect(tmp_path / "probeboard.db") as connection:
        status, attempts, interruptions, stderr = connection.execute(
            "SELECT status, attempts, interruptions, stderr FROM submission WHERE "
            "source_id = ?", (str(deadly.pk),)).fetchone()
    assert (status, attempts, interruptions, stderr) == (
        "held", 0, WORKERS["max_interruptions"], None)
    shown = operator(path, world, "show", f"evalai:{deadly.pk}")
    assert f"held for the organiser: the daemon stopped {WORKERS['max_interruptions']} " \
        "times" in shown.stdout, shown.stdout
    assert one_pass(settings)["evaluated"] == 0  # held: not evaluated again on its own

    operator(path, world, "requeue", f"evalai:{deadly.pk}", "--reason", "VM fixed")
    assert one_pass(settings)["evaluated"] == 1
    assert server.submission(deadly.pk).history == ["running", "finished"]
    assert server.pending_messages() == []


def test_a_message_deleted_with_a_stale_handle_is_deleted_again_when_it_comes_back(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer) -> None:
    """A crash between a receive and its intake leaves the stored receipt handle older than
    the newest; AWS SQS may answer 200 to a delete with it and keep the message. When the
    message comes back for a submission EvalAI already holds as final, it is deleted again
    (else it would come back forever, and on a FIFO queue hold up the team's next ones)."""
    server, world = evalai_server, evalai_world
    server.keep_on_stale_delete()
    server.set_visibility_timeout(600)  # the restart comes before the message is back
    path = crash_settings(tmp_path, server, world, github)
    settings = load_settings(path, environ=secrets(world))
    submission = server.submit(world.participants[0], world.phases["dev"], OVER_THE_CAP)
    assert daemon(path, world, crash_at="claimed").returncode == -signal.SIGKILL
    server.make_visible()
    assert daemon(path, world, crash_at="received").returncode == -signal.SIGKILL
    time_passes(settings)
    assert one_pass(settings)["evaluated"] == 1  # reported, and deleted with a stale handle
    assert server.submission(submission.pk).history == ["running", "failed"]
    assert server.pending_messages() != []  # AWS kept it
    server.make_visible()
    assert one_pass(settings)["new"] == 0
    assert server.pending_messages() == []
    assert server.submission(submission.pk).history == ["running", "failed"]


def test_an_evaluation_child_dies_with_its_daemon(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        github: GitHubServer) -> None:
    """A killed daemon leaves no evaluation running: the orphan would hold a CPU and memory
    beyond any wall-time limit (nobody is left to enforce it) and race the restart."""
    server, world = evalai_server, evalai_world
    path = crash_settings(tmp_path, server, world, github)
    server.submit(world.participants[0], world.phases["dev"],
                  (tmp_path / "challenge" / "submission.csv").read_bytes())
    crashed = daemon(path, world, crash_at="evaluating")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert list((tmp_path / "work").rglob("request.json"))  # the child was started
    for pid in evaluation_children(tmp_path):
        wait_gone(pid)
    # Every child has ended now; one that ran to its end would have written its outcome.
    assert not list((tmp_path / "work").rglob("outcome.pickle"))


def daemon(settings: Path, world: World, *, crash_at: str) -> subprocess.CompletedProcess[str]:
    """`probeboard run --once` in its own process, told to kill itself at `crash_at`."""
    env = {**child_env(), **secrets(world), ENVIRONMENT: crash_at}
    return subprocess.run([sys.executable, "-m", "evaluator", "run", "--once",
                           "--settings", str(settings)],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=settings.parent)


def operator(settings: Path, world: World, *args: str) -> subprocess.CompletedProcess[str]:
    """An operator command, as the organiser runs it."""
    result = subprocess.run([sys.executable, "-m", "evaluator", *args, "--settings",
                             str(settings)], capture_output=True, text=True, timeout=120,
                            env={**child_env(), **secrets(world)}, cwd=settings.parent)
    assert result.returncode == 0, result.stderr
    return result


def one_pass(settings: Settings) -> dict[str, int]:
    daemon = Daemon(settings, owner="test-daemon")
    try:
        return daemon.run_once()
    finally:
        daemon.close()


def writes(server: EvalAIServer, github: GitHubServer) -> tuple[int, int, int]:
    """Status updates and acks at EvalAI, commits on the board's branch."""
    return (server.calls("update_submission"), server.calls("queue_delete"),
            len(github.commits(BOARD_REPO, "main")))


def time_passes(settings: Settings) -> None:
    """The dead process's leases run out (and any backoff), as for a restart minutes later."""
    past = utcnow() - timedelta(seconds=1)
    store = open_store(settings.database)
    try:
        with store.write() as session:
            for table in (Submission, Publication):
                session.execute(sa.update(table).where(table.lease_expires_at.is_not(None))
                                .values(lease_expires_at=past))
            session.execute(sa.update(Publication).values(next_attempt_at=None))
    finally:
        store.close()


def published_ranks(github: GitHubServer, phase: str) -> dict[str, int]:
    board = json.loads(github.read_file(BOARD_REPO, "main",
                                        f"leaderboard/{phase}/leaderboard.json"))
    return {entry["team"]: entry["rank"] for entry in board["entries"]}


def standings_ranks(settings: Settings, slug: str) -> dict[str, int]:
    store = open_store(settings.database)
    try:
        with store.session() as session:
            phase = session.scalars(sa.select(Phase).where(Phase.slug == slug)).one()
            result = phase_standings(session, phase)
            return {entry.shown_name: int(result.ranking.rank[i])
                    for i, entry in enumerate(result.entries) if result.ranking.ranked[i]}
    finally:
        store.close()


def evaluation_children(root: Path) -> list[int]:
    """Live evaluation children started for this test (their request file is under root)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"evaluator.daemon.child" in cmdline and any(
                arg.startswith(str(root).encode()) for arg in cmdline):
            found.append(int(proc.name))
    return found


def wait_gone(pid: int) -> None:
    """Until the process has ended (a zombie that nobody reaps has ended too)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise AssertionError(f"evaluation child {pid} still runs")
