"""Probes: a model trained on every fold of a task at once.

Each probe module (linear, ridge, mlp, svm) implements `Probe`; `fit_folds` picks one by
config.probe_type.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch

from evaluator.scoring.config import TRAINING_KEYS, EvaluationConfig
from evaluator.scoring.results import FoldRun
from evaluator.scoring.tasks import TaskKind
from evaluator.support.errors import ConfigError


@runtime_checkable
class Probe(Protocol):
    """What a probe module offers."""

    def fit(self, x: np.ndarray, y: np.ndarray, *, classification: bool,
            train_rows: np.ndarray, test_rows: np.ndarray, config: EvaluationConfig,
            rng: torch.Generator) -> FoldRun:
        """Train on every fold: rows index x and y ([K, n_train], [K, n_test]); rng is the
        reference's random stream, drawn in fold order."""
        ...

    def hyperparameters(self, config: EvaluationConfig) -> dict[str, Any]:
        """What the results record of the probe's settings."""
        ...


def probe(probe_type: str) -> Probe:
    """The probe module of that type, imported only now: the SVM's scikit-learn costs ~2 s
    and ~200 MB."""
    return cast(Probe, importlib.import_module(f"evaluator.scoring.probes.{probe_type}"))


def fit_folds(
    x: np.ndarray,
    y: np.ndarray,
    kind: TaskKind,
    *,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    config: EvaluationConfig,
    rng: torch.Generator,
) -> tuple[FoldRun, dict[str, Any]]:
    """Train config.probe_type on every fold; rows index x and y ([K, n_train], [K, n_test])."""
    chosen = probe(config.probe_type)
    run = chosen.fit(
        x,
        y,
        classification=kind == "classification",
        train_rows=train_rows,
        test_rows=test_rows,
        config=config,
        rng=rng,
    )
    return run, chosen.hyperparameters(config)


def check_params(config: EvaluationConfig, allowed: dict[str, type | tuple[type, ...]]) -> None:
    """Reject probe_params keys the probe does not know, or of the wrong type."""
    for key, value in config.probe_params.items():
        if key not in allowed:
            # The training keys are accepted under probe_params for every probe (config.py
            # lifts them to the top level before the probe sees them).
            accepted = sorted({*allowed, *TRAINING_KEYS})
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean probe_params.{close[0]}? " if close else ""
            raise ConfigError(
                f"probe_params.{key} is not a parameter of the {config.probe_type} probe; "
                f"{hint}probe_params accepts: {', '.join(accepted)}"
            )
        if isinstance(value, bool) or not isinstance(value, allowed[key]):
            raise ConfigError(f"probe_params.{key} has the wrong type: {value!r}")
