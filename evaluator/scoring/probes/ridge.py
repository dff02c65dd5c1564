"""The closed-form ridge probe: every fold exact, all sharing one N x N factorisation.

Fold k trains on the task's rows U minus an excluded set E_k (its test rows, for
ShuffleSplit). With X' the task rows centred at their mean, the fold's ridge system
centred at its own training mean is the full system minus a low-rank term:

    A_k = A - V_k V_k^T,   A = X'^T X' + alpha I,   V_k = [X'_E^T, s_E / sqrt(n_train)]

(s_E = sum of the excluded rows of X'; that column moves the centring from U's mean to the
fold's training mean). The Woodbury identity then needs one (m+1) x (m+1) Cholesky per
fold on blocks of H = X' A^-1 X'^T (precomputed once) instead of downdating and factorising
an N x N matrix per fold: m^3/3 instead of m N^2 + N^3/3 multiply-adds per fold, for
m = n_test = 470 and N = 1,024. Everything is float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.probes import check_params
from evaluator.scoring.probes.scoring import score_outputs
from evaluator.scoring.results import FoldRun
from evaluator.support.errors import ConfigError

# Precompute H = X' A^-1 X'^T when it fits; beyond that (e.g. the 13k-row nodata task)
# each fold's block is formed from the whitened rows instead.
HAT_MAX_BYTES = 512 * 2**20
CHUNK_BYTES = 128 * 2**20  # per batch of folds solved together


def ridge_outputs(
    x: np.ndarray, y: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with intercept on every fold: (test outputs [K, n_test], training MSE [K]).

    x [n, N], y [n]; rows index both. float64; NaN for a fold whose system is not
    numerically positive definite.
    """
    folds, n_train = train_rows.shape
    task_rows = np.unique(np.concatenate([train_rows.ravel(), test_rows.ravel()]))
    size = len(task_rows)
    excluded_mask = np.ones((folds, size), dtype=bool)
    excluded_mask[np.arange(folds)[:, None], np.searchsorted(task_rows, train_rows)] = False
    width = size - n_train  # m
    if (excluded_mask.sum(axis=1) != width).any():
        raise ValueError("ridge probe: a fold lists the same training row twice")
    excluded = np.nonzero(excluded_mask)[1].reshape(folds, width)

    xs = torch.from_numpy(x[task_rows]).double()
    xs -= xs.mean(0)
    ys = torch.from_numpy(y[task_rows].astype(np.float64))
    y_mean = ys.mean()
    ys -= y_mean
    system = xs.T @ xs
    system.diagonal().add_(alpha)
    chol, info = torch.linalg.cholesky_ex(system)
    if info.item() != 0:
        nan = np.full(folds, np.nan)
        return np.full(test_rows.shape, np.nan), nan
    full_weights = torch.cholesky_solve((xs.T @ ys)[:, None], chol)[:, 0]  # a = A^-1 c
    fitted = xs @ full_weights  # r = X' a
    # Rows of `whitened` are L^-1 x'_i, so whitened @ whitened.T = H.
    whitened = torch.linalg.solve_triangular(chol, xs.T, upper=False).T.contiguous()
    hat = (whitened @ whitened.T).numpy() if size * size * 8 <= HAT_MAX_BYTES else None

    root = math.sqrt(n_train)
    coefficients = torch.zeros(size, folds, dtype=torch.float64)  # beta_k on E_k's rows
    failed = np.zeros(folds, dtype=bool)
    chunk = max(1, CHUNK_BYTES // (8 * (width + 1) * max(2 * (width + 1), xs.shape[1])))
    for start in range(0, folds, chunk):
        part = np.arange(start, min(start + chunk, folds))
        rows = torch.from_numpy(excluded[part])
        # M = V^T A^-1 V = P^T H_EE P with P = [I, 1 / sqrt(n_train)].
        block = torch.empty(len(part), width + 1, width + 1, dtype=torch.float64)
        if hat is not None:
            for i, fold in enumerate(part):
                block[i, :width, :width] = torch.from_numpy(hat[np.ix_(excluded[fold],
                                                                       excluded[fold])])
        else:
            picked = whitened[rows]
            torch.bmm(picked, picked.transpose(1, 2), out=block[:, :width, :width])
        edge = block[:, :width, :width].sum(-1) / root
        block[:, :width, width] = edge
        block[:, width, :width] = edge
        block[:, width, width] = edge.sum(-1) / root
        targets = _append_mean(ys[rows], root)  # g: V g = X'_E^T y'_E + centring
        rhs = _append_mean(fitted[rows], root) - (block @ targets[..., None])[..., 0]
        block.neg_().diagonal(dim1=-2, dim2=-1).add_(1)  # S = I - M
        factor, info = torch.linalg.cholesky_ex(block)
        shift = torch.cholesky_solve(rhs[..., None], factor)[..., 0] - targets
        # w_k = a + A^-1 V (u - g) = a + A^-1 X'^T beta_k, beta_k living on E_k.
        beta = shift[:, :width] + shift[:, width:] / root
        coefficients[rows, torch.from_numpy(part)[:, None]] = beta
        failed[part] = info.numpy() != 0

    weights = torch.cholesky_solve(xs.T @ coefficients, chol) + full_weights[:, None]
    outputs = xs @ weights  # [size, K]: x'_t . w_k for every task row
    # Intercept: the fold's training means of y' and of x' . w_k (both sums over E_k negated).
    out_of_fold = torch.from_numpy(excluded_mask.T).double()
    outputs += ((outputs - ys[:, None]) * out_of_fold).sum(0) / n_train
    residual = (outputs - ys[:, None]) * (1 - out_of_fold)
    train_mse = (residual.square().sum(0) / n_train).numpy()
    test_outputs = outputs.numpy()[np.searchsorted(task_rows, test_rows),
                                   np.arange(folds)[:, None]] + y_mean.item()
    test_outputs[failed] = np.nan
    train_mse[failed] = np.nan
    return test_outputs, train_mse


def _append_mean(values: torch.Tensor, root: float) -> torch.Tensor:
    """P^T v for a batch of E-row vectors: v with sum(v) / sqrt(n_train) appended."""
    return torch.cat([values, values.sum(-1, keepdim=True) / root], dim=-1)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    config: EvaluationConfig,
    rng: torch.Generator,
) -> FoldRun:
    """Ridge on every fold as one "epoch".

    Classification regresses the labels coded -1/+1 (scikit-learn's RidgeClassifier), so
    outputs are decision values whose sign is the class, which is how the reference
    metric reads outputs outside [0, 1]. Draws no random numbers: rng is left as it was.
    """
    alpha = _alpha(config)
    fitted = 2 * y - 1 if classification else y
    outputs, train_mse = ridge_outputs(x, fitted, train_rows, test_rows, alpha)
    predictions = outputs.astype(np.float32)
    scores = score_outputs(predictions, y[test_rows], classification)
    scores[np.isnan(outputs).any(axis=1)] = np.nan  # a failed solve, not a zero F1
    test_mse = np.mean(np.square(predictions.astype(np.float64) - fitted[test_rows]), axis=1)
    return FoldRun(
        epoch_scores=scores[:, None],
        train_loss=train_mse[:, None],
        test_loss=test_mse[:, None],
        test_predictions=predictions,
        selected_epoch=np.where(np.isnan(scores), -1, 0).astype(np.int64),
    )


def _alpha(config: EvaluationConfig) -> float:
    check_params(config, {"alpha": (int, float)})
    alpha = float(config.probe_params.get("alpha", 1.0))
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"probe_params.alpha must be a number > 0, got {alpha!r}")
    return alpha


def hyperparameters(config: EvaluationConfig) -> dict[str, Any]:
    return {
        "alpha": _alpha(config),
        "fit_intercept": True,
        "solver": "closed_form",
    }
