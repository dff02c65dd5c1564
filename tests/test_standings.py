"""Which submissions count per phase (protocol section 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from leaderboard.standings import Scored, counted, standings

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
