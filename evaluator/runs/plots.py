"""Optional per-task PNG plots of a run (`enable_plots: true`).

matplotlib is imported inside the functions so that importing this module stays cheap.
Figures are built with matplotlib.figure.Figure on an Agg canvas, never through pyplot:
no GUI backend, no global figure registry, so nothing leaks across many tasks and runs.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evaluator.scoring.metrics import confusion_matrix
from evaluator.scoring.results import EvaluationResult, TaskResult
from evaluator.support.jsonio import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
MAX_SCATTER_POINTS = 20_000  # K = 200 final-phase runs pool >200k points; a sample shows as much


def save_plots(result: EvaluationResult, run_dir: Path) -> list[Path]:
    """Write each task's plots into run_dir/<task>/; return the files written."""
    written: list[Path] = []
    for task in result.tasks:
        task_dir = Path(run_dir) / task.name
        task_dir.mkdir(parents=True, exist_ok=True)
        figures = {"loss": loss_figure(task)}
        if task.kind == "regression":
            figures["scatter"] = scatter_figure(task, normalised=result.config.normalize_labels)
        elif task.kind == "classification":
            figures["confusion"] = confusion_figure(task)
        for suffix, figure in figures.items():
            path = task_dir / f"{task.name}_{suffix}.png"
            _save(figure, path)
            written.append(path)
    return written


def loss_figure(task: TaskResult) -> Figure:
    """Training and test loss per epoch: mean over folds, 10-90 percentile band."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = _new_figure()
    drawn = False
    for label, loss, color in (
        ("training", task.train_loss, "tab:blue"),
        ("test", task.test_loss, "tab:orange"),
    ):
        loss = np.asarray(loss, dtype=np.float64)
        if loss.ndim != 2 or loss.size == 0:
            continue
        epochs = np.arange(1, loss.shape[1] + 1)
        with warnings.catch_warnings():
            # All-NaN epochs (every fold failed) give NaN gaps, not warnings.
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(loss, axis=0)
            low, high = np.nanpercentile(loss, [10, 90], axis=0)
        axes.plot(epochs, mean, color=color, marker="o", markersize=3, label=f"{label} (mean)")
        axes.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0,
                          label=f"{label} (10-90 percentile)")
        drawn = True
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(f"{task.name}: loss per epoch over {len(task.scores)} folds")
    if drawn:
        axes.legend()
    return figure


def scatter_figure(task: TaskResult, *, normalised: bool = True) -> Figure:
    """Selected-epoch test predictions against targets, pooled over folds, with y = x."""
    targets = np.asarray(task.test_targets, dtype=np.float64).ravel()
    predictions = np.asarray(task.test_predictions, dtype=np.float64).ravel()
    keep = np.isfinite(targets) & np.isfinite(predictions)  # a failed fold has no predictions
    targets, predictions = targets[keep], predictions[keep]
    total = len(targets)
    if total > MAX_SCATTER_POINTS:
        # Fixed seed: the same run always draws the same picture.
        chosen = np.random.default_rng(0).choice(total, MAX_SCATTER_POINTS, replace=False)
        targets, predictions = targets[chosen], predictions[chosen]

    figure, axes = _new_figure()
    dense = len(targets) > 2_000  # smaller, fainter dots once they start to overlap
    axes.scatter(targets, predictions, s=4 if dense else 12, alpha=0.25 if dense else 0.7,
                 linewidths=0, rasterized=True)
    if total:
        low = float(min(targets.min(), predictions.min()))
        high = float(max(targets.max(), predictions.max()))
    else:
        low, high = 0.0, 1.0
    axes.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1,
              label="y = x")
    shown = f"{len(targets)} of {total}" if total > len(targets) else f"{total}"
    axes.set_xlabel(f"target{' (normalised)' if normalised else ''}")
    axes.set_ylabel("prediction")
    axes.set_title(f"{task.name}: test predictions ({shown} points), mean R² = {task.mean:.3f}")
    axes.legend(loc="upper left")
    return figure


def confusion_figure(task: TaskResult) -> Figure:
    """Confusion matrix summed over folds, counts annotated."""
    matrix = confusion_matrix(task.test_targets, task.test_predictions)
    figure, axes = _new_figure(size=(5.6, 4.8))
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes)
    peak = matrix.max()
    for row in range(2):
        for column in range(2):
            count = int(matrix[row, column])
            axes.text(column, row, str(count), ha="center", va="center",
                      color="white" if peak and count > peak / 2 else "black")
    ticks = ["0 (negative)", "1 (positive)"]
    axes.set_xticks([0, 1], ticks)
    axes.set_yticks([0, 1], ticks)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(
        f"{task.name}: summed over {len(task.scores)} folds\nmean F1 = {task.mean:.3f}"
    )
    return figure


def _new_figure(size: tuple[float, float] = (6.4, 4.8)) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    figure.clear()  # drop the artists now rather than at the next garbage collection
    write_atomic(path, buffer.getvalue())
