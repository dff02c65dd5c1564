"""Benchmark: the full final-phase evaluation against the plain oracle, on this machine.

    python benchmarks/bench_evaluate.py [--data DIR] [--folds 200] [--oracle-folds 2]

Builds (or reuses) the full-size demo challenge, then prints:
- submission CSV read time and peak memory above the interpreter's baseline,
- the full evaluation (K folds x 9 tasks, N = 1024, E = 20, batch 64, CSV read included):
  wall time and peak RSS, with 2 threads and with 1 thread (scaling),
- the oracle's (tests/oracle.py) time per fold on every task, measured in the same run,
  extrapolated to the same work, and the speed ratio.
Each measurement runs in a fresh child process so that peaks do not mix.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker_read(submission: str) -> dict:
    import numpy as np  # noqa: F401  (part of the baseline, as in any real caller)
    import pyarrow.csv  # noqa: F401

    from evaluator.scoring.reader.submission import read_submission

    baseline = memory_kib("VmRSS")
    started = time.perf_counter()
    matrix = read_submission(submission).matrix
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_above_baseline_mb": (memory_kib("VmHWM") - baseline) / 1024,
            "matrix_mb": matrix.nbytes / 2**20}


def worker_evaluate(labels: str, submission: str, folds: int, threads: int) -> dict:
    from evaluator.scoring.config import EvaluationConfig
    from evaluator.scoring.engine import score_submission, warm_up

    config = EvaluationConfig(k_folds=folds, epochs=20, batch_size=64, learning_rate=1e-3)
    warm_up(config)  # kernels loaded outside the timing, as a long-running daemon has them
    started = time.perf_counter()
    result = score_submission(labels, submission, config, threads=threads)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": memory_kib("VmHWM") / 1024,
            "mean_q": result.mean_quality, "threads": threads}


def worker_oracle(labels: str, submission: str, folds: int) -> dict:
    """Seconds per fold of the plain oracle, per task (its first `folds` folds)."""
    import torch

    from tests import oracle

    torch.set_num_threads(2)
    per_fold = {}
    for task in oracle.load(Path(labels), Path(submission)):
        started = time.perf_counter()
        oracle.evaluate([task], folds=folds, epochs=20, batch_size=64, learning_rate=1e-3)
        per_fold[task.name] = (time.perf_counter() - started) / folds
    return {"per_fold": per_fold}


def child(*args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="demo challenge folder (made if missing)")
    parser.add_argument("--folds", type=int, default=200)
    parser.add_argument("--oracle-folds", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, *rest = args.worker
        workers = {"read": worker_read, "evaluate": worker_evaluate, "oracle": worker_oracle}
        typed = [int(value) if value.isdigit() else value for value in rest]
        print(json.dumps(workers[name](*typed)))
        return

    from evaluator.runs.demo import existing_demo, make_demo

    data = args.data or Path(tempfile.mkdtemp(prefix="probeboard-bench-"))
    if (data / "labels").is_dir():
        demo = existing_demo(data)
    else:
        started = time.perf_counter()
        demo = make_demo(data)
        print(f"demo challenge generated in {time.perf_counter() - started:.1f} s: {data}")
    labels, submission = str(demo.labels), str(demo.submissions["strong"])
    size_mb = Path(submission).stat().st_size / 2**20

    read = child("read", submission)
    print(f"CSV read ({size_mb:.0f} MB, 13,260 x 1,024): {read['seconds']:.2f} s, peak "
          f"{read['peak_above_baseline_mb']:.0f} MB above baseline "
          f"= {read['peak_above_baseline_mb'] / read['matrix_mb']:.2f}x the float32 matrix "
          f"(targets: <= 1 s, <= 3x)")

    runs = {threads: child("evaluate", labels, submission, str(args.folds), str(threads))
            for threads in (2, 1)}
    fast = runs[2]
    print(f"full evaluation, K = {args.folds}, 2 threads: {fast['seconds']:.1f} s wall, "
          f"peak RSS {fast['peak_rss_mb']:.0f} MB, mean Q {fast['mean_q']:.3f} "
          f"(targets: <= 15 s, <= 600 MB)")
    print(f"1 thread: {runs[1]['seconds']:.1f} s -> 1 -> 2 threads speed-up "
          f"{runs[1]['seconds'] / fast['seconds']:.2f}x (target >= 1.7x)")

    oracle = child("oracle", labels, submission, str(args.oracle_folds))["per_fold"]
    oracle_total = sum(oracle.values()) * args.folds
    for name, seconds in oracle.items():
        print(f"oracle {name}: {seconds:.2f} s per fold")
    print(f"oracle, same work extrapolated: {oracle_total:.0f} s -> speed ratio "
          f"{oracle_total / fast['seconds']:.0f}x (reference measured 883 s here; target 59x)")


if __name__ == "__main__":
    main()
