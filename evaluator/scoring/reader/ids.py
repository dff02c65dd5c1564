"""A submission's sample ids: normalised and checked for duplicates without a Python object
per row until the end.

The ids' UTF-8 bytes live in one growing byte arena, separated by line feeds, and a keyed
hash table (SipHash-1-3 with a random key per process, as Python's own str hash, so that no
file can be crafted to collide) finds duplicates. The fast reader adds a whole block of ids
in one numba call (the kernel has already normalised and hashed them, in parallel). They
become Python strings only when asked (one decode and one split): scoring looks its ids up
in the table instead (rows_of).

The id rules, written twice (for one str in slow.py, for bytes here): strip white
space as str.strip() does, then drop one .zarr.zip or .zarr suffix; an id is at most
MAX_ID_CHARS characters (counted after the strip, before the suffix is dropped).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numba
import numpy as np

MAX_ID_CHARS = 1_000
ZARR_SUFFIXES = (".zarr.zip", ".zarr")
_SEPARATOR = 10  # a line feed between ids in the arena (decode() copes with ids that hold one)

# White space for str.strip() outside ASCII (tests check this list against Python's).
UNICODE_SPACES = np.array(
    [0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000],
    dtype=np.int64,
)
_ZARR = np.frombuffer(b".zarr", dtype=np.uint8)
_ZARR_ZIP = np.frombuffer(b".zarr.zip", dtype=np.uint8)

READY, ESCAPED, REFUSED = 0, 1, 2  # an id as the kernel left it (scanned_id)
_TAKEN = -1  # _commit's answer when the id was new
_FREE = np.uint64(2**64 - 1)  # an empty slot of the hash table
_ROW = np.uint64(2**32 - 1)  # the row's bits in a slot (a 1 GB file has < 2**29 rows)


class IdTable:
    """Normalised ids in file order, their line numbers and the suffix each one carried."""

    def __init__(self) -> None:
        self.key = np.frombuffer(os.urandom(16), dtype=np.uint64).copy()
        self.arena = np.empty(1 << 16, dtype=np.uint8)
        self.starts = np.zeros(1 << 10, dtype=np.int64)  # starts[row + 1] - 1: end of row's id
        self.hashes = np.empty(1 << 10, dtype=np.uint64)
        self.lines = np.empty(1 << 10, dtype=np.int64)
        self.suffixes = np.empty(1 << 10, dtype=np.int8)  # bytes of suffix dropped: 0, 5, 9
        # Per slot: the hash's upper half, then the row (a probe rarely reads more); _FREE.
        self.slots = np.full(1 << 11, _FREE, dtype=np.uint64)
        self.size = np.zeros(1, dtype=np.int64)  # rows; an array, for numba to update

    def __len__(self) -> int:
        return int(self.size[0])

    def reserve(self, rows: int, id_bytes: int) -> None:
        """Room for `rows` more ids of `id_bytes` bytes in all (geometric growth)."""
        count = len(self)
        if count + rows + 1 > len(self.starts):
            capacity = max(2 * len(self.starts), count + rows + 1)
            for name in ("starts", "hashes", "lines", "suffixes"):
                old = getattr(self, name)
                new = np.empty(capacity, dtype=old.dtype)
                new[: count + 1] = old[: count + 1]
                setattr(self, name, new)
        used = int(self.starts[count])
        if used + id_bytes + rows > len(self.arena):
            new_arena = np.empty(max(2 * len(self.arena), used + id_bytes + rows), np.uint8)
            new_arena[:used] = self.arena[:used]
            self.arena = new_arena
        # At most 5/8 of the slots taken: probes stay short (mostly in one cache line),
        # and the table is at most 3.2 slots per id (8 bytes each: fresh memory is costly).
        if 8 * (count + rows) > 5 * len(self.slots):
            capacity = len(self.slots)
            while 8 * (count + rows) > 5 * capacity:
                capacity *= 2
            self.slots = np.full(capacity, _FREE, dtype=np.uint64)
            _rehash(self.slots, self.hashes, count)

    def insert(self, sample_id: str, line: int, suffix: int) -> int:
        """Add a normalised id; if an equal one is there already, its line (nothing added)."""
        data = sample_id.encode("utf-8")
        self.reserve(1, len(data))
        start = int(self.starts[len(self)])
        self.arena[start : start + len(data)] = np.frombuffer(data, dtype=np.uint8)
        return int(_commit(self.arena, self.starts, self.hashes, self.lines, self.suffixes,
                           self.slots, self.size, self.key, start + len(data), line, suffix))

    def add_block(
        self,
        buffer: np.ndarray,
        scanned: tuple[np.ndarray, ...],
        usable: np.ndarray,
        lines: np.ndarray,
        first: int,
    ) -> int:
        """Add rows first, first + 1, ... of a parsed block until one needs Python's rules
        (not usable, or an id they may reject); its index, or the number of rows.

        scanned: per row, scanned_id's start, end, state, suffix and hash.
        """
        starts, ends = scanned[0], scanned[1]
        self.reserve(len(lines) - first, int(np.where(usable, ends - starts, 0).sum()))
        return int(_add_block(buffer, *scanned, usable, lines, first, self.arena, self.starts,
                              self.hashes, self.lines, self.suffixes, self.slots, self.size,
                              self.key))

    def ids(self) -> np.ndarray:
        """Every id as a str (object array, file order): one decode and one split."""
        count = len(self)
        result = np.empty(count, dtype=object)
        if count:
            parts = str(memoryview(self.arena[: self.starts[count] - 1]), "utf-8").split("\n")
            if len(parts) != count:  # an id with a line break in it (a quoted one)
                parts = [self.id_at(row) for row in range(count)]
            result[:] = parts
        return result

    def id_at(self, row: int) -> str:
        """One row's id as a str."""
        return str(memoryview(self.arena[self.starts[row] : self.starts[row + 1] - 1]), "utf-8")

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """The row of each id (int64), -1 where there is none: str equality with the stored
        ids, in one numba call. (A lone surrogate is encoded anyway: stored ids are valid
        UTF-8, so it matches nothing.)"""
        encoded = [sample_id.encode("utf-8", "surrogatepass") for sample_id in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return _rows_of(self.arena, self.starts, self.hashes, self.slots, self.key, data, offsets)

    def suffixed(self) -> tuple[int, list[int]]:
        """How many ids had a suffix dropped, and the first three such rows."""
        suffixes = self.suffixes[: len(self)]
        rows = np.flatnonzero(suffixes)
        return len(rows), rows[:3].tolist()


@numba.njit(cache=True, nogil=True)
def _rehash(slots: np.ndarray, hashes: np.ndarray, count: int) -> None:
    mask = len(slots) - 1
    for row in range(count):
        slot = np.int64(hashes[row] & np.uint64(mask))
        while slots[slot] != _FREE:
            slot = (slot + 1) & mask
        slots[slot] = _tag(hashes[row]) | np.uint64(row)


@numba.njit(cache=True, nogil=True)
def _commit(
    arena: np.ndarray, starts: np.ndarray, hashes: np.ndarray, lines: np.ndarray,
    suffixes: np.ndarray, slots: np.ndarray, size: np.ndarray, key: np.ndarray,
    end: int, line: int, suffix: int,
) -> int:
    """Take the id at arena[starts[size]:end] as the next row, or return the line of an
    equal id already taken (_TAKEN when it is new)."""
    row = size[0]
    start = starts[row]
    code = siphash(key, arena, start, end)
    other = _find_or_insert(arena, starts, hashes, slots, code, start, end, row)
    if other >= 0:
        return lines[other]
    hashes[row] = code
    lines[row] = line
    suffixes[row] = suffix
    arena[end] = _SEPARATOR
    starts[row + 1] = end + 1
    size[0] = row + 1
    return _TAKEN


@numba.njit(cache=True, nogil=True)
def _rows_of(
    arena: np.ndarray, starts: np.ndarray, hashes: np.ndarray, slots: np.ndarray,
    key: np.ndarray, data: np.ndarray, offsets: np.ndarray,
) -> np.ndarray:
    codes = np.empty(len(offsets) - 1, dtype=np.uint64)
    for index in range(len(codes)):  # first, as in _add_block: probes back to back overlap
        codes[index] = siphash(key, data, offsets[index], offsets[index + 1])
    rows = np.empty(len(codes), dtype=np.int64)
    for index in range(len(codes)):
        rows[index] = max(-1, _find(arena, starts, hashes, slots, codes[index], data,
                                    offsets[index], offsets[index + 1]))
    return rows


@numba.njit(cache=True, nogil=True, inline="always")
def _find_or_insert(
    arena: np.ndarray, starts: np.ndarray, hashes: np.ndarray, slots: np.ndarray,
    code: np.uint64, start: int, end: int, row: int,
) -> int:
    """The row of an id equal to arena[start:end], or -1 after taking a slot for `row`."""
    found = _find(arena, starts, hashes, slots, code, arena, start, end)
    if found >= 0:
        return found
    slots[-1 - found] = _tag(code) | np.uint64(row)
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _find(
    arena: np.ndarray, starts: np.ndarray, hashes: np.ndarray, slots: np.ndarray,
    code: np.uint64, data: np.ndarray, start: int, end: int,
) -> int:
    """The row of the id equal to data[start:end] (whose hash is code), or -1 - the free
    slot where it would go."""
    mask = len(slots) - 1
    slot = np.int64(code & np.uint64(mask))
    tag = _tag(code)
    while slots[slot] != _FREE:
        if slots[slot] & ~_ROW == tag:
            other = np.int64(slots[slot] & _ROW)
            if hashes[other] == code and _same(arena, starts[other], starts[other + 1] - 1,
                                               data, start, end):
                return other
        slot = (slot + 1) & mask
    return -1 - slot


@numba.njit(cache=True, nogil=True, inline="always")
def _tag(code: np.uint64) -> np.uint64:
    """The hash's upper half, as a slot holds it."""
    return code >> np.uint64(32) << np.uint64(32)


@numba.njit(cache=True, nogil=True)
def _add_block(
    buffer: np.ndarray, id_starts: np.ndarray, id_ends: np.ndarray, id_states: np.ndarray,
    id_suffixes: np.ndarray, id_codes: np.ndarray, usable: np.ndarray, lines: np.ndarray,
    first: int, arena: np.ndarray, starts: np.ndarray, hashes: np.ndarray,
    id_lines: np.ndarray, suffixes: np.ndarray, slots: np.ndarray, size: np.ndarray,
    key: np.ndarray,
) -> int:
    # Two passes: work between two probes of the table would keep the processor from
    # waiting for several of them at once (one cache miss per row).
    first_row = size[0]
    row = first_row
    stop = len(lines)
    for index in range(first, len(lines)):  # rows to be, in the arena one after another
        state = id_states[index]
        if not usable[index] or state == REFUSED:
            stop = index
            break
        start = starts[row]
        if state == READY:  # normalised and hashed by the kernel
            end = start
            for k in range(id_starts[index], id_ends[index]):
                arena[end] = buffer[k]
                end += 1
            code, suffix = id_codes[index], id_suffixes[index]
        else:  # quoted with "" in it: unquote, then normalise
            end, bits = _unquote(buffer, id_starts[index], id_ends[index], arena, start)
            low, high, suffix, fine = normalised(arena, start, end, bits)
            if not fine:
                stop = index
                break
            for k in range(low, high):  # (low >= start: a forward copy is safe)
                arena[start + k - low] = arena[k]
            end = start + high - low
            code = siphash(key, arena, start, end)
        arena[end] = _SEPARATOR
        hashes[row] = code
        id_lines[row] = lines[index]
        suffixes[row] = suffix
        starts[row + 1] = end + 1
        row += 1
    for row in range(first_row, first_row + stop - first):  # taken in order, up to a duplicate
        if _find_or_insert(arena, starts, hashes, slots, hashes[row], starts[row],
                           starts[row + 1] - 1, row) >= 0:
            size[0] = row
            return first + row - first_row  # Python's rules word the message
    size[0] = first_row + stop - first
    return stop


@numba.njit(cache=True, nogil=True)
def scanned_id(
    buffer: np.ndarray, start: int, end: int, quote_pairs: bool, bits: int, key: np.ndarray
) -> tuple[int, int, int, int, np.uint64]:
    """What the kernel can do for add_block: (state, start, end, suffix, hash)."""
    if quote_pairs:
        return ESCAPED, start, end, 0, np.uint64(0)
    low, high, suffix, fine = normalised(buffer, start, end, bits)
    if not fine:
        return REFUSED, start, end, 0, np.uint64(0)
    return READY, low, high, suffix, siphash(key, buffer, low, high)


@numba.njit(cache=True, nogil=True, inline="always")
def normalised(data: np.ndarray, start: int, end: int, bits: int) -> tuple[int, int, int, bool]:
    """The id rules on data[start:end] (bits: its bytes or-ed): (start, end, suffix bytes,
    fine); not fine: Python's rules must say why (not UTF-8, too long or empty)."""
    if end == start or (bits >= 0x80 and utf8_chars(data, start, end) < 0):
        return start, end, 0, False
    low, high = start, end
    if bits >= 0x80 or data[start] <= 32 or data[end - 1] <= 32:  # (ASCII white space)
        low, high = _stripped(data, start, end)
    if high - low > MAX_ID_CHARS and utf8_chars(data, low, high) > MAX_ID_CHARS:
        return start, end, 0, False
    suffix = 0
    if _ends_with(data, low, high, _ZARR_ZIP):
        suffix = len(_ZARR_ZIP)
    elif _ends_with(data, low, high, _ZARR):
        suffix = len(_ZARR)
    return low, high - suffix, suffix, high - suffix > low


@numba.njit(cache=True, nogil=True)
def _unquote(buffer: np.ndarray, start: int, end: int, arena: np.ndarray,
             to: int) -> tuple[int, int]:
    """Copy a quoted id to arena[to:], "" read as ": the end there, and the bytes or-ed."""
    bits = 0
    k = start
    while k < end:
        arena[to] = buffer[k]
        bits |= buffer[k]
        to += 1
        k += 2 if buffer[k] == 34 else 1
    return to, bits


@numba.njit(cache=True, nogil=True)
def utf8_chars(data: np.ndarray, start: int, end: int) -> int:
    """Characters in data[start:end], or -1 unless it is UTF-8 as Python's decoder says."""
    count = 0
    k = start
    while k < end:
        c = data[k]
        if c < 0x80:
            k += 1
            count += 1
            continue
        if 0xC2 <= c <= 0xDF:
            size, low, high = 2, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            size = 3
            low = 0xA0 if c == 0xE0 else 0x80
            high = 0x9F if c == 0xED else 0xBF  # no surrogates
        elif 0xF0 <= c <= 0xF4:
            size = 4
            low = 0x90 if c == 0xF0 else 0x80
            high = 0x8F if c == 0xF4 else 0xBF  # nothing past U+10FFFF
        else:
            return -1
        if k + size > end or not low <= data[k + 1] <= high:
            return -1
        for q in range(k + 2, k + size):
            if not 0x80 <= data[q] <= 0xBF:
                return -1
        k += size
        count += 1
    return count


@numba.njit(cache=True, nogil=True)
def _is_space(code_point: int) -> bool:
    if code_point < 128:
        return 9 <= code_point <= 13 or 28 <= code_point <= 32
    for space in UNICODE_SPACES:  # noqa: SIM110 - numba compiles loops, not any()
        if code_point == space:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _stripped(data: np.ndarray, low: int, high: int) -> tuple[int, int]:
    """The bounds of data[low:high] (valid UTF-8) without white space at either end."""
    while low < high:
        c = np.int64(data[low])
        size = 1
        if c >= 0xF0:
            c, size = c & 0x07, 4
        elif c >= 0xE0:
            c, size = c & 0x0F, 3
        elif c >= 0xC0:
            c, size = c & 0x1F, 2
        for k in range(low + 1, low + size):
            c = (c << 6) | (np.int64(data[k]) & 0x3F)
        if not _is_space(c):
            break
        low += size
    while low < high:
        first = high - 1
        while data[first] & 0xC0 == 0x80:  # continuation bytes
            first -= 1
        c = np.int64(data[first])
        if high - first == 2:
            c &= 0x1F
        elif high - first == 3:
            c &= 0x0F
        elif high - first == 4:
            c &= 0x07
        for k in range(first + 1, high):
            c = (c << 6) | (np.int64(data[k]) & 0x3F)
        if not _is_space(c):
            break
        high = first
    return low, high


@numba.njit(cache=True, nogil=True, inline="always")
def _ends_with(data: np.ndarray, low: int, high: int, suffix: np.ndarray) -> bool:
    if high - low < len(suffix):
        return False
    for k in range(len(suffix)):  # noqa: SIM110
        if data[high - len(suffix) + k] != suffix[k]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _same(a_data: np.ndarray, a: int, a_end: int, b_data: np.ndarray, b: int,
          b_end: int) -> bool:
    if a_end - a != b_end - b:
        return False
    for k in range(a_end - a):  # noqa: SIM110
        if a_data[a + k] != b_data[b + k]:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _rotate(x: np.uint64, bits: int) -> np.uint64:
    return (x << np.uint64(bits)) | (x >> np.uint64(64 - bits))


@numba.njit(cache=True, nogil=True, inline="always")
def _sip_round(
    v0: np.uint64, v1: np.uint64, v2: np.uint64, v3: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    v0 += v1
    v1 = _rotate(v1, 13) ^ v0
    v0 = _rotate(v0, 32)
    v2 += v3
    v3 = _rotate(v3, 16) ^ v2
    v0 += v3
    v3 = _rotate(v3, 21) ^ v0
    v2 += v1
    v1 = _rotate(v1, 17) ^ v2
    v2 = _rotate(v2, 32)
    return v0, v1, v2, v3


@numba.njit(cache=True, nogil=True, inline="always")
def siphash(key: np.ndarray, data: np.ndarray, start: int, end: int) -> np.uint64:
    """SipHash-1-3 of data[start:end] (CPython's str hash since 3.11)."""
    v0 = key[0] ^ np.uint64(0x736F6D6570736575)
    v1 = key[1] ^ np.uint64(0x646F72616E646F6D)
    v2 = key[0] ^ np.uint64(0x6C7967656E657261)
    v3 = key[1] ^ np.uint64(0x7465646279746573)
    k = start
    while k + 8 <= end:
        word = np.uint64(0)
        for byte in range(8):
            word |= np.uint64(data[k + byte]) << np.uint64(8 * byte)
        v3 ^= word
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
        v0 ^= word
        k += 8
    word = np.uint64((end - start) & 0xFF) << np.uint64(56)
    byte = 0
    while k < end:
        word |= np.uint64(data[k]) << np.uint64(8 * byte)
        byte += 1
        k += 1
    v3 ^= word
    v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    v0 ^= word
    v2 ^= np.uint64(0xFF)
    for _ in range(3):
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3
