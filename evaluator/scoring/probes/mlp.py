"""The MLP probe (1 or 2 hidden ReLU layers), trained on every fold of a task at once.

Each layer's parameters are stacked over folds into [K, ...] tensors and every step runs
all folds through torch.bmm on their own mini-batch. The loss is the sum over folds of
each fold's mean batch loss, so each fold's gradient is its own, and one AdamW over the
stacked tensors equals K separate AdamW optimisers stepping in lockstep (AdamW is
elementwise and all folds of a task take the same number of steps). The random stream is
the linear probe's: per fold the initialisation of all layers in order, then the epochs'
loader draws (`evaluator.scoring.randomness`).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evaluator.scoring import randomness
from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.probes import check_params
from evaluator.scoring.probes.scoring import score_outputs
from evaluator.scoring.results import FoldRun
from evaluator.support.errors import ConfigError

DEFAULT_HIDDEN = (256,)
WEIGHT_DECAY = 0.01  # torch.optim.AdamW's default
# Folds are independent, so they train in groups that keep parameters, AdamW state and the
# test rows of one group within this many bytes.
GROUP_BYTES = 256 * 2**20

Layers = list[tuple[np.ndarray, np.ndarray]]  # per layer (weight [out, in], bias [out])


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
    """Train the MLP on every fold; rows index x and y ([K, n_train], [K, n_test])."""
    widths = [x.shape[1], *hidden_layers(config), 1]
    layer_shapes = list(itertools.pairwise(widths))

    def init(generator: torch.Generator) -> Layers:
        # Layer order, as building the nn.Sequential would draw them.
        return [randomness.linear_init(fan_in, fan_out, generator)
                for fan_in, fan_out in layer_shapes]

    inits, batches = randomness.draw_folds(rng, train_rows, test_rows.shape[1], config.epochs,
                                           init)
    folds, epochs = batches.shape[:2]
    n_test = test_rows.shape[1]
    run = FoldRun(
        epoch_scores=np.full((folds, epochs), np.nan),
        train_loss=np.zeros((folds, epochs)),
        test_loss=np.zeros((folds, epochs)),
        test_predictions=np.zeros((folds, n_test), dtype=np.float32),
        selected_epoch=np.full(folds, -1, dtype=np.int64),
    )
    x_all = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    y_all = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    parameters = sum(fan_in * fan_out + fan_out for fan_in, fan_out in layer_shapes)
    per_fold = 4 * (4 * parameters + (n_test + config.batch_size) * widths[0])
    group = max(1, GROUP_BYTES // per_fold)
    for start in range(0, folds, group):
        part = slice(start, min(start + group, folds))
        _train_group(x_all, y_all, inits[part], batches[part], test_rows[part],
                     classification=classification, config=config, run=run, part=part)
    return run


def _train_group(
    x: torch.Tensor,
    y: torch.Tensor,
    inits: list[Layers],
    batches: np.ndarray,
    test_rows: np.ndarray,
    *,
    classification: bool,
    config: EvaluationConfig,
    run: FoldRun,
    part: slice,
) -> None:
    """Train the folds `part` of run (inits, batches, test_rows are theirs) in lockstep."""
    folds, epochs, n_train = batches.shape
    weights: list[torch.Tensor] = []  # [K, in, out]: bmm takes the transposed nn.Linear weight
    biases: list[torch.Tensor] = []  # [K, 1, out]
    for layer in range(len(inits[0])):
        weights.append(torch.from_numpy(np.stack([fold[layer][0].T for fold in inits]))
                       .contiguous().requires_grad_())
        biases.append(torch.from_numpy(np.stack([fold[layer][1] for fold in inits]))[:, None, :]
                      .contiguous().requires_grad_())
    # fused: one pass over the stacked state per step (the unfused update took half the time).
    optimizer = torch.optim.AdamW([*weights, *biases], lr=config.learning_rate,
                                  weight_decay=WEIGHT_DECAY, fused=True)
    order = torch.from_numpy(batches.astype(np.int64))
    test_index = torch.from_numpy(test_rows.astype(np.int64))
    test_x = x[test_index]
    test_y = y[test_index]
    targets = test_y.numpy()
    select_last = config.score_selection == "last_epoch"
    best = np.full(folds, -np.inf)
    for epoch in range(epochs):
        loss_sum = torch.zeros(folds, dtype=torch.float64)
        steps = 0
        for start in range(0, n_train, config.batch_size):
            rows = order[:, epoch, start:start + config.batch_size]
            batch_x = x.index_select(0, rows.reshape(-1)).view(folds, -1, x.shape[1])
            losses = _losses(_forward(batch_x, weights, biases), y[rows], classification)
            optimizer.zero_grad()
            losses.sum().backward()
            optimizer.step()
            loss_sum += losses.detach().double()
            steps += 1
        with torch.no_grad():
            outputs = _forward(test_x, weights, biases)
            test_loss = _losses(outputs, test_y, classification)
        predictions = outputs.numpy()
        scores = score_outputs(predictions, targets, classification)
        run.epoch_scores[part, epoch] = scores
        run.train_loss[part, epoch] = (loss_sum / steps).numpy()
        run.test_loss[part, epoch] = test_loss.double().numpy()
        # Reference rule: the first epoch with a strictly better score wins; NaN never does.
        take = np.full(folds, epoch == epochs - 1) if select_last else scores > best
        best = np.where(take, scores, best)
        run.selected_epoch[part][take] = np.where(np.isnan(scores[take]), -1, epoch)
        run.test_predictions[part][take] = predictions[take]


def _forward(
    inputs: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> torch.Tensor:
    """[K, B, N] -> [K, B] raw outputs (logits for classification)."""
    hidden = inputs
    for layer, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        hidden = torch.baddbmm(bias, hidden, weight)
        if layer < len(weights) - 1:
            hidden = torch.relu(hidden)
    return hidden.squeeze(-1)


def _losses(outputs: torch.Tensor, targets: torch.Tensor, classification: bool) -> torch.Tensor:
    """Each fold's mean loss [K]: BCE on logits for classification, MSE for regression."""
    if classification:
        return F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").mean(1)
    return (outputs - targets).square().mean(1)


def hidden_layers(config: EvaluationConfig) -> tuple[int, ...]:
    """The validated probe_params.hidden_layers (1 or 2 positive widths)."""
    check_params(config, {"hidden_layers": (list, tuple)})
    widths = tuple(config.probe_params.get("hidden_layers", DEFAULT_HIDDEN))
    if not 1 <= len(widths) <= 2 or not all(
        isinstance(width, int) and not isinstance(width, bool) and width > 0 for width in widths
    ):
        raise ConfigError(
            f"probe_params.hidden_layers must list 1 or 2 positive layer widths, got {widths!r}"
        )
    return widths


def hyperparameters(config: EvaluationConfig) -> dict[str, Any]:
    return {
        "hidden_layers": list(hidden_layers(config)),
        "activation": "relu",
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "optimizer": "AdamW",
        "weight_decay": WEIGHT_DECAY,
        "score_selection": config.score_selection,
    }
