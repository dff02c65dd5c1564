"""Benchmark: what a submission costs the reader, per MB, for valid and hostile files.

    python benchmarks/bench_reader.py [--quick] [--repeat N]

Generates files of growing width (10 to 1,000,000 columns: the line length), length (10 to
1,000,000 rows), CSV dialects (quotes, line breaks) and hostile content, in a temporary
folder (deleted afterwards), and reads each in a fresh child process (compiled kernels
loaded first, as a daemon has them), so that the peak memory is that file's own; the time is
the best of N reads (the machine may be shared). Prints per file: size, outcome, read time,
time per MB, peak memory above the baseline, and the time as a ratio of a valid full-size
submission (13,260 x 1,024) measured in the same run. Targets: time per MB flat (within 2x)
over valid files of 1 MB or more; no hostile or odd-dialect file slower than the baseline.
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


def worker(path: str, dim: str, repeat: str) -> dict:
    """Reads, timed (the best one), in this fresh process; the peak is reset after warming
    up, and is that of the reads."""
    from evaluator.scoring.reader.submission import read_submission
    from evaluator.support.errors import SubmissionError

    with tempfile.TemporaryDirectory() as folder:  # load the serial and parallel kernels
        warm = Path(folder) / "warm.csv"
        rows = (f"w{row}," + ",".join(_POOL[(row + np.arange(64)) % len(_POOL)])
                for row in range(2500))
        warm.write_text("id," + ",".join(map(str, range(64))) + "\n" + "\n".join(rows) + "\n")
        read_submission(warm)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    baseline = memory_kib("VmRSS")
    seconds, cpu = [], []
    for _ in range(int(repeat)):
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            matrix = read_submission(path, embedding_dim=int(dim) if dim != "-" else None).matrix
            outcome = f"ok {matrix.shape[0]:,} x {matrix.shape[1]:,}"
            matrix_mb = matrix.nbytes / MB
        except SubmissionError as error:
            outcome, matrix_mb = f"error {error.code}", 0.0
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        matrix = None
    return {"seconds": min(seconds), "cpu": min(cpu), "outcome": outcome,
            "peak_mb": (memory_kib("VmHWM") - baseline) / 1024, "matrix_mb": matrix_mb}


def measure(path: Path, repeat: int, dim: int | None = None) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", str(path), str(dim) if dim else "-", str(repeat)],
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


def opened_at(rows: int, width: int, row: int) -> Callable[[Path], None]:
    """A valid file but for a double quote before one row's id, never closed: the rest of
    the file is one quoted field as csv reads it."""
    def make(path: Path) -> None:
        with path.open("w") as handle:
            handle.write(header(width))
            handle.writelines(f'"{line}' if index == row else line
                              for index, line in enumerate(matrix_rows(rows, width)))
    return make


def dialect(rows: int, width: int, edit: Callable[[str], str], head: str = "",
            newline: str = "\n") -> Callable[[Path], None]:
    """A valid file written another way: each line (without its line break) edited, lines
    ended by `newline`, `head` before the header."""
    def make(path: Path) -> None:
        with path.open("w", newline="") as handle:
            handle.write(head + header(width)[:-1] + newline)
            handle.writelines(edit(line[:-1]) + newline for line in matrix_rows(rows, width))
    return make


def quote_id(line: str) -> str:
    return f'"{line[:8]}"{line[8:]}'


def quote_id_with_pairs(line: str) -> str:
    return f'"{line[:4]}""{line[4:8]}"{line[8:]}'


def quote_cells(line: str) -> str:
    return ",".join(f'"{cell}"' for cell in line.split(","))


def break_id(line: str) -> str:
    return f'"{line[:4]}\n{line[4:8]}"{line[8:]}'


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
    ]
    full = 2_000 if quick else 13_260
    dialect_series = [
        ("dialect", "valid full-size, every id quoted", dialect(full, 1024, quote_id), None),
        ("dialect", "valid full-size, every cell quoted", dialect(full, 1024, quote_cells),
         None),
        ("dialect", 'valid full-size, quoted ids with "" in them',
         dialect(full, 1024, quote_id_with_pairs), None),
        ("dialect", "valid full-size, CRLF line breaks", dialect(full, 1024, str, newline="\r\n"),
         None),
        ("dialect", "valid full-size, CR line breaks (classic Mac)",
         dialect(full, 1024, str, newline="\r"), None),
        ("dialect", "valid full-size, blank line before the header",
         dialect(full, 1024, str, head="\n"), None),
        ("dialect", "valid full-size, a 20-digit value on every row",
         dialect(full, 1024, lambda line: line + "1234567890123", newline="\n"), None),
        ("dialect", "valid full-size, a line break in every id", dialect(full, 1024, break_id),
         None),
        ("dialect", "valid full-size, a line break in a header name", with_tail(
            full, 1024, "", head='id,"0\n",' + ",".join(map(str, range(1, 1024))) + "\n"),
         None),
        ("dialect", "hostile full-size, bad cell in a last record with a line break",
         with_tail(full - 1, 1024, '"s999\n9999",' + "x," * 1023 + "1\n"), None),
        ("dialect", "hostile full-size, a quote opened mid-file and never closed",
         opened_at(full, 1024, full // 2), None),
        ("dialect", "hostile full-size, a quote left open in the last record",
         with_tail(full - 1, 1024, '"s999\n9999,' + "1," * 1023 + "1\n"), None),
        ("dialect", "hostile full-size, a value at a float32 tie on every row",
         dialect(full, 1024, lambda line: line.rsplit(",", 1)[0] + ",1.000000059604644775390625"),
         None),
        ("dialect", "hostile full-size, then 1 MB of short bad lines",
         with_tail(full - 100, 1024, "a\n", MB // 2), None),
        ("dialect", "hostile 120 MB, every value at a float32 tie (strtod)",
         dialect(full // 3, 1024, lambda line: line[:8] + ",1.000000059604644775390625" * 1024),
         None),
    ]
    return width_series + length_series + line_series + dialect_series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller files (a smoke test)")
    parser.add_argument("--repeat", type=int, default=5, help="reads per file; the best counts")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    folder = Path(tempfile.mkdtemp(prefix="probeboard-bench-reader-"))
    try:
        path = folder / "submission.csv"
        valid(13_260, 1024)(path)
        size = path.stat().st_size / MB
        base = measure(path, args.repeat)
        path.unlink()
        print(f"baseline: valid full-size {size:.0f} MB (13,260 x 1,024): {base['seconds']:.2f} s"
              f" = {base['seconds'] / size * 1000:.1f} ms/MB (CPU {base['cpu']:.2f} s), peak "
              f"{base['peak_mb']:.0f} MB = {base['peak_mb'] / base['matrix_mb']:.2f}x the "
              "float32 matrix")
        print(f"\n{'group':<8}{'file':<66}{'MB':>8}  {'outcome':<26}{'s':>7}{'ms/MB':>8}"
              f"{'cpu/MB':>8}{'peak MB':>9}{'x base':>8}")
        per_mb: dict[str, list[float]] = {}
        cpu_per_mb: dict[str, list[float]] = {}
        slower: list[str] = []
        results: dict[str, float] = {}
        for group, label, make, dim in cases(args.quick):
            make(path)
            size = path.stat().st_size / MB
            result = measure(path, args.repeat, dim)
            path.unlink()
            ratio = result["seconds"] / base["seconds"]
            results[label] = ratio
            rate = result["seconds"] / size * 1000
            cpu_rate = result["cpu"] / size * 1000
            print(f"{group:<8}{label:<66}{size:>8.2f}  {result['outcome']:<26}"
                  f"{result['seconds']:>7.3f}{rate:>8.2f}{cpu_rate:>8.2f}"
                  f"{result['peak_mb']:>9.1f}{ratio:>8.3f}", flush=True)
            if (group in ("width", "length") and label.startswith("valid ")
                    and result["outcome"].startswith("ok") and size >= 1):
                per_mb.setdefault(group, []).append(rate)
                cpu_per_mb.setdefault(group, []).append(cpu_rate)
            if (group == "dialect" or not label.startswith("valid ")) and ratio > 1:
                slower.append(f"{label} ({ratio:.1f}x)")
        print()
        for name, spread in (("", per_mb), ("CPU ", cpu_per_mb)):
            spread["width and length"] = [rate for rates in spread.values() for rate in rates]
            for group, rates in spread.items():
                print(f"{name}per MB, valid files >= 1 MB by {group}: {min(rates):.2f} to "
                      f"{max(rates):.2f} ms/MB, spread max/min {max(rates) / min(rates):.2f}x "
                      "(target <= 2x)")
        for label in ("valid full-size, every id quoted", "valid full-size, every cell quoted"):
            print(f"{label}: {results[label]:.2f}x the baseline (target <= 1)")
        print("dialect, hostile or odd files slower than the baseline: "
              + (", ".join(slower) or "none"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
