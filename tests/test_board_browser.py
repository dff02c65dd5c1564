"""The HTML board in a real headless Chromium (Debian's package, installed by .ci/run)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from leaderboard.render.escape import plain_name
from leaderboard.render.html import board_html
from tests.builders import make_board, make_demo_board

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


# Appended to the page under test only: after layout, records the page's widths on <html>
# (an attribute, so the layout being measured does not change).
MEASURE = (
    "<script>addEventListener('load', function () { var d = document.documentElement;"
    " d.setAttribute('data-measured', [d.scrollWidth, d.clientWidth, innerWidth].join(' '));"
    " });</script></body>"
)


def chromium_at(tmp_path: Path, width: int, page: Path, *args: str) -> str:
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size={width},1600", "--force-device-scale-factor=1",
         *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("width", [1280, 1920])
def test_demo_board_fits_the_window_without_sideways_scrolling(
    tmp_path: Path, width: int
) -> None:
    html = board_html(make_demo_board())
    measured = tmp_path / "measured.html"
    measured.write_text(html.replace("</body>", MEASURE), encoding="utf-8")
    dom = chromium_at(tmp_path, width, measured, "--virtual-time-budget=2000", "--dump-dom")
    found = re.search(r'data-measured="(\d+) (\d+) (\d+)"', dom)
    assert found, dom[:500]
    scroll_width, client_width, inner_width = map(int, found.groups())
    assert inner_width == width
    assert scroll_width <= client_width <= inner_width, (scroll_width, client_width)

    page = tmp_path / "board.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / f"board-{width}.png"
    chromium_at(tmp_path, width, page, f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    assert int.from_bytes(data[16:20], "big") == width
    assert len(data) > 10_000  # a page, not a blank image
