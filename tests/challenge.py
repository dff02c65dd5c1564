"""Small generated challenges on disk (label folder + submission CSV) for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
