"""Number, time and rank formatting shared by the outputs (one home for each helper)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from leaderboard.board import BoardEntry

# Appended to a non-competing entry's name in the README table and the HTML page.
NON_COMPETING_MARK = "(non-competing)"


def utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def iso(when: datetime) -> str:
    """ISO-8601 UTC ending in Z, to the second: 2026-01-02T03:04:05Z."""
    return utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(when: datetime) -> str:
    """For readers: 2026-01-02 03:04:05 UTC."""
    return utc(when).strftime("%Y-%m-%d %H:%M:%S UTC")


def finite(value: float | None) -> float | None:
    """`value` as a float, or None for None / NaN / infinity."""
    return None if value is None or not math.isfinite(value) else float(value)


def fmt(value: float | None, digits: int = 3) -> str:
    """`value` with `digits` decimals, or "n/a" when it is not a finite number."""
    value = finite(value)
    return "n/a" if value is None else f"{value:.{digits}f}"


def interval_text(entry: BoardEntry) -> str:
    """The 95% rank interval as "lo–hi", or "–" when there is none."""
    return "–" if entry.rank_interval is None else "{}–{}".format(*entry.rank_interval)
