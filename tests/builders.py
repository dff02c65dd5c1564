"""Builders the tests share: results, small challenges on disk, probe tasks, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, r2_score
from sklearn.model_selection import ShuffleSplit

from evaluator.db.models import CountingRule
from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.results import EvaluationResult, TaskResult, quality
from leaderboard.board import Board
from leaderboard.standings import Scored, build_board, standings

K, E, N_TEST = 5, 4, 7
NOW = datetime(2024, 3, 9, 14, 5, 7)


# ---- results as the engine returns them ------------------------------------------------


def make_task(name: str, kind: str, scores: list[float], seed: int = 0) -> TaskResult:
    """A TaskResult as the engine would produce it, from small synthetic arrays."""
    rng = np.random.default_rng(seed)
    fold_scores = np.asarray(scores, dtype=np.float64)
    q, mean, std = quality(fold_scores)
    if kind == "regression":
        targets = rng.uniform(0.0, 1.0, (K, N_TEST))
        predictions = targets + rng.normal(0.0, 0.1, (K, N_TEST))
        metrics: dict[str, Any] = {"mse": np.float64(0.012), "mae": np.float32(0.09)}
    else:
        targets = rng.integers(0, 2, (K, N_TEST)).astype(np.float64)
        predictions = rng.normal(0.0, 2.0, (K, N_TEST))  # logits
        metrics = {
            "accuracy": 0.8,
            "roc_auc": np.float64("nan"),
            "confusion_matrix": np.array([[10, 2], [3, 20]], dtype=np.int64),
        }
    train_loss = np.linspace(1.0, 0.2, E)[None, :] * rng.uniform(0.9, 1.1, (K, 1))
    return TaskResult(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        samples=10 * N_TEST,
        quality=q,
        mean=mean,
        std=std,
        scores=fold_scores,
        epoch_scores=np.repeat(fold_scores[:, None], E, axis=1),
        selected_epoch=np.where(np.isnan(fold_scores), -1, E - 1),
        failed_folds=int(np.isnan(fold_scores).sum()),
        metrics=metrics,
        hyperparameters={"learning_rate": 1e-3, "epochs": E, "batch_size": 64},
        train_loss=train_loss,
        test_loss=train_loss + 0.05,
        test_targets=targets,
        test_predictions=predictions,
    )


def make_result(**config: Any) -> EvaluationResult:
    tasks = [
        make_task("biomass_mean", "regression", [0.61, 0.58, 0.64, np.nan, 0.60], seed=1),
        make_task("clouds", "classification", [0.71, 0.75, 0.69, 0.73, 0.70], seed=2),
    ]
    settings: dict[str, Any] = {"k_folds": K, "epochs": E, **config}
    return EvaluationResult(
        config=EvaluationConfig(**settings),
        tasks=tasks,
        embedding_dim=16,
        warnings=["3 submission rows are not in any task"],
        flags={"constant_columns": False},
        seconds=1.25,
    )


# ---- small challenges on disk (label folder + submission CSV) --------------------------


@dataclass(frozen=True)
class TaskSpec:
    name: str
    samples: int
    classification: bool = False
    dataset: str = ""  # tasks of one dataset share their ids


def write_challenge(
    root: Path, specs: list[TaskSpec], *, dim: int, seed: int = 0, extra_ids: int = 5
) -> tuple[Path, Path]:
    """Write root/labels/<task>__<type>.csv and root/submission.csv; return both paths.

    Labels depend linearly on a few embedding dimensions plus noise, so probes learn.
    """
    rng = np.random.default_rng(seed)
    labels = root / "labels"
    labels.mkdir(parents=True)
    ids_by_dataset: dict[str, list[str]] = {}
    all_ids: list[str] = []
    for spec in specs:
        key = spec.dataset or spec.name
        if key not in ids_by_dataset:
            ids_by_dataset[key] = [f"{key}-{rng.integers(1 << 60):x}" for _ in range(spec.samples)]
            all_ids.extend(ids_by_dataset[key])
    all_ids.extend(f"unused-{i}" for i in range(extra_ids))
    embedding = {sample_id: rng.normal(size=dim) * 3 + 1 for sample_id in all_ids}
    for spec in specs:
        ids = ids_by_dataset[spec.dataset or spec.name][: spec.samples]
        direction = rng.normal(size=dim)
        signal = np.array([embedding[i] @ direction for i in ids])
        signal += rng.normal(scale=signal.std(), size=len(ids))
        if spec.classification:
            values = (signal > np.quantile(signal, 0.7)).astype(int)
            kind = "cls"
        else:
            values = 50 + 10 * signal
            kind = "regr"
        rows = "".join(f"{i},{v}\n" for i, v in zip(ids, values, strict=True))
        (labels / f"{spec.name}__{kind}.csv").write_text("id,label\n" + rows)
    submission = root / "submission.csv"
    order = rng.permutation(len(all_ids))
    header = "id," + ",".join(str(d) for d in range(dim))
    lines = [header] + [
        all_ids[i] + "," + ",".join(f"{v:.6g}" for v in embedding[all_ids[i]]) for i in order
    ]
    submission.write_text("\n".join(lines) + "\n")
    return labels, submission


def write_unrelated_submission(like: Path, out: Path, *, seed: int = 0) -> Path:
    """The same ids and columns as `like` with embeddings that carry no signal: a method
    that must rank below one whose embeddings explain the labels."""
    rng = np.random.default_rng(seed)
    return _rewrite_values(like, out, lambda values: rng.normal(size=len(values)))


def write_noisy_submission(like: Path, out: Path, *, scale: float, seed: int = 0) -> Path:
    """`like` with Gaussian noise of `scale` added to every value: the larger the scale,
    the less the embeddings explain the labels (submissions of graded quality)."""
    rng = np.random.default_rng(seed)
    return _rewrite_values(like, out,
                           lambda values: values + rng.normal(scale=scale, size=len(values)))


def _rewrite_values(like: Path, out: Path, new: Callable[[np.ndarray], np.ndarray]) -> Path:
    header, *rows = like.read_text().splitlines()
    lines = [header]
    for row in rows:
        sample_id, values = row.split(",", 1)
        changed = new(np.array(values.split(","), dtype=np.float64))
        lines.append(sample_id + "," + ",".join(f"{v:.6g}" for v in changed))
    out.write_text("\n".join(lines) + "\n")
    return out


# ---- probe inputs -----------------------------------------------------------------------


def make_probe_task(
    classification: bool, *, n: int = 120, dim: int = 8, folds: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x shared by all tasks (extra rows outside the task, y NaN there) and ShuffleSplit folds."""
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n + 30, dim)).astype(np.float32)
    rows = np.sort(gen.choice(n + 30, n, replace=False))
    signal = x[rows] @ gen.standard_normal(dim) + 0.5 * gen.standard_normal(n)
    labels = (signal > 0).astype(np.float32) if classification else signal
    y = np.full(n + 30, np.nan, dtype=np.float32)
    y[rows] = (labels - labels.min()) / (labels.max() - labels.min())
    train, test = zip(*ShuffleSplit(folds, test_size=0.1, random_state=42).split(rows),
                      strict=True)
    return x, y, rows[np.stack(train)], rows[np.stack(test)]


def reference_score(outputs: np.ndarray, targets: np.ndarray, classification: bool) -> float:
    if not classification:
        return float(r2_score(targets, outputs))
    in_unit = bool(((outputs >= 0) & (outputs <= 1)).all())
    probabilities = outputs if in_unit else 1 / (1 + np.exp(-outputs.astype(np.float64)))
    return float(f1_score(targets, probabilities > 0.5, zero_division=0))


# ---- boards, built the way production builds them (standings -> build_board) -----------

NASTY = [
    "__#bold team__|[e]",
    "- team_<1>_\\",
    "<script>alert(1)</script>",
    "🚀 rocket 👩‍👩‍👧 team",
    "فريق الأقمار",
    "צוות לוויין",
    "evil\u202eoverride",
    "two\nlines\r\nand\ttab",
    "x" * 200,
    "$a$ `code` *star* ~~strike~~ &amp; \"q\" 'a'",
    "  https://example.com @user  ",
]
BOARD_TASKS = ["zebra-crossing-xq7", "kelp-forest-yy9", "glacier-melt-zz3"]
BOARD_NOW = datetime(2026, 3, 29, 19, 36, 0, tzinfo=UTC)
# The demo challenge's nine tasks (evaluator/runs/demo.py), as a newcomer's first board shows them.
DEMO_TASKS = [
    "biomass_mean", "biomass_std", "crops", "landcover_agriculture", "landcover_forest",
    "heatisland_mean", "heatisland_std", "clouds_cover", "clouds_opaque",
]  # fmt: skip


def scored_entries(teams: list[str], tasks: list[str], quality: np.ndarray, *,
                   seed: int = 0, folds: int = 10) -> list[Scored]:
    """Scored submissions whose fold scores scatter around each Q (rank intervals)."""
    rng = np.random.default_rng(seed)
    return [
        Scored(submission_id=row + 1, team=team, submitted_at=BOARD_NOW, is_public=True,
               task_quality={t: float(quality[row, i]) for i, t in enumerate(tasks)},
               fold_scores={t: quality[row, i] + rng.normal(0, 2, folds)
                            for i, t in enumerate(tasks)})
        for row, team in enumerate(teams)
    ]


def make_board(*, hidden: bool = False, teams: list[str] | None = None) -> Board:
    """Nasty names, a baseline (non-competing) and an entry with a NaN task (unranked)."""
    teams = [*(teams or NASTY), "Baseline mean", "Unranked team"]
    quality = np.random.default_rng(0).normal(10, 5, size=(len(teams), len(BOARD_TASKS)))
    quality[-1, 1] = np.nan  # a NaN task: listed, not ranked
    entries = scored_entries(teams, BOARD_TASKS, quality)
    entries[-2] = replace(entries[-2], is_baseline=True, label="Baseline mean")
    result = standings(entries, BOARD_TASKS, CountingRule.BEST)
    history = [(BOARD_NOW - timedelta(days=3 - step),
                {team: (rank + step) % len(teams) + 1 for team, rank in zip(
                    teams, range(len(teams)), strict=True)})
               for step in range(4)]  # fmt: skip
    return build_board(result, challenge="Embed <Challenge>", phase="development",
                       hidden_tasks=hidden, generated_at=BOARD_NOW, history=history,
                       resamples=200)


def make_demo_board() -> Board:
    """Like the demo's board: nine tasks, long team names (one with no space to break at),
    everyone competing, and several snapshots minutes apart on one day."""
    teams = [
        "strong", "medium", "weak", "baseline_mean", "baseline_random",
        "Université de Montréal — self-supervised ViT-L/14 embeddings (v3, 1024-d)",
        "team-with-an-extremely-long-unbroken-name-that-never-wraps-anywhere-at-all",
        "y" * 90,
    ]  # fmt: skip
    quality = np.random.default_rng(1).uniform(0, 1, size=(len(teams), len(DEMO_TASKS)))
    result = standings(scored_entries(teams, DEMO_TASKS, quality, seed=1), DEMO_TASKS,
                       CountingRule.BEST)
    history = [
        (BOARD_NOW - timedelta(minutes=10 * (5 - step)),
         {team: (row + step) % len(teams) + 1 for row, team in enumerate(teams)})
        for step in range(6)
    ]  # fmt: skip
    return build_board(result, challenge="Embedding demo", phase="dev", hidden_tasks=False,
                       generated_at=BOARD_NOW, history=history, resamples=200)


# ---- the command line -------------------------------------------------------------------


REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment of a child `python -m evaluator`: this checkout's code first, even
    when the child runs in another folder (the venv's editable install may be another
    checkout's)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def probeboard(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluator", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=child_env())
