"""The submission reader: every rejection names the problem, the line and the column."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest

from evaluator.scoring.reader import fast as fast_reader
from evaluator.scoring.reader import messages, scan
from evaluator.scoring.reader import slow as slow_reader
from evaluator.scoring.reader import submission as sub
from evaluator.scoring.reader.check import check_submission
from evaluator.scoring.reader.submission import (
    ZARR_FLAG,
    padded_matrix,
    read_submission,
    row_positions,
)
from evaluator.support.errors import SubmissionError

HEADER = "id,0,1,2\n"
GOOD_ROWS = ["a,0.5,-1.25,3e-2\n", "b,1,2,3\n", "c,-0.125,.5,7.\n"]


def write(tmp_path: Path, content: str | bytes, name: str = "submission.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def good(tmp_path: Path, *extra_rows: str, header: str = HEADER) -> Path:
    return write(tmp_path, header + "".join(GOOD_ROWS) + "".join(extra_rows))


def rejected(path: Path, **kwargs: object) -> SubmissionError:
    with pytest.raises(SubmissionError) as caught:
        read_submission(path, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "task" not in message.lower() and "label" not in message.lower()
    return caught.value


# --- bad inputs --------------------------------------------------------------------------


def test_file_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    path = good(tmp_path)

    def never(*_: object) -> None:
        raise AssertionError("the file was read")

    with patch.object(fast_reader, "read", never), patch.object(slow_reader, "read", never):
        error = rejected(path, max_bytes=10)
    assert error.code == "file_too_large"
    assert "limit" in str(error)


@pytest.mark.parametrize(
    "content",
    [b"", b"id,0,1\n", b"id,0,1", b"id,0,1\r\n\r\n\n", b"\n\n", b'"id",0,1\n'],
    ids=["empty", "header", "header-no-newline", "header-blank-lines", "blank", "quoted-header"],
)
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    assert rejected(write(tmp_path, content)).code == "empty_file"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"id,0,1\na,1,2\nb\xff,1,2\n", 3),  # in an id
        (b"id,0,1\na,1,2\nb,1,\xe9\n", 3),  # in a number
        (b"id,0,\xff\na,1,2\n", 1),  # in the header
        (b'id,0,1\n"a",1,2\nb,1,"\xff"\n', 3),  # the slow reader's line count
    ],
)
def test_not_utf8_names_the_line(tmp_path: Path, content: bytes, line: int) -> None:
    error = rejected(write(tmp_path, content))
    assert error.code == "not_utf8"
    assert f"line {line}:" in str(error)
    assert "UTF-8" in str(error)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("id,0,1\na,1,2\nb,1\nc,1,2\n", 3),  # too few fields
        ("id,0,1\na,1,2\nb,1,2,3\n", 3),  # too many
        ('id,0,1\na,1,2\n"b,1,2\nc,1,2\n', 3),  # unmatched quote (slow reader)
        ("id,0,1\r\na,1,2\r\nb,1\r\n", 3),  # CRLF
    ],
)
def test_ragged_rows_are_not_csv(tmp_path: Path, content: str, line: int) -> None:
    error = rejected(write(tmp_path, content))
    assert error.code == "not_csv"
    assert f"line {line}:" in str(error)


def test_unreadable_quoted_field_is_not_csv(tmp_path: Path) -> None:
    # A quote that never closes swallows the rest of the file into one huge field.
    content = 'id,0,1\na,1,2\n"b,1,2\n' + "c,1,2\n" * 30000
    error = rejected(write(tmp_path, content))
    assert error.code == "not_csv"
    assert "line 3:" in str(error) and "quote" in str(error)


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ("name,0,1\n", "exactly 'id'"),
        ("ID,0,1\n", "Rename it to 'id'"),
        ("id;0;1\n", "separated by ';'"),
    ],
)
def test_no_id_column(tmp_path: Path, header: str, hint: str) -> None:
    error = rejected(write(tmp_path, header + "a,1,2\n"))
    assert error.code == "no_id_column"
    assert "line 1" in str(error) and hint in str(error)


@pytest.mark.parametrize("row", [",1,2,3\n", "  ,1,2,3\n", ".zarr.zip,1,2,3\n"])
def test_empty_id(tmp_path: Path, row: str) -> None:
    error = rejected(good(tmp_path, row))
    assert error.code == "empty_id"
    assert "line 5, column 'id'" in str(error)


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    error = rejected(good(tmp_path, "d,1,2,3\n", "b,4,5,6\n"))
    assert error.code == "duplicate_ids"
    assert "line 6" in str(error) and "line 3" in str(error) and "'b'" in str(error)


def test_duplicate_after_suffix_removal(tmp_path: Path) -> None:
    error = rejected(good(tmp_path, "a.zarr.zip,1,2,3\n"))
    assert error.code == "duplicate_ids"
    assert "line 5" in str(error) and "line 2" in str(error) and "suffix" in str(error)


@pytest.mark.parametrize(
    ("row", "value"),
    [
        ("d,1,abc,3\n", "'abc'"),
        ("d,1,1_000,3\n", "'1_000'"),
        ("d,1,0x10,3\n", "'0x10'"),
        ("d,1,1.5f,3\n", "'1.5f'"),
        ("d,1,\u0661,3\n", "'\u0661'"),  # an Arabic-Indic digit: float() would take it
    ],
)
def test_non_numeric_names_line_column_and_value(tmp_path: Path, row: str, value: str) -> None:
    error = rejected(good(tmp_path, row))
    assert error.code == "non_numeric"
    assert "line 5, column '1'" in str(error) and value in str(error)


def test_non_numeric_value_is_truncated(tmp_path: Path) -> None:
    error = rejected(good(tmp_path, "d,1,2," + "x" * 90 + "\n"))
    assert error.code == "non_numeric"
    assert "line 5, column '2'" in str(error)
    assert "..." in str(error) and len(str(error)) < 400


@pytest.mark.parametrize("cell", ["nan", "NaN", "-inf", "Infinity", "", "  ", "1e39", "-4e38"])
def test_not_finite_names_line_and_column(tmp_path: Path, cell: str) -> None:
    error = rejected(good(tmp_path, f"d,1,2,{cell}\n", "e,1,2,3\n"))
    assert error.code == "not_finite"
    assert "line 5, column '2'" in str(error)


def test_first_problem_in_file_order_wins(tmp_path: Path) -> None:
    error = rejected(good(tmp_path, "d,1,nan,3\n", "e,x,2,3\n"))
    assert error.code == "not_finite" and "line 5" in str(error)


def test_too_many_columns(tmp_path: Path) -> None:
    error = rejected(good(tmp_path), embedding_dim=2)
    assert error.code == "too_many_columns"
    assert "3 embedding columns" in str(error) and "at most 2" in str(error)


def test_no_embedding_columns(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "id\na\nb\n"))
    assert error.code == "no_embedding_columns"
    assert "line 1" in str(error)


@pytest.mark.parametrize("header", ["id,0,00,1\n", "id,a,a,b\n", "id,0,id,1\n"])
def test_duplicate_columns(tmp_path: Path, header: str) -> None:
    error = rejected(write(tmp_path, header + "x,1,2,3\ny,4,5,6\n"))
    assert error.code == "duplicate_columns"
    assert "line 1" in str(error)


def test_constant_matrix(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "id,0,1\na,0.5,0.5\nb,.5,5e-1\n"))
    assert error.code == "constant_matrix"
    assert "0.5" in str(error)


def test_missing_file_or_folder_is_unreadable(tmp_path: Path) -> None:
    assert rejected(tmp_path / "nope.csv").code == "unreadable"
    assert rejected(tmp_path).code == "unreadable"


def test_missing_ids_say_how_many_with_examples(tmp_path: Path) -> None:
    submission = read_submission(good(tmp_path))
    required = np.array(["a", "x1", "x2", "x3", "x4", "x5", "x6", "x6", "c"], dtype=object)
    with pytest.raises(SubmissionError) as caught:
        row_positions(submission, required)
    message = str(caught.value)
    assert caught.value.code == "missing_ids"
    assert message.startswith("6 required id(s) are missing")
    assert "'x1', 'x2', 'x3', 'x4', 'x5')" in message and "x6" not in message
    assert "task" not in message.lower() and "label" not in message.lower()


# --- happy paths ---------------------------------------------------------------------------


def test_reads_ids_values_and_columns(tmp_path: Path) -> None:
    submission = read_submission(good(tmp_path))
    assert submission.ids.dtype == object and submission.ids.tolist() == ["a", "b", "c"]
    assert submission.columns == ["0", "1", "2"]
    expected = [[0.5, -1.25, 0.03], [1, 2, 3], [-0.125, 0.5, 7]]
    np.testing.assert_array_equal(submission.matrix, np.float32(expected))
    assert submission.matrix.dtype == np.float32 and submission.matrix.flags.c_contiguous
    assert submission.warnings == [] and submission.flags == {ZARR_FLAG: False}
    assert len(submission) == 3


def test_digit_columns_are_sorted_by_value(tmp_path: Path) -> None:
    path = write(tmp_path, "10,id,2,0\n1.0,a,2.0,0.0\n1.1,b,2.1,0.1\n")
    submission = read_submission(path)
    assert submission.columns == ["0", "2", "10"]
    np.testing.assert_array_equal(submission.matrix, np.float32([[0, 2, 1], [0.1, 2.1, 1.1]]))


@pytest.mark.parametrize(
    ("header", "columns", "first_row"),
    [
        ("id,0,1,2", ["0", "1", "2"], [1, 2, 3]),  # as pandas writes it: the short way
        ("\ufeffid,0,1,2", ["0", "1", "2"], [1, 2, 3]),
        ("id,1,0,2", ["0", "1", "2"], [2, 1, 3]),  # the same names, not in order
        ("id, 0,1 ,2", ["0", "1", "2"], [1, 2, 3]),  # spaces around names
        ("id,0,01,2", ["0", "01", "2"], [1, 2, 3]),
        ("id,0,2,3", ["0", "2", "3"], [1, 2, 3]),  # a gap
        ('id,0,"1,2",3', ["0", "3"], [1, 3]),  # a name with a comma in it (ignored)
    ],
)
def test_a_header_that_counts_up_reads_as_any_other(
    tmp_path: Path, header: str, columns: list[str], first_row: list[float]
) -> None:
    path = write(tmp_path, f"{header}\na,1,2,3\nb,4,5,6\n")
    submission = read_submission(path)
    assert submission.columns == columns and submission.matrix[0].tolist() == first_row


@pytest.mark.parametrize(
    ("names", "count", "expected"),
    [
        ("0,1,2", 3, True), ("0,1,2", 2, False), ("0,1,2", 4, False), ("0", 1, True),
        ("1", 1, False), ("00", 1, False), ("0,1,", 2, False), ("0,1 ", 2, False),
        (",".join(map(str, range(1001))), 1001, True),
        (",".join(map(str, range(1000))) + ",1001", 1001, False),
    ],
)
def test_counts_up(names: str, count: int, expected: bool) -> None:
    assert scan.counts_up(np.frombuffer(names.encode(), np.uint8), count) is expected


def test_other_columns_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, ",id,0,1,note\n0,a,1,2,é ok\n1,b,3,4,\n")
    submission = read_submission(path)
    assert submission.columns == ["0", "1"]
    assert submission.matrix.tolist() == [[1, 2], [3, 4]]
    assert "''" in submission.warnings[0] and "'note'" in submission.warnings[0]


def test_without_digit_columns_every_other_column_is_embedding(tmp_path: Path) -> None:
    path = write(tmp_path, "b,id,a\n1,x,2\n3,y,4\n")
    submission = read_submission(path)
    assert submission.columns == ["b", "a"]
    assert submission.matrix.tolist() == [[1, 2], [3, 4]]


def test_zarr_suffix_is_stripped_with_flag_and_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "id,0,1\ns1.zarr.zip,1,2\ns2.zarr,3,4\ns3,5,6\n")
    submission = read_submission(path)
    assert submission.ids.tolist() == ["s1", "s2", "s3"]
    assert submission.flags == {ZARR_FLAG: True}
    assert len(submission.warnings) == 1 and "2 of 3 ids" in submission.warnings[0]


@pytest.mark.parametrize(
    "content",
    [
        "id,0,1\r\na,1,2\r\nb,3,4\r\n",  # CRLF
        "\ufeffid,0,1\na,1,2\nb,3,4",  # BOM, no final line break
        "id,0,1\n\na,1,2\n\r\n\nb,3,4\n\n",  # blank lines
        'id,0,1\na,"1",2\n"b",3,"4"\n',  # quotes
        '"id","0","1"\r"a",1,2\r"b",3,4\r',  # old Mac line breaks
        "\n\r\n\rid,0,1\na,1,2\nb,3,4\n",  # blank lines before the header
        '"id",0,"1"\r\n" a\u2003",1," 2 "\r\n"b",3,4',  # quoted blanks, Unicode space
        "id , 0 ,1\n a ,1 , 2\nb, 3,+4.0e0\n",  # spaces around names, ids and numbers
    ],
)
def test_dialects_read_the_same(tmp_path: Path, content: str) -> None:
    # All by the fast reader: only a record that spans lines needs the csv module.
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        submission = read_submission(write(tmp_path, content))
    assert submission.ids.tolist() == ["a", "b"]
    assert submission.matrix.tolist() == [[1, 2], [3, 4]]


def test_quoted_ids_keep_commas_quotes_and_suffixes(tmp_path: Path) -> None:
    content = 'id,0,1\n"a,""x""",1,2\n"b.zarr.zip",3,4\n"c""",5,6\n'
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        submission = read_submission(write(tmp_path, content))
    assert submission.ids.tolist() == ['a,"x"', "b", 'c"']
    assert submission.flags[ZARR_FLAG] and "'b.zarr.zip'" in submission.warnings[0]
    error = rejected(write(tmp_path, content + 'd,7,8\n"a,""x""",9,9\n'))
    assert error.code == "duplicate_ids" and "line 6" in str(error) and "line 2" in str(error)


def test_ids_that_span_lines_are_read_by_the_fast_reader(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,0,1\n"a\nb",1,2\n"c\r\nd\re",3,4\nf,1,x\n')
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        error = rejected(path)
        assert error.code == "non_numeric" and "line 7" in str(error)
        path = write(tmp_path, 'id,0,1\n"a\nb",1,2\nc,3,4\n" a\nb\n",5,6\n')
        error = rejected(path)
        assert error.code == "duplicate_ids" and "line 5" in str(error) and "line 2" in str(error)
        path = write(tmp_path, 'id,0,1\n"a\nb",1,2\nc,3,4\n')
        assert read_submission(path).ids.tolist() == ["a\nb", "c"]


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (b'id,0,1\na,"1\n",2\nc,3,4\nd,1,x\n', "non_numeric", 2),  # a cell with a line break
        (b'id,0,1\nc,3,4\n"a\nb",1,x\n', "non_numeric", 3),  # a bad cell after an id's break
        (b'id,0,1\r\n"a\r\n\r\nb",1,"2\r"\r\n', "non_numeric", 2),
        (b'id,0,1\na,1,2\n"b\nc,3,4\n', "not_csv", 3),  # a quote left open at the end
        (b'id,0,1\na,1,2\n"b\nc,3,4', "not_csv", 3),
        (b'id,0,1\n"a\n' + b"b" * 5000 + b'",1,2\n', "line_too_long", 3),  # its second line
        (b'id,0,1\n"a\n\xff",1,2\n', "not_utf8", 3),
        (b'id,0,1\n"a\nb"c,1,2\nd,3,x\n', "non_numeric", 4),  # csv appends c: lines go on
        (b'id,0,1\n"a\nb"c,1,2\n"a\nbc",3,4\n', "duplicate_ids", 4),
        (b'id,0,"\n1"\r\na,1,2\r\nb,3,x\r\n', "non_numeric", 4),  # a header's line break
        (b'id,0,"a\n\xff"\na,1,2\n', "not_utf8", 2),
        (b'id,0,"a\n' + b"b" * (messages.MAX_HEADER_BYTES + 1) + b'"\n', "line_too_long", 2),
        (b'id,0,0,"a\nb,1,2\n', "duplicate_columns", 1),  # the header's quote left open
    ],
)
def test_records_that_span_lines_get_the_slow_readers_verdict_on_their_own(
    tmp_path: Path, content: bytes, code: str, line: int
) -> None:
    # Only the record (or header) is read by csv, as the slow reader reads it; not the
    # whole file.
    path = write(tmp_path, content)
    with pytest.raises(SubmissionError) as slow:
        slow_reader.read(path, None)
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        error = rejected(path)
    assert (error.code, str(error)) == (slow.value.code, str(slow.value))
    assert error.code == code and str(error).startswith(f"line {line}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # Lines of a row each, under csv's field limit: the record's lines together are
        # longer than a row can be.
        ('id,0,1\na,1,2\n"b,1,2\n' + "c,1,2\n" * 30_000, "line 3: the record that starts"),
        # A header wide enough that csv's field limit (131,072 characters) comes first.
        ("id," + ",".join(map(str, range(1100))) + '\na' + ",1" * 1100 + '\n"b'
         + ("," + "1" * 999 + "\n") * 200, "line 3: not readable as CSV (field larger"),
        # A line that is not UTF-8 before either limit.
        ('id,0,1\na,1,2\n"b,1,2\n' + "c,1,2\n" * 100 + "\udcff\n" + "c,1,2\n" * 30_000,
         "line 104: the bytes are not valid UTF-8"),
    ],
)
def test_a_quote_left_open_early_is_refused_after_one_row_s_worth(
    tmp_path: Path, content: str, message: str
) -> None:
    # The rest of the file is one record still open, over many blocks: csv reads it from
    # the file, no further than the rules allow, with the slow reader's verdict.
    path = tmp_path / "submission.csv"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(SubmissionError) as slow:
        slow_reader.read(path, None)
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")), \
            patch.object(fast_reader, "_BLOCK_BYTES", 4096), \
            patch.object(fast_reader, "_MIN_BLOCK_BYTES", 4096):
        error = rejected(path)
    assert (error.code, str(error)) == (slow.value.code, str(slow.value))
    assert error.code in ("not_csv", "not_utf8") and str(error).startswith(message)


@pytest.mark.parametrize("code", ["non_numeric", "line_too_long"])
def test_the_first_problem_in_the_file_wins_however_far_ahead_blocks_are_parsed(
    tmp_path: Path, code: str
) -> None:
    # Blocks are read and parsed in another thread, ahead of the one whose rows are taken
    # (slowed down here): what it finds further on must wait for the earlier lines' verdict.
    rows = [f"s{row},{row},1\n" for row in range(3_000)]  # ~370 rows a block of 4 kB
    first, then = ("b,1,x\n", "y" * 20_000 + "\n")[:: 1 if code == "non_numeric" else -1]
    # In the fourth and the fifth block: reading the fifth refuses the long line while the
    # fourth still waits for its turn.
    rows[1200], rows[1300] = first, then
    path = write(tmp_path, "id,0,1\n" + "".join(rows))
    with pytest.raises(SubmissionError) as slow:
        slow_reader.read(path, None)
    collect = fast_reader._collect

    def slowly(*arguments: Any) -> bool:
        time.sleep(0.2)
        return collect(*arguments)

    with patch.object(fast_reader, "_BLOCK_BYTES", 4096), \
            patch.object(fast_reader, "_MIN_BLOCK_BYTES", 4096), \
            patch.object(fast_reader, "_collect", slowly):
        error = rejected(path)
    assert (error.code, str(error)) == (slow.value.code, str(slow.value))
    assert error.code == code and str(error).startswith("line 1202")


def test_a_record_or_header_with_a_line_break_that_csv_completes_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,0,1\n"a\nb"c,1,2\nd,3,4\n')
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        submission = read_submission(path)
    assert submission.ids.tolist() == ["a\nbc", "d"]
    assert submission.matrix.tolist() == [[1, 2], [3, 4]]
    path = write(tmp_path, '\nid,"x\r\ny",0\r\n\r\na,1,2\r\nb,3,4')  # and a header's
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        submission = read_submission(path)
    assert submission.ids.tolist() == ["a", "b"] and submission.matrix.tolist() == [[2], [4]]
    assert repr("x\r\ny") in submission.warnings[0]


def test_values_are_float32_of_the_decimal(tmp_path: Path) -> None:
    texts = [
        "0.1", "-0.30000000000000004", "3.4028234663852886e38", "1e-38", "1.17549435e-38",
        "1.4e-45", "123456789012345678", "0.000001", "1e22", "1e23", "-0", "16777217",
        "0.12345678901234567", "9007199254740993", "2.5e-7", "1E5", "5.", ".5",
        "16777217.000000001", "16777216.999999999", "16777217", "0.30000001192092896",
    ]
    rows = [f"r{i},{text},{i}\n" for i, text in enumerate(texts)]
    submission = read_submission(write(tmp_path, "id,0,1\n" + "".join(rows)))
    expected = np.array([float(text) for text in texts]).astype(np.float32)
    np.testing.assert_array_equal(submission.matrix[:, 0], expected)
    assert np.signbit(submission.matrix[10, 0])  # -0 stays negative zero


def test_small_blocks_give_the_same_result(tmp_path: Path) -> None:
    # Many blocks and segments, lines longer than a block, a blank line; both kernels.
    rng = np.random.default_rng(3)
    values = rng.normal(size=(60, 7)).astype(np.float32)
    lines = [f"id{i}," + ",".join(f"{v:.6g}" for v in row) for i, row in enumerate(values)]
    lines[10] += "\n"  # a blank line
    path = write(tmp_path, "id," + ",".join(map(str, range(7))) + "\n" + "\n".join(lines) + "\n")
    expected = read_submission(path)
    with patch.object(fast_reader, "_BLOCK_BYTES", 48), \
            patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 8):
        small = read_submission(path)
    with patch.object(fast_reader, "_BLOCK_BYTES", 512), \
            patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 8), \
            patch.object(fast_reader, "_PARALLEL_BYTES", 0):
        parallel = read_submission(path)
    np.testing.assert_array_equal(parallel.matrix, expected.matrix)
    assert small.ids.tolist() == expected.ids.tolist()
    np.testing.assert_array_equal(small.matrix, expected.matrix)
    np.testing.assert_array_equal(expected.matrix, np.float32([[float(f"{v:.6g}") for v in row]
                                                                for row in values]))


def test_small_blocks_report_the_same_line(tmp_path: Path) -> None:
    rows = [f"r{i},{i},{i + 1}\n" for i in range(40)]
    rows[33] = "r33,1,oops\n"
    path = write(tmp_path, "id,0,1\n\n" + "".join(rows))
    with patch.object(fast_reader, "_BLOCK_BYTES", 32), \
            patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 8), \
            patch.object(fast_reader, "_PARALLEL_BYTES", 0):
        error = rejected(path)
    assert error.code == "non_numeric" and "line 36, column '1'" in str(error)


@pytest.mark.parametrize("valid_rows", [0, 30])
def test_many_short_bad_lines_are_refused_without_the_slow_reader(
    tmp_path: Path, valid_rows: int
) -> None:
    # More lines than a valid file of this width could hold: the first bad one says so, as
    # the slow reader would, without reading the file again.
    header = "id," + ",".join(map(str, range(50))) + "\n"
    rows = "".join(f"r{row}," + ",".join(["1.5"] * 50) + "\n" for row in range(valid_rows))
    path = write(tmp_path, header + rows + "x\n" * 1000)
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        error = rejected(path)
    assert str(error) == str(both_readers(path))
    assert error.code == "not_csv" and f"line {valid_rows + 2}:" in str(error)


def test_padded_matrix(tmp_path: Path) -> None:
    submission = read_submission(good(tmp_path))
    same, warnings = padded_matrix(submission, None)
    assert same is submission.matrix and warnings == []
    same, warnings = padded_matrix(submission, 3)
    assert same is submission.matrix and warnings == []
    wide, warnings = padded_matrix(submission, 5)
    assert wide.shape == (3, 5) and wide.dtype == np.float32 and wide.flags.c_contiguous
    np.testing.assert_array_equal(wide[:, :3], submission.matrix)
    assert not wide[:, 3:].any()
    assert len(warnings) == 1 and "3 embedding columns" in warnings[0] and "zeros" in warnings[0]
    with pytest.raises(SubmissionError) as caught:
        padded_matrix(submission, 2)
    assert caught.value.code == "too_many_columns"


def test_row_positions_ignore_extra_ids(tmp_path: Path) -> None:
    submission = read_submission(good(tmp_path, "d,9,9,9\n"))
    positions = row_positions(submission, np.array(["c", "a", "c"], dtype=object))
    assert positions.dtype == np.int64 and positions.tolist() == [2, 0, 2]
    assert row_positions(submission, np.array([], dtype=object)).tolist() == []


def read_fast(path: Path) -> sub.Submission:
    with patch.object(slow_reader, "read", side_effect=AssertionError("slow reader")):
        return read_submission(path)


def read_slow(path: Path) -> sub.Submission:
    with patch.object(fast_reader, "read", return_value=None):  # None: the slow reader decides
        return read_submission(path)


# Quoted "" (the fast reader unquotes), a line break, white space and suffixes to drop,
# non-ASCII (the kernel strips U+3000; "e" + U+0301 is not "é").
LOOKED_UP = ["a", "B", ' " c " ', "d.zarr", "e.zarr.zip", "é", "e\u0301", "日本", "\u3000f\u3000",
             "g\nh", 'q"uote', "x" * 100]
QUERIES = ["A", "b", " a", "a ", "c", " c ", "d", "d.zarr", "e.zarr", "e", "é", "e\u0301",
           "E\u0301", "日", "日本", "f", "\u3000f", "g\nh", "g\r\nh", 'q"uote', "x" * 100,
           "x" * 99, "", "\ud800", "a\udcff", "日本\ud800"]


@pytest.mark.parametrize("read", [read_fast, read_slow])
def test_row_positions_agree_with_a_dict_over_the_ids(
    tmp_path: Path, read: Callable[[Path], sub.Submission]
) -> None:
    submission = read(write(tmp_path, "id,0\n" + "".join(
        f'"{sample_id.replace(chr(34), 2 * chr(34))}",{row}\n'
        for row, sample_id in enumerate(LOOKED_UP))))
    expected = [sample_id.strip().removesuffix(".zarr.zip").removesuffix(".zarr")
                for sample_id in LOOKED_UP]
    assert len(submission) == len(expected)
    assert submission.ids.tolist() == expected
    row_of = {sample_id: row for row, sample_id in enumerate(submission.ids.tolist())}
    absent = [query for query in QUERIES if query not in row_of]
    for required in [expected[::-1], *(["a", query] for query in QUERIES), QUERIES + absent[::-1]]:
        missing = list(dict.fromkeys(query for query in required if query not in row_of))
        if not missing:
            positions = row_positions(submission, np.array(required, dtype=object))
            assert positions.tolist() == [row_of[query] for query in required]
            continue
        with pytest.raises(SubmissionError) as caught:
            row_positions(submission, np.array(required, dtype=object))
        examples = ", ".join(messages.show(query) for query in missing[:5])
        assert str(caught.value).startswith(f"{len(missing)} required id(s) are missing from "
                                            f"the submission (for example {examples}).")


def test_check_submission_reports(tmp_path: Path) -> None:
    path = write(tmp_path, "id,0,1\na.zarr,1,2\nb,3,4\nc,5,6\n")
    ids = write(tmp_path, "a\nb\n\n", name="ids.txt")
    lines = check_submission(path, ids_file=ids, embedding_dim=3)
    assert lines[0] == "submission.csv: 3 rows, 2 embedding columns (0, 1)"
    assert any(line.startswith("WARNING:") and ".zarr" in line for line in lines)
    # Says what WILL happen at scoring, and the verdict cannot be mistaken for a plain OK.
    assert any(line.startswith("WARNING:") and "columns 2..2 are scored as zeros" in line
               and "lowers the scores" in line for line in lines)
    assert not any(line.startswith("flag:") for line in lines)
    assert "all 2 ids of ids.txt are present; 1 extra rows will be ignored" in lines
    assert lines[-1] == ("The submission can be scored, but read the 2 WARNING lines above "
                         "before you upload it.")


def test_check_submission_with_csv_ids_file(tmp_path: Path) -> None:
    path = good(tmp_path)
    ids = write(tmp_path, "label,id\n1,a\n0,zz\n1,yy\n", name="ids.csv")
    with pytest.raises(SubmissionError) as caught:
        check_submission(path, ids_file=ids)
    assert caught.value.code == "missing_ids"
    assert str(caught.value).startswith("2 required id(s)") and "'zz', 'yy'" in str(caught.value)
    plain = check_submission(path)
    assert plain[-1].startswith("OK") and not any("warning" in line for line in plain)


def test_check_submission_raises_on_bad_file(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError) as caught:
        check_submission(write(tmp_path, "id,0\na,x\n"))
    assert caught.value.code == "non_numeric"


def test_header_after_blank_lines_keeps_line_numbers(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "\n\nid,0,1\na,1,2\nb,1\n"))
    assert error.code == "not_csv"
    assert "line 5:" in str(error) and "header (line 3)" in str(error)
    error = rejected(write(tmp_path, "\r\nname,0\na,1\n"))
    assert error.code == "no_id_column" and str(error).startswith("line 2 (header)")


def test_duplicates_and_suffixes_across_blocks(tmp_path: Path) -> None:
    rows = [f"s{i}.zarr.zip,{i},{i + 1}\n" for i in range(30)]
    path = write(tmp_path, "id,0,1\n" + "".join(rows))
    with patch.object(fast_reader, "_BLOCK_BYTES", 40), \
            patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 8):
        submission = read_submission(path)
        assert submission.ids.tolist() == [f"s{i}" for i in range(30)]
        assert submission.flags[ZARR_FLAG] and "30 of 30 ids" in submission.warnings[0]
        assert "'s0.zarr.zip', 's1.zarr.zip', 's2.zarr.zip'" in submission.warnings[0]
        error = rejected(write(tmp_path, "id,0,1\n" + "".join(rows) + "s7,1,1\n"))
    assert error.code == "duplicate_ids" and "line 32" in str(error) and "line 9" in str(error)


# --- hostile sizes: refused early, the same way by both readers ---------------------------


def both_readers(path: Path, embedding_dim: int | None = None) -> SubmissionError:
    """The fast reader's error, after checking that the slow reader gives the same one."""
    size = sub._checked_size(path, sub.DEFAULT_MAX_BYTES)
    errors = []
    for read in (lambda: fast_reader.read(path, size, embedding_dim),
                 lambda: slow_reader.read(path, embedding_dim)):
        with pytest.raises(SubmissionError) as caught:
            parsed = read()
            if parsed is not None:
                sub._finish(*parsed)
        errors.append(caught.value)
    fast, slow = errors
    assert (fast.code, str(fast)) == (slow.code, str(slow))
    return fast


@pytest.mark.parametrize("dim", [None, 384])
def test_header_wider_than_any_challenge(tmp_path: Path, dim: int | None) -> None:
    header = "id," + ",".join(map(str, range(200_000)))
    path = write(tmp_path, header + "\n" + ("a," + ",".join(["1"] * 200_000) + "\n") * 3)
    error = both_readers(path, dim)
    assert error.code == "too_many_columns" and "200,001 columns" in str(error)
    assert "65,536" in str(error) and str(error).startswith("line 1 (header)")
    assert ("383" in str(error)) == (dim is not None)


def test_wide_header_under_the_limit_is_read_in_linear_time(tmp_path: Path) -> None:
    width = messages.MAX_COLUMNS - 1
    rows = "".join(f"r{row}," + ",".join([str(row + 1)] * width) + "\n" for row in range(3))
    path = write(tmp_path, "id," + ",".join(map(str, range(width))) + "\n" + rows)
    assert read_submission(path).matrix.shape == (3, width)
    assert rejected(path, embedding_dim=1024).code == "too_many_columns"


def test_huge_digit_column_name(tmp_path: Path) -> None:
    # int() refuses over 4,300 digits: the order of digit names must not depend on it.
    path = write(tmp_path, f"id,1,{'0' * 5000}2,{'0' * 4999}2\na,1,2,3\nb,4,5,6\n")
    assert both_readers(path).code == "duplicate_columns"
    path = write(tmp_path, f"id,1,{'9' * 5000},0\na,1,2,3\nb,4,5,6\n")
    assert read_submission(path).matrix.tolist() == [[3, 1, 2], [6, 4, 5]]


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("d,1,2," + "3" * 5000, "line_too_long"),
        ("d,1,2," + "," * 5000, "line_too_long"),
        ("d,1,2,1e" + "0" * 150, "cell_too_long"),
        ("d,1,2," + "0" * 150 + "1", "cell_too_long"),
        ("d,1,2, " + " " * 150 + "1", "cell_too_long"),
        ("x" * 1001 + ",1,2,3", "id_too_long"),
    ],
)
def test_hostile_line_cell_or_id(tmp_path: Path, row: str, code: str) -> None:
    path = good(tmp_path, row + "\n", "e,1,2,3\n")
    error = both_readers(path)
    assert error.code == code and "line 5" in str(error)
    with patch.object(fast_reader, "_BLOCK_BYTES", 64), \
            patch.object(fast_reader, "_MIN_SEGMENT_BYTES", 8):
        assert str(rejected(path)) == str(error)
    # An earlier problem still wins.
    assert both_readers(good(tmp_path, "c,1,x,3\n", row + "\n")).code == "non_numeric"


def test_line_without_end_is_refused_once_past_the_limit(tmp_path: Path) -> None:
    rows = "".join(f"a{row},{row}\n" for row in range(10))
    path = write(tmp_path, "id,0\n" + rows + "b," + "1" * 20_000_000)
    with patch.object(fast_reader, "_BLOCK_BYTES", 4096):
        error = rejected(path)
    assert error.code == "line_too_long" and "line 12:" in str(error)
    assert "4,352 bytes" in str(error)
    assert str(both_readers(path)) == str(error)


def test_header_longer_than_any_challenge(tmp_path: Path) -> None:
    path = write(tmp_path, "id,0," + "x" * messages.MAX_HEADER_BYTES + "\na,1,2\n")
    error = both_readers(path)
    assert error.code == "line_too_long" and str(error).startswith("line 1 (header)")


def test_a_header_of_many_short_lines_is_bounded_as_a_whole(tmp_path: Path) -> None:
    # Quoted line breaks make each line short; together they are over any header's size.
    fields = messages.MAX_HEADER_BYTES // 4 + 1
    path = write(tmp_path, "id," + '"\n",' * fields + "0\na,1,2\n")
    error = both_readers(path)
    assert error.code == "line_too_long" and "(header)" in str(error)


@pytest.mark.parametrize(
    ("dim", "content", "code"),
    [
        (384, "id," + ",".join(map(str, range(200_000))) + "\na,1\n", "too_many_columns"),
        (None, "id,0,1\na,1,2\nb,3," + "4" * 9_000 + "\n", "line_too_long"),
        (None, "id,0,1\na,1,2\nb,3,x\n", "non_numeric"),
        (None, 'id,"0",1\r"a ""1""",1,"2"\r"a ""1"" ",3,4\r', "duplicate_ids"),
    ],
)
def test_check_submission_and_evaluate_say_the_same(
    tmp_path: Path, dim: int | None, content: str, code: str
) -> None:
    from tests.builders import TaskSpec, write_challenge

    labels, _ = write_challenge(tmp_path, [TaskSpec("t", 20)], dim=4)
    path = write(tmp_path, content, name="bad.csv")
    config = write(tmp_path, f"embedding_dim: {dim}\n" if dim else "k_folds: 2\n", "c.yaml")
    dim_flag = ["--dim", str(dim)] if dim else []
    errors = []
    for args in (["check-submission", path, *dim_flag],
                 ["evaluate", "--labels", labels, "--submission", path, "--config", config,
                  "--output", tmp_path / "out"]):
        done = subprocess.run([sys.executable, "-m", "evaluator", *map(str, args)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        (line,) = [line for line in done.stderr.splitlines() if ": error: " in line]
        errors.append(line.split(": error: ", 1)[1])
    assert errors[0] == errors[1]
    assert str(rejected(path, embedding_dim=dim)) == errors[0]
    assert rejected(path, embedding_dim=dim).code == code
