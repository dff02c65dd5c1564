"""The fast reader: numba kernels (scan.py: the bytes, ids.py: the ids) over blocks of up
to 8 MB, read and parsed in a thread of their own ahead of the one that takes their ids.

It handles records quoted or not (a quoted id may hold line breaks), any line break, and
decimal numbers. Any record it is unsure about is handed, on its own, to the Python rules
(slow.py): csv reads one that spans lines, as the slow reader would, as it reads a header
that spans lines; one still open past a row's limit, such as a quote never closed, is read
by csv from the file up to the rule it breaks.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numba
import numpy as np

from evaluator.scoring.reader import scan
from evaluator.scoring.reader.messages import MAX_HEADER_BYTES, line_too_long, no_header, not_utf8
from evaluator.scoring.reader.slow import (
    Layout,
    Rows,
    check_field_count,
    first_record,
    parse_record,
    read_header,
    split_fields,
)

_BLOCK_BYTES = 8 << 20  # two in use (one parsed, one collected); fewer, larger: fewer launches
_MIN_BLOCK_BYTES = 1 << 20
_POOLS: dict[tuple[int, str], ThreadPoolExecutor] = {}  # see _pool
_MIN_SEGMENT_BYTES = 64 << 10
_PARALLEL_BYTES = 1 << 20  # smaller blocks are parsed in one thread
_MAX_SLOTS = 1 << 20  # rows per block; bounds the per-block bookkeeping of narrow files
_BLANK_BYTES = 64 << 10  # blank lines before the header are skipped this much at a time
_BUFFERS = 3  # blocks in flight: one whose ids are taken, two read and parsed ahead


def read(
    path: Path, size: int, embedding_dim: int | None
) -> tuple[Layout, Rows, np.ndarray] | None:
    """Parse in parallel; None = let the slow reader decide (should the kernel and csv
    disagree about where a record ends)."""
    with path.open("rb") as handle:
        line = _skip_blank_lines(handle)
        if line is None:
            raise no_header()
        start = handle.tell()
        window, end = _header_window(handle)
        if end > MAX_HEADER_BYTES:
            raise line_too_long(line, MAX_HEADER_BYTES, header=True)
        header = window[:end]
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError:
            raise not_utf8(line) from None
        data_line = line + 1
        if '"' not in text:  # before any per-column work
            check_field_count(text.count(",") + 1, embedding_dim, f"line {line} (header)")
        if '"' in text and scan.ends_in_quotes(np.frombuffer(header, np.uint8), 0, len(header)):
            fields, data_start, data_line = _record_at(handle, start, line)
        else:
            fields = split_fields(text, line)
            data_start = start + end + (2 if window[end : end + 2] == b"\r\n" else 1)
        layout = read_header(fields, embedding_dim, line)
        if data_start >= size:
            return layout, Rows(), np.empty((0, len(layout.fields)), dtype=np.float32)
        handle.seek(data_start)
        return _read_blocks(handle, size - data_start, layout, data_line)


def _record_at(
    handle: BinaryIO, start: int, line: int, data_limit: int | None = None
) -> tuple[list[str], int, int]:
    """The record at byte `start` (on `line`; data_limit None: the header), read from the
    file: its fields, where the next record starts, its line."""
    handle.seek(start)
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
    fields, size, count = first_record(text, line, data_limit)
    text.detach()  # (the handle stays open)
    return fields, start + size, line + count


def _header_window(handle: BinaryIO) -> tuple[bytes, int]:
    """Bytes from the header's start to past its line break (read in growing steps, up to
    just past the longest header allowed), and where its line break is (or the length)."""
    window = b""
    size = _BLANK_BYTES
    while True:
        more = handle.read(min(size, MAX_HEADER_BYTES + 3 - len(window)))
        window += more
        ends = [end for end in (window.find(b"\n"), window.find(b"\r")) if end >= 0]
        if ends or not more or len(window) == MAX_HEADER_BYTES + 3:
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
    handle: BinaryIO, data_bytes: int, layout: Layout, first_line: int
) -> tuple[Layout, Rows, np.ndarray] | None:
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
    rows = Rows()
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

    def __init__(self, handle: BinaryIO, layout: Layout, matrix: np.ndarray, segments: int,
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
    layout: Layout,
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
            raise line_too_long(first_line, layout.max_line_bytes, header=False)
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


def _collect(block: _Block, layout: Layout, rows: Rows, matrix: np.ndarray) -> bool:
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
            fields = first_record(stream, line, limit)[0]
        else:
            if longest[index] > limit:
                raise line_too_long(line, limit, header=False)
            try:
                text = str(record, "utf-8")
            except UnicodeDecodeError:
                raise not_utf8(line) from None
            fields = split_fields(text, line)
        raw_id, matrix[block.done + index] = parse_record(fields, line, layout)
        rows.add(raw_id, line)
        index += 1
    return not block.counts[:, scan.CUT].any()

