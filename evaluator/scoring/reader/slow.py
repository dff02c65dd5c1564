"""The reader's rules, in Python: they define what a submission means (spec/protocol.md
section 1), and the slow reader applies them to the whole file with Python's csv module,
which accepts every CSV dialect detail. A cell's value is float32(float(text)).

The fast reader (fast.py) hands every record it is unsure about to these same rules, so a
file gets the same verdict, the first problem in file order, from either reader.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluator.scoring.reader import scan
from evaluator.scoring.reader.ids import MAX_ID_CHARS, ZARR_SUFFIXES, IdTable
from evaluator.scoring.reader.messages import (
    BYTES_PER_COLUMN,
    LINE_SLACK,
    MAX_COLUMNS,
    MAX_HEADER_BYTES,
    cell_error,
    line_too_long,
    no_header,
    no_id_message,
    not_csv,
    not_utf8,
    record_too_long,
    show,
)
from evaluator.scoring.reader.scan import MAX_CELL_CHARS
from evaluator.support.errors import SubmissionError

# A cell the rules accept: a decimal number, or NaN/inf (accepted here, rejected as
# not finite later so that the message can say so). Python's float() also takes "1_000"
# and non-ASCII digits; a CSV of embeddings should not.
_NUMBER = r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*"

_NOT_FINITE = r"[ \t]*[+-]?(?i:nan|inf|infinity)[ \t]*"

_CELL = f"(?:{_NUMBER}|{_NOT_FINITE})"

_CELL_RE = re.compile(_CELL)

_CELLS_RE = re.compile(f"{_CELL}(?:\n{_CELL})*")  # cells joined with "\n"

_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8


@dataclass(frozen=True)
class Layout:
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
        return LINE_SLACK + BYTES_PER_COLUMN * len(self.names)

    def targets(self) -> np.ndarray:
        """Per header field: matrix column, -1 for the id, -2 for an ignored field."""
        targets = np.full(len(self.names), -2, dtype=np.int64)
        targets[self.id_field] = -1
        targets[self.fields] = np.arange(len(self.fields))
        return targets


class Rows:
    """Rows accepted so far: their ids (normalised), line numbers and duplicate detection.

    Python's rules for one id at a time (add) and the fast reader's numba pass over a block
    of ids (ids.py) fill the same table.
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
                f"line {line}, column 'id': id {show(sample_id)} already appears on line "
                f"{first}{note}. Each id must appear exactly once; keep one of the two rows.",
            )

    def suffixed(self) -> tuple[int, list[str]]:
        """How many ids carried a .zarr suffix, and the first three as written."""
        count, rows = self.table.suffixed()
        written = {len(suffix): suffix for suffix in ZARR_SUFFIXES}
        return count, [self.table.id_at(row) + written[int(self.table.suffixes[row])]
                       for row in rows]


def read_header(header: list[str], embedding_dim: int | None, line: int = 1) -> Layout:
    """Every step is one pass over the fields (sets and dicts, no list lookups): a header
    of 65,536 columns is checked in milliseconds."""
    where = f"line {line} (header)"
    check_field_count(len(header), embedding_dim, where)
    width = len(header) - 1
    if width and header[0] in ("id", "\ufeffid") and scan.counts_up(np.frombuffer(
            ",".join(header[1:]).encode("utf-8", "surrogateescape"), np.uint8), width):
        # id,0,1,...,N-1 as pandas and numpy write it: nothing to strip, find, sort or
        # compare. (Its bytes are checked: str() of 65,536 numbers takes 5 ms.)
        if embedding_dim is not None:
            check_dim(width, embedding_dim, where)
        return Layout(["id", *header[1:]], line, 0, list(range(1, len(header))), [])
    names = [name.strip() for name in header]
    if names:
        names[0] = names[0].lstrip("\ufeff").strip()  # Excel's byte-order mark
    id_fields = [index for index, name in enumerate(names) if name == "id"]
    if not id_fields:
        raise SubmissionError("no_id_column", f"{where}: {no_id_message(names)}")
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
        check_dim(len(fields), embedding_dim, where)
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
                f"{where}: columns {show(names[seen[key]])} and {show(names[index])} "
                "name the same embedding dimension; give each column its own name.",
            )
        seen[key] = index
    return Layout(names, line, id_field, fields, ignored)


def check_field_count(count: int, embedding_dim: int | None, where: str) -> None:
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


def check_dim(found: int, embedding_dim: int, where: str = "header") -> None:
    if found > embedding_dim:
        raise SubmissionError(
            "too_many_columns",
            f"{where}: the submission has {found} embedding columns but this challenge "
            f"takes at most {embedding_dim}. Send exactly {embedding_dim} values per row "
            f"(columns 0..{embedding_dim - 1}).",
        )


def parse_record(fields: list[str], line: int, layout: Layout) -> tuple[str, np.ndarray]:
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
                raise cell_error(cell, line, layout.columns[column])
    with np.errstate(over="ignore"):
        values = np.array([float(cell) for cell in cells], dtype=np.float64).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        column = int(bad[0])
        raise SubmissionError(
            "not_finite",
            f"line {line}, column {show(layout.columns[column])}: value "
            f"{show(cells[column].strip())} is NaN, infinite or beyond the float32 range "
            "(about 3.4e38). Every embedding value must be a finite number; replace it.",
        )
    return fields[layout.id_field], values


def split_fields(text: str, line: int) -> list[str]:
    """One line's fields as csv reads them (the line holds the whole record)."""
    fields = text.split(",")
    if '"' in text or max(map(len, fields)) > scan.FIELD_LIMIT:
        try:
            fields = next(csv.reader([text]))
        except csv.Error as error:
            raise not_csv(line, error) from None
    return fields


def read(
    path: Path, embedding_dim: int | None
) -> tuple[Layout, Rows, np.ndarray]:
    layout: Layout | None = None
    rows = Rows()
    values: list[np.ndarray] = []
    with path.open("rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
        lines = CheckedLines(text)
        reader = csv.reader(lines)
        start = 1
        try:
            for record in reader:
                line, start = start, reader.line_num + 1
                lines.next_record()
                if not record:
                    continue  # blank line
                if layout is None:
                    layout = read_header(record, embedding_dim, line)
                    lines.header, lines.limit = False, layout.max_line_bytes
                    continue
                raw_id, row = parse_record(record, line, layout)
                rows.add(raw_id, line)
                values.append(row)
        except csv.Error as error:
            raise not_csv(start, error) from None
    if layout is None:
        raise no_header()
    width = len(layout.fields)
    matrix = np.stack(values) if values else np.empty((0, width), dtype=np.float32)
    return layout, rows, matrix


class CheckedLines:
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
        self.limit = MAX_HEADER_BYTES if data_limit is None else data_limit
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
                raise line_too_long(self.line, self.limit, self.header)
            if self.record_bytes + size > self.limit:
                raise record_too_long(self.record_line, self.line, self.limit)
            self.record_bytes += size + len(content) - len(body)
            if _ESCAPED_BYTE_RE.search(content):
                raise not_utf8(self.line)
            yield content


def first_record(
    text: io.TextIOBase, line: int, data_limit: int | None
) -> tuple[list[str], int, int]:
    """The record text starts with (on `line`), read as the slow reader reads it: csv over
    its physical lines, each checked first (the same messages, the same lines). Its fields,
    bytes and lines (text.tell() is an opaque cookie, not always a byte offset)."""
    lines = CheckedLines(text, data_limit, first_line=line)
    reader = csv.reader(lines)
    try:
        fields = next(reader)
    except csv.Error as error:
        raise not_csv(line, error) from None
    return fields, lines.record_bytes, reader.line_num

