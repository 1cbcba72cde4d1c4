"""Readers on the files seized data comes in; every fixture is written here, at run time."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from pi_match.io import Batch, InputError, ReadOptions, Source, detect_columns, open_source

ID1, ID2, ID3 = "11010519491231002X", "440305199003071236", "810000198001010014"


def rows(src, col):  # type: ignore[no-untyped-def]
    out, lines = [], []
    for b in src.batches():
        vals = b.column(col).to_pylist()
        out += [v.decode() if isinstance(v, bytes) else v for v in vals]
        lines += b.lines.tolist()
    return out, lines


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_with_and_without_bom(tmp_path: pathlib.Path, bom: bytes) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(bom + "姓名,身份证号\n张三,11010519491231002X\n".encode())
    src = open_source(p)
    assert src.encoding == "utf-8" and src.columns == ["姓名", "身份证号"]
    assert src.facts["bom"] == bool(bom)
    assert rows(src, "身份证号") == ([ID1], [2])


def test_gb18030_outside_gbk(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "a.csv"
    text = "姓名,身份证号\n王䶮,11010519491231002X\n李·四,440305199003071236\n"
    p.write_bytes(text.encode("gb18030"))
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")  # 䶮 is outside GBK: the fixture really needs GB18030
    src = open_source(p)
    assert src.encoding == "gb18030"
    assert rows(src, "姓名")[0] == ["王䶮", "李·四"]


def test_undecodable_file_asks_for_encoding(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(b"id\n" + b"\x81\x20\xff\xfe\n" * 3)
    with pytest.raises(InputError, match="--encoding"):
        open_source(p)
    p.write_bytes("id\nabc\n".encode("utf-16-le"))
    src = open_source(p, ReadOptions(encoding="utf-16-le"))
    assert rows(src, "id")[0] == ["abc"]


def test_dash_separated_headerless_dump(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "leak.txt"
    p.write_text(f"张三----{ID1}----13800138000\n李四----{ID2}----13900000000\n", "utf-8")
    src = open_source(p, ReadOptions(header=False))
    assert src.facts["delimiter"] == "----" and src.columns == ["1", "2", "3"]
    assert rows(src, "2") == ([ID1, ID2], [1, 2])
    src = open_source(p, ReadOptions(header=False, delimiter=" # "))
    assert src.columns == ["1"]


def test_quotes_stray_separators_truncated_last_line(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "hotel.csv"
    p.write_text(
        "Name,CtfId,Address,Mobile\n"
        f'张三,{ID1},"北京市,朝阳区",13800138000\n'
        f"李四,{ID2},上海市,徐汇区,13900000000\n"  # unquoted comma in the address
        "\n"
        f"王五,{ID3},深圳市",  # truncated mid-row: no newline, one field short
        "utf-8",
    )
    src = open_source(p)
    assert rows(src, "Address") == (["北京市,朝阳区"], [2])
    assert [(r.line, r.reason) for r in src.rejects] == [(3, "field_count"), (5, "field_count")]
    assert "徐汇区" in src.rejects[0].raw and src.blank_lines == 1


def test_plain_list_keeps_blank_lines_as_missing(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "ids.lst"
    p.write_text(f"{ID1}\n\n-\n{ID2}\n", "utf-8")
    src = open_source(p, ReadOptions(format="lines"))
    assert rows(src, "1") == ([ID1, "", "-", ID2], [1, 2, 3, 4])


def test_jsonl(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text(
        json.dumps({"name": "张三", "mobile": 13800138000, "id": ID1}, ensure_ascii=False)
        + "\nnot json\n"
        + json.dumps({"name": "李四", "id": None})
        + "\n",
        "utf-8",
    )
    src = open_source(p)
    assert src.columns == ["name", "mobile", "id"]
    assert rows(src, "mobile") == (["13800138000", None], [1, 3])
    assert [(r.line, r.reason) for r in src.rejects] == [(2, "bad_json")]


def test_parquet(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "a.parquet"
    table = pa.table({"id": [ID1, None, ID2], "mobile": [13800138000, 13900000000, None],
                      "mangled": [1.10105e17, 5.0, None]})  # fmt: skip
    pq.write_table(table, p)
    src = open_source(p)
    assert rows(src, "id") == ([ID1, None, ID2], [1, 2, 3])
    assert rows(src, "mobile")[0] == ["13800138000", "13900000000", None]
    assert rows(src, "mangled")[0][:2] == ["1.10105e+17", "5"]


def test_sql_dump(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "dump.sql"
    p.write_text(
        "CREATE TABLE `users` (\n  `id` int,\n  `name` varchar(20),\n  `idcard` varchar(18)\n);\n"
        f"INSERT INTO `users` VALUES (1,'O\\'Brien','{ID1}'),(2,'张三, 北京','{ID2}');\n"
        "INSERT INTO `users` VALUES\n"
        f"(3,'x',NULL),\n(4,'y','{ID3}');\n"
        "INSERT INTO `logs` VALUES (1,'a'),(2,'b');\n",
        "utf-8",
    )
    src = open_source(p)
    assert src.columns == ["id", "name", "idcard"]
    assert rows(src, "idcard") == ([ID1, ID2, None, ID3], [6, 6, 8, 9])
    assert rows(src, "name")[0][:2] == ["O'Brien", "张三, 北京"]
    assert src.facts["other_tables"] == {"logs": 2}


def test_xlsx_two_sheets(tmp_path: pathlib.Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "registrations"
    ws.append(["姓名", "身份证号", "手机"])
    ws.append(["张三", ID1, 13800138000])
    ws.append(["李四", 1.10105194912310e17, "139 0000 0000"])  # Excel-mangled ID
    ws2 = wb.create_sheet("stays")
    ws2.append(["姓名", "身份证号", "手机"])
    ws2.append(["王五", ID3, None])
    p = tmp_path / "book.xlsx"
    wb.save(p)
    src = open_source(p)
    assert src.columns == ["姓名", "身份证号", "手机"]
    ids, lines = rows(src, "身份证号")
    assert ids == [ID1, "1.10105E+17", ID3] and lines == [2, 3, 2]
    assert rows(src, "手机")[0] == ["13800138000", "139 0000 0000", None]
    src = open_source(p, ReadOptions(sheet="stays"))
    assert rows(src, "身份证号")[0] == [ID3]
    with pytest.raises(InputError, match="no sheet 'nope'"):
        open_source(p, ReadOptions(sheet="nope"))


def test_column_detection_by_values_and_headers(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "a.csv"
    rng = np.random.default_rng(1)
    from pi_match.synth import mobile_numbers, ric_numbers

    ids, mobs = ric_numbers(rng, 50), mobile_numbers(rng, 50)
    body = "".join(f"{i},{m},x{i[:3]}@qq.com\n" for i, m in zip(ids, mobs, strict=True))
    p.write_text("a,b,c\n" + body, "utf-8")
    found = {d.kind: d.column for d in detect_columns(open_source(p))}
    assert found == {"cn_ric": "a", "cn_mobile": "b", "email": "c"}
    p.write_text(
        "联系电话,证件号码\n-,-\n" + "".join(f"{m},{i}\n" for i, m in zip(ids, mobs, strict=True)),
        "utf-8",
    )
    found = {d.kind: d.column for d in detect_columns(open_source(p))}
    assert found == {"cn_mobile": "联系电话", "cn_ric": "证件号码"}


def test_big_file_streams_in_chunks(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "big.csv"
    n = 200_000
    with open(p, "w", encoding="utf-8") as f:
        f.write("id\n")
        f.writelines(f"{i:018d}\n" for i in range(n))
    src = open_source(p, ReadOptions(chunk_bytes=1 << 20))
    sizes = [len(b) for b in src.batches()]
    assert sum(sizes) == n and len(sizes) > 3 and max(sizes) < n // 2
    assert src.count_rows() >= n


@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "utf-16"])
@pytest.mark.parametrize("change", ["grew", "shrank"])
def test_a_file_that_changes_between_the_passes_is_refused(
    tmp_path: pathlib.Path, enc: str, change: str
) -> None:
    """The data pass reads exactly the bytes the scan hashed and counted: a file that grew or
    shrank in between is an error naming it, not rows silently added or lost."""
    p = tmp_path / "t.csv"
    rows = "".join(f"张{i},{i:018d}\n" for i in range(5000))
    p.write_bytes(("名,号\n" + rows).encode(enc))
    src = open_source(p, ReadOptions(chunk_bytes=1 << 12, delimiter=",", encoding=enc))
    data = p.read_bytes()
    p.write_bytes(data + "李,1\n".encode(enc) if change == "grew" else data[:-100])
    with pytest.raises(InputError, match=r"t\.csv: changed while it was being read"):
        for _ in src.batches():
            pass
    # Unchanged, it reads through.
    p.write_bytes(data)
    assert sum(len(b) for b in src.batches()) == 5000


# -- GB18030 decoded in Rust (issue #14) ------------------------------------------------------


def _gb_text(rng_seed: int, n: int) -> str:
    import random

    r = random.Random(rng_seed)
    # GB2312 hanzi (the bulk of real names), ASCII, and characters only 4-byte GB18030 has
    pool = [bytes([a, b]).decode("gb18030") for a in range(0xB0, 0xF8) for b in range(0xA1, 0xFF)
            if (a, b) < (0xD7, 0xFA)]  # fmt: skip
    extra = ["𠀀", "㐀", "€", "·", "—", "ü", "\u3000"]
    return "".join(r.choice(pool) if r.random() < 0.6 else r.choice(extra + list("0123456789,\n"))
                   for _ in range(n))  # fmt: skip


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 4096])
def test_rust_gb18030_decoding_is_pythons_at_any_block_size(block: int) -> None:
    """The Rust decoder gives Python's codec's UTF-8 whatever the block boundaries cut (a
    2- or 4-byte character split between blocks is carried over)."""
    from pi_match.io.encoding import StrictDecoder

    text = _gb_text(block, 3000)
    raw = text.encode("gb18030")
    dec = StrictDecoder("gb18030", x80=b"\x80" in raw)
    assert dec.rust
    out = b"".join(dec.decode(raw[i : i + block], False) for i in range(0, len(raw), block))
    out += dec.decode(b"", True)
    assert out == text.encode("utf-8")
    # `end`: only the first `end` bytes are decoded (what follows is read again next time).
    for x80 in (False, True):  # Rust takes `end` in place; Python's codec gets the slice
        dec = StrictDecoder("gb18030", x80=x80)
        out = b"".join(dec.decode(raw[i : i + 3 * block], False, end=min(block, len(raw) - i))
                       for i in range(0, len(raw), block))  # fmt: skip
        assert out + dec.decode(b"", True) == text.encode("utf-8")
        assert dec.done == len(raw)


def test_rust_gb18030_refuses_what_python_refuses_at_the_same_byte() -> None:
    from pi_match.io.encoding import BadByte, StrictDecoder

    good = "张三,11010519491231002X\n".encode("gb18030")
    for bad in (b"\xff", b"\x81\x20", b"\x81\x30\x81", b"\xfe\x39\xfe\x39"):
        raw = good * 3 + bad + good
        offsets = []
        for x80 in (False, True):  # Rust, then Python's codec
            dec = StrictDecoder("gb18030", x80=x80)
            assert dec.rust is not x80
            with pytest.raises(BadByte) as e:
                for i in range(0, len(raw), 5):
                    dec.decode(raw[i : i + 5], False)
                dec.decode(b"", True)
            offsets.append(e.value.offset)
        assert offsets[0] == offsets[1] == 3 * len(good), (bad, offsets)
        # Decoding only whole lines (`end`), with the rest read again: the same offset.
        dec = StrictDecoder("gb18030", x80=False)
        with pytest.raises(BadByte) as e:
            for i in range(0, len(raw), len(good)):
                dec.decode(raw[i:], False, end=min(len(good), len(raw) - i))
            dec.decode(b"", True)
        assert e.value.offset == 3 * len(good)
    from pi_match import _core

    with pytest.raises(ValueError, match="end 9 is past the data's 3 bytes"):
        _core.Gb18030Decoder().decode(b"abc", end=9)


@given(st.lists(st.sampled_from(["\x80", "a", "张", "\U00020000", "\u00e9", "\n"]), max_size=400),
       st.integers(0, 64))  # fmt: skip
def test_rust_gb18030_writes_its_output_in_place_however_much_it_grows(parts, cut) -> None:  # type: ignore[no-untyped-def]
    """The decoder writes UTF-8 straight into the bytes it returns, sized for real text (3
    bytes for 2) and grown when a block needs more: a run of 0x80 (€, 3 bytes for 1, as
    encoding_rs reads it) must come out whole, as must 4-byte sequences, with `end` too."""
    from pi_match import _core

    raw = b"".join(b"\x80" if p == "\x80" else p.encode("gb18030") for p in parts)
    want = "".join("€" if p == "\x80" else p for p in parts).encode()
    assert _core.Gb18030Decoder().decode(raw, True) == want
    dec = _core.Gb18030Decoder()
    cut = min(cut, len(raw))
    head = dec.decode(raw + b"tail", False, end=cut)
    assert head + dec.decode(raw[cut:], True) == want


_GB_PIECES = st.one_of(
    st.sampled_from(["张", "a", "\n", "\U00020000", "€", "\u00e9"]).map(
        lambda c: c.encode("gb18030")
    ),
    st.sampled_from(
        [b"\x80", b"\xff", b"\x81", b"\x81\x30", b"\xd5\n", b"\x84\x31\xa5"]
    ),  # bad, or cut
)


@given(st.lists(_GB_PIECES, max_size=80), st.integers(0, 40), st.booleans(), st.integers(0, 300))
@example([b"a", b"\xff", b"b\n", b"ccc\n", b"\xff", b"\n"], 3, True, 0)  # bad bytes in both parts
def test_decoding_two_halves_at_once_is_decoding_once(pieces, k, final, min_len):  # type: ignore[no-untyped-def]
    """`decode_halves` cuts after a line feed near the middle and decodes both parts at once:
    joined, the same UTF-8 as `decode`, or the same error at the same byte (the first part's
    error wins, as one pass would meet it first), and the stream goes on from its end — after
    a block that ends inside a character, too. `parallel=False` (one part after the other, as a
    reader reading ahead does) gives the very same two parts."""
    from pi_match import _core

    raw = b"".join(pieces)
    head, rest = raw[: k * 4], raw[k * 4 :]
    modes = [None, True, False]  # decode; decode_halves in parallel; decode_halves in turn

    def run(parallel: bool | None) -> object:
        dec = _core.Gb18030Decoder()
        try:
            if parallel is not None:
                ab = dec.decode_halves(
                    head + b"junk", False, end=len(head), min_len=min_len, parallel=parallel
                )
            else:
                ab = (dec.decode(head, False),)
            return (*ab, dec.decode(rest, final))
        except UnicodeDecodeError as e:
            return ("error at", e.start)

    def joined(parts: object) -> object:  # the text, or the error
        assert isinstance(parts, tuple)
        return b"".join(parts) if isinstance(parts[0], bytes) else parts

    got = {m: run(m) for m in modes}
    assert got[True] == got[False]
    assert joined(got[True]) == joined(got[None])

    def whole(parallel: bool | None) -> object:
        dec = _core.Gb18030Decoder()
        try:
            if parallel is not None:
                return dec.decode_halves(raw, final, min_len=0, parallel=parallel)
            return (dec.decode(raw, final),)
        except UnicodeDecodeError as e:
            return ("error at", e.start)

    got = {m: whole(m) for m in modes}
    assert got[True] == got[False]
    assert joined(got[True]) == joined(got[None])
    # Whole lines, as the reader gives them: both parts end after a line break or at the end.
    if b"\n" in raw:
        cut = raw.rindex(b"\n") + 1
        dec = _core.Gb18030Decoder()
        try:
            a, b = dec.decode_halves(raw, True, end=cut, min_len=0)
        except UnicodeDecodeError:
            return
        assert a.endswith(b"\n") and (not b or b.endswith(b"\n"))


@pytest.mark.parametrize("fmt", ["jsonl", "sql", "lines"])
def test_json_sql_and_lines_sources_read_all_end_as_checking_first(tmp_path, fmt) -> None:  # type: ignore[no-untyped-def]
    """JSON lines, SQL dumps and plain lines ride on the delimited reader: with `read_all` a
    GB18030 file's bad byte stops the reading with the error opening would have given, and a
    good file gives the same rows either way."""
    body = {
        "jsonl": ['{"名": "张三", "号": "110105194912310021"}'] * 3,
        "sql": ["CREATE TABLE t (", "  `名` varchar(9),", "  `号` varchar(18)", ");"]
        + ["INSERT INTO `t` VALUES ('张三','110105194912310021');"] * 3,
        "lines": ["张三110105194912310021"] * 3,
    }[fmt]
    good = ("\n".join(body) + "\n").encode("gb18030")
    for data in (good, good + b"\xff\n"):
        p = tmp_path / f"t.{fmt}"
        p.write_bytes(data)

        def outcome(p: pathlib.Path, read_all: bool):  # type: ignore[no-untyped-def]
            try:
                src = open_source(p, ReadOptions(format=fmt), read_all=read_all)
                # The check is left to the reading (the scan did not decode the file).
                assert getattr(src, "lines_src", src).facts_pass.decodes_checked != read_all
                return [len(b) for b in src.batches()]
            except InputError as e:
                return str(e)

        want = outcome(p, False)
        assert outcome(p, True) == want
        assert (data == good) == (not isinstance(want, str)), want


def test_large_gb18030_blocks_read_in_two_halves_give_the_utf8_files_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Blocks of 2 MiB or more are decoded in two halves at once (`decode_halves`): a 6 MiB
    file in GB18030, read in 3 MiB blocks, gives the rows, line numbers and rejects of the same
    text in UTF-8, a quoted cell with a line break and a bad row among them — and so does
    reading either ahead (`read_ahead`: halves decoded and stretches split in turn)."""
    from pi_match.io import read_ahead

    rows = [f"王{i % 89}芳,{110105194912310021 + i},1380000{i % 10000:04d}" for i in range(200_000)]
    rows[70_000] = '"张\n三,李",110105194912310021,13800000001'
    rows[150_000] = "a,b"
    text = "姓名,身份证号,手机\n" + "\n".join(rows) + "\n"
    got = []
    for enc, ahead in [("gb18030", False), ("utf-8", False), ("gb18030", True), ("utf-8", True)]:
        p = tmp_path / f"{enc}.csv"
        p.write_bytes(text.encode(enc))
        assert enc == "utf-8" or p.stat().st_size > 2 * (3 << 20) - (1 << 20)
        src = open_source(p, ReadOptions(chunk_bytes=3 << 20), read_all=True)
        read = read_ahead(src) if ahead else src.batches()
        batches = [(b.lines.tolist(), b.column("姓名").to_pylist()) for b in read]
        lines = sum((x for x, _ in batches), [])
        names = sum((y for _, y in batches), [])
        got.append((lines, names, [(r.line, r.reason) for r in src.rejects]))
    assert got[0] == got[1] == got[2] == got[3]
    assert len(got[0][0]) == 199_999 and got[0][1][70_000] == "张\n三,李".encode()


def test_a_gb18030_file_with_a_0x80_byte_takes_pythons_strict_codec(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """encoding_rs reads a lone 0x80 as € (as browsers do); GB18030 has no such byte, so a file
    holding one is decoded by Python's codec, which names the byte."""
    from pi_match.io import InputError, ReadOptions, open_source

    p = tmp_path / "x80.csv"
    p.write_bytes("姓名,手机\n张三,13800000001\n".encode("gb18030") + b"\x80,13800000002\n")
    with pytest.raises(InputError, match=r"byte 27 on line 3 is not valid gb18030"):
        src = open_source(str(p), ReadOptions(encoding="gb18030"))
        list(src.batches())


@given(st.binary(max_size=300), st.text(max_size=100))
def test_block_utf8_check_agrees_with_python(noise: bytes, text: str) -> None:
    """`utf8_error_offset` (SIMD) says what Python's strict decoder says: the first invalid
    byte, except that a sequence cut off at the very end is left for the next block."""
    from pi_match import _core

    for data in (noise, text.encode() + noise, text.encode(), ("张" * 40).encode()[:-1]):
        try:
            data.decode("utf-8")
            want = None
        except UnicodeDecodeError as e:
            want = None if e.reason == "unexpected end of data" else e.start
        assert _core.utf8_error_offset(data) == want


@given(
    st.lists(st.one_of(st.text(max_size=6), st.binary(max_size=6)), min_size=1, max_size=12),
    st.sampled_from([b",", b"----", "，".encode(), b"\xa3", b"\t"]),
    st.sampled_from([b'"', b"", b"\xa3"]),
)
def test_split_says_utf8_only_when_every_field_is(parts, sep, quote):
    """The splitter's `utf8` flag lets readers hand fields on as text unchecked: it must be
    true only when the chunk is valid UTF-8 and every field cut from it is."""
    from pi_match import _core

    data = b"".join(p.encode("utf-8", "surrogatepass") if isinstance(p, str) else p for p in parts)
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    try:
        s = _core.split_delimited(data + b"\n", 1, sep, quote)
    except UnicodeEncodeError:
        return
    safe_cut = quote in (b"", b'"') and sep != b"\xa3"
    assert s.utf8 == (valid and safe_cut)
    if s.utf8:
        for offsets, buf in s.columns:
            raw = bytes(buf)
            for a, b in zip(offsets[:-1], offsets[1:], strict=True):
                raw[a:b].decode("utf-8")  # every field is valid text


def test_batches_of_valid_text_reach_the_core_as_text(tmp_path: pathlib.Path) -> None:
    """Columns stay bytes for callers; `Batch.text` views a column the reader checked as a
    string array over the same buffers, and an invalid chunk stays bytes, value by value."""
    good = tmp_path / "good.csv"
    good.write_text("身份证号\n11010519491231002X\n", encoding="utf-8")
    (b,) = open_source(good, ReadOptions()).batches()
    assert b.utf8 and b.column("身份证号").type == pa.large_binary()
    t = b.text("身份证号")
    assert t.type == pa.large_string() and t.to_pylist() == ["11010519491231002X"]
    assert t.buffers()[2].address == b.column("身份证号").buffers()[2].address  # no copy
    # Decoded text (here Latin-1) is UTF-8 by construction, and checked again all the same.
    other = tmp_path / "latin1.csv"
    other.write_bytes(b"id\n11010519491231002X\n\xff\xfe\n")
    (b,) = open_source(other, ReadOptions(encoding="latin-1")).batches()
    assert b.utf8
    assert b.text("id").to_pylist() == [v.decode() for v in b.column("id").to_pylist()]
    assert b.text("id").to_pylist()[1] == "ÿþ"
    # A batch not known to be text is handed on as it is.
    b.utf8 = False
    assert b.text("id").type == pa.large_binary()


@given(
    st.lists(
        st.tuples(
            st.text("张a1 ,", max_size=8),
            st.text("9x,", max_size=5),
            st.sampled_from(["\n", "\r\n", "\r"]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 40),
    st.sampled_from(["utf-8", "gb18030"]),
)
def test_chunked_reading_is_reading_at_once(rows, chunk, enc):
    """However the file is cut into chunks (lines across cuts, a CRLF cut in two, a header in
    the first), the rows, line numbers, rejects and blank lines are those of reading it whole."""
    import tempfile

    text = "名,号\n" + "".join(a + "," + b + end for a, b, end in rows)

    def read(chunk_bytes: int) -> tuple[object, ...]:
        with tempfile.TemporaryDirectory() as d:
            p = pathlib.Path(d) / "t.csv"
            p.write_bytes(text.encode(enc))
            src = open_source(p, ReadOptions(chunk_bytes=chunk_bytes, delimiter=",", encoding=enc))
            got = [(b.lines.tolist(), b.column("名").to_pylist(), b.column("号").to_pylist())
                   for b in src.batches()]  # fmt: skip
            flat = tuple(sum((g[i] for g in got), []) for i in range(3))
            return flat, [(r.line, r.reason, r.raw) for r in src.rejects], src.blank_lines

    assert read(chunk) == read(1 << 20)


_LINES = st.one_of(
    st.text("张三a1,", max_size=6).map(lambda t: t.encode("utf-8")),  # UTF-8 (Chinese or ASCII)
    st.text("张三李四1,", max_size=6).map(lambda t: t.encode("gb18030")),  # GB18030
    st.binary(max_size=5),  # anything: bytes that decode as neither, now and then
)


@given(
    st.lists(st.tuples(_LINES, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=25),
    st.integers(1, 48),
)
def test_the_scan_decides_as_the_separate_passes_do(lines, chunk):
    """The scan checks a file found not UTF-8 in its first block as GB18030, and for mixed
    lines, in its own pass: whatever the chunking, the encoding it settles on, or the error it
    stops with, is what decoding the whole file and tallying its lines separately give."""
    import tempfile

    from pi_match.io.encoding import BOMS, _check_mixed, _not_gb18030, first_bad_byte, scan

    data = b"".join(a + b for a, b in lines)
    # Left to detection: a byte-order mark (GB18030 has one too) or UTF-16's NULs decide first.
    assume(not any(data.startswith(mark) for mark, _ in BOMS) and b"\x00" not in data[:4096])
    with tempfile.TemporaryDirectory() as d:
        p = str(pathlib.Path(d) / "t.csv")
        pathlib.Path(p).write_bytes(data)

        def outcome(f):  # type: ignore[no-untyped-def]
            try:
                return f()
            except InputError as e:
                return str(e)

        def separately() -> str:
            if first_bad_byte(p, "utf-8", 0, 1 << 20) is None:
                return "utf-8"
            utf8_bad = next(i for i in range(len(data) + 1) if _utf8_bad(data, i))
            gb_bad = first_bad_byte(p, "gb18030", 0, 1 << 20, b"\x80" in data)
            if gb_bad is not None:
                raise _not_gb18030(p, utf8_bad, gb_bad)
            _check_mixed(p, 0, 1 << 20)
            return "gb18030"

        got = outcome(lambda: scan(p, None, chunk).encoding)
        assert got == outcome(separately)


@given(
    st.lists(st.tuples(_LINES, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=25),
    st.sampled_from([b"", b"\xef\xbb\xbf"]),
    st.integers(1, 48),
    st.booleans(),
)
def test_the_scans_rust_pass_finds_what_its_block_loop_does(lines, bom, chunk, prescanned):
    """With `read_all` the scan's facts come from one Rust pass (`_core.scan_text_file`), or
    from a prescan of the same file: the encoding, size, line count and 0x80 flag the Python
    loop over blocks finds, whatever the bytes, the mark and the chunking."""
    import dataclasses
    import tempfile

    from pi_match import _prescan
    from pi_match.io.encoding import scan

    data = bom + b"".join(a + b for a, b in lines)
    assume(b"\x00" not in data[:4096])
    with tempfile.TemporaryDirectory() as d:
        p = str(pathlib.Path(d) / "t.csv")
        pathlib.Path(p).write_bytes(data)

        def facts(read_all: bool):  # type: ignore[no-untyped-def]
            try:
                f = scan(p, None, chunk, read_all=read_all)
            except InputError as e:
                return str(e)
            return dataclasses.astuple(f)[:2] + dataclasses.astuple(f)[3:6]

        loop = facts(False)
        if prescanned:
            _prescan.start([p], chunk).join()
        rust = facts(True)
        # (a file found not UTF-8 may fail as GB18030 only in the reading, with read_all)
        assert rust == loop or isinstance(loop, str)


def test_a_prescan_is_taken_only_for_the_file_it_scanned(tmp_path: pathlib.Path) -> None:
    import os

    from pi_match import _prescan
    from pi_match.io.encoding import scan

    p = tmp_path / "t.csv"
    p.write_bytes(b"a,b\n1,2\n")
    _prescan.start([str(p)]).join()
    text = b"a,b\n1,2\n3,4\n5,6\n"
    p.write_bytes(text)  # changed since: scanned again, not taken
    assert scan(p, read_all=True).newlines == 4
    _prescan.start([str(p)]).join()
    f = open(p, "rb")
    with f:
        st = os.fstat(f.fileno())
        assert _prescan.take(str(p), st, _prescan.CHUNK) == (len(text), 4, False, None, None)
        # taken once; and not for another block size
        assert _prescan.take(str(p), st, _prescan.CHUNK) is None
        _prescan.start([str(p)]).join()
        assert _prescan.take(str(p), st, 1 << 10) is None
    # A pipe is never opened (a writer waiting on it stays blocked), nor anything not a file.
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    t = _prescan.start([str(fifo), str(tmp_path), str(tmp_path / "missing.csv")])
    t.join(timeout=10)
    assert not t.is_alive()
    assert _prescan.take(str(fifo), os.stat(fifo), _prescan.CHUNK) is None


def test_a_prescan_that_fails_leaves_no_one_waiting(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even a failure that is not an OSError (a panic in the core is a BaseException) ends
    # each file's prescan: its own scan then runs, with its own errors.
    import errno
    import os

    from pi_match import _prescan
    from pi_match.io.encoding import scan

    class Boom(BaseException):
        pass

    def fail(*_: object) -> None:
        raise Boom

    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for p in paths:
        p.write_bytes(b"a,b\n1,2\n")
    monkeypatch.setattr(_prescan, "scan_fd", fail)
    _prescan.start([str(p) for p in paths]).join(timeout=10)
    monkeypatch.undo()
    for p in paths:
        # (asked with a timeout first, so that a regression fails here instead of hanging)
        assert _prescan._scans[os.path.abspath(p)].done.wait(timeout=10)
        assert _prescan.take(str(p), os.stat(p), _prescan.CHUNK) is None
        assert scan(p, read_all=True).newlines == 2

    # A file that cannot be read says which, and what to do.
    def eio(*_: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_prescan, "scan_fd", eio)
    with pytest.raises(InputError, match=r"a\.csv: could not be read \(Input/output error\)"):
        scan(paths[0], read_all=True)


@given(
    st.lists(st.tuples(_LINES, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=25),
    st.integers(1, 48),
)
def test_reading_all_ends_as_checking_first_does(lines, chunk):
    """`open_source(read_all=True)` leaves the GB18030 check of a file found not UTF-8 to the
    reading: whatever the bytes and the chunking, reading every batch ends as it does when the
    scan checks first — the same error (its text, byte and line), or the same rows and the
    same SHA-256 (hashed by the reading, not the scan)."""
    import tempfile

    from pi_match.io.encoding import BOMS

    data = b"".join(a + b for a, b in lines)
    assume(not any(data.startswith(mark) for mark, _ in BOMS) and b"\x00" not in data[:4096])
    with tempfile.TemporaryDirectory() as d:
        p = str(pathlib.Path(d) / "t.csv")
        pathlib.Path(p).write_bytes(data)

        def outcome(read_all: bool):  # type: ignore[no-untyped-def]
            try:
                opts = ReadOptions(chunk_bytes=chunk, delimiter=",", header=False)
                src = open_source(p, opts, read_all=read_all)
                rows = [
                    (b.lines.tolist(), {k: v.to_pylist() for k, v in b.columns.items()})
                    for b in src.batches()
                ]
                rejects = [(r.line, r.reason) for r in src.rejects]
                return src.encoding, rows, rejects, src.facts["sha256"]
            except InputError as e:
                return str(e)

        assert outcome(True) == outcome(False)


@given(
    st.lists(st.tuples(_LINES, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=25),
    st.integers(1, 48),
    st.sampled_from(["csv", "jsonl"]),
)
def test_reading_ahead_reads_what_reading_in_turn_does(lines, chunk, fmt):  # type: ignore[no-untyped-def]
    """`read_ahead` reads a source on a thread of its own one batch ahead: whatever the bytes
    and the chunking, the same batches in the same order, the same rejects and counts, and an
    error (its text) after the same batches; its reader thread is gone when it ends."""
    import tempfile
    import threading

    from pi_match.io import read_ahead

    data = b"".join(a + b for a, b in lines)
    with tempfile.TemporaryDirectory() as d:
        p = str(pathlib.Path(d) / f"t.{fmt}")
        pathlib.Path(p).write_bytes(data)

        def outcome(ahead: bool):  # type: ignore[no-untyped-def]
            rows = []
            try:
                opts = ReadOptions(chunk_bytes=chunk, delimiter=",", header=False, format=fmt)
                src = open_source(p, opts, read_all=True)
                for b in read_ahead(src) if ahead else src.batches():
                    rows.append(
                        (b.lines.tolist(), {k: v.to_pylist() for k, v in b.columns.items()})
                    )
                assert not src.serial
                rejects = [(r.line, r.reason, r.raw) for r in src.rejects]
                return rows, rejects, src.rows, src.blank_lines, None
            except InputError as e:
                return rows, None, None, None, str(e)

        assert outcome(True) == outcome(False)
        assert not [t for t in threading.enumerate() if t.name.startswith("pi_match reader")]


class _Counted(Source):
    """A source of `n` one-row batches that records how far its reading ran ahead of the
    batches its caller has taken (`taken`, kept by the caller), and raises at batch `fail`."""

    def __init__(self, n: int, fail: int | None = None):
        super().__init__("counted", ReadOptions())
        self.n, self.fail, self.taken, self.ahead, self.closed = n, fail, 0, [], False

    def batches(self):  # type: ignore[no-untyped-def]
        try:
            for i in range(self.n):
                self.ahead.append(i - self.taken)  # batches begun beyond the caller's
                if i == self.fail:
                    raise InputError(f"bad batch {i}")
                yield Batch({"a": pa.array([i])}, np.array([i + 1], np.uint64))
        finally:
            self.closed = True


def test_reading_ahead_holds_at_most_two_batches_and_stops_when_the_caller_does() -> None:
    """The reader begins a batch only once the caller has taken the one before (at most two
    alive: the caller's and the one being read); a caller that breaks off or fails stops the
    reader, which closes its source, before `read_ahead` returns; a reader's error is raised
    after the batches before it."""
    import threading

    from pi_match.io import read_ahead

    src = _Counted(50)
    got = []
    for b in read_ahead(src):
        src.taken += 1
        got.append(b.column("a")[0].as_py())
        assert src.serial
    assert got == list(range(50)) and max(src.ahead) <= 1 and src.closed and not src.serial

    src = _Counted(50)
    gen = read_ahead(src)
    for b in gen:
        src.taken += 1
        if b.column("a")[0].as_py() == 3:
            break
    gen.close()
    assert src.closed and len(src.ahead) <= 5

    src, got = _Counted(50, fail=7), []
    with pytest.raises(InputError, match="bad batch 7"):
        for b in read_ahead(src):
            src.taken += 1
            got.append(b.column("a")[0].as_py())
    assert got == list(range(7)) and src.closed

    def caller_fails() -> None:
        for b in read_ahead(src):
            src.taken += 1
            if b.column("a")[0].as_py() == 2:
                raise ValueError("the caller's error")

    src = _Counted(50)
    with pytest.raises(ValueError, match="the caller's error"):
        caller_fails()
    assert src.closed and len(src.ahead) <= 4
    assert not [t for t in threading.enumerate() if t.name.startswith("pi_match reader")]


def _utf8_bad(data: bytes, i: int) -> bool:
    """Whether the first byte that does not decode as UTF-8 is at `i`."""
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError as e:
        return e.start == i


@pytest.mark.parametrize("enc", ["utf-8", "gb18030"])
@pytest.mark.parametrize("chunk", [64, 1000, 16 << 20])
def test_a_quoted_cell_with_line_breaks_is_one_record(
    tmp_path: pathlib.Path, enc: str, chunk: int
) -> None:
    """Excel and RFC 4180 quote a cell holding line breaks (an address typed over two lines):
    the record is read whole, numbered by its first line, whatever the block size; a stray
    quote that never closes into a record of the right shape is one unreadable line, and the
    records after it are read as before."""
    rows = ["姓名,身份证号,地址"]
    want_ids, want_lines, line = [], [], 2
    for i in range(300):
        idn = ID1 if i % 2 else ID2
        if i % 5 == 0:
            rows.append(f'张{i},{idn},"北京市\n朝阳区\r\n{i}号"')
            want_ids.append(idn)
            want_lines.append(line)
            line += 3
        elif i == 101:
            rows.append(f'坏{i},{idn},"未闭合')  # never closed: judged alone
            bad_line = line
            line += 1
        else:
            rows.append(f"李{i},{idn},上海")
            want_ids.append(idn)
            want_lines.append(line)
            line += 1
    p = tmp_path / "a.csv"
    p.write_bytes(("\n".join(rows) + "\n").encode(enc))
    # (the separator given: blocks of 64 bytes are too few lines to sniff it from)
    src = open_source(p, ReadOptions(chunk_bytes=chunk, delimiter=","))
    assert src.encoding == enc
    ids, lines = rows_of(src, "身份证号")
    assert (ids, lines) == (want_ids, want_lines)
    assert [(r.line, r.reason) for r in src.rejects] == [(bad_line, "bad_quote")]
    addr = [v for b in src.batches() for v in b.column("地址").to_pylist()]
    assert addr[0].decode() == "北京市\n朝阳区\r\n0号"
    assert src.rows + src.unreadable == 300


def rows_of(src, col):  # type: ignore[no-untyped-def]
    out, lines = [], []
    for b in src.batches():
        out += [v.decode() for v in b.column(col).to_pylist()]
        lines += b.lines.tolist()
    return out, lines


# JSON values of every kind a leaked dump's lines hold, and lines that are not flat objects.
_JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**25), 10**25),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
)  # fmt: skip
_JSON_VALUE = st.one_of(_JSON_SCALAR, st.lists(_JSON_SCALAR, max_size=2),
                        st.dictionaries(st.text(max_size=2), _JSON_SCALAR, max_size=2))  # fmt: skip
_KEYS = st.sampled_from(["id", "名", "n", 'q"', "x"])
_JSON_LINE = st.one_of(
    st.dictionaries(_KEYS, _JSON_SCALAR, max_size=4).map(
        lambda d: json.dumps(d, ensure_ascii=bool(len(d) % 2))),
    st.dictionaries(_KEYS, _JSON_VALUE, max_size=3).map(json.dumps),
    st.sampled_from(["", "  ", "not json", "[1]", '{"id": "a", "id": "b"}', '{"id": "\\udc80"}',
                     '{"id": 1e999}', '{"n": NaN}', '{"id": "x"} junk', '{"id": 01}', "\u3000",
                     '{"id": "\\ud83d\\ude00", "n": -0}', '{"id": 1.0, "n": 2.5e-9}', "{}"]),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_JSON_LINE, min_size=1, max_size=30))
@example(  # more lines than one stretch of the Rust reader (8,192), odd ones among them
    [f'{{"id": "{i}", "n": {i / 3}}}' if i % 5 else ("[1]", "", '{"id": {}}', "x")[i % 4]
     for i in range(20_000)]
)  # fmt: skip
def test_jsonl_reads_every_line_as_json_loads_reads_it(lines: list[str]) -> None:
    # The Rust reader of flat lines and the loop for the rest give what the loop alone gave:
    # `to_text(json.loads(line).get(column))` for every object line, in order; blank lines
    # skipped; every other line a bad_json reject with its number.
    import tempfile

    from pi_match.io.jsonl import to_text

    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d) / "dump.jsonl"
        p.write_text("\n".join(lines) + "\n", "utf-8")
        src = open_source(p)
        got = {c: [] for c in src.columns}  # type: dict[str, list[object]]
        got_lines: list[int] = []
        for b in src.batches():
            got_lines += [int(x) for x in b.lines]
            for c in src.columns:
                got[c] += b.column(c).to_pylist()
        rejects = [(r.line, r.reason) for r in src.rejects]
    want: dict[str, list[object]] = {c: [] for c in src.columns}
    want_lines, want_rejects = [], []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError
        except (ValueError, RecursionError):
            want_rejects.append((i, "bad_json"))
            continue
        want_lines.append(i)
        for c in src.columns:
            want[c].append(to_text(obj.get(c)))
    assert (got_lines, rejects) == (want_lines, want_rejects)
    assert got == want
