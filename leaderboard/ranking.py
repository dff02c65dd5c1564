"""Dynamic rank-then-aggregate (protocol section 6).

Per task, rank the entries by Q (best = 1, ties share the best rank); weight each task by
the spread of Q across entries; an entry's weighted score is the weighted sum of its ranks
and its final rank is the rank of that score, ascending. Entries with a NaN task are listed
but not ranked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Rows follow the input entries; unranked entries have NaN score and rank 0."""

    ranked: np.ndarray  # [P] bool: every task has a Q
    task_ranks: np.ndarray  # [P, T] int, 0 where unranked
    weights: np.ndarray  # [T]
    weighted_score: np.ndarray  # [P]
    rank: np.ndarray  # [P] int
    mean_quality: np.ndarray  # [P] mean Q over tasks (NaN if a task is NaN)


def min_rank(values: np.ndarray, *, descending: bool) -> np.ndarray:
    """1 + how many entries are strictly better (ties share the best rank), per column."""
    keys = -values if descending else values
    columns = keys if keys.ndim > 1 else keys[:, None]
    better = columns[None, :, :] < columns[:, None, :]  # [p, q, t]: q beats p on t
    ranks = 1 + better.sum(axis=1)
    return ranks if keys.ndim > 1 else ranks[:, 0]


def rank_entries(quality: np.ndarray, *, ghost_std: float | None = None) -> Ranking:
    """quality: [P, T] Q per entry and task. ghost_std adds the optional ghost task
    (std = ghost_std, rank 0 for everyone) that keeps weights away from 0."""
    quality = np.asarray(quality, dtype=np.float64)
    entries, tasks = quality.shape
    ranked = ~np.isnan(quality).any(axis=1)
    task_ranks = np.zeros((entries, tasks), dtype=np.int64)
    weighted = np.full(entries, np.nan)
    rank = np.zeros(entries, dtype=np.int64)
    weights = np.full(tasks, 1.0 / tasks if tasks else 0.0)
    scores = quality[ranked]
    if len(scores):
        ranks = min_rank(scores, descending=True)
        spread = scores.std(axis=0)
        total = spread.sum() + (ghost_std or 0.0)
        if total > 0:
            weights = spread / total
        task_ranks[ranked] = ranks
        weighted[ranked] = ranks @ weights
        rank[ranked] = min_rank(weighted[ranked], descending=False)
    return Ranking(ranked, task_ranks, weights, weighted, rank, quality.mean(axis=1))
