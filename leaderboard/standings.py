"""Which submissions count in a phase (protocol section 7), and their ranking.

A phase counts each team's latest public submission (the published challenge's custom
leaderboard) or each team's best one by mean Q (the platform's own leaderboard). Private
submissions never show. Baselines are listed and ranked, one entry each, but marked
non-competing; host entries likewise, by the phase's rule per host team.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from evaluator.db.models import CountingRule
from leaderboard.board import Board, BoardEntry
from leaderboard.ranking import Ranking, rank_entries
from leaderboard.stability import rank_stability


@dataclass(frozen=True)
class Scored:
    """One finished, scored submission."""

    submission_id: int
    team: str
    submitted_at: datetime
    is_public: bool
    task_quality: dict[str, float]  # task -> Q (NaN for a task that could not be scored)
    is_baseline: bool = False
    is_host: bool = False
    label: str = ""  # what the board shows; default the team (baselines: their method)
    fold_scores: dict[str, np.ndarray] | None = None  # task -> [K] s_k, for rank intervals

    @property
    def shown_name(self) -> str:
        return self.label or self.team

    @property
    def competing(self) -> bool:
        return not (self.is_baseline or self.is_host)

    @property
    def mean_quality(self) -> float:
        return float(np.mean(list(self.task_quality.values())))


@dataclass(frozen=True)
class Standings:
    entries: list[Scored]  # the counted submissions, in ranking.rank order (unranked last)
    tasks: list[str]
    ranking: Ranking  # rows follow `entries`


def counted(scored: Iterable[Scored], rule: CountingRule) -> list[Scored]:
    """The submissions that count under `rule`; private ones never do."""
    public = [entry for entry in scored if entry.is_public]
    chosen = [entry for entry in public if entry.is_baseline]
    by_team: dict[str, list[Scored]] = {}
    for entry in public:
        if not entry.is_baseline:
            by_team.setdefault(entry.team, []).append(entry)
    for entries in by_team.values():
        if rule == CountingRule.LATEST_PUBLIC:
            chosen.append(max(entries, key=lambda e: (e.submitted_at, e.submission_id)))
        else:
            # Best mean Q; an entry with a NaN task sorts last; ties go to the earliest.
            chosen.append(min(entries, key=lambda e: (
                np.isnan(e.mean_quality), -np.nan_to_num(e.mean_quality, nan=0.0),
                e.submitted_at, e.submission_id,
            )))
    return chosen


def standings(
    scored: Iterable[Scored], tasks: list[str], rule: CountingRule, *,
    ghost_std: float | None = None,
) -> Standings:
    """Rank the counted submissions of a phase with rank-then-aggregate."""
    entries = counted(scored, rule)
    quality = np.array(
        [[entry.task_quality.get(task, np.nan) for task in tasks] for entry in entries],
        dtype=np.float64,
    ).reshape(len(entries), len(tasks))
    ranking = rank_entries(quality, ghost_std=ghost_std)
    order = sorted(range(len(entries)), key=lambda i: (
        not ranking.ranked[i], ranking.rank[i], entries[i].team, entries[i].submission_id,
    ))
    return Standings([entries[i] for i in order], tasks, _reorder(ranking, order))


def _reorder(ranking: Ranking, order: list[int]) -> Ranking:
    index = np.asarray(order, dtype=np.int64)
    return Ranking(
        ranked=ranking.ranked[index],
        task_ranks=ranking.task_ranks[index],
        weights=ranking.weights,
        weighted_score=ranking.weighted_score[index],
        rank=ranking.rank[index],
        mean_quality=ranking.mean_quality[index],
    )


def build_board(
    result: Standings, *, challenge: str, phase: str, hidden_tasks: bool,
    generated_at: datetime, history: list[tuple[datetime, dict[str, int]]] | None = None,
    resamples: int = 1000,
) -> Board:
    """The board of a phase: ranks, mean Q, weights and (when every counted entry has its
    fold scores for every task) 95% bootstrap rank intervals."""
    intervals = _intervals(result, resamples)
    ranking = result.ranking
    entries = [
        BoardEntry(
            team=entry.shown_name,
            rank=int(ranking.rank[i]) if ranking.ranked[i] else None,
            mean_quality=float(ranking.mean_quality[i]),
            weighted_score=float(ranking.weighted_score[i]) if ranking.ranked[i] else None,
            task_quality={task: float(entry.task_quality.get(task, np.nan))
                          for task in result.tasks},
            rank_interval=intervals[i] if intervals and ranking.ranked[i] else None,
            competing=entry.competing,
        )
        for i, entry in enumerate(result.entries)
    ]
    return Board(
        challenge=challenge,
        phase=phase,
        generated_at=generated_at,
        tasks=list(result.tasks),
        weights={task: float(w) for task, w in zip(result.tasks, ranking.weights, strict=True)},
        entries=entries,
        hidden_tasks=hidden_tasks,
        history=list(history or []),
    )


def _intervals(result: Standings, resamples: int) -> list[tuple[int, int]] | None:
    folds = [entry.fold_scores for entry in result.entries]
    if not folds or any(f is None or any(t not in f for t in result.tasks) for f in folds):
        return None
    stacked = [[np.asarray(f[t], dtype=np.float64) for t in result.tasks] for f in folds if f]
    if len({scores.shape for row in stacked for scores in row}) != 1:
        return None  # different K across entries: folds are not paired
    stability = rank_stability(np.array(stacked), resamples=resamples)
    return [(int(lo), int(hi)) for lo, hi in
            zip(stability.rank_low, stability.rank_high, strict=True)]
