"""Benchmark: the daemon's overhead per submission beyond the evaluation itself, and the
time from a submission entering EvalAI's queue to its board committed on GitHub.

    python benchmarks/bench_daemon.py [--teams 100] [--latency-runs 3] [--poll 10]

Against the in-repo EvalAI- and GitHub-compatible servers over loopback HTTP (tests/servers),
with a small challenge (2 tasks, ridge probes, K = 3) so the evaluations stay short. Each of
TEAMS teams submits one file; one daemon pass takes them in, evaluates each in its child
process, reports, re-PUTs moved ranks, acknowledges and publishes. The overhead is the
pass's wall time minus the time spent inside the evaluation children (timed around
`child.run`), split into intake, per-submission bookkeeping (claim, download, the scores'
transaction with its standings snapshot) and publishing (reports, acks, rank re-PUTs,
boards). The baseline measured in the same run is the network floor: the four requests
every submission needs at least (receive, running, finished, delete) sent bare with
`requests`. The latency runs start `probeboard run` as a child process polling every
--poll seconds and time a new submission from the queue to the GitHub commit that holds it;
with EvalAI's 60 s poll the wait for the poll adds 30 s on average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.clients.evalai import EvalAIClient  # noqa: E402
from evaluator.daemon import child  # noqa: E402
from evaluator.daemon.service import Daemon  # noqa: E402
from evaluator.daemon.settings import load_settings  # noqa: E402
from tests.daemon_setup import make_challenge, write_settings  # noqa: E402
from tests.servers.evalai import EvalAIServer, World  # noqa: E402
from tests.servers.github import GitHubServer  # noqa: E402

TARGET_SECONDS = 1.0
REPO = "organisers/board"
GITHUB_TOKEN = "bench-github-token"
README = ("# Board\n\n<!-- probeboard:leaderboard:start -->\n"
          "<!-- probeboard:leaderboard:end -->\n")


def team_files(informative: Path, teams: int) -> list[bytes]:
    """One file a team: the informative embedding plus noise of a team-specific strength,
    so every team scores differently and each new one moves the ranks."""
    header, *rows = informative.read_text().splitlines()
    ids = [row.split(",", 1)[0] for row in rows]
    values = np.array([[float(v) for v in row.split(",")[1:]] for row in rows])
    rng = np.random.default_rng(0)
    files = []
    for team in range(teams):
        noisy = values + rng.normal(scale=0.2 + 3.0 * team / teams, size=values.shape)
        lines = [header] + [f"{i}," + ",".join(f"{v:.5g}" for v in row)
                            for i, row in zip(ids, noisy, strict=True)]
        files.append(("\n".join(lines) + "\n").encode())
    return files


@contextmanager
def servers() -> Iterator[tuple[EvalAIServer, GitHubServer]]:
    evalai = EvalAIServer().start()
    try:
        with GitHubServer(token=GITHUB_TOKEN) as github:
            github.create_repo(REPO, {"README.md": README})
            yield evalai, github
    finally:
        evalai.stop()


def make_world(evalai: EvalAIServer, teams: int) -> World:
    host = evalai.add_user("host1")
    users = [evalai.add_user(f"participant{i}") for i in range(teams)]
    team_rows = [evalai.add_team(f"team-{i:03d}", user) for i, user in enumerate(users)]
    challenge = evalai.add_challenge("bench-queue", [host], team_rows)
    phase = evalai.add_phase(challenge, "dev")
    return World(host, users, team_rows, challenge, {"dev": phase},
                 {"dev": evalai.add_phase_split(phase)})


def settings_file(root: Path, labels: Path, evalai: EvalAIServer, world: World,
                  github: GitHubServer, poll: float) -> Path:
    return write_settings(
        root, labels,
        phases=[{"slug": "dev", "labels": str(labels), "hidden_tasks": True,
                 "evalai_phase_pk": world.phases["dev"].pk}],
        evalai={"url": evalai.url, "challenge_pk": world.challenge.pk,
                "queue": world.challenge.queue, "token_env": "EVALAI_TOKEN"},
        publish={"folder": "boards", "github": {
            "repo": REPO, "branch": "main", "folder": "leaderboard",
            "base_url": github.base_url, "token_env": "GITHUB_TOKEN"}},
        poll_seconds=poll,
    )


class Timed:
    """Total seconds spent inside a function (the evaluation children, here)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def network_floor(evalai: EvalAIServer, world: World, data: bytes, rounds: int) -> float:
    """Seconds a submission for the four requests it needs at least (receive, running,
    finished, delete), through the client alone: no database, no evaluation."""
    client = EvalAIClient(evalai.url, world.host.jwt, challenge_pk=world.challenge.pk,
                          queue=world.challenge.queue)
    phase = world.phases["dev"].pk
    for _ in range(rounds):
        evalai.submit(world.participants[0], world.phases["dev"], data)
    start = time.perf_counter()
    for _ in range(rounds):
        message = client.receive_message()
        assert message is not None
        client.set_running(message.submission_pk, job_name="bench")
        client.set_finished(message.submission_pk, phase, [], stdout="")
        client.delete_message(message.receipt_handle)
    client.close()
    return (time.perf_counter() - start) / rounds


def overhead(root: Path, teams: int) -> dict[str, Any]:
    labels, informative, _ = make_challenge(root)
    files = team_files(informative, teams)
    with servers() as (evalai, github):
        world = make_world(evalai, teams)
        floor = network_floor(evalai, world, files[0], rounds=20)
        evalai.requests.clear()
        settings = load_settings(
            settings_file(root, labels, evalai, world, github, poll=60),
            environ={"EVALAI_TOKEN": world.host.jwt, "GITHUB_TOKEN": GITHUB_TOKEN})
        daemon = Daemon(settings, owner="bench")
        evaluations = Timed(child.run)
        child.run = evaluations  # the worker calls child.run: time the evaluation children
        try:
            for user, data in zip(world.participants, files, strict=True):
                evalai.submit(user, world.phases["dev"], data)
            new, intake = timed(lambda: daemon.source.intake(daemon.store))
            evaluated, evaluating = timed(daemon._evaluate_all)
            published, publishing = timed(lambda: daemon.publisher.drain("bench"))
        finally:
            child.run = evaluations.function
            daemon.close()
        assert new == evaluated == teams, (new, evaluated)
        requests_by_kind = Counter(f"{r.method} {r.route}" for r in evalai.requests)
        commits = len(github.commits(REPO, "main")) - 1
    bookkeeping = evaluating - evaluations.seconds
    total = intake + bookkeeping + publishing
    return {"teams": teams, "intake": intake, "bookkeeping": bookkeeping,
            "publishing": publishing, "evaluations": evaluations.seconds,
            "overhead": total, "per_submission": total / teams, "floor": floor,
            "published": published, "commits": commits, "requests": requests_by_kind}


def latency(root: Path, runs: int, poll: float) -> list[float]:
    """Seconds from a submission entering the queue to the commit holding its board."""
    labels, informative, _ = make_challenge(root)
    data = team_files(informative, 1)[0]
    found: list[float] = []
    with servers() as (evalai, github):
        world = make_world(evalai, runs)
        path = settings_file(root, labels, evalai, world, github, poll=poll)
        env = {**os.environ, "EVALAI_TOKEN": world.host.jwt, "GITHUB_TOKEN": GITHUB_TOKEN,
               "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "probeboard"), "run", "--settings", str(path)],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(poll * 1.5)  # the first pass (start-up, warm caches) is behind us
            for run, user in enumerate(world.participants):
                time.sleep(float(np.random.default_rng(run).uniform(0, poll)))
                team = world.teams[run].name
                start = time.perf_counter()
                evalai.submit(user, world.phases["dev"], data)
                while team.encode() not in github.files(REPO, "main").get(
                        "leaderboard/dev/leaderboard.json", b""):
                    if time.perf_counter() - start > 20 * poll + 120:
                        raise RuntimeError(f"no board for {team}: is the daemon running?")
                    time.sleep(0.05)
                found.append(time.perf_counter() - start)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--poll", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as temp:
        figures = overhead(Path(temp) / "overhead", args.teams)
        waits = latency(Path(temp) / "latency", args.latency_runs, args.poll)
    teams = figures["teams"]
    per = figures["per_submission"]
    print(f"{teams} teams, one submission each, one pass (in-repo EvalAI + GitHub servers)")
    print(f"evaluation children:  {figures['evaluations']:.1f} s "
          f"({figures['evaluations'] / teams:.2f} s a submission; not overhead)")
    for part in ("intake", "bookkeeping", "publishing"):
        print(f"{part + ':':<21} {figures[part]:.2f} s ({figures[part] / teams * 1000:.0f} ms "
              "a submission)")
    print(f"overhead:             {per:.3f} s a submission (target {TARGET_SECONDS:.1f} s: "
          f"{'OK' if per <= TARGET_SECONDS else 'MISSED'}, {per / TARGET_SECONDS:.0%})")
    print(f"network floor:        {figures['floor'] * 1000:.1f} ms a submission (4 bare "
          f"requests); overhead / floor = {per / figures['floor']:.0f}x")
    print(f"published rows: {figures['published']}; GitHub commits: {figures['commits']}")
    print("EvalAI requests: " + ", ".join(f"{kind} {count}" for kind, count
                                          in sorted(figures["requests"].items())))
    print(f"queue -> board committed, polling every {args.poll:.0f} s: "
          + ", ".join(f"{w:.1f} s" for w in waits)
          + f" (median {statistics.median(waits):.1f} s; the wait for the poll is "
            f"0-{args.poll:.0f} s of it)")


if __name__ == "__main__":
    main()
