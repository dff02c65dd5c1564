"""The ridge and MLP probes against plain per-fold scikit-learn / torch fits."""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.model_selection import ShuffleSplit

from evaluator.scoring import randomness
from evaluator.scoring.config import PROBE_TYPES, EvaluationConfig
from evaluator.scoring.probes import Probe, mlp, probe, ridge
from evaluator.scoring.probes.scoring import score_outputs
from evaluator.support.errors import ConfigError
from tests.builders import make_probe_task, reference_score

# --- the shared score function --------------------------------------------------------


def test_r2_by_hand() -> None:
    targets = np.array([[0.0, 1.0, 2.0, 3.0]])
    # rss = 1, tss = 14 - 6 * 1.5 = 5
    assert score_outputs(np.array([[0.0, 1.0, 2.0, 4.0]]), targets, False)[0] == pytest.approx(0.8)
    assert score_outputs(targets, targets, False)[0] == 1.0


def test_f1_takes_outputs_in_unit_interval_as_probabilities() -> None:
    targets = np.array([[1.0, 1.0, 0.0, 0.0]] * 2)
    outputs = np.array([[0.6, 0.4, 0.7, 0.2],  # all in [0, 1]: predictions 1 0 1 0
                        [0.6, 0.4, 0.7, -0.2]])  # one outside: sigmoid, predictions 1 1 1 0
    scores = score_outputs(outputs, targets, True)
    assert scores[0] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))  # tp 1, fp 1, fn 1
    assert scores[1] == pytest.approx(2 * 2 / (2 * 2 + 1 + 0))  # tp 2, fp 1, fn 0


def test_f1_is_zero_without_true_positives() -> None:
    targets = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    outputs = np.array([[-1.0, -2.0, 3.0], [-1.0, -1.0, -1.0]])
    np.testing.assert_array_equal(score_outputs(outputs, targets, True), [0.0, 0.0])


def test_non_finite_score_is_nan() -> None:
    constant = np.array([[0.5, 0.5, 0.5]])  # tss = 0
    assert np.isnan(score_outputs(np.array([[0.1, 0.2, 0.3]]), constant, False)[0])
    assert np.isnan(score_outputs(np.array([[np.nan, 0.2, 0.3]]), [[0, 1, 0.5]], False)[0])


def test_score_matches_the_linear_probe_metric() -> None:
    from evaluator.scoring.probes.linear import _score

    gen = np.random.default_rng(3)
    for classification in (False, True):
        y = gen.random(50).astype(np.float32)
        if classification:
            y = (y > 0.5).astype(np.float32)
        rows = np.arange(50, dtype=np.int32)
        for outputs in (gen.random(50), gen.standard_normal(50)):
            outputs = outputs.astype(np.float32)
            expected, _ = _score(outputs, y, rows, classification)
            assert score_outputs(outputs[None], y[None], classification)[0] == expected


# --- ridge ------------------------------------------------------------------------------


@pytest.mark.parametrize("classification", [False, True])
def test_ridge_equals_sklearn_per_fold(classification: bool) -> None:
    x, y, train, test = make_probe_task(classification, folds=4)
    config = EvaluationConfig(k_folds=4, probe_type="ridge", probe_params={"alpha": 3.0})
    rng = randomness.generator(0)
    state = rng.get_state()
    run = ridge.fit(x, y, classification=classification, train_rows=train, test_rows=test,
                    config=config, rng=rng)
    assert torch.equal(rng.get_state(), state)  # no random numbers drawn
    assert run.epoch_scores.shape == (4, 1)
    np.testing.assert_array_equal(run.selected_epoch, 0)
    # Classification regresses the +-1 coding, as scikit-learn's RidgeClassifier does.
    coded = 2 * y - 1 if classification else y
    for fold in range(4):
        model = Ridge(alpha=3.0).fit(x[train[fold]].astype(np.float64), coded[train[fold]])
        expected = model.predict(x[test[fold]].astype(np.float64))
        np.testing.assert_allclose(run.test_predictions[fold], expected, atol=1e-4)
        assert run.epoch_scores[fold, 0] == pytest.approx(
            reference_score(expected, y[test[fold]], classification), abs=1e-4)
        fitted = model.predict(x[train[fold]].astype(np.float64))
        assert run.train_loss[fold, 0] == pytest.approx(
            np.mean((fitted - coded[train[fold]]) ** 2))


def test_ridge_without_precomputed_hat_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y, train, test = make_probe_task(False, folds=3)
    config = EvaluationConfig(k_folds=3, probe_type="ridge")
    kwargs = {"classification": False, "train_rows": train, "test_rows": test,
              "config": config, "rng": torch.Generator()}
    with_hat = ridge.fit(x, y, **kwargs)
    monkeypatch.setattr(ridge, "HAT_MAX_BYTES", 0)  # the large-task path
    without = ridge.fit(x, y, **kwargs)
    np.testing.assert_allclose(without.test_predictions, with_hat.test_predictions, atol=1e-6)


def test_ridge_fits_a_linear_target() -> None:
    gen = np.random.default_rng(1)
    x = gen.standard_normal((200, 6)).astype(np.float32)
    y = (x @ gen.standard_normal(6) + 2.0).astype(np.float32)
    train, test = (np.stack(rows) for rows in zip(
        *ShuffleSplit(3, test_size=0.1, random_state=0).split(x), strict=True))
    config = EvaluationConfig(k_folds=3, probe_type="ridge", probe_params={"alpha": 1e-6})
    run = ridge.fit(x, y, classification=False, train_rows=train, test_rows=test,
                    config=config, rng=torch.Generator())
    np.testing.assert_allclose(run.scores, 1.0, atol=1e-5)


# --- MLP --------------------------------------------------------------------------------


def reference_mlp(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
    config: EvaluationConfig, classification: bool, rng: torch.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One nn.Sequential and one AdamW per fold, batches in draw_folds' order.

    Returns the [K, E] test scores and test losses.
    """
    widths = [x.shape[1], *config.probe_params["hidden_layers"], 1]
    inits, batches = randomness.draw_folds(
        rng, train, test.shape[1], config.epochs,
        lambda gen: [randomness.linear_init(i, o, gen) for i, o in itertools.pairwise(widths)])
    loss_fn = torch.nn.BCEWithLogitsLoss() if classification else torch.nn.MSELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    scores = np.zeros((len(train), config.epochs))
    losses = np.zeros((len(train), config.epochs))
    for fold, layers in enumerate(inits):
        modules: list[torch.nn.Module] = []
        for weight, bias in layers:
            linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(weight))
                linear.bias.copy_(torch.from_numpy(bias))
            modules += [linear, torch.nn.ReLU()]
        model = torch.nn.Sequential(*modules[:-1])
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
        for epoch in range(config.epochs):
            order = torch.from_numpy(batches[fold, epoch].astype(np.int64))
            for start in range(0, len(order), config.batch_size):
                rows = order[start:start + config.batch_size]
                loss = loss_fn(model(xt[rows]).squeeze(-1), yt[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                outputs = model(xt[test[fold]]).squeeze(-1)
                losses[fold, epoch] = loss_fn(outputs, yt[test[fold]]).item()
            scores[fold, epoch] = reference_score(outputs.numpy(), y[test[fold]], classification)
    return scores, losses


@pytest.mark.parametrize("hidden", [[5], [5, 4]])
@pytest.mark.parametrize("classification", [False, True])
def test_mlp_equals_per_fold_torch(hidden: list[int], classification: bool) -> None:
    x, y, train, test = make_probe_task(classification)
    assert train.shape[1] % 16 != 0  # a smaller last batch
    config = EvaluationConfig(k_folds=3, epochs=3, batch_size=16, learning_rate=0.01,
                              probe_type="mlp", probe_params={"hidden_layers": hidden})
    rng = randomness.generator(config.seed)
    run = mlp.fit(x, y, classification=classification, train_rows=train, test_rows=test,
                  config=config, rng=rng)
    follow = randomness.generator(config.seed)
    scores, losses = reference_mlp(x, y, train, test, config, classification, follow)
    np.testing.assert_allclose(run.epoch_scores, scores, atol=1e-4)
    np.testing.assert_allclose(run.test_loss, losses, atol=1e-5)
    assert len(np.unique(losses)) == losses.size  # every fold and epoch differs
    # The selected epoch is the first best one, and its predictions are kept.
    np.testing.assert_array_equal(run.selected_epoch, np.argmax(run.epoch_scores, axis=1))
    assert run.test_predictions.shape == test.shape
    assert np.isfinite(run.train_loss).all() and np.isfinite(run.test_loss).all()
    # Both consumed the same random stream: the next task would see the same numbers.
    assert torch.equal(rng.get_state(), follow.get_state())


def test_mlp_groups_of_folds_match_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y, train, test = make_probe_task(False, folds=3)
    config = EvaluationConfig(k_folds=3, epochs=2, batch_size=16, probe_type="mlp",
                              probe_params={"hidden_layers": [5]},
                              score_selection="last_epoch")
    kwargs = {"classification": False, "train_rows": train, "test_rows": test, "config": config}
    whole = mlp.fit(x, y, rng=randomness.generator(1), **kwargs)
    monkeypatch.setattr(mlp, "GROUP_BYTES", 1)  # one fold per group
    split = mlp.fit(x, y, rng=randomness.generator(1), **kwargs)
    np.testing.assert_allclose(split.epoch_scores, whole.epoch_scores, atol=1e-6)
    np.testing.assert_array_equal(split.selected_epoch, 1)  # last_epoch selection
    np.testing.assert_allclose(split.test_predictions, whole.test_predictions, atol=1e-6)


# --- probe_params -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "params", "key"),
    [
        ("ridge", {"alpah": 1.0}, "alpah"),
        ("ridge", {"alpha": -1.0}, "alpha"),
        ("ridge", {"alpha": "big"}, "alpha"),
        ("ridge", {"alpha": True}, "alpha"),
        ("mlp", {"hidden_layers": [0]}, "hidden_layers"),
        ("mlp", {"hidden_layers": [4, 4, 4]}, "hidden_layers"),
        ("mlp", {"hidden_layers": 16}, "hidden_layers"),
        ("mlp", {"dropout": 0.1}, "dropout"),
    ],
)
def test_bad_probe_params(probe: str, params: dict, key: str) -> None:
    module = {"ridge": ridge, "mlp": mlp}[probe]
    config = EvaluationConfig(k_folds=3, epochs=3, batch_size=16, probe_type=probe,
                              probe_params=params)
    x, y, train, test = make_probe_task(False)
    with pytest.raises(ConfigError, match=key):
        module.fit(x, y, classification=False, train_rows=train, test_rows=test,
                   config=config, rng=randomness.generator(0))
    with pytest.raises(ConfigError, match=key):
        module.hyperparameters(config)


def test_hyperparameters() -> None:
    config = EvaluationConfig(probe_type="mlp", probe_params={"hidden_layers": [32, 8]})
    assert mlp.hyperparameters(config)["hidden_layers"] == [32, 8]
    assert mlp.hyperparameters(EvaluationConfig(probe_type="mlp"))["hidden_layers"] == [256]
    assert ridge.hyperparameters(EvaluationConfig(probe_type="ridge"))["alpha"] == 1.0


@pytest.mark.parametrize("probe_type", PROBE_TYPES)
def test_every_probe_type_implements_the_probe_protocol(probe_type: str) -> None:
    chosen = probe(probe_type)
    assert isinstance(chosen, Probe)
    for name in ("fit", "hyperparameters"):
        expected = inspect.signature(getattr(Probe, name))
        expected = expected.replace(parameters=list(expected.parameters.values())[1:])  # self
        assert str(inspect.signature(getattr(chosen, name))) == str(expected), name
