"""Publish a `Board`: strict JSON, a README table, one offline HTML page, PNG/SVG pictures.

Team names are untrusted participant text. Every output first makes them "plain"
(`plain_name`: control characters -> spaces, bidirectional controls removed, so a U+202E
override cannot flip the rest of a row) and then escapes them for its own format.

In a hidden-task phase (`Board.hidden_tasks`) nothing published names a task or shows
per-task numbers or weights: JSON omits `tasks`, `weights` and `task_q`, the README never
has them, and the HTML page and pictures leave out the per-task heatmap.

JSON schema ``probeboard.leaderboard/1`` (`board_json`, documented field by field in
`SCHEMA`; `null` stands for NaN / not ranked / unknown; times are ISO-8601 UTC, "Z"):

    {"schema": "probeboard.leaderboard/1", "challenge": str, "phase": str,
     "generated_at": "2026-01-02T03:04:05Z", "hidden_tasks": bool,
     "tasks": [str, ...],                      # omitted when hidden_tasks
     "weights": {task: float},                 # omitted when hidden_tasks
     "entries": [{"rank": int|null, "team": str, "mean_q": float|null,
                  "weighted_score": float|null,
                  "task_q": {task: float|null},  # omitted when hidden_tasks
                  "rank_interval": [lo, hi]|null, "competing": bool}, ...],
     "history": [{"time": "...Z", "ranks": {team: int}}, ...]}
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leaderboard.board import Board, BoardEntry

SCHEMA_ID = "probeboard.leaderboard/1"

# The documented schema: key -> meaning. Tests check the output keys against it.
SCHEMA: dict[str, dict[str, str]] = {
    "board": {
        "schema": f'always "{SCHEMA_ID}"; a breaking change bumps the number',
        "challenge": "challenge name",
        "phase": "challenge phase (each phase has its own board)",
        "generated_at": "when the board was computed, ISO-8601 UTC ending in Z",
        "hidden_tasks": "true in a hidden-task phase: tasks, weights and task_q are omitted",
        "tasks": "task names in column order (omitted when hidden_tasks)",
        "weights": "task -> weight of the rank-then-aggregate score (omitted when hidden_tasks)",
        "entries": "one object per entry, in display order (rank ascending, unranked last)",
        "history": "standings snapshots oldest first: {time, ranks: team -> rank}",
    },
    "entry": {
        "rank": "final rank (1 = best, ties share the best rank); null = not ranked",
        "team": "team name exactly as submitted (untrusted text)",
        "mean_q": "mean quality Q over tasks; null when a task has no Q",
        "weighted_score": "sum of task weight x task rank (lower is better); null if unranked",
        "task_q": "task -> Q, null for a missing Q (omitted when hidden_tasks)",
        "rank_interval": "[lo, hi] 95% bootstrap interval of the rank, or null",
        "competing": "false for baselines and host entries (listed and ranked, not competing)",
    },
    "history": {
        "time": "snapshot time, ISO-8601 UTC ending in Z",
        "ranks": "team -> rank at that time",
    },
}
HIDDEN_BOARD_KEYS = frozenset({"tasks", "weights"})
HIDDEN_ENTRY_KEYS = frozenset({"task_q"})

README_START = "<!-- probeboard:leaderboard:start -->"
README_END = "<!-- probeboard:leaderboard:end -->"
NON_COMPETING_MARK = "(non-competing)"

# Bidirectional embeddings, overrides, isolates and marks: removing them means a name cannot
# reorder the text around it. ZWJ (U+200D) stays: emoji sequences need it.
_BIDI_CONTROLS = dict.fromkeys(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;", "|": "&#124;"}


# ----------------------------------------------------------------------------- text


def plain_name(text: str) -> str:
    """`text` as one line of plain text: control characters and line breaks become spaces,
    bidi controls are dropped, outer whitespace is stripped (Markdown strips it anyway)."""
    return _CONTROL.sub(" ", text.translate(_BIDI_CONTROLS)).strip()


def markdown_text(text: str) -> str:
    """Escape untrusted text for a GFM table cell: it renders literally, in one cell.

    HTML-significant characters and `|` become entities (a literal `|` is always a cell
    separator, so `&#124;` is the one spelling no table parser splits on); every other ASCII
    punctuation character is backslash-escaped, which CommonMark defines as literal."""
    out = []
    for char in plain_name(text):
        if char in _MD_ENTITIES:
            out.append(_MD_ENTITIES[char])
        elif char in _ASCII_PUNCT:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def html_text(text: str) -> str:
    """Escape untrusted text for HTML/SVG content and quoted attribute values."""
    return html.escape(plain_name(text), quote=True)


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def _iso(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%d %H:%M:%S UTC")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _fmt(value: float | None, digits: int = 3) -> str:
    value = _finite(value)
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(entry: BoardEntry) -> str:
    return "–" if entry.rank_interval is None else "{}–{}".format(*entry.rank_interval)


# ----------------------------------------------------------------------------- JSON


def board_dict(board: Board) -> dict[str, Any]:
    """The `SCHEMA` document as Python data (NaN already turned into None)."""
    entries = []
    for entry in board.entries:
        item: dict[str, Any] = {
            "rank": entry.rank,
            "team": entry.team,
            "mean_q": _finite(entry.mean_quality),
            "weighted_score": _finite(entry.weighted_score),
            "task_q": {t: _finite(entry.task_quality.get(t, math.nan)) for t in board.tasks},
            "rank_interval": None if entry.rank_interval is None else list(entry.rank_interval),
            "competing": entry.competing,
        }
        if board.hidden_tasks:
            del item["task_q"]
        entries.append(item)
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "challenge": board.challenge,
        "phase": board.phase,
        "generated_at": _iso(board.generated_at),
        "hidden_tasks": board.hidden_tasks,
        "tasks": list(board.tasks),
        "weights": {t: _finite(board.weights.get(t, math.nan)) for t in board.tasks},
        "entries": entries,
        "history": [
            {"time": _iso(when), "ranks": {team: int(r) for team, r in ranks.items()}}
            for when, ranks in board.history
        ],
    }
    if board.hidden_tasks:
        for key in HIDDEN_BOARD_KEYS:
            del doc[key]
    return doc


# Escaped as \uXXXX inside JSON strings: bidi controls and line separators so a viewer of the
# raw file sees no reordered text, and <>& so the document can be embedded in a <script>.
_JSON_ESCAPES = {chr(c): f"\\u{c:04x}" for c in [*_BIDI_CONTROLS, 0x2028, 0x2029, *map(ord, "<>&")]}
_JSON_ESCAPE = re.compile("|".join(map(re.escape, _JSON_ESCAPES)))


def board_json(board: Board) -> str:
    """Strict JSON (no NaN/Infinity tokens) following `SCHEMA`; UTF-8 text, team names
    exactly as submitted (decoded), with the characters above escaped."""
    text = json.dumps(board_dict(board), ensure_ascii=False, allow_nan=False, indent=2)
    return _JSON_ESCAPE.sub(lambda m: _JSON_ESCAPES[m.group()], text) + "\n"


# ----------------------------------------------------------------------------- README


def readme_table(board: Board) -> str:
    """One phase's Markdown section: heading, update time, standings table, footnote."""
    lines = [
        f"### {markdown_text(board.challenge)}: {markdown_text(board.phase)} phase",
        "",
        f"Leaderboard updated: {_stamp(board.generated_at)}",
        "",
        "| Rank | Team | Mean Q | Rank interval (95%) |",
        "| :----: | :---- | ----: | :----: |",
    ]
    for entry in board.entries:
        team = markdown_text(entry.team)
        if not entry.competing:
            team += " " + markdown_text(NON_COMPETING_MARK)
        rank = "–" if entry.rank is None else str(entry.rank)
        lines.append(f"| {rank} | {team} | {_fmt(entry.mean_quality)} | {_interval(entry)} |")
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
        raise ValueError(
            "The README needs exactly one leaderboard marker pair, in this order, on their "
            f"own lines: {README_START} ... {README_END}; add them where the leaderboard "
            "should appear."
        )
    body = "\n".join(readme_table(board) for board in boards)
    head = text[: start + len(README_START)]
    return f"{head}\n{body}{text[end:]}" if body else f"{head}\n{text[end:]}"


# ----------------------------------------------------------------------------- colours

# viridis at 0, 1/4, 1/2, 3/4, 1: a sequential map readable in greyscale and by most
# colour-blind readers; interpolated in Python so the HTML needs no script for colours.
_VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


def _viridis(x: float) -> tuple[int, int, int]:
    x = min(max(x, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    f = x - i
    lo, hi = _VIRIDIS[i], _VIRIDIS[i + 1]
    r, g, b = (round(a + (c - a) * f) for a, c in zip(lo, hi, strict=True))
    return r, g, b


def _column_scale(board: Board, task: str) -> tuple[float, float]:
    """Min and max Q of a task: each task is coloured on its own scale (Q ranges differ)."""
    values = [q for e in board.entries if (q := _finite(e.task_quality.get(task))) is not None]
    return (min(values), max(values)) if values else (0.0, 0.0)


def _heat(value: float | None, lo: float, hi: float) -> str:
    """Inline style for a heatmap cell: background from viridis, readable text colour."""
    if value is None or not math.isfinite(value):
        return "background:#eeeeee;color:#555555"
    r, g, b = _viridis((value - lo) / (hi - lo) if hi > lo else 0.5)
    text = "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"
    return f"background:#{r:02x}{g:02x}{b:02x};color:{text}"


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em}
th{background:#f3f3f3}
#standings th{cursor:pointer;user-select:none}
#standings th[aria-sort=ascending]::after{content:" \\25B2"}
#standings th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.team{unicode-bidi:isolate}
tr.noncompeting td{color:#666;font-style:italic}
.mark{font-size:.85em}
svg text{font-family:inherit}
"""

# Sorts by each cell's data-value (numbers) or text; empty data-value sorts last.
_JS = """
(function () {
  var table = document.getElementById("standings");
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var numeric = th.dataset.type === "number";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
"""


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
        mean, score = _finite(entry.mean_quality), _finite(entry.weighted_score)
        lo = "" if entry.rank_interval is None else str(entry.rank_interval[0])
        rows.append(
            f'<tr data-team="{team}"' + ("" if entry.competing else ' class="noncompeting"') + ">"
            f'<td class="num" data-value="{"" if entry.rank is None else entry.rank}">'
            f"{'–' if entry.rank is None else entry.rank}</td>"
            f'<td class="team" data-value="{team}"><bdi>{team}</bdi>{mark}</td>'
            f'<td class="num" data-value="{"" if mean is None else repr(mean)}">'
            f"{_fmt(mean)}</td>"
            f'<td class="num" data-value="{"" if score is None else repr(score)}">'
            f"{_fmt(score)}</td>"
            f'<td class="num" data-value="{lo}">{_interval(entry)} '
            f"{_interval_svg(entry, places)}</td></tr>"
        )
    return '<table id="standings">' + head + "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def _heatmap_html(board: Board) -> str:
    scales = {t: _column_scale(board, t) for t in board.tasks}
    head = "".join(
        f"<th>{html_text(t)}<br><small>w = {_fmt(board.weights.get(t), 3)}</small></th>"
        for t in board.tasks
    )
    rows = []
    for entry in board.entries:
        cells = []
        for task in board.tasks:
            q = _finite(entry.task_quality.get(task))
            cells.append(f'<td class="num" style="{_heat(q, *scales[task])}">{_fmt(q, 2)}</td>')
        rows.append(
            f'<tr data-team="{html_text(entry.team)}"><td class="team">'
            f"<bdi>{html_text(entry.team)}</bdi></td>{''.join(cells)}</tr>"
        )
    return (
        '<table id="heatmap"><thead><tr><th>Team</th>'
        + head
        + "</tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def _history_series(board: Board) -> dict[str, list[int | None]]:
    """team -> rank per snapshot (None where the team was absent or unranked)."""
    teams: dict[str, None] = {}
    for _, ranks in board.history:
        teams.update(dict.fromkeys(ranks))
    return {
        team: [r if (r := ranks.get(team)) and r > 0 else None for _, ranks in board.history]
        for team in teams
    }


def rank_evolution_svg(board: Board) -> str:
    """Inline SVG: one line per team, rank 1 at the top, one x step per snapshot."""
    series = _history_series(board)
    snapshots = len(board.history)
    worst = max([r for ranks in series.values() for r in ranks if r], default=1)
    left, right, top, bottom, label_w = 40, 20, 20, 40, 200
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
        # First date starts at the axis, last one ends there: neither is cut by the edge.
        for i, anchor in sorted({snapshots - 1: "end", 0: "start"}.items()):
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 18}" font-size="11" '
                f'text-anchor="{anchor}">{_stamp(board.history[i][0])[:16]}</text>'
            )
    else:
        parts.append(f'<text x="{left}" y="{top + 12}" font-size="12">No history yet.</text>')
    for n, (team, ranks) in enumerate(series.items()):
        colour = _PALETTE[n % len(_PALETTE)]
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
                f'fill="{colour}" style="unicode-bidi:isolate">{html_text(_label(team, 28))}</text>'
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
        f'<p>Leaderboard updated: <time datetime="{_iso(board.generated_at)}">'
        f"{_stamp(board.generated_at)}</time></p>",
        "<h2>Standings</h2>",
        "<p>Ranked by aggregating per-task ranks, each task weighted by its spread of Q. "
        "Click a column header to sort. Entries marked "
        f"{NON_COMPETING_MARK} are organisers' baselines.</p>",
        _standings_html(board),
    ]
    if not board.hidden_tasks and board.tasks:
        sections += [
            "<h2>Quality per task</h2>",
            "<p>Q per task; colours are scaled per task (dark = lowest, yellow = highest); "
            "w = task weight.</p>",
            _heatmap_html(board),
        ]
    sections += ["<h2>Rank evolution</h2>", rank_evolution_svg(board)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + f"\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


# ----------------------------------------------------------------------------- pictures


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


def _label(team: str, limit: int = 60) -> str:
    """A team name for a picture axis: cut at `limit` characters, since a 200-character name
    would squeeze the plot to nothing (the table and HTML keep names whole)."""
    name = plain_name(team)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _heatmap_figure(board: Board) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    teams = [_label(e.team) + ("" if e.competing else " *") for e in board.entries]
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

    series = _history_series(board)
    times = [_utc(when) for when, _ in board.history]
    longest = max((len(_label(t)) for t in series), default=0)
    figure = Figure(
        figsize=(7 + 0.075 * longest, 1.5 + 0.3 * max(len(series), 4)), layout="constrained"
    )
    ax = figure.add_subplot()
    for n, (team, ranks) in enumerate(series.items()):
        ys = [math.nan if r is None else r for r in ranks]
        line = ax.plot(times, ys, marker="o", markersize=3, color=_PALETTE[n % len(_PALETTE)])
        last = next((i for i in range(len(ys) - 1, -1, -1) if not math.isnan(ys[i])), None)
        if last is not None:
            ax.annotate(
                _label(team),
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


def board_text(board: Board) -> str:
    """A readable terminal table."""
    lines = [f"{board.challenge} / {board.phase}",
             f"{'rank':>4}  {'team':<32} {'mean Q':>8} {'score':>7} {'interval':>9}"]
    for entry in board.entries:
        rank = str(entry.rank) if entry.rank is not None else "-"
        interval = "{}-{}".format(*entry.rank_interval) if entry.rank_interval else ""
        score = f"{entry.weighted_score:.3f}" if entry.weighted_score is not None else ""
        name = plain_name(entry.team)[:32] + ("" if entry.competing else " *")
        lines.append(f"{rank:>4}  {name:<32} {entry.mean_quality:>8.3f} {score:>7} "
                     f"{interval:>9}")
    if not all(entry.competing for entry in board.entries):
        lines.append("* non-competing (baseline or host entry)")
    return "\n".join(lines)
