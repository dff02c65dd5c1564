"""PNG and SVG pictures of a board (matplotlib): the per-task heatmap and the rank evolution.

Team names are drawn as plain text (mathtext off) and cut to a readable length; the SVG
keeps text as text and carries no date, so the same board gives the same file.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

from leaderboard.board import Board
from leaderboard.render.escape import plain_name, short_name
from leaderboard.render.formatting import utc
from leaderboard.render.history import PALETTE, history_series


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "board"


def board_pictures(board: Board, folder: Path) -> list[Path]:
    """PNG and SVG of the per-task heatmap (not in a hidden-task phase) and of the rank
    evolution (when there is history). Returns the written paths."""
    import matplotlib
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _slug(board.phase)
    figures: list[tuple[str, Figure]] = []
    # parse_math off: a team called "$x$" must not become mathtext (or a parse error);
    # svg.fonttype none keeps text as text, so the SVG stays searchable and small.
    style = {"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": "probeboard"}
    with matplotlib.rc_context(style):
        if not board.hidden_tasks and board.tasks and board.entries:
            figures.append((f"{stem}-heatmap", _heatmap_figure(board)))
        if board.history:
            figures.append((f"{stem}-rank-evolution", _evolution_figure(board)))
        paths = []
        with warnings.catch_warnings():
            # Fonts lack glyphs for some emoji / scripts: drawn as boxes, not an error.
            warnings.filterwarnings("ignore", message=r".*[Gg]lyph.*missing")
            for name, figure in figures:
                for ext in ("png", "svg"):
                    path = folder / f"{name}.{ext}"
                    metadata = {"Date": None} if ext == "svg" else {}
                    figure.savefig(path, format=ext, metadata=metadata, dpi=120)
                    paths.append(path)
    return paths


def _heatmap_figure(board: Board) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    teams = [short_name(e.team) + ("" if e.competing else " *") for e in board.entries]
    values = np.array(
        [[e.task_quality.get(t, math.nan) for t in board.tasks] for e in board.entries],
        dtype=np.float64,
    )
    # Per-task scaling, as in the HTML heatmap; the cell text shows the raw Q.
    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(hi > lo, (values - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5)
    figure = Figure(
        figsize=(
            1.2 + 1.1 * len(board.tasks) + 0.08 * max(map(len, teams)),
            1.2 + 0.35 * len(teams),
        ),
        layout="constrained",
    )
    ax = figure.add_subplot()
    ax.imshow(np.ma.masked_invalid(scaled), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(
        range(len(board.tasks)), [plain_name(t) for t in board.tasks], rotation=30, ha="right"
    )
    ax.set_yticks(range(len(teams)), teams)
    for (row, col), q in np.ndenumerate(values):
        text = "n/a" if math.isnan(q) else f"{q:.2f}"
        dark = math.isnan(q) or scaled[row, col] < 0.6
        ax.text(
            col,
            row,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark and not math.isnan(q) else "black",
        )
    ax.set_title(f"{plain_name(board.phase)}: Q per task (colour scaled per task)")
    return figure


def _evolution_figure(board: Board) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    series = history_series(board)
    times = [utc(when) for when, _ in board.history]
    longest = max((len(short_name(t)) for t in series), default=0)
    figure = Figure(
        figsize=(7 + 0.075 * longest, 1.5 + 0.3 * max(len(series), 4)), layout="constrained"
    )
    ax = figure.add_subplot()
    for n, (team, ranks) in enumerate(series.items()):
        ys = [math.nan if r is None else r for r in ranks]
        line = ax.plot(times, ys, marker="o", markersize=3, color=PALETTE[n % len(PALETTE)])
        last = next((i for i in range(len(ys) - 1, -1, -1) if not math.isnan(ys[i])), None)
        if last is not None:
            ax.annotate(
                short_name(team),
                (times[last], ys[last]),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=line[0].get_color(),
            )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()  # rank 1 on top
    ax.set_ylabel("rank")
    ax.set_title(f"{plain_name(board.phase)}: rank evolution")
    figure.autofmt_xdate()
    return figure
