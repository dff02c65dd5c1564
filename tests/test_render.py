"""Publishing a board: JSON schema, README table, HTML page, pictures, hidden tasks."""

from __future__ import annotations

import html
import itertools
import json
import re
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.support.errors import ConfigError
from leaderboard.board import Board, BoardEntry
from leaderboard.render.board_json import (
    HIDDEN_BOARD_KEYS,
    HIDDEN_ENTRY_KEYS,
    SCHEMA,
    SCHEMA_ID,
    board_json,
)
from leaderboard.render.escape import plain_name
from leaderboard.render.formatting import NON_COMPETING_MARK
from leaderboard.render.html import board_html, x_ticks
from leaderboard.render.markdown import README_END, README_START, readme_table, update_readme
from leaderboard.render.pictures import board_pictures
from leaderboard.render.text import BOARD_LEGEND, board_text
from tests.builders import BOARD_NOW as NOW
from tests.builders import BOARD_TASKS as TASKS
from tests.builders import make_board, make_demo_board


def strict_loads(text: str) -> object:
    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=reject)


# ----------------------------------------------------------------------------- board


def test_board_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(make_board(), generated_at=datetime(2026, 1, 1))


def test_entries_are_in_display_order() -> None:
    board = make_board()
    ranks = [e.rank for e in board.entries]
    assert ranks[-1] is None and board.entries[-1].team == "Unranked team"
    assert ranks[:-1] == sorted(r for r in ranks if r is not None)


# ----------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("hidden", [False, True])
def test_json_is_strict_and_follows_the_schema(hidden: bool) -> None:
    board = make_board(hidden=hidden)
    text = board_json(board)
    # Names round-trip exactly, yet the raw file has no override char and embeds safely.
    assert "\u202e" not in text and "<" not in text and "\\u003cscript" in text
    doc = strict_loads(text)
    assert isinstance(doc, dict)
    board_keys = set(SCHEMA["board"]) - (HIDDEN_BOARD_KEYS if hidden else set())
    entry_keys = set(SCHEMA["entry"]) - (HIDDEN_ENTRY_KEYS if hidden else set())
    assert set(doc) == board_keys
    assert doc["schema"] == SCHEMA_ID
    assert doc["generated_at"] == "2026-03-29T19:36:00Z"
    assert doc["hidden_tasks"] is hidden
    assert [e["team"] for e in doc["entries"]] == [e.team for e in board.entries]
    for item in doc["entries"]:
        assert set(item) == entry_keys
    unranked = doc["entries"][-1]
    assert unranked["rank"] is None and unranked["mean_q"] is None
    assert unranked["weighted_score"] is None and unranked["rank_interval"] is None
    assert doc["entries"][0]["rank"] == 1 and len(doc["entries"][0]["rank_interval"]) == 2
    assert [e["competing"] for e in doc["entries"]].count(False) == 1
    for snap in doc["history"]:
        assert set(snap) == set(SCHEMA["history"])
    if not hidden:
        assert unranked["task_q"][TASKS[1]] is None
        assert doc["weights"] == pytest.approx(board.weights)


def test_json_time_is_converted_to_utc() -> None:
    board = replace(make_board(), generated_at=NOW.astimezone(timezone(timedelta(hours=2))))
    assert strict_loads(board_json(board))["generated_at"] == "2026-03-29T19:36:00Z"  # type: ignore[index]


# ----------------------------------------------------------------------------- README


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of each table body row. Literal pipes only ever separate cells: names spell
    theirs as &#124;, so a plain split is how any GFM parser would read the row."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [line.split("|")[1:-1] for line in rows[1:] if not line.startswith("| :")]


def unescape_markdown(cell: str) -> str:
    """CommonMark's reading of inline text: backslash escapes, then entities."""
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", cell.strip())
    return html.unescape(text)


def test_plain_name_removes_controls_only() -> None:
    assert plain_name("two\nlines\r\nand\ttab") == "two lines  and tab"
    assert plain_name("evil\u202eoverride\u2066x\u2069") == "eviloverridex"
    assert plain_name("👩‍👩‍👧") == "👩‍👩‍👧"  # ZWJ sequences survive
    assert plain_name("x" * 200) == "x" * 200


def test_readme_table_renders_each_name_as_one_plain_cell() -> None:
    board = make_board()
    table = readme_table(board)
    assert "Leaderboard updated: 2026-03-29 19:36:00 UTC" in table
    assert "| Rank | Team | Mean Q |" in table
    rows = table_rows(table)
    assert len(rows) == len(board.entries)
    for entry, cells in zip(board.entries, rows, strict=True):
        assert len(cells) == 4, cells
        name = unescape_markdown(cells[1])
        if not entry.competing:
            assert name.endswith(" " + NON_COMPETING_MARK)
            name = name.removesuffix(" " + NON_COMPETING_MARK)
        assert name == plain_name(entry.team)
        assert cells[0].strip() == ("–" if entry.rank is None else str(entry.rank))
        # Nothing a Markdown/HTML renderer would interpret is left unescaped.
        raw = re.sub(r"&(#\d+|[a-z]+);", "", cells[1])  # our own entities
        assert "<" not in raw and ">" not in raw and "\n" not in raw and "\u202e" not in raw
        assert re.search(r"(?<!\\)[*_\[\]`#~$]", raw) is None, raw
    lo, hi = board.entries[0].rank_interval or (0, 0)
    assert lo == 1 and rows[0][3].strip() == f"{lo}–{hi}"  # the bootstrap's 95% interval
    assert rows[-1][2].strip() == "n/a"


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_name_renders_as_one_plain_cell(name: str) -> None:
    entry = BoardEntry(name, 1, 1.0, 1.0, {}, (1, 1), True)
    board = Board("c", "p", NOW, [], {}, [entry], hidden_tasks=False, history=[])
    (cells,) = table_rows(readme_table(board))
    assert len(cells) == 4
    assert unescape_markdown(cells[1]) == plain_name(name)


def test_update_readme_keeps_the_organisers_text() -> None:
    before = "# My challenge\r\nIntro with | pipes & <b>html</b>\n\n" + README_START
    after = README_END + "\n\n## FAQ\nstuff\u00e9\n"
    text = before + "\nold table\n" + after
    boards = [make_board(), replace(make_board(hidden=True), phase="final")]
    once = update_readme(text, boards)
    assert once.startswith(before) and once.endswith(after)
    assert "old table" not in once
    assert "development phase" in once and "final phase" in once
    assert update_readme(once, boards) == once
    assert update_readme(update_readme(text, []), []) == before + "\n" + after


@pytest.mark.parametrize(
    "text",
    [
        "no markers",
        README_START + "only start",
        README_END + "x" + README_START,
        README_START + README_START + README_END,
    ],
)
def test_update_readme_asks_for_the_markers(text: str) -> None:
    with pytest.raises(ConfigError, match="marker"):
        update_readme(text, [make_board()])


# ----------------------------------------------------------------------------- HTML


def test_html_is_self_contained_and_escapes_every_team() -> None:
    board = make_board()
    page = board_html(board)
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="standings"' in page and 'id="heatmap"' in page and 'id="rank-evolution"' in page
    # No external assets: nothing fetched over the network or from disk.
    assert re.search(r"""(src|href)\s*=|@import|url\(""", page) is None
    assert page.count("<script") == 1  # ours only: a team's "<script>" arrives escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for entry in board.entries:
        escaped = html.escape(plain_name(entry.team), quote=True)
        assert f'data-team="{escaped}"' in page
        assert f"<bdi>{escaped}</bdi>" in page
    assert "\u202e" not in page
    # Rank intervals as text and as a bar; sortable headers.
    lo, hi = board.entries[0].rank_interval or (0, 0)
    assert f"{lo}–{hi}" in page and 'class="interval"' in page and 'data-type="number"' in page
    assert page.count('<tr data-team="') == 2 * len(board.entries)  # standings + heatmap


def test_html_explains_the_non_competing_mark_only_when_an_entry_has_it() -> None:
    board = make_board()
    assert not all(e.competing for e in board.entries)
    assert board_html(board).count(NON_COMPETING_MARK) == 2  # the explanation and one mark
    everyone = replace(board, entries=[replace(e, competing=True) for e in board.entries])
    assert NON_COMPETING_MARK not in board_html(everyone)


def test_html_page_parses_into_balanced_tags() -> None:
    from html.parser import HTMLParser

    void = {"meta", "br", "wbr", "line", "rect", "circle", "polyline"}

    class Checker(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.standings_rows = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "tr" and self.stack[-2:] == ["table", "tbody"] and self.in_standings:
                self.standings_rows += 1
            if tag == "table":
                self.in_standings = ("id", "standings") in attrs
            if tag not in void:
                self.stack.append(tag)

        def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            pass

        def handle_endtag(self, tag: str) -> None:
            if tag in void:
                return
            assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
            self.stack.pop()

    board = make_board()
    checker = Checker()
    checker.in_standings = False  # type: ignore[attr-defined]
    checker.feed(board_html(board))
    checker.close()
    assert checker.stack == []
    assert checker.standings_rows == len(board.entries)


def x_labels(page: str) -> list[str]:
    """The rank-evolution chart's x labels, each one's lines joined by " / "."""
    return [
        html.unescape(re.sub(r"<tspan[^>]*>", " / ", m).replace("</tspan>", ""))
        for m in re.findall(r'<text class="x-label"[^>]*>(.*?)</text>', page)
    ]


def test_rank_chart_has_distinct_x_labels_and_axis_titles() -> None:
    days = x_labels(board_html(make_board()))  # one snapshot a day: dates
    assert days == ["2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29"]
    minutes = x_labels(board_html(make_demo_board()))  # one day: times, the date once
    assert minutes == ["18:46 / 2026-03-29", "18:56", "19:06", "19:16", "19:26", "19:36"]
    for board in (make_board(), make_demo_board()):
        page = board_html(board)
        titles = re.findall(r'<text class="axis-title"[^>]*>([^<]*)</text>', page)
        assert len(titles) == 2 and titles[0].startswith("date") and titles[1] == "rank"


def test_x_ticks_are_distinct_and_thinned() -> None:
    day = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    same_day = [day + timedelta(minutes=m) for m in (0, 7, 30)]
    assert x_ticks(same_day, 200) == (
        [(0, ("09:00", "2026-05-01")), (1, ("09:07",)), (2, ("09:30",))],
        "date and time (UTC)",
    )
    same_minute = [day, day + timedelta(seconds=20)]
    assert [lines for _, lines in x_ticks(same_minute, 200)[0]] == [
        ("09:00:00", "2026-05-01"), ("09:00:20",)
    ]  # fmt: skip
    mixed = [day, day + timedelta(hours=1), day + timedelta(days=1)]  # two share a date
    assert [lines for _, lines in x_ticks(mixed, 200)[0]] == [
        ("09:00", "2026-05-01"), ("10:00", "2026-05-01"), ("09:00", "2026-05-02")
    ]  # fmt: skip
    many = [day + timedelta(days=d) for d in range(30)]
    ticks, title = x_ticks(many, 20)  # 20 px apart: only some get a label
    shown = [i for i, _ in ticks]
    assert title == "date (UTC)" and shown[0] == 0 and shown[-1] == 29
    assert 4 <= len(shown) < 30
    # Centred dates (70 px wide) at least a gap apart; the first/last are anchored at an end.
    assert all((b - a) * 20 >= 70 + 12 for a, b in itertools.pairwise(shown))
    assert (shown[1] - shown[0]) * 20 >= 70 + 35 + 12
    assert (shown[-1] - shown[-2]) * 20 >= 70 + 35 + 12
    assert x_ticks([], 100) == ([], "date (UTC)")


# ----------------------------------------------------------------------------- pictures


def png_text(data: bytes) -> bytes:
    """Every tEXt/iTXt/zTXt chunk payload of a PNG (where metadata lives)."""
    out, pos = b"", 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind in (b"tEXt", b"iTXt"):
            out += body + b"\n"
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out += key + b"\0" + zlib.decompress(rest[1:]) + b"\n"
        pos += 12 + length
    return out


def test_pictures_are_valid_png_and_svg(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    paths = board_pictures(make_board(), tmp_path / "pics")
    assert sorted(p.name for p in paths) == [
        "development-heatmap.png", "development-heatmap.svg",
        "development-rank-evolution.png", "development-rank-evolution.svg",
    ]  # fmt: skip
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data[-12:]
        else:
            root = ET.fromstring(data)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # Text stays text, so names are searchable (and escaped as XML).
    svg = (tmp_path / "pics" / "development-rank-evolution.svg").read_text("utf-8")
    assert "&lt;script&gt;" in svg and "<script>" not in svg


# ----------------------------------------------------------------------------- hidden tasks


def test_hidden_task_phase_names_no_task_anywhere(tmp_path: Path) -> None:
    board = make_board(hidden=True)
    outputs: dict[str, bytes] = {
        "json": board_json(board).encode(),
        "readme": update_readme(f"{README_START}\n{README_END}\n", [board]).encode(),
        "html": board_html(board).encode(),
    }
    paths = board_pictures(board, tmp_path)
    assert paths and not any("heatmap" in p.name for p in paths)
    for path in paths:
        data = path.read_bytes()
        # Compressed pixels match short needles by chance: search a PNG's text chunks.
        outputs[path.name] = png_text(data) if path.suffix == ".png" else data
        outputs[path.name + ":bytes"] = data
        outputs[path.name + ":name"] = path.name.encode()
    for name, data in outputs.items():
        for task in TASKS:
            needles = [task] if name.endswith(":bytes") else [task, *task.split("-")[:2]]
            for needle in needles:
                assert needle.encode() not in data, (name, needle)
    doc = strict_loads(outputs["json"].decode())
    assert "weights" not in doc and "tasks" not in doc  # type: ignore[operator]
    assert 'id="heatmap"' not in outputs["html"].decode()


def test_visible_phase_does_show_the_tasks(tmp_path: Path) -> None:
    # The counterpart of the hidden-task scan: the needles are really searched for.
    board = make_board()
    assert all(t in board_json(board) and t in board_html(board) for t in TASKS)
    svg = next(p for p in board_pictures(board, tmp_path) if p.name.endswith("heatmap.svg"))
    assert all(t in svg.read_text("utf-8") for t in TASKS)


def test_entry_without_history_or_tasks(tmp_path: Path) -> None:
    entry = BoardEntry("solo", 1, 3.0, 1.0, {}, None, True)
    board = Board("c", "final", NOW, [], {}, [entry], hidden_tasks=False, history=[])
    assert strict_loads(board_json(board))
    assert "No history yet." in board_html(board)
    assert board_pictures(board, tmp_path) == []


def test_board_text_explains_its_numbers() -> None:
    board = make_board()
    lines = board_text(board).splitlines()
    assert lines[-len(BOARD_LEGEND):] == list(BOARD_LEGEND)
    legend = " ".join(BOARD_LEGEND)
    for words in ("1 is best", "weighted score", "lower is better", "mean Q",
                  "95% bootstrap interval of the rank", "non-competing"):
        assert words in legend
    everyone = replace(board, entries=[replace(e, competing=True) for e in board.entries])
    assert "non-competing" not in board_text(everyone)  # no star, nothing to explain
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert all(line in readme for line in BOARD_LEGEND)
