"""The terminal table of `probeboard leaderboard` (``--format table``)."""

from __future__ import annotations

from leaderboard.board import Board
from leaderboard.render.escape import plain_name

# Printed under the board; README.md's "Reading the results" repeats these words.
BOARD_LEGEND = (
    "rank: 1 is best, in the order of score",
    "score: the weighted score (task ranks weighted by their spread), lower is better",
    "mean Q: Q averaged over the tasks, higher is better (a second ordering; they can disagree)",
    "interval: the 95% bootstrap interval of the rank",
    "*: non-competing (baseline or host entry), ranked and shown but wins nothing",
)


def board_text(board: Board) -> str:
    """A readable terminal table, with its legend."""
    lines = [f"{board.challenge} / {board.phase}",
             f"{'rank':>4}  {'team':<32} {'mean Q':>8} {'score':>7} {'interval':>9}"]
    for entry in board.entries:
        rank = str(entry.rank) if entry.rank is not None else "-"
        interval = "{}-{}".format(*entry.rank_interval) if entry.rank_interval else ""
        score = f"{entry.weighted_score:.3f}" if entry.weighted_score is not None else ""
        name = plain_name(entry.team)[:32] + ("" if entry.competing else " *")
        lines.append(f"{rank:>4}  {name:<32} {entry.mean_quality:>8.3f} {score:>7} "
                     f"{interval:>9}")
    legend = BOARD_LEGEND
    if all(entry.competing for entry in board.entries):
        legend = legend[:-1]  # no star to explain
    lines.extend(("", *legend))
    return "\n".join(lines)
