"""The evaluation config: the reference tool's YAML keys, validated key by key."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evaluator.support.errors import ConfigError

PROBE_TYPES = ("linear", "ridge", "mlp", "svm")
SCORE_SELECTIONS = ("best_epoch", "last_epoch")

# Keys the reference tool reads or writes that change nothing here.
IGNORED_KEYS = frozenset({"device", "store_models", "store_probes"})
TRAINING_KEYS = ("batch_size", "epochs", "learning_rate")
BOOKKEEPING_KEYS = ("enable_plots", "output_fold_results", "update_leaderboard")


@dataclass(frozen=True)
class EvaluationConfig:
    """How one submission is scored. Defaults are the published challenge's."""

    k_folds: int = 40
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 42
    embedding_dim: int | None = None
    standardize_embeddings: bool = True
    normalize_labels: bool = True
    task_filter: tuple[str, ...] | None = None
    probe_type: str = "linear"
    probe_params: dict[str, Any] = field(default_factory=dict)
    max_failed_folds: int = 3
    score_selection: str = "best_epoch"
    enable_plots: bool = False
    output_fold_results: bool = False
    update_leaderboard: bool = False

    def __post_init__(self) -> None:
        _check_int(self, "k_folds", minimum=2)
        _check_int(self, "epochs", minimum=1)
        _check_int(self, "batch_size", minimum=1)
        _check_int(self, "seed", minimum=0)
        _check_int(self, "max_failed_folds", minimum=0)
        if self.embedding_dim is not None:
            _check_int(self, "embedding_dim", minimum=1)
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 10:
            raise ConfigError(f"learning_rate must be a number in (0, 10), got {rate!r}")
        for key in ("standardize_embeddings", "normalize_labels", "enable_plots",
                    "output_fold_results", "update_leaderboard"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.probe_type not in PROBE_TYPES:
            raise ConfigError(
                f"probe_type must be one of {', '.join(PROBE_TYPES)}, got {self.probe_type!r}"
            )
        if self.score_selection not in SCORE_SELECTIONS:
            raise ConfigError(
                f"score_selection must be one of {', '.join(SCORE_SELECTIONS)}, "
                f"got {self.score_selection!r}"
            )
        if self.task_filter is not None and (
            not self.task_filter or not all(isinstance(name, str) for name in self.task_filter)
        ):
            raise ConfigError(
                "task_filter must be a non-empty list of task names, or null for every task"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, as written into results_summary.json."""
        data = dataclasses.asdict(self)
        data["task_filter"] = list(self.task_filter) if self.task_filter else None
        return data

    def scoring_settings(self) -> dict[str, Any]:
        """The settings that change a score (not plots or bookkeeping): a phase keeps one."""
        data = self.to_dict()
        for key in BOOKKEEPING_KEYS:
            data.pop(key)
        return data

    def digest(self) -> str:
        """sha256 of scoring_settings()."""
        text = json.dumps(self.scoring_settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def load_config(path: Path | str) -> EvaluationConfig:
    """Read a YAML config (the reference tool's flat or probe_params form)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass --config FILE.yaml") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys, not {type(raw).__name__}"
        )
    return config_from_mapping(raw)


def config_from_mapping(raw: dict[str, Any]) -> EvaluationConfig:
    """Validate a mapping of config keys; unknown keys are errors (a typo must not pass)."""
    data = {key: value for key, value in raw.items() if key not in IGNORED_KEYS}
    for key in ("store_models", "store_probes"):
        if raw.get(key):
            raise ConfigError(f"{key}: true is not supported; probeboard stores scores, not models")
    known = {f.name for f in dataclasses.fields(EvaluationConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        # Name every key a config may hold, the reference's accepted-and-ignored ones too.
        accepted = sorted(known | IGNORED_KEYS)
        close = {key: difflib.get_close_matches(key, accepted, n=1) for key in unknown}
        hints = [f"{match[0]} (not {key})" for key, match in close.items() if match]
        if len(unknown) == 1 and hints:
            hints = [close[unknown[0]][0]]
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(unknown)}{hint}; known keys: "
            f"{', '.join(accepted)}"
        )
    params = data.get("probe_params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"probe_params must be a mapping, got {params!r}")
    params = dict(params)
    # The reference's linear config keeps batch_size/epochs/learning_rate under probe_params.
    for key in TRAINING_KEYS:
        if key in params:
            value = params.pop(key)
            if key in data and data[key] != value:
                raise ConfigError(
                    f"{key} is given twice with different values ({data[key]!r} at the top "
                    f"level, {value!r} under probe_params); keep one"
                )
            data[key] = value
    params.pop("device", None)
    data["probe_params"] = params
    task_filter = data.get("task_filter")
    if task_filter is False or task_filter is None:
        data["task_filter"] = None
    elif isinstance(task_filter, str):
        data["task_filter"] = (task_filter,)
    elif isinstance(task_filter, list):
        data["task_filter"] = tuple(task_filter)
    else:
        raise ConfigError(f"task_filter must be a list of task names or null, got {task_filter!r}")
    return EvaluationConfig(**data)


def _check_int(config: EvaluationConfig, key: str, minimum: int) -> None:
    value = getattr(config, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be a whole number >= {minimum}, got {value!r}")
