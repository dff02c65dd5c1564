"""The SVM probe: a polynomial-kernel SVC / SVR whose hyperparameters are searched per fold.

The reference (NeuCo-Bench's SVM probe, pull request 12, not merged) comes in two shapes.
The one whose keys `sample_config_svm.yaml` uses (kernel_degree_start_end, opt_folds,
opt_n_iter, opt_n_jobs, opt_n_points) is a per-fold probe, `fit(x_train, y_train, x_val,
y_val)` once per shuffle-split: a search on the fold's training rows, the best candidate
scored once on its test rows. That is what this module does:
- per fold, RandomizedSearchCV on the fold's training rows only, `opt_folds` unshuffled
  inner folds (null: 5, scikit-learn's default; stratified for classification), opt_n_iter
  candidates, refit on the best by accuracy (SVC) or negative MSE (SVR), as the reference's
  refit scoring; the test rows never take part in model selection;
- kernel "poly" only; C and gamma log-uniform over [start, end], degree a whole number in
  [start, end] (or from kernel_degree_list), coef0 uniform over kernel_coef0_start_end when
  given (else 0); without kernel_gamma_start_end gamma is scikit-learn's "scale";
- the fold's score is F1 of the SVC's class predictions (scikit-learn's "f1" scorer, as the
  reference) or R^2 of the SVR's predictions, via probes.scoring.score_outputs.

Differences, on purpose:
- The reference searches with scikit-optimize's BayesSearchCV. probeboard does not add that
  dependency: scikit-learn's RandomizedSearchCV over the same ranges (scipy.stats.loguniform
  for C and gamma, uniform choice of degree, scipy.stats.uniform for coef0), n_iter =
  opt_n_iter. Candidates are drawn at random, not proposed by a surrogate model, so the
  chosen hyperparameters and scores differ from the reference's. opt_n_points
  (BayesSearchCV's candidates per round) means nothing here: validated, then ignored.
- The search is seeded with config.seed, so every fold tries the same candidates and the
  run is deterministic for any opt_n_jobs; the torch generator is not touched.
- The reference's later shape (kernel_degree_list, opt_params) runs one search over the
  whole task with the K shuffle-splits themselves as the search's folds, and keeps per fold
  the best candidate's score on that fold's *test* rows (selection on the test split, like
  the linear probe's best epoch). Not done here; kernel_degree_list and
  kernel_coef0_start_end are accepted, opt_params is not.

Cost: K * (opt_n_iter * opt_folds + 1) SVM fits per task: 10,040 for the sample config
(K = 40, 50 candidates, 5 inner folds). The kernel is computed from one Gram matrix of the
task rows (`GramSVC` / `GramSVR`, the same model as kernel="poly"): 10-25x faster per fit
than libsvm's own kernel at N = 1,024. Measured on 2 cores, 2,415 rows x 1,024 dims, sample
config: 30-45 s per fold (16-30x faster than kernel="poly"), i.e. 20-30 min per task at
K = 40 (the linear probe: seconds). libsvm has no iteration cap (as in the reference), so a
badly conditioned candidate (large C and gamma at degree 2) can take far longer. Tasks whose
Gram matrix would exceed GRAM_MAX_BYTES (the 13k-row nodata task) fall back to libsvm's
kernel and take hours. Lower opt_n_iter or k_folds, or raise opt_n_jobs, for
anything interactive.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import loguniform, uniform
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold
from sklearn.svm import SVC, SVR

from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.probes import check_params
from evaluator.scoring.probes.scoring import score_outputs
from evaluator.scoring.results import FoldRun
from evaluator.support.errors import ConfigError

log = logging.getLogger(__name__)

KERNEL = "poly"  # the reference searches the polynomial kernel only
# Above this, the Gram matrix of the task rows (n^2 float64) is not formed and libsvm
# computes the kernel itself (e.g. the 13k-row nodata task).
GRAM_MAX_BYTES = 512 * 2**20
DEFAULT_C = (1e-6, 10.0)  # the reference's default C range
DEFAULT_DEGREES = (1,)  # the reference's default kernel_degree_list
DEFAULT_OPT_FOLDS = 5  # opt_folds: null -> scikit-learn's default cv
DEFAULT_N_ITER = 50  # BayesSearchCV's default n_iter
REFIT_SCORING = {"classification": "accuracy", "regression": "neg_mean_squared_error"}

_NUMBER = (int, float)
_PARAMS: dict[str, type | tuple[type, ...]] = {
    "C_start_end": (list, tuple),
    "kernel_gamma_start_end": (list, tuple, type(None)),
    "kernel_coef0_start_end": (list, tuple, type(None)),
    "kernel_degree_start_end": (list, tuple, int),
    "kernel_degree_list": (list, tuple, int),
    "opt_folds": (int, type(None)),
    "opt_n_iter": int,
    "opt_n_jobs": (int, type(None)),
    "opt_n_points": int,
}


@dataclass(frozen=True)
class Search:
    """The validated probe_params: search space and search settings."""

    c_range: tuple[float, float]
    gamma_range: tuple[float, float] | None  # None: scikit-learn's gamma="scale", not searched
    coef0_range: tuple[float, float] | None  # None: coef0 = 0, not searched
    degrees: tuple[int, ...]
    folds: int
    n_iter: int
    n_jobs: int | None
    n_points: int

    def distributions(self) -> dict[str, Any]:
        space: dict[str, Any] = {
            "C": loguniform(*self.c_range),
            "degree": list(self.degrees),
            "kernel": [KERNEL],
        }
        if self.gamma_range is not None:
            space["gamma"] = loguniform(*self.gamma_range)
        if self.coef0_range is not None:
            low, high = self.coef0_range
            space["coef0"] = uniform(low, high - low)
        return space


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
    """Search, refit and score an SVM on every fold as one "epoch".

    test_predictions are decision values (SVC, positive = class 1) or predictions (SVR).
    Losses: mean hinge loss on the -1/+1 coding (classification) or MSE (regression). A fold
    whose search cannot fit (e.g. one class in its training rows) is NaN. rng is unused.
    """
    search = settings(config)
    folds, n_test = test_rows.shape
    task_rows = np.unique(np.concatenate([train_rows.ravel(), test_rows.ravel()]))
    gram = None
    if len(task_rows) ** 2 * 8 <= GRAM_MAX_BYTES:
        gram = Gram.of(x[task_rows])

    def inputs(rows: np.ndarray) -> np.ndarray:
        # Gram path: each sample is its position in task_rows; otherwise its embedding.
        if gram is not None:
            return np.searchsorted(task_rows, rows).astype(np.float64)[:, None]
        return x[rows].astype(np.float64)

    outputs = np.full((folds, n_test), np.nan)
    positive = np.zeros((folds, n_test), dtype=bool)
    train_loss = np.full(folds, np.nan)
    for fold in range(folds):
        x_train, x_test = inputs(train_rows[fold]), inputs(test_rows[fold])
        y_train = y[train_rows[fold]].astype(np.float64)
        model = _search_fold(x_train, y_train, classification, search, config.seed, gram)
        if model is None:
            log.debug("svm fold %d: the search could not fit", fold)
            continue
        log.debug("svm fold %d: %s", fold, {key: model.get_params()[key]
                                             for key in ("C", "degree", "gamma", "coef0")})
        if classification:
            outputs[fold] = model.decision_function(x_test)
            positive[fold] = model.predict(x_test) == 1
            train_loss[fold] = _hinge(model.decision_function(x_train), y_train)
        else:
            outputs[fold] = model.predict(x_test)
            train_loss[fold] = np.mean(np.square(model.predict(x_train) - y_train))
    failed = np.isnan(outputs).any(axis=1)
    targets = y[test_rows]
    if classification:
        # Score the SVC's own class decisions, as the reference's F1 does, coded -1/+1 so
        # score_outputs thresholds them at 0 even where every decision value lies in [0, 1].
        scores = score_outputs(np.where(positive, 1.0, -1.0), targets, True)
        test_loss = np.array([_hinge(out, target) for out, target in
                              zip(outputs, targets, strict=True)])
    else:
        scores = score_outputs(outputs, targets, False)
        test_loss = np.mean(np.square(outputs - targets), axis=1)
    scores[failed] = np.nan
    test_loss[failed] = np.nan
    return FoldRun(
        epoch_scores=scores[:, None],
        train_loss=train_loss[:, None],
        test_loss=test_loss[:, None],
        test_predictions=outputs.astype(np.float32),
        selected_epoch=np.where(np.isnan(scores), -1, 0).astype(np.int64),
    )


def _search_fold(
    x: np.ndarray,
    y: np.ndarray,
    classification: bool,
    search: Search,
    seed: int,
    gram: Gram | None,
) -> BaseEstimator | None:
    """The best candidate refit on (x, y), or None when the search cannot fit."""
    kind = "classification" if classification else "regression"
    if classification and len(np.unique(y)) < 2:
        return None  # SVC cannot fit one class; every candidate would fail with a warning
    if gram is not None:
        estimator: BaseEstimator = GramSVC(gram) if classification else GramSVR(gram)
    else:
        estimator = SVC(kernel=KERNEL) if classification else SVR(kernel=KERNEL)
    searcher = RandomizedSearchCV(
        estimator,
        search.distributions(),
        n_iter=search.n_iter,
        scoring=REFIT_SCORING[kind],
        # scikit-learn's cv=int, spelled out: unshuffled, so deterministic.
        cv=StratifiedKFold(search.folds) if classification else KFold(search.folds),
        n_jobs=search.n_jobs,
        refit=True,
        random_state=seed,
        error_score=np.nan,
    )
    try:
        searcher.fit(x, y.astype(np.int64) if classification else y)
    except ValueError:  # e.g. a single class, or no candidate could be fitted
        return None
    return searcher.best_estimator_


def _hinge(decision: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.maximum(0.0, 1.0 - (2.0 * labels - 1.0) * decision)))


class Gram:
    """X X^T of a task's rows (float64), shared by reference between search clones."""

    def __init__(self, matrix: np.ndarray, row_sums: np.ndarray, features: int) -> None:
        self.matrix = matrix
        self.row_sums = row_sums
        self.features = features

    @classmethod
    def of(cls, x: np.ndarray) -> Gram:
        x = x.astype(np.float64)
        return cls(x @ x.T, x.sum(axis=1), x.shape[1])

    def __deepcopy__(self, memo: dict) -> Gram:
        return self  # clone() deep-copies parameters: one copy per candidate and split

    def scale_gamma(self, rows: np.ndarray) -> float:
        """scikit-learn's gamma="scale", 1 / (N var(X)), from the Gram matrix."""
        size = len(rows) * self.features
        mean = self.row_sums[rows].sum() / size
        variance = np.trace(self.matrix[np.ix_(rows, rows)]) / size - mean * mean
        return 1.0 / (self.features * variance) if variance != 0 else 1.0


class _GramSVM(BaseEstimator):
    """SVC / SVR with the polynomial kernel taken from a precomputed Gram matrix.

    Same model as kernel="poly" up to rounding, but each fit only transforms a block of the
    Gram matrix instead of libsvm recomputing N-dimensional dot products (10-30x faster at
    N = 1,024). Inputs X are one column of row positions into the Gram matrix.
    """

    def __init__(
        self,
        gram: Gram | None = None,
        C: float = 1.0,
        degree: int = 3,
        gamma: float | str = "scale",
        coef0: float = 0.0,
        kernel: str = KERNEL,
    ) -> None:
        self.gram = gram
        self.C = C
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.kernel = kernel

    def _model(self) -> SVC | SVR:
        raise NotImplementedError

    def _kernel(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        assert self.gram is not None
        block = self.gram.matrix[np.ix_(rows, columns)]
        block *= self.gamma_
        block += self.coef0
        if self.degree != 1:
            np.power(block, self.degree, out=block)
        return block

    def fit(self, X: np.ndarray, y: np.ndarray) -> _GramSVM:
        if self.kernel != KERNEL or self.gram is None:
            raise ValueError(f"{type(self).__name__} needs a Gram matrix and kernel={KERNEL!r}")
        rows = X[:, 0].astype(np.intp)
        self.gamma_ = (self.gram.scale_gamma(rows) if self.gamma == "scale"
                       else float(self.gamma))
        self.rows_ = rows
        self.model_ = self._model().fit(self._kernel(rows, rows), y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._kernel(X[:, 0].astype(np.intp), self.rows_))


class GramSVC(ClassifierMixin, _GramSVM):
    def _model(self) -> SVC:
        return SVC(kernel="precomputed", C=self.C)

    def fit(self, X: np.ndarray, y: np.ndarray) -> GramSVC:
        super().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.model_.decision_function(self._kernel(X[:, 0].astype(np.intp), self.rows_))


class GramSVR(RegressorMixin, _GramSVM):
    def _model(self) -> SVR:
        return SVR(kernel="precomputed", C=self.C)


def settings(config: EvaluationConfig) -> Search:
    """Validate probe_params; every error names `probe_params.<key>`."""
    check_params(config, _PARAMS)
    params = config.probe_params
    if "kernel_degree_start_end" in params and "kernel_degree_list" in params:
        raise ConfigError(
            "probe_params.kernel_degree_start_end and probe_params.kernel_degree_list both "
            "give the kernel degrees; keep one"
        )
    if "kernel_degree_list" in params:
        degrees = _degree_list(params["kernel_degree_list"])
    elif "kernel_degree_start_end" in params:
        value = params["kernel_degree_start_end"]
        low, high = (value, value) if isinstance(value, int) else _pair(
            "kernel_degree_start_end", value, integers=True)
        if low < 1 or high < low:
            raise ConfigError(
                f"probe_params.kernel_degree_start_end must be [lowest, highest] degree with "
                f"1 <= lowest <= highest, got {value!r}"
            )
        degrees = tuple(range(low, high + 1))
    else:
        degrees = DEFAULT_DEGREES
    folds = params.get("opt_folds")
    folds = DEFAULT_OPT_FOLDS if folds is None else folds
    if folds < 2:
        raise ConfigError(f"probe_params.opt_folds must be null or a whole number >= 2, got "
                          f"{folds!r}")
    n_iter = params.get("opt_n_iter", DEFAULT_N_ITER)
    if n_iter < 1:
        raise ConfigError(f"probe_params.opt_n_iter must be a whole number >= 1, got {n_iter!r}")
    n_jobs = params.get("opt_n_jobs", 1)
    if n_jobs == 0:
        raise ConfigError("probe_params.opt_n_jobs must be null, a whole number >= 1, or "
                          "negative (-1: every core), got 0")
    n_points = params.get("opt_n_points", 1)
    if n_points < 1:
        raise ConfigError(f"probe_params.opt_n_points must be a whole number >= 1, got "
                          f"{n_points!r}")
    coef0 = params.get("kernel_coef0_start_end")
    return Search(
        c_range=_log_range("C_start_end", params.get("C_start_end", list(DEFAULT_C))),
        gamma_range=_log_range("kernel_gamma_start_end", params.get("kernel_gamma_start_end")),
        coef0_range=None if coef0 is None else _ordered("kernel_coef0_start_end", coef0),
        degrees=degrees,
        folds=folds,
        n_iter=n_iter,
        n_jobs=n_jobs,
        n_points=n_points,
    )


def _pair(key: str, value: list | tuple, *, integers: bool = False) -> tuple[Any, Any]:
    kinds = int if integers else _NUMBER
    if len(value) != 2 or not all(
        isinstance(item, kinds) and not isinstance(item, bool) for item in value
    ):
        what = "whole numbers" if integers else "numbers"
        raise ConfigError(f"probe_params.{key} must be a list of two {what} [start, end], "
                          f"got {value!r}")
    return value[0], value[1]


def _ordered(key: str, value: list | tuple) -> tuple[float, float]:
    low, high = (float(item) for item in _pair(key, value))
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"probe_params.{key} must be [start, end] with start < end, "
                          f"got {value!r}")
    return low, high


def _log_range(key: str, value: list | tuple | None) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = _ordered(key, value)
    if low <= 0:
        raise ConfigError(f"probe_params.{key} is searched log-uniformly, so it must be "
                          f"positive: got {value!r}")
    return low, high


def _degree_list(value: int | list | tuple) -> tuple[int, ...]:
    degrees = [value] if isinstance(value, int) else value
    if not degrees or not all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 1 for item in degrees
    ):
        raise ConfigError(f"probe_params.kernel_degree_list must be a degree >= 1 or a "
                          f"non-empty list of them, got {value!r}")
    return tuple(sorted(set(degrees)))


def hyperparameters(config: EvaluationConfig) -> dict[str, Any]:
    """The search space and settings (the per-fold choices are in the debug log)."""
    search = settings(config)
    return {
        "model": {"classification": "SVC", "regression": "SVR"},
        "kernel": KERNEL,
        "C": {"log_uniform": list(search.c_range)},
        "gamma": ("scale" if search.gamma_range is None
                  else {"log_uniform": list(search.gamma_range)}),
        "degree": list(search.degrees),
        "coef0": 0.0 if search.coef0_range is None else {"uniform": list(search.coef0_range)},
        "search": "RandomizedSearchCV",
        "search_rows": "each fold's training rows",
        "n_iter": search.n_iter,
        "inner_folds": search.folds,
        "refit_scoring": dict(REFIT_SCORING),
        "random_state": config.seed,
    }
