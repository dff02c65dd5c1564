"""The participant's submission CSV: read fast, or rejected with a message that says where.

Two readers share one set of rules (spec/protocol.md section 1): the fast reader (fast.py)
and the slow reader that defines them (slow.py). Both report the first problem in file
order, so a file gets the same verdict from either.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numba
import numpy as np

from evaluator.scoring.reader import fast, slow
from evaluator.scoring.reader.ids import IdTable
from evaluator.scoring.reader.messages import show
from evaluator.scoring.reader.slow import Layout, Rows, check_dim
from evaluator.support.errors import SubmissionError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30

ZARR_FLAG = "zarr_zip_not_removed_from_id_column"


@dataclass
class Submission:
    """A parsed submission: one row per id, embedding columns in matrix order."""

    _table: IdTable  # the ids, suffix-stripped, file order (row_positions looks them up)
    matrix: np.ndarray  # float32, C-contiguous, [rows, embedding columns as found in file]
    columns: list[str]  # embedding column names in matrix order
    warnings: list[str] = field(default_factory=list)  # for the participant's stdout
    flags: dict[str, bool] = field(default_factory=dict)  # machine-readable, e.g. ZARR_FLAG

    def __len__(self) -> int:
        return len(self._table)

    @cached_property
    def ids(self) -> np.ndarray:
        """Object array of str, suffix-stripped, file order; made on first use (scoring
        looks its ids up in the table: a str per row is a third of reading a narrow file)."""
        return self._table.ids()


def read_submission(
    path: Path | str,
    *,
    embedding_dim: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Submission:
    """Parse and check a submission CSV; every problem raises SubmissionError.

    `embedding_dim` only rejects files with more embedding columns than that; padding a
    narrower matrix is `padded_matrix`'s job (it returns the warning).
    """
    path = Path(path)
    started = time.perf_counter()
    size = _checked_size(path, max_bytes)
    try:
        parsed = fast.read(path, size, embedding_dim)
        reader = "fast"
        if parsed is None:
            reader = "slow"
            parsed = slow.read(path, embedding_dim)
    except SubmissionError:
        raise
    except MemoryError:
        raise SubmissionError(
            "file_too_large",
            "the submission does not fit in the evaluator's memory; send one row per sample "
            "and only the embedding columns.",
        ) from None
    except Exception as error:
        # A bug here must not crash the daemon or show a traceback to the participant;
        # the log keeps the traceback for us.
        log.exception("unexpected failure while reading submission %s", path)
        raise SubmissionError(
            "internal_error",
            "the submission could not be read (an internal error, not necessarily a problem "
            "with your file). Check that it is a comma-separated UTF-8 text file with a header "
            "row and an 'id' column; if it is, please report this to the organisers.",
        ) from error
    layout, rows, matrix = parsed
    submission = _finish(layout, rows, matrix)
    log.info(
        "read submission %s: %d rows x %d columns in %.2f s (%s reader)",
        path.name,
        matrix.shape[0],
        matrix.shape[1],
        time.perf_counter() - started,
        reader,
    )
    return submission


def padded_matrix(
    submission: Submission, embedding_dim: int | None
) -> tuple[np.ndarray, list[str]]:
    """The matrix widened with zero columns on the right to `embedding_dim`, and a warning.

    Zero-padding is the reference tool's behaviour; more columns than `embedding_dim` is an
    error. `None` means "as found in the file".
    """
    matrix = submission.matrix
    found = matrix.shape[1]
    if embedding_dim is None or embedding_dim == found:
        return matrix, []
    check_dim(found, embedding_dim)
    padded = np.zeros((matrix.shape[0], embedding_dim), dtype=np.float32)
    padded[:, :found] = matrix
    warning = (
        f"the submission has {found} embedding columns, fewer than the {embedding_dim} this "
        f"challenge expects: columns {found}..{embedding_dim - 1} are scored as zeros (as the "
        "reference tool does), which lowers the scores. Add the missing columns."
    )
    return padded, [warning]


def row_positions(submission: Submission, required_ids: np.ndarray) -> np.ndarray:
    """Row of each required id in the submission (int64); extra submission rows are ignored."""
    required = np.asarray(required_ids, dtype=object).ravel()
    positions = submission._table.rows_of(required.tolist())
    if (positions < 0).any():
        missing = list(dict.fromkeys(required[positions < 0].tolist()))
        examples = ", ".join(show(str(sample_id)) for sample_id in missing[:5])
        raise SubmissionError(
            "missing_ids",
            f"{len(missing)} required id(s) are missing from the submission (for example "
            f"{examples}). Add one row for every sample of the challenge's id list; ids are "
            "compared exactly (case, leading zeros), after removing a .zarr.zip or .zarr "
            "suffix.",
        )
    return positions


def _checked_size(path: Path, max_bytes: int) -> int:
    """Size from the file system, so that an oversized upload is never read."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise SubmissionError(
            "unreadable", f"cannot open the submission {path.name}: {error.strerror}."
        ) from None
    if not path.is_file():
        raise SubmissionError("unreadable", f"the submission {path.name} is not a file.")
    if size > max_bytes:
        raise SubmissionError(
            "file_too_large",
            f"the submission is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit. "
            "Send one row per sample and only the id and embedding columns; 6 significant "
            "digits per value (e.g. -0.123456) are plenty for float32 embeddings.",
        )
    if size == 0:
        raise SubmissionError(
            "empty_file", "the submission file is empty; it needs a header row and data rows."
        )
    return size


def _finish(layout: Layout, rows: Rows, matrix: np.ndarray) -> Submission:
    if matrix.shape[0] == 0:
        raise SubmissionError(
            "empty_file",
            "the submission has a header row but no data rows; add one row per sample.",
        )
    if _is_constant(matrix.reshape(-1)):
        raise SubmissionError(
            "constant_matrix",
            f"every embedding value in the submission equals {float(matrix[0, 0]):g}. A constant "
            "embedding carries no information, so no probe can learn from it; check that "
            "you exported the real embeddings (not a placeholder or an all-zero array).",
        )
    suffixed, suffixed_ids = rows.suffixed()
    warnings = []
    if suffixed:
        examples = ", ".join(show(sample_id) for sample_id in suffixed_ids)
        warnings.append(
            f"{suffixed} of {len(rows)} ids ended in .zarr.zip or .zarr (e.g. "
            f"{examples}); the suffix was removed. Remove it from the id column yourself to "
            "silence this warning."
        )
    if layout.ignored:
        shown = ", ".join(show(name) for name in layout.ignored[:5])
        more = f" and {len(layout.ignored) - 5} more" if len(layout.ignored) > 5 else ""
        warnings.append(
            f"{len(layout.ignored)} column(s) are neither 'id' nor an embedding column (named "
            f"by digits) and were ignored: {shown}{more}."
        )
    return Submission(
        _table=rows.table,
        matrix=matrix,
        columns=layout.columns,
        warnings=warnings,
        flags={ZARR_FLAG: suffixed > 0},
    )


@numba.njit(cache=True, nogil=True)
def _is_constant(values: np.ndarray) -> bool:
    """Stops at the first differing value, unlike min() == max()."""
    for value in values:  # noqa: SIM110 - numba compiles loops, not generator expressions
        if value != values[0]:
            return False
    return True

