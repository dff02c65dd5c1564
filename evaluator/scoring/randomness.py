"""The reference protocol's random-number stream, drawn up front (protocol section 4).

The reference seeds torch's global generator once per evaluation and consumes it tasks in
sorted order, folds in order, and within a fold: the probe's initialisation, then per
epoch the training loader's base seed (one int64), the permutation of the training rows,
the test loader's base seed and the permutation of the test rows. Drawing the same calls
in the same order from a private generator with the same seed yields the same numbers
without touching torch's global state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

Init = TypeVar("Init")


def generator(seed: int) -> torch.Generator:
    """A private generator in the state torch.manual_seed(seed) leaves the global one."""
    return torch.Generator().manual_seed(seed)


def linear_init(
    in_features: int, out_features: int, rng: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """torch.nn.Linear's reset_parameters: (weight [out, in], bias [out]) as float32."""
    weight = torch.empty(out_features, in_features)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=rng)
    bound = 1 / math.sqrt(in_features) if in_features > 0 else 0
    bias = torch.empty(out_features)
    torch.nn.init.uniform_(bias, -bound, bound, generator=rng)
    return weight.numpy(), bias.numpy()


def draw_folds(
    rng: torch.Generator,
    train_rows: np.ndarray,
    test_size: int,
    epochs: int,
    init: Callable[[torch.Generator], Init],
) -> tuple[list[Init], np.ndarray]:
    """Per fold: its initialisation, and its training rows in mini-batch order per epoch.

    train_rows: [K, n_train] rows as the splitter yields them (the sampler's index list).
    Returns (inits, batches [K, E, n_train] int32).
    """
    folds, n_train = train_rows.shape
    inits: list[Init] = []
    ordered = np.empty((folds, epochs, n_train), dtype=np.int32)
    seed = torch.empty((), dtype=torch.int64)
    for fold in range(folds):
        inits.append(init(rng))
        for epoch in range(epochs):
            seed.random_(generator=rng)  # training DataLoader iterator's base seed
            permutation = torch.randperm(n_train, generator=rng).numpy()
            ordered[fold, epoch] = train_rows[fold, permutation]
            seed.random_(generator=rng)  # test DataLoader iterator's base seed
            torch.randperm(test_size, generator=rng)  # test order: changes no metric
    return inits, ordered
