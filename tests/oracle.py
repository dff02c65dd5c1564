"""A deliberately plain evaluation written straight from spec/protocol.md.

One fold at a time with torch's own DataLoader, SubsetRandomSampler, nn.Linear and AdamW,
torch's global generator seeded once. Used only by the tests and the benchmark to prove
that the fast engine computes the same numbers; never imported by probeboard itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import ShuffleSplit
from torch import nn
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset


@dataclass
class OracleTask:
    name: str
    classification: bool
    x: torch.Tensor  # [n, N] float32, standardised
    y: torch.Tensor  # [n] float32, normalised


def load(labels: Path, submission: Path) -> list[OracleTask]:
    """Protocol sections 1-2 with pandas: inner join on id (label order), global scalar
    standardisation over the label ids' rows, per-task min-max labels."""
    frames = []
    for path in sorted(labels.glob("*.csv")):
        name, kind = path.stem.split("__")
        frame = pd.read_csv(path, dtype={"id": str}).dropna(subset=["label"])
        frames.append(frame.assign(task=name, classification=kind == "cls"))
    annotations = pd.concat(frames)
    embeddings = pd.read_csv(submission, dtype={"id": str}).set_index("id")
    columns = sorted((c for c in embeddings.columns if c.isdigit()), key=int)
    embeddings = embeddings.loc[embeddings.index.intersection(set(annotations["id"])), columns]
    values = embeddings.to_numpy(dtype=np.float32)
    values = (values - values.mean()) / values.std()
    row = {sample_id: i for i, sample_id in enumerate(embeddings.index)}
    tasks = []
    for name, group in annotations.groupby("task", sort=True):
        labels_ = group["label"].to_numpy(dtype=np.float64)
        labels_ = (labels_ - labels_.min()) / (labels_.max() - labels_.min())
        x = values[[row[sample_id] for sample_id in group["id"]]]
        tasks.append(
            OracleTask(name, bool(group["classification"].iloc[0]),
                       torch.from_numpy(x), torch.from_numpy(labels_.astype(np.float32)))
        )
    return tasks


def r2(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """R^2 as the reference metric: float32, tss from the sum of squares."""
    total = targets.sum()
    tss = (targets * targets).sum() - total * (total / len(targets))
    rss = ((targets - predictions) ** 2).sum()
    return float(1 - rss / tss)


def f1(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """F1 of the positive class; outputs already in [0, 1] get no sigmoid."""
    if not bool(((outputs >= 0) & (outputs <= 1)).all()):
        outputs = outputs.sigmoid()
    predicted = outputs > 0.5
    truth = targets == 1
    tp = int((predicted & truth).sum())
    fp = int((predicted & ~truth).sum())
    fn = int((~predicted & truth).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def train_fold(task: OracleTask, train: np.ndarray, test: np.ndarray, *, epochs: int,
               batch_size: int, learning_rate: float) -> list[float]:
    """Per-epoch test scores of one fold."""
    dataset = TensorDataset(task.x, task.y)
    train_loader = DataLoader(dataset, batch_size=batch_size,
                              sampler=SubsetRandomSampler(train.tolist()))
    test_loader = DataLoader(dataset, batch_size=batch_size,
                             sampler=SubsetRandomSampler(test.tolist()))
    model = nn.Linear(task.x.shape[1], 1)
    loss_fn = nn.BCEWithLogitsLoss() if task.classification else nn.MSELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    scores = []
    for _ in range(epochs):
        for inputs, targets in train_loader:
            loss = loss_fn(model(inputs).view(-1), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        outputs, truths = [], []
        with torch.no_grad():
            for inputs, targets in test_loader:
                outputs.append(model(inputs).view(-1))
                truths.append(targets)
        metric = f1 if task.classification else r2
        scores.append(metric(torch.cat(outputs), torch.cat(truths)))
    return scores


def evaluate(tasks: list[OracleTask], *, folds: int, epochs: int, batch_size: int,
             learning_rate: float, seed: int = 42) -> dict[str, np.ndarray]:
    """[K, E] per-epoch test scores per task; s_k is the row maximum."""
    torch.manual_seed(seed)
    results = {}
    for task in tasks:
        splitter = ShuffleSplit(n_splits=folds, test_size=0.1, random_state=seed)
        results[task.name] = np.array([
            train_fold(task, train, test, epochs=epochs, batch_size=batch_size,
                       learning_rate=learning_rate)
            for train, test in splitter.split(np.arange(len(task.y)))
        ])
    return results
