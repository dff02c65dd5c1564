"""Benchmark: bootstrap rank stability at leaderboard size, against the 1 s target.

    python benchmarks/bench_stability.py [--entries 50] [--tasks 12] [--folds 200]
                                         [--resamples 1000]

Builds random but realistic fold scores (per entry and task a mean in 0.1-0.8 and a fold
std in 0.02-0.1, a few failed folds), then times rank_stability: the first call (cold
caches and imports; no numba involved) and the best of 3 after it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leaderboard.stability import rank_stability  # noqa: E402

TARGET_SECONDS = 1.0


def fold_scores(entries: int, tasks: int, folds: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.1, 0.8, (entries, tasks, 1))
    stds = rng.uniform(0.02, 0.1, (entries, tasks, 1))
    scores = means + stds * rng.standard_normal((entries, tasks, folds))
    scores[rng.random(scores.shape) < 0.002] = np.nan  # the odd failed fold
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--folds", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    scores = fold_scores(args.entries, args.tasks, args.folds)

    def run() -> float:
        start = time.perf_counter()
        rank_stability(scores, resamples=args.resamples, seed=1)
        return time.perf_counter() - start

    first = run()
    best = min(run() for _ in range(3))
    stability = rank_stability(scores, resamples=args.resamples, seed=1)
    widths = stability.rank_high - stability.rank_low
    print(f"{args.entries} entries x {args.tasks} tasks x K={args.folds}, "
          f"{args.resamples} resamples")
    print(f"first call:     {first:.3f} s")
    print(f"best of 3:      {best:.3f} s  (target {TARGET_SECONDS:.1f} s: "
          f"{'OK' if best <= TARGET_SECONDS else 'MISSED'}, {best / TARGET_SECONDS:.0%})")
    print(f"95% interval width: median {np.median(widths):.0f}, max {widths.max()} ranks")


if __name__ == "__main__":
    main()
