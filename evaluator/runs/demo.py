"""A generated challenge that looks like the published one: label folder + graded submissions.

Every sample has latent factors (vegetation, cropland, imperviousness, clouds, ...). Labels
are partly nonlinear functions of a few factors plus noise, in real units (t/ha, fractions,
°C, 0/1). Submissions are random linear mixes of what an encoder "kept" of the factors plus
noise, so their quality is known by construction: strong > medium > weak > baseline_mean
(per-band means, zero-padded) > baseline_random (pure noise); in the small challenge the
two baselines both score near or below 0, in either order. The weak file keeps a
`.zarr.zip` suffix on a few ids, as participants' files often do. The evaluator, the
leaderboard and the daemon can then be exercised end to end without the secret labels.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from evaluator.support.errors import ConfigError, ProbeboardError

log = logging.getLogger(__name__)

GRADES = ("strong", "medium", "weak", "baseline_mean", "baseline_random")
FULL_EMBEDDING_DIM = 1024
# The small challenge keeps one sample in SMALL_SHARE of each dataset (at least
# SMALL_MIN_SAMPLES) and SMALL_EMBEDDING_DIM dimensions. Fewer samples or dimensions and the
# default probe (20 epochs at learning rate 1e-3) no longer converges: every R^2 turns
# negative and the grades come out in the wrong order (issue 8).
SMALL_EMBEDDING_DIM = 64
SMALL_SHARE = 2
SMALL_MIN_SAMPLES = 100
SIGNIFICANT_DIGITS = 6

# Latent factors shared by every dataset (names only document what the labels use).
# 0 vegetation density, 1 canopy height, 2 moisture, 3 heterogeneity, 4 cropland,
# 5 phenology, 6 soil brightness, 7 imperviousness, 8 elevation, 9 water, 10 cloud amount,
# 11 cloud thickness, 12 swath edge (no-data), 13-15 minor effects.
N_FACTORS = 16
# Acquisition nuisances (season, view angle, ...): large in every embedding, in no label.
N_NUISANCE = 6

Labels = dict[str, np.ndarray]
Rng = np.random.Generator


@dataclass(frozen=True)
class DemoChallenge:
    root: Path
    labels: Path  # root / "labels"
    submissions: dict[str, Path]  # name -> CSV path, in GRADES order
    embedding_dim: int


@dataclass(frozen=True)
class _Dataset:
    name: str
    size: int  # full-size sample count (the published challenge's)
    tasks: tuple[tuple[str, str], ...]  # (task name, file suffix regr/cls)
    make_labels: Callable[[np.ndarray, Rng], Labels]
    empty_labels: dict[str, int]  # task -> rows left blank at full size


@dataclass(frozen=True)
class _Grade:
    kept: tuple[int, ...]  # latent factors the encoder captured
    gain: float  # how strongly the kept factors show in the embedding
    hidden_units: int  # random ReLU features of the kept factors: a probe can fit curvature
    noise: float  # per-value noise, relative to a unit-variance signal column


_GRADES: dict[str, _Grade] = {
    "strong": _Grade(tuple(range(N_FACTORS)), 1.0, 96, 0.13),
    "medium": _Grade((0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 12), 0.85, 24, 0.2),
    "weak": _Grade((0, 4, 6, 7, 10), 0.7, 0, 0.35),
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _fraction(score: np.ndarray, threshold: float, width: float) -> np.ndarray:
    # Area fractions: zero below a threshold (most tiles have none of the class), then linear.
    return np.clip((score - threshold) / width, 0.0, 1.0)


def _biomass(z: np.ndarray, rng: Rng) -> Labels:
    n = len(z)
    # Above-ground biomass is right-skewed (log-normal) and saturates in the densest forests.
    log_raw = (
        np.log(60.0)
        + 0.45 * z[:, 0]
        + 0.3 * z[:, 1]
        + 0.15 * z[:, 0] * z[:, 1]
        + 0.1 * z[:, 2]
        + 0.2 * rng.standard_normal(n)
    )
    raw = np.exp(log_raw)
    mean = raw / (1.0 + raw / 500.0)
    spread = 0.25 * np.exp(0.25 * z[:, 3] + 0.15 * rng.standard_normal(n))
    return {"biomass_mean": np.round(mean, 2), "biomass_std": np.round(mean * spread, 2)}


def _crops(z: np.ndarray, rng: Rng) -> Labels:
    logit = -2.0 + 1.6 * z[:, 4] + 1.0 * np.tanh(2.0 * z[:, 5]) + 0.4 * z[:, 6]
    # Imbalanced on purpose (~20% positives): F1 of the positive class is then informative.
    return {"crops": (rng.random(len(z)) < _sigmoid(logit)).astype(np.float64)}


def _landcover(z: np.ndarray, rng: Rng) -> Labels:
    n = len(z)
    noise = rng.standard_normal((n, 2))
    agri_score = (
        0.75 * z[:, 4] - 0.45 * z[:, 0] + 0.3 * z[:, 6] + 0.25 * z[:, 13] + 0.35 * noise[:, 0]
    )
    forest_score = (
        0.8 * z[:, 0] + 0.45 * z[:, 1] - 0.35 * z[:, 4] + 0.2 * z[:, 14] + 0.35 * noise[:, 1]
    )
    agriculture = _fraction(agri_score, 0.35, 1.6)
    forest = _fraction(forest_score, 0.2, 1.8)
    # Shares of one tile cannot add up to more than 1.
    total = np.maximum(agriculture + forest, 1.0)
    return {
        "landcover_agriculture": np.round(agriculture / total, 4),
        "landcover_forest": np.round(forest / total, 4),
    }


def _heatisland(z: np.ndarray, rng: Rng) -> Labels:
    n = len(z)
    noise = rng.standard_normal((n, 2))
    # Summer land-surface temperature: sealed surfaces heat, vegetation and altitude cool.
    mean = (
        32.0
        + 2.0 * z[:, 7]
        + 0.6 * np.maximum(z[:, 7], 0.0) ** 2
        - 1.1 * z[:, 0]
        - 0.8 * z[:, 8]
        + 0.9 * noise[:, 0]
    )
    std = 0.9 + 0.7 * _softplus(1.2 * z[:, 7] + 0.6 * z[:, 3] - 0.4 * z[:, 9]) + 0.25 * noise[:, 1]
    return {
        "heatisland_mean": np.round(mean, 2),
        "heatisland_std": np.round(np.maximum(std, 0.1), 3),
    }


def _clouds(z: np.ndarray, rng: Rng) -> Labels:
    n = len(z)
    noise = rng.standard_normal((n, 2))
    cover = _fraction(1.1 * z[:, 10] + 0.4 * z[:, 11] + 0.4 * noise[:, 0], -0.1, 2.2)
    opaque = 0.8 * z[:, 11] + 0.6 * z[:, 10] + 0.5 * noise[:, 1] > 1.3
    return {"clouds_cover": np.round(cover, 4), "clouds_opaque": opaque.astype(np.float64)}


def _cloudy(z: np.ndarray, rng: Rng) -> Labels:
    return {"cloudy": (z[:, 10] + 0.35 * rng.standard_normal(len(z)) > 0.8).astype(np.float64)}


def _nodata(z: np.ndarray, rng: Rng) -> Labels:
    # Most cubes are complete; those at a swath edge miss a share of their pixels.
    share = 0.4 * (z[:, 12] - 0.9) + 0.05 * rng.standard_normal(len(z))
    return {"nodata": np.round(np.clip(share, 0.0, 1.0), 4)}


# The final phase's datasets; their sample counts are the published ones (13,260 ids in all).
_DATASETS = (
    _Dataset(
        "biomass",
        2415,
        (("biomass_mean", "regr"), ("biomass_std", "regr")),
        _biomass,
        {"biomass_std": 3},
    ),
    _Dataset("crops", 3355, (("crops", "cls"),), _crops, {}),
    _Dataset(
        "landcover",
        4691,
        (("landcover_agriculture", "regr"), ("landcover_forest", "regr")),
        _landcover,
        {"landcover_forest": 5},
    ),
    _Dataset(
        "heatisland",
        1659,
        (("heatisland_mean", "regr"), ("heatisland_std", "regr")),
        _heatisland,
        {"heatisland_std": 2},
    ),
    _Dataset(
        "clouds",
        1140,
        (("clouds_cover", "regr"), ("clouds_opaque", "cls")),
        _clouds,
        {},
    ),
)
# Optional tasks over every id of the challenge.
_CLOUDY = _Dataset("cloudy", 0, (("cloudy", "cls"),), _cloudy, {})
_NODATA = _Dataset("nodata", 0, (("nodata", "regr"),), _nodata, {})


def make_demo(
    out: Path | str,
    *,
    small: bool = False,
    seed: int = 0,
    clouds: bool = False,
    nodata: bool = False,
    overwrite: bool = False,
) -> DemoChallenge:
    """Write OUT/labels/<task>__<type>.csv and OUT/submissions/<grade>.csv.

    small=True: half the samples per task and 64 dimensions (a few MB, seconds to score),
    for tests and a first look; the grades still rank strong > medium > weak > baselines.
    clouds / nodata add a classification / regression task over every id.
    Same arguments -> byte-identical files.
    """
    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    root = Path(out)
    labels_dir = root / "labels"
    submissions_dir = root / "submissions"
    # Check both folders before deleting anything in either.
    stale = [path for folder in (labels_dir, submissions_dir) for path in _stale(folder, overwrite)]
    for path in stale:
        path.unlink()
    for folder in (labels_dir, submissions_dir):
        folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dim = SMALL_EMBEDDING_DIM if small else FULL_EMBEDDING_DIM

    # Datasets cover disjoint samples; each sample's latent factors are drawn once and used
    # by its labels and by every submission.
    factor_blocks: list[np.ndarray] = []
    label_sets: list[tuple[_Dataset, np.ndarray, Labels]] = []
    offset = 0
    for dataset in _DATASETS:
        size = (
            max(SMALL_MIN_SAMPLES, round(dataset.size / SMALL_SHARE)) if small else dataset.size
        )
        # Regions differ: each dataset's factors are shifted a little.
        shift = 0.15 * _rng(seed, "shift", dataset.name).standard_normal(N_FACTORS)
        z = _rng(seed, "factors", dataset.name).standard_normal((size, N_FACTORS)) + shift
        labels = dataset.make_labels(z, _rng(seed, "labels", dataset.name))
        rows = np.arange(offset, offset + size)
        label_sets.append((dataset, rows, labels))
        factor_blocks.append(z)
        offset += size
    factors = np.concatenate(factor_blocks)
    ids = _make_ids(seed, len(factors))
    every_row = np.arange(len(factors))
    for flag, dataset in ((clouds, _CLOUDY), (nodata, _NODATA)):
        if flag:
            label_sets.append(
                (
                    dataset,
                    every_row,
                    dataset.make_labels(factors, _rng(seed, "labels", dataset.name)),
                )
            )

    for dataset, rows, labels in label_sets:
        # Label files list a dataset's samples in their own (not the submissions') order.
        order = _rng(seed, "label_order", dataset.name).permutation(rows)
        position = np.empty(len(factors), dtype=np.int64)
        position[rows] = np.arange(len(rows))
        for task, suffix in dataset.tasks:
            values = labels[task][position[order]]
            blank = dataset.empty_labels.get(task, 0)
            if small:
                blank = min(blank, 2)
            empty = _rng(seed, "empty", task).choice(len(order), size=blank, replace=False)
            _write_labels(labels_dir / f"{task}__{suffix}.csv", ids[order], values, suffix, empty)

    submissions: dict[str, Path] = {}
    for grade in GRADES:
        embedding = _embed(grade, factors, dim, _rng(seed, "embedding", grade))
        grade_ids = ids
        if grade == "weak":
            # Participants forget to strip the data-file suffix; the evaluator must cope.
            grade_ids = ids.copy()
            picked = _rng(seed, "zarr", grade).choice(
                len(ids), size=2 if small else 7, replace=False
            )
            grade_ids[picked] = [f"{sample_id}.zarr.zip" for sample_id in grade_ids[picked]]
        order = _rng(seed, "row_order", grade).permutation(len(ids))
        path = submissions_dir / f"{grade}.csv"
        _write_submission(path, grade_ids[order], embedding[order])
        submissions[grade] = path
    log.info(
        "demo challenge in %s: %d tasks, %d ids, %d dimensions, written in %.1f s",
        root,
        sum(len(dataset.tasks) for dataset, _, _ in label_sets),
        len(ids),
        dim,
        time.perf_counter() - started,
    )
    return DemoChallenge(root, labels_dir, submissions, dim)


def _stale(folder: Path, overwrite: bool) -> list[Path]:
    """The old CSVs that overwrite=True replaces; raises when the folder is not ours to clear."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return []
    if not overwrite:
        raise ConfigError(
            f"{folder} already exists and is not empty; choose another output folder or "
            "pass --overwrite to replace the demo files in it"
        )
    others = sorted(path.name for path in folder.iterdir() if path.suffix != ".csv")
    if others:
        raise ConfigError(
            f"{folder} holds files that are not demo CSVs ({', '.join(others[:5])}); "
            "move them away first"
        )
    # Every old CSV goes: a stale task file would otherwise join the regenerated challenge.
    return sorted(folder.glob("*.csv"))


def _rng(seed: int, *key: str) -> Rng:
    # One independent stream per purpose: adding a flag or a task leaves the other files unchanged.
    return np.random.default_rng([seed, *(zlib.crc32(part.encode()) for part in key)])


def _make_ids(seed: int, count: int) -> np.ndarray:
    ids = [
        hashlib.sha1(f"probeboard-demo:{seed}:{i}".encode()).hexdigest()[:20] for i in range(count)
    ]
    if len(set(ids)) != count:  # 80-bit prefixes: a collision would be a bug, not bad luck
        raise RuntimeError("demo id collision")
    return np.asarray(ids, dtype=object)


def _write_labels(
    path: Path, ids: np.ndarray, values: np.ndarray, suffix: str, empty: np.ndarray
) -> None:
    if suffix == "cls":
        text = [str(int(value)) for value in values]
    else:
        text = [f"{value:.6g}" for value in values]
    for row in empty:
        text[row] = ""  # the reader skips these rows and reports how many
    lines = [f"{sample_id},{label}\n" for sample_id, label in zip(ids, text, strict=True)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("id,label\n")
        handle.writelines(lines)


def _embed(grade: str, factors: np.ndarray, dim: int, rng: Rng) -> np.ndarray:
    n = len(factors)
    if grade == "baseline_random":
        return rng.standard_normal((n, dim))
    if grade == "baseline_mean":
        return _channel_means(factors, dim, rng)
    spec = _GRADES[grade]
    kept = factors[:, list(spec.kept)]
    blocks = [spec.gain * kept]
    # Small embeddings cannot hold many features: keep their number below `dim`.
    units = min(spec.hidden_units, dim // 4)
    if units:
        # A nonlinear encoder: random ReLU features of what it kept.
        weights = rng.standard_normal((len(spec.kept), units)) / np.sqrt(len(spec.kept))
        hidden = np.maximum(kept @ weights + 0.5 * rng.standard_normal(units), 0.0)
        hidden = (hidden - hidden.mean(0)) / (hidden.std(0) + 1e-9)
        # Weight the whole block like a few factors, however many units carry it.
        blocks.append(spec.gain * hidden * np.sqrt(len(spec.kept) / units))
    blocks.append(1.5 * rng.standard_normal((n, N_NUISANCE)))
    features = np.concatenate(blocks, axis=1)
    mixing = rng.standard_normal((features.shape[1], dim))
    signal = features @ mixing
    signal /= signal.std(0).mean()
    embedding = signal + spec.noise * rng.standard_normal((n, dim))
    # Real embedding columns have their own offsets and scales.
    scale = np.exp(0.4 * rng.standard_normal(dim))
    return embedding * scale + 0.3 * rng.standard_normal(dim)


def _channel_means(factors: np.ndarray, dim: int, rng: Rng) -> np.ndarray:
    """The mean-of-channels baseline: per-band means of the cube, zero-padded to `dim`."""
    n = len(factors)
    # 27 bands x 4 seasons at full size; a quarter of the columns when small.
    bands = min(108, dim // 4)
    # Band means mostly follow overall brightness and season; the factors show only faintly.
    brightness = rng.standard_normal((n, 1))
    faint = factors[:, [0, 4, 6, 7, 10]] @ rng.standard_normal((5, bands)) * 0.04
    level = rng.uniform(300.0, 3000.0, bands)
    spread = rng.uniform(0.1, 0.3, bands) * level
    means = level + spread * (brightness + faint + 0.8 * rng.standard_normal((n, bands)))
    embedding = np.zeros((n, dim))
    embedding[:, :bands] = np.round(means, 1)
    return embedding


def _round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """float32 copy of `values`, each rounded to `digits` significant decimal digits."""
    rounded = np.empty(values.shape, dtype=np.float32)
    # Blocks of rows stay in cache: about twice as fast as whole-matrix temporaries.
    for start in range(0, len(values), 512):
        block = values[start : start + 512]
        magnitude = np.abs(block)
        np.log10(magnitude, out=magnitude, where=magnitude != 0)
        scale = 10.0 ** (digits - 1 - np.floor(magnitude))
        rounded[start : start + 512] = np.round(block * scale) / scale
    return rounded


def _write_submission(path: Path, ids: np.ndarray, embedding: np.ndarray) -> None:
    started = time.perf_counter()
    # float32 holds any 6-significant-digit decimal exactly enough that Arrow's shortest
    # round-trip formatting prints it back with at most 6 digits (FLT_DIG = 6).
    columns = np.ascontiguousarray(_round_significant(embedding, SIGNIFICANT_DIGITS).T)
    names = ["id", *(str(j) for j in range(columns.shape[0]))]
    table = pa.table([pa.array(ids, type=pa.string()), *columns], names=names)
    with path.open("wb") as handle:
        # Arrow quotes header names; participants' files (pandas to_csv) do not.
        handle.write((",".join(names) + "\n").encode())
        pa_csv.write_csv(
            table, handle, pa_csv.WriteOptions(include_header=False, quoting_style="none")
        )
    log.info(
        "wrote %s (%d rows, %.1f MB) in %.1f s",
        path,
        len(ids),
        path.stat().st_size / 1e6,
        time.perf_counter() - started,
    )


def existing_demo(out: Path | str) -> DemoChallenge:
    """The demo challenge make_demo wrote to `out` earlier (checked, not regenerated)."""
    root = Path(out)
    submissions = {
        grade: root / "submissions" / f"{grade}.csv"
        for grade in GRADES
        if (root / "submissions" / f"{grade}.csv").is_file()
    }
    if not (root / "labels").is_dir() or not submissions:
        raise ProbeboardError(
            f"{root} holds no demo challenge (labels/ and submissions/); delete it or "
            "pick another folder"
        )
    with next(iter(submissions.values())).open(encoding="utf-8") as handle:
        dim = len(handle.readline().split(",")) - 1
    return DemoChallenge(root, root / "labels", submissions, dim)
