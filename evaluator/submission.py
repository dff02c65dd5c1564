"""The participant's submission CSV: read fast, or rejected with a message that says where.

Two readers share one set of rules (spec/protocol.md section 1):

* the fast reader, numba kernels over blocks of up to 8 MB (submission_scan: the bytes,
  submission_ids: the ids), handles records quoted or not (a quoted id may hold line
  breaks), any line break, and decimal numbers. Any record it is unsure about is handed,
  on its own, to the Python rules below (csv reads one that spans lines, as the slow reader
  would, as it reads a header that spans lines; one still open past a row's limit, such as
  a quote never closed, is read by csv from the file up to the rule it breaks).
* the slow reader, Python's csv module, accepts every CSV dialect detail and defines the
  semantics: a cell's value is float32(float(text)).

Both report the first problem in file order, so a file gets the same verdict from either.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numba
import numpy as np

from evaluator import submission_scan as scan
from evaluator.errors import SubmissionError
from evaluator.submission_ids import MAX_ID_CHARS, ZARR_SUFFIXES, IdTable
from evaluator.submission_scan import MAX_CELL_CHARS

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30
ZARR_FLAG = "zarr_zip_not_removed_from_id_column"

# Limits far above any sane submission (the published one: 1,025 columns, ~7 KB lines,
# 64-character ids), so that a hostile file is refused the moment it crosses one instead of
# holding a worker: every check below costs time linear in the bytes seen so far.
MAX_COLUMNS = 65_536  # header fields in all: id, embedding and ignored columns
_BYTES_PER_COLUMN = 128  # a line may use this much per header field, plus _LINE_SLACK
_LINE_SLACK = 4_096  # room for a long (multi-byte) id
_MAX_HEADER_BYTES = _LINE_SLACK + _BYTES_PER_COLUMN * MAX_COLUMNS  # ~8.4 MB

_BLOCK_BYTES = 8 << 20  # two in use (one parsed, one collected); fewer, larger: fewer launches
_MAX_SHOWN = 40  # characters of a participant's value quoted back in a message

# A cell the rules accept: a decimal number, or NaN/inf (accepted here, rejected as
# not finite later so that the message can say so). Python's float() also takes "1_000"
# and non-ASCII digits; a CSV of embeddings should not.
_NUMBER = r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*"
_NOT_FINITE = r"[ \t]*[+-]?(?i:nan|inf|infinity)[ \t]*"
_CELL = f"(?:{_NUMBER}|{_NOT_FINITE})"
_CELL_RE = re.compile(_CELL)
_CELLS_RE = re.compile(f"{_CELL}(?:\n{_CELL})*")  # cells joined with "\n"
_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8


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


@dataclass(frozen=True)
class _Layout:
    """What the header says: which field is the id, which fields feed which column."""

    names: list[str]  # every header field, stripped
    line: int  # where the header is: line 1 unless blank lines come first
    id_field: int
    fields: list[int]  # header field index of each embedding column, matrix order
    ignored: list[str]  # header names used neither as id nor as embedding column

    @property
    def columns(self) -> list[str]:
        return [self.names[index] for index in self.fields]

    @property
    def max_line_bytes(self) -> int:
        """The longest data line (without its line break) this header can need."""
        return _LINE_SLACK + _BYTES_PER_COLUMN * len(self.names)

    def targets(self) -> np.ndarray:
        """Per header field: matrix column, -1 for the id, -2 for an ignored field."""
        targets = np.full(len(self.names), -2, dtype=np.int64)
        targets[self.id_field] = -1
        targets[self.fields] = np.arange(len(self.fields))
        return targets


class _Rows:
    """Rows accepted so far: their ids (normalised), line numbers and duplicate detection.

    Python's rules for one id at a time (add) and the fast reader's numba pass over a block
    of ids (submission_ids) fill the same table.
    """

    def __init__(self) -> None:
        self.table = IdTable()

    def __len__(self) -> int:
        return len(self.table)

    def add(self, raw_id: str, line: int) -> None:
        sample_id = raw_id.strip()
        if len(sample_id) > MAX_ID_CHARS:
            raise SubmissionError(
                "id_too_long",
                f"line {line}, column 'id': the id is {len(sample_id):,} characters long, "
                f"over the {MAX_ID_CHARS:,}-character limit. Put each sample's id (as in the "
                "challenge's id list) in the id column; check that the file is "
                "comma-separated.",
            )
        suffix = next((suffix for suffix in ZARR_SUFFIXES if sample_id.endswith(suffix)), "")
        sample_id = sample_id[: len(sample_id) - len(suffix)]
        if not sample_id:
            raise SubmissionError(
                "empty_id",
                f"line {line}, column 'id': the id is empty. Every row needs the id of the "
                "sample it embeds; fill it in or delete the row.",
            )
        first = self.table.insert(sample_id, line, len(suffix))
        if first >= 0:
            suffixed = suffix or self.table.suffixed()[0]
            note = " (after removing the .zarr.zip/.zarr suffix)" if suffixed else ""
            raise SubmissionError(
                "duplicate_ids",
                f"line {line}, column 'id': id {_show(sample_id)} already appears on line "
                f"{first}{note}. Each id must appear exactly once; keep one of the two rows.",
            )

    def suffixed(self) -> tuple[int, list[str]]:
        """How many ids carried a .zarr suffix, and the first three as written."""
        count, rows = self.table.suffixed()
        written = {len(suffix): suffix for suffix in ZARR_SUFFIXES}
        return count, [self.table.id_at(row) + written[int(self.table.suffixes[row])]
                       for row in rows]


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
        parsed = _read_fast(path, size, embedding_dim)
        reader = "fast"
        if parsed is None:
            reader = "slow"
            parsed = _read_slow(path, embedding_dim)
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
    _check_dim(found, embedding_dim)
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
        examples = ", ".join(_show(str(sample_id)) for sample_id in missing[:5])
        raise SubmissionError(
            "missing_ids",
            f"{len(missing)} required id(s) are missing from the submission (for example "
            f"{examples}). Add one row for every sample of the challenge's id list; ids are "
            "compared exactly (case, leading zeros), after removing a .zarr.zip or .zarr "
            "suffix.",
        )
    return positions


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


# --- shared rules -----------------------------------------------------------------------


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


def _layout(header: list[str], embedding_dim: int | None, line: int = 1) -> _Layout:
    """Every step is one pass over the fields (sets and dicts, no list lookups): a header
    of 65,536 columns is checked in milliseconds."""
    where = f"line {line} (header)"
    _check_field_count(len(header), embedding_dim, where)
    width = len(header) - 1
    if width and header[0] in ("id", "\ufeffid") and scan.counts_up(np.frombuffer(
            ",".join(header[1:]).encode("utf-8", "surrogateescape"), np.uint8), width):
        # id,0,1,...,N-1 as pandas and numpy write it: nothing to strip, find, sort or
        # compare. (Its bytes are checked: str() of 65,536 numbers takes 5 ms.)
        if embedding_dim is not None:
            _check_dim(width, embedding_dim, where)
        return _Layout(["id", *header[1:]], line, 0, list(range(1, len(header))), [])
    names = [name.strip() for name in header]
    if names:
        names[0] = names[0].lstrip("\ufeff").strip()  # Excel's byte-order mark
    id_fields = [index for index, name in enumerate(names) if name == "id"]
    if not id_fields:
        raise SubmissionError("no_id_column", f"{where}: {_no_id_message(names)}")
    if len(id_fields) > 1:
        raise SubmissionError(
            "duplicate_columns",
            f"{where}: there are {len(id_fields)} columns named 'id'; keep one.",
        )
    id_field = id_fields[0]
    digits = [i for i, name in enumerate(names) if name.isascii() and name.isdigit()]
    if digits:
        fields, digit_set = digits, set(digits)
        ignored = [name for i, name in enumerate(names) if i != id_field and i not in digit_set]
    else:
        fields = [index for index in range(len(names)) if index != id_field]
        ignored = []
    if not fields:
        raise SubmissionError(
            "no_embedding_columns",
            f"{where}: there is an 'id' column but no embedding column. Add one column per "
            "embedding dimension, named 0, 1, 2, ... (header e.g. id,0,1,2).",
        )
    if embedding_dim is not None:
        _check_dim(len(fields), embedding_dim, where)
    # A digit name's value without int(): Python refuses to convert over 4,300 digits, and
    # (length, text) of the name without leading zeros orders the same way.
    keys: list[int | str | tuple[int, str]] = [names[index] for index in fields]
    if digits:
        keys = [(len(key), key) for key in (names[index].lstrip("0") for index in fields)]
        order = sorted(range(len(fields)), key=keys.__getitem__)
        fields, keys = [fields[i] for i in order], [keys[i] for i in order]
    seen: dict[int | str | tuple[int, str], int] = {}
    for index, key in zip(fields, keys, strict=True):
        if key in seen:
            raise SubmissionError(
                "duplicate_columns",
                f"{where}: columns {_show(names[seen[key]])} and {_show(names[index])} "
                "name the same embedding dimension; give each column its own name.",
            )
        seen[key] = index
    return _Layout(names, line, id_field, fields, ignored)


def _check_field_count(count: int, embedding_dim: int | None, where: str) -> None:
    """Before any per-column work: a header wider than any challenge allows."""
    if count <= MAX_COLUMNS:
        return
    expected = (
        f"this challenge takes the id column and {embedding_dim} embedding columns "
        f"(id,0,1,...,{embedding_dim - 1})"
        if embedding_dim is not None
        else "a submission is the id column and one column per embedding dimension "
        "(id,0,1,...,N-1)"
    )
    raise SubmissionError(
        "too_many_columns",
        f"{where}: the header has {count:,} columns, over the limit of {MAX_COLUMNS:,} "
        f"columns in all; {expected}. Check that each row is one sample, not a whole "
        "matrix written out as one line.",
    )


def _no_id_message(names: list[str]) -> str:
    found = ", ".join(_show(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")
    hint = "Name the column that holds the sample ids exactly 'id' (lower case)"
    if len(names) == 1 and any(separator in names[0] for separator in ";\t|"):
        hint = (
            "The header looks separated by ';', tabs or '|'; save the file with commas as "
            "the separator and '.' as the decimal point"
        )
    elif any(name.lower() == "id" for name in names):
        hint = "Rename it to 'id' (lower case)"
    return f"no column named 'id' (found {found}). {hint}."


def _check_dim(found: int, embedding_dim: int, where: str = "header") -> None:
    if found > embedding_dim:
        raise SubmissionError(
            "too_many_columns",
            f"{where}: the submission has {found} embedding columns but this challenge "
            f"takes at most {embedding_dim}. Send exactly {embedding_dim} values per row "
            f"(columns 0..{embedding_dim - 1}).",
        )


def _parse_record(fields: list[str], line: int, layout: _Layout) -> tuple[str, np.ndarray]:
    """One data record by the Python rules: the id (raw) and the float32 values."""
    if len(fields) != len(layout.names):
        raise SubmissionError(
            "not_csv",
            f"line {line}: {len(fields)} fields, but the header (line {layout.line}) has "
            f"{len(layout.names)}. Every row needs exactly one value per header column, "
            "separated by commas; check for a missing or extra value, a stray comma, or an "
            "unmatched double quote.",
        )
    cells = [fields[index] for index in layout.fields]
    joined = "\n".join(cells)
    if (
        _CELLS_RE.fullmatch(joined) is None
        or joined.count("\n") != len(cells) - 1
        or max(map(len, cells)) > MAX_CELL_CHARS
    ):
        for column, cell in enumerate(cells):
            if len(cell) > MAX_CELL_CHARS or _CELL_RE.fullmatch(cell) is None:
                _reject_cell(cell, line, layout.columns[column])
    with np.errstate(over="ignore"):
        values = np.array([float(cell) for cell in cells], dtype=np.float64).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        column = int(bad[0])
        raise SubmissionError(
            "not_finite",
            f"line {line}, column {_show(layout.columns[column])}: value "
            f"{_show(cells[column].strip())} is NaN, infinite or beyond the float32 range "
            "(about 3.4e38). Every embedding value must be a finite number; replace it.",
        )
    return fields[layout.id_field], values


def _reject_cell(cell: str, line: int, column: str) -> None:
    where = f"line {line}, column {_show(column)}"
    if len(cell) > MAX_CELL_CHARS:
        raise SubmissionError(
            "cell_too_long",
            f"{where}: the value is {len(cell):,} characters long, over the "
            f"{MAX_CELL_CHARS}-character limit for a number. Write each value with at most "
            "9 significant digits (e.g. -0.123456 or 1.5e-3); float32 keeps no more.",
        )
    if not cell.strip():
        raise SubmissionError(
            "not_finite",
            f"{where}: the cell is empty. Every embedding value must be a finite number; "
            "fill it in (a missing value is not allowed).",
        )
    raise SubmissionError(
        "non_numeric",
        f"{where}: {_show(cell)} is not a number. Write plain decimal numbers such as "
        "-0.123456 or 1.5e-3, with '.' as the decimal point and no thousands separators, "
        "quotes or units.",
    )


def _finish(layout: _Layout, rows: _Rows, matrix: np.ndarray) -> Submission:
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
        examples = ", ".join(_show(sample_id) for sample_id in suffixed_ids)
        warnings.append(
            f"{suffixed} of {len(rows)} ids ended in .zarr.zip or .zarr (e.g. "
            f"{examples}); the suffix was removed. Remove it from the id column yourself to "
            "silence this warning."
        )
    if layout.ignored:
        shown = ", ".join(_show(name) for name in layout.ignored[:5])
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


def _show(text: str) -> str:
    """A participant's value, quoted and cut short, for a message."""
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def _line_too_long(line: int, limit: int, header: bool) -> SubmissionError:
    if header:
        return SubmissionError(
            "line_too_long",
            f"line {line} (header): the header is longer than {limit:,} bytes, the most "
            f"{MAX_COLUMNS:,} columns may take. Write the header as id,0,1,...,N-1 with one "
            "column per embedding dimension.",
        )
    return SubmissionError(
        "line_too_long",
        f"line {line}: the line is longer than {limit:,} bytes, the most a row of this header "
        f"can take ({_BYTES_PER_COLUMN} bytes per column plus {_LINE_SLACK:,}). Write one "
        "sample per line (id, then one short number per embedding column) and check that "
        "the line breaks were not lost.",
    )


def _record_too_long(first: int, line: int, limit: int) -> SubmissionError:
    # (most likely a quote left open: csv's own error for that, hence its code)
    return SubmissionError(
        "not_csv",
        f"line {first}: the record that starts here runs on to line {line} (a value in "
        f"double quotes holds line breaks) and is longer than {limit:,} bytes, the most a row "
        "of this header can take. Check for a double quote that is never closed; a value "
        "that starts with a double quote must end with one.",
    )


def _not_csv(line: int, error: csv.Error) -> SubmissionError:
    return SubmissionError(
        "not_csv",
        f"line {line}: not readable as CSV ({error}). Check for an unmatched double "
        "quote; a quoted value must end with a double quote.",
    )


def _no_header() -> SubmissionError:
    return SubmissionError(
        "empty_file", "the submission has no header row; the first line must be id,0,1,..."
    )


def _fields(text: str, line: int) -> list[str]:
    """One line's fields as csv reads them (the line holds the whole record)."""
    fields = text.split(",")
    if '"' in text or max(map(len, fields)) > scan.FIELD_LIMIT:
        try:
            fields = next(csv.reader([text]))
        except csv.Error as error:
            raise _not_csv(line, error) from None
    return fields


def _not_utf8(line: int) -> SubmissionError:
    return SubmissionError(
        "not_utf8",
        f"line {line}: the bytes are not valid UTF-8 text. Save the file as UTF-8 CSV "
        "(in Excel: 'CSV UTF-8'; in pandas: to_csv(..., encoding='utf-8')).",
    )


# --- the slow reader: Python's csv module, any dialect detail ------------------------------


def _read_slow(
    path: Path, embedding_dim: int | None
) -> tuple[_Layout, _Rows, np.ndarray]:
    layout: _Layout | None = None
    rows = _Rows()
    values: list[np.ndarray] = []
    with path.open("rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
        lines = _CheckedLines(text)
        reader = csv.reader(lines)
        start = 1
        try:
            for record in reader:
                line, start = start, reader.line_num + 1
                lines.next_record()
                if not record:
                    continue  # blank line
                if layout is None:
                    layout = _layout(record, embedding_dim, line)
                    lines.header, lines.limit = False, layout.max_line_bytes
                    continue
                raw_id, row = _parse_record(record, line, layout)
                rows.add(raw_id, line)
                values.append(row)
        except csv.Error as error:
            raise _not_csv(start, error) from None
    if layout is None:
        raise _no_header()
    width = len(layout.fields)
    matrix = np.stack(values) if values else np.empty((0, width), dtype=np.float32)
    return layout, rows, matrix


class _CheckedLines:
    """The physical lines csv reads, each checked before csv sees it: its length in bytes
    (without the line break; read no further than the limit), the length of its record so
    far (a quoted value may hold line breaks: the lines of a record fit the limit together),
    then its UTF-8. The reader calls next_record() after each record."""

    def __init__(self, text: io.TextIOBase, data_limit: int | None = None,
                 first_line: int = 1) -> None:
        """data_limit: lines of data records (a header's width allows); None: the header's
        lines first (then the reader sets header and limit)."""
        self.text = text
        self.header = data_limit is None
        self.limit = _MAX_HEADER_BYTES if data_limit is None else data_limit
        self.line = first_line - 1  # the last line read
        self.record_line = first_line  # where the current record starts
        self.record_bytes = 0  # its lines read so far, line breaks included

    def next_record(self) -> None:
        self.record_line, self.record_bytes = self.line + 1, 0

    def __iter__(self) -> Iterator[str]:
        while content := self.text.readline(self.limit + 2):  # characters: >= as many bytes
            self.line += 1
            body = content.rstrip("\r\n")  # newline="": one "\n", "\r\n" or "\r" at most
            size = len(body) if body.isascii() else len(
                body.encode("utf-8", errors="surrogateescape"))
            if size > self.limit or (self.header and self.record_bytes + size > self.limit):
                raise _line_too_long(self.line, self.limit, self.header)
            if self.record_bytes + size > self.limit:
                raise _record_too_long(self.record_line, self.line, self.limit)
            self.record_bytes += size + len(content) - len(body)
            if _ESCAPED_BYTE_RE.search(content):
                raise _not_utf8(self.line)
            yield content


# --- the fast reader: numba over blocks of lines (submission_scan, submission_ids) ---------

_MIN_BLOCK_BYTES = 1 << 20
_POOLS: dict[tuple[int, str], ThreadPoolExecutor] = {}  # see _pool
_MIN_SEGMENT_BYTES = 64 << 10
_PARALLEL_BYTES = 1 << 20  # smaller blocks are parsed in one thread
_MAX_SLOTS = 1 << 20  # rows per block; bounds the per-block bookkeeping of narrow files
_BLANK_BYTES = 64 << 10  # blank lines before the header are skipped this much at a time
_BUFFERS = 3  # blocks in flight: one whose ids are taken, two read and parsed ahead


def _read_fast(
    path: Path, size: int, embedding_dim: int | None
) -> tuple[_Layout, _Rows, np.ndarray] | None:
    """Parse in parallel; None = let the slow reader decide (should the kernel and csv
    disagree about where a record ends)."""
    with path.open("rb") as handle:
        line = _skip_blank_lines(handle)
        if line is None:
            raise _no_header()
        start = handle.tell()
        window, end = _header_window(handle)
        if end > _MAX_HEADER_BYTES:
            raise _line_too_long(line, _MAX_HEADER_BYTES, header=True)
        header = window[:end]
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(line) from None
        data_line = line + 1
        if '"' not in text:  # before any per-column work
            _check_field_count(text.count(",") + 1, embedding_dim, f"line {line} (header)")
        if '"' in text and scan.ends_in_quotes(np.frombuffer(header, np.uint8), 0, len(header)):
            fields, data_start, data_line = _record_at(handle, start, line)
        else:
            fields = _fields(text, line)
            data_start = start + end + (2 if window[end : end + 2] == b"\r\n" else 1)
        layout = _layout(fields, embedding_dim, line)
        if data_start >= size:
            return layout, _Rows(), np.empty((0, len(layout.fields)), dtype=np.float32)
        handle.seek(data_start)
        return _read_blocks(handle, size - data_start, layout, data_line)


def _record_at(
    handle: BinaryIO, start: int, line: int, data_limit: int | None = None
) -> tuple[list[str], int, int]:
    """The record at byte `start` (on `line`; data_limit None: the header), read from the
    file: its fields, where the next record starts, its line."""
    handle.seek(start)
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
    fields, size, count = _first_record(text, line, data_limit)
    text.detach()  # (the handle stays open)
    return fields, start + size, line + count


def _first_record(
    text: io.TextIOBase, line: int, data_limit: int | None
) -> tuple[list[str], int, int]:
    """The record text starts with (on `line`), read as the slow reader reads it: csv over
    its physical lines, each checked first (the same messages, the same lines). Its fields,
    bytes and lines (text.tell() is an opaque cookie, not always a byte offset)."""
    lines = _CheckedLines(text, data_limit, first_line=line)
    reader = csv.reader(lines)
    try:
        fields = next(reader)
    except csv.Error as error:
        raise _not_csv(line, error) from None
    return fields, lines.record_bytes, reader.line_num


def _header_window(handle: BinaryIO) -> tuple[bytes, int]:
    """Bytes from the header's start to past its line break (read in growing steps, up to
    just past the longest header allowed), and where its line break is (or the length)."""
    window = b""
    size = _BLANK_BYTES
    while True:
        more = handle.read(min(size, _MAX_HEADER_BYTES + 3 - len(window)))
        window += more
        ends = [end for end in (window.find(b"\n"), window.find(b"\r")) if end >= 0]
        if ends or not more or len(window) == _MAX_HEADER_BYTES + 3:
            end = min(ends, default=len(window))
            if window[end : end + 1] == b"\r" and end + 1 == len(window) and more:
                window += handle.read(1)  # "\r\n" or a lone "\r"?
            return window, end
        size *= 2


def _skip_blank_lines(handle: BinaryIO) -> int | None:
    """Skip the blank lines before the header, as csv does, counting them; the header's line
    number (the handle at its start), or None if there is no other line."""
    line = 1
    after_cr = False  # the previous piece ended in "\r": a "\n" first completes its "\r\n"
    while piece := handle.read(_BLANK_BYTES):
        rest = piece.lstrip(b"\r\n")
        blank = piece[: len(piece) - len(rest)]
        line += blank.count(b"\n") + blank.count(b"\r") - blank.count(b"\r\n")
        line -= after_cr and blank.startswith(b"\n")
        if rest:
            handle.seek(-len(rest), io.SEEK_CUR)
            return line
        after_cr = piece.endswith(b"\r")
    return None


class _Space:
    """Memory for a block, used again block after block (fresh pages cost more than
    parsing them): its bytes and its rows' bookkeeping."""

    def __init__(self, block_bytes: int) -> None:
        # One byte more than is read: the kernel relies on a non-digit after the last line.
        self.buffer = np.empty(block_bytes + 1, dtype=np.uint8)
        self.status = np.empty(0, dtype=np.int8)
        self.records = np.empty((0, scan.RECORD_COLUMNS), dtype=np.int32)
        self.codes = np.empty(0, dtype=np.uint64)

    def rows(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bookkeeping for `count` rows: status, records, codes (grown when short)."""
        if count > len(self.status):
            self.status = np.empty(count, dtype=np.int8)
            self.records = np.empty((count, scan.RECORD_COLUMNS), dtype=np.int32)
            self.codes = np.empty(count, dtype=np.uint64)
        return self.status[:count], self.records[:count], self.codes[:count]


@dataclass
class _Block:
    """One buffer of lines: what the kernel made of them, and where their rows go."""

    space: _Space
    filled: int  # bytes read into it (buffer[filled] is a pad byte)
    start: int  # where buffer[0] is in the file
    final: bool  # the file ends here
    bounds: np.ndarray  # segments' line-start offsets; the last: bytes of whole lines
    first_line: int  # line number of buffer[0]
    done: int  # matrix row of its first row
    slots: int  # rows room per segment
    status: np.ndarray
    records: np.ndarray
    codes: np.ndarray
    counts: np.ndarray
    count: int = 0  # rows, once compacted
    lines: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # theirs
    last: bool = False  # no block follows

    @property
    def buffer(self) -> np.ndarray:
        return self.space.buffer

    def overlong(self, limit: int) -> bool:
        """One record, still open, longer than a row can be (a quote never closed?)."""
        return bool(self.bounds[-1] == 0 and self.filled - 1 > limit)


def _read_blocks(
    handle: BinaryIO, data_bytes: int, layout: _Layout, first_line: int
) -> tuple[_Layout, _Rows, np.ndarray] | None:
    """The kernel's thread reads and parses block after block, ahead of this one, which
    takes their ids and Python's verdicts (a narrow file has as much id work as number
    work)."""
    width = len(layout.fields)
    # A valid row has a separator after every field but the last (whose line break may be
    # missing) and a character in the id and in every embedding cell: a bound on the rows
    # a stretch of bytes can hold.
    min_row_bytes = len(layout.names) + width
    # At least 8 blocks when rows are short (the ids of one are taken while the next is
    # parsed); long rows make few ids, and fewer blocks launch fewer threads.
    block_bytes = min(_BLOCK_BYTES, max(_MIN_BLOCK_BYTES, data_bytes // 8, 64 * min_row_bytes),
                      _MAX_SLOTS * min_row_bytes, data_bytes + 1)
    lanes = numba.get_num_threads()  # as many as this thread's numba would use
    segments = max(1, min(4 * lanes, block_bytes // _MIN_SEGMENT_BYTES))
    # Every row, and the row slots of a block in flight: untouched pages of this upper
    # bound cost no memory, and resize() gives back the rest.
    matrix = np.empty((data_bytes // min_row_bytes + 64
                       + segments * (block_bytes // min_row_bytes + 1), width), dtype=np.float32)
    rows = _Rows()
    kernel = _Kernel(handle, layout, matrix, segments, lanes, rows.table.key,
                     [_Space(block_bytes) for _ in range(_BUFFERS)])
    running = _pool("kernel", 1).submit(kernel.run, first_line)
    try:
        while True:
            block = kernel.next()
            if block.overlong(layout.max_line_bytes):
                # csv reads that record from the file, no further than the rules allow, and
                # says why.
                _record_at(handle, block.start, block.first_line, layout.max_line_bytes)
                return None
            if not _collect(block, layout, rows, matrix):
                return None
            read = int(block.bounds[-1])
            if block.done == 0 and not block.last and read:
                # Room for all ids at once, as the first block's predict them, and 1/8 more:
                # growing copies every id, and fresh memory costs more than reading.
                rest = (data_bytes - read) * 9 // 8
                rows.table.reserve(len(rows) * rest // read,
                                   int(rows.table.starts[len(rows)]) * rest // read)
            if block.last:
                break
            kernel.release(block)
    finally:
        kernel.stop()
        wait([running])  # (it writes into the buffers and the matrix)
    matrix.resize((len(rows), width), refcheck=False)
    return layout, rows, matrix


class _Kernel:
    """Blocks read and parsed in the kernel's thread, handed over in file order (its error
    in its place: an earlier line's problem is reported first); their memory comes back."""

    def __init__(self, handle: BinaryIO, layout: _Layout, matrix: np.ndarray, segments: int,
                 lanes: int, key: np.ndarray, spaces: list[_Space]) -> None:
        self.handle, self.layout, self.matrix = handle, layout, matrix
        self.segments, self.lanes, self.key, self.targets = segments, lanes, key, layout.targets()
        self.free = spaces
        self.ready: deque[_Block | BaseException] = deque()
        self.held = 0  # blocks handed over and not released
        self.stopped = False
        self.changed = threading.Condition()

    def run(self, first_line: int) -> None:
        try:
            block = None
            while True:
                space = self._take_space()
                if space is None:
                    return
                block = _read_block(self.handle, space, block, first_line,
                                    block.done + block.count if block else 0, self.layout,
                                    self.segments)
                if not self._make_room(block):
                    return
                _parse(block, self.targets, self.matrix, self.key, self.lanes)
                block.count, block.lines = _compact(block, self.matrix)
                # The next block starts after its whole records: none after a cut (a wrong
                # line is among these) or a record too long (csv reads it from the file).
                block.last = bool(block.final or block.counts[:, scan.CUT].any()
                                  or block.overlong(self.layout.max_line_bytes))
                self._hand_over(block)
                if block.last:
                    return
                first_line = block.first_line + int(block.counts[:, scan.LINES].sum())
        except BaseException as error:  # the reader's thread raises it, in its place
            self._hand_over(error)

    def next(self) -> _Block:
        """The next block, or the kernel's error in its place."""
        with self.changed:
            self.changed.wait_for(lambda: self.ready)
            item = self.ready.popleft()
            self.held += not isinstance(item, BaseException)
            self.changed.notify_all()
        if isinstance(item, BaseException):
            raise item
        return item

    def release(self, block: _Block) -> None:
        with self.changed:
            self.free.append(block.space)
            self.held -= 1
            self.changed.notify_all()

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()

    def _take_space(self) -> _Space | None:
        """Memory no block handed over uses (None: the reader stopped)."""
        with self.changed:
            self.changed.wait_for(lambda: self.stopped or self.free)
            return None if self.stopped else self.free.pop()

    def _make_room(self, block: _Block) -> bool:
        """Matrix rows for the block's slots (a block grown for a long record may need more
        than were set aside), once the reader's thread no longer writes into the matrix;
        False: it stopped."""
        need = block.done + self.segments * block.slots
        if need > self.matrix.shape[0]:
            with self.changed:
                self.changed.wait_for(lambda: self.stopped or not (self.ready or self.held))
                if self.stopped:
                    return False
                self.matrix.resize((need, self.matrix.shape[1]), refcheck=False)
        return True

    def _hand_over(self, item: _Block | BaseException) -> None:
        with self.changed:
            self.ready.append(item)
            self.changed.notify_all()


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    """This process's threads (a forked child makes its own), started once, not for every
    read: "kernel" reads and parses the blocks (_Kernel.run; reads in other threads wait
    their turn), "lanes" parse with it."""
    key = (os.getpid(), name)
    if key not in _POOLS:
        for stale in [other for other in _POOLS if other[0] != key[0]]:  # (a fork's parent's)
            del _POOLS[stale]
        _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix=f"submission-{name}")
    return _POOLS[key]


def _read_block(
    handle: BinaryIO,
    space: _Space,
    previous: _Block | None,
    first_line: int,
    done: int,
    layout: _Layout,
    segments: int,
) -> _Block:
    """Read the next block into space, after the previous block's unfinished line, until
    it holds a whole line (or the file ends)."""
    buffer = space.buffer
    carry = 0
    start = handle.tell()
    if previous is not None:
        consumed = int(previous.bounds[-1])
        carry = previous.filled - consumed
        if carry + 1 >= len(buffer):  # (a record with line breaks longer than the buffer)
            buffer = np.empty(2 * len(previous.buffer), dtype=np.uint8)
        buffer[:carry] = previous.buffer[consumed : previous.filled]
        start -= carry
    while True:
        got = handle.readinto(memoryview(buffer)[carry:-1]) or 0
        filled = carry + got
        final = got == 0  # not a short read: that could silently drop the rest
        buffer[filled] = 0
        bounds = scan.segment_bounds(buffer, filled, final, segments)
        if bounds[-1] or final:
            break
        if filled - 1 > layout.max_line_bytes:  # (the last byte may be the "\r" of "\r\n")
            raise _line_too_long(first_line, layout.max_line_bytes, header=False)
        if filled == len(buffer) - 1:  # a line longer than the buffer
            buffer = np.concatenate([buffer[:filled], np.empty(filled + 1, np.uint8)])
        carry = filled
    min_row_bytes = len(layout.names) + len(layout.fields)
    slots = int(np.diff(bounds).max()) // min_row_bytes + 1
    space.buffer = buffer  # (grown, or the same)
    status, records, codes = space.rows(segments * slots)
    return _Block(space, filled, start, final, bounds, first_line, done, slots, status,
                  records, codes, counts=np.empty((segments, scan.COUNT_COLUMNS), dtype=np.int64))


def _parse(block: _Block, targets: np.ndarray, matrix: np.ndarray, key: np.ndarray,
           lanes: int) -> None:
    """Parse the block in `lanes` threads, this one and helpers, each taking the next
    segment when it is free: a thread that loses its core to another process only delays
    its own small segment."""
    arguments = (block.buffer, block.filled, block.final, block.bounds, targets, matrix,
                 block.done, block.slots, block.status, block.records, block.codes, key,
                 block.counts)
    segments = len(block.counts)
    next_segment = itertools.count().__next__  # (atomic: one C call)

    def lane() -> None:
        # One numba thread per lane: an idle numba worker spins, taking the core that the
        # reader's thread needs for the ids.
        numba.set_num_threads(1)
        while (segment := next_segment()) < segments:
            scan.parse_segments(*arguments, segment, segment + 1)

    # Waking threads costs more than a small file takes.
    helpers = [] if block.filled < _PARALLEL_BYTES else [
        _pool("lanes", os.cpu_count() or 1).submit(lane) for _ in range(lanes - 1)]
    try:
        lane()
    finally:
        wait(helpers)  # (they write into the block and the matrix)
    for helper in helpers:
        helper.result()
    scan.fix_segments(*arguments)


def _compact(block: _Block, matrix: np.ndarray) -> tuple[int, np.ndarray]:
    """Close the gaps between segments' rows (matrix, status, records, hashes): how many
    rows there are, and their line numbers."""
    row = 0
    line_base = block.first_line
    bases = []
    for segment, (count, lines, cut, _, _) in enumerate(block.counts.tolist()):
        slot = segment * block.slots
        if slot and count:
            done = block.done
            matrix[done + row : done + row + count] = matrix[done + slot : done + slot + count]
            for array in (block.status, block.records, block.codes):
                array[row : row + count] = array[slot : slot + count]
        bases.append(np.full(count, line_base, dtype=np.int64))
        row += count
        line_base += lines
        if cut:  # its later lines were not parsed: a wrong line among these must say so
            break
    return row, np.concatenate(bases) + block.records[:row, scan.LINE]


def _collect(block: _Block, layout: _Layout, rows: _Rows, matrix: np.ndarray) -> bool:
    """Take the block's ids (its rows, compacted), and Python's verdicts, in line order.

    False: a line needs the slow reader.
    """
    count, lines = block.count, block.lines
    records = block.records[:count]
    line_start, line_end = records[:, scan.LINE_START], records[:, scan.LINE_END]
    longest = records[:, scan.LONGEST]
    limit = layout.max_line_bytes
    usable = (block.status[:count] == scan.OK) & (line_end - line_start <= limit)
    # (contiguous copies: a view's layout would depend on the count, and numba compiles
    # for each layout)
    scanned = (*(np.ascontiguousarray(records[:, column])
                 for column in (scan.ID_START, scan.ID_END, scan.ID_STATE, scan.ID_SUFFIX)),
               block.codes[:count])
    view = memoryview(block.buffer)
    index = 0
    while (index := rows.table.add_block(block.buffer, scanned, usable, lines, index)) < count:
        # Python's rules decide about this record: they raise, or take it as numba could not.
        line = int(lines[index])
        record = view[line_start[index] : line_end[index]]
        if longest[index] != line_end[index] - line_start[index]:  # it spans lines
            stream = io.StringIO(str(record, "utf-8", "surrogateescape"), newline="")
            fields = _first_record(stream, line, limit)[0]
        else:
            if longest[index] > limit:
                raise _line_too_long(line, limit, header=False)
            try:
                text = str(record, "utf-8")
            except UnicodeDecodeError:
                raise _not_utf8(line) from None
            fields = _fields(text, line)
        raw_id, matrix[block.done + index] = _parse_record(fields, line, layout)
        rows.add(raw_id, line)
        index += 1
    return not block.counts[:, scan.CUT].any()


@numba.njit(cache=True, nogil=True)
def _is_constant(values: np.ndarray) -> bool:
    """Stops at the first differing value, unlike min() == max()."""
    for value in values:  # noqa: SIM110 - numba compiles loops, not generator expressions
        if value != values[0]:
            return False
    return True
