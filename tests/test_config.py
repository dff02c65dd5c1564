"""The evaluation config: the reference's YAML files, and errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from evaluator.scoring.config import (
    IGNORED_KEYS,
    EvaluationConfig,
    config_from_mapping,
    load_config,
)
from evaluator.support.errors import ConfigError

REFERENCE = Path(__file__).parent / "data" / "reference_configs"


@pytest.mark.parametrize("name", ["sample_config.yaml", "benchmark_config.yaml"])
def test_reference_flat_configs_load_as_they_are(name: str) -> None:
    config = load_config(REFERENCE / name)
    assert (config.batch_size, config.epochs, config.learning_rate) == (64, 20, 0.001)
    assert config.k_folds == 40
    assert config.task_filter is None
    assert config.probe_type == "linear"


def test_reference_linear_config_keeps_training_keys_under_probe_params() -> None:
    config = load_config(REFERENCE / "sample_config_linear.yaml")
    assert (config.batch_size, config.epochs, config.learning_rate) == (64, 10, 0.001)
    assert config.probe_params == {}


def test_defaults_are_the_published_challenge_settings() -> None:
    config = EvaluationConfig()
    assert (config.k_folds, config.epochs, config.batch_size) == (40, 20, 64)
    assert (config.learning_rate, config.seed, config.max_failed_folds) == (1e-3, 42, 3)
    assert config.standardize_embeddings and config.normalize_labels


@pytest.mark.parametrize(
    ("mapping", "named"),
    [
        ({"k_folds": 1}, "k_folds"),
        ({"k_folds": "40"}, "k_folds"),
        ({"epochs": True}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"normalize_labels": "yes"}, "normalize_labels"),
        ({"probe_type": "forest"}, "probe_type"),
        ({"score_selection": "median"}, "score_selection"),
        ({"task_filter": 3}, "task_filter"),
        ({"task_filter": []}, "task_filter"),
        ({"k_fold": 40}, "k_fold"),
        ({"probe_params": [1]}, "probe_params"),
        ({"epochs": 20, "probe_params": {"epochs": 10}}, "epochs"),
        ({"store_models": True}, "store_models"),
        ({"embedding_dim": 0}, "embedding_dim"),
    ],
)
def test_bad_values_name_the_key(mapping: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config_from_mapping(mapping)


def test_task_filter_forms() -> None:
    assert config_from_mapping({"task_filter": False}).task_filter is None
    assert config_from_mapping({"task_filter": "crops"}).task_filter == ("crops",)
    assert config_from_mapping({"task_filter": ["a", "b"]}).task_filter == ("a", "b")


def test_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("k_folds: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == EvaluationConfig()


def test_digest_ignores_bookkeeping_but_not_scoring_settings() -> None:
    base = EvaluationConfig()
    assert EvaluationConfig(enable_plots=True).digest() == base.digest()
    assert EvaluationConfig(k_folds=200).digest() != base.digest()


def test_unknown_key_message_lists_every_accepted_key() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"epoch": 3})
    message = str(caught.value)
    assert "did you mean epochs?" in message
    listed = message.split("known keys: ", 1)[1].split(", ")
    # store_models is in the reference's configs and loads here: the list must name it.
    assert "store_models" in listed
    assert config_from_mapping({"store_models": False, "device": "cpu"}) == EvaluationConfig()
    fields = {field.name for field in dataclasses.fields(EvaluationConfig)}
    assert set(listed) == fields | IGNORED_KEYS


@pytest.mark.parametrize("probe", ["linear", "ridge"])
def test_probe_params_typo_names_the_accepted_keys(probe: str) -> None:
    import torch

    from evaluator.scoring.probes import fit_folds
    from tests.builders import make_probe_task

    config = config_from_mapping({"probe_type": probe, "probe_params": {"learnig_rate": 0.01}})
    x, y, train, test = make_probe_task(False)
    with pytest.raises(ConfigError) as caught:
        fit_folds(x, y, "regression", train_rows=train, test_rows=test, config=config,
                  rng=torch.Generator())
    message = str(caught.value)
    assert "probe_params.learnig_rate" in message
    assert "did you mean probe_params.learning_rate?" in message
    assert "batch_size, epochs, learning_rate" in message and "none" not in message
    assert ("alpha" in message) == (probe == "ridge")
