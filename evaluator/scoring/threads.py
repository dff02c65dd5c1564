"""How many cores the probes use: numba's kernel threads and torch's intra-op threads."""

from __future__ import annotations

import os

from evaluator.support.errors import ConfigError


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def use_threads(count: int | None = None) -> int:
    """Use `count` threads (default: every core this process may run on); return it."""
    import numba
    import torch

    if count is None:
        count = available_cores()
    if count < 1:
        raise ConfigError(f"--threads must be at least 1, got {count}")
    count = min(count, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(count)
    torch.set_num_threads(count)
    return count
