"""The GB 11643 / GB 32100 helpers every stage relies on."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from include import identifiers as ids

# Published example: the GB 11643-1999 standard's own sample number.
SAMPLE_ID = "11010519491231002X"


def test_check_char_of_published_sample():
    assert ids.id_check_char(SAMPLE_ID[:17]) == "X"
    assert ids.is_valid_id(SAMPLE_ID)


def test_single_digit_typo_always_fails_the_check():
    for pos in range(17):
        digit = int(SAMPLE_ID[pos])
        typo = SAMPLE_ID[:pos] + str((digit + 1) % 10) + SAMPLE_ID[pos + 1 :]
        assert not ids.is_valid_id(typo), pos


def test_legacy_round_trip():
    id15 = ids.to_legacy_15(SAMPLE_ID)
    assert len(id15) == 15
    assert ids.legacy_to_18(id15) == SAMPLE_ID


def test_clean_id_handles_dirt():
    assert ids.clean_id(" 11010519491231002x\u3000") == SAMPLE_ID
    assert ids.clean_id(ids.to_legacy_15(SAMPLE_ID)) == SAMPLE_ID
    assert ids.clean_id(None) is None


def test_birth_date_after_period_is_invalid():
    assert not ids.is_valid_id(SAMPLE_ID, not_after=dt.date(1949, 12, 30))
    assert ids.is_valid_id(SAMPLE_ID, not_after=dt.date(1949, 12, 31))


def test_mask_keeps_first_six_and_last_four():
    assert ids.mask_id(SAMPLE_ID) == "110105********002X"
    assert ids.mask_id("12345") == "*****"


def test_vectorised_check_chars_agree_with_scalar():
    rng = np.random.default_rng(1)
    bodies = rng.integers(0, 10, size=(200, 17))
    chars = ids.id_check_chars(bodies)
    for row, c in zip(bodies, chars):
        assert ids.id_check_char("".join(map(str, row))) == c


def test_credit_code_check():
    body = "11150203" + "MB1234567"
    code = body + ids.credit_check_char(body)
    assert ids.is_valid_credit_code(code)
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert not ids.is_valid_credit_code(wrong)
    with pytest.raises(ValueError):
        ids.credit_check_char("I" * 17)


def test_name_normalisation():
    for dot in "•.・．‧·":
        assert ids.normalise_name(f" 买买提{dot}艾力\u3000") == "买买提·艾力"
    s = pd.Series(["买买提•艾力 ", "张\u3000三", None])
    out = ids.normalise_name_series(s)
    assert list(out[:2]) == ["买买提·艾力", "张三"]
    assert out.isna()[2]


def test_vectorised_forms_agree_with_the_scalar_ones():
    rng = np.random.default_rng(7)
    good = [ids.legacy_to_18(f"{rng.integers(110000, 659999)}{rng.integers(50, 99)}{rng.integers(1, 12):02d}{rng.integers(1, 28):02d}{rng.integers(0, 999):03d}") for _ in range(300)]
    raw = good + [g.lower() for g in good[:20]] + [" " + g + "\u3000" for g in good[20:40]] + [ids.to_legacy_15(g) for g in good[40:60]]
    raw += [g[:5] + str((int(g[5]) + 3) % 10) + g[6:] for g in good[60:90]]          # mistyped digits
    raw += [g[:10] + "1332" + g[14:] for g in good[90:100]]                             # impossible birth date
    raw += ["", None, "abc", "1234567890123456789", "12345678901234567"]
    raw += ["１" * 15, "٣" * 15, "１" * 17 + "X", "110105491231002"[:14] + "x", "11010549123100 2"]   # digits beyond ASCII are not digits of an ID
    series = pd.Series(raw, dtype=object)
    cleaned = ids.clean_id_series(series)
    for r, c in zip(raw, cleaned):
        expected = ids.clean_id(r)
        assert (pd.isna(c) and expected is None) or c == expected, r
    mask, b8 = ids.id_facts(cleaned, not_after=dt.date(2026, 10, 31))
    for c, m in zip(cleaned, mask):
        assert m == (not pd.isna(c) and ids.is_valid_id(c, not_after=dt.date(2026, 10, 31))), c
    assert mask.sum() == 300 + 20 + 20 + 20 - 0 + 1 and not mask[-10:-1].any()   # the last: a legacy ID, spaced
    assert b8.iloc[0] == cleaned.iloc[0][6:14] and b8.iloc[300 + 20 + 20 + 20 + 30:300 + 20 + 20 + 20 + 40].isna().all()
    for c, b in zip(cleaned, b8):
        assert (pd.isna(b) and ids.birth8(None if pd.isna(c) else c) is None) or b == ids.birth8(c), c
    # dates at the edges of the calendar, characters of several bytes, the check char's case
    edges = ["11010520000229", "11010519000229", "11010516000229", "11010500000101", "11010599991231",
             "1101051990023", "中国人民05199001011234", "中a05199001011234", "ＡＢＣＤＥＦ19900101", "1101051990010100x",
             "11010519900101中1", "中中0519900101123"]   # a character of several bytes after the date, and before it
    edges += [body + ids.id_check_char(body) for body in ("11010520000229123", "11010516000229123", "11010519000229123")]
    edges += ["11010520000229123" + ids.id_check_char("11010520000229123").lower(), None, ""]
    e = pd.Series(edges, dtype="string")
    mask_e, b8_e = ids.id_facts(e)
    assert list(mask_e) == [x is not None and ids.is_valid_id(x) for x in edges]
    assert [None if pd.isna(b) else b for b in b8_e] == [ids.birth8(x) for x in edges]
    assert ids.birth8("11010520000229") == "20000229" and ids.birth8("11010519000229") is None
    masked = ids.mask_id_series(pd.Series([SAMPLE_ID, "12345", None]))
    assert masked.iloc[0] == ids.mask_id(SAMPLE_ID) and masked.iloc[1] == "*****"


def test_redact_masks_id_shaped_numbers_in_text():
    text = f"no such person {SAMPLE_ID} or {SAMPLE_ID.lower()} (legacy {ids.to_legacy_15(SAMPLE_ID)}); unit 300001"
    out = ids.redact(text)
    assert SAMPLE_ID not in out and SAMPLE_ID.lower() not in out and ids.to_legacy_15(SAMPLE_ID) not in out
    assert "110105********002X" in out and "unit 300001" in out


def test_vectorised_credit_check_agrees_with_the_scalar_one():
    body = "11150203MB1234567"
    good = body + ids.credit_check_char(body)
    codes = pd.Series([good, good[:-1] + ("1" if good[-1] != "1" else "2"), "I" * 18, None, good.lower(), "123"])
    assert list(ids.valid_credit_mask(codes)) == [ids.is_valid_credit_code(c) for c in codes]
    assert ids.valid_credit_mask(codes)[0] and not ids.valid_credit_mask(codes)[1:].any()
    repeated = pd.concat([codes, codes.iloc[::-1], pd.Series([None, good, ""])], ignore_index=True)   # each distinct code checked once
    assert list(ids.valid_credit_mask(repeated)) == [isinstance(c, str) and ids.is_valid_credit_code(c) for c in repeated]
    assert ids.valid_credit_mask(repeated).sum() == 3


def test_rows_with_bytes_as_a_scan_of_each_value():
    """The byte scan (a comparison per run of byte values) finds the values a plain scan of each
    value's UTF-8 finds, for sets of single bytes and runs, at both ends of the byte range, on
    sliced arrays and large strings."""
    import pyarrow as pa

    values = ["", None, "a", "é", "中文", "\x00", "x\x7f", "\u3000", "tab\t", "ÿ", "\U0001F600", "end\x1f", "z"] * 3
    text = pa.array(values, pa.string())
    sets = [ids.WHITESPACE_BYTES, ids.DOT_BYTES, frozenset([*range(0x20), 0x7F]), {0}, {0xFF}, {0xF0, 0x9F}, {ord("z")},
            set(range(0x80, 0x100)), set(), ids.CLEANED_BYTES, set(range(0x100)) - {ord("a")}]   # the last two: all but a run
    for arr in (text, text.slice(4), text.slice(2, 17), pa.array(values, pa.large_string())):
        for byte_values in sets:
            plain = [i for i, v in enumerate(arr.to_pylist()) if v is not None and set(v.encode()) & set(byte_values)]
            assert list(ids.rows_with_bytes(arr, byte_values)) == plain, (sorted(byte_values)[:4], arr.offset)


def test_why_an_id_fails_shows_only_the_failing_part():
    from include.identifiers import why_invalid

    body = "15020419800101001"
    good = body + ids.id_check_char(body)
    typo = good[:9] + str((int(good[9]) + 1) % 10) + good[10:]       # a digit of the year mistyped
    cases = {
        typo: "第 18 位校验码",
        good[:10] + "13" + good[12:]: "第 11-12 位出生月份为“13”",
        good[:12] + "32" + good[14:]: "第 13-14 位出生日为“32”",
        good[:14] + "O01" + good[17:]: "第 15 位为“O”",
        good[:16]: "长度 16 位",
    }
    for raw, start in cases.items():
        said = why_invalid(raw)
        assert said.startswith(start), (raw, said)
        # with the mask's 6 + 4 characters, never the whole number
        shown = ids.mask_id(raw) + said
        assert raw not in shown and raw[6:14] not in said
    assert why_invalid(good) == "校验通过"


def test_digits_a_word_at_a_time_as_byte_by_byte():
    """The 64-bit tests and readings of eight ASCII digits agree with reading each byte: which words
    are digits, for bytes at every edge (below "0", "0", "9", above "9", the high nibble's, the
    high bit), including rows whose added sixes would carry; the number they write; and whether
    they are a real date, at the calendar's edges."""
    rng = np.random.default_rng(11)
    edges = np.array([0, 0x2F, 0x30, 0x31, 0x38, 0x39, 0x3A, 0x3F, 0x40, 0x7F, 0x80, 0xB9, 0xBA, 0xF9, 0xFA, 0xFF],
                     dtype=np.uint8)
    raw = np.concatenate([rng.choice(edges, (20000, 8)), rng.integers(0x30, 0x3A, (2000, 8), dtype=np.uint8),
                          rng.integers(0, 256, (2000, 8), dtype=np.uint8)])
    raw[-1] = 0x39   # all digits
    words = ids._words(raw)[:, 0]
    digits = ((raw >= 0x30) & (raw <= 0x39)).all(axis=1)
    assert list(ids._digit_words(words)) == list(digits)
    assert digits.sum() >= 2000
    numbers = [int(bytes(r).decode()) for r in raw[digits]]
    assert list(ids._decimal_words(words[digits])) == numbers and max(numbers) == 99999999
    dates = ["20000229", "19000229", "16000229", "00000101", "99991231", "20261131", "20261301", "20260001", "20260100",
             "19991231", "20240229", "20230229", "00010101"]
    real, born = ids._real_dates(ids._words(np.frombuffer("".join(dates).encode(), dtype=np.uint8).reshape(-1, 8))[:, 0])
    assert list(real) == [ids.parse_yyyymmdd(d) is not None for d in dates]
    assert list(born) == [int(d) for d in dates]
    # an ID's body and last byte, of 18-byte rows: the rows beginning with 17 ASCII digits
    ids18 = np.concatenate([rng.integers(0x30, 0x3A, (500, 18), dtype=np.uint8), rng.choice(edges, (5000, 18))])
    _, shaped, last = ids._id_shape(ids18)
    assert list(shaped) == list(((ids18[:, :17] >= 0x30) & (ids18[:, :17] <= 0x39)).all(axis=1))
    assert list(last) == list(ids18[:, 17])


def test_fixed_width_bytes_of_some_rows_or_all():
    """The bytes of equally wide values as a matrix: of every row (the array's own data, sliced or
    not) and of some, as each value's UTF-8."""
    import pyarrow as pa

    values = [f"{i:06d}中" for i in range(40)]   # 9 bytes each
    for arr in (pa.array(values, pa.string()), pa.array(values, pa.large_string()).slice(7), pa.array(values).slice(3, 20)):
        for rows in (np.arange(len(arr)), np.arange(len(arr))[1:], np.array([0, 2, len(arr) - 1]), np.arange(0)):
            got = ids._fixed_width(arr, rows, 9)
            assert got.shape == (len(rows), 9)
            assert [bytes(r).decode() for r in got] == [arr[int(i)].as_py() for i in rows]
