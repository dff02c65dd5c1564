"""Standalone runs in the scoring database, and `update_leaderboard: true`.

Every `probeboard evaluate` run is recorded (challenge 'standalone', team = method name,
one submission per run folder; the phase counts each method's best run) and snapshots the
phase's standings.

Writes, under OUT/leaderboards/PHASE/: the reference tool's
leaderboard_YYYYMMDD_HHMMSS.csv (experiment, mean_score, weighted_score, aggregated_rank,
q::<task>...), and the boards: leaderboard.json, README.md (table between the probeboard
markers; a README an organiser already edited keeps its own text), leaderboard.html and
PNG/SVG pictures of the heatmap and the rank evolution.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from evaluator.db.challenges import STANDALONE_CHALLENGE, find_phase
from evaluator.db.evaluations import record_local_run
from evaluator.db.models import Submission
from evaluator.db.store import Store
from evaluator.scoring.results import EvaluationResult
from evaluator.support.errors import NotFound
from evaluator.support.jsonio import write_atomic
from leaderboard.phase_board import phase_board, phase_standings, snapshot
from leaderboard.publish.files import write_board_files


def update_board(store: Store, output_dir: Path, phase: str, *,
                 now: datetime | None = None) -> Path:
    """Write the phase's leaderboard files from the database; return the folder."""
    now = now or datetime.now(UTC)
    folder = output_dir / "leaderboards" / phase
    folder.mkdir(parents=True, exist_ok=True)
    with store.session() as session:
        row = find_phase(session, STANDALONE_CHALLENGE, phase)
        if row is None:
            raise NotFound(f"phase {phase!r} has no recorded runs; run `probeboard evaluate "
                           f"--phase {phase}` first")
        result = phase_standings(session, row)
        board = phase_board(session, row, now=now)
        experiments = {
            submission.id: submission.source_id.split("/", 1)[-1]
            for submission in row.submissions
        }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["experiment", "mean_score", "weighted_score", "aggregated_rank",
                     *(f"q::{task}" for task in result.tasks)])
    ranking = result.ranking
    for i, entry in enumerate(result.entries):
        writer.writerow([
            experiments.get(entry.submission_id, entry.shown_name),
            _cell(ranking.mean_quality[i]),
            _cell(ranking.weighted_score[i]),
            int(ranking.rank[i]) if ranking.ranked[i] else "",
            *(_cell(entry.task_quality.get(task, math.nan)) for task in result.tasks),
        ])
    stamp = now.astimezone().strftime("%Y%m%d_%H%M%S")
    write_atomic(folder / f"leaderboard_{stamp}.csv", buffer.getvalue().encode())
    write_board_files(board, folder)
    return folder


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def record_run(store: Store, result: EvaluationResult, *, run_dir: Path, phase: str,
               method_name: str, submission_file: Path, is_baseline: bool = False) -> int:
    """Record a standalone run (idempotent per run folder) and snapshot the phase's
    standings; return the submission id."""
    digest = hashlib.sha256()
    with submission_file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)

    submission_id, _ = record_local_run(
        store, result, phase=phase, method_name=method_name, run_dir=run_dir,
        file_sha256=digest.hexdigest(), file_name=submission_file.name,
        is_baseline=is_baseline, after=SnapshotRun(run_dir.name),
    )
    return submission_id


@dataclass(frozen=True)
class SnapshotRun:
    """A recorded run's follow-up: the phase's standings snapshot (its history)."""

    run: str

    def after_final(self, session: Session, submission: Submission) -> None:
        snapshot(session, submission.phase, reason=f"run {self.run} recorded")
