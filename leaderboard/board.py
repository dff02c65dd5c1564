"""What a published leaderboard shows (protocol sections 6-7): plain data, no I/O.

`leaderboard.render` turns a `Board` into JSON, a README table, an HTML page and pictures.
Team names are untrusted participant text; they are stored as given and escaped only when
rendered, so every output format can escape them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class BoardEntry:
    team: str  # untrusted text from participants
    rank: int | None  # None = not ranked (a task has no Q)
    mean_quality: float  # mean Q over tasks (NaN allowed)
    weighted_score: float | None
    task_quality: dict[str, float]  # task -> Q
    rank_interval: tuple[int, int] | None  # 95% bootstrap interval of the rank
    competing: bool  # False for baselines / host entries: listed, ranked, marked


@dataclass(frozen=True)
class Board:
    challenge: str
    phase: str
    generated_at: datetime  # timezone-aware
    tasks: list[str]
    weights: dict[str, float]
    entries: list[BoardEntry]  # display order: rank ascending, unranked last
    # Hidden-task phase: nothing published may name a task or show per-task numbers/weights.
    hidden_tasks: bool
    # Standings snapshots, oldest first: time -> team -> rank (the rank-evolution chart).
    history: list[tuple[datetime, dict[str, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A naive time would be published as if it were UTC, silently wrong by the offset.
        if self.generated_at.utcoffset() is None:
            raise ValueError("Board.generated_at must be timezone-aware (UTC)")
        for when, _ in self.history:
            if when.utcoffset() is None:
                raise ValueError("Board.history times must be timezone-aware (UTC)")
