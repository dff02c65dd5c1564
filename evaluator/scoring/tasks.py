"""The label folder: one `<task>__<type>.csv` (columns id,label) per downstream task."""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from evaluator.support.errors import ConfigError, LabelError

log = logging.getLogger(__name__)

TaskKind = Literal["regression", "classification"]

KIND_BY_SUFFIX: dict[str, TaskKind] = {
    "regr": "regression",
    "regression": "regression",
    "cls": "classification",
    "classification": "classification",
}


@dataclass(frozen=True)
class Task:
    """One downstream task: ids in the label file's row order, labels in real units."""

    name: str
    kind: TaskKind
    ids: np.ndarray  # str objects, label-file order
    labels: np.ndarray  # float64
    skipped: int = 0  # rows with an empty label

    def __len__(self) -> int:
        return len(self.ids)


def read_tasks(folder: Path | str) -> list[Task]:
    """Every task of the folder, sorted by name (the order used everywhere)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabelError(
            f"label folder {folder} does not exist or is not a folder; pass the folder that "
            "holds the <task>__<type>.csv files"
        )
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        raise LabelError(
            f"label folder {folder} has no .csv files; each task needs a file named "
            "<task>__regr.csv or <task>__cls.csv with columns id,label"
        )
    tasks = [read_task(path) for path in paths]
    tasks.sort(key=lambda task: task.name)
    names = [task.name for task in tasks]
    for name in {name for name in names if names.count(name) > 1}:
        raise LabelError(f"task {name!r} has more than one label file in {folder}; keep one")
    return tasks


def select_tasks(tasks: list[Task], task_filter: tuple[str, ...] | None) -> list[Task]:
    ordered = sorted(tasks, key=lambda task: task.name)
    if task_filter is None:
        return ordered
    unknown = sorted(set(task_filter) - {task.name for task in tasks})
    if unknown:
        raise ConfigError(
            f"task_filter names task(s) not in the label folder: {', '.join(unknown)}; "
            f"available: {', '.join(task.name for task in ordered)}"
        )
    return [task for task in ordered if task.name in task_filter]


def read_task(path: Path) -> Task:
    name, kind = _parse_file_name(path)
    ids: list[str] = []
    labels: list[float] = []
    skipped = 0
    seen: set[str] = set()
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            missing = [column for column in ("id", "label") if column not in fields]
            if missing:
                raise LabelError(
                    f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                    f"id,label (found {','.join(fields) or 'nothing'})"
                )
            for line, row in enumerate(reader, start=2):
                raw = (row["label"] or "").strip()
                if not raw:
                    skipped += 1
                    continue
                sample_id = (row["id"] or "").strip()
                if not sample_id:
                    raise LabelError(f"{path}, line {line}: empty id; every row needs an id")
                if sample_id in seen:
                    raise LabelError(
                        f"{path}, line {line}: id {sample_id!r} appears twice; keep one row per id"
                    )
                seen.add(sample_id)
                value = _parse_label(raw, path, line, kind)
                ids.append(sample_id)
                labels.append(value)
    except UnicodeDecodeError as error:
        raise LabelError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8 CSV") from None
    if len(ids) < 10:
        raise LabelError(
            f"{path}: only {len(ids)} labelled rows; a task needs at least 10 so that every "
            "fold has a test set"
        )
    label_array = np.asarray(labels, dtype=np.float64)
    if label_array.min() == label_array.max():
        raise LabelError(
            f"{path}: every label equals {label_array[0]:g}; a constant task cannot be "
            "scored (its labels cannot be normalised); fix or remove the file"
        )
    if skipped:
        log.info("task %s: skipped %d rows with an empty label", name, skipped)
    return Task(name, kind, np.asarray(ids, dtype=object), label_array, skipped)


def _parse_file_name(path: Path) -> tuple[str, TaskKind]:
    name, separator, suffix = path.stem.rpartition("__")
    kind = KIND_BY_SUFFIX.get(suffix.lower())
    if not separator or not name or kind is None:
        raise LabelError(
            f"{path.name}: label files are named <task>__<type>.csv with type regr, cls, "
            "regression or classification (e.g. biomass_mean__regr.csv); rename it"
        )
    return name, kind


def _parse_label(raw: str, path: Path, line: int, kind: TaskKind) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise LabelError(f"{path}, line {line}: label {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError(f"{path}, line {line}: label {raw!r} is not finite")
    if kind == "classification" and value not in (0.0, 1.0):
        raise LabelError(
            f"{path}, line {line}: label {raw!r} of a classification task must be 0 or 1"
        )
    return value
