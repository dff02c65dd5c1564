"""The fast engine against the plain oracle (tests/oracle.py), fold by fold, epoch by epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.protocol import evaluate, prepare
from evaluator.scoring.reader.submission import read_submission
from evaluator.scoring.tasks import read_tasks
from tests import oracle
from tests.builders import TaskSpec, write_challenge

CASES = {
    # n = 73 -> 8 test rows, 65 training rows: the last batch of 64 holds one row.
    "both-kinds-last-batch-of-one": dict(
        specs=[TaskSpec("biomass", 73), TaskSpec("crops", 150, classification=True)],
        dim=24, folds=4, epochs=5, batch_size=64, learning_rate=1e-3, seed=42,
    ),
    "shared-ids-small-batches-other-seed": dict(
        specs=[TaskSpec("heat_mean", 120, dataset="heat"),
               TaskSpec("heat_std", 120, dataset="heat"),
               TaskSpec("clouds", 90, classification=True)],
        dim=40, folds=5, epochs=4, batch_size=16, learning_rate=3e-3, seed=7,
    ),
    # More folds than one drawing chunk: the stream must stay in fold order across chunks.
    "folds-across-drawing-chunks": dict(
        specs=[TaskSpec("many", 40), TaskSpec("many_cls", 40, classification=True)],
        dim=4, folds=55, epochs=2, batch_size=8, learning_rate=1e-2, seed=11,
    ),
    "tiny-task-full-width": dict(
        specs=[TaskSpec("tiny", 41), TaskSpec("tiny_cls", 60, classification=True)],
        dim=1024, folds=3, epochs=3, batch_size=16, learning_rate=1e-3, seed=3,
    ),
}


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """|diff| <= 1e-4, relative where a score exceeds 1 in size (negative R^2 can)."""
    tolerance = 1e-4 * np.maximum(1.0, np.abs(expected))
    assert np.all(np.abs(actual - expected) <= tolerance), (actual, expected)


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_equals_oracle_on_every_fold_and_epoch(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    labels, submission = write_challenge(tmp_path, case["specs"], dim=case["dim"],
                                         seed=case["seed"])
    settings = {key: case[key] for key in ("epochs", "batch_size", "learning_rate", "seed")}
    config = EvaluationConfig(k_folds=case["folds"], **settings)
    tasks = read_tasks(labels)
    result = evaluate(tasks, prepare(read_submission(submission), tasks, config), config)
    expected = oracle.evaluate(
        oracle.load(labels, submission), folds=case["folds"], epochs=case["epochs"],
        batch_size=case["batch_size"], learning_rate=case["learning_rate"], seed=case["seed"],
    )
    assert [task.name for task in result.tasks] == sorted(expected)
    for task in result.tasks:
        assert_close(task.epoch_scores, expected[task.name])
        assert_close(task.scores, expected[task.name].max(axis=1))
        # The reference keeps the first epoch that reaches the maximum.
        assert np.array_equal(task.selected_epoch, expected[task.name].argmax(axis=1))


def test_the_random_stream_continues_across_tasks(tmp_path: Path) -> None:
    """Filtering a task away changes the stream for the tasks after it, as in the reference."""
    specs = [TaskSpec("a_first", 60), TaskSpec("b_second", 60)]
    labels, submission = write_challenge(tmp_path, specs, dim=8)
    tasks, sub = read_tasks(labels), read_submission(submission)
    config = EvaluationConfig(k_folds=3, epochs=2)
    both = evaluate(tasks, prepare(sub, tasks, config), config)
    config = EvaluationConfig(k_folds=3, epochs=2, task_filter=("b_second",))
    alone = evaluate(tasks, prepare(sub, tasks, config), config)
    assert [task.name for task in alone.tasks] == ["b_second"]
    assert not np.array_equal(both.tasks[1].epoch_scores, alone.tasks[0].epoch_scores)
