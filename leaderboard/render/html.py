"""The HTML board: one self-contained page (inline CSS, script and SVG; no external assets).

Sections: sortable standings (with a rank-interval bar per entry), the per-task heatmap
(not in a hidden-task phase) and the rank-evolution chart. The stylesheet and the sorting
script are the package files ``board.css`` and ``board.js``, inlined into every page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib.resources import files

from leaderboard.board import Board, BoardEntry
from leaderboard.render.escape import html_text, short_name
from leaderboard.render.formatting import (
    NON_COMPETING_MARK,
    finite,
    fmt,
    interval_text,
    iso,
    stamp,
    utc,
)
from leaderboard.render.history import PALETTE, history_series

# viridis at 0, 1/4, 1/2, 3/4, 1: a sequential map readable in greyscale and by most
# colour-blind readers; interpolated in Python so the HTML needs no script for colours.
_VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
# The rank-evolution chart's x labels: px per character at font-size 11 (digits are ~0.64
# em) and the least space between two labels.
_CHAR_PX = 7.0
_LABEL_GAP = 12.0
_WORD_END = re.compile(r"[_\-./]+(?=[^_\-./])")


@cache
def _asset(name: str) -> str:
    """A file of this package: board.css, or board.js (sorts the standings by each cell's
    data-value, numbers or text; an empty data-value sorts last)."""
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def _scroll(content: str) -> str:
    """`content` in a box that scrolls sideways on its own when wider than the page (a wide
    heatmap or a long history), so the page itself never does."""
    return f'<div class="scroll">{content}</div>'


def _breakable(name: str) -> str:
    """`name` escaped for HTML, with a line-break opportunity after each _ - . / inside it."""
    return _WORD_END.sub(lambda m: m.group() + "<wbr>", html_text(name))


def _viridis(x: float) -> tuple[int, int, int]:
    x = min(max(x, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    f = x - i
    lo, hi = _VIRIDIS[i], _VIRIDIS[i + 1]
    r, g, b = (round(a + (c - a) * f) for a, c in zip(lo, hi, strict=True))
    return r, g, b


def _column_scale(board: Board, task: str) -> tuple[float, float]:
    """Min and max Q of a task: each task is coloured on its own scale (Q ranges differ)."""
    values = [q for e in board.entries if (q := finite(e.task_quality.get(task))) is not None]
    return (min(values), max(values)) if values else (0.0, 0.0)


def _heat(value: float | None, lo: float, hi: float) -> str:
    """Inline style for a heatmap cell: background from viridis, readable text colour."""
    if value is None or not math.isfinite(value):
        return "background:#eeeeee;color:#555555"
    r, g, b = _viridis((value - lo) / (hi - lo) if hi > lo else 0.5)
    text = "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"
    return f"background:#{r:02x}{g:02x}{b:02x};color:{text}"


def _interval_svg(entry: BoardEntry, places: int) -> str:
    """A small bar: the 95% rank interval over 1..places, with a dot at the rank."""
    width, height, pad = 100, 12, 4

    def x(rank: int) -> float:
        return pad + (width - 2 * pad) * ((rank - 1) / max(places - 1, 1))

    parts = [
        f'<svg class="interval" width="{width}" height="{height}" role="img" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{pad}" x2="{width - pad}" y1="6" y2="6" stroke="#ddd"/>',
    ]
    if entry.rank_interval is not None:
        lo, hi = entry.rank_interval
        parts.append(
            f'<rect x="{x(lo):.1f}" y="3" width="{max(x(hi) - x(lo), 2):.1f}" height="6" '
            'fill="#7aa6d6"/>'
        )
    if entry.rank is not None:
        parts.append(f'<circle cx="{x(entry.rank):.1f}" cy="6" r="3" fill="#1f3b73"/>')
    parts.append("</svg>")
    return "".join(parts)


def _standings_html(board: Board) -> str:
    places = max([e.rank for e in board.entries if e.rank is not None], default=1)
    for e in board.entries:
        if e.rank_interval is not None:
            places = max(places, e.rank_interval[1])
    head = (
        '<thead><tr><th data-type="number">Rank</th><th data-type="text">Team</th>'
        '<th data-type="number">Mean Q</th><th data-type="number">Weighted score</th>'
        '<th data-type="number">Rank interval (95%)</th></tr></thead>'
    )
    rows = []
    for entry in board.entries:
        team = html_text(entry.team)
        mark = "" if entry.competing else f' <span class="mark">{NON_COMPETING_MARK}</span>'
        mean, score = finite(entry.mean_quality), finite(entry.weighted_score)
        lo = "" if entry.rank_interval is None else str(entry.rank_interval[0])
        rows.append(
            f'<tr data-team="{team}"' + ("" if entry.competing else ' class="noncompeting"') + ">"
            f'<td class="num" data-value="{"" if entry.rank is None else entry.rank}">'
            f"{'–' if entry.rank is None else entry.rank}</td>"
            f'<td class="team" data-value="{team}"><bdi>{team}</bdi>{mark}</td>'
            f'<td class="num" data-value="{"" if mean is None else repr(mean)}">'
            f"{fmt(mean)}</td>"
            f'<td class="num" data-value="{"" if score is None else repr(score)}">'
            f"{fmt(score)}</td>"
            f'<td class="num" data-value="{lo}">{interval_text(entry)} '
            f"{_interval_svg(entry, places)}</td></tr>"
        )
    return _scroll(
        '<table id="standings">' + head + "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )


def _heatmap_html(board: Board) -> str:
    scales = {t: _column_scale(board, t) for t in board.tasks}
    # A task name may break after _ - . / (so nine tasks fit a laptop screen); the weight
    # stays on one line under it. The full name is also the header's tooltip.
    head = "".join(
        f'<th title="{html_text(t)}">{_breakable(t)}'
        f'<small class="weight">w = {fmt(board.weights.get(t), 3)}</small></th>'
        for t in board.tasks
    )
    rows = []
    for entry in board.entries:
        cells = []
        for task in board.tasks:
            q = finite(entry.task_quality.get(task))
            cells.append(f'<td class="num" style="{_heat(q, *scales[task])}">{fmt(q, 2)}</td>')
        rows.append(
            f'<tr data-team="{html_text(entry.team)}"><td class="team">'
            f"<bdi>{html_text(entry.team)}</bdi></td>{''.join(cells)}</tr>"
        )
    return _scroll(
        '<table id="heatmap"><thead><tr><th>Team</th>'
        + head
        + "</tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def x_ticks(
    times: Sequence[datetime], spacing: float
) -> tuple[list[tuple[int, tuple[str, ...]]], str]:
    """The x axis of the rank-evolution chart: (snapshot index, label lines) for each
    labelled snapshot, and the axis title. Labels are distinct:

    - every snapshot on its own date: the date;
    - all on one date: the time (HH:MM, or HH:MM:SS when two share a minute), with the
      date under the first one;
    - several dates, some shared: the time with its date under it, on every label.

    `spacing` is the distance in px between neighbouring snapshots. The first label starts
    at the axis, the last ends at the plot's edge, the others are centred; labels that
    would overlap the one before are left out (the first and last never are)."""
    times = [utc(t) for t in times]
    dates = [t.strftime("%Y-%m-%d") for t in times]
    if len(set(dates)) == len(dates):
        labels = [(date,) for date in dates]
        title = "date (UTC)"
    else:
        minutes = {t.strftime("%Y-%m-%d %H:%M") for t in times}
        clock = [t.strftime("%H:%M" if len(minutes) == len(times) else "%H:%M:%S") for t in times]
        one_date = len(set(dates)) == 1
        labels = [
            (clock[i],) if one_date and i else (clock[i], dates[i]) for i in range(len(times))
        ]
        title = "date and time (UTC)"
    last = len(times) - 1

    def apart(a: int, b: int) -> bool:
        """Whether label a ends a gap before label b starts, on the lines both have."""
        depth = min(len(labels[a]), len(labels[b]))
        ends = []
        for i in (a, b):
            width = _CHAR_PX * max(len(line) for line in labels[i][:depth])
            start = i * spacing - (0 if i == 0 else width if i == last else width / 2)
            ends.append((start, start + width))
        return ends[0][1] + _LABEL_GAP <= ends[1][0]

    shown: list[int] = []
    for i in range(len(times)):
        if i == last:  # the last label always shows: drop the ones it would overlap
            while len(shown) > 1 and not apart(shown[-1], i):
                shown.pop()
            shown.append(i)
        elif not shown or apart(shown[-1], i):
            shown.append(i)
    return [(i, labels[i]) for i in shown], title


def rank_evolution_svg(board: Board) -> str:
    """Inline SVG: one line per team, rank 1 at the top, one x step per snapshot; x labels
    from `x_ticks`, axis titles "date ..." and "rank"."""
    series = history_series(board)
    snapshots = len(board.history)
    worst = max([r for ranks in series.values() for r in ranks if r], default=1)
    left, right, top, bottom, label_w = 56, 20, 20, 66, 200
    width = max(480, 60 * snapshots) + left + right + label_w
    height = top + bottom + 24 * max(worst, 2)
    plot_w, plot_h = width - left - right - label_w, height - top - bottom

    def x(i: int) -> float:
        return left + plot_w * (i / max(snapshots - 1, 1))

    def y(rank: int) -> float:
        return top + plot_h * ((rank - 1) / max(worst - 1, 1))

    parts = [
        f'<svg id="rank-evolution" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Rank of each team over time">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]
    for rank in range(1, worst + 1):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(rank):.1f}" y2="{y(rank):.1f}" '
            f'stroke="#eee"/><text x="{left - 8}" y="{y(rank) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{rank}</text>'
        )
    if snapshots:
        ticks, title = x_ticks([when for when, _ in board.history], plot_w / max(snapshots - 1, 1))
        base = top + plot_h + 18
        for i, lines in ticks:
            # The first label starts at the axis, the last ends at the plot's right edge:
            # neither is cut by the edge of the picture.
            anchor = "start" if i == 0 else "end" if i == snapshots - 1 else "middle"
            under = "".join(f'<tspan x="{x(i):.1f}" dy="13">{line}</tspan>' for line in lines[1:])
            parts.append(
                f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top}" y2="{top + plot_h + 4}" '
                f'stroke="#eee"/><text class="x-label" x="{x(i):.1f}" y="{base}" '
                f'font-size="11" text-anchor="{anchor}">{lines[0]}{under}</text>'
            )
        parts.append(
            f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height - 6}" '
            f'font-size="12" text-anchor="middle">{title}</text>'
            f'<text class="axis-title" transform="rotate(-90)" x="{-(top + plot_h / 2):.1f}" '
            'y="16" font-size="12" text-anchor="middle">rank</text>'
        )
    else:
        parts.append(f'<text x="{left}" y="{top + 12}" font-size="12">No history yet.</text>')
    for n, (team, ranks) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        name = html_text(team)
        segment: list[str] = []
        segments = []
        for i, rank in enumerate([*ranks, None]):  # trailing None flushes the last segment
            if rank is None:
                if segment:
                    segments.append(segment)
                segment = []
            else:
                segment.append(f"{x(i):.1f},{y(rank):.1f}")
        # The full name is in <title> (a tooltip); the line-end label is cut to fit.
        parts.append(f'<g data-team="{name}"><title>{name}</title>')
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                    'stroke-width="2"/>'
                )
        last = next((i for i in range(snapshots - 1, -1, -1) if ranks[i]), None)
        if last is not None:
            parts.append(
                f'<text x="{x(last) + 8:.1f}" y="{y(ranks[last] or 1) + 4:.1f}" font-size="11" '
                f'fill="{colour}" style="unicode-bidi:isolate">'
                f"{html_text(short_name(team, 28))}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def board_html(board: Board) -> str:
    """One self-contained page (inline CSS/JS/SVG, no external assets). Team names appear
    only HTML-escaped; the script carries no data (it sorts the cells' data-value)."""
    title = f"{html_text(board.challenge)}: {html_text(board.phase)} phase"
    sections = [
        f"<h1>{title}</h1>",
        f'<p>Leaderboard updated: <time datetime="{iso(board.generated_at)}">'
        f"{stamp(board.generated_at)}</time></p>",
        "<h2>Standings</h2>",
        "<p>Ranked by aggregating per-task ranks, each task weighted by its spread of Q. "
        "Click a column header to sort."
        + (
            ""
            if all(entry.competing for entry in board.entries)
            else f" Entries marked {NON_COMPETING_MARK} are organisers' baselines."
        )
        + "</p>",
        _standings_html(board),
    ]
    if not board.hidden_tasks and board.tasks:
        sections += [
            "<h2>Quality per task</h2>",
            "<p>Q per task; colours are scaled per task (dark = lowest, yellow = highest); "
            "w = task weight.</p>",
            _heatmap_html(board),
        ]
    sections += ["<h2>Rank evolution</h2>", _scroll(rank_evolution_svg(board))]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{_asset('board.css')}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + f"\n<script>\n{_asset('board.js')}</script>\n</body>\n</html>\n"
    )
