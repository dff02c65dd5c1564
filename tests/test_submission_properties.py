"""Properties of the submission reader over generated files.

* Any bytes: the only exception is SubmissionError (never the internal-error fallback).
* The fast reader and the slow (csv module) reader give the same verdict: same rows and
  values, or the same error message, on any input, also with tiny blocks: plain, quoted
  (RFC 4180, as csv.writer writes it), any line breaks, edited at random; records with
  line breaks get it without the slow reader, also when a cell in them is bad.
* The numba id rules are Python's: white space as str.strip() sees it.
* Values round-trip: a cell's value is float32(float(text)).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from evaluator.scoring.reader import fast as fast_reader
from evaluator.scoring.reader import ids as sub_ids
from evaluator.scoring.reader import slow as slow_reader
from evaluator.scoring.reader import submission as sub
from evaluator.support.errors import SubmissionError

SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


FOLDER: list[Path] = []  # pytest's temporary folder for this module (removed by pytest)


@pytest.fixture(scope="module", autouse=True)
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    FOLDER.append(tmp_path_factory.mktemp("submission-properties"))
    yield
    FOLDER.pop()


def write(content: bytes) -> Path:
    path = FOLDER[-1] / "submission.csv"
    path.write_bytes(content)
    return path


def fast(path: Path) -> sub.Submission:
    """read_submission without its catch-all, so that a bug shows as itself."""
    size = sub._checked_size(path, sub.DEFAULT_MAX_BYTES)
    parsed = fast_reader.read(path, size, None)
    return sub._finish(*(parsed or slow_reader.read(path, None)))


def slow(path: Path) -> sub.Submission:
    sub._checked_size(path, sub.DEFAULT_MAX_BYTES)
    return sub._finish(*slow_reader.read(path, None))


def outcome(read: Callable[[Path], sub.Submission], path: Path) -> tuple[Any, ...]:
    try:
        result = read(path)
    except SubmissionError as error:
        assert error.code != "internal_error"
        assert "task" not in str(error).lower()
        return ("error", error.code, str(error))
    assert result.matrix.dtype == np.float32 and result.matrix.flags.c_contiguous
    assert np.isfinite(result.matrix).all()
    assert len(result.ids) == len(result.matrix) == len(set(result.ids.tolist()))
    assert sub.row_positions(result, result.ids).tolist() == list(range(len(result)))
    return (
        "ok", result.ids.tolist(), result.matrix.tobytes(), result.columns, result.warnings,
        result.flags,
    )


def same_verdict(
    content: bytes, *, block_bytes: int | None = None, parallel: bool = False
) -> tuple[Any, ...]:
    """The slow reader's verdict, after checking that the fast reader agrees.

    block_bytes: also read in blocks this small (many blocks, segments, grown buffers);
    parallel: with the multi-threaded kernel even for such tiny blocks.
    """
    path = write(content)
    expected = outcome(slow, path)
    assert outcome(fast, path) == expected
    if block_bytes is not None:
        with patch.object(fast_reader, "_BLOCK_BYTES", block_bytes), \
                patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 4), \
                patch.object(fast_reader, "_PARALLEL_BYTES",
                             0 if parallel else fast_reader._PARALLEL_BYTES):
            assert outcome(fast, path) == expected
    return expected


@SETTINGS
@given(content=st.binary(max_size=200))
@example(content=b"id,0\n\r")
@example(content=b"id,0,1\na,1,2\r")
@example(content=b"id,0\na,1\n\x00")
def test_arbitrary_bytes(content: bytes) -> None:
    same_verdict(content)
    try:
        sub.read_submission(write(content))
    except SubmissionError as error:
        assert error.code != "internal_error"


@SETTINGS
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_after_a_valid_header(content: bytes) -> None:
    same_verdict(b"id,1,0\n" + content, block_bytes=16)


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.floats(-1e6, 1e6).map(repr),  # float64 shortest repr: up to 17 digits
    st.floats(-2, 2).map(lambda value: f"{value:.6f}"),
)
NUMBERISH = st.text("0123456789.eE+-", max_size=6)
SPECIAL = st.sampled_from(
    [",", '"', "\r", "\n", "\r\n", " ", "\t", "e", ".", "-", "nan", "inf", "\xff", "é",
     ".zarr", ".zarr.zip", "", "\x00", "1" * 20, "id", ",,"]
)


@st.composite
def csv_shaped(draw: st.DrawFn) -> bytes:
    """A small plausible submission, then a few random edits."""
    width = draw(st.integers(1, 4))
    names = [str(column) for column in range(width)]
    names = draw(st.permutations(names))
    header = draw(st.sampled_from([["id", *names], [*names, "id"], ["id", *names, "note"]]))
    rows = draw(st.integers(1, 6))
    lines = [",".join(header)]
    for row in range(rows):
        cells = {name: draw(NUMBERISH if draw(st.integers(0, 15)) == 0 else NUMBERS)
                 for name in names}
        cells["id"] = draw(st.sampled_from([f"s{row}", f"s{row}.zarr.zip", f"s{row % 3}"]))
        cells["note"] = draw(st.sampled_from(["", "x", "é"]))
        lines.append(",".join(cells[name] for name in header))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(SPECIAL) + text[at + cut :]
    encoded = text.encode("utf-8", errors="surrogateescape")
    return encoded.replace("\xff".encode(), b"\xff")  # a byte that is not UTF-8


@SETTINGS
@given(content=csv_shaped())
def test_csv_shaped_text(content: bytes) -> None:
    same_verdict(content, block_bytes=24)


ID_TEXT = st.lists(
    st.sampled_from(['"', ",", " ", "\t", "\x1c", "\u2003", "\xa0", "\x85", "é", "a", "b",
                     "\n", "\r", "\r\n", ".zarr", ".zarr.zip", "\x00", "\U0001f600"]),
    max_size=5,
).map("".join)


@st.composite
def csv_written(draw: st.DrawFn) -> bytes:
    """A submission as csv.writer writes it (quoting, line breaks), then a few edits."""
    width = draw(st.integers(1, 3))
    header = draw(st.permutations(["id", *map(str, range(width)), *draw(
        st.sampled_from([[], ["note"]]))]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    out = io.StringIO()
    out.write(draw(st.sampled_from(["", ending, ending * 2])))  # blank lines first
    writer = csv.writer(out, quoting=quoting, lineterminator=ending)
    writer.writerow(header)
    for row in range(draw(st.integers(1, 5))):
        cells = {name: draw(NUMBERS) for name in header}
        cells["id"] = draw(st.one_of(st.just(f"s{row}"), ID_TEXT))
        cells["note"] = draw(ID_TEXT)
        writer.writerow([cells[name] for name in header])
    text = out.getvalue()
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(SPECIAL) + text[at + draw(st.integers(0, 2)) :]
    encoded = text.encode("utf-8", errors="surrogateescape")
    return encoded.replace("\xff".encode(), b"\xff")


@SETTINGS
@given(content=csv_written())
@example(content=b'id,0\n"a""b",1\n"a""b",2\n')
@example(content=b'id,0\n" \xc2\x85a\xe2\x80\x83 ",1\nb,2\n')
@example(content=b'id,0\n"a\rb",1\nc,2\n')
@example(content=b'id,0\n"a"b,1\nc,"2"3\n')
@example(content=b'"note","0","id","1"\n"\n","0.0",\xff"s0","0.0"\n')  # not UTF-8: line 3
@example(content=b'id,0\n"a\r\nb",1\n"a\r\nb",2\n')  # a duplicate: lines 2 and 4
def test_quoted_text(content: bytes) -> None:
    same_verdict(content, block_bytes=24)


@settings(SETTINGS, max_examples=40)
@given(content=csv_written())
def test_quoted_text_with_the_parallel_kernel(content: bytes) -> None:
    same_verdict(content, block_bytes=64, parallel=True)


# Cells the Python rules reject (or, "1\n" and '"', csv.writer quotes), and unclosed
# quotes at the end of a file.
BAD_CELLS = st.sampled_from(["x", "", " ", "1\n", "\r2", '"', "nan", "1 2", "1e", "\x00"])
OPEN_ENDS = st.sampled_from(["", "", '"', '"z', '"z\n1,2', 'w,"1\n', 'w,1,2,"y\r\n'])


@st.composite
def ids_with_line_breaks(draw: st.DrawFn, bad: bool = False) -> bytes:
    """A submission whose ids (and maybe a header name: csv.writer quotes them) hold line
    breaks; valid unless bad: then some cells are bad and the file may end inside a quoted
    field."""
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    breaks = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\r\r\n"])
    cells = st.one_of(NUMBERS, NUMBERS, NUMBERS, BAD_CELLS) if bad else NUMBERS
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending)
    writer.writerow(["id", "0", "1", draw(st.sampled_from(["note", "no\nte", "\r\n"]))])
    for row in range(draw(st.integers(1, 12))):
        sample_id = draw(breaks).join(draw(st.lists(st.sampled_from(["a", '"', ","]),
                                                     min_size=1, max_size=3)))
        note = draw(st.sampled_from(["", "x", "y\nz"]))
        writer.writerow([f"{row}{sample_id}", draw(cells), draw(cells), note])
    return (out.getvalue() + (draw(OPEN_ENDS) if bad else "")).encode()


@settings(SETTINGS, max_examples=100)
@given(content=st.one_of(ids_with_line_breaks(), ids_with_line_breaks(bad=True)),
       block_bytes=st.sampled_from([24, 40, 200]), parallel=st.booleans())
@example(content=b'id,0,1,note\n"0a\nb",x,1,\n', block_bytes=24, parallel=False)
@example(content=b'id,0,1,note\n0a,1,2,"y\nz"\n"1\nb",1,"\r2",\n', block_bytes=24,
         parallel=False)
@example(content=b'id,0,1,note\n0a,1,2,\n"z\n1,2', block_bytes=24, parallel=False)
@example(content=b'id,0,1,"no\nte"\n"0a\nb",1,x,\n', block_bytes=24, parallel=False)
@example(content=b'id,0,1,"\r\n"\r0a,0.0,0.0,\r', block_bytes=24, parallel=False)
def test_records_with_line_breaks_need_no_slow_reader(
    content: bytes, block_bytes: int, parallel: bool
) -> None:
    # Valid or not: csv reads each record with line breaks that Python's rules have to
    # decide about on its own, with the slow reader's verdict (message, line).
    expected = outcome(slow, write(content))
    # (blocks grow for a record with line breaks, up to a row's limit: these records have
    # at most ~90 bytes)
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")), \
            patch.object(fast_reader, "_BLOCK_BYTES", block_bytes), \
            patch.object(fast_reader, "_MIN_BLOCK_BYTES", block_bytes), \
            patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 4), \
            patch.object(fast_reader, "_PARALLEL_BYTES",
                         0 if parallel else fast_reader._PARALLEL_BYTES):
        assert outcome(fast, write(content)) == expected


def test_id_white_space_is_what_str_strip_removes() -> None:
    spaces = {code for code in range(sys.maxunicode + 1) if chr(code).isspace()}
    assert spaces - set(range(128)) == set(sub_ids.UNICODE_SPACES.tolist())
    assert all((chr(code) + "a" + chr(code)).strip() == "a" for code in spaces)
    # ... and the reader strips each of them, also where the kernel does it alone.
    ids = [chr(code) + f"x{code}" + chr(code) for code in sorted(spaces) if code not in (10, 13)]
    content = "id,0\n" + "".join(f'"{sample_id}",{row}\n' for row, sample_id in enumerate(ids))
    result = sub.read_submission(write(content.encode()))
    assert result.ids.tolist() == [sample_id.strip() for sample_id in ids]


@settings(SETTINGS, max_examples=40)  # waking threads for every tiny block is slow
@given(content=csv_shaped())
def test_csv_shaped_text_with_the_parallel_kernel(content: bytes) -> None:
    same_verdict(content, block_bytes=64, parallel=True)


DECIMALS = st.builds(
    lambda sign, digits, point, exponent: f"{sign}{digits[:point]}.{digits[point:]}e{exponent}",
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", min_size=1, max_size=40),
    st.integers(0, 40),
    st.integers(-70, 45),
)


@SETTINGS
@given(text=st.one_of(st.text("0123456789.eE+- naifINFty_\t", max_size=24), DECIMALS))
@example(text="1e-39")  # subnormal in float32
@example(text="3.4028235e38")  # rounds to float32's largest value
@example(text="3.40282357e38")  # rounds to inf
@example(text="0.000000000000000000001")  # 22 digits
@example(text="16777217.0000000001")  # next to a float32 rounding midpoint
@example(text="1.000000059604644775390625")  # a float32 tie, exactly
@example(text="1.0000000596046447753906250000001")  # just past it
@example(text="7.006492321624085e-46")  # half the smallest subnormal
@example(text="3.4028235677973366e38")  # the overflow threshold
@example(text=" 12345678901234567890123 ")  # 23 digits, blanks around
def test_one_cell_fast_and_slow_agree(text: str) -> None:
    verdict = same_verdict(f"id,0,1\na,{text},1\nb,2,3\n".encode())
    if verdict[0] == "ok":
        value = np.frombuffer(verdict[2], dtype=np.float32)[0]
        assert value == np.float32(float(text)) or (value == 0 and float(text) == 0)


FORMATS: list[Callable[[float], str]] = [
    repr,  # shortest round trip of the float32 as a double: up to 17 digits
    lambda value: repr(float(np.float32(value))),
    lambda value: f"{value:.6f}",
    lambda value: f"{value:.9g}",
    lambda value: f"{value:.6e}",
    lambda value: f"{value:.17g}",
    lambda value: str(np.float32(value)),
]


@SETTINGS
@given(
    matrix=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 8), st.integers(1, 6)),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    style=st.integers(0, len(FORMATS) - 1),
    crlf=st.booleans(),
)
def test_values_round_trip(matrix: np.ndarray, style: int, crlf: bool) -> None:
    ending = "\r\n" if crlf else "\n"
    texts = [[FORMATS[style](float(value)) for value in row] for row in matrix]
    expected = np.array([[float(text) for text in row] for row in texts]).astype(np.float32)
    assume(expected.min() != expected.max())
    lines = ["id," + ",".join(str(column) for column in range(matrix.shape[1]))]
    lines += [f"row{row}," + ",".join(cells) for row, cells in enumerate(texts)]
    path = write((ending.join(lines) + ending).encode())
    result = sub.read_submission(path)
    np.testing.assert_array_equal(result.matrix, expected)
    assert result.ids.tolist() == [f"row{row}" for row in range(len(matrix))]
