"""The keyless mode (issue #12): counts equal set arithmetic on canonical values for 2–4
parties whatever the order of blinding, an independent ristretto255 reproduces the blinding,
every damaged, replayed or foreign message is refused by name, and the secret never leaks."""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import stat
import warnings

import numpy as np
import pytest
import ristretto_ref as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pi_match
from pi_match import psi
from pi_match.cli import main

DATA = pathlib.Path(__file__).parent / "data"
POOL = [f"1380000{i:04d}" for i in range(60)]


def scalar_of(secret: psi.PsiSecret, tmp: pathlib.Path) -> int:
    """The scalar, read back from the secret file (only a test does this)."""
    path = tmp / f"s{random.random()}.secret"
    secret.save(path)
    text = path.read_text()
    return int.from_bytes(bytes.fromhex(re.search(r"scalar: ([0-9a-f]{64})", text)[1]), "little")


def payload_points(msg: psi.PsiMessage) -> list[bytes]:
    """The points of a one-set, not yet final message, read from its bytes per FORMAT.md."""
    b = msg.to_bytes()
    entry = b[128:192]  # the second table entry: the set after the info section
    assert entry[0] == 4
    off, n = int.from_bytes(entry[16:24], "little"), int.from_bytes(entry[24:32], "little")
    return [b[off + i : off + i + 32] for i in range(0, n, 32)]


def ring(secrets: list[psi.PsiSecret], sets: list[list[str]], rng: random.Random,
         kind: str = "cn_mobile") -> list[psi.PsiMessage]:  # fmt: skip
    """Every party's set blinded by every other party, in a random order each."""
    out = []
    for i, (s, values) in enumerate(zip(secrets, sets, strict=True)):
        m, _ = psi.init(s, {kind: values})
        others = [t for j, t in enumerate(secrets) if j != i]
        rng.shuffle(others)
        for t in others:
            m = psi.blind(psi.PsiMessage.from_bytes(m.to_bytes()), t)  # through the wire format
        out.append(m)
    rng.shuffle(out)  # in any order of arrival
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 4).flatmap(
        lambda n: st.lists(st.lists(st.sampled_from(POOL), max_size=25), min_size=n, max_size=n)
    ),
    st.randoms(use_true_random=False),
)
def test_counts_are_set_arithmetic_on_canonical_values(
    sets: list[list[str]], rng: random.Random
) -> None:  # noqa: E501
    names = [f"P{i}" for i in range(len(sets))]
    secrets = [psi.PsiSecret.generate("op-prop", n, names) for n in names]
    # the same numbers written differently are one value
    written = [[f"+86 {v[:3]} {v[3:7]} {v[7:]}" if j % 2 else v for j, v in enumerate(s)]
               for s in sets]  # fmt: skip
    msgs = ring(secrets, written, rng)
    c = psi.count(msgs)
    truth = {f"P{i}": set(s) for i, s in enumerate(sets)}
    for p in c.pairs:
        assert p["exact"] == len(truth[p["a"]] & truth[p["b"]]) and p["method"] == "psi"
    (ov,) = c.overlaps
    every = set().union(*truth.values())
    assert ov.union.value == len(every)
    assert ov.in_two_or_more.value == sum(sum(v in t for t in truth.values()) >= 2 for v in every)
    for name, u in zip(c.names, ov.unique, strict=True):
        others = set().union(*(t for n, t in truth.items() if n != name))
        assert u.value == len(truth[name] - others) and u.exact


def test_an_independent_ristretto255_reproduces_blinding_and_counts(tmp_path: pathlib.Path) -> None:
    v = json.loads((DATA / "ristretto255_vectors.json").read_text())
    for i, h in enumerate(v["multiples"]):  # the reference itself against RFC 9496
        assert ref.encode(ref.mul(i, ref.BASE)).hex() == h
    for i, o in v["uniform"]:
        assert ref.encode(ref.from_uniform_bytes(bytes.fromhex(i))).hex() == o
    parties = ["甲", "乙", "丙"]
    secrets = [psi.PsiSecret.generate("op-ref", p, parties) for p in parties]
    ks = [scalar_of(s, tmp_path) for s in secrets]
    sets = [["13800000001", "13800000002", "13800000003"], ["13800000003", "13800000004"],
            ["13800000003", "13800000004", "13800000005", "13800000005"]]  # fmt: skip
    first, _ = psi.init(secrets[0], {"cn_mobile": sets[0]})
    want = sorted(ref.encode(ref.mul(ks[0], ref.hash_to_group("op-ref", "cn_mobile", 2, "+86" + x)))
                  for x in sets[0])  # fmt: skip
    assert payload_points(first) == want  # sorted: the first pass shuffles too
    msgs = ring(secrets, sets, random.Random(3))
    k_all = ks[0] * ks[1] * ks[2]
    for m in msgs:
        i = parties.index(m.origin)
        ref_tags = sorted({int.from_bytes(ref.encode(ref.mul(k_all, ref.hash_to_group(
            "op-ref", "cn_mobile", 2, "+86" + x)))[:8], "little") for x in sets[i]})  # fmt: skip
        assert m.final_tags("cn_mobile").tolist() == ref_tags
    c = psi.count(msgs)
    got = {frozenset((p["a"], p["b"])): p["exact"] for p in c.pairs}
    assert got == {frozenset("甲乙"): 1.0, frozenset("乙丙"): 2.0, frozenset("甲丙"): 1.0}


def test_refusals_say_what_and_where(tmp_path: pathlib.Path) -> None:
    ps = ["A", "B", "C"]
    a, b, c = (psi.PsiSecret.generate("op-1", p, ps) for p in ps)
    ma, rep = psi.init(a, {"cn_mobile": ["13800000001", "12345", None], "email": ["x@y.cn"]})
    assert rep["cn_mobile"].valid == 1 and rep["cn_mobile"].rejected == 1
    assert ma.kinds == ["cn_mobile", "email"] and ma.applied == ["A"] and ma.round == 1
    ab = psi.blind(ma, b)
    with pytest.raises(pi_match.IncompatibleError, match="already been blinded by B"):
        psi.blind(ab, b)  # replayed
    with pytest.raises(pi_match.IncompatibleError, match="already been blinded by A"):
        psi.blind(ma, a)
    other = psi.PsiSecret.generate("op-2", "B", ps)
    with pytest.raises(pi_match.IncompatibleError, match='operation "op-1"'):
        psi.blind(ma, other)
    with pytest.raises(pi_match.PiMatchError, match="more than the 0"):
        psi.blind(ma, b, max_items=0)
    abc = psi.blind(ab, c)
    assert abc.is_final and abc.applied == ["A", "B", "C"]
    with pytest.raises(pi_match.IncompatibleError, match="lacks the blinding of C"):
        psi.count([abc, psi.blind(psi.init(b, {"cn_mobile": ["13800000001"]})[0], a)])
    with pytest.raises(pi_match.PiMatchError, match="given twice"):
        psi.count([abc, abc])
    with pytest.raises(pi_match.IncompatibleError, match="not yet blinded by every party"):
        ab.final_tags("cn_mobile")
    data = abc.to_bytes()
    rng = random.Random(5)
    for _ in range(300):  # tampered: any byte
        d = bytearray(data)
        d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        with pytest.raises(pi_match.FormatError):
            psi.PsiMessage.from_bytes(bytes(d))
    for n in range(0, len(data), 7):  # truncated
        with pytest.raises(pi_match.FormatError):
            psi.PsiMessage.from_bytes(data[:n])
    with pytest.raises(pi_match.FormatError, match="keyless-mode message"):
        pi_match.Artefact.from_bytes(data)
    key = pi_match.Key.from_bytes(bytes(range(32)))
    t = pi_match.TagSet(key, "email")
    t.add(["x@y.cn"])
    with pytest.raises(pi_match.FormatError, match="keyed artefact, not a keyless"):
        psi.PsiMessage.from_bytes(pi_match.Artefact([t]).to_bytes())
    with pytest.raises(pi_match.PiMatchError, match="not one of the parties"):
        psi.PsiSecret.generate("op", "D", ps)
    with pytest.raises(TypeError, match="cannot be pickled"):
        import pickle

        pickle.dumps(a)


def test_the_secret_never_leaves_its_file(tmp_path: pathlib.Path) -> None:
    ps = ["A", "B"]
    a = psi.PsiSecret.generate("op-s", "A", ps)
    k = scalar_of(a, tmp_path)
    hexed = k.to_bytes(32, "little").hex()
    secret_file = tmp_path / "a.secret"
    a.save(secret_file)
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        a.save(secret_file)
    again = psi.PsiSecret.load(secret_file)
    m, _ = psi.init(again, {"email": ["a@b.cn", "c@d.cn"]})
    for text in (repr(a), str(a), repr(m), m.to_bytes().hex(), repr(again)):
        assert hexed not in text and k.to_bytes(32, "little") not in text.encode()
    assert k.to_bytes(32, "little") not in m.to_bytes()
    bad = tmp_path / "bad.secret"
    bad.write_text(secret_file.read_text().replace("scalar: ", "scalar: 00"))
    os.chmod(bad, 0o600)
    with pytest.raises(pi_match.PiMatchError) as e:
        psi.PsiSecret.load(bad)
    assert hexed not in str(e.value)
    # the same scalar blinds the same way after a reload (an exchange can resume)
    m2, _ = psi.init(a, {"email": ["a@b.cn", "c@d.cn"]})
    assert payload_points(m2) == payload_points(m)


def test_three_party_ring_on_the_command_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def read() -> pytest.CaptureResult[str]:
        r = capsys.readouterr()
        seen.append(r.out + r.err)
        return r

    rows = {"A": POOL[:30], "B": POOL[20:45], "C": POOL[40:60] + POOL[:5]}
    for p, vals in rows.items():
        (tmp_path / f"{p}.csv").write_text("姓名,手机\n" + "".join(f"某,{v}\n" for v in vals)
                                           + "某,12345\n", encoding="gb18030")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for p in "ABC":
        code = main(["psi", "init", f"{p}.csv", "--operation", "op-cli", "--party", p,
                     "--parties", "A,B,C", "--secret", f"{p}.secret", "-o", f"{p}.1.pim",
                     "--field", "cn_mobile=手机", "--json"])  # fmt: skip
        assert code == 0
        s = json.loads(read().out)
        assert s["sections"][0]["valid"] == len(rows[p]) and s["sections"][0]["rejected"] == 1
        assert s["accounting"]["balanced"] and s["rejects_file"] == f"{p}.1.pim.rejects.csv"
    assert main(["psi", "init", "A.csv", "--operation", "op-cli", "--party", "A", "--parties",
                 "A,B,C", "--secret", "A.secret", "-o", "A.again.pim"]) == 1  # fmt: skip
    assert "already exists" in read().err
    order = {"A": "BC", "B": "CA", "C": "AB"}
    for p, others in order.items():
        cur = f"{p}.1.pim"
        for i, q in enumerate(others):
            nxt = f"{p}.{i + 2}.pim"
            assert main(["psi", "blind", cur, "--secret", f"{q}.secret", "-o", nxt]) == 0
            cur = nxt
    read()
    assert main(["psi", "blind", "A.3.pim", "--secret", "A.secret", "-o", "x.pim"]) == 1
    assert "already been blinded by A" in read().err
    assert main(["psi", "count", "A.2.pim", "B.3.pim"]) == 1
    assert "lacks the blinding of C" in read().err
    assert main(["psi", "count", "C.3.pim", "A.3.pim", "B.3.pim", "--json",
                 "--plot", "psi.png"]) == 0  # fmt: skip
    r = json.loads(read().out)
    sets = {p: set(v) for p, v in rows.items()}
    got = {(p["a"], p["b"]): p["exact"] for p in r["pairs"]}
    for (x, y), n in got.items():
        assert n == len(sets[x] & sets[y])
    assert r["method"] == "psi" and r["cn_mobile"]["union"]["exact"] == len(
        set().union(*sets.values())
    )
    assert pathlib.Path("psi.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["inspect", "B.2.pim", "--json"]) == 0
    info = json.loads(read().out)
    assert (info["origin"], info["applied"], info["final"]) == ("B", ["B", "C"], False)
    scalars = [re.search(r"scalar: (\w+)", pathlib.Path(f"{p}.secret").read_text())[1]
               for p in "ABC"]  # fmt: skip
    read()
    for f in pathlib.Path(".").glob("*.pim*"):  # messages, rejects files, manifests
        body = f.read_bytes()
        assert all(k.encode() not in body and bytes.fromhex(k) not in body for k in scalars), f
    assert all(k not in "".join(seen) for k in scalars)  # nor in anything printed
    assert main(["psi", "count", "A.3.pim", "A.3.pim"]) == 1  # the same party twice
    assert main(["psi", "blind", "A.1.pim", "--secret", "B.secret", "-o", "A.1.pim"]) == 1
    assert "never written" in read().err  # an input is evidence


def test_golden_messages_load_forever() -> None:
    first = psi.PsiMessage.load(DATA / "psi_v1" / "first_A.pim")
    final = psi.PsiMessage.load(DATA / "psi_v1" / "final_A.pim")
    assert (first.origin, first.applied, first.sizes) == ("A", ["A"], {"cn_ric": 2, "email": 2})
    assert final.is_final and final.sizes == {"cn_ric": 2, "email": 2}
    with warnings.catch_warnings():  # git keeps no file modes: the test secret may be 0644
        warnings.simplefilter("ignore", pi_match.InsecureKeyFileWarning)
        b = psi.PsiSecret.load(DATA / "psi_v1" / "B.secret")
    again = psi.blind(first, b)
    assert again.final_tags("cn_ric").tolist() == final.final_tags("cn_ric").tolist()
    assert np.all(np.diff(final.final_tags("email").astype(np.float64)) > 0)


def test_a_first_pass_holds_excels_rounded_shape_as_marking_it_does() -> None:
    # `hold_excel_rounded=True` holds, in the core's own tasks, what a mask from
    # `excel_rounded_shape` holds: the same codes and the same blinded set (HELD never sent).
    from pi_match import _core
    from pi_match.synth import ric_numbers

    rng = np.random.default_rng(11)
    ids = list(ric_numbers(rng, 3000))
    values = ids + [v for v in ids if v.endswith("000")] + ["110105194912310000", "x", ""]
    secret = psi.PsiSecret.generate("op-x", "A", ["A", "B"])
    told, marked = psi.PsiFirstPass("cn_ric"), psi.PsiFirstPass("cn_ric")
    a = told.add(secret, values, hold_excel_rounded=True)
    b = marked.add(secret, values, hold=_core.excel_rounded_shape(values))
    assert a.codes.tolist() == b.codes.tolist()
    assert (a.codes == _core.HELD).sum() >= 1
    ma, mb = psi.first_message(secret, [told]), psi.first_message(secret, [marked])
    assert ma.sizes == mb.sizes and ma.sizes["cn_ric"] == a.valid
