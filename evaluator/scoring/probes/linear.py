"""The linear probe, trained on every fold of a task at once.

Each fold is an independent AdamW run over its own mini-batches, so folds run in parallel
threads (numba prange), each keeping its weights and optimiser state in L1/L2 cache and
streaming its batch rows straight from the shared embedding matrix: forward and backward
of a row happen while that row is in L1, and no batch is ever copied. This replaces the
reference's per-fold torch loop (DataLoader + autograd + optimizer step per batch) with the
same arithmetic in float32; every random number comes from `evaluator.scoring.randomness`.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import torch

from evaluator.scoring import randomness
from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.probes import check_params
from evaluator.scoring.results import FoldRun

# Reassociation lets LLVM vectorise the dot products; nnan/ninf stay off so a diverging
# fold still shows up as NaN instead of being optimised away.
_FAST = {"reassoc", "contract", "nsz"}

BETA1 = 0.9
BETA2 = 0.999
ADAM_EPS = 1e-8
WEIGHT_DECAY = 0.01  # torch.optim.AdamW's default
FOLDS_PER_CHUNK = 24  # small enough to overlap drawing with training, large for 2+ cores


def train_linear_folds(
    x: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    init_weight: np.ndarray,
    init_bias: np.ndarray,
    batch_size: int,
    learning_rate: float,
    select_last: bool = False,
) -> FoldRun:
    """Train K linear probes.

    x: [n, N] float32, y: [n] float32 (normalised labels).
    train_rows: [K, E, n_train] int32 rows of x, in mini-batch order for each epoch.
    test_rows: [K, n_test] int32 rows of x scored after every epoch.
    init_weight: [K, N] float32, init_bias: [K] float32 (torch.nn.Linear's draws).
    """
    folds, epochs, _ = train_rows.shape
    n_test = test_rows.shape[1]
    epoch_scores = np.full((folds, epochs), np.nan, dtype=np.float64)
    train_loss = np.zeros((folds, epochs), dtype=np.float64)
    test_loss = np.zeros((folds, epochs), dtype=np.float64)
    predictions = np.zeros((folds, n_test), dtype=np.float32)
    selected = np.full(folds, -1, dtype=np.int64)
    # Folds handed out one at a time: a core that the drawing thread shares takes fewer.
    with numba.parallel_chunksize(1):
        _train_folds(
            np.ascontiguousarray(x, dtype=np.float32),
            np.ascontiguousarray(y, dtype=np.float32),
            classification,
            np.ascontiguousarray(train_rows, dtype=np.int32),
            np.ascontiguousarray(test_rows, dtype=np.int32),
            np.ascontiguousarray(init_weight, dtype=np.float32),
            np.ascontiguousarray(init_bias, dtype=np.float32),
            batch_size,
            learning_rate,
            select_last,
            epoch_scores,
            train_loss,
            test_loss,
            predictions,
            selected,
        )
    epoch_scores[~np.isfinite(epoch_scores)] = np.nan  # e.g. R^2 = -inf on constant targets
    return FoldRun(epoch_scores, train_loss, test_loss, predictions, selected)


@numba.njit(parallel=True, nogil=True, cache=True, fastmath=_FAST, error_model="numpy")
def _train_folds(x, y, classification, train_rows, test_rows, init_weight, init_bias,
                 batch_size, learning_rate, select_last,
                 epoch_scores, train_loss, test_loss, predictions, selected):  # pragma: no cover
    for fold in numba.prange(train_rows.shape[0]):
        _train_fold(x, y, classification, train_rows[fold], test_rows[fold],
                    init_weight[fold], init_bias[fold], batch_size, learning_rate, select_last,
                    epoch_scores[fold], train_loss[fold], test_loss[fold], predictions[fold],
                    selected[fold:fold + 1])


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _train_fold(x, y, classification, rows_by_epoch, test_rows, init_weight, init_bias,
                batch_size, learning_rate, select_last,
                scores, train_loss, test_loss, best_predictions, selected):  # pragma: no cover
    dim = x.shape[1]
    weight = init_weight.copy()
    bias = np.float32(init_bias)
    weight_m = np.zeros(dim, dtype=np.float32)
    weight_v = np.zeros(dim, dtype=np.float32)
    weight_grad = np.zeros(dim, dtype=np.float32)
    bias_m = np.float32(0.0)
    bias_v = np.float32(0.0)
    outputs = np.empty(test_rows.shape[0], dtype=np.float32)
    decay = np.float32(1.0 - learning_rate * WEIGHT_DECAY)
    one_minus_beta1 = np.float32(1.0 - BETA1)
    beta2 = np.float32(BETA2)
    one_minus_beta2 = np.float32(1.0 - BETA2)
    eps = np.float32(ADAM_EPS)
    step = 0
    best = -np.inf
    n_train = rows_by_epoch.shape[1]
    for epoch in range(rows_by_epoch.shape[0]):
        rows = rows_by_epoch[epoch]
        loss_sum = 0.0
        batches = 0
        for start in range(0, n_train, batch_size):
            stop = min(start + batch_size, n_train)
            scale = np.float32(1.0) / np.float32(stop - start)
            weight_grad[:] = 0.0
            bias_grad = np.float32(0.0)
            batch_loss = np.float32(0.0)
            # Rows in blocks of four share each load of the weights and the gradient.
            position = start
            while position + 4 <= stop:
                i0, i1, i2, i3 = (rows[position], rows[position + 1],
                                  rows[position + 2], rows[position + 3])
                a, b, c, e = x[i0], x[i1], x[i2], x[i3]
                z0 = z1 = z2 = z3 = np.float32(0.0)
                for d in range(dim):
                    w = weight[d]
                    z0 += a[d] * w
                    z1 += b[d] * w
                    z2 += c[d] * w
                    z3 += e[d] * w
                r0, l0 = _residual(z0 + bias, y[i0], classification)
                r1, l1 = _residual(z1 + bias, y[i1], classification)
                r2, l2 = _residual(z2 + bias, y[i2], classification)
                r3, l3 = _residual(z3 + bias, y[i3], classification)
                r0 *= scale
                r1 *= scale
                r2 *= scale
                r3 *= scale
                for d in range(dim):
                    weight_grad[d] += r0 * a[d] + r1 * b[d] + r2 * c[d] + r3 * e[d]
                bias_grad += r0 + r1 + r2 + r3
                batch_loss += l0 + l1 + l2 + l3
                position += 4
            for tail in range(position, stop):
                row = x[rows[tail]]
                residual, loss = _residual(_dot(row, weight) + bias, y[rows[tail]],
                                           classification)
                residual *= scale
                for d in range(dim):
                    weight_grad[d] += residual * row[d]
                bias_grad += residual
                batch_loss += loss
            loss_sum += batch_loss * scale
            batches += 1
            step += 1
            # torch.optim.AdamW, one step, in float32 with double-precision scalars.
            step_size = np.float32(learning_rate / (1.0 - BETA1 ** step))
            correction2 = np.float32(math.sqrt(1.0 - BETA2 ** step))
            for d in range(dim):
                g = weight_grad[d]
                weight[d] *= decay
                weight_m[d] += one_minus_beta1 * (g - weight_m[d])
                weight_v[d] = weight_v[d] * beta2 + one_minus_beta2 * g * g
                weight[d] -= step_size * weight_m[d] / (np.sqrt(weight_v[d]) / correction2 + eps)
            bias *= decay
            bias_m += one_minus_beta1 * (bias_grad - bias_m)
            bias_v = bias_v * beta2 + one_minus_beta2 * bias_grad * bias_grad
            bias -= step_size * bias_m / (np.sqrt(bias_v) / correction2 + eps)
        train_loss[epoch] = loss_sum / batches

        for i in range(test_rows.shape[0]):
            outputs[i] = _dot(x[test_rows[i]], weight) + bias
        score, loss = _score(outputs, y, test_rows, classification)
        scores[epoch] = score
        test_loss[epoch] = loss
        # Reference rule: the first epoch with a strictly better score wins; NaN never does.
        take = epoch == rows_by_epoch.shape[0] - 1 if select_last else score > best
        if take:
            best = score
            selected[0] = epoch if np.isfinite(score) else -1
            best_predictions[:] = outputs


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _dot(row, weight):  # pragma: no cover
    total = np.float32(0.0)
    for d in range(row.shape[0]):
        total += row[d] * weight[d]
    return total


@numba.njit(cache=True, inline="always")
def _residual(z, target, classification):  # pragma: no cover
    """(dLoss/dz for one row, that row's loss) before the 1/batch mean."""
    if classification:
        return _sigmoid(z) - target, _bce_with_logits(z, target)
    return np.float32(2.0) * (z - target), (z - target) * (z - target)


@numba.njit(cache=True, inline="always")
def _sigmoid(z):  # pragma: no cover
    return np.float32(1.0) / (np.float32(1.0) + np.float32(math.exp(-z)))


@numba.njit(cache=True, inline="always")
def _bce_with_logits(z, target):  # pragma: no cover
    return max(z, np.float32(0.0)) - z * target + np.float32(math.log1p(math.exp(-abs(z))))


@numba.njit(cache=True)
def _score(outputs, y, test_rows, classification):  # pragma: no cover
    """(test score, mean test loss) as the reference metric computes them."""
    n = outputs.shape[0]
    if classification:
        # torchmetrics BinaryF1Score: outputs already in [0, 1] are taken as probabilities.
        as_probability = True
        for i in range(n):
            if not (outputs[i] >= 0.0 and outputs[i] <= 1.0):
                as_probability = False
                break
        tp = 0
        fp = 0
        fn = 0
        loss = 0.0
        for i in range(n):
            target = y[test_rows[i]]
            p = outputs[i] if as_probability else _sigmoid(outputs[i])
            positive = p > np.float32(0.5)
            if positive and target == 1.0:
                tp += 1
            elif positive:
                fp += 1
            elif target == 1.0:
                fn += 1
            loss += _bce_with_logits(outputs[i], target)
        score = 0.0 if tp == 0 else 2.0 * tp / (2.0 * tp + fp + fn)
        return score, loss / n
    # torchmetrics R2Score, float32 arithmetic on exactly rounded sums.
    sum_obs = 0.0
    sum_sq = 0.0
    rss = 0.0
    for i in range(n):
        target = np.float64(y[test_rows[i]])
        residual = target - np.float64(outputs[i])
        sum_obs += target
        sum_sq += target * target
        rss += residual * residual
    sum_obs32 = np.float32(sum_obs)
    mean_obs = sum_obs32 / np.float32(n)
    tss = np.float32(sum_sq) - sum_obs32 * mean_obs
    score = np.float64(np.float32(1.0) - np.float32(rss) / tss)
    return score, rss / n


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
    """The reference's linear probe on every fold, with the reference's random stream.

    Folds go in chunks: a helper thread draws the next chunk's random numbers (torch calls,
    in fold order) while the kernel, which releases the GIL, trains the current one.
    """
    check_params(config, {})
    dim = x.shape[1]

    def draw(folds: np.ndarray) -> tuple[list, np.ndarray]:
        return randomness.draw_folds(
            rng, train_rows[folds], test_rows.shape[1], config.epochs,
            lambda generator: randomness.linear_init(dim, 1, generator),
        )

    chunks = np.array_split(np.arange(len(train_rows)), -(-len(train_rows) // FOLDS_PER_CHUNK))
    runs = []
    with ThreadPoolExecutor(max_workers=1) as drawer:
        pending = drawer.submit(draw, chunks[0])
        for index, folds in enumerate(chunks):
            inits, batches = pending.result()
            if index + 1 < len(chunks):
                pending = drawer.submit(draw, chunks[index + 1])
            runs.append(train_linear_folds(
                x,
                y,
                classification=classification,
                train_rows=batches,
                test_rows=test_rows[folds],
                init_weight=np.stack([weight[0] for weight, _ in inits]),
                init_bias=np.array([bias[0] for _, bias in inits], dtype=np.float32),
                batch_size=config.batch_size,
                learning_rate=config.learning_rate,
                select_last=config.score_selection == "last_epoch",
            ))
    return FoldRun.concatenate(runs)


def hyperparameters(config: EvaluationConfig) -> dict[str, Any]:
    return {
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "optimizer": "AdamW",
        "weight_decay": WEIGHT_DECAY,
        "score_selection": config.score_selection,
    }
