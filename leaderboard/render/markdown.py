"""The README table: one Markdown section per phase, between the probeboard markers."""

from __future__ import annotations

from evaluator.support.errors import ConfigError
from leaderboard.board import Board
from leaderboard.render.escape import markdown_text
from leaderboard.render.formatting import NON_COMPETING_MARK, fmt, interval_text, stamp

README_START = "<!-- probeboard:leaderboard:start -->"
README_END = "<!-- probeboard:leaderboard:end -->"


def readme_table(board: Board) -> str:
    """One phase's Markdown section: heading, update time, standings table, footnote."""
    lines = [
        f"### {markdown_text(board.challenge)}: {markdown_text(board.phase)} phase",
        "",
        f"Leaderboard updated: {stamp(board.generated_at)}",
        "",
        "| Rank | Team | Mean Q | Rank interval (95%) |",
        "| :----: | :---- | ----: | :----: |",
    ]
    for entry in board.entries:
        team = markdown_text(entry.team)
        if not entry.competing:
            team += " " + markdown_text(NON_COMPETING_MARK)
        rank = "–" if entry.rank is None else str(entry.rank)
        lines.append(
            f"| {rank} | {team} | {fmt(entry.mean_quality)} | {interval_text(entry)} |"
        )
    lines += [
        "",
        "Ranked by aggregating the per-task ranks (weighted by each task's spread of Q); "
        f"entries marked {markdown_text(NON_COMPETING_MARK)} are organisers' baselines; "
        "– = not ranked (a task has no score).",
    ]
    return "\n".join(lines) + "\n"


def update_readme(text: str, boards: list[Board]) -> str:
    """Replace what lies between the probeboard markers with one table per board.

    Text outside the markers is kept byte for byte; applying it twice changes nothing."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start or text.count(README_START) != 1 or text.count(README_END) != 1:
        raise ConfigError(
            "The README needs exactly one leaderboard marker pair, in this order, on their "
            f"own lines: {README_START} ... {README_END}; add them where the leaderboard "
            "should appear."
        )
    body = "\n".join(readme_table(board) for board in boards)
    head = text[: start + len(README_START)]
    return f"{head}\n{body}{text[end:]}" if body else f"{head}\n{text[end:]}"
