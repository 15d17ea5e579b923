"""The national identifier standards every source shares.

* GB 11643-1999 citizen ID number (公民身份号码): 17 digits + ISO 7064 MOD 11-2 check char.
* GB 11643-1989 legacy 15-digit ID: converted by inserting ``19`` after digit 6 and
  appending the check char.
* GB 32100-2015 unified social credit code (统一社会信用代码): 18 chars over a
  31-character alphabet with a MOD 31 check char.

The functions here work on scalars (for clarity and for tests) and on pandas
Series (vectorised, for the pipeline and the generator at province scale).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

# --- GB 11643 citizen ID ---------------------------------------------------------------

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
_ID_BODY = re.compile(r"^[0-9]{17}$")   # ASCII digits: Python's \d also takes "１" and "٣"
# Every whitespace character, the ideographic space U+3000 included: Python's ``\s``, written
# out as a class of the characters themselves (every ``str.isspace()`` one, none above U+3000),
# so that pandas hands it to Arrow's RE2 (whose ``\s`` is ASCII-only) instead of looping in Python.
WHITESPACE_RUN = "[" + "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "]+"
_WHITESPACE = re.compile(WHITESPACE_RUN)


def id_check_char(body17: str) -> str:
    """The GB 11643 check char for the first 17 digits of an ID."""
    if not _ID_BODY.match(body17):
        raise ValueError("an ID body is 17 digits")
    total = sum(int(d) * w for d, w in zip(body17, ID_WEIGHTS))
    return ID_CHECK_CHARS[total % 11]


def legacy_to_18(id15: str) -> str:
    """Convert a 15-digit GB 11643-1989 ID: insert ``19`` after digit 6, append the check char."""
    if not re.fullmatch(r"[0-9]{15}", id15):
        raise ValueError("a legacy ID is 15 digits")
    body = id15[:6] + "19" + id15[6:]
    return body + id_check_char(body)


def to_legacy_15(id18: str) -> str:
    """The 15-digit form of an 18-digit ID of someone born in the 1900s."""
    if id18[6:8] != "19":
        raise ValueError("only IDs of persons born 1900-1999 have a legacy form")
    return id18[:6] + id18[8:17]


def clean_id(raw: object) -> str | None:
    """Upper-case, strip every whitespace char; convert 15-digit legacy IDs. No validation."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    s = _WHITESPACE.sub("", str(raw)).upper()
    if re.fullmatch(r"[0-9]{15}", s):
        return legacy_to_18(s)
    return s


def parse_yyyymmdd(s: str) -> dt.date | None:
    """A real date from 8 digits, or None."""
    if not re.fullmatch(r"[0-9]{8}", s or ""):
        return None
    try:
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        return None


def is_valid_id(s: str | None, not_after: dt.date | None = None) -> bool:
    """True for an 18-char ID with a right check char and a real birth date (not after ``not_after``)."""
    if s is None or len(s) != 18 or not _ID_BODY.match(s[:17]):
        return False
    if id_check_char(s[:17]) != s[17]:
        return False
    born = parse_yyyymmdd(s[6:14])
    if born is None:
        return False
    return not_after is None or born <= not_after


def why_invalid(raw: object, not_after: dt.date | None = None) -> str:
    """Where an ID fails, in the office's words, showing only the failing part: the length,
    the first character that is not a digit (its position and the character), the month or
    day of the birth date (digits 11-12 or 13-14) that does not exist, or the check character
    (position 18, what it is and what it must be for the 17 before it). With the mask's first
    6 and last 4 characters this shows at most 12 of 18: never the whole number."""
    s = clean_id(raw) or ""
    if len(s) != 18:
        return f"长度 {len(s)} 位（应为 18 位或旧 15 位）"
    for i, ch in enumerate(s[:17]):
        if not ch.isdigit() or not ch.isascii():
            return f"第 {i + 1} 位为“{ch}”，应为数字"
    born = parse_yyyymmdd(s[6:14])
    if born is None:   # at most the two failing digits: the masked digits 7-14 stay hidden otherwise
        year, month = int(s[6:10]), int(s[10:12])
        if not 1 <= month <= 12:
            return f"第 11-12 位出生月份为“{s[10:12]}”，不存在"
        if year < 1:
            return "第 7-10 位出生年份不存在"
        return f"第 13-14 位出生日为“{s[12:14]}”，该月没有这一天"
    if not_after is not None and born > not_after:
        return "第 7-14 位出生日期晚于本期"
    expected = id_check_char(s[:17])
    if s[17] != expected:
        return f"第 18 位校验码为“{s[17]}”，按前 17 位应为“{expected}”（前 17 位中有录错的数字）"
    return "校验通过"


def mask_id(raw: object) -> str:
    """Mask an ID for logs, mail and errors: first 6 and last 4 characters kept.

    Anything too short to mask safely is masked completely.
    """
    if raw is None:
        return "<none>"
    s = str(raw).strip()
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


# Vectorised check chars: used by the generator to make millions of IDs.
def _check_index(bodies: np.ndarray) -> np.ndarray:
    """The position in :data:`ID_CHECK_CHARS` of each check char, for an (n, 17) integer array of ID digits."""
    # one weighted sum a row (no product matrix, no int64 copy of an (n, 17) one: at 2M persons'
    # records 1 GB); at most 9 x 10 x 17, so 16 bits hold it
    total = np.promote_types(bodies.dtype, np.int16)
    return np.einsum("ij,j->i", bodies, np.asarray(ID_WEIGHTS, dtype=total), dtype=total) % 11


def id_check_chars(bodies: np.ndarray) -> np.ndarray:
    """Check chars for an (n, 17) integer array of ID digits."""
    return np.asarray(list(ID_CHECK_CHARS))[_check_index(bodies)]


# --- GB 32100 unified social credit code -------------------------------------------------

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_INDEX = {c: i for i, c in enumerate(CREDIT_ALPHABET)}


def credit_check_char(body17: str) -> str:
    """The GB 32100 check char for the first 17 chars of a credit code."""
    try:
        total = sum(_CREDIT_INDEX[c] * w for c, w in zip(body17, CREDIT_WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"character {exc} is not in the credit-code alphabet") from None
    if len(body17) != 17:
        raise ValueError("a credit code body is 17 characters")
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(s: object) -> bool:
    if not isinstance(s, str) or len(s) != 18 or any(c not in _CREDIT_INDEX for c in s):
        return False
    return credit_check_char(s[:17]) == s[17]


# --- Names ------------------------------------------------------------------------------

MIDDLE_DOT = "·"
MIDDLE_DOT_VARIANTS = "•.・．‧"
_DOT_TABLE = str.maketrans({c: MIDDLE_DOT for c in MIDDLE_DOT_VARIANTS})


def normalise_name(raw: object) -> str | None:
    """All whitespace removed, the middle-dot variants written as ``·``."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    return _WHITESPACE.sub("", str(raw)).translate(_DOT_TABLE)


def normalise_name_series(names: pd.Series) -> pd.Series:
    """:func:`normalise_name` over a column. Only a value holding a byte that can begin a whitespace
    character or a middle dot is rewritten (a name of Chinese characters holds none)."""
    def normalise(part: pd.Series) -> pd.Series:
        part = part.str.replace(WHITESPACE_RUN, "", regex=True)
        for variant in MIDDLE_DOT_VARIANTS:
            part = part.str.replace(variant, MIDDLE_DOT, regex=False)
        return part
    return _rewrite_rows(names, WHITESPACE_BYTES | DOT_BYTES, normalise)


# --- Vectorised forms, for the pipeline at province scale -------------------------------------

def clean_id_series(raw: pd.Series) -> pd.Series:
    """:func:`clean_id` over a column: upper-case, all whitespace removed, 15-digit IDs converted.
    Only the values holding a byte cleaning can change (:data:`CLEANED_BYTES`) are rewritten, and
    the legacy IDs are found by their bytes (15, all ASCII digits: what ``\\d{15}`` matches in Arrow's
    RE2): at 6.7M records, 0.5 s where rewriting every value took 2.2 s."""
    s = _rewrite_rows(raw, CLEANED_BYTES, lambda part: remove_whitespace(part).str.upper())
    arr = arrow_text(s)
    rows = np.flatnonzero(_byte_length_is(arr, 15))
    legacy = np.zeros(len(s), dtype=bool)
    legacy[rows[_all_digits(_fixed_width(arr, rows, 15) - np.uint8(48))]] = True
    if legacy.any():
        body = s[legacy].str[:6] + "19" + s[legacy].str[6:]
        s = s.copy()
        s[legacy] = body + pd.Series(id_check_chars(_digit_matrix(body)), index=body.index)
    return s


# The bytes that can begin a whitespace character in UTF-8: the ASCII ones, and the lead bytes of
# U+0085/U+00A0 (0xC2), U+1680 (0xE1), U+2000-U+205F (0xE2) and U+3000 (0xE3). A value with none
# of them has no whitespace.
WHITESPACE_BYTES = frozenset(ord(c) for c in map(chr, range(0x80)) if c.isspace()) | {0xC2, 0xE1, 0xE2, 0xE3}
# The bytes of the values :func:`clean_id_series` rewrites: every byte outside "!" to "`" (0x21-0x60).
# That holds all it can change (whitespace and control bytes below; ASCII lower case, and every byte
# of a character beyond ASCII, whose upper case Unicode decides, above) and a few it cannot
# (rewriting such a value leaves it as it is), and is found by one comparison a byte.
CLEANED_BYTES = frozenset(range(0x100)) - frozenset(range(0x21, 0x61))
# Likewise for the middle-dot variants: "." and the lead bytes of U+2022/U+2027 (0xE2), U+30FB (0xE3), U+FF0E (0xEF).
DOT_BYTES = frozenset({ord("."), 0xE2, 0xE3, 0xEF})


def arrow_offsets(text) -> np.ndarray:
    """The ``len(text) + 1`` offsets of an Arrow string (or large string) array into its data buffer."""
    import pyarrow as pa

    wide = pa.types.is_large_string(text.type)
    return np.frombuffer(text.buffers()[1], dtype=np.int64 if wide else np.int32)[text.offset: text.offset + len(text) + 1]


def _byte_runs(byte_values) -> list[tuple[int, int]]:
    """``byte_values`` as runs of consecutive values, (first, last) each."""
    runs: list[tuple[int, int]] = []
    for b in sorted(set(byte_values)):
        if runs and runs[-1][1] == b - 1:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((b, b))
    return runs


# The bytes of a column are compared a block at a time, into arrays made once: comparing them whole
# made an array the size of the column's data per comparison, each page of it touched fresh (at 2M
# persons, most of the contract's control-character checks).
_BLOCK = 1 << 18


def rows_with_bytes(text, byte_values) -> np.ndarray:
    """The positions of the values of an Arrow string array holding any of ``byte_values``: one pass
    over the column's bytes per run of consecutive byte values (a comparison numpy vectorises: at
    2M staffing rows, 0.1 s for every text column where a 256-entry lookup per byte took 0.8 s),
    a block at a time (:data:`_BLOCK`), each found byte mapped to its value through the offsets."""
    if not len(text) or text.buffers()[2] is None:
        return np.zeros(0, dtype=np.int64)
    offsets = arrow_offsets(text)
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
    outside = _byte_runs(set(range(0x100)) - set(byte_values))
    if len(outside) == 1 and 0 < outside[0][0] <= outside[0][1] < 0xFF:   # all but one run: outside it, one comparison
        runs, inverted = outside, True
    else:   # first <= b <= last, as one unsigned comparison
        runs, inverted = _byte_runs(byte_values), False
    if not runs:
        return np.zeros(0, dtype=np.int64)
    shifted, run, found = (np.empty(min(_BLOCK, len(data)), dtype=dtype) for dtype in (np.uint8, bool, bool))
    hits = []
    for start in range(0, len(data), _BLOCK):
        block = data[start: start + _BLOCK]
        n = len(block)
        for i, (first, last) in enumerate(runs):
            into = found[:n] if i == 0 else run[:n]
            if first == 0:
                np.less_equal(block, np.uint8(last), out=into)
            else:
                np.subtract(block, np.uint8(first), out=shifted[:n])
                np.less_equal(shifted[:n], np.uint8(last - first), out=into)
            if i:
                np.logical_or(found[:n], into, out=found[:n])
        if inverted:
            np.logical_not(found[:n], out=found[:n])
        if found[:n].any():
            hits.append(np.flatnonzero(found[:n]) + start)
    if not hits:
        return np.zeros(0, dtype=np.int64)
    at = np.concatenate(hits) + offsets[0]
    rows = np.searchsorted(offsets, at, side="right") - 1   # ascending, a row once per byte found:
    rows = rows[np.r_[True, rows[1:] != rows[:-1]]]          # each once (np.unique hashed or sorted them again)
    if text.null_count and len(rows):
        rows = rows[text.is_valid().to_numpy(zero_copy_only=False)[rows]]
    return rows


def _rewrite_rows(values: pd.Series, byte_values, rewrite) -> pd.Series:
    """``values`` as text with ``rewrite`` applied to the values holding any of ``byte_values``
    (the others it would leave as they are)."""
    values = values.astype("string")
    rows = rows_with_bytes(arrow_text(values), byte_values)
    if not len(rows):
        return values
    out = values.copy()
    out.iloc[rows] = rewrite(values.iloc[rows]).to_numpy()
    return out


def remove_whitespace(values: pd.Series) -> pd.Series:
    """Every whitespace character removed (Python's ``\\s``, U+3000 included); only the values
    that can hold one are rewritten."""
    return _rewrite_rows(values, WHITESPACE_BYTES, lambda part: part.str.replace(WHITESPACE_RUN, "", regex=True))


def _byte_length_is(arr, n: int) -> np.ndarray:
    """Which values of an Arrow string array are ``n`` bytes long (boolean array; null: False)."""
    import pyarrow.compute as pc

    return pc.fill_null(pc.equal(pc.binary_length(arr), n), False).to_numpy(zero_copy_only=False)


def _digit_matrix(bodies: pd.Series) -> np.ndarray:
    """(n, 17) digits of 17-digit strings (the caller guarantees the shape)."""
    joined = "".join(bodies.str[:17].tolist()).encode("ascii")
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 17).astype(np.int64) - 48


def arrow_text(values: pd.Series):
    """A text column as one Arrow string array (one chunk; a missing value null), for work on its bytes
    (:func:`rows_with_bytes`) or Arrow's kernels."""
    import pyarrow as pa

    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arr = pa.array(values.array)   # its own Arrow data (astype("string") copied it: 0.1 ms a small column)
    else:
        arr = pa.array(values.astype("string"), from_pandas=True)
    return one_chunk(arr)


def one_chunk(arr):
    """``arr`` as one Arrow array: a chunked array's only chunk as it is (``combine_chunks`` copies
    even that: 0.02 s for 2M IDs, each time), the chunks of several concatenated."""
    import pyarrow as pa

    if not isinstance(arr, pa.ChunkedArray):
        return arr
    return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()


def _fixed_width(arr, rows: np.ndarray, width: int) -> np.ndarray:
    """The bytes of the values at ``rows`` of an Arrow string array, each exactly ``width`` bytes long
    (the caller guarantees it), as a (len(rows), width) matrix: taken together they are one run
    of bytes, so no Python string is made and no byte is indexed alone. When ``rows`` is every row
    (every value that wide: nearly every column of IDs), the matrix is the array's own data, not a copy."""
    import pyarrow as pa

    if len(rows) == len(arr) and len(rows):   # (ascending, each once: every value is ``width`` bytes, none null)
        start = int(arrow_offsets(arr)[0])
        return np.frombuffer(arr.buffers()[2], dtype=np.uint8)[start: start + width * len(arr)].reshape(-1, width)
    part = arr.take(pa.array(rows, type=pa.int64()))
    if not len(part):
        return np.zeros((0, width), dtype=np.uint8)
    start = int(arrow_offsets(part)[0])
    return np.frombuffer(part.buffers()[2], dtype=np.uint8)[start: start + width * len(part)].reshape(-1, width)


# Eight ASCII characters as one 64-bit word, the first in its lowest byte (little-endian, on any host):
# tested and read as digits with a few operations on whole words (SWAR), instead of one a byte.
_WORD = np.dtype("<u8")
_ZEROS = np.uint64(0x3030303030303030)     # "0" in every byte
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)


def _words(matrix: np.ndarray) -> np.ndarray:
    """An (n, k) byte matrix as (n, ceil(k / 8)) words (:data:`_WORD`), the last padded with zero bytes."""
    words = np.zeros((len(matrix), -(-matrix.shape[1] // 8)), dtype=_WORD)
    words.view(np.uint8)[:, :matrix.shape[1]] = matrix
    return words


def _digit_words(words: np.ndarray) -> np.ndarray:
    """Which words are eight ASCII digits: every byte's high half is 3 ("0" to "?"), and stays 3 with
    6 added (which no byte carries out of: "0" to "9" only)."""
    return ((words & _HIGH_NIBBLES) == _ZEROS) & (((words + _SIXES) & _HIGH_NIBBLES) == _ZEROS)


def _digit_pairs(words: np.ndarray) -> np.ndarray:
    """Words of eight ASCII digits (:func:`_digit_words`) as four 16-bit lanes, each the number of
    two digits in order (the first pair in the lowest lane): each byte's digit, times ten plus the
    next byte's, none carrying (at most 99)."""
    v = words - _ZEROS
    return (v * np.uint64(10) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)


def _decimal_words(words: np.ndarray) -> np.ndarray:
    """Words of eight ASCII digits (:func:`_digit_words`) as the numbers they write (0-99,999,999):
    pairs, then fours, then the eight, each step one multiply and add over the word."""
    v = _digit_pairs(words)
    v = (v * np.uint64(100) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return (v * np.uint64(10000) + (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


def _byte(words: np.ndarray, i: int) -> np.ndarray:
    """Byte ``i`` (0-7) of each word."""
    return ((words >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.uint8)


def _real_dates(yyyymmdd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For words of eight ASCII digits (:func:`_digit_words`; any other word gives a meaningless row):
    which form a real date YYYYMMDD (:func:`parse_yyyymmdd`: year 1-9999), and the date as that integer."""
    pairs = _digit_pairs(yyyymmdd)
    lane = lambda i: ((pairs >> np.uint64(16 * i)) & np.uint64(0xFF)).astype(np.int32)   # noqa: E731
    year, month, day = lane(0) * 100 + lane(1), lane(2), lane(3)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    real = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    return real, year * 10000 + month * 100 + day


def _all_digits(values: np.ndarray) -> np.ndarray:
    """Rows of an (n, k) uint8 matrix of ``byte - 48`` whose values are all 0-9 (a byte below "0"
    wraps above 9, unsigned)."""
    return values.max(axis=1) <= 9


def _id_shape(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For an (n, 18) byte matrix: its words (:func:`_words`: bytes 1-8, 9-16 and 17-18), which rows
    begin with 17 ASCII digits (an ID's body), and each row's last byte (what it may be, the caller
    decides: a check character, or either case of X as received)."""
    words = _words(matrix)
    last = _byte(words[:, 2], 1)
    seventeenth = _byte(words[:, 2], 0) - np.uint8(48)
    shaped = _digit_words(words[:, 0]) & _digit_words(words[:, 1]) & (seventeenth <= 9)
    return words, shaped, last


def birth8(cleaned: str | None) -> str | None:
    """Digits 7-14 of a cleaned ID where they form a real date (YYYYMMDD), else None."""
    part = (cleaned or "")[6:14]
    return part if parse_yyyymmdd(part) and part.isascii() else None


def id_facts(cleaned: pd.Series, not_after: dt.date | None = None) -> tuple[np.ndarray, pd.Series]:
    """A column of cleaned IDs' validity and birth dates, from one read of its bytes (each value's
    characters 7-14 are the date both need; at 2M persons reading them apart read every ID twice):
    :func:`is_valid_id` of each value (a boolean array: 17 ASCII digits and a digit or ``X``, the
    check character right, a real birth date not after ``not_after``) and :func:`birth8` of each
    value (a string series: characters 7-14, kept where they are 8 ASCII digits of a real date).

    Worked on the column's bytes. An 18-byte value whose bytes are all ASCII (an ID's shape,
    nearly every value) has its characters 7-14 as bytes 7-14, read from the column's data; the
    others are sliced by character (Arrow) for the birth date, and are no valid ID (an ID is
    ASCII). The birth dates are built from those bytes (at 6.7M records, 0.5 s where slicing
    every value and testing the slices took 1.0 s), eight at a time as one 64-bit word: the digits
    tested and the date read by :func:`_digit_words` and :func:`_real_dates` (at 2.2M payroll IDs,
    0.25 s where a byte at a time took 0.49 s)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = arrow_text(cleaned)
    n = len(arr)
    simple = _byte_length_is(arr, 18)
    simple[rows_with_bytes(arr, range(0x80, 0x100))] = False   # (a byte beyond ASCII after the date: sliced too)
    rows = np.flatnonzero(simple)
    words, shaped, last = _id_shape(_fixed_width(arr, rows, 18))
    dates = np.zeros(n, dtype=_WORD)   # characters 7-14 of each value as a word, where they are 8 bytes (else 0: no digits)
    dates[rows] = (words[:, 0] >> np.uint64(48)) | (words[:, 1] << np.uint64(16))   # bytes 7-14
    rest = np.flatnonzero(~simple & arr.is_valid().to_numpy(zero_copy_only=False))
    if len(rest):
        part = pc.utf8_slice_codeunits(arr.take(pa.array(rest, type=pa.int64())), 6, 14)
        eight = np.flatnonzero(_byte_length_is(part, 8))
        dates[rest[eight]] = _words(_fixed_width(part, eight, 8))[:, 0]
    real, born = _real_dates(dates)
    found = _digit_words(dates) & real
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(found * np.int32(8), out=offsets[1:])
    values = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(dates[found].tobytes()),
                                         pa.py_buffer(np.packbits(found, bitorder="little")), null_count=int(n - found.sum()))
    birth = pd.Series(pd.arrays.ArrowStringArray(values), index=cleaned.index)

    ok = np.zeros(n, dtype=bool)   # an ID: 17 digits and a digit or X, the check character right, a real date
    shaped &= ((last - np.uint8(48)) <= 9) | (last == ord("X"))
    if not shaped.all():   # (selecting every row copied them: most columns hold IDs only)
        rows, words, last = rows[shaped], words[shaped], last[shaped]
    bodies = words.view(np.uint8)[:, :17] - np.uint8(48)
    expected = np.frombuffer(ID_CHECK_CHARS.encode("ascii"), dtype=np.uint8)[_check_index(bodies)]
    good = (expected == last) & real[rows]
    if not_after is not None:
        good &= born[rows] <= not_after.year * 10000 + not_after.month * 100 + not_after.day
    ok[rows] = good
    return ok, birth


# An ID as received, 18 bytes: 17 ASCII digits and a last character of these (an ID's check
# character, either case of X): read as one number, its code.
_ID_LAST = np.full(256, -1, dtype=np.int64)
_ID_LAST[np.frombuffer(b"0123456789Xx", dtype=np.uint8)] = np.arange(12)
_ID_CODES = 10 ** 17 * 12                                # codes of that form: 0 .. _ID_CODES - 1


def repeated_values(values: pd.Series) -> np.ndarray:
    """Which values occur more than once in ``values`` (a missing value counting as one more value,
    as ``duplicated`` counts it): ``values.duplicated(keep=False)``, as a boolean array.

    Each value gets an integer code, equal codes for equal values, then the codes are counted. An
    ID as received (18 bytes, 17 ASCII digits and a digit or X) is its own code, read from its
    bytes as a number; only the other values are hashed as text. At 2.2M payroll IDs hashing them
    all took 0.8-1.3 s (``pd.factorize``, Arrow's ``dictionary_encode``), most of the screening of
    finance and HR."""
    arr = arrow_text(values)
    codes = np.full(len(arr), -1, dtype=np.int64)
    rows = np.flatnonzero(_byte_length_is(arr, 18))
    if len(rows):
        words, shaped, last = _id_shape(_fixed_width(arr, rows, 18))
        last = _ID_LAST[last]
        shaped &= last >= 0
        if not shaped.all():
            rows, words, last = rows[shaped], words[shaped], last[shaped]
        # the 17 digits' number: the first eight's, the next eight's, the last one (read a word at a
        # time: at 2.2M IDs 0.03 s, where weighting each digit's byte took 0.25 s)
        body = (_decimal_words(words[:, 0]) * np.uint64(10 ** 9) + _decimal_words(words[:, 1]) * np.uint64(10)
                + (_byte(words[:, 2], 0) - np.uint8(48)))
        codes[rows] = body.astype(np.int64) * 12 + last
    others = np.flatnonzero(codes < 0)
    if len(others):   # the rest hashed as text: a missing value gets one code of its own
        found, _ = pd.factorize(values.iloc[others], use_na_sentinel=False)
        codes[others] = _ID_CODES + found
    # the codes seen twice, from the sorted codes (a sort: 0.04 s at 2.2M; counting them in a hash
    # table of 2.2M entries 0.45-0.57 s), and the rows holding one of those few
    ordered = np.sort(codes)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    return pd.Series(codes).isin(twice).to_numpy() if len(twice) else np.zeros(len(codes), dtype=bool)


def mask_id_series(raw: pd.Series) -> pd.Series:
    """:func:`mask_id` over a column."""
    s = raw.astype("string").str.strip()
    n = s.str.len()
    masked = s.str[:6] + n.sub(10).clip(lower=0).map(lambda k: "*" * int(k) if pd.notna(k) else "") + s.str[-4:]
    return masked.where(n > 10, n.map(lambda k: "*" * int(k) if pd.notna(k) else "<none>"))


_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """Mask every ID-shaped number in free text (error bodies, messages) before it is logged."""
    return _ID_LIKE.sub(lambda m: mask_id(m.group(1)), text)


def valid_credit_mask(codes: pd.Series) -> np.ndarray:
    """:func:`is_valid_credit_code` over a column (boolean array; null is not valid). Each distinct
    code is checked once (a unit's code is on every one of its persons' records: at 2M staffing
    records, 55k codes)."""
    at, distinct = pd.factorize(codes.astype("string"))   # null: -1
    s = pd.Series(distinct, dtype="string")
    shape = s.str.fullmatch(f"[{CREDIT_ALPHABET}]{{18}}").fillna(False).to_numpy(dtype=bool)
    ok = np.zeros(len(s) + 1, dtype=bool)   # the last: a null's (at -1), never valid
    if shape.any():
        cand = s[shape]
        lookup = np.full(128, -1, dtype=np.int64)
        lookup[[ord(c) for c in CREDIT_ALPHABET]] = np.arange(len(CREDIT_ALPHABET))
        chars = np.frombuffer("".join(cand.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        idx = lookup[chars]
        total = (idx[:, :17] * np.asarray(CREDIT_WEIGHTS)).sum(axis=1)
        ok[np.flatnonzero(shape)] = (31 - total % 31) % 31 == idx[:, 17]
    return ok[at]
