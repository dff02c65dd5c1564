"""Options and helpers that several command groups share."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluator.db.store import Store
    from evaluator.scoring.config import EvaluationConfig
    from evaluator.scoring.results import EvaluationResult, TaskResult

log = logging.getLogger(__name__)


def add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help="scoring database URL (default: OUTPUT_DIR/probeboard.db, SQLite)")


def open_database(args: argparse.Namespace) -> Store:
    from evaluator.db.store import open_store

    store = open_store(args.database, path=args.output_dir / "probeboard.db")
    store.upgrade()
    return store


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="worker threads for the probes (default: every core)")


def load_config(path: Path | None) -> EvaluationConfig:
    from evaluator.scoring.config import EvaluationConfig, load_config

    return load_config(path) if path else EvaluationConfig()


def score_with_progress(labels: Path, submission: Path, config: EvaluationConfig,
                        threads: int | None) -> EvaluationResult:
    """The engine, with a progress bar over the tasks on a terminal and, at -v, one log
    line a task with the time elapsed and an estimate of the time left."""
    from tqdm import tqdm

    from evaluator.scoring.engine import score_submission
    from evaluator.scoring.tasks import read_tasks, select_tasks

    started = time.perf_counter()
    tasks = read_tasks(labels)
    total = len(select_tasks(tasks, config.task_filter))
    done = 0

    def task_done(task: TaskResult) -> None:
        nonlocal done
        done += 1
        bar.update(1)
        # The bar shows only on a terminal; a log (nohup, CI, a daemon) gets one line a task.
        elapsed = time.perf_counter() - started
        log.info("task %d/%d %s scored: %.1f s elapsed, about %.1f s left",
                 done, total, task.name, elapsed, elapsed / done * (total - done))

    with tqdm(total=total, unit="task", disable=None, file=sys.stderr) as bar:
        return score_submission(labels, submission, config, threads=threads, tasks=tasks,
                                on_task_done=task_done)


def print_warnings(result: EvaluationResult) -> None:
    for warning in result.warnings:
        print(f"warning: {warning}")
