"""Rank-then-aggregate, protocol section 6."""

from __future__ import annotations

import numpy as np
import pytest

from leaderboard.ranking import min_rank, rank_entries


def test_worked_example_of_the_protocol() -> None:
    # Q(A) = (10, 0), Q(B) = (0, 9), Q(C) = (9, 8)
    ranking = rank_entries(np.array([[10.0, 0.0], [0.0, 9.0], [9.0, 8.0]]))
    assert ranking.task_ranks.tolist() == [[1, 3], [3, 1], [2, 2]]
    assert ranking.weights == pytest.approx([0.52752, 0.47248], abs=1e-5)
    assert ranking.weighted_score == pytest.approx([1.94496, 2.05504, 2.0], abs=1e-5)
    assert ranking.rank.tolist() == [1, 3, 2]
    # ... while mean Q puts C first (8.5) and A second (5.0).
    assert ranking.mean_quality.tolist() == [5.0, 4.5, 8.5]


def test_the_best_mean_q_can_rank_third() -> None:
    quality = np.array([[10.0, 3.0, 14.0], [11.0, 9.0, 10.0], [2.0, 11.0, 16.0], [13.0, 10.0, 3.0]])
    ranking = rank_entries(quality)
    assert ranking.task_ranks.tolist() == [[3, 4, 2], [2, 3, 3], [4, 1, 1], [1, 2, 4]]
    # weights = population std per task / their sum
    spread = quality.std(axis=0)
    assert ranking.weights == pytest.approx(spread / spread.sum())
    assert ranking.weighted_score == pytest.approx(ranking.task_ranks @ ranking.weights)
    assert ranking.rank.tolist() == [4, 3, 1, 2]
    assert int(np.argmax(ranking.mean_quality)) == 1  # mean Q 10.0, yet rank 3


def test_ties_share_the_best_rank() -> None:
    assert min_rank(np.array([3.0, 5.0, 5.0, 1.0]), descending=True).tolist() == [3, 1, 1, 4]
    ranking = rank_entries(np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]]))
    assert ranking.rank.tolist() == [1, 1, 3]


def test_nan_entries_are_listed_but_not_ranked() -> None:
    ranking = rank_entries(np.array([[10.0, 0.0], [np.nan, 9.0], [9.0, 8.0]]))
    assert ranking.ranked.tolist() == [True, False, True]
    assert ranking.rank.tolist() == [2, 0, 1]  # without B, task 2 carries the weight
    assert np.isnan(ranking.weighted_score[1])


def test_uniform_weights_when_every_spread_is_zero() -> None:
    single = rank_entries(np.array([[3.0, 4.0, 5.0]]))
    assert single.weights == pytest.approx([1 / 3] * 3)
    assert single.rank.tolist() == [1]
    equal = rank_entries(np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert equal.weights == pytest.approx([0.5, 0.5])
    assert equal.rank.tolist() == [1, 1]


def test_ghost_task_takes_weight_without_ranking_anyone() -> None:
    quality = np.array([[10.0, 0.0], [0.0, 9.0], [9.0, 8.0]])
    plain = rank_entries(quality)
    ghost = rank_entries(quality, ghost_std=1.0)
    assert ghost.weights.sum() < 1
    assert ghost.weights / ghost.weights.sum() == pytest.approx(plain.weights)
    assert ghost.rank.tolist() == plain.rank.tolist()
