"""Issue 7 end to end, on the real EvalAI server (../shared/evalai-real) and on the in-repo
one: three teams submit through the participants' real `evalai` CLI to a development phase
(hidden tasks) and a final phase (tasks revealed), one file is broken; the daemon
evaluates; then everything is read back over the servers' own APIs and checked against the
standings computed straight from the daemon's SQLite file: each submission's status,
stdout/stderr and result, the public leaderboards (every team once, in our rank order) and
the GitHub branch (one commit per change). A second round moves the ranks.

On the real server the test makes its own challenge (tests/servers/real_evalai.py), with
the boot fixture's leaderboard schema, so other tests' results never share its boards.
"""

from __future__ import annotations

import ast
import json
import math
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from evaluator.daemon.service import Daemon
from evaluator.daemon.settings import DEFAULT_LABELS, Settings, load_settings
from evaluator.db.models import CountingRule
from leaderboard.standings import Scored, Standings, standings
from tests.builders import write_noisy_submission
from tests.daemon_setup import BOARD_REPO as REPO
from tests.daemon_setup import GITHUB_TOKEN, make_challenge, write_settings
from tests.servers.evalai import DEFAULT_SCHEMA, EvalAIServer
from tests.servers.github import GitHubServer
from tests.servers.real_evalai import new_real_challenge, run_cli

TASKS = ["biomass", "crops"]  # tests/daemon_setup.py's label files
BRANCH = "main"
# What README.md ("The EvalAI leaderboard to create") asks the organiser for.
README_SCHEMA = {
    "labels": ["Rank", "Weighted score", "Mean Q"],
    "default_order_by": "Rank",
    "metadata": {"Rank": {"sort_ascending": True}, "Weighted score": {"sort_ascending": True}},
}


@dataclass
class Team:
    name: str
    jwt: str
    home: Path  # the CLI's HOME: its host URL and token


@dataclass
class Arena:
    """One EvalAI server with a fresh challenge: dev and final, split test, three teams."""

    name: str
    url: str
    host: str  # the host's JWT (the daemon's token)
    challenge: int
    queue: str
    phases: dict[str, int]
    splits: dict[str, int]  # phase -> challenge phase split pk
    schemas: dict[str, dict[str, Any]]
    teams: list[Team]

    def submit(self, team: Team, phase: str, file: Path, *flags: str) -> int:
        """`evalai challenge C phase P submit --file F`, answering no to the details."""
        done = run_cli(team.home, "challenge", str(self.challenge), "phase",
                       str(self.phases[phase]), "submit", "--file", str(file), *flags,
                       stdin="n\n")
        assert done.returncode == 0, done.stdout + done.stderr
        found = re.search(r"with the ID (\d+) is successfully submitted", done.stdout)
        assert found, done.stdout
        return int(found[1])

    def submission(self, pk: int, token: str) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/api/jobs/submission/{pk}", timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text[:300]
        return dict(answer.json())

    def leaderboard(self, phase: str) -> list[dict[str, Any]]:
        """The public leaderboard (no auth), every page, in the platform's order."""
        answer = requests.get(f"{self.url}/api/jobs/challenge_phase_split/"
                              f"{self.splits[phase]}/leaderboard/?page_size=100", timeout=30)
        assert answer.status_code == 200 and answer.json()["next"] is None
        return list(answer.json()["results"])


@dataclass
class Shown:
    """What a participant reads of one submission on the server."""

    status: str
    stdout: str
    stderr: str
    result: list[dict[str, float]]  # the result file: one dict per split shown
    result_file: str  # a new file (URL) on every PUT


def shown(arena: Arena, pk: int, team: Team) -> Shown:
    data = arena.submission(pk, team.jwt)

    def text(key: str) -> str:
        url = data[key]
        return requests.get(url, timeout=30).text if url else ""

    # EvalAI stores the result as a Python repr, not JSON (spec/evalai-api.md §1.6)
    result = ast.literal_eval(text("submission_result_file") or "[]")
    return Shown(data["status"], text("stdout_file"), text("stderr_file"), result,
                 data["submission_result_file"] or "")


# ---- the two servers -------------------------------------------------------------------


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.real_evalai), "in-repo"])
def arena(request: pytest.FixtureRequest, tmp_path: Path, cli_ready: None) -> Arena:
    if request.param == "real":
        real = request.getfixturevalue("real_evalai")
        made = new_real_challenge(uuid.uuid4().hex[:12], TASKS, tmp_path / "challenge.json")
        arena = Arena("real", real.url, real.host, made["challenge_pk"], made["queue"],
                      made["phase_pks"], made["phase_split_pks"], made["schemas"], [])
        members = [(p["team_name"], p["jwt"]) for p in made["participants"]]
    else:
        arena, members = in_repo_arena(request.getfixturevalue("evalai_server"))
    for name, jwt in members:
        team = Team(name, jwt, tmp_path / "cli" / name)
        assert run_cli(team.home, "host", "-sh", arena.url).returncode == 0
        assert run_cli(team.home, "set_token", jwt).returncode == 0
        arena.teams.append(team)
    return arena


def in_repo_arena(server: EvalAIServer) -> tuple[Arena, list[tuple[str, str]]]:
    """The same challenge as real_evalai_challenge.py makes, on the in-repo server."""
    server.set_visibility_timeout(30)  # SQS's default, as on the real server
    world = server.add_default_challenge()
    third = server.add_user("participant3")
    world.challenge.participant_teams.add(server.add_team("probeboard-team-3", third).pk)
    world.phase_splits["final"].schema["labels"] += TASKS
    arena = Arena("in-repo", server.url, world.host.jwt, world.challenge.pk,
                  world.challenge.queue, {c: p.pk for c, p in world.phases.items()},
                  {c: s.pk for c, s in world.phase_splits.items()},
                  {c: s.schema for c, s in world.phase_splits.items()}, [])
    teams = [t.name for t in world.teams] + ["probeboard-team-3"]
    return arena, list(zip(teams, [*(p.jwt for p in world.participants), third.jwt],
                           strict=True))


def daemon_settings(tmp_path: Path, arena: Arena, github: GitHubServer, labels: Path) -> Path:
    return write_settings(
        tmp_path, labels,
        phases=[
            {"slug": "dev", "labels": str(labels), "hidden_tasks": True,
             "counting_rule": "latest_public", "evalai_phase_pk": arena.phases["dev"]},
            {"slug": "final", "labels": str(labels), "hidden_tasks": False,
             "counting_rule": "best", "evalai_phase_pk": arena.phases["final"]},
        ],
        evalai={"url": arena.url, "challenge_pk": arena.challenge, "queue": arena.queue,
                "token_env": "EVALAI_TOKEN", "split": "test",
                # the server's column names, by meaning (README.md's schema, checked below)
                "labels": dict(zip(DEFAULT_LABELS, arena.schemas["dev"]["labels"],
                                   strict=True))},
        publish={"github": {"repo": REPO, "branch": BRANCH, "folder": "boards",
                            "base_url": github.base_url, "token_env": "GITHUB_TOKEN",
                            "seconds_between_writes": 0}},
    )


# ---- the standings, straight from the SQLite file ----------------------------------------


@dataclass
class Direct:
    """A phase's standings from the stored scores, and what each submission should show."""

    standings: Standings
    counted: list[int]  # EvalAI submission pks, in rank order
    numbers: dict[int, dict[str, float]]  # EvalAI submission pk -> result numbers


def direct(database: Path, slug: str) -> Direct:
    """Read with plain sqlite3 and rank with leaderboard.standings, not the daemon's code."""
    with sqlite3.connect(database) as db:
        tasks, rule = db.execute("SELECT tasks, counting_rule FROM phase WHERE slug = ?",
                                 (slug,)).fetchone()
        rows = db.execute(
            "SELECT s.id, s.source_id, t.name, s.submitted_at, s.is_public FROM submission s "
            "JOIN team t ON t.id = s.team_id JOIN phase p ON p.id = s.phase_id "
            "WHERE p.slug = ? AND s.status = 'finished' AND NOT s.hidden", (slug,)).fetchall()
        scored: list[Scored] = []
        pks: dict[int, int] = {}  # our submission id -> EvalAI's pk
        for submission_id, source_id, team, submitted_at, is_public in rows:
            quality = dict(db.execute(
                "SELECT task, quality FROM task_score WHERE evaluation_id = (SELECT id FROM "
                "evaluation WHERE submission_id = ? AND finished_at IS NOT NULL "
                "ORDER BY finished_at DESC, id DESC LIMIT 1)", (submission_id,)))
            scored.append(Scored(submission_id, team, datetime.fromisoformat(submitted_at)
                                 .replace(tzinfo=UTC), bool(is_public),
                                 {k: math.nan if q is None else q for k, q in quality.items()}))
            pks[submission_id] = int(source_id)
    result = standings(scored, json.loads(tasks), CountingRule(rule))
    counted = [pks[entry.submission_id] for entry in result.entries]
    numbers: dict[int, dict[str, float]] = {}
    for i, entry in enumerate(result.entries):
        numbers[pks[entry.submission_id]] = {
            "Rank": int(result.ranking.rank[i]),
            "Weighted score": float(result.ranking.weighted_score[i]),
            "Mean Q": entry.mean_quality, **({} if slug == "dev" else entry.task_quality)}
    for entry in scored:  # finished, not counted: a rank below every counted one
        if pks[entry.submission_id] not in counted:
            numbers[pks[entry.submission_id]] = {"Rank": len(result.entries) + 1,
                                                 "Mean Q": entry.mean_quality}
    return Direct(result, counted, numbers)


def order(found: Direct) -> list[str]:
    ranking = found.standings.ranking
    assert ranking.ranked.all() and len(set(ranking.rank)) == len(ranking.rank), \
        "the files are chosen for distinct ranks; a tie would hide an ordering error"
    return [entry.team for entry in found.standings.entries]


# ---- the checks -------------------------------------------------------------------------


def check_results(arena: Arena, found: Direct, owners: dict[int, Team], phase: str) -> None:
    """Every finished submission of the phase shows exactly the numbers the stored scores
    give; development results name no task, final ones give each task's Q."""
    for pk, numbers in found.numbers.items():
        seen = shown(arena, pk, owners[pk])
        assert seen.status == "finished"
        assert len(seen.result) == 1 and set(seen.result[0]) == set(numbers), (pk, seen)
        for label, value in numbers.items():
            assert seen.result[0][label] == pytest.approx(value, abs=1e-5), (pk, label)
            assert seen.result[0][label] == round(seen.result[0][label], 6)  # no float noise
        assert "Mean quality score Q" in seen.stdout
        revealed = [task in seen.stdout for task in TASKS]
        assert revealed == [phase == "final"] * len(TASKS), seen.stdout


def check_leaderboard(arena: Arena, found: Direct, phase: str) -> None:
    """Every team once, in the daemon's rank order, showing its counted submission with
    that submission's numbers."""
    entries = arena.leaderboard(phase)
    assert [e["submission__participant_team__team_name"] for e in entries] == order(found)
    assert [e["submission__id"] for e in entries] == found.counted
    labels = arena.schemas[phase]["labels"]
    for entry in entries:
        assert dict(zip(labels, entry["result"], strict=True)) == pytest.approx(
            found.numbers[entry["submission__id"]], abs=1e-5)


def check_board_on_github(github: GitHubServer, found: dict[str, Direct]) -> None:
    files = github.files(REPO, BRANCH)
    for phase, standings_found in found.items():
        board = json.loads(files[f"boards/{phase}/leaderboard.json"])
        assert [e["team"] for e in board["entries"]] == order(standings_found)
    dev_files = b"".join(data for path, data in files.items() if path.startswith("boards/dev/"))
    assert not any(task.encode() in dev_files for task in TASKS)  # hidden tasks stay hidden


def one_pass(settings: Settings) -> dict[str, int]:
    """A fresh daemon's single pass, as `probeboard run --once` does."""
    daemon = Daemon(settings, owner="e2e")
    try:
        return daemon.run_once()
    finally:
        daemon.close()


def outbox_left(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT count(*) FROM publication WHERE status != 'done'")
                   .fetchone()[0])


def test_teams_submit_through_the_cli_and_evalai_and_github_hold_our_standings(
        arena: Arena, github: GitHubServer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    # The leaderboards are the ones README.md asks the organiser to create (on the real
    # server: the boot fixture's schema, copied from its challenge).
    assert arena.schemas["dev"] == README_SCHEMA == DEFAULT_SCHEMA
    assert arena.schemas["final"]["labels"] == README_SCHEMA["labels"] + TASKS
    labels, strong, weak = make_challenge(tmp_path)
    medium = write_noisy_submission(strong, tmp_path / "medium.csv", scale=3.0, seed=1)
    better = write_noisy_submission(strong, tmp_path / "better.csv", scale=2.0, seed=1)
    broken = tmp_path / "broken.csv"  # a participant's slip: a missing value written n/a
    lines = strong.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",n/a"
    broken.write_text("\n".join(lines) + "\n")
    settings = load_settings(daemon_settings(tmp_path, arena, github, labels),
                             environ={"EVALAI_TOKEN": arena.host, "GITHUB_TOKEN": GITHUB_TOKEN})
    database = tmp_path / "probeboard.db"
    one, two, three = arena.teams
    commits = len(github.commits(REPO, BRANCH))

    # ---- round 1: three teams in each phase, one broken file --------------------------
    owners: dict[int, Team] = {}

    def submit(team: Team, phase: str, file: Path, *flags: str) -> int:
        pk = arena.submit(team, phase, file, *flags)
        owners[pk] = team
        return pk

    first = [submit(team, "dev", file) for team, file in ((one, strong), (two, medium),
                                                           (three, weak))]
    failed = submit(two, "dev", broken)
    private = submit(one, "dev", weak, "--private")  # never counts, never listed
    for team, file in ((one, medium), (two, weak), (three, strong)):
        submit(team, "final", file)
    counts = one_pass(settings)
    assert (counts["new"], counts["evaluated"]) == (8, 8)
    assert outbox_left(database) == 0  # every report, rank update, board and ack is done

    found = {phase: direct(database, phase) for phase in ("dev", "final")}
    assert order(found["dev"]) == [one.name, two.name, three.name]
    assert found["dev"].numbers[private]["Rank"] == 4
    assert order(found["final"]) == [three.name, one.name, two.name]
    for phase in found:
        check_results(arena, found[phase], owners, phase)
        check_leaderboard(arena, found[phase], phase)
    bad = shown(arena, failed, two)
    assert (bad.status, bad.result) == ("failed", [])
    assert "'n/a' is not a number" in bad.stderr  # says what to fix ...
    for leak in ("Traceback", ".py", str(tmp_path), "/tmp/", *TASKS):  # ... and nothing else
        assert leak not in bad.stderr, bad.stderr
    # ... and what the participants' CLI prints of them
    status = run_cli(two.home, "submission", str(failed))
    assert status.returncode == 0 and "Submission Status : failed" in status.stdout
    result = run_cli(one.home, "submission", str(first[0]), "result")
    assert result.returncode == 0 and "'Rank': 1," in result.stdout, result.stdout
    assert not any(task in result.stdout for task in TASKS)
    assert len(github.commits(REPO, BRANCH)) == commits + 1  # both phases, one commit
    check_board_on_github(github, found)
    assert arena.host not in caplog.text and GITHUB_TOKEN not in caplog.text

    # ---- nothing new: nothing sent again -----------------------------------------------
    before = {pk: shown(arena, pk, team).result_file for pk, team in owners.items()}
    assert one_pass(settings) == {"expired": 0, "new": 0, "evaluated": 0, "published": 0}
    assert len(github.commits(REPO, BRANCH)) == commits + 1
    assert {pk: shown(arena, pk, team).result_file for pk, team in owners.items()} == before

    # ---- round 2: the last team submits a better file; the ranks move -----------------
    newest = submit(three, "dev", better)
    counts = one_pass(settings)
    assert (counts["new"], counts["evaluated"]) == (1, 1)
    assert outbox_left(database) == 0
    moved = direct(database, "dev")
    assert order(moved) == [one.name, three.name, two.name]
    check_results(arena, moved, owners, "dev")  # old results were re-PUT where they moved
    check_leaderboard(arena, moved, "dev")
    assert arena.leaderboard("dev")[1]["submission__id"] == newest
    re_put = {pk for pk in before if shown(arena, pk, owners[pk]).result_file != before[pk]}
    assert re_put >= {pk for pk, numbers in found["dev"].numbers.items()
                      if numbers["Rank"] != moved.numbers[pk]["Rank"]}
    assert not re_put & set(found["final"].numbers)  # the final phase did not change
    assert len(github.commits(REPO, BRANCH)) == commits + 2  # one more commit
    check_board_on_github(github, {"dev": moved, "final": found["final"]})
