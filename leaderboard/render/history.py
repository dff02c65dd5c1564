"""The rank-evolution data drawn by both the HTML chart and the pictures."""

from __future__ import annotations

from leaderboard.board import Board

# One colour per team, in first-seen order (matplotlib's tab10), in the SVG and the PNG.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


def history_series(board: Board) -> dict[str, list[int | None]]:
    """team -> rank per snapshot (None where the team was absent or unranked)."""
    teams: dict[str, None] = {}
    for _, ranks in board.history:
        teams.update(dict.fromkeys(ranks))
    return {
        team: [r if (r := ranks.get(team)) and r > 0 else None for _, ranks in board.history]
        for team in teams
    }
