"""What a participant runs before uploading (`probeboard check-submission`): the file read
by the scoring rules, and report lines for the terminal, or the SubmissionError scoring
would give.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from evaluator.scoring.reader.submission import padded_matrix, read_submission, row_positions
from evaluator.support.errors import SubmissionError


def check_submission(
    path: Path | str,
    *,
    ids_file: Path | str | None = None,
    embedding_dim: int | None = None,
) -> list[str]:
    """What a participant runs before uploading: report lines, or SubmissionError."""
    path = Path(path)
    submission = read_submission(path, embedding_dim=embedding_dim)
    rows, width = submission.matrix.shape
    columns = submission.columns
    shown = ", ".join(columns) if width <= 4 else f"{columns[0]}, {columns[1]}, ..., {columns[-1]}"
    lines = [f"{path.name}: {rows} rows, {width} embedding columns ({shown})"]
    _, padding = padded_matrix(submission, embedding_dim)
    warnings = [*submission.warnings, *padding]
    lines += [f"WARNING: {warning}" for warning in warnings]
    if ids_file is not None:
        required = read_ids_file(ids_file)
        row_positions(submission, required)
        extra = rows - len(set(required.tolist()))
        note = f"; {extra} extra rows will be ignored" if extra else ""
        lines.append(f"all {len(required)} ids of {Path(ids_file).name} are present{note}")
    lines.append("OK: the submission can be scored" if not warnings else
                 f"The submission can be scored, but read the {len(warnings)} WARNING "
                 f"line{'s' if len(warnings) > 1 else ''} above before you upload it.")
    return lines


def read_ids_file(path: Path | str) -> np.ndarray:
    """Expected ids: a text file with one id per line, or a CSV with an `id` column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SubmissionError(
            "bad_ids_file",
            f"cannot read the id list {path} ({error}); pass a UTF-8 text file with one id per "
            "line or a CSV with an 'id' column.",
        ) from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        names = [name.strip() for name in next(csv.reader(lines[:1]), [])]
        if "id" in names:
            column = names.index("id")
            ids = [row[column].strip() for row in csv.reader(lines[1:]) if len(row) > column]
        else:
            ids = [line.strip() for line in lines]
    except csv.Error as error:
        raise SubmissionError("bad_ids_file", f"the id list {path} is not CSV: {error}") from None
    ids = [sample_id for sample_id in ids if sample_id]
    if not ids:
        raise SubmissionError("bad_ids_file", f"the id list {path} has no ids")
    return np.asarray(ids, dtype=object)

