"""The PRF as a concept, and HMAC-SM3 its second member (issue #11 §3): checked against an
independent SM3 (the `gmssl` package, pure Python), end to end from the master key to the
tag a tag set holds, and refused when mixed with HMAC-SHA256."""

from __future__ import annotations

import json
import pathlib

import pytest

import pi_match
from conftest import TEST_KEY_BYTES
from pi_match.cli import main

gmssl = pytest.importorskip("gmssl")
from gmssl import func, sm3  # noqa: E402


def sm3_digest(data: bytes) -> bytes:
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def hmac_sm3(key: bytes, msg: bytes) -> bytes:
    """RFC 2104 / GB/T 15852.2 over gmssl's SM3 (block size 64)."""
    if len(key) > 64:
        key = sm3_digest(key)
    key = key.ljust(64, b"\0")
    inner = sm3_digest(bytes(k ^ 0x36 for k in key) + msg)
    return sm3_digest(bytes(k ^ 0x5C for k in key) + inner)


def hkdf_sm3(salt: bytes, ikm: bytes, info: bytes, n: int) -> bytes:
    prk = hmac_sm3(salt, ikm)
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac_sm3(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:n]


def spec_tag_sm3(kind: str, canonical: str, version: int) -> bytes:
    sub = hkdf_sm3(b"pi_match/v1", TEST_KEY_BYTES, f"pi_match/v1/{kind}/{version}".encode(), 32)
    return hmac_sm3(sub, canonical.encode())


def test_independent_sm3_agrees_with_the_standard() -> None:
    assert sm3_digest(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
    key = bytes(range(1, 33))
    msg = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2
    assert hmac_sm3(key, msg).hex() == (
        "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a"
    )  # GM/T 0042-2015 Appendix D.3


@pytest.mark.parametrize("version", [1, 2])
def test_sm3_tags_match_an_independent_implementation(test_key: pi_match.Key, version: int) -> None:
    values = ["11010519491231002X", "440305199003071236", "810000198001010014"]
    ts = pi_match.TagSet(test_key, "cn_ric", prf="hmac-sm3", canon_version=version)
    ts.add(values)
    assert ts.prf == "hmac-sm3" and ts.key_id == test_key.id  # one key, one id
    data = ts.to_bytes()
    held = sorted(int.from_bytes(data[128 + 8 * i : 136 + 8 * i], "little") for i in range(3))
    want = sorted(int.from_bytes(spec_tag_sm3("cn_ric", v, version)[:8], "little") for v in values)
    assert held == want


def test_sm3_indices_work_and_never_mix_with_sha256(
    test_key: pi_match.Key, tmp_path: pathlib.Path
) -> None:
    ids = ["11010519491231002X", "440305199003071236"]
    sm = pi_match.BloomIndex(test_key, "cn_ric", capacity=100, prf="hmac-sm3")
    sh = pi_match.BloomIndex(test_key, "cn_ric", capacity=100)
    sm.add(ids)
    sh.add(ids)
    assert ids[0] in sm and sh.prf == "hmac-sha256"
    assert sm.to_bytes()[128:] != sh.to_bytes()[128:]
    with pytest.raises(pi_match.IncompatibleError, match="hmac-sm3 and the other with hmac-sha"):
        _ = sm | sh
    with pytest.raises(pi_match.IncompatibleError, match="PRF"):
        pi_match.estimate_overlap(sh, sm)
    p = tmp_path / "sm.pmi"
    sm.save(p)
    back = pi_match.load(p, key=test_key)
    assert isinstance(back, pi_match.BloomIndex) and back.prf == "hmac-sm3" and ids[1] in back
    with pytest.raises(pi_match.PiMatchError, match="unknown PRF"):
        pi_match.TagSet(test_key, "cn_ric", prf="md5")


def test_cli_builds_inspects_and_refuses_mixing(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    key = tmp_path / "k.key"
    pi_match.Key.from_bytes(TEST_KEY_BYTES).save(key)
    src = tmp_path / "a.csv"
    src.write_text("身份证号\n11010519491231002X\n440305199003071236\n", "utf-8")
    a, b = tmp_path / "a.pmi", tmp_path / "b.pmi"
    assert main(["build", str(src), "--key", str(key), "-o", str(a), "--prf", "hmac-sm3",
                 "--exact", "-q"]) == 0  # fmt: skip
    assert main(["build", str(src), "--key", str(key), "-o", str(b), "--exact", "-q"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(a), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert {s["prf"] for s in facts["sections"]} == {"hmac-sm3"}
    assert main(["compare", str(a), str(b)]) == 1
    assert "hmac-sm3" in capsys.readouterr().err
    c = tmp_path / "c.pmi"
    assert main(["build", str(src), "--key", str(key), "-o", str(c), "--prf", "hmac-sm3",
                 "--exact", "-q"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(a), str(c), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["exact"] == 2


def test_format_md_has_the_sm3_worked_example() -> None:
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "FORMAT.md").read_text("utf-8")
    tag = spec_tag_sm3("cn_ric", "11010519491231002X", 2)
    assert tag.hex() in doc
    assert f"0x{int.from_bytes(tag[:8], 'little'):016x}" in doc
