"""Rank stability by bootstrap over paired folds (leaderboard/stability.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.scoring.results import quality
from leaderboard.ranking import rank_entries
from leaderboard.stability import (
    batch_ranks,
    fold_counts,
    observed_quality,
    rank_stability,
    resampled_quality,
)


def noisy_scores(means: list[float], *, std: float, tasks: int = 3, folds: int = 40,
                 seed: int = 0) -> np.ndarray:
    """[P, T, K] fold scores around each entry's mean, independent noise per entry."""
    rng = np.random.default_rng(seed)
    centre = np.asarray(means)[:, None, None]
    return centre + std * rng.standard_normal((len(means), tasks, folds))


@st.composite
def quality_batches(draw: st.DrawFn) -> tuple[np.ndarray, float | None]:
    resamples = draw(st.integers(1, 4))
    entries = draw(st.integers(1, 7))
    tasks = draw(st.integers(1, 4))
    # Few distinct values: many ties per task and many tied weighted scores.
    values = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.5]),
                       st.floats(-50, 50, allow_nan=False), st.just(np.nan))
    flat = draw(st.lists(values, min_size=resamples * entries * tasks,
                         max_size=resamples * entries * tasks))
    ghost = draw(st.one_of(st.none(), st.floats(0.01, 5.0)))
    return np.array(flat).reshape(resamples, entries, tasks), ghost


@settings(max_examples=400, deadline=None)
@given(quality_batches())
def test_batch_ranking_equals_rank_entries(case: tuple[np.ndarray, float | None]) -> None:
    batch, ghost = case
    ranks = batch_ranks(batch, ghost_std=ghost)
    for r in range(len(batch)):
        assert ranks[r].tolist() == rank_entries(batch[r], ghost_std=ghost).rank.tolist()


def test_batch_ranking_equals_rank_entries_at_leaderboard_sizes() -> None:
    # Up to 50 entries x 12 tasks: big enough for BLAS to block rows, where a row's dot
    # product can round differently than in rank_entries' compacted matrix.
    rng = np.random.default_rng(2)
    for case in range(200):
        shape = (int(rng.integers(1, 12)), int(rng.integers(1, 51)), int(rng.integers(1, 13)))
        if case % 3:
            batch = rng.integers(0, int(rng.integers(1, 6)), shape).astype(np.float64)
        else:
            batch = np.round(rng.normal(size=shape), 1)
        batch[rng.random(shape) < 0.01] = np.nan
        ghost = None if case % 2 else 0.7
        ranks = batch_ranks(batch, ghost_std=ghost)
        for r in range(len(batch)):
            assert ranks[r].tolist() == rank_entries(batch[r], ghost_std=ghost).rank.tolist()


def test_batch_ranking_of_the_protocol_example_and_nan_rows() -> None:
    example = np.array([[10.0, 0.0], [0.0, 9.0], [9.0, 8.0]])
    with_nan = np.array([[10.0, 0.0], [np.nan, 9.0], [9.0, 8.0]])
    assert batch_ranks(np.stack([example, with_nan])).tolist() == [[1, 3, 2], [2, 0, 1]]


def test_observed_folds_give_the_leaderboards_quality() -> None:
    scores = noisy_scores([0.2, 0.5, 0.6], std=0.05, folds=17)
    scores[1, 2, [3, 8]] = np.nan
    scores[2, 0, :] = np.nan
    ones = np.ones((1, 3, 17), dtype=np.int64)
    assert resampled_quality(scores, ones)[0] == pytest.approx(
        observed_quality(scores), rel=1e-12, abs=1e-12, nan_ok=True)
    assert observed_quality(scores)[1, 2] == quality(scores[1, 2])[0]
    assert np.isnan(observed_quality(scores)[2, 0])


def test_counts_match_explicit_resampling() -> None:
    scores = noisy_scores([0.3, 0.31, 0.7], std=0.05, tasks=2, folds=9, seed=3)
    scores[0, 1, 4] = np.nan
    rng = np.random.default_rng(5)
    counts = fold_counts(rng, 6, 2, 9)
    assert (counts.sum(axis=2) == 9).all()
    batch = resampled_quality(scores, counts)
    for r in range(6):
        for t in range(2):
            drawn = np.repeat(np.arange(9), counts[r, t])
            for p in range(3):
                picked = scores[p, t, drawn]
                expected = np.nan if np.isnan(picked).all() else quality(picked)[0]
                assert batch[r, p, t] == pytest.approx(expected, rel=1e-10, nan_ok=True)


def test_clearly_separated_entries_have_degenerate_intervals() -> None:
    scores = noisy_scores([0.2, 0.8, 0.5, 0.35], std=0.01)
    stability = rank_stability(scores, resamples=300)
    observed = [4, 1, 2, 3]
    assert stability.rank_low.tolist() == observed
    assert stability.rank_high.tolist() == observed
    assert stability.rank_samples_median.tolist() == observed
    # observed order: entry 1, 2, 3, 0 -> the last one has no next entry
    assert stability.beats_next[[1, 2, 3]].tolist() == [1.0, 1.0, 1.0]
    assert np.isnan(stability.beats_next[0])
    assert stability.resamples == 300


def test_identical_entries_always_tie() -> None:
    # Folds are paired, so identical fold scores tie in every resample: a tie is no win.
    one = noisy_scores([0.5], std=0.05)
    scores = np.concatenate([one, one, one, noisy_scores([0.1], std=0.01)])
    stability = rank_stability(scores, resamples=200)
    assert stability.rank_low.tolist() == [1, 1, 1, 4]
    assert stability.rank_high.tolist() == [1, 1, 1, 4]
    assert stability.beats_next[:3].tolist() == [0.0, 0.0, 1.0]


def test_statistically_identical_entries_get_wide_intervals() -> None:
    scores = noisy_scores([0.5] * 5, std=0.08, folds=30, seed=11)
    stability = rank_stability(scores, resamples=500)
    assert (stability.rank_high - stability.rank_low >= 2).all()
    finite = stability.beats_next[~np.isnan(stability.beats_next)]
    assert len(finite) == 4
    assert ((finite > 0.02) & (finite < 0.98)).all()


def test_deterministic_per_seed() -> None:
    scores = noisy_scores([0.5, 0.52, 0.55, 0.6, 0.4], std=0.08, folds=20, seed=2)
    first = rank_stability(scores, resamples=200, seed=7)
    again = rank_stability(list(scores), resamples=200, seed=7)
    other = rank_stability(scores, resamples=200, seed=8)
    for name in ("rank_low", "rank_high", "rank_samples_median", "beats_next"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.beats_next, other.beats_next, equal_nan=True)


@pytest.mark.parametrize("seed", range(5))
def test_interval_contains_the_observed_rank(seed: int) -> None:
    rng = np.random.default_rng(seed)
    means = list(np.sort(rng.uniform(0.1, 0.8, 8))[::-1])  # observed ranks 1..8, mostly
    scores = noisy_scores(means, std=0.03, tasks=4, folds=50, seed=seed)
    observed = rank_entries(observed_quality(scores)).rank
    stability = rank_stability(scores, resamples=300, seed=seed)
    assert (stability.rank_low <= observed).all()
    assert (observed <= stability.rank_high).all()


def test_single_entry_and_single_fold() -> None:
    single = rank_stability(noisy_scores([0.4], std=0.05), resamples=50)
    assert single.rank_low.tolist() == [1]
    assert single.rank_high.tolist() == [1]
    assert np.isnan(single.beats_next[0])
    # K = 1: every resample draws the only fold, so nothing moves.
    scores = noisy_scores([0.2, 0.4, 0.3], std=0.05, folds=1)
    one_fold = rank_stability(scores, resamples=50)
    observed = rank_entries(observed_quality(scores)).rank.tolist()
    assert one_fold.rank_low.tolist() == observed
    assert one_fold.rank_high.tolist() == observed


def test_nan_folds_and_unranked_entries() -> None:
    scores = noisy_scores([0.8, 0.5, 0.3, 0.6], std=0.001, folds=20)
    scores[0, 1, :] = np.nan  # no valid fold on a task: unranked for good
    scores[1, 0, :15] = np.nan  # a few valid folds left: ranked, Q from the valid ones
    stability = rank_stability(scores, resamples=300)
    assert stability.rank_low.tolist() == [0, 2, 3, 1]
    assert stability.rank_high.tolist() == [0, 2, 3, 1]
    assert stability.rank_samples_median[0] == 0
    assert np.isnan(stability.beats_next[0])
    assert stability.beats_next[[3, 1]].tolist() == [1.0, 1.0]
    assert np.isnan(stability.beats_next[2])


def test_a_resample_without_valid_folds_counts_as_last() -> None:
    # Entry 0 is best but has one valid fold of two on task 0: about a quarter of the
    # resamples draw only its failed fold, leave it out and count it as last (rank 2).
    scores = np.array([[[0.9, np.nan]], [[0.3, 0.35]]])
    stability = rank_stability(scores, resamples=2000)
    assert stability.rank_low.tolist() == [1, 1]
    assert stability.rank_high.tolist() == [2, 2]  # entry 1 moves up when 0 drops out
    assert stability.beats_next[0] == pytest.approx(0.75, abs=0.04)
