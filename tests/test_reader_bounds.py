"""A hostile file costs no more than its size: the reader answers within a time linear in it.

Generated wide, long and malformed headers and rows are read in a child process (one,
reused: its compiled kernels load once) with a deadline, so that a quadratic step fails
the test instead of hanging CI. Files are built from drawn shapes, not drawn byte by byte:
large files stay cheap to make.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evaluator.scoring.reader import messages

# Generous for a shared 2-core machine; a quadratic step on these sizes takes minutes.
FIXED_SECONDS = 2.0
SECONDS_PER_MB = 1.0
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def read_in_child(path: str, embedding_dim: int | None) -> tuple[Any, ...]:
    """In the worker: the answer and the seconds it took."""
    from evaluator.scoring.reader.submission import read_submission
    from evaluator.support.errors import SubmissionError

    started = time.perf_counter()
    try:
        result = read_submission(path, embedding_dim=embedding_dim)
        answer: tuple[Any, ...] = ("ok", result.matrix.shape)
    except SubmissionError as error:
        answer = ("error", error.code, str(error))
    return answer, time.perf_counter() - started


def warm() -> None:
    """Load the compiled kernels (serial and parallel) in the worker."""
    import tempfile

    from evaluator.scoring.reader.submission import read_submission

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warm.csv"
        rows = "".join(f"w{row}," + ",".join([str(row % 7)] * 64) + "\n" for row in range(9000))
        path.write_text("id," + ",".join(map(str, range(64))) + "\n" + rows)
        read_submission(path)


@pytest.fixture(scope="module")
def worker() -> Iterator[ProcessPoolExecutor]:
    # spawn: forking a process whose numba threads are running can deadlock.
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(warm).result(timeout=120)
    yield pool
    pool.shutdown(cancel_futures=True)


def answer_in_time(
    worker: ProcessPoolExecutor, path: Path, embedding_dim: int | None = None
) -> tuple[Any, ...]:
    """The reader's answer, checked to come within FIXED + size x SECONDS_PER_MB."""
    limit = FIXED_SECONDS + path.stat().st_size / 2**20 * SECONDS_PER_MB
    future = worker.submit(read_in_child, str(path), embedding_dim)
    try:
        answer, seconds = future.result(timeout=4 * limit + 10)
    except FutureTimeout:
        for process in list(worker._processes.values()):  # a hung read: stop it, fail
            process.kill()
        pytest.fail(f"no answer within {4 * limit + 10:.0f} s for {path.stat().st_size} bytes")
    assert seconds <= limit, f"{seconds:.2f} s for {path.stat().st_size:,} bytes"
    if answer[0] == "error":
        assert answer[1] != "internal_error", answer[2]
        assert len(answer[2]) < 600 and "task" not in answer[2].lower()
        assert "/" not in answer[2].replace("1/", "")  # no server path
    return answer


def log_uniform(low: int, high: int) -> st.SearchStrategy[int]:
    """Sizes spread over orders of magnitude (plain integers() stays mostly small)."""
    return st.floats(math.log(low), math.log(high)).map(lambda x: min(high, int(math.exp(x))))


def numbers(count: int, seed: int) -> str:
    return ",".join(f"{(seed * 31 + column * 7) % 97 / 13:.6f}" for column in range(count))


@SETTINGS
@given(
    width=log_uniform(1, 300_000),
    rows=st.integers(0, 3),
    dim=st.one_of(st.none(), st.sampled_from([1, 384, 1024])),
    names=st.sampled_from(["digits", "letters", "mixed"]),
)
@example(width=200_000, rows=3, dim=384, names="digits")  # issue 9: minutes before the fix
def test_wide_headers(
    worker: ProcessPoolExecutor, tmp_path: Path, width: int, rows: int, dim: int | None,
    names: str,
) -> None:
    labels = [str(column) if names == "digits" or (names == "mixed" and column % 2) else
              f"c{column}" for column in range(width)]
    lines = ["id," + ",".join(labels)] + [f"r{row}," + numbers(width, row) for row in range(rows)]
    path = tmp_path / "submission.csv"
    path.write_text("\n".join(lines) + "\n")
    answer = answer_in_time(worker, path, dim)
    if width + 1 > messages.MAX_COLUMNS:
        assert answer[1] == "too_many_columns" and f"{messages.MAX_COLUMNS:,}" in answer[2]


MALFORMED = {
    "none": "",
    "bad cell": "x",
    "long cell": "1" * 150,
    "long exponent": "1e" + "0" * 5_000,
    "long id": "i" * 2_000,
    "long line": "1," * 50_000,
    "no line break": "1" * 3_000_000,
    "quote": '"1',
    "quoted cell": '"1.5"',
    "quoted id": '"i""d, \u2003"',
    "line break in quotes": '"1\n2"',
    "lone CR": "1\r2",
    "not UTF-8": "\xff",
    "blank lines": "\n" * 100_000,
}


@SETTINGS
@given(
    rows=log_uniform(1, 100_000),
    width=st.sampled_from([1, 2, 16, 300]),
    where=st.floats(0, 1),
    kind=st.sampled_from(sorted(MALFORMED)),
    crlf=st.booleans(),
)
def test_long_files_with_one_bad_spot(
    worker: ProcessPoolExecutor, tmp_path: Path, rows: int, width: int, where: float, kind: str,
    crlf: bool,
) -> None:
    rows = max(1, rows // width)  # at most ~1 MB of rows
    ending = "\r\n" if crlf else "\n"
    lines = ["id," + ",".join(map(str, range(width)))]
    lines += [f"s{row}," + numbers(width, row) for row in range(rows)]
    at = min(len(lines) - 1, 1 + int(where * (len(lines) - 1)))
    bad = MALFORMED[kind]
    if kind in ("long id", "quoted id"):
        lines[at] = bad + lines[at][lines[at].index(",") :]
    elif bad:
        lines[at] = lines[at] + bad if kind in ("no line break", "blank lines") else (
            lines[at].rsplit(",", 1)[0] + "," + bad)
    path = tmp_path / "submission.csv"
    path.write_bytes(ending.join(lines).encode("utf-8", errors="surrogateescape")
                     .replace("\xff".encode(), b"\xff") + ending.encode())
    answer = answer_in_time(worker, path)
    expected = {"none": "ok", "quoted cell": "ok", "quoted id": "ok",
                "line break in quotes": "non_numeric",
                "bad cell": "non_numeric", "long cell": "cell_too_long",
                "long exponent": "line_too_long" if width < 8 else "cell_too_long",
                "long id": "id_too_long", "long line": "line_too_long",
                "no line break": "line_too_long", "not UTF-8": "not_utf8"}
    if kind in expected and not (expected[kind] == "ok" and rows == 1 and width == 1):
        assert answer[0 if expected[kind] == "ok" else 1] == expected[kind], answer


@SETTINGS
@given(
    unit=st.sampled_from(["1,", ",", '"', "a", "\r", " ", "\xff", "id,"]),
    repeat=log_uniform(1, 20_000_000),
    line_break=st.booleans(),
    then_rows=st.booleans(),
)
def test_malformed_headers(
    worker: ProcessPoolExecutor, tmp_path: Path, unit: str, repeat: int, line_break: bool,
    then_rows: bool,
) -> None:
    header = "id," + unit * (repeat // len(unit))
    body = "a,1,2\nb,3,4\n" if then_rows else ""
    path = tmp_path / "submission.csv"
    text = header + ("\n" if line_break else "") + body
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    answer_in_time(worker, path, 1024)
