"""The reader's limits and what it tells the participant when a file breaks one: each
message names the line (and column) and how to fix the file. Both readers raise these, so a
file gets the same words from either.
"""

from __future__ import annotations

import csv

from evaluator.scoring.reader.scan import MAX_CELL_CHARS
from evaluator.support.errors import SubmissionError

# Limits far above any sane submission (the published one: 1,025 columns, ~7 KB lines,
# 64-character ids), so that a hostile file is refused the moment it crosses one instead of
# holding a worker: every check costs time linear in the bytes seen so far.
MAX_COLUMNS = 65_536  # header fields in all: id, embedding and ignored columns
BYTES_PER_COLUMN = 128  # a line may use this much per header field, plus LINE_SLACK
LINE_SLACK = 4_096  # room for a long (multi-byte) id
MAX_HEADER_BYTES = LINE_SLACK + BYTES_PER_COLUMN * MAX_COLUMNS  # ~8.4 MB
_MAX_SHOWN = 40  # characters of a participant's value quoted back in a message


def show(text: str) -> str:
    """A participant's value, quoted and cut short, for a message."""
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def no_id_message(names: list[str]) -> str:
    found = ", ".join(show(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")
    hint = "Name the column that holds the sample ids exactly 'id' (lower case)"
    if len(names) == 1 and any(separator in names[0] for separator in ";\t|"):
        hint = (
            "The header looks separated by ';', tabs or '|'; save the file with commas as "
            "the separator and '.' as the decimal point"
        )
    elif any(name.lower() == "id" for name in names):
        hint = "Rename it to 'id' (lower case)"
    return f"no column named 'id' (found {found}). {hint}."


def cell_error(cell: str, line: int, column: str) -> SubmissionError:
    where = f"line {line}, column {show(column)}"
    if len(cell) > MAX_CELL_CHARS:
        return SubmissionError(
            "cell_too_long",
            f"{where}: the value is {len(cell):,} characters long, over the "
            f"{MAX_CELL_CHARS}-character limit for a number. Write each value with at most "
            "9 significant digits (e.g. -0.123456 or 1.5e-3); float32 keeps no more.",
        )
    if not cell.strip():
        return SubmissionError(
            "not_finite",
            f"{where}: the cell is empty. Every embedding value must be a finite number; "
            "fill it in (a missing value is not allowed).",
        )
    return SubmissionError(
        "non_numeric",
        f"{where}: {show(cell)} is not a number. Write plain decimal numbers such as "
        "-0.123456 or 1.5e-3, with '.' as the decimal point and no thousands separators, "
        "quotes or units.",
    )


def line_too_long(line: int, limit: int, header: bool) -> SubmissionError:
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
        f"can take ({BYTES_PER_COLUMN} bytes per column plus {LINE_SLACK:,}). Write one "
        "sample per line (id, then one short number per embedding column) and check that "
        "the line breaks were not lost.",
    )


def record_too_long(first: int, line: int, limit: int) -> SubmissionError:
    # (most likely a quote left open: csv's own error for that, hence its code)
    return SubmissionError(
        "not_csv",
        f"line {first}: the record that starts here runs on to line {line} (a value in "
        f"double quotes holds line breaks) and is longer than {limit:,} bytes, the most a row "
        "of this header can take. Check for a double quote that is never closed; a value "
        "that starts with a double quote must end with one.",
    )


def not_csv(line: int, error: csv.Error) -> SubmissionError:
    return SubmissionError(
        "not_csv",
        f"line {line}: not readable as CSV ({error}). Check for an unmatched double "
        "quote; a quoted value must end with a double quote.",
    )


def no_header() -> SubmissionError:
    return SubmissionError(
        "empty_file", "the submission has no header row; the first line must be id,0,1,..."
    )


def not_utf8(line: int) -> SubmissionError:
    return SubmissionError(
        "not_utf8",
        f"line {line}: the bytes are not valid UTF-8 text. Save the file as UTF-8 CSV "
        "(in Excel: 'CSV UTF-8'; in pandas: to_csv(..., encoding='utf-8')).",
    )

