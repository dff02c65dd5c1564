"""Optional PNG plots: files exist, are real PNGs, and the confusion rule matches the metric's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluator.runs.folders import write_run
from evaluator.runs.plots import save_plots
from evaluator.scoring.metrics import confusion_matrix
from tests.builders import NOW, make_result

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 2_000, path  # an actual picture, not an empty canvas stub


def test_enable_plots_writes_pngs_per_task_kind(tmp_path: Path) -> None:
    result = make_result(enable_plots=True)
    run_dir = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    expected = [
        "biomass_mean/biomass_mean_loss.png",
        "biomass_mean/biomass_mean_scatter.png",
        "clouds/clouds_confusion.png",
        "clouds/clouds_loss.png",
    ]
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.png")) == expected
    for name in expected:
        assert_png(run_dir / name)
    assert not list(run_dir.rglob("*.tmp"))


def test_save_plots_returns_the_files_and_leaks_no_figures(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    result = make_result()
    before = plt.get_fignums()
    written = save_plots(result, tmp_path)
    assert sorted(written) == sorted(tmp_path.rglob("*.png"))
    assert len(written) == 4
    assert plt.get_fignums() == before  # nothing registered with pyplot


def test_failed_folds_and_nan_losses_still_plot(tmp_path: Path) -> None:
    result = make_result()
    for task in result.tasks:
        task.train_loss[3, :] = np.nan  # a failed fold
        task.test_loss[:, 0] = np.nan  # an epoch with no test loss at all
        task.test_predictions[3, :] = np.nan
    for path in save_plots(result, tmp_path):
        assert_png(path)


def test_confusion_matrix_uses_the_reference_threshold_rule() -> None:
    targets = np.array([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    outputs = np.array([
        [0.2, 0.7, 0.4, 0.6],  # all in [0, 1]: probabilities, positive above 0.5
        [-0.3, 0.4, -1.2, 2.0],  # outside [0, 1]: logits, positive above 0
    ])
    assert confusion_matrix(targets[:1], outputs[:1]).tolist() == [[1, 1], [1, 1]]
    assert confusion_matrix(targets[1:], outputs[1:]).tolist() == [[1, 1], [1, 1]]
    # Fold 2's 0.4 counts as positive (logit rule) though it would be negative in fold 1.
    summed = confusion_matrix(targets, outputs)
    assert summed.tolist() == [[2, 2], [2, 2]]
    assert summed.sum() == targets.size


def test_confusion_matrix_skips_missing_predictions() -> None:
    targets = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    outputs = np.array([[0.9, np.nan, 0.1], [np.nan, np.nan, np.nan]])
    assert confusion_matrix(targets, outputs).tolist() == [[0, 0], [1, 1]]


@pytest.mark.parametrize("module", ["evaluator.runs.plots", "evaluator.runs.folders"])
def test_importing_does_not_import_matplotlib(module: str) -> None:
    code = f"import sys, {module}; print('matplotlib' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    assert output.stdout.strip() == "False"
