"""Benchmark: what a submission costs the reader, per MB, for valid and hostile files.

    python benchmarks/bench_reader.py [--quick]

Generates files of growing width (10 to 1,000,000 columns), length (10 to 1,000,000 rows)
and line length, valid and hostile, in a temporary folder (deleted afterwards), and reads
each in a fresh child process (compiled kernels loaded first, as a daemon has them), so that
the peak memory is that read's own. Prints per file: size, outcome, read time, time per MB,
peak memory above the baseline, and the time as a ratio of a valid full-size submission
(13,260 x 1,024) measured in the same run. Targets: time per MB flat (within 2x) over valid
files of 1 MB or more; no hostile file slower than the full-size baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1 << 20
_RNG = np.random.default_rng(0)
# Values as participants write them (pandas' float_format="%.6f"): ~9 bytes a cell.
_POOL = np.array([f"{value:.6f}" for value in _RNG.normal(0, 0.3, 4096)], dtype=object)


def memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(path: str, dim: str) -> dict:
    """One read, timed, in this fresh process; the peak is reset after warming up."""
    from evaluator.errors import SubmissionError
    from evaluator.submission import read_submission

    with tempfile.TemporaryDirectory() as folder:  # load the serial and parallel kernels
        warm = Path(folder) / "warm.csv"
        rows = (f"w{row}," + ",".join(_POOL[(row + np.arange(64)) % len(_POOL)])
                for row in range(2500))
        warm.write_text("id," + ",".join(map(str, range(64))) + "\n" + "\n".join(rows) + "\n")
        read_submission(warm)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    baseline = memory_kib("VmRSS")
    started = time.perf_counter()
    try:
        matrix = read_submission(path, embedding_dim=int(dim) if dim != "-" else None).matrix
        outcome = f"ok {matrix.shape[0]:,} x {matrix.shape[1]:,}"
        matrix_mb = matrix.nbytes / MB
    except SubmissionError as error:
        outcome, matrix_mb = f"error {error.code}", 0.0
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": (memory_kib("VmHWM") - baseline) / 1024,
            "outcome": outcome, "matrix_mb": matrix_mb}


def measure(path: Path, dim: int | None = None) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", str(path), str(dim) if dim else "-"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- file makers: each writes one file and returns nothing ---------------------------------


def header(width: int) -> str:
    return "id," + ",".join(map(str, range(width))) + "\n"


def matrix_rows(rows: int, width: int, first: int = 0) -> Iterator[str]:
    """Distinct ids, values drawn from the pool (rows repeat every 256: cheap to make)."""
    picks = _POOL[_RNG.integers(0, len(_POOL), size=(min(rows, 256), width))]
    for row in range(rows):
        yield f"s{first + row:07d}," + ",".join(picks[row % len(picks)]) + "\n"


def valid(rows: int, width: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("w") as handle:
            handle.write(header(width))
            handle.writelines(matrix_rows(rows, width))
    return make


def with_tail(rows: int, width: int, tail: str | bytes, repeat: int = 1,
              head: str | None = None) -> Callable[[Path], None]:
    """A valid start, then `tail` written `repeat` times (a hostile line, cell, id...)."""
    def make(path: Path) -> None:
        with path.open("wb") as handle:
            handle.write((head if head is not None else header(width)).encode())
            for line in matrix_rows(rows, width):
                handle.write(line.encode())
            chunk = tail.encode() if isinstance(tail, str) else tail
            for _ in range(repeat):
                handle.write(chunk)
    return make


def quoted(rows: int, width: int) -> Callable[[Path], None]:
    """Valid, but every id quoted: the csv module's slow path, the whole file."""
    def make(path: Path) -> None:
        with path.open("w") as handle:
            handle.write(header(width))
            handle.writelines(f'"{line[:8]}"{line[8:]}' for line in matrix_rows(rows, width))
    return make


def cases(quick: bool) -> list[tuple[str, str, Callable[[Path], None], int | None]]:
    """(group, label, maker, embedding_dim)."""
    target = (8 if quick else 32) * MB  # bytes per valid file of the width series
    width_series = [
        ("width", f"valid {width:,} columns", valid(max(3, target // (9 * width)), width), None)
        for width in (10, 100, 1_000, 10_000, 65_535)
    ]
    width_series += [
        ("width", "hostile 100,000 columns, 3 rows", valid(3, 100_000), None),
        ("width", "hostile 200,000 columns, 3 rows, --dim 384 (issue 9)", valid(3, 200_000),
         384),
        ("width", "hostile 1,000,000 columns, 3 rows", valid(3, 1_000_000), None),
    ]
    lengths = (10, 100, 1_000, 10_000, 100_000) + (() if quick else (1_000_000,))
    length_series = [("length", f"valid {rows:,} rows x 8", valid(rows, 8), None)
                     for rows in lengths]
    length_series += [
        ("length", "hostile 100 MB of blank lines", with_tail(0, 8, b"\n" * MB, 100), None),
        ("length", "hostile full-size, bad cell on the last line",
         with_tail(13_259, 1024, "s9999999," + "x," * 1023 + "1\n"), None),
    ]
    line_series = [
        ("line", f"hostile line of {size // MB or size:,}{' MB' if size >= MB else ' B'}"
                 " without line break", with_tail(5, 1024, b"1" * min(size, MB),
                                                  max(1, size // MB)), None)
        for size in (10_000, MB, 100 * MB)
    ] + [
        ("line", "hostile 100 MB header without line break", with_tail(
            0, 1, b"1," * (MB // 2), 100, head="id,"), None),
        ("line", "hostile 10 MB cell", with_tail(5, 2, "s9999999,1," + "1" * 10 * MB + "\n"),
         None),
        ("line", "hostile 10 MB id", with_tail(5, 2, "x" * 10 * MB + ",1,2\n"), None),
        ("line", "hostile 1,000-byte cells (0.000...1)", with_tail(
            5, 1024, "s9999999," + ",".join(["0." + "0" * 995 + "1"] * 1024) + "\n"), None),
        ("line", "valid-but-slow: full-size, every id quoted (csv module)",
         quoted(2_000 if quick else 13_260, 1024), None),
    ]
    return width_series + length_series + line_series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller files (a smoke test)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    folder = Path(tempfile.mkdtemp(prefix="probeboard-bench-reader-"))
    try:
        path = folder / "submission.csv"
        valid(13_260, 1024)(path)
        size = path.stat().st_size / MB
        base = measure(path)
        path.unlink()
        print(f"baseline: valid full-size {size:.0f} MB (13,260 x 1,024): {base['seconds']:.2f} s"
              f" = {base['seconds'] / size * 1000:.1f} ms/MB, peak {base['peak_mb']:.0f} MB "
              f"= {base['peak_mb'] / base['matrix_mb']:.2f}x the float32 matrix")
        print(f"\n{'group':<7}{'file':<58}{'MB':>8}  {'outcome':<26}{'s':>7}{'ms/MB':>8}"
              f"{'peak MB':>9}{'x base':>8}")
        per_mb: dict[str, list[float]] = {}
        slower: list[str] = []
        for group, label, make, dim in cases(args.quick):
            make(path)
            size = path.stat().st_size / MB
            result = measure(path, dim)
            path.unlink()
            ratio = result["seconds"] / base["seconds"]
            rate = result["seconds"] / size * 1000
            print(f"{group:<7}{label:<58}{size:>8.2f}  {result['outcome']:<26}"
                  f"{result['seconds']:>7.3f}{rate:>8.2f}{result['peak_mb']:>9.1f}{ratio:>8.3f}",
                  flush=True)
            if label.startswith("valid ") and result["outcome"].startswith("ok") and size >= 1:
                per_mb.setdefault(group, []).append(rate)
            if label.startswith("hostile") and ratio > 1:
                slower.append(label)
        print()
        per_mb["all"] = [rate for group_rates in per_mb.values() for rate in group_rates]
        for group, rates in per_mb.items():
            print(f"valid files >= 1 MB, {group}: {min(rates):.2f} to {max(rates):.2f} ms/MB, "
                  f"spread {max(rates) / min(rates):.2f}x (target <= 2x)")
        print("hostile files slower than the baseline: " + (", ".join(slower) or "none"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
