"""The one scoring pipeline: a submission file against a label folder, with a config and a
thread budget. The CLI, the benchmark and the daemon's worker child all call it.

    result = score_submission(labels, submission_file, config, threads=2,
                              on_task_done=lambda task: ...)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.protocol import evaluate, prepare
from evaluator.scoring.reader.submission import read_submission
from evaluator.scoring.results import EvaluationResult, TaskResult
from evaluator.scoring.tasks import Task, read_tasks
from evaluator.scoring.threads import use_threads


def score_submission(
    labels: Path | str,
    submission: Path | str,
    config: EvaluationConfig,
    *,
    threads: int | None = None,
    on_task_done: Callable[[TaskResult], None] | None = None,
    tasks: list[Task] | None = None,
) -> EvaluationResult:
    """Read and check the file, prepare it for the tasks and train every task's probes.

    `tasks` skips reading the label folder again (a daemon keeps them between
    submissions). The result's `seconds` covers all of it: reading, checking, training.
    """
    started = time.perf_counter()
    use_threads(threads)
    tasks = read_tasks(labels) if tasks is None else tasks
    # The Submission is a temporary: its matrix is freed once prepared (peak memory).
    prepared = prepare(read_submission(submission, embedding_dim=config.embedding_dim),
                       tasks, config)
    result = evaluate(tasks, prepared, config, on_task_done=on_task_done)
    return replace(result, seconds=time.perf_counter() - started)


def warm_up(config: EvaluationConfig | None = None) -> None:
    """Load the compiled kernels (cached on disk after the first run) before the first
    submission: numba's one-time load costs ~0.4 s a process, the first compile much more.
    bench_evaluate.py calls it to time the engine warm; a daemon evaluation runs in a fresh
    child process (daemon/child.py), which pays that load itself."""
    from evaluator.scoring.probes.linear import train_linear_folds

    config = config or EvaluationConfig()
    with tempfile.TemporaryDirectory() as folder:
        small = Path(folder) / "small.csv"  # over 1 MB: the parallel parser is loaded too
        rows = (f"id{i}," + ",".join(f"{(i * 7 + d) % 13 / 7:.6f}" for d in range(64))
                for i in range(2500))
        small.write_text("id," + ",".join(map(str, range(64))) + "\n" + "\n".join(rows))
        read_submission(small)
    rows = np.arange(8, dtype=np.int32)
    for classification in (False, True):
        train_linear_folds(
            np.ones((10, 4), np.float32), np.ones(10, np.float32), classification=classification,
            train_rows=rows[None, None], test_rows=rows[None, :2],
            init_weight=np.zeros((1, 4), np.float32), init_bias=np.zeros(1, np.float32),
            batch_size=config.batch_size, learning_rate=config.learning_rate,
        )
