"""Pieces written out instead of imported, held equal to scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ShuffleSplit

from evaluator.scoring.metrics import confusion_matrix, extra_metrics, roc_auc
from evaluator.scoring.protocol import mean_std, shuffle_splits


@pytest.mark.parametrize(("samples", "folds", "seed"), [(10, 3, 42), (73, 5, 0), (4691, 7, 42)])
def test_shuffle_splits_equal_scikit_learn(samples: int, folds: int, seed: int) -> None:
    train, test = shuffle_splits(samples, folds, seed)
    splitter = ShuffleSplit(n_splits=folds, test_size=0.1, random_state=seed)
    for fold, (expected_train, expected_test) in enumerate(splitter.split(np.arange(samples))):
        assert np.array_equal(train[fold], expected_train)  # same order: it sets the batches
        assert np.array_equal(test[fold], expected_test)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_equals_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(60) < 0.3
    scores = np.round(rng.normal(size=60) + truth, 1)  # rounding makes ties
    assert roc_auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores))


def test_classification_report_uses_the_reference_decision_rule() -> None:
    targets = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    # Fold 1: logits (outside [0, 1]) -> positive when > 0; fold 2: probabilities -> > 0.5.
    outputs = np.array([[2.0, -1.0, -0.5, 0.3], [0.9, 0.4, 0.6, 0.1]])
    metrics = extra_metrics("classification", targets, outputs, np.array([True, True]))
    assert metrics["confusion_matrix"] == [[2, 2], [2, 2]]
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["roc_auc"] == pytest.approx(np.mean([0.75, 0.75]))
    assert confusion_matrix(targets[:1], outputs[:1]).tolist() == [[1, 1], [1, 1]]


def test_regression_report_skips_failed_folds() -> None:
    targets = np.array([[0.0, 1.0], [0.0, 1.0]])
    outputs = np.array([[0.5, 1.0], [np.nan, np.nan]])
    metrics = extra_metrics("regression", targets, outputs, np.array([True, False]))
    assert metrics == {"mse": pytest.approx(0.125), "mae": pytest.approx(0.25)}


def test_chunked_mean_std_equals_numpy() -> None:
    x = (np.random.default_rng(0).normal(size=(2500, 33)) * 4 + 7).astype(np.float32)
    mean, std = mean_std(x, rows_per_chunk=100)
    assert mean == pytest.approx(float(x.astype(np.float64).mean()), rel=1e-6)
    assert std == pytest.approx(float(x.astype(np.float64).std()), rel=1e-6)
    assert mean.dtype == np.float32 and std.dtype == np.float32
