"""What an evaluation produces: per fold, per task, per submission."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.tasks import TaskKind

EPSILON = 0.02  # the Q score's eps (protocol section 5)


@dataclass
class FoldRun:
    """A probe trained on every fold of one task. Arrays are [K] or [K, E]."""

    epoch_scores: np.ndarray  # [K, E] test score after each epoch (NaN where undefined)
    train_loss: np.ndarray  # [K, E] mean training loss of the epoch's batches
    test_loss: np.ndarray  # [K, E] mean test loss
    test_predictions: np.ndarray  # [K, n_test] raw outputs at the selected epoch, test_idx order
    selected_epoch: np.ndarray  # [K] epoch whose score counts (-1 when every epoch was NaN)

    @classmethod
    def concatenate(cls, runs: list[FoldRun]) -> FoldRun:
        """One run from runs over consecutive groups of folds."""
        return cls(*(np.concatenate([getattr(run, name) for run in runs])
                     for name in ("epoch_scores", "train_loss", "test_loss",
                                  "test_predictions", "selected_epoch")))

    @property
    def scores(self) -> np.ndarray:
        """s_k: the selected epoch's score per fold, NaN for a failed fold."""
        rows = np.arange(len(self.selected_epoch))
        picked = self.epoch_scores[rows, np.maximum(self.selected_epoch, 0)]
        return np.where(self.selected_epoch >= 0, picked, np.nan).astype(np.float64)


@dataclass
class TaskResult:
    name: str
    kind: TaskKind
    samples: int
    quality: float  # Q_t
    mean: float  # mean of s_k over non-NaN folds
    std: float  # population std of s_k over non-NaN folds
    scores: np.ndarray  # [K] s_k
    epoch_scores: np.ndarray  # [K, E] test score after each epoch
    selected_epoch: np.ndarray  # [K] epoch whose score is s_k (-1: failed fold)
    failed_folds: int
    metrics: dict[str, Any]  # extra per-task metrics for the report, never for ranking
    hyperparameters: dict[str, Any]
    train_loss: np.ndarray  # [K, E]
    test_loss: np.ndarray  # [K, E]
    test_targets: np.ndarray  # [K, n_test] normalised labels, test_idx order
    test_predictions: np.ndarray  # [K, n_test] selected-epoch raw outputs


@dataclass
class EvaluationResult:
    config: EvaluationConfig
    tasks: list[TaskResult]
    embedding_dim: int
    warnings: list[str] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def mean_quality(self) -> float:
        """A submission's mean Q: the plain mean of Q_t over its tasks."""
        return float(np.mean([task.quality for task in self.tasks]))

    @property
    def mean_score(self) -> float:
        """Mean over tasks of mean s_k (the reference's overall_acc_score)."""
        return float(np.mean([task.mean for task in self.tasks]))


def quality(scores: np.ndarray) -> tuple[float, float, float]:
    """(Q, mean, std) over the non-NaN fold scores: Q = 100 eps mean / (std + eps)."""
    valid = scores[~np.isnan(scores)]
    mean = float(np.mean(valid))
    std = float(np.std(valid))
    return 100 * EPSILON * mean / (std + EPSILON), mean, std
