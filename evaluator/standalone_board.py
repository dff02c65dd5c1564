"""`update_leaderboard: true`: rank every run of a phase, as the reference tool does.

Reads OUT/PHASE/*/results_summary.json, ranks the runs with rank-then-aggregate over their
per-task Q (runs missing a task are listed unranked) and writes
OUT/leaderboards/PHASE/leaderboard_YYYYMMDD_HHMMSS.csv.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from datetime import datetime
from pathlib import Path

import numpy as np

from evaluator.run_files import write_atomic
from leaderboard.ranking import rank_entries

log = logging.getLogger(__name__)


def update_board(output_dir: Path, phase: str, *, now: datetime | None = None) -> Path:
    """Write the phase's leaderboard CSV; return its path."""
    runs = []
    for path in sorted((output_dir / phase).glob("*/results_summary.json")):
        try:
            runs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as error:
            log.warning("skipping unreadable %s: %s", path, error)
    tasks = sorted({task for run in runs for task in run.get("task_q_scores", {})})
    quality = np.array(
        [[_number(run.get("task_q_scores", {}).get(task)) for task in tasks] for run in runs],
        dtype=np.float64,
    ).reshape(len(runs), len(tasks))
    ranking = rank_entries(quality)
    order = sorted(range(len(runs)), key=lambda i: (not ranking.ranked[i], ranking.rank[i]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["experiment", "mean_score", "weighted_score", "aggregated_rank",
                     *(f"q::{task}" for task in tasks)])
    for i in order:
        writer.writerow([
            runs[i].get("experiment", ""),
            _cell(ranking.mean_quality[i]),
            _cell(ranking.weighted_score[i]),
            int(ranking.rank[i]) if ranking.ranked[i] else "",
            *(_cell(value) for value in quality[i]),
        ])
    stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
    path = output_dir / "leaderboards" / phase / f"leaderboard_{stamp}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue().encode())
    return path


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"
