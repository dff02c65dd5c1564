"""The standalone run folder, laid out like the reference tool's, and the terminal table.

    OUTPUT_DIR/PHASE/<method_name>_<YYYYMMDD_HHMMSS>/
        results_summary.json
        <task>/<task>_result.json
        <task>/<task>_loss.png ...        (only with enable_plots)
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from evaluator.scoring.results import EvaluationResult, TaskResult
from evaluator.support.errors import ConfigError, LabelError, ProbeboardError
from evaluator.support.jsonio import code_version, write_json

SUMMARY_FILE = "results_summary.json"
MAX_NAME_LENGTH = 100
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
# What results_summary.json's "seconds" measures (engine.score_submission's clock).
SECONDS_COVER = (
    "wall time of scoring the submission: reading and checking the file, preparing it, and "
    "training and scoring every task's probes (not writing these result files)"
)
# Printed under the per-task table; README.md's "Reading the results" repeats these words.
TABLE_LEGEND = (
    "Q: the quality score, 2 * mean / (std + 0.02), higher is better (< 0: worse than the mean)",
    "mean: the mean fold score, R² for regression tasks or F1 for classification",
    "std: the spread of the fold scores across folds; failed: folds with no score, out of K",
)


def write_run(
    result: EvaluationResult,
    *,
    output_dir: Path,
    phase: str,
    method_name: str,
    now: datetime | None = None,
) -> Path:
    """Write one run's JSON files (and plots when enabled); return the run folder."""
    check_name(method_name, "--method_name")
    check_name(phase, "--phase")
    for task in result.tasks:
        # Task names come from label file names and become folder names too.
        check_name(task.name, "task name (from its label file name)", error=LabelError)
    stamp = (now or datetime.now()).strftime(TIMESTAMP_FORMAT)
    phase_dir = Path(output_dir) / phase
    phase_dir.mkdir(parents=True, exist_ok=True)
    run_dir = _claim_run_dir(phase_dir, f"{method_name}_{stamp}")

    fold_scores = result.config.output_fold_results
    for task in result.tasks:
        task_dir = run_dir / task.name
        task_dir.mkdir()
        write_json(task_dir / f"{task.name}_result.json", task_record(task, fold_scores))
    # The summary goes last: the reference's leaderboard aggregation globs for it, so a
    # run that crashed half-way is never counted.
    write_json(run_dir / SUMMARY_FILE, summary_record(result, experiment=run_dir.name, now=now))

    if result.config.enable_plots:
        from evaluator.runs.plots import save_plots  # matplotlib only when plots are asked for

        save_plots(result, run_dir)
    return run_dir


def summary_record(
    result: EvaluationResult, *, experiment: str, now: datetime | None = None
) -> dict[str, Any]:
    """results_summary.json: the reference's six keys first, probeboard's extras after."""
    return {
        "experiment": experiment,
        "overall_q_score": _mean([task.quality for task in result.tasks]),
        "overall_acc_score": _mean([task.mean for task in result.tasks]),
        "task_q_scores": {task.name: task.quality for task in result.tasks},
        "task_acc_scores": {task.name: task.mean for task in result.tasks},
        "config": result.config.to_dict(),
        "embedding_dim": result.embedding_dim,
        "warnings": list(result.warnings),
        "flags": dict(result.flags),
        "seconds": result.seconds,
        "seconds_covers": SECONDS_COVER,
        "created": (now or datetime.now()).isoformat(timespec="seconds"),
        "probeboard_version": code_version(),
    }


def task_record(task: TaskResult, fold_scores: bool) -> dict[str, Any]:
    """<task>_result.json: the reference's keys (q_t only on request), then extras."""
    record: dict[str, Any] = {
        "q_stat": task.quality,
        "mean_score": task.mean,
        "std_dev": task.std,
        "hyperparameters": task.hyperparameters,
    }
    if fold_scores:
        record["q_t"] = task.scores  # the reference's name for the per-fold scores s_k
        record["selected_epoch"] = task.selected_epoch
    record.update(
        failed_folds=task.failed_folds,
        samples=task.samples,
        kind=task.kind,
        metrics=task.metrics,
    )
    return record


def format_table(result: EvaluationResult) -> str:
    """Fixed-width per-task table with a closing mean row and a legend, as `probeboard
    evaluate` prints."""
    width = max([len("task"), len("mean"), *(len(task.name) for task in result.tasks)])
    header = (
        f"{'task':<{width}}  {'type':<14}  {'samples':>7}  {'Q':>9}  {'mean':>9}  "
        f"{'std':>9}  {'failed':>7}"
    )
    lines = [header, "-" * len(header)]
    for task in result.tasks:
        failed = f"{task.failed_folds}/{len(task.scores)}"
        lines.append(
            f"{task.name:<{width}}  {task.kind:<14}  {task.samples:>7d}  "
            f"{_number(task.quality):>9}  {_number(task.mean):>9}  {_number(task.std):>9}  "
            f"{failed:>7}"
        )
    lines.append("-" * len(header))
    overall_q = _mean([task.quality for task in result.tasks])
    overall_mean = _mean([task.mean for task in result.tasks])
    lines.append(
        f"{'mean':<{width}}  {f'{len(result.tasks)} tasks':<14}  {'':>7}  "
        f"{_number(overall_q):>9}  {_number(overall_mean):>9}"
    )
    lines.extend(("", *TABLE_LEGEND))
    return "\n".join(line.rstrip() for line in lines)


def check_name(value: object, flag: str, *, error: type[ProbeboardError] = ConfigError) -> None:
    """Reject a value that is unsafe as one folder name; the message names the flag."""
    problem = _name_problem(value)
    if problem is None:
        return
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise error(
        f"{flag} {shown} cannot be used as a folder name: it {problem}; use a short name "
        f"of letters, digits, '-', '_' and '.' (not first), at most {MAX_NAME_LENGTH} "
        "characters, e.g. my_encoder_v2"
    )


def _name_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "is empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"is {len(value)} characters long"
    if "/" in value or "\\" in value:
        return "contains a path separator"
    if ".." in value:
        return "contains '..'"
    if value.startswith("."):
        return "starts with '.' (a hidden folder)"
    if not value.isprintable():  # NUL, newlines, other control and invisible characters
        return "contains a control character"
    return None


def _claim_run_dir(phase_dir: Path, experiment: str) -> Path:
    """Create a fresh run folder: `name`, else `name_2`, `name_3`, ... never an existing one."""
    suffix = 1
    while True:
        candidate = phase_dir / (experiment if suffix == 1 else f"{experiment}_{suffix}")
        try:
            # mkdir without exist_ok is the atomic claim: two concurrent runs in the same
            # second cannot both get the same folder.
            candidate.mkdir()
        except FileExistsError:
            suffix += 1
            continue
        return candidate


def _mean(values: list[float]) -> float:
    # NaN propagates on purpose: a NaN task makes the run unrankable (written as null).
    return float(np.mean(values)) if values else math.nan


def _number(value: float) -> str:
    return f"{float(value):.3f}"  # nan / inf print as such
