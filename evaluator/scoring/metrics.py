"""Extra per-task metrics for the participant's report (never used for ranking)."""

from __future__ import annotations

from typing import Any

import numpy as np

from evaluator.scoring.tasks import TaskKind


def positive_decisions(outputs: np.ndarray) -> np.ndarray:
    """The reference metric's class decision for one fold's test outputs.

    Outputs that all lie in [0, 1] are read as probabilities (positive > 0.5), otherwise as
    logits (sigmoid > 0.5, i.e. > 0).
    """
    threshold = 0.5 if outputs.size and outputs.min() >= 0.0 and outputs.max() <= 1.0 else 0.0
    return outputs > threshold


def confusion_matrix(targets: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """[[TN, FP], [FN, TP]] summed over the folds (rows) of [K, n_test] arrays."""
    matrix = np.zeros((2, 2), dtype=np.int64)
    for target, output in zip(np.atleast_2d(targets), np.atleast_2d(outputs), strict=True):
        keep = np.isfinite(target) & np.isfinite(output)
        if keep.any():
            truth = (target[keep] > 0.5).astype(int)
            decision = positive_decisions(output[keep]).astype(int)
            np.add.at(matrix, (truth, decision), 1)
    return matrix


def extra_metrics(
    kind: TaskKind, targets: np.ndarray, outputs: np.ndarray, valid: np.ndarray
) -> dict[str, Any]:
    """Means over the valid folds of the selected epoch's test metrics."""
    targets = targets[valid].astype(np.float64)
    outputs = outputs[valid].astype(np.float64)
    if not len(targets):
        return {}
    if kind == "regression":
        error = outputs - targets
        return {
            "mse": float(np.mean(error**2)),
            "mae": float(np.mean(np.abs(error))),
        }
    return _classification_metrics(targets, outputs)


def _classification_metrics(targets: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    accuracy, precision, recall, auc = [], [], [], []
    for target, output in zip(targets, outputs, strict=True):
        truth = target > 0.5
        decision = positive_decisions(output)
        tp = int(np.sum(truth & decision))
        accuracy.append(float(np.mean(truth == decision)))
        precision.append(tp / max(int(decision.sum()), 1))
        recall.append(tp / max(int(truth.sum()), 1))
        if 0 < truth.sum() < len(truth):  # ROC-AUC needs both classes in the fold's test set
            auc.append(roc_auc(truth, output))
    return {
        "accuracy": float(np.mean(accuracy)),
        "precision": float(np.mean(precision)),
        "recall": float(np.mean(recall)),
        "roc_auc": float(np.mean(auc)) if auc else None,
        "confusion_matrix": confusion_matrix(targets, outputs).tolist(),
    }


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); equals
    scikit-learn's roc_auc_score without loading scikit-learn."""
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    ranks = np.empty(len(scores))
    # Average rank of each run of tied scores.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    positives = int(truth.sum())
    negatives = len(truth) - positives
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))
