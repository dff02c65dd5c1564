"""update_leaderboard: the reference's per-phase leaderboard CSV over every run."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

from evaluator.standalone_board import update_board


def write_summary(root: Path, experiment: str, scores: dict[str, float | None]) -> None:
    folder = root / "dev" / experiment
    folder.mkdir(parents=True)
    (folder / "results_summary.json").write_text(
        json.dumps({"experiment": experiment, "task_q_scores": scores})
    )


def test_ranks_every_run_of_the_phase_with_the_worked_example(tmp_path: Path) -> None:
    write_summary(tmp_path, "A_20260101_000000", {"t1": 10.0, "t2": 0.0})
    write_summary(tmp_path, "B_20260101_000000", {"t1": 0.0, "t2": 9.0})
    write_summary(tmp_path, "C_20260101_000000", {"t1": 9.0, "t2": 8.0})
    write_summary(tmp_path, "D_20260101_000000", {"t1": None, "t2": 8.0})
    (tmp_path / "dev" / "broken").mkdir()
    (tmp_path / "dev" / "broken" / "results_summary.json").write_text("{not json")
    path = update_board(tmp_path, "dev", now=datetime(2026, 1, 2, 3, 4, 5))
    assert path == tmp_path / "leaderboards" / "dev" / "leaderboard_20260102_030405.csv"
    rows = list(csv.DictReader(path.open()))
    assert [row["experiment"][0] for row in rows] == ["A", "C", "B", "D"]
    assert [row["aggregated_rank"] for row in rows] == ["1", "2", "3", ""]
    assert abs(float(rows[0]["weighted_score"]) - 1.94496) < 1e-5
    assert rows[3]["q::t1"] == "" and rows[3]["weighted_score"] == ""
