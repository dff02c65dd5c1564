"""The per-fold score of any probe: the reference metric on its raw test outputs
(R^2 for regression, F1 for classification), shared by every probe."""

from __future__ import annotations

import numpy as np


def score_outputs(outputs: np.ndarray, targets: np.ndarray, classification: bool) -> np.ndarray:
    """Reference test score per fold: outputs, targets [K, n_test] -> [K] float64.

    Regression: R^2 as torchmetrics R2Score computes it, in float32 on exactly rounded
    sums. Classification: F1 of the positive class at threshold 0.5 on sigmoid(output),
    except that a fold whose outputs all lie in [0, 1] is taken as probabilities (no
    sigmoid), as torchmetrics' BinaryF1Score does; F1 = 0 without true positives. As in
    the reference, a NaN output simply counts as negative. Non-finite scores become NaN.
    """
    outputs = np.asarray(outputs, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    with np.errstate(all="ignore"):
        if classification:
            in_unit = ((outputs >= 0) & (outputs <= 1)).all(axis=1, keepdims=True)
            # The sigmoid in float32 as linear._sigmoid: tiny positive logits round to 0.5.
            sigmoid = np.float32(1) / (np.float32(1) + np.exp(-outputs.astype(np.float64))
                                       .astype(np.float32))
            positive = np.where(in_unit, outputs, sigmoid) > np.float32(0.5)
            truth = targets == 1
            tp = (positive & truth).sum(axis=1)
            fp = (positive & ~truth).sum(axis=1)
            fn = (~positive & truth).sum(axis=1)
            scores = np.where(tp == 0, 0.0, 2.0 * tp / np.maximum(2 * tp + fp + fn, 1))
        else:
            observed = targets.astype(np.float64)
            residual = observed - outputs.astype(np.float64)
            sum_obs = observed.sum(axis=1).astype(np.float32)
            sum_sq = (observed * observed).sum(axis=1).astype(np.float32)
            rss = (residual * residual).sum(axis=1).astype(np.float32)
            mean_obs = sum_obs / np.float32(targets.shape[1])
            tss = sum_sq - sum_obs * mean_obs
            scores = (np.float32(1) - rss / tss).astype(np.float64)
    return np.where(np.isfinite(scores), scores, np.nan)
