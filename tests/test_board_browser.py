"""The HTML board in a real headless Chromium (Debian's package, installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from leaderboard.render.escape import plain_name
from leaderboard.render.html import board_html
from tests.test_render import make_board

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)"
)
# Flags for a closed network: no background connections, no first-run or sync traffic.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


class Rows(HTMLParser):
    """The rendered page's element ids, and the teams of the standings table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.teams: list[str] = []
        self.tables: set[str] = set()
        self.table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.tables.add(values["id"] or "")
        if tag == "table":
            self.table = values.get("id")
        if tag == "tr" and self.table == "standings" and values.get("data-team") is not None:
            self.teams.append(values["data-team"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table = None


def load(tmp_path: Path, html: str) -> tuple[str, str]:
    page = tmp_path / "board.html"
    page.write_text(html, encoding="utf-8")
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def test_the_page_loads_without_errors_and_shows_every_team(tmp_path: Path) -> None:
    board = make_board()
    dom, log = load(tmp_path, board_html(board))
    console_errors = [line for line in log.splitlines()
                      if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]
    assert console_errors == []
    rows = Rows()
    rows.feed(dom)
    assert {"standings", "heatmap", "rank-evolution"} <= rows.tables
    assert sorted(rows.teams) == sorted(plain_name(entry.team) for entry in board.entries)
    # A team name that is markup must arrive as text, not as an element.
    assert "<script>alert(1)</script>" not in dom


def test_hidden_task_page_shows_teams_but_no_heatmap(tmp_path: Path) -> None:
    board = make_board(hidden=True)
    dom, _ = load(tmp_path, board_html(board))
    rows = Rows()
    rows.feed(dom)
    assert "heatmap" not in rows.tables
    assert len(rows.teams) == len(board.entries)
    for task in board.tasks:
        assert task not in dom
