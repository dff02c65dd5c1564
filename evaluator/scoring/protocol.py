"""The evaluation protocol: one submission x the label folder -> Q per task.

Sections 2-5 of spec/protocol.md: restrict and standardise the embeddings, normalise each
task's labels, split every task into K shuffle-splits, train the probe on every fold, and
summarise the fold scores as Q. The order of the random stream is the reference's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluator.scoring import randomness
from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.metrics import extra_metrics
from evaluator.scoring.probes import fit_folds
from evaluator.scoring.reader.submission import Submission, padded_matrix, row_positions
from evaluator.scoring.results import EvaluationResult, TaskResult, quality
from evaluator.scoring.tasks import Task, select_tasks
from evaluator.support.errors import SubmissionError

log = logging.getLogger(__name__)

TEST_SIZE = 0.1


@dataclass
class Embeddings:
    """A submission prepared for scoring: the label ids' rows, standardised (section 2)."""

    x: np.ndarray  # [ids, N] float32
    row_of: dict[str, int]  # id -> row of x
    warnings: list[str]
    flags: dict[str, bool]


def prepare(submission: Submission, tasks: list[Task], config: EvaluationConfig) -> Embeddings:
    """Restrict to the selected tasks' ids, pad and standardise. The result is a copy:
    callers drop the Submission afterwards, so its matrix is freed before training."""
    selected = select_tasks(tasks, config.task_filter)
    matrix, warnings = padded_matrix(submission, config.embedding_dim)
    required = np.unique(np.concatenate([task.ids for task in selected]))
    x = embeddings(matrix, row_positions(submission, required), config.standardize_embeddings)
    row_of = {sample_id: row for row, sample_id in enumerate(required)}
    return Embeddings(x, row_of, [*submission.warnings, *warnings], dict(submission.flags))


def evaluate(
    tasks: list[Task],
    prepared: Embeddings,
    config: EvaluationConfig,
    *,
    on_task_done: Callable[[TaskResult], None] | None = None,
) -> EvaluationResult:
    """Score prepared embeddings on every selected task (tasks in name order)."""
    started = time.perf_counter()
    rng = randomness.generator(config.seed)
    results = []
    for task in select_tasks(tasks, config.task_filter):
        rows = np.fromiter((prepared.row_of[i] for i in task.ids), np.int32, len(task))
        result = evaluate_task(task, prepared.x, rows, config, rng)
        results.append(result)
        if on_task_done is not None:
            on_task_done(result)
    return EvaluationResult(
        config=config,
        tasks=results,
        embedding_dim=prepared.x.shape[1],
        warnings=list(prepared.warnings),
        flags=dict(prepared.flags),
        seconds=time.perf_counter() - started,
    )


def embeddings(matrix: np.ndarray, positions: np.ndarray, standardize: bool) -> np.ndarray:
    """The label ids' rows; standardised with ONE scalar mean and std (not per column)."""
    x = matrix[positions]
    if standardize:
        mean, std = mean_std(x)
        x -= mean
        x /= std if std != 0 else np.float32(1)
    return x


def mean_std(x: np.ndarray, rows_per_chunk: int = 1024) -> tuple[np.float32, np.float32]:
    """Mean and population std of every value, in float64 by chunks of rows: numpy's
    x.std() would allocate a second full-size matrix (the peak of a whole evaluation)."""
    chunks = range(0, len(x), rows_per_chunk)
    mean = sum(float(x[i:i + rows_per_chunk].sum(dtype=np.float64)) for i in chunks) / x.size
    squares = sum(
        float(np.square(x[i:i + rows_per_chunk].astype(np.float64) - mean).sum()) for i in chunks
    )
    return np.float32(mean), np.float32(math.sqrt(squares / x.size))


def normalized_labels(task: Task, normalize: bool) -> np.ndarray:
    labels = task.labels
    if normalize:
        labels = (labels - labels.min()) / (labels.max() - labels.min())
    return labels.astype(np.float32)


def shuffle_splits(samples: int, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ShuffleSplit(folds, test_size=0.1, random_state=seed), as the reference
    uses it: ([K, n_train], [K, n_test]) positions. Written out (it is four lines) so that
    scoring does not load scikit-learn's ~190 MB; a test holds it equal to scikit-learn's."""
    n_test = math.ceil(TEST_SIZE * samples)
    rng = np.random.RandomState(seed)
    permutations = np.stack([rng.permutation(samples) for _ in range(folds)])
    return permutations[:, n_test:], permutations[:, :n_test]


def evaluate_task(
    task: Task, x: np.ndarray, rows: np.ndarray, config: EvaluationConfig, rng
) -> TaskResult:
    """Train the probe on the task's K folds; rows are the task's rows of x, label order."""
    started = time.perf_counter()
    y = np.full(len(x), np.nan, dtype=np.float32)
    y[rows] = normalized_labels(task, config.normalize_labels)
    train, test = shuffle_splits(len(task), config.k_folds, config.seed)
    run, hyperparameters = fit_folds(
        x, y, task.kind, train_rows=rows[train], test_rows=rows[test], config=config, rng=rng
    )
    scores = run.scores
    failed = int(np.isnan(scores).sum())
    if failed > config.max_failed_folds or failed == len(scores):
        log.warning("task %s: %d of %d folds failed", task.name, failed, len(scores))
        raise SubmissionError(
            "too_many_failed_folds",
            f"the probe produced no score on {failed} of {len(scores)} folds of one task "
            f"(at most {config.max_failed_folds} may fail). This happens when embeddings "
            "hold extreme values or carry no usable variation; check that your embeddings "
            "are finite, not constant, and of moderate scale, then resubmit.",
        )
    q, mean, std = quality(scores)
    targets = y[rows[test]]
    log.info("task %s: Q %.3f (%.1f s)", task.name, q, time.perf_counter() - started)
    return TaskResult(
        name=task.name,
        kind=task.kind,
        samples=len(task),
        quality=q,
        mean=mean,
        std=std,
        scores=scores,
        epoch_scores=run.epoch_scores,
        selected_epoch=run.selected_epoch,
        failed_folds=failed,
        metrics=extra_metrics(task.kind, targets, run.test_predictions, ~np.isnan(scores)),
        hyperparameters=hyperparameters,
        train_loss=run.train_loss,
        test_loss=run.test_loss,
        test_targets=targets,
        test_predictions=run.test_predictions,
    )
