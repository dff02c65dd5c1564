"""Rank stability by bootstrap over folds (protocol sections 5-6).

Every resample draws, per task, K fold indices with replacement, recomputes each entry's Q
on that task from the drawn folds (nan-aware mean, population std) and then the whole
dynamic rank-then-aggregate ranking of leaderboard/ranking.py. The spread of an entry's
final rank over resamples says how much of its place is fold noise.

Folds are paired: every entry of a task is evaluated on the same K splits (same seed, same
row order), so fold k of entry A and fold k of entry B saw the same test set. A resample
therefore draws ONE set of fold indices per task and applies it to every entry; drawing
independently per entry would add split-to-split variance that the comparison does not
have and make near-identical entries look unstable.

Implementation: a resample is a count vector c[k] (how often fold k was drawn), so the
resampled sums are matrix products counts [R, K] @ fold values [K, P] per task, and the
ranking runs on the whole batch [R, P, T] with numpy broadcasting (no loop over resamples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluator.scoring.results import EPSILON, quality
from leaderboard.ranking import rank_entries

# Upper bound on the elements of one [r, P, P, T] comparison block, to cap memory (~16 MB
# of bools) while keeping each numpy call large.
_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Stability:
    """Rows follow the input entries. Unranked entries: ranks 0, beats_next NaN."""

    rank_low: np.ndarray  # [P] int: 2.5th percentile of the final rank over resamples
    rank_high: np.ndarray  # [P] int: 97.5th percentile
    rank_samples_median: np.ndarray  # [P] float
    # [P] for entries in observed-rank order: share of resamples in which this entry ranks
    # strictly better than the next one in that order (NaN for the last and the unranked)
    beats_next: np.ndarray
    resamples: int


def batch_ranks(quality_batch: np.ndarray, *, ghost_std: float | None = None) -> np.ndarray:
    """Final ranks [R, P] (0 = unranked) of a batch of Q matrices [R, P, T], each ranked
    exactly as rank_entries ranks it."""
    quality_batch = np.asarray(quality_batch, dtype=np.float64)
    resamples, entries, tasks = quality_batch.shape
    ranks = np.zeros((resamples, entries), dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // max(1, entries * entries * max(tasks, 1)))
    for start in range(0, resamples, step):
        block = quality_batch[start : start + step]
        ranks[start : start + step] = _rank_block(block, ghost_std)
    return ranks


def _rank_block(scores: np.ndarray, ghost_std: float | None) -> np.ndarray:
    tasks = scores.shape[2]
    ranked = ~np.isnan(scores).any(axis=2)  # [r, P]
    # Unranked rows become all-NaN: NaN compares False, so they never beat anyone.
    scores = np.where(ranked[:, :, None], scores, np.nan)
    # min_rank per task: 1 + #{q : Q(q) > Q(p)}; axis 1 = p, axis 2 = q
    task_ranks = 1 + (scores[:, None, :, :] > scores[:, :, None, :]).sum(axis=2)
    # Population std over the ranked entries, reduced in entry order like rank_entries'
    # np.std, so a fully ranked resample gets its weights and scores to the last bit
    # (checked by tests/test_stability.py); partly ranked ones are redone below.
    count = ranked.sum(axis=1)[:, None]  # [r, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ranked[:, :, None], scores, 0.0).sum(axis=1) / count
        deviation = np.where(ranked[:, :, None], scores - mean[:, None, :], 0.0)
        spread = np.sqrt((deviation * deviation).sum(axis=1) / count)  # [r, T]
        total = spread.sum(axis=1) + (ghost_std or 0.0)  # [r]
        weights = np.where(
            (total > 0)[:, None], spread / total[:, None], 1.0 / tasks if tasks else 0.0
        )
    weighted = np.matmul(task_ranks.astype(np.float64), weights[:, :, None])[:, :, 0]
    # With some rows left out, rank_entries works on the compacted rows, and BLAS rounds a
    # row's dot product differently depending on its position, which can split or join
    # exact ties of the weighted score: redo those (rare) resamples exactly its way.
    for r in np.flatnonzero(ranked.any(axis=1) & ~ranked.all(axis=1)):
        kept = scores[r][ranked[r]]
        row_spread = kept.std(axis=0)
        row_total = row_spread.sum() + (ghost_std or 0.0)
        row_weights = np.full(tasks, 1.0 / tasks if tasks else 0.0)
        if row_total > 0:
            row_weights = row_spread / row_total
        weighted[r, ranked[r]] = task_ranks[r][ranked[r]] @ row_weights
    weighted = np.where(ranked, weighted, np.nan)
    final = 1 + (weighted[:, None, :] < weighted[:, :, None]).sum(axis=2)
    return np.where(ranked, final, 0)


def _fold_array(fold_scores: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    scores = np.asarray(
        fold_scores if isinstance(fold_scores, np.ndarray) else np.stack(list(fold_scores)),
        dtype=np.float64,
    )
    if scores.ndim != 3:
        raise ValueError(f"fold_scores must be [entries, tasks, folds], got shape {scores.shape}")
    return scores


def observed_quality(scores: np.ndarray) -> np.ndarray:
    """Q [P, T] from fold scores [P, T, K] through evaluator.scoring.results.quality (NaN if a task
    has no valid fold), so observed ranks are the leaderboard's ranks to the last bit."""
    entries, tasks, _ = scores.shape
    out = np.full((entries, tasks), np.nan)
    for p in range(entries):
        for t in range(tasks):
            if not np.isnan(scores[p, t]).all():
                out[p, t] = quality(scores[p, t])[0]
    return out


def resampled_quality(scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Q [R, P, T] of fold scores [P, T, K] under fold counts [R, T, K] (how often each
    fold is drawn per resample and task; all ones = the observed folds). NaN where an entry
    drew no valid fold of a task."""
    entries, tasks, folds = scores.shape
    resamples = counts.shape[0]
    out = np.empty((resamples, entries, tasks))
    valid = ~np.isnan(scores)
    for t in range(tasks):
        # Identical fold rows get one column, so identical entries get bit-identical Q in
        # every resample and keep their tie (BLAS need not round equal columns equally).
        key = np.concatenate([np.where(valid[:, t], scores[:, t], 0.0), valid[:, t]], axis=1)
        unique, inverse = np.unique(key, axis=0, return_inverse=True)
        values, mask = unique[:, :folds], unique[:, folds:] > 0
        # Centre on the observed mean so that E[d^2] - E[d]^2 does not cancel.
        n_valid = mask.sum(axis=1)
        centre = np.where(n_valid > 0, values.sum(axis=1) / np.maximum(n_valid, 1), 0.0)
        centred = np.where(mask, values - centre[:, None], 0.0)
        drawn = counts[:, t].astype(np.float64)  # [R, K]
        n = drawn @ mask.T.astype(np.float64)  # [R, U]
        with np.errstate(invalid="ignore", divide="ignore"):
            first = (drawn @ centred.T) / n
            second = (drawn @ (centred * centred).T) / n
            std = np.sqrt(np.maximum(second - first * first, 0.0))
            q = 100 * EPSILON * (centre + first) / (std + EPSILON)
        out[:, :, t] = np.where(n > 0, q, np.nan)[:, inverse.reshape(-1)]
    return out


def fold_counts(rng: np.random.Generator, resamples: int, tasks: int, folds: int) -> np.ndarray:
    """[R, T, K] multiplicities of K fold indices drawn with replacement per resample and
    task; shared by every entry (paired folds)."""
    drawn = rng.integers(0, folds, size=(resamples * tasks, folds))
    flat = drawn + folds * np.arange(resamples * tasks)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * tasks * folds).reshape(
        resamples, tasks, folds
    )


def rank_stability(
    fold_scores: Sequence[np.ndarray] | np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    ghost_std: float | None = None,
) -> Stability:
    """fold_scores: [P, T, K] (or P arrays [T, K]) per-fold scores s_k, NaN = failed fold.

    Entries whose observed Q is NaN on some task are unranked and stay unranked. A ranked
    entry that draws only failed folds of a task in some resample is left out of that
    resample's ranking (as rank_entries would) and counted there as last: rank = number of
    observed-ranked entries. Deterministic for a seed."""
    scores = _fold_array(fold_scores)
    entries, tasks, folds = scores.shape
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    observed = rank_entries(observed_quality(scores), ghost_std=ghost_std)
    ranked = observed.ranked
    n_ranked = int(ranked.sum())

    rng = np.random.default_rng(seed)
    counts = fold_counts(rng, resamples, tasks, folds)
    batch = resampled_quality(scores, counts)
    # Unranked stays unranked: rank only the ranked columns (what rank_entries keeps), so
    # that only resamples where a ranked entry lost a task need batch_ranks' exact slow path.
    samples = np.zeros((resamples, entries), dtype=np.int64)
    samples[:, ranked] = batch_ranks(batch[:, ranked, :], ghost_std=ghost_std)
    samples = np.where(ranked[None, :] & (samples == 0), n_ranked, samples)

    rank_low = np.zeros(entries, dtype=np.int64)
    rank_high = np.zeros(entries, dtype=np.int64)
    median = np.zeros(entries)
    beats_next = np.full(entries, np.nan)
    if n_ranked:
        mine = samples[:, ranked]
        # "lower"/"higher" keep the bounds on observed ranks and the interval >= 95%.
        rank_low[ranked] = np.quantile(mine, 0.025, axis=0, method="lower")
        rank_high[ranked] = np.quantile(mine, 0.975, axis=0, method="higher")
        median[ranked] = np.median(mine, axis=0)
        # Observed order, ties by input position; a tie in a resample is not a win.
        order = np.flatnonzero(ranked)[np.argsort(observed.rank[ranked], kind="stable")]
        wins = samples[:, order[:-1]] < samples[:, order[1:]]
        beats_next[order[:-1]] = wins.mean(axis=0)
    return Stability(rank_low, rank_high, median, beats_next, resamples)
