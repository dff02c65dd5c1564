"""The fast reader's numba kernels: one pass over a block of CSV bytes, in parallel segments.

A line ends at "\\n", "\\r\\n" or a lone "\\r", as for Python's csv module reading a file
opened with newline="". Fields may be quoted as RFC 4180 says ("..." with "" for a quote);
a quoted field may hold line breaks (the record then spans lines). The kernel takes what it
can be sure of and marks the rest, one record at a time, for the Python rules in
slow.py (csv reads a record that spans lines, as the slow reader would).
"""

from __future__ import annotations

import csv
import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from evaluator.scoring.reader.ids import scanned_id, utf8_chars

MAX_CELL_CHARS = 100  # one embedding value; float64's longest repr has 24 characters
FIELD_LIMIT = csv.field_size_limit()  # characters: csv refuses a longer field
ID_BYTES = 4_000  # four bytes per character of the longest id: a longer one is refused

OK, PYTHON = 0, 1  # a record's fate: parsed, or re-parsed by the Python rules
# Columns of a record (int32): the id as scanned_id left it (bytes, state, suffix; its hash
# is in a separate array), the record's bytes without its final line break, its first line's
# number counted from the segment's start, and its longest line (a quoted field may hold
# line breaks: then the record spans lines, and each one has to fit the line limit).
ID_START, ID_END, ID_STATE, ID_SUFFIX, LINE_START, LINE_END, LINE, LONGEST = range(8)
RECORD_COLUMNS = 8
# A segment's counts. CUT: it ran out of row slots there. REACH: where its records end (past
# its last line break; a record that starts in a segment may end in a later one). OPEN: the
# record at REACH goes on past the block's bytes (it is read again with the next block).
ROWS, LINES, CUT, REACH, OPEN = range(5)
COUNT_COLUMNS = 5

# Bytes: 34 is ", 44 is a comma, 10 a line feed (LF), 13 a carriage return (CR).
_POW10 = np.array([10.0**k for k in range(23)])  # exact doubles
_FLT_MIN = 1.1754943508222875e-38  # smallest normal float32
_FLT_BIG = 3.4e38  # below float32's overflow threshold
_EXACT_MANTISSA = 1 << 53
_TIE_MARGIN = 1e-6  # of a float32 spacing: further from a rounding tie, the rounding is sure


@numba.njit(cache=True, nogil=True)
def segment_bounds(buffer: np.ndarray, filled: int, final: bool, segments: int) -> np.ndarray:
    """Line-start offsets cutting buffer[:filled] into segments; the last = bytes used.

    Unless final, a "\\r" at the very end may be the first half of "\\r\\n": not a line end yet.
    """
    consumed = filled
    if not final:
        consumed = 0
        for k in range(filled - 1, -1, -1):
            if buffer[k] == 10 or (buffer[k] == 13 and k < filled - 1):
                consumed = k + 1
                break
    bounds = np.empty(segments + 1, dtype=np.int64)
    bounds[0] = 0
    for segment in range(1, segments):
        k = max(bounds[segment - 1], segment * consumed // segments)
        while 0 < k < consumed and not (
            buffer[k - 1] == 10 or (buffer[k - 1] == 13 and buffer[k] != 10)
        ):
            k += 1
        bounds[segment] = k
    bounds[segments] = consumed
    return bounds


@numba.njit(parallel=True, cache=True, nogil=True)
def parse_segments(
    buffer: np.ndarray,
    filled: int,
    final: bool,
    bounds: np.ndarray,
    targets: np.ndarray,
    matrix: np.ndarray,
    done: int,
    slots: int,
    status: np.ndarray,
    records: np.ndarray,
    codes: np.ndarray,
    key: np.ndarray,
    counts: np.ndarray,
    first: int,
    stop: int,
) -> None:
    """Parse segments first..stop-1 (see parse_segment). The reader runs it with one numba
    thread per calling thread: compiled as a parallel loop, the same body runs twice as fast
    as parse_segment called on its own (4.1 against 8.3 ms for a 4.5 MB block, measured)."""
    for segment in numba.prange(first, stop):
        parse_segment(buffer, filled, final, bounds, targets, matrix, done, slots, status,
                      records, codes, key, counts, segment)


@numba.njit(cache=True, nogil=True, inline="always")
def parse_segment(
    buffer: np.ndarray,
    filled: int,
    final: bool,
    bounds: np.ndarray,
    targets: np.ndarray,
    matrix: np.ndarray,
    done: int,
    slots: int,
    status: np.ndarray,
    records: np.ndarray,
    codes: np.ndarray,
    key: np.ndarray,
    counts: np.ndarray,
    segment: int,
) -> None:
    """Parse the records that start in one segment into matrix[done + segment * slots + i].

    One pass over the bytes: numbers end at the first non-digit, so no line splitting is
    needed beforehand. targets: per header field, its matrix column, -1 for the id, -2 for
    an ignored field. status says which records Python must re-parse (or that the slow
    reader must take over); codes get the ids' hashes (key: the id table's);
    counts[segment] = (rows, lines, cut, reach, open). The segment is assumed to start at a
    record's start: fix_segments re-parses one that started inside a quoted field.
    """
    n_fields = targets.shape[0]
    k = bounds[segment]
    stop = bounds[segment + 1]
    rows = 0
    lines = 0
    cut = 0
    still_open = 0
    while k < stop:
        line_start = k
        c = buffer[k]
        if c == 10 or c == 13:  # blank lines: a tight loop, so that a file of them costs little
            while k < stop:
                c = buffer[k]
                if c == 10:
                    k += 1
                elif c == 13:
                    k += 2 if buffer[k + 1] == 10 else 1
                else:
                    break
                lines += 1
            continue
        if rows == slots:  # more lines than valid rows could fill: one of them is wrong
            cut = 1
            break
        slot = segment * slots + rows
        out = matrix[done + slot]
        state = OK
        breaks = 0
        last_line = line_start  # where the record's last line so far starts
        longest = 0  # bytes of its longest line before that
        field_index = 0
        while True:
            target = targets[field_index]
            if target >= 0:
                start = k
                value, k, ok = scan_number(buffer, k, filled)
                if not ok and buffer[start] == 34:  # a quoted number
                    value, k, ok = _quoted_number(buffer, start, filled)
                if not ok or k - start > MAX_CELL_CHARS:
                    value, k, ok = _unusual_cell(buffer, start, filled)
                    if not ok:  # Python says why
                        state = PYTHON
                        break
                out[target] = value
            else:
                start, end, k, pairs, bits, text, broken = _scan_text(buffer, k, filled,
                                                                      buffer[k] == 34)
                if broken:
                    breaks, last_line, longest = _line_breaks(buffer, start, end, breaks,
                                                              last_line, longest)
                if not text:
                    state = PYTHON
                    break
                if target == -1:
                    if end - start > ID_BYTES:  # Python says which limit
                        state = PYTHON
                        break
                    id_state, start, end, suffix, code = scanned_id(buffer, start, end, pairs,
                                                                    bits, key)
                    records[slot, ID_START] = start
                    records[slot, ID_END] = end
                    records[slot, ID_STATE] = id_state
                    records[slot, ID_SUFFIX] = suffix
                    codes[slot] = code
                elif end - start > FIELD_LIMIT or (bits >= 0x80 and
                                                   utf8_chars(buffer, start, end) < 0):
                    state = PYTHON
                    break
            field_index += 1
            c = buffer[k]
            if k < filled and c == 44 and field_index < n_fields:
                k += 1
                continue
            if k == filled or c == 10 or c == 13:
                break  # end of line
            state = PYTHON
            break
        if state == OK and field_index != n_fields:
            state = PYTHON
        closed = True
        if state == PYTHON:  # the record ends where csv ends it: its lines are counted again
            k, closed = _record_end(buffer, line_start, filled)
            breaks, last_line, longest = _line_breaks(buffer, line_start, k, 0, line_start, 0)
        ending = 2 if buffer[k] == 13 and buffer[k + 1] == 10 else 1
        if not final and (not closed or k >= filled or (buffer[k] == 13 and k + 1 == filled)):
            # (the record goes on in the next block, or its "\r" may be half a "\r\n")
            k = line_start
            still_open = 1
            break
        status[slot] = state
        records[slot, LINE_START] = line_start
        records[slot, LINE_END] = k
        records[slot, LINE] = lines
        records[slot, LONGEST] = max(longest, k - last_line)
        rows += 1
        lines += 1 + breaks
        k = min(k + ending, filled)
    counts[segment, ROWS] = rows
    counts[segment, LINES] = lines
    counts[segment, CUT] = cut
    counts[segment, REACH] = max(k, bounds[segment])
    counts[segment, OPEN] = still_open


@numba.njit(cache=True, nogil=True)
def fix_segments(
    buffer: np.ndarray,
    filled: int,
    final: bool,
    bounds: np.ndarray,
    targets: np.ndarray,
    matrix: np.ndarray,
    done: int,
    slots: int,
    status: np.ndarray,
    records: np.ndarray,
    codes: np.ndarray,
    key: np.ndarray,
    counts: np.ndarray,
) -> None:
    """After the parallel parse: a segment whose start fell inside a record (a quoted line
    break) is parsed again from where the previous one's records end; bounds[-1] becomes
    the end of the block's last whole record."""
    segments = len(bounds) - 1
    for segment in range(1, segments):
        before = segment - 1
        if counts[before, CUT] or counts[before, OPEN]:  # nothing after it counts
            counts[segment:, ROWS] = 0
            counts[segment:, LINES] = 0
            counts[segment:, CUT] = counts[before, CUT]
            counts[segment:, REACH] = counts[before, REACH]
            counts[segment:, OPEN] = counts[before, OPEN]
            break
        reach = counts[before, REACH]
        if reach != bounds[segment]:
            bounds[segment] = min(reach, bounds[segment + 1])
            parse_segment(buffer, filled, final, bounds, targets, matrix, done, slots, status,
                          records, codes, key, counts, segment)
            counts[segment, REACH] = max(counts[segment, REACH], reach)
    last = counts[segments - 1]
    bounds[segments] = last[REACH] if last[OPEN] or last[CUT] == 0 else bounds[segments]


@numba.njit(cache=True, nogil=True)
def _record_end(buffer: np.ndarray, start: int, filled: int) -> tuple[int, bool]:
    """Where csv ends the record at start (its final line break, or filled), and whether
    its quotes are closed there."""
    state = _FIELD_START
    k = start
    while k < filled:
        c = buffer[k]
        if state != _QUOTED and (c == 10 or c == 13):
            return k, True
        state = _quoting(state, c)
        k += 1
    return k, state != _QUOTED


@numba.njit(cache=True, nogil=True)
def _line_breaks(
    buffer: np.ndarray, start: int, end: int, breaks: int, line_start: int, longest: int
) -> tuple[int, int, int]:
    """Count on over buffer[start:end] ("\r\n" is one line break): line breaks, where the
    last line starts, the longest line before it (bytes)."""
    k = start
    while k < end:
        c = buffer[k]
        if c == 10 or c == 13:
            longest = max(longest, k - line_start)
            k += 2 if c == 13 and k + 1 < end and buffer[k + 1] == 10 else 1
            line_start = k
            breaks += 1
        else:
            k += 1
    return breaks, line_start, longest


@numba.njit(cache=True, nogil=True, inline="always")
def _quoted_number(buffer: np.ndarray, k: int, filled: int) -> tuple[np.float32, int, bool]:
    """scan_number for a number in quotes (k at the opening one), past the closing one."""
    value, k, ok = scan_number(buffer, k + 1, filled)
    return value, k + 1, ok and k < filled and buffer[k] == 34


@numba.njit(cache=True, nogil=True)
def _unusual_cell(buffer: np.ndarray, k: int, filled: int) -> tuple[np.float32, int, bool]:
    """A cell scan_number could not take: quoted, or for scan_number_carefully."""
    quoted = buffer[k] == 34
    start = k + quoted
    value, k, ok = scan_number(buffer, start, filled)
    if not ok:
        value, k, ok = scan_number_carefully(buffer, start, filled)
    length = k - start
    if quoted:
        ok = ok and k < filled and buffer[k] == 34
        k += 1
    return value, k, ok and length <= MAX_CELL_CHARS


@numba.njit(cache=True, nogil=True, inline="always")
def _scan_text(
    buffer: np.ndarray, k: int, filled: int, quoted: bool
) -> tuple[int, int, int, bool, int, bool, bool]:
    """An id or ignored field at k: (start, end, next k, has "" pairs, bytes or-ed, taken,
    holds a line break).

    taken=False: a quoted field that does not close in the block or is followed by more
    characters before the separator (csv would append them): Python decides.
    """
    bits = 0
    if not quoted:
        start = k
        while k < filled:
            c = buffer[k]
            if c == 44 or c == 10 or c == 13:
                break
            bits |= c
            k += 1
        return start, k, k, False, bits, True, False
    k += 1
    start = k
    pairs = False
    broken = False
    while k < filled:
        c = buffer[k]
        if c == 34:
            if buffer[k + 1] != 34:  # buffer[filled] is a pad byte, never a quote
                return start, k, k + 1, pairs, bits, True, broken
            pairs = True
            k += 2
            continue
        broken = broken or c == 10 or c == 13
        bits |= c
        k += 1
    return start, k, k, pairs, bits, False, broken


@numba.njit(cache=True, nogil=True)
def counts_up(data: np.ndarray, count: int) -> bool:
    """Whether data is "0,1,2,...,count-1" exactly (a header's names, joined)."""
    k = 0
    for number in range(count):
        if number:
            if k == len(data) or data[k] != 44:
                return False
            k += 1
        digits, power = 1, 10
        while number >= power:
            digits, power = digits + 1, power * 10
        if k + digits > len(data):
            return False
        value = number
        for position in range(k + digits - 1, k - 1, -1):
            if data[position] != 48 + value % 10:
                return False
            value //= 10
        k += digits
    return k == len(data)


@numba.njit(cache=True, nogil=True)
def ends_in_quotes(buffer: np.ndarray, start: int, end: int) -> bool:
    """Whether csv would still be inside a quoted field at the end of buffer[start:end]."""
    state = _FIELD_START
    for k in range(start, end):
        state = _quoting(state, buffer[k])
    return state == _QUOTED


# csv's quoting, one byte at a time: where a field is after it. A quote in a quoted field
# either closes it or is the first of a "" pair: the next byte tells, as at a field start.
_FIELD_START, _UNQUOTED, _QUOTED, _QUOTE_IN_QUOTED = range(4)


@numba.njit(cache=True, nogil=True, inline="always")
def _quoting(state: int, c: int) -> int:
    if state == _QUOTED:
        return _QUOTE_IN_QUOTED if c == 34 else _QUOTED
    if state == _UNQUOTED:
        return _FIELD_START if c == 44 else _UNQUOTED
    return _QUOTED if c == 34 else _FIELD_START if c == 44 else _UNQUOTED


@numba.njit(cache=True, nogil=True, inline="always")
def scan_number(buffer: np.ndarray, k: int, filled: int) -> tuple[np.float32, int, bool]:
    """Parse [+-]digits[.digits][e[+-]digits] at k; ok=False: scan_number_carefully.

    Stops at the first byte that cannot continue the number (buffer[filled] is a pad byte,
    never a digit); the caller checks what follows. The value equals float32(float(text)):
    up to 2**53 the mantissa and the powers of ten up to 1e22 are exact doubles, so one
    division or product gives the correctly rounded double (Clinger's fast path). A longer
    mantissa (<= 19 digits) makes the double off by at most one ulp, which can only change
    the float32 next to a rounding tie; those cells, and everything unusual, are left to
    the careful scan.
    """
    # A branch-free sign and digit loops without bounds checks are what makes this fast.
    c = buffer[k]
    negative = c == 45
    k += negative | (c == 43)
    mantissa = np.uint64(0)
    first = k
    while True:
        digit = np.uint64(buffer[k]) - np.uint64(48)  # wraps around for bytes below '0'
        if digit > 9:
            break
        mantissa = mantissa * np.uint64(10) + digit
        k += 1
    seen = k - first
    exponent = 0
    if buffer[k] == 46:
        k += 1
        first = k
        while True:
            digit = np.uint64(buffer[k]) - np.uint64(48)
            if digit > 9:
                break
            mantissa = mantissa * np.uint64(10) + digit
            k += 1
        exponent = first - k
        seen += k - first
    if seen == 0 or seen > 19:  # no digits, or a mantissa that may not fit 64 bits
        return np.float32(0.0), k, False
    if k < filled and (buffer[k] == 101 or buffer[k] == 69):
        k += 1
        exponent_negative = False
        if k < filled and (buffer[k] == 45 or buffer[k] == 43):
            exponent_negative = buffer[k] == 45
            k += 1
        power = 0
        power_digits = 0
        while k < filled and 48 <= buffer[k] <= 57:
            if power < 100000:
                power = power * 10 + (buffer[k] - 48)
            power_digits += 1
            k += 1
        if power_digits == 0:
            return np.float32(0.0), k, False
        exponent += -power if exponent_negative else power
    if mantissa == 0:
        return np.float32(-0.0 if negative else 0.0), k, True
    if exponent < -22 or exponent > 22:
        return np.float32(0.0), k, False
    value = float(mantissa)
    value = value / _POW10[-exponent] if exponent < 0 else value * _POW10[exponent]
    if value < _FLT_MIN or value > _FLT_BIG:
        return np.float32(0.0), k, False
    if mantissa > _EXACT_MANTISSA and _near_tie(value):
        return np.float32(0.0), k, False
    return np.float32(-value if negative else value), k, True


@numba.njit(cache=True, nogil=True)
def scan_number_carefully(
    buffer: np.ndarray, k: int, filled: int
) -> tuple[np.float32, int, bool]:
    """What scan_number leaves: blanks around the number, more than 19 digits, exponents
    past 10**±22, subnormal float32 values, rounding ties.

    The text is checked against the rules' grammar here, and converted by the C library's
    strtod, which rounds correctly as Python's float() does: the same double, so the same
    float32. ok=False: not a decimal number, too long, or not finite: Python says why.
    """
    while buffer[k] == 32 or buffer[k] == 9:
        k += 1
    start = k
    k += buffer[k] == 45 or buffer[k] == 43
    digits = 0
    fraction = False
    while True:
        if buffer[k] == 46 and not fraction:
            fraction = True
        elif 48 <= buffer[k] <= 57:
            digits += 1
        else:
            break
        k += 1
    if digits == 0:
        return np.float32(0.0), k, False
    if buffer[k] == 101 or buffer[k] == 69:
        k += 1
        k += buffer[k] == 45 or buffer[k] == 43
        power_start = k
        while 48 <= buffer[k] <= 57:
            k += 1
        if k == power_start:
            return np.float32(0.0), k, False
    end = k
    while buffer[k] == 32 or buffer[k] == 9:
        k += 1
    if end - start > MAX_CELL_CHARS:
        return np.float32(0.0), k, False
    text = np.zeros(end - start + 1, dtype=np.uint8)  # ended by a NUL byte, as C wants
    for q in range(start, end):  # (a slice copy would compile its error message: seconds)
        text[q - start] = buffer[q]
    stopped = np.zeros(1, dtype=np.uintp)
    value = _strtod(text.ctypes.data, stopped.ctypes.data)
    result = np.float32(value)
    # Under a locale whose decimal point is not "." strtod stops early: Python decides.
    if stopped[0] != text.ctypes.data + end - start or not math.isfinite(result):
        return np.float32(0.0), k, False
    return result, k, True


@intrinsic
def _strtod(typing_context: object, text: types.Type, stopped: types.Type) -> tuple:
    """C's double strtod(const char *text, char **stopped), on addresses."""
    signature = types.float64(types.uintp, types.uintp)

    def generate(context: object, builder: ir.IRBuilder, _: object, arguments: list) -> object:
        char_pointer = ir.IntType(8).as_pointer()
        function_type = ir.FunctionType(ir.DoubleType(), [char_pointer, char_pointer.as_pointer()])
        function = cgutils.get_or_insert_function(builder.module, function_type, "strtod")
        return builder.call(function, [builder.inttoptr(arguments[0], char_pointer),
                                       builder.inttoptr(arguments[1], char_pointer.as_pointer())])

    return signature, generate


@numba.njit(cache=True, nogil=True)
def _near_tie(value: float) -> bool:
    """Whether a positive normal double lies next to a midpoint between two float32 values."""
    position = value / math.ldexp(1.0, math.frexp(value)[1] - 24)
    return abs(position - math.floor(position) - 0.5) < _TIE_MARGIN
