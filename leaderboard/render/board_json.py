"""leaderboard.json: strict JSON, schema ``probeboard.leaderboard/1``.

`board_json` writes it, `board_dict` is the same document as Python data, and `SCHEMA`
documents every key (tests check the output's keys against it). `null` stands for NaN /
not ranked / unknown; times are ISO-8601 UTC ending in "Z"::

    {"schema": "probeboard.leaderboard/1", "challenge": str, "phase": str,
     "generated_at": "2026-01-02T03:04:05Z", "hidden_tasks": bool,
     "tasks": [str, ...],                      # omitted when hidden_tasks
     "weights": {task: float},                 # omitted when hidden_tasks
     "entries": [{"rank": int|null, "team": str, "mean_q": float|null,
                  "weighted_score": float|null,
                  "task_q": {task: float|null},  # omitted when hidden_tasks
                  "rank_interval": [lo, hi]|null, "competing": bool}, ...],
     "history": [{"time": "...Z", "ranks": {team: int}}, ...]}

In a hidden-task phase the keys in `HIDDEN_BOARD_KEYS` and `HIDDEN_ENTRY_KEYS` are left
out, so the document names no task. Team names are exactly as submitted (untrusted text);
bidi controls, line separators and ``<>&`` are written as ``\\uXXXX`` escapes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from leaderboard.board import Board
from leaderboard.render.escape import BIDI_CONTROLS
from leaderboard.render.formatting import finite, iso

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


def board_dict(board: Board) -> dict[str, Any]:
    """The `SCHEMA` document as Python data (NaN already turned into None)."""
    entries = []
    for entry in board.entries:
        item: dict[str, Any] = {
            "rank": entry.rank,
            "team": entry.team,
            "mean_q": finite(entry.mean_quality),
            "weighted_score": finite(entry.weighted_score),
            "task_q": {t: finite(entry.task_quality.get(t, math.nan)) for t in board.tasks},
            "rank_interval": None if entry.rank_interval is None else list(entry.rank_interval),
            "competing": entry.competing,
        }
        if board.hidden_tasks:
            for key in HIDDEN_ENTRY_KEYS:
                del item[key]
        entries.append(item)
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "challenge": board.challenge,
        "phase": board.phase,
        "generated_at": iso(board.generated_at),
        "hidden_tasks": board.hidden_tasks,
        "tasks": list(board.tasks),
        "weights": {t: finite(board.weights.get(t, math.nan)) for t in board.tasks},
        "entries": entries,
        "history": [
            {"time": iso(when), "ranks": {team: int(r) for team, r in ranks.items()}}
            for when, ranks in board.history
        ],
    }
    if board.hidden_tasks:
        for key in HIDDEN_BOARD_KEYS:
            del doc[key]
    return doc


# Escaped as \uXXXX inside JSON strings: bidi controls and line separators so a viewer of the
# raw file sees no reordered text, and <>& so the document can be embedded in a <script>.
_JSON_ESCAPES = {chr(c): f"\\u{c:04x}" for c in [*BIDI_CONTROLS, 0x2028, 0x2029, *map(ord, "<>&")]}
_JSON_ESCAPE = re.compile("|".join(map(re.escape, _JSON_ESCAPES)))


def board_json(board: Board) -> str:
    """Strict JSON (no NaN/Infinity tokens) following `SCHEMA`; UTF-8 text, team names
    exactly as submitted (decoded), with the characters above escaped."""
    text = json.dumps(board_dict(board), ensure_ascii=False, allow_nan=False, indent=2)
    return _JSON_ESCAPE.sub(lambda m: _JSON_ESCAPES[m.group()], text) + "\n"
