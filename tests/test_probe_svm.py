"""The SVM probe: the reference sample config, a plain scikit-learn search per fold, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.model_selection import KFold, RandomizedSearchCV, ShuffleSplit, StratifiedKFold
from sklearn.svm import SVC, SVR

from evaluator.scoring import randomness
from evaluator.scoring.config import EvaluationConfig, load_config
from evaluator.scoring.probes import fit_folds, svm
from evaluator.support.errors import ConfigError
from tests.builders import make_probe_task, reference_score

SAMPLE = Path(__file__).parent / "data" / "reference_configs" / "sample_config_svm.yaml"


def sample_config(**params: Any) -> EvaluationConfig:
    """The reference sample config with K = 3 and a short search (plus `params`)."""
    config = load_config(SAMPLE)
    return dataclasses.replace(
        config, k_folds=3, probe_params={**config.probe_params, "opt_n_iter": 4, **params}
    )


def run_svm(config: EvaluationConfig, classification: bool, **task: Any) -> Any:
    x, y, train, test = make_probe_task(classification, n=80, dim=6, folds=3, **task)
    return svm.fit(x, y, classification=classification, train_rows=train, test_rows=test,
                   config=config, rng=torch.Generator())


def test_sample_config_loads() -> None:
    config = load_config(SAMPLE)
    assert config.probe_type == "svm"
    assert config.probe_params["kernel_degree_start_end"] == [1, 2]
    assert config.probe_params["opt_folds"] is None
    settings = svm.settings(config)
    assert (settings.folds, settings.n_iter, settings.degrees) == (5, 50, (1, 2))


@pytest.mark.parametrize("classification", [False, True])
def test_sample_config_runs_through_fit_folds(classification: bool) -> None:
    config = sample_config()
    x, y, train, test = make_probe_task(classification, n=80, dim=6, folds=3)
    rng = randomness.generator(0)
    state = rng.get_state()
    run, hyperparameters = fit_folds(
        x, y, "classification" if classification else "regression",
        train_rows=train, test_rows=test, config=config, rng=rng,
    )
    assert torch.equal(rng.get_state(), state)  # the torch stream is left alone
    assert run.epoch_scores.shape == run.train_loss.shape == run.test_loss.shape == (3, 1)
    assert run.test_predictions.shape == test.shape
    assert run.test_predictions.dtype == np.float32
    np.testing.assert_array_equal(run.selected_epoch, 0)
    assert np.isfinite(run.scores).all()
    assert np.isfinite(run.train_loss).all() and np.isfinite(run.test_loss).all()
    json.dumps(hyperparameters)  # written into the task's result file
    assert hyperparameters["kernel"] == "poly"
    assert (hyperparameters["n_iter"], hyperparameters["degree"]) == (4, [1, 2])


def plain_search(config: EvaluationConfig, classification: bool) -> RandomizedSearchCV:
    """What the probe does on one fold, written with scikit-learn's own poly kernel."""
    params = config.probe_params
    space: dict[str, Any] = {
        "C": loguniform(*params["C_start_end"]),
        "degree": list(range(params["kernel_degree_start_end"][0],
                             params["kernel_degree_start_end"][1] + 1)),
        "kernel": ["poly"],
    }
    if params.get("kernel_gamma_start_end"):
        space["gamma"] = loguniform(*params["kernel_gamma_start_end"])
    if params.get("kernel_coef0_start_end"):
        low, high = params["kernel_coef0_start_end"]
        space["coef0"] = uniform(low, high - low)
    folds = params["opt_folds"] or 5
    return RandomizedSearchCV(
        SVC() if classification else SVR(), space, n_iter=params["opt_n_iter"],
        scoring="accuracy" if classification else "neg_mean_squared_error",
        cv=StratifiedKFold(folds) if classification else KFold(folds),
        random_state=config.seed,
    )


@pytest.mark.parametrize(
    ("classification", "params"),
    [
        (False, {}),
        (True, {}),
        # gamma "scale" (not searched) and a searched coef0
        (False, {"kernel_gamma_start_end": None, "kernel_coef0_start_end": [-1, 2]}),
        (True, {"kernel_gamma_start_end": None, "kernel_coef0_start_end": [-1, 2],
                "opt_folds": 3}),
    ],
)
def test_equals_a_plain_sklearn_search_per_fold(classification: bool, params: dict) -> None:
    config = sample_config(**params)
    x, y, train, test = make_probe_task(classification, n=80, dim=6, folds=3)
    run = svm.fit(x, y, classification=classification, train_rows=train, test_rows=test,
                  config=config, rng=torch.Generator())
    for fold in range(3):
        x_train = x[train[fold]].astype(np.float64)
        y_train = y[train[fold]].astype(np.int64 if classification else np.float64)
        model = plain_search(config, classification).fit(x_train, y_train).best_estimator_
        x_test = x[test[fold]].astype(np.float64)
        if classification:
            expected = model.decision_function(x_test)
            score = reference_score(np.where(model.predict(x_test) == 1, 1.0, -1.0),
                                    y[test[fold]], True)
        else:
            expected = model.predict(x_test)
            score = reference_score(expected, y[test[fold]], False)
        np.testing.assert_allclose(run.test_predictions[fold], expected, atol=1e-5)
        assert run.epoch_scores[fold, 0] == pytest.approx(score, abs=1e-5)


@pytest.mark.parametrize("classification", [False, True])
def test_libsvm_kernel_fallback_gives_the_same_model(
    classification: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = sample_config()
    with_gram = run_svm(config, classification)
    monkeypatch.setattr(svm, "GRAM_MAX_BYTES", 0)  # the large-task path: kernel="poly"
    without = run_svm(config, classification)
    np.testing.assert_allclose(without.test_predictions, with_gram.test_predictions, atol=1e-5)
    np.testing.assert_array_equal(without.scores, with_gram.scores)


def test_deterministic_for_a_seed() -> None:
    # gamma kept below the sample's 10: C ~ gamma ~ 7 at degree 2 takes libsvm ~10 s here.
    config = sample_config(opt_n_iter=6, kernel_gamma_start_end=[1e-3, 1])
    first, second = run_svm(config, False), run_svm(config, False)
    np.testing.assert_array_equal(first.test_predictions, second.test_predictions)
    np.testing.assert_array_equal(first.epoch_scores, second.epoch_scores)
    other = run_svm(dataclasses.replace(config, seed=7), False)
    assert not np.array_equal(other.test_predictions, first.test_predictions)


def test_fits_a_linear_target() -> None:
    gen = np.random.default_rng(1)
    x = gen.standard_normal((120, 6)).astype(np.float32)
    y = x @ gen.standard_normal(6) + 0.05 * gen.standard_normal(120)
    y = ((y - y.min()) / (y.max() - y.min())).astype(np.float32)
    train, test = (np.stack(rows) for rows in zip(
        *ShuffleSplit(3, test_size=0.1, random_state=0).split(x), strict=True))
    config = EvaluationConfig(k_folds=3, probe_type="svm", probe_params={
        "C_start_end": [0.1, 10], "kernel_gamma_start_end": [0.01, 1],
        "kernel_degree_start_end": [1, 1], "opt_n_iter": 4,
    })
    run = svm.fit(x, y, classification=False, train_rows=train, test_rows=test,
                  config=config, rng=torch.Generator())
    assert (run.scores > 0.5).all(), run.scores


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_a_fold_with_one_class_is_nan() -> None:
    x, y, train, test = make_probe_task(True, n=80, dim=6, folds=3)
    y[train[1]] = 0.0  # fold 1 trains on one class only
    run = svm.fit(x, y, classification=True, train_rows=train, test_rows=test,
                  config=sample_config(), rng=torch.Generator())
    assert np.isnan(run.scores[1]) and run.selected_epoch[1] == -1
    assert np.isnan(run.test_predictions[1]).all()
    assert np.isfinite(run.scores[[0, 2]]).all()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"alpha": 1.0}, "probe_params.alpha"),
        ({"C_start_end": "1e-3"}, "probe_params.C_start_end"),
        ({"C_start_end": [10, 1]}, "probe_params.C_start_end"),
        ({"C_start_end": [0, 1]}, "probe_params.C_start_end"),
        ({"C_start_end": [1e-3]}, "probe_params.C_start_end"),
        ({"kernel_gamma_start_end": [1, "x"]}, "probe_params.kernel_gamma_start_end"),
        ({"kernel_coef0_start_end": [2, -1]}, "probe_params.kernel_coef0_start_end"),
        ({"kernel_degree_start_end": [0, 2]}, "probe_params.kernel_degree_start_end"),
        ({"kernel_degree_start_end": [1.5, 2]}, "probe_params.kernel_degree_start_end"),
        ({"kernel_degree_start_end": [3, 2]}, "probe_params.kernel_degree_start_end"),
        ({"kernel_degree_list": []}, "probe_params.kernel_degree_list"),
        ({"kernel_degree_list": [2]}, "probe_params.kernel_degree_start_end"),  # both given
        ({"opt_folds": 1}, "probe_params.opt_folds"),
        ({"opt_folds": True}, "probe_params.opt_folds"),
        ({"opt_n_iter": 0}, "probe_params.opt_n_iter"),
        ({"opt_n_jobs": 0}, "probe_params.opt_n_jobs"),
        ({"opt_n_points": 0}, "probe_params.opt_n_points"),
    ],
)
def test_bad_probe_params_name_the_key(params: dict, named: str) -> None:
    config = sample_config(**params)
    with pytest.raises(ConfigError, match=named):
        svm.hyperparameters(config)
    with pytest.raises(ConfigError, match=named):
        run_svm(config, False)
