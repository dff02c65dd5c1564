"""A small challenge for the daemon's tests: labels, settings file, submissions.

Ridge probes with K = 3: every evaluation is exact and takes well under a second of
training, so a test's time is the child's start-up (imports) per submission.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import yaml

from tests.builders import TaskSpec, write_challenge, write_unrelated_submission
from tests.servers.evalai import World
from tests.servers.github import GitHubServer

SPECS = [TaskSpec("biomass", 60), TaskSpec("crops", 60, classification=True)]
HOSTILE_HEADER = "id," + ",".join(str(i) for i in range(200_000)) + "\n"
BOARD_REPO = "organisers/embed-board"
BOARD_README = ("# Embedding challenge\n\nOur own words stay.\n\n"
                "<!-- probeboard:leaderboard:start -->\n<!-- probeboard:leaderboard:end -->\n"
                "\nFooter stays too.\n")
GITHUB_TOKEN = "gh-secret-token"


def make_challenge(root: Path) -> tuple[Path, Path, Path]:
    """(labels, informative submission, unrelated submission)."""
    labels, informative = write_challenge(root / "challenge", SPECS, dim=8, seed=3)
    unrelated = write_unrelated_submission(informative, root / "challenge" / "unrelated.csv")
    return labels, informative, unrelated


def write_settings(root: Path, labels: Path, **extra: Any) -> Path:
    phases = extra.pop("phases", None) or [
        {"slug": "dev", "labels": str(labels), "hidden_tasks": True},
    ]
    settings = {
        "challenge": {"slug": "embed-test", "title": "Embedding test challenge"},
        "scoring": {"k_folds": 3, "probe_type": "ridge"},
        "phases": phases,
        "publish": {"folder": "boards"},
        "workers": {"concurrent": 1, "threads": 1, "wall_seconds": 120, "memory_mb": 6144,
                    "lease_seconds": 30, "max_attempts": 3, "shutdown_grace_seconds": 30},
        "poll_seconds": 1,
        **extra,
    }
    path = root / "probeboard.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def write_evalai_settings(root: Path, labels: Path, url: str, world: World, *,
                          github: GitHubServer | None = None, **extra: Any) -> Path:
    """Settings for the in-repo EvalAI server's default world: dev hides its tasks; final
    reveals them (its leaderboard schema gets a column per task) and counts each team's
    best. With `github`, the boards go to its BOARD_REPO too. Tokens come from
    secrets(world)."""
    labels_of_final = world.phase_splits["final"].schema["labels"]
    labels_of_final += [spec.name for spec in SPECS if spec.name not in labels_of_final]
    if github is not None:
        extra.setdefault("publish", {"folder": "boards", "github": {
            "repo": BOARD_REPO, "branch": "main", "folder": "leaderboard",
            "base_url": github.base_url, "token_env": "GITHUB_TOKEN",
            "seconds_between_writes": 0}})
    return write_settings(
        root, labels,
        phases=[
            {"slug": "dev", "labels": str(labels), "hidden_tasks": True,
             "evalai_phase_pk": world.phases["dev"].pk},
            {"slug": "final", "labels": str(labels), "hidden_tasks": False,
             "counting_rule": "best", "evalai_phase_pk": world.phases["final"].pk},
        ],
        evalai={"url": url, "challenge_pk": world.challenge.pk,
                "queue": world.challenge.queue, "token_env": "EVALAI_TOKEN"},
        **extra,
    )


def statuses(database: Path) -> dict[str, str]:
    """source_id -> status, read with plain sqlite3 (what a person would do)."""
    with sqlite3.connect(database) as connection:
        return dict(connection.execute("SELECT source_id, status FROM submission"))


def board(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "leaderboard.json").read_text()))


def secrets(world: World) -> dict[str, str]:
    """The environment variables write_evalai_settings' tokens come from."""
    return {"EVALAI_TOKEN": world.host.jwt, "GITHUB_TOKEN": GITHUB_TOKEN}
