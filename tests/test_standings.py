"""Which submissions count per phase (protocol section 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from evaluator.scoring.results import quality
from leaderboard.standings import Scored, build_board, counted, standings

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def entry(sid: int, team: str, day: int, q: tuple[float, float], **flags: bool) -> Scored:
    return Scored(sid, team, T0 + timedelta(days=day), flags.pop("is_public", True),
                  {"t1": q[0], "t2": q[1]}, **flags)


SUBMISSIONS = [
    entry(1, "alpha", 0, (10.0, 9.0)),
    entry(2, "alpha", 1, (4.0, 3.0)),  # alpha's latest public is worse than its first
    entry(3, "alpha", 2, (20.0, 20.0), is_public=False),  # private: never shown
    entry(4, "beta", 0, (6.0, 6.0)),
    entry(5, "host", 0, (1.0, 0.0), is_baseline=True),  # mean-of-channels baseline
    entry(6, "host", 0, (-5.0, -7.0), is_baseline=True),  # random baseline
    entry(7, "gamma", 3, (5.0, 5.0), is_public=False),  # a team with only private entries
]


def test_latest_public_per_team_plus_every_baseline() -> None:
    chosen = sorted(e.submission_id for e in counted(SUBMISSIONS, "latest_public"))
    assert chosen == [2, 4, 5, 6]


def test_best_per_team_by_mean_q() -> None:
    chosen = sorted(e.submission_id for e in counted(SUBMISSIONS, "best"))
    assert chosen == [1, 4, 5, 6]


def test_best_ignores_entries_with_a_nan_task_when_a_complete_one_exists() -> None:
    entries = [entry(1, "a", 0, (np.nan, 50.0)), entry(2, "a", 1, (1.0, 1.0))]
    assert [e.submission_id for e in counted(entries, "best")] == [2]


def test_baselines_are_ranked_but_not_competing() -> None:
    result = standings(SUBMISSIONS, ["t1", "t2"], "latest_public")
    assert [e.submission_id for e in result.entries] == [4, 2, 5, 6]
    assert result.ranking.rank.tolist() == [1, 2, 3, 4]
    assert [e.competing for e in result.entries] == [True, True, False, False]


def test_unranked_entries_come_last() -> None:
    entries = [entry(1, "a", 0, (np.nan, 5.0)), entry(2, "b", 0, (1.0, 1.0))]
    result = standings(entries, ["t1", "t2"], "latest_public")
    assert [e.submission_id for e in result.entries] == [2, 1]
    assert result.ranking.ranked.tolist() == [True, False]


def test_board_carries_ranks_weights_names_and_intervals() -> None:
    rng = np.random.default_rng(0)
    scored = []
    for i in range(1, 5):
        folds = {"t1": rng.normal(0.1 * i, 0.02, 40), "t2": rng.normal(0.05 * i, 0.02, 40)}
        task_q = {task: quality(scores)[0] for task, scores in folds.items()}
        scored.append(Scored(i, f"team{i}", T0, True, task_q, label=f"Team {i}",
                             fold_scores=folds))
    board = build_board(standings(scored, ["t1", "t2"], "latest_public"), challenge="c",
                        phase="final", hidden_tasks=False, generated_at=T0, resamples=200)
    assert [e.team for e in board.entries] == ["Team 4", "Team 3", "Team 2", "Team 1"]
    assert [e.rank for e in board.entries] == [1, 2, 3, 4]
    assert sum(board.weights.values()) == pytest.approx(1.0)
    for e in board.entries:
        assert e.rank_interval is not None
        assert e.rank_interval[0] <= e.rank <= e.rank_interval[1]


def test_board_without_fold_scores_has_no_intervals() -> None:
    board = build_board(standings(SUBMISSIONS, ["t1", "t2"], "best"), challenge="c",
                        phase="dev", hidden_tasks=True, generated_at=T0)
    assert all(e.rank_interval is None for e in board.entries)
    assert board.hidden_tasks
