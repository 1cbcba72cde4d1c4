"""Format v1: golden files load forever, bad bytes raise FormatError, and an independent
reader written from docs/FORMAT.md alone (hmac, hashlib, struct, xxhash) agrees with pi_match."""

from __future__ import annotations

import hashlib
import hmac
import struct

import numpy as np
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

import pi_match
from conftest import DATA, TEST_KEY_BYTES

GOLDEN = DATA / "format_v1"
GOLDEN_IDS = [
    "11010519491231002X",
    "440305199003071236",
    "810000198001010014",
    "830000197006060036",
]
SALT = [
    0x47B6137B,
    0x44974D91,
    0x8824AD5B,
    0xA2B7289D,
    0x705495C7,
    0x2DF1424B,
    0x9EFC4947,
    0x5C6BFB31,
]


# ---- the independent reader ----------------------------------------------------------------


def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(b"pi_match/v1", ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def spec_tag(key: bytes, kind: str, canonical: str, version: int = 1) -> bytes:
    sub = hkdf(key, f"pi_match/v1/{kind}/{version}".encode(), 32)
    return hmac.new(sub, canonical.encode(), hashlib.sha256).digest()


def spec_contains(words: list[int], log2_blocks: int, bpk: int, tag: bytes) -> bool:
    for j in range(bpk):
        h = int.from_bytes(tag[8 + 8 * j : 16 + 8 * j], "little")
        block = h >> (64 - log2_blocks) if log2_blocks else 0
        x = h & 0xFFFFFFFF
        for i in range(8):
            bit = ((x * SALT[i]) & 0xFFFFFFFF) >> 27
            if not words[block * 8 + i] >> bit & 1:
                return False
    return True


def spec_parse(data: bytes) -> dict:  # type: ignore[type-arg]
    magic, version, hlen, count, flen, key_id, created = struct.unpack_from("<8sHHIQ8sQ", data, 0)
    assert magic == b"\x89PIM\r\n\x1a\n" and version == 1 and hlen == 64 and flen == len(data)
    table = data[64 : 64 + 64 * count]
    assert struct.unpack_from("<Q", data, 56)[0] == xxhash.xxh3_64_intdigest(data[:56] + table)
    sections = []
    for i in range(count):
        stype, kind, cver, l2, bpk, _r, items, off, ln, csum = struct.unpack_from(
            "<BBHBBHQQQQ", table, 64 * i
        )
        payload = data[off : off + ln]
        assert off % 64 == 0 and xxhash.xxh3_64_intdigest(payload) == csum
        sections.append(
            dict(stype=stype, kind=kind, cver=cver, l2=l2, bpk=bpk, items=items, payload=payload)
        )
    return dict(key_id=key_id.hex(), created=created, sections=sections)


def test_independent_reader_agrees_on_golden_bloom() -> None:
    data = (GOLDEN / "bloom_cn_ric.pmi").read_bytes()
    f = spec_parse(data)
    assert f["key_id"] == (GOLDEN / "test_key_id.txt").read_text().strip()
    assert f["key_id"] == hkdf(TEST_KEY_BYTES, b"pi_match/v1/key-id", 8).hex()
    [s] = f["sections"]
    assert (s["stype"], s["kind"], s["cver"], s["items"]) == (1, 1, 1, 4)
    words = list(struct.unpack(f"<{len(s['payload']) // 4}I", s["payload"]))
    for v in GOLDEN_IDS:
        assert spec_contains(words, s["l2"], s["bpk"], spec_tag(TEST_KEY_BYTES, "cn_ric", v))
    absent = [
        spec_contains(words, s["l2"], s["bpk"], spec_tag(TEST_KEY_BYTES, "cn_ric", f"x{i}"))
        for i in range(200)
    ]
    assert sum(absent) < 5


def test_independent_reader_agrees_on_golden_tagsets() -> None:
    f = spec_parse((GOLDEN / "multi.pmi").read_bytes())
    assert [(s["stype"], s["kind"]) for s in f["sections"]] == [(1, 2), (2, 2), (2, 3)]
    emails = f["sections"][2]
    tags = list(struct.unpack(f"<{emails['items']}Q", emails["payload"]))
    want = sorted(
        int.from_bytes(spec_tag(TEST_KEY_BYTES, "email", e)[:8], "little")
        for e in ["zhang.san@example.com", "12345@qq.com", "user@163.com"]
    )
    assert tags == want


def test_new_artefacts_follow_the_spec(test_key: pi_match.Key) -> None:
    idx = pi_match.BloomIndex(test_key, "cn_mobile", capacity=500, fpr=1e-4)
    values = np.char.mod("139%08d", np.arange(500)).tolist()
    idx.add(values)
    f = spec_parse(idx.to_bytes())
    [s] = f["sections"]
    words = list(struct.unpack(f"<{len(s['payload']) // 4}I", s["payload"]))
    assert s["l2"] == int(np.log2(idx.num_blocks)) and s["bpk"] == idx.blocks_per_key
    for v in values[:50]:
        # The subkey follows the canonicaliser version the header names (2, the newest).
        assert s["cver"] == 2
        assert spec_contains(
            words, s["l2"], s["bpk"], spec_tag(bytes(range(32)), "cn_mobile", "+86" + v, s["cver"])
        )


def test_golden_files_load_and_round_trip(test_key: pi_match.Key) -> None:
    for name in ("bloom_cn_ric.pmi", "tagset_email.pmi", "multi.pmi"):
        data = (GOLDEN / name).read_bytes()
        art = pi_match.Artefact.from_bytes(data, key=test_key)
        assert art.to_bytes()[64:] == data[64:]  # all but the creation time and its checksum
        assert art.key_id == test_key.id
    bloom = pi_match.load(GOLDEN / "bloom_cn_ric.pmi", key=test_key)
    assert isinstance(bloom, pi_match.BloomIndex)
    assert bloom.contains(GOLDEN_IDS).all()
    assert bloom.to_bytes() == (GOLDEN / "bloom_cn_ric.pmi").read_bytes()
    multi = pi_match.load(GOLDEN / "multi.pmi", key=test_key)
    assert isinstance(multi, pi_match.Artefact)
    assert "+86 138 0013 8000" in multi.get("cn_mobile", exact=True)
    assert "12345@QQ.com" in multi.get("email")
    assert multi.kinds == ["cn_mobile", "email"]


@pytest.mark.parametrize("name", ["multi.pmi", "tagset_ef_email.pmi"])
def test_every_bit_flip_and_truncation_is_caught(name: str) -> None:
    data = (GOLDEN / name).read_bytes()
    for byte in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[byte] ^= 1 << bit
            with pytest.raises(pi_match.FormatError):
                pi_match.Artefact.from_bytes(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(pi_match.FormatError):
            pi_match.Artefact.from_bytes(data[:n])


def test_messages_name_the_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = (GOLDEN / "bloom_cn_ric.pmi").read_bytes()
    with pytest.raises(pi_match.FormatError, match="not a pi_match artefact"):
        pi_match.BloomIndex.from_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(pi_match.FormatError, match="truncated"):
        pi_match.BloomIndex.from_bytes(data[:-64])
    bad = bytearray(data)
    bad[8] = 9
    with pytest.raises(pi_match.FormatError, match="version 9"):
        pi_match.BloomIndex.from_bytes(bytes(bad))
    bad = bytearray(data)
    bad[-70] ^= 1
    with pytest.raises(pi_match.FormatError, match="checksum"):
        pi_match.BloomIndex.from_bytes(bytes(bad))
    p = tmp_path / "x.pmi"
    p.write_bytes(data[:100])
    with pytest.raises(pi_match.FormatError, match="x.pmi"):
        pi_match.load(p)
    with pytest.raises(pi_match.FormatError, match="TagSet"):
        pi_match.BloomIndex.from_bytes((GOLDEN / "tagset_email.pmi").read_bytes())
    with pytest.raises(pi_match.FormatError, match="3 sections"):
        pi_match.TagSet.from_bytes((GOLDEN / "multi.pmi").read_bytes())


@given(st.binary(max_size=512))
def test_random_bytes_raise_format_error(data: bytes) -> None:
    with pytest.raises(pi_match.FormatError):
        pi_match.Artefact.from_bytes(data)


@given(st.data())
def test_mutated_golden_bytes_never_crash(data: st.DataObject) -> None:
    raw = bytearray((GOLDEN / "multi.pmi").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        art = pi_match.Artefact.from_bytes(bytes(raw))
    except pi_match.FormatError:
        return
    assert art.to_bytes()[64:] == bytes(raw)[64:]  # only an unchanged file may load


def test_worked_examples_of_format_md(test_key: pi_match.Key) -> None:
    doc = (DATA.parent.parent / "docs" / "FORMAT.md").read_text("utf-8")
    tag = spec_tag(TEST_KEY_BYTES, "cn_ric", "11010519491231002X")
    for number in (
        "e5ffabc4baaedd63",
        tag.hex(),
        "0x5551f32e58bc9ebc",
        spec_tag(TEST_KEY_BYTES, "cn_mobile", "+8613800138000").hex(),
    ):
        assert number in doc
    # pi_match's own tag set holds the documented 64-bit tags, under each version.
    ts = pi_match.TagSet(test_key, "cn_ric", canon_version=1)
    ts.add(["11010519491231002X"])
    assert ts.to_bytes()[128:136] == (0x5551F32E58BC9EBC).to_bytes(8, "little")
    v2 = spec_tag(TEST_KEY_BYTES, "cn_ric", "11010519491231002X", 2)
    assert f"0x{int.from_bytes(v2[:8], 'little'):016x}" in doc
    ts2 = pi_match.TagSet(test_key, "cn_ric")
    ts2.add(["11010519491231002X"])
    assert ts2.to_bytes()[128:136] == v2[:8]
    # The golden filter has the documented bits set in the documented blocks.
    [s] = spec_parse((GOLDEN / "bloom_cn_ric.pmi").read_bytes())["sections"]
    words = struct.unpack("<128I", s["payload"])
    for block, bits in ((14, [6, 8, 1, 7, 4, 7, 11, 12]), (0, [17, 30, 26, 24, 2, 8, 3, 7])):
        assert all(words[block * 8 + i] >> b & 1 for i, b in enumerate(bits))


def test_unverified_open_skips_only_payload_checksums(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = bytearray((GOLDEN / "bloom_cn_ric.pmi").read_bytes())
    path = tmp_path / "x.pmi"
    data[-70] ^= 1  # a payload bit: only the payload checksum can see it
    path.write_bytes(bytes(data))
    with pytest.raises(pi_match.FormatError, match="checksum"):
        pi_match.load(path)
    assert isinstance(pi_match.load(path, verify=False), pi_match.BloomIndex)
    data[-70] ^= 1
    data[20] ^= 1  # the header: always checked
    path.write_bytes(bytes(data))
    with pytest.raises(pi_match.FormatError):
        pi_match.load(path, verify=False)


def test_authenticated_artefacts(test_key: pi_match.Key, other_key: pi_match.Key, tmp_path) -> None:  # type: ignore[no-untyped-def]
    idx = pi_match.BloomIndex(test_key, "cn_ric", capacity=100)
    idx.add(GOLDEN_IDS)
    art = pi_match.Artefact([idx])
    signed = art.to_bytes(authenticate_with=test_key)
    assert pi_match.verify(signed, test_key) == "valid"
    assert pi_match.verify(art.to_bytes(), test_key) == "not_authenticated"
    loaded = pi_match.Artefact.from_bytes(signed)
    assert loaded.authenticated and not pi_match.Artefact.from_bytes(art.to_bytes()).authenticated
    assert loaded.sections[0] == idx
    with pytest.raises(pi_match.KeyMismatchError):
        pi_match.verify(signed, other_key)
    with pytest.raises(pi_match.KeyMismatchError):
        art.to_bytes(authenticate_with=other_key)
    # Every single-bit change is caught without the key, as for plain files.
    for byte in range(0, len(signed), 7):
        bad = bytearray(signed)
        bad[byte] ^= 4
        with pytest.raises(pi_match.FormatError):
            pi_match.Artefact.from_bytes(bytes(bad))
    # Someone without the key alters a payload and repairs the checksums: only the MAC sees it.
    forged = bytearray(signed)
    off = 128
    forged[off] ^= 1
    forged[64 + 32 : 64 + 40] = struct.pack(
        "<Q", xxhash.xxh3_64_intdigest(bytes(forged[128 : 128 + idx.size_bytes]))
    )
    forged[56:64] = struct.pack(
        "<Q", xxhash.xxh3_64_intdigest(bytes(forged[:56]) + bytes(forged[64:128]))
    )
    assert pi_match.Artefact.from_bytes(bytes(forged)).authenticated
    assert pi_match.verify(bytes(forged), test_key) == "invalid"
    path = tmp_path / "signed.pmi"
    art.save(path, authenticate_with=test_key)
    assert pi_match.verify(path, test_key) == "valid"


# ---- compressed tag sets (section type 6), read and written from FORMAT.md alone ----------


def spec_ef_decode(payload: bytes, n: int, lb: int) -> list[int]:
    b = 1 << (64 - lb)
    lw, hw = -(-n * lb // 64), -(-(n + b) // 64)
    assert len(payload) == 8 * (lw + hw)
    low = int.from_bytes(payload[: 8 * lw], "little")
    high = int.from_bytes(payload[8 * lw :], "little")
    assert low >> (n * lb) == 0 and high >> (n + b - 1) == 0  # zero padding, last bucket closed
    ones = [q for q in range(n + b) if high >> q & 1]
    assert len(ones) == n
    tags = [((q - i) << lb) | (low >> (i * lb) & ((1 << lb) - 1)) for i, q in enumerate(ones)]
    assert all(x < y for x, y in zip(tags, tags[1:], strict=False))
    return tags


def spec_ef_encode(tags: list[int], lb: int) -> bytes:
    n, b = len(tags), 1 << (64 - lb)
    low = sum((t & ((1 << lb) - 1)) << (i * lb) for i, t in enumerate(tags))
    high = sum(1 << ((t >> lb) + i) for i, t in enumerate(tags))
    return low.to_bytes(8 * -(-n * lb // 64), "little") + high.to_bytes(
        8 * -(-(n + b) // 64), "little"
    )


def spec_ef_choice(n: int) -> tuple[int, int] | None:
    """(section type, lb) a writer uses for n tags."""
    size = {lb: 8 * (-(-n * lb // 64) + -(-(n + (1 << (64 - lb))) // 64)) for lb in range(1, 64)}
    best = min(size.values())
    lb = max(k for k, v in size.items() if v == best)
    return (6, lb) if n and best < 8 * n else (2, 0)


EF_EMAILS = [f"user{i}@example.com" for i in range(1000)]


def test_independent_reader_decodes_the_golden_compressed_tag_set(test_key: pi_match.Key) -> None:
    data = (GOLDEN / "tagset_ef_email.pmi").read_bytes()
    [s] = spec_parse(data)["sections"]
    assert (s["stype"], s["kind"], s["cver"], s["items"], s["l2"]) == (6, 3, 2, 1000, 54)
    want = sorted(
        int.from_bytes(spec_tag(TEST_KEY_BYTES, "email", e, 2)[:8], "little") for e in EF_EMAILS
    )
    assert spec_ef_decode(s["payload"], 1000, 54) == want
    assert spec_ef_encode(want, 54) == s["payload"]
    ts = pi_match.load(GOLDEN / "tagset_ef_email.pmi", key=test_key)
    assert isinstance(ts, pi_match.TagSet) and len(ts) == 1000
    assert ts.contains(EF_EMAILS).all() and not ts.contains(["user1000@example.com"]).any()
    assert ts.to_bytes()[64:] == data[64:]  # written back as it was read
    plain = pi_match.Artefact([ts]).to_bytes(plain_tag_sets=True)
    [p] = spec_parse(plain)["sections"]
    assert (p["stype"], p["l2"], len(p["payload"])) == (2, 0, 8000)
    assert list(struct.unpack("<1000Q", p["payload"])) == want
    assert pi_match.TagSet.from_bytes(plain) == ts


@pytest.mark.parametrize("n", [0, 1, 40, 49, 50, 60, 64, 65, 300, 3000])
def test_writers_choose_the_documented_form(test_key: pi_match.Key, n: int) -> None:
    ts = pi_match.TagSet(test_key, "email")
    ts.add([f"p{i}@x.cn" for i in range(n)])
    [s] = spec_parse(ts.to_bytes())["sections"]
    assert (s["stype"], s["l2"]) == spec_ef_choice(n)
    tags = sorted(
        int.from_bytes(spec_tag(TEST_KEY_BYTES, "email", f"p{i}@x.cn", 2)[:8], "little")
        for i in range(n)
    )
    if s["stype"] == 6:
        assert s["payload"] == spec_ef_encode(tags, s["l2"]) and len(s["payload"]) < 8 * n
    else:
        assert s["payload"] == b"".join(t.to_bytes(8, "little") for t in tags)


def _with_payload(data: bytes, payload: bytes, items: int, lb: int) -> bytes:
    """`data` (one section) with another payload, and checksums that fit it: only the
    structural checks of type 6 can refuse it."""
    head = bytearray(data[:128])
    struct.pack_into("<Q", head, 72, items)
    head[68] = lb
    struct.pack_into("<Q", head, 88, len(payload))
    struct.pack_into("<Q", head, 96, xxhash.xxh3_64_intdigest(payload))
    body = payload + bytes(-len(payload) % 64)
    struct.pack_into("<Q", head, 16, 128 + len(body))
    struct.pack_into("<Q", head, 56, xxhash.xxh3_64_intdigest(bytes(head[:56]) + bytes(head[64:])))
    return bytes(head) + body


def test_structurally_bad_compressed_sets_are_refused_by_name() -> None:
    data = (GOLDEN / "tagset_ef_email.pmi").read_bytes()
    [s] = spec_parse(data)["sections"]
    tags = spec_ef_decode(s["payload"], 1000, 54)
    # A hand-made valid one loads: the reader accepts any lb, not only the writer's.
    ok = _with_payload(data, spec_ef_encode(tags, 50), 1000, 50)
    assert len(pi_match.TagSet.from_bytes(ok)) == 1000
    bad = _with_payload(data, spec_ef_encode(tags[:5] + tags[4:999], 54), 1000, 54)
    with pytest.raises(pi_match.FormatError, match="not strictly ascending at item 6"):
        pi_match.TagSet.from_bytes(bad)
    with pytest.raises(pi_match.FormatError, match="impossible compressed tag set"):
        pi_match.TagSet.from_bytes(_with_payload(data, b"", 0, 54))
    with pytest.raises(pi_match.FormatError, match="impossible compressed tag set"):
        pi_match.TagSet.from_bytes(_with_payload(data, s["payload"], 1000, 64))
    with pytest.raises(pi_match.FormatError, match="cannot have a"):
        pi_match.TagSet.from_bytes(_with_payload(data, s["payload"] + bytes(8), 1000, 54))
    # one more one bit in the high part (1000 + 2^10 bits after 1000·54 low bits)
    low_bytes = 8 * -(-1000 * 54 // 64)
    high = int.from_bytes(s["payload"][low_bytes:], "little")
    zero = next(q for q in range(2023) if not high >> q & 1)
    extra = s["payload"][:low_bytes] + (high | 1 << zero).to_bytes(
        len(s["payload"]) - low_bytes, "little"
    )
    with pytest.raises(pi_match.FormatError, match="says 1000 tags but codes 1001"):
        pi_match.TagSet.from_bytes(_with_payload(data, extra, 1000, 54))
    # a one in the low part's padding
    p = bytearray(s["payload"])
    p[low_bytes - 1] |= 0x80
    with pytest.raises(pi_match.FormatError, match="padding after the low bits"):
        pi_match.TagSet.from_bytes(_with_payload(data, bytes(p), 1000, 54))
    # a one bit after the last bucket's closing zero
    p = bytearray(s["payload"])
    p[-1] |= 0x80
    with pytest.raises(pi_match.FormatError, match="after the last bucket"):
        pi_match.TagSet.from_bytes(_with_payload(data, bytes(p), 1000, 54))


@given(
    st.sets(st.integers(0, 5000), max_size=400),
    st.sets(st.integers(0, 5000), max_size=400),
)
def test_compressed_sets_keep_every_contract(a: set[int], b: set[int]) -> None:
    key = pi_match.Key.from_bytes(TEST_KEY_BYTES)
    sa, sb = pi_match.TagSet(key, "email"), pi_match.TagSet(key, "email")
    sa.add([f"h{i}@x.cn" for i in sorted(a)])
    sb.add([f"h{i}@x.cn" for i in sorted(b)])
    la = pi_match.TagSet.from_bytes(sa.to_bytes(), key=key)
    lb = pi_match.TagSet.from_bytes(sb.to_bytes(), key=key)
    assert la == sa and len(la) == len(a)
    probe = [f"h{i}@x.cn" for i in range(0, 5001, 7)]
    assert la.contains(probe).tolist() == [i in a for i in range(0, 5001, 7)]
    assert len(la & lb) == len(a & b) and len(la | lb) == len(a | b)
    assert pi_match.TagSet.from_bytes((la | lb).to_bytes()) == (sa | sb)
