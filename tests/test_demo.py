"""The generated demo challenge: label folder, submissions, determinism, graded quality."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import ShuffleSplit

from evaluator.runs.demo import GRADES, SMALL_EMBEDDING_DIM, DemoChallenge, make_demo
from evaluator.scoring.config import EvaluationConfig
from evaluator.scoring.engine import score_submission
from evaluator.scoring.tasks import Task, read_tasks
from evaluator.support.errors import ConfigError

# Small-mode sizes: half the published ones (13,260 ids).
DATASETS = {
    "biomass": (1208, ("biomass_mean", "biomass_std")),
    "crops": (1678, ("crops",)),
    "landcover": (2346, ("landcover_agriculture", "landcover_forest")),
    "heatisland": (830, ("heatisland_mean", "heatisland_std")),
    "clouds": (570, ("clouds_cover", "clouds_opaque")),
}
N_IDS = sum(size for size, _ in DATASETS.values())
CLASSIFICATION = {"crops", "clouds_opaque"}
BLANK = {"biomass_std": 2, "landcover_forest": 2, "heatisland_std": 2}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoChallenge:
    return make_demo(tmp_path_factory.mktemp("demo"), small=True, seed=0)


@pytest.fixture(scope="module")
def tasks(demo: DemoChallenge) -> dict[str, Task]:
    return {task.name: task for task in read_tasks(demo.labels)}


def label_file(demo: DemoChallenge, task: str) -> Path:
    return demo.labels / f"{task}__{'cls' if task in CLASSIFICATION else 'regr'}.csv"


def raw_ids(path: Path) -> list[str]:
    """Every id of a label file, blank-label rows included."""
    with path.open(newline="") as handle:
        return [row["id"] for row in csv.DictReader(handle)]


def read_submission(path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path, dtype={"id": str})
    return frame["id"].to_numpy(dtype=object), frame.iloc[:, 1:].to_numpy(dtype=np.float64)


def test_label_folder_has_the_final_phase_tasks(
    demo: DemoChallenge, tasks: dict[str, Task]
) -> None:
    names = [name for _, names in DATASETS.values() for name in names]
    assert list(tasks) == sorted(names)
    for name, task in tasks.items():
        assert task.kind == ("classification" if name in CLASSIFICATION else "regression")
        assert label_file(demo, name).is_file()
    assert demo.embedding_dim == SMALL_EMBEDDING_DIM


def test_datasets_share_ids_and_blank_labels_are_skipped(
    demo: DemoChallenge, tasks: dict[str, Task]
) -> None:
    seen: set[str] = set()
    for size, names in DATASETS.values():
        id_sets = [set(raw_ids(label_file(demo, name))) for name in names]
        assert all(ids == id_sets[0] for ids in id_sets)
        assert len(id_sets[0]) == size
        assert not id_sets[0] & seen  # datasets cover disjoint samples
        seen |= id_sets[0]
        for name in names:
            task = tasks[name]
            assert task.skipped == BLANK.get(name, 0)
            assert len(task) + task.skipped == size
            assert set(task.ids) <= id_sets[0]
    assert len(seen) == N_IDS < 7000


def test_labels_are_in_real_units(tasks: dict[str, Task]) -> None:
    for name in CLASSIFICATION:
        labels = tasks[name].labels
        assert set(np.unique(labels)) == {0.0, 1.0}
        assert 0.03 < labels.mean() < 0.4  # imbalanced: positives are the minority
    assert tasks["biomass_mean"].labels.min() > 0  # t/ha, right-skewed
    biomass = tasks["biomass_mean"].labels
    assert biomass.mean() > np.median(biomass)
    for name in ("landcover_agriculture", "landcover_forest", "clouds_cover"):
        labels = tasks[name].labels
        assert labels.min() == 0.0 and labels.max() <= 1.0
        assert (labels == 0).mean() > 0.3  # mostly-zero fractions
    assert 15 < tasks["heatisland_mean"].labels.mean() < 45  # °C


def test_submissions_hold_every_id_once(demo: DemoChallenge) -> None:
    all_ids = {sample_id for path in demo.labels.glob("*.csv") for sample_id in raw_ids(path)}
    assert list(demo.submissions) == list(GRADES)
    for grade, path in demo.submissions.items():
        header = path.read_text().split("\n", 1)[0]
        assert header == ",".join(["id", *map(str, range(SMALL_EMBEDDING_DIM))])
        ids, matrix = read_submission(path)
        stripped = [sample_id.removesuffix(".zarr.zip") for sample_id in ids]
        assert len(stripped) == len(set(stripped)) == N_IDS
        assert set(stripped) == all_ids
        assert matrix.shape == (N_IDS, SMALL_EMBEDDING_DIM)
        assert np.isfinite(matrix).all()
        suffixed = sum(sample_id != plain for sample_id, plain in zip(ids, stripped, strict=True))
        # Only the weak participant forgot to strip the data-file suffix.
        assert (suffixed > 0) == (grade == "weak")


def test_cells_have_at_most_six_significant_digits(demo: DemoChallenge) -> None:
    with demo.submissions["strong"].open() as handle:
        next(handle)
        cells = [
            cell
            for line, _ in zip(handle, range(50), strict=False)
            for cell in line.rstrip("\n").split(",")[1:]
        ]
    for cell in cells:
        digits = cell.lstrip("-").replace(".", "").lstrip("0").split("e")[0].rstrip("0")
        assert len(digits) <= 6, cell


def test_same_seed_same_bytes_other_seed_other_files(tmp_path: Path, demo: DemoChallenge) -> None:
    again = make_demo(tmp_path / "again", small=True, seed=0)
    other = make_demo(tmp_path / "other", small=True, seed=1)
    for name in sorted(path.name for path in demo.labels.iterdir()):
        assert (again.labels / name).read_bytes() == (demo.labels / name).read_bytes()
        assert (other.labels / name).read_bytes() != (demo.labels / name).read_bytes()
    for grade, path in demo.submissions.items():
        assert again.submissions[grade].read_bytes() == path.read_bytes()
        assert other.submissions[grade].read_bytes() != path.read_bytes()


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    first = make_demo(tmp_path / "out", small=True, clouds=True, nodata=True)
    assert {task.name for task in read_tasks(first.labels)} >= {"cloudy", "nodata"}
    with pytest.raises(ConfigError, match="--overwrite"):
        make_demo(tmp_path / "out", small=True)
    again = make_demo(tmp_path / "out", small=True, overwrite=True)
    # The optional tasks of the first run must not linger in the regenerated folder.
    assert len(read_tasks(again.labels)) == 9
    # A file that is not ours: refuse, and delete nothing in either folder.
    (again.root / "submissions" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not demo CSVs"):
        make_demo(tmp_path / "out", small=True, overwrite=True)
    assert len(read_tasks(again.labels)) == 9
    assert all(path.is_file() for path in again.submissions.values())


def test_optional_tasks_cover_every_id(tmp_path: Path) -> None:
    demo = make_demo(tmp_path, small=True, clouds=True, nodata=True)
    tasks = {task.name: task for task in read_tasks(demo.labels)}
    assert len(tasks) == 11
    assert tasks["cloudy"].kind == "classification"
    assert tasks["nodata"].kind == "regression"
    for name in ("cloudy", "nodata"):
        assert len(tasks[name]) == N_IDS
    assert (tasks["nodata"].labels == 0).mean() > 0.5
    # The optional tasks leave every other file as it was.
    plain = make_demo(tmp_path / "plain", small=True)
    for path in plain.labels.iterdir():
        assert (demo.labels / path.name).read_bytes() == path.read_bytes()
    assert demo.submissions["strong"].read_bytes() == plain.submissions["strong"].read_bytes()


def ridge_r2(path: Path, tasks: list[Task], folds: int = 10) -> float:
    """Mean R^2 of closed-form ridge over shuffle splits: a quick stand-in for the probe."""
    ids, matrix = read_submission(path)
    matrix = (matrix - matrix.mean()) / matrix.std()  # one global scalar, as the protocol does
    row = {sample_id.removesuffix(".zarr.zip"): i for i, sample_id in enumerate(ids)}
    scores = []
    for task in tasks:
        x = matrix[[row[sample_id] for sample_id in task.ids]]
        y = (task.labels - task.labels.min()) / np.ptp(task.labels)
        for train, test in ShuffleSplit(folds, test_size=0.1, random_state=42).split(x):
            predicted = Ridge(alpha=1.0).fit(x[train], y[train]).predict(x[test])
            total = ((y[test] - y[test].mean()) ** 2).sum()
            if total == 0:  # an all-zero test fold: the evaluator counts it as a failed fold
                continue
            scores.append(1 - ((predicted - y[test]) ** 2).sum() / total)
    return float(np.mean(scores))


def test_grades_are_ordered(demo: DemoChallenge, tasks: dict[str, Task]) -> None:
    regression = [task for task in tasks.values() if task.kind == "regression"]
    r2 = {grade: ridge_r2(demo.submissions[grade], regression) for grade in GRADES}
    assert r2["strong"] > r2["weak"] + 0.1
    assert r2["weak"] > r2["baseline_random"] + 0.2
    assert r2["baseline_mean"] < 0.1
    assert r2["baseline_random"] < 0


@pytest.mark.parametrize("settings", [{}, {"k_folds": 5, "epochs": 3}], ids=["default", "k5e3"])
def test_default_probe_ranks_the_grades(demo: DemoChallenge, settings: dict[str, int]) -> None:
    # The small demo is what a newcomer scores first: with the challenge's own settings
    # (linear probe, 40 folds, 20 epochs) it must rank the grades as they were built.
    config = EvaluationConfig(**settings)
    mean_q = {
        grade: score_submission(demo.labels, path, config, threads=2).mean_quality
        for grade, path in demo.submissions.items()
    }
    encoders = [mean_q[grade] for grade in ("strong", "medium", "weak")]
    baselines = [mean_q["baseline_mean"], mean_q["baseline_random"]]
    if settings:  # three epochs over five folds: the encoders still beat both baselines
        assert min(encoders) > max(baselines), mean_q
        return
    assert encoders == sorted(encoders, reverse=True), mean_q
    assert min(encoders) > max(baselines), mean_q
    assert mean_q["strong"] > 5, mean_q
