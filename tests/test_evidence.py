"""Evidence safety (issue #9): inputs are never written, every row is accounted for, nothing
hangs. Each test here is a hostile case that broke a promise before; the README's table "What
we tried, and what happens" lists them."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

import pi_match
from pi_match.cli import main
from pi_match.synth import mobile_numbers, ric_numbers

IDS = list(ric_numbers(np.random.default_rng(7), 400))
MOBS = list(mobile_numbers(np.random.default_rng(8), 400))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = cli(capsys, *args)
    assert code == 1, (code, out, err)
    # Notes (which fields were chosen) may come first; the error is one line, the last.
    errors = [ln for ln in err.splitlines() if ln.startswith("pi-match: error:")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n") and "Traceback" not in err, err
    return errors[0]


@pytest.fixture
def case(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    csv = tmp_path / "seized.csv"
    csv.write_text(
        "姓名,身份证号,手机\n"
        + "".join(f"客{i},{IDS[i]},{MOBS[i]}\n" for i in range(300))
        + "坏,1.10105E+17,NULL\n",
        "utf-8",
    )
    key = tmp_path / "op.key"
    pi_match.Key.from_bytes(bytes(range(32))).save(key)
    return {"csv": csv, "key": key, "dir": tmp_path}


def snapshot(*paths: pathlib.Path) -> list[tuple[bytes, int]]:
    return [(p.read_bytes(), p.stat().st_mtime_ns) for p in paths]


# ---- 1. inputs are never written ----------------------------------------------------------


def test_outputs_onto_inputs_or_key_are_refused(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    csv, key, d = case["csv"], case["key"], case["dir"]
    before = snapshot(csv, key)
    link = d / "link.csv"
    os.link(csv, link)
    sym = d / "sym.pmi"
    sym.symlink_to(key)
    base = ["build", str(csv), "--key", str(key)]
    for target in (csv, key, link, sym, d / "." / "seized.csv"):
        err = refused(capsys, *base, "-o", str(target))
        assert "refusing to write" in err
    assert "rejects file" in refused(capsys, *base, "-o", str(d / "a.pmi"), "--rejects", str(csv))
    assert snapshot(csv, key) == before
    assert not (d / "a.pmi").exists()

    a = str(d / "a.pmi")
    ok(capsys, *base, "-o", a)
    art = pathlib.Path(a)
    arts = snapshot(art)
    probe = ["probe", str(csv), "--index", a, "--key", str(key)]
    assert "refusing" in refused(capsys, *probe, "-o", str(csv))
    assert "refusing" in refused(capsys, *probe, "-o", a)
    assert "refusing" in refused(capsys, "compare", a, a, "--plot", a)
    assert "refusing" in refused(capsys, "merge", a, a, "-o", a)
    # keygen replaces only key files, even with --force.
    assert "not a pi_match key file" in refused(capsys, "keygen", "-o", a, "--force")
    assert "not a pi_match key file" in refused(capsys, "keygen", "-o", str(csv), "--force")
    assert snapshot(art) == arts and snapshot(csv, key) == before


def test_report_outputs_cannot_overwrite_the_case_or_its_data(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d = case["dir"]
    toml = d / "case.md"  # a case file whose name a report output would take
    toml.write_text(
        f'[case]\nname = "t"\nkey = "{case["key"]}"\n[[dataset]]\npath = "{case["csv"]}"\n'
        'fields = { cn_ric = "身份证号" }\ncategory = "住宿信息"\n',
        "utf-8",
    )
    before = snapshot(toml, case["csv"])
    assert "refusing" in refused(capsys, "report", str(toml), "-o", str(d / "case"))
    assert snapshot(toml, case["csv"]) == before
    bad = d / "bad.toml"
    bad.write_text(toml.read_text("utf-8") + 'header = "false"\n', "utf-8")
    assert "header must be true or false" in refused(capsys, "report", str(bad))


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_device_outputs_are_refused(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    # A private copy of /dev/null (same device numbers): a build that replaced it, as one run
    # as root once replaced the real /dev/null, damages nothing but this test's folder.
    null = case["dir"] / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    err = refused(capsys, "build", str(case["csv"]), "--key", str(case["key"]), "-o", str(null))
    assert "a device" in err
    assert stat.S_ISCHR(os.stat(null).st_mode)
    err = refused(capsys, "keygen", "-o", str(null), "--force")
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_rejects_and_hits_are_0600_whatever_the_umask(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d = case["dir"]
    old = os.umask(0o002)
    try:
        out = ok(capsys, "build", str(case["csv"]), "--key", str(case["key"]), "-o", str(d / "a"))
        hits = d / "hits.csv"
        ok(capsys, "probe", str(case["csv"]), "--index", str(d / "a"), "--key", str(case["key"]),
           "--field", "cn_ric=2", "-o", str(hits))  # fmt: skip
    finally:
        os.umask(old)
    for p in (out["rejects_file"], hits, str(hits) + ".rejects.csv"):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    assert stat.S_IMODE(os.stat(d / "a").st_mode) == 0o644


def test_a_failed_build_leaves_the_old_set_and_no_temporary_files(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d = case["dir"]
    a = d / "a.pmi"
    ok(capsys, "build", str(case["csv"]), "--key", str(case["key"]), "-o", str(a))
    old = snapshot(a, pathlib.Path(f"{a}.manifest.json"), pathlib.Path(f"{a}.rejects.csv"))
    # Saturated: refused after reading, before anything is renamed.
    err = refused(capsys, "build", str(case["csv"]), "--key", str(case["key"]), "-o", str(a),
                  "--capacity", "1", "--fpr", "0.9")  # fmt: skip
    assert "saturated" in err
    assert snapshot(a, pathlib.Path(f"{a}.manifest.json"), pathlib.Path(f"{a}.rejects.csv")) == old
    assert not [p for p in os.listdir(d) if ".tmp-" in p]


def test_full_disk_names_the_file_and_keeps_the_old_one(
    case: dict[str, pathlib.Path],
) -> None:
    d = case["dir"]
    a = d / "a.pmi"
    big = d / "big.csv"
    big.write_text("身份证号\n" + "".join(f"{x}\n" for x in IDS * 50), "utf-8")
    a.write_bytes(b"old artefact")
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (60000, 60000)); "
        "from pi_match.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "build", str(big), "--key", str(case["key"]),
         "-o", str(a), "--exact", "--fpr", "1e-9"],  # fmt: skip
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and str(a) in r.stderr, r.stderr
    assert a.read_bytes() == b"old artefact"
    assert not [p for p in os.listdir(d) if ".tmp-" in p]


def test_threads_saving_to_one_path_never_break_it(tmp_path: pathlib.Path) -> None:
    key = pi_match.Key.from_bytes(bytes(range(32)))
    idx = pi_match.BloomIndex(key, "cn_ric", capacity=100_000)
    idx.add(IDS)
    target = tmp_path / "shared.pmi"
    errors: list[BaseException] = []

    def save() -> None:
        try:
            for _ in range(20):
                idx.save(target)
                pi_match.Artefact([idx]).save(target)
        except BaseException as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert pi_match.load(target) == idx
    assert os.listdir(tmp_path) == ["shared.pmi"]


def test_stale_rejects_of_an_earlier_build_are_removed(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d = case["dir"]
    a = str(d / "a.pmi")
    first = ok(capsys, "build", str(case["csv"]), "--key", str(case["key"]), "-o", a)
    assert first["rejects_file"] and os.path.exists(a + ".rejects.csv")
    clean = d / "clean.csv"
    clean.write_text("身份证号\n" + "".join(f"{x}\n" for x in IDS[:50]), "utf-8")
    second = ok(capsys, "build", str(clean), "--key", str(case["key"]), "-o", a)
    assert second["rejects_file"] is None and not os.path.exists(a + ".rejects.csv")
    man = json.loads(pathlib.Path(a + ".manifest.json").read_text("utf-8"))
    assert man["output_sha256"] == pi_match.io.base.sha256_file(a)
    assert man["inputs"][0]["path"] == str(clean)


# ---- 2. every row is accounted for --------------------------------------------------------


def balanced(summary: dict) -> None:  # type: ignore[type-arg]
    acc = summary["accounting"]
    assert acc["balanced"] and acc["records"] == acc["rows"] + acc["unreadable_rows"]
    for i in summary["inputs"]:
        assert i["records"] == i["rows"] + i["unreadable_rows"]
    for s in summary["sections"]:
        assert s["rows"] == s["valid"] + s["missing"] + s["rejected"] == acc["rows"]


def build_json(
    capsys: pytest.CaptureFixture[str], path: pathlib.Path, key: pathlib.Path, *extra: str
) -> dict:  # type: ignore[type-arg]
    out = ok(capsys, "build", str(path), "--key", str(key), "-o", f"{path}.pmi", *extra)
    balanced(out)
    return out


_ROWS = "姓名,身份证号\n" + "".join(f"客{i},{IDS[i]}\n" for i in range(300))
_SQL = "CREATE TABLE t (名 text, 号 text);\n" + "".join(
    f"INSERT INTO t VALUES ('客{i}','{IDS[i]}');\n" for i in range(300)
)
_JSONL = "".join(
    json.dumps({"名": f"客{i}", "号": IDS[i]}, ensure_ascii=False) + "\n" for i in range(300)
)


@pytest.mark.parametrize(
    "name, raw",
    [
        ("utf8.csv", _ROWS.encode()),
        ("bom.csv", b"\xef\xbb\xbf" + _ROWS.encode()),
        ("gb.csv", _ROWS.encode("gb18030")),
        ("gbbom.csv", b"\x84\x31\x95\x33" + _ROWS.encode("gb18030")),
        ("utf16.csv", _ROWS.encode("utf-16")),  # a byte-order mark, Python's codec
        ("gb.sql", _SQL.encode("gb18030")),
        ("rows.jsonl", _JSONL.encode()),
    ],
)
def test_an_inputs_hash_is_of_the_bytes_its_rows_were_read_from(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path], name: str, raw: bytes
) -> None:
    """A build hashes each text input as its data pass reads it (byte-order mark included),
    not in a pass before: the manifest's SHA-256 is the file's, whatever the encoding, format
    or block size, and names the very bytes the rows came from — a file changed in place
    (the same size) between the scan and the reading is hashed as read, not as scanned."""
    import hashlib

    from pi_match.io import ReadOptions, open_source, read_ahead

    p = case["dir"] / name
    p.write_bytes(raw)
    field = {".sql": "cn_ric=2", ".jsonl": "cn_ric=号"}.get(p.suffix, "cn_ric=身份证号")
    out = build_json(capsys, p, case["key"], "--field", field)
    man = json.loads(pathlib.Path(f"{p}.pmi.manifest.json").read_text("utf-8"))
    assert man["inputs"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert out["sections"][0]["valid"] == 300
    for chunk in (64, 4096):
        src = open_source(p, ReadOptions(chunk_bytes=chunk), read_all=True)
        assert sum(len(b) for b in read_ahead(src)) == 300
        assert src.facts["sha256"] == hashlib.sha256(raw).hexdigest()
    # Changed in place after the scan: the rows and the hash are both of the new bytes.
    src = open_source(p, ReadOptions(chunk_bytes=4096), read_all=True)
    changed = raw.replace("客299".encode(), "客2X9".encode()) if "utf16" not in name else raw
    p.write_bytes(changed)
    assert sum(len(b) for b in src.batches()) == 300
    assert src.facts["sha256"] == hashlib.sha256(changed).hexdigest()
    if changed != raw:  # and changed back before a second pass: refused, not hashed anew
        p.write_bytes(raw)
        with pytest.raises(pi_match.io.InputError, match="changed while it was being read"):
            sum(len(b) for b in src.batches())


def test_cr_only_and_lone_cr_files_keep_every_record(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    cr = d / "mac.txt"
    cr.write_bytes(("身份证号\r" + "\r".join(IDS[:100]) + "\r").encode())
    out = build_json(capsys, cr, key)
    assert out["sections"][0]["valid"] == 100 and out["capacity"] >= 100
    mixed = d / "mixed.txt"
    mixed.write_bytes(("\n".join(IDS[:10]) + "\r" + "\r\n".join(IDS[10:20]) + "\n").encode())
    out = build_json(capsys, mixed, key, "--field", "cn_ric=1")
    assert out["sections"][0]["valid"] == 20


def test_a_first_line_holding_an_identifier_is_data(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    one = d / "list.txt"
    one.write_text("\n".join(IDS[:30]) + "\n", "utf-8")
    assert build_json(capsys, one, key)["sections"][0]["valid"] == 30
    dump = d / "dump.txt"
    dump.write_text("".join(f"张{i}----{IDS[i]}----{MOBS[i]}\n" for i in range(40)), "utf-8")
    out = build_json(capsys, dump, key)
    assert {s["kind"]: s["valid"] for s in out["sections"]} == {"cn_ric": 40, "cn_mobile": 40}
    text = json.dumps(out, ensure_ascii=False)
    assert IDS[0] not in text and MOBS[0] not in text  # no raw value ever became a name


def test_duplicate_header_names_and_numbers(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    p = d / "dup.csv"
    p.write_text(
        "证件号,证件号,x\n" + "".join(f"{IDS[i]},{IDS[i + 100]},-\n" for i in range(20)), "utf-8"
    )
    src = pi_match.io.open_source(p)
    assert src.columns == ["证件号", "证件号#2", "x"]
    first = build_json(capsys, p, key, "--field", "cn_ric=1", "--exact")
    second = build_json(capsys, p, key, "--field", "cn_ric=证件号#2", "--exact")
    a = pi_match.load(f"{p}.pmi", key=pi_match.Key.load(key))
    assert isinstance(a, pi_match.Artefact)
    ts = a.get("cn_ric", exact=True)
    assert first["sections"][0]["valid"] == second["sections"][0]["valid"] == 20
    assert IDS[100] in ts and IDS[0] not in ts


def test_mixed_encodings_stop_and_name_the_lines(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    p = d / "mixed.csv"
    lines = ["姓名,身份证号".encode()] + [f"张三{i},{IDS[i]}".encode() for i in range(5)]
    lines.insert(4, f"李四,{IDS[9]}".encode("gb18030"))
    p.write_bytes(b"\n".join(lines) + b"\n")
    err = refused(capsys, "build", str(p), "--key", str(key), "-o", str(d / "m.pmi"))
    assert "mixed encodings" in err and "lines 1, 2, 3" in err and "lines 5" in err
    assert IDS[9] not in err
    # The reverse: mostly GB18030 with a UTF-8 line.
    rev = d / "rev.csv"
    rows = [f"王{i},{IDS[i]}".encode("gb18030") for i in range(6)] + ["张三,1".encode()]
    rev.write_bytes(b"\n".join(rows) + b"\n")
    assert "mixed encodings" in refused(
        capsys, "build", str(rev), "--key", str(key), "-o", str(d / "r.pmi"), "--no-header",
        "--field", "cn_ric=2",
    )  # fmt: skip


def test_a_bad_byte_found_while_reading_stops_the_build_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    """The build leaves the GB18030 check of a file found not UTF-8 to its data pass: a bad
    byte past the first block (16 MiB) stops it there with the scan's own error, byte and
    line, and no artefact, manifest or rejects file is left behind."""
    d, key = case["dir"], case["key"]
    p = d / "late.csv"
    rows = [f"王{i % 97},{IDS[i % 400]}" for i in range(720_000)]
    body = "\n".join(["姓名,身份证号", *rows]).encode("gb18030")
    assert len(body) > 16 << 20
    p.write_bytes(body + b"\n\xff\xfe,1\n")
    before = sorted(x.name for x in d.iterdir())
    err = refused(capsys, "build", str(p), "--key", str(key), "-o", str(d / "late.pmi"))
    bad, line = len(body) + 1, len(rows) + 2
    assert f"and not GB18030 (byte {bad} on line {line} is not valid gb18030)" in err, err
    assert "not UTF-8 (byte 0 on line 1 does not decode)" in err, err
    assert sorted(x.name for x in d.iterdir()) == before


def test_encoding_names_and_utf16(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    p = d / "u16.csv"
    p.write_bytes(("身份证号\n" + "\n".join(IDS[:10]) + "\n").encode("utf-16-le"))
    err = refused(capsys, "build", str(p), "--key", str(key), "-o", str(d / "u.pmi"))
    assert "UTF-16-LE without a byte-order mark" in err and "GB18030" not in err
    out = build_json(capsys, p, key, "--encoding", "utf-16-le")
    assert out["sections"][0]["valid"] == 10
    bom = d / "bom16.csv"
    bom.write_bytes(("身份证号\n" + "\n".join(IDS[:10]) + "\n").encode("utf-16"))
    assert build_json(capsys, bom, key, "--encoding", "utf-16")["sections"][0]["valid"] == 10
    for name in ("rot13", "base64", "no-such-codec"):
        assert "encoding" in refused(
            capsys, "build", str(case["csv"]), "--key", str(key), "-o", str(d / "x.pmi"),
            "--encoding", name,
        )  # fmt: skip
    gb = d / "gb.csv"
    gb.write_bytes(f"姓名,身份证号\n王五,{IDS[0]}\n".encode("gb18030"))
    err = refused(capsys, "build", str(gb), "--key", str(key), "-o", str(d / "g.pmi"),
                  "--encoding", "utf-8")  # fmt: skip
    assert "line 1" in err and "not valid UTF-8" in err


def test_excel_rounded_ids_are_reported_not_matched(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    # 110105198001070000 is what Excel shows for an 18-digit ID; its check digit happens to
    # hold, so only the column (full of Excel damage) gives it away.
    rounded = [x[:15] + "000" for x in IDS[:40]]
    p = d / "excel.csv"
    p.write_text(
        "身份证号\n" + "\n".join(["110105198001070000", "1.10105E+17", *rounded]) + "\n", "utf-8"
    )
    out = build_json(capsys, p, key, "--exact", "--field", "cn_ric=1")
    s = out["sections"][0]
    assert s["valid"] == 0 and s["rejected_by_reason"]["excel_rounded"] == 41
    # In a clean column a number that ends 000 and passes its check stays valid.
    clean = d / "clean.csv"
    clean.write_text("身份证号\n" + "\n".join(["110105198001070000", *IDS[:200]]) + "\n")
    assert build_json(capsys, clean, key)["sections"][0]["valid"] == 201


def test_xlsx_numeric_ids_every_sheet_and_skips_reported(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    d, key = case["dir"], case["key"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "一"
    ws.append(["姓名", "身份证号", "身份证号"])
    for i in range(10):
        ws.append([f"客{i}", IDS[i], IDS[i + 50]])
    ws.append(["数", 110105198001070000, None])  # a numeric cell: Excel rounded it
    two = wb.create_sheet("二")
    two.append(["身份证号", "姓名"])  # same column, other order
    for i in range(10, 15):
        two.append([IDS[i], f"客{i}"])
    three = wb.create_sheet("三")
    three.append(["电话"])
    for i in range(7):
        three.append([MOBS[i]])
    p = d / "book.xlsx"
    wb.save(p)
    out = build_json(capsys, p, key, "--field", "cn_ric=身份证号", "--exact")
    s = out["sections"][0]
    assert s["valid"] == 15 and s["rejected_by_reason"] == {"excel_rounded": 1}
    skipped = out["inputs"][0]["skipped_sheets"]
    assert skipped == [{"sheet": "三", "rows": 7, "missing_columns": ["身份证号"]}]
    assert out["inputs"][0]["unreadable_by_reason"] == {"sheet_skipped": 7}
    out = build_json(capsys, p, key, "--field", "cn_ric=身份证号#2", "--sheet", "一")
    assert out["sections"][0]["valid"] == 10


def _rewrite_zip(src: pathlib.Path, dst: pathlib.Path, edit: dict[str, bytes]) -> None:
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = edit.get(item.filename, zin.read(item.filename))
            if item.filename in edit and callable(edit[item.filename]):  # pragma: no cover
                data = edit[item.filename](data)
            zout.writestr(item, data)
        for name, data in edit.items():
            if name not in zin.namelist():
                zout.writestr(name, data)


def test_xlsx_forged_dimension_and_zip_bomb_are_bounded(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    import zipfile

    d, key = case["dir"], case["key"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["身份证号"])
    for x in IDS[:20]:
        ws.append([x])
    plain = d / "plain.xlsx"
    wb.save(plain)
    with zipfile.ZipFile(plain) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    import re

    forged = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', sheet)
    assert forged != sheet
    big = d / "forged.xlsx"
    _rewrite_zip(plain, big, {"xl/worksheets/sheet1.xml": forged})
    out = build_json(capsys, big, key)
    assert out["sections"][0]["valid"] == 20 and out["capacity"] < 10_000
    # A cell at column XFD in every row: once 16,384 cells a row (a 30 kB file took 450 MiB).
    wide = openpyxl.Workbook()
    ws = wide.active
    ws.append(["身份证号"])
    for i, x in enumerate(IDS * 8, 2):
        ws.cell(i, 1, x)
        ws.cell(i, 16384, "x")
    wpath = d / "wide.xlsx"
    wide.save(wpath)
    # VmHWM, not ru_maxrss: the latter counts the forked copy of this (large) test process.
    code = (
        "import re, sys; from pi_match.cli import main; rc = main(sys.argv[1:]); "
        "s = open('/proc/self/status').read(); "
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', s).group(1)) // 1024); sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "build", str(wpath), "--key", str(key), "-o", f"{wpath}.pmi",
         "-q"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) < 250, r.stdout  # MiB, the interpreter and pyarrow included
    bomb = d / "bomb.xlsx"
    _rewrite_zip(plain, bomb, {"xl/worksheets/sheet2.xml": b" " * (64 << 20)})
    assert bomb.stat().st_size < 1 << 20
    assert "zip bomb" in refused(capsys, "build", str(bomb), "--key", str(key), "-o", f"{bomb}.p")


def test_sql_dump_statement_forms(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    p = d / "dump.sql"
    p.write_text(
        "CREATE TABLE `users` (\n  `name` varchar(20),\n  `idno` varchar(18),\n"
        "  `phone` varchar(11)\n);\n"
        f"INSERT INTO `users` VALUES ('a','{IDS[0]}','{MOBS[0]}'),('b','{IDS[1]}','{MOBS[1]}');\n"
        f"REPLACE INTO `users` VALUES ('c','{IDS[2]}','{MOBS[2]}');\n"
        f"INSERT IGNORE INTO `users` VALUES ('d','{IDS[3]}','{MOBS[3]}');\n"
        f"INSERT INTO `users` (`phone`,`idno`,`name`) VALUES ('{MOBS[4]}','{IDS[4]}','e');\n"
        f"INSERT INTO `users` VALUES ('f','{IDS[5]}','{MOBS[5]}'),('g','{IDS[6]}' broken;\n",
        "utf-8",
    )
    out = build_json(capsys, p, key, "--exact")
    got = {s["kind"]: s["valid"] for s in out["sections"]}
    assert got == {"cn_ric": 6, "cn_mobile": 6}
    assert out["inputs"][0]["unreadable_rows"] == 1 and out["accounting"]["records"] == 7
    art = pi_match.load(f"{p}.pmi", key=pi_match.Key.load(key))
    assert isinstance(art, pi_match.Artefact)
    assert IDS[4] in art.get("cn_ric", exact=True) and MOBS[4] in art.get("cn_mobile", exact=True)


def test_nested_columns_give_one_line_errors(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d, key = case["dir"], case["key"]
    p = d / "n.parquet"
    pq.write_table(pa.table({"id": [[IDS[0]], [IDS[1]]], "name": ["a", "b"]}), p)
    err = refused(capsys, "build", str(p), "--key", str(key), "-o", f"{p}.pmi", "--field",
                  "cn_ric=id")  # fmt: skip
    assert "'id'" in err and "list" in err
    j = d / "n.jsonl"
    j.write_text(json.dumps({"id": IDS[0]}) + "\n" + json.dumps({"id": {"x": 1}}) + "\n")
    err = refused(capsys, "build", str(j), "--key", str(key), "-o", f"{j}.pmi", "--field",
                  "cn_ric=id")  # fmt: skip
    assert "'id'" in err and "line 2" in err


def test_probe_accounts_for_unreadable_and_rejected_rows(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    a = str(d / "a.pmi")
    ok(capsys, "build", str(case["csv"]), "--key", str(key), "-o", a, "--exact")
    p = d / "mine.csv"
    p.write_text(
        "姓名,身份证号\n" + "".join(f"x,{IDS[i]}\n" for i in range(19))
        + f"多,{IDS[19]},余\n" + f"多,{IDS[20]},余\n" + "坏,12345\n",
        "utf-8",
    )  # fmt: skip
    out = ok(capsys, "probe", str(p), "--index", a, "--key", str(key), "--field", "cn_ric=2",
             "-o", str(d / "hits.csv"))  # fmt: skip
    assert out["records"] == 22 and out["rows"] == 20 and out["unreadable_rows"] == 2
    assert out["hits"] == 19 and out["sections"][0]["rejected"] == 1
    rejects = pathlib.Path(out["rejects_file"]).read_text("utf-8-sig")
    assert rejects.count("field_count") == 2 and "bad_length" in rejects
    code, text, _ = cli(capsys, "probe", str(p), "--index", a, "--key", str(key), "--field",
                        "cn_ric=2")  # fmt: skip
    assert "of 22 records" in text and "2 records could not be read" in text


def test_messages_that_misled(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    d, key = case["dir"], case["key"]
    other = d / "other.key"
    pi_match.Key.from_bytes(bytes(range(5, 37))).save(other)
    a, b, t = str(d / "a.pmi"), str(d / "b.pmi"), str(d / "t.pmi")
    ok(capsys, "build", str(case["csv"]), "--key", str(key), "-o", a)
    ok(capsys, "build", str(case["csv"]), "--key", str(other), "-o", b)
    for cmd in (["compare", a, b], ["merge", a, b, "-o", str(d / "m.pmi")]):
        err = refused(capsys, *cmd)
        assert a in err and b in err and "key given" not in err
    # Bloom-only against tag-set-only: say so, not "share no identifier kind".
    idx = pi_match.load(a)
    assert isinstance(idx, pi_match.Artefact)
    ts = pi_match.TagSet(pi_match.Key.load(key), "cn_ric")
    ts.add(IDS[:10])
    pi_match.Artefact([ts]).save(t)
    err = refused(capsys, "compare", a, t)
    assert "tag set" in err and "share no identifier kind" not in err


# ---- 3. never hang, never crash -----------------------------------------------------------


def test_fifos_directories_devices_are_refused_at_once(case: dict[str, pathlib.Path]) -> None:
    d = case["dir"]
    fifo = d / "fifo"
    os.mkfifo(fifo)
    zero = d / "zero"
    zero.symlink_to("/dev/zero")
    a = d / "a.pmi"
    pi_match.BloomIndex(pi_match.Key.load(case["key"]), "cn_ric", capacity=10).save(a)
    for bad in (fifo, zero, d):
        for args in (
            ["inspect", str(bad)],
            ["probe", str(case["csv"]), "--index", str(a), "--key", str(bad)],
            ["build", str(bad), "--key", str(case["key"]), "-o", str(d / "x.pmi")],
            ["psi", "blind", str(bad), "--secret", str(bad), "-o", str(d / "y.pim")],
            ["psi", "count", str(bad), str(bad)],
            [
                "psi",
                "init",
                str(bad),
                "--operation",
                "op",
                "--party",
                "A",
                "--parties",
                "A,B",
                "--secret",
                str(d / "s.secret"),
                "-o",
                str(d / "z.pim"),
            ],  # fmt: skip
        ):
            r = subprocess.run(
                [sys.executable, "-m", "pi_match.cli", *args],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert r.returncode == 1, (args, r.stderr)
            assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
            assert "regular file" in r.stderr or "folder" in r.stderr, r.stderr


def test_bad_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str], case: dict) -> None:  # type: ignore[type-arg]
    base = ["build", str(case["csv"]), "--key", str(case["key"]), "-o", str(case["dir"] / "a")]
    for flag, value in [("--fpr", "0"), ("--fpr", "-1"), ("--fpr", "nan"), ("--fpr", "x"),
                        ("--fpr", "1"), ("--capacity", "0"), ("--capacity", "-5"),
                        ("--capacity", "nan"), ("--capacity", "lots")]:  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main([*base, flag, value])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and flag in err
    for sizes in (["0"], ["-3"], ["nan"], ["ten"]):
        with pytest.raises(SystemExit) as e:
            main(["plan", "--sizes", *sizes, "--min-overlap", "10"])
        assert e.value.code == 2
    out = ok(capsys, "plan", "--sizes", "1e6", "2_000_000", "--min-overlap", "100")
    assert out["recommendation"]


def test_forged_timestamp_and_saturated_index_inspect_as_standard_json(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    key = pi_match.Key.from_bytes(bytes(range(32)))
    idx = pi_match.BloomIndex(key, "cn_ric", capacity=1, fpr=0.5)
    idx.add(IDS)
    sat = tmp_path / "sat.pmi"
    idx.save(sat)
    code, out, err = cli(capsys, "inspect", str(sat), "--json")
    assert code == 0, err
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["sections"][0]["saturated"] is True
    # A header whose `created` no calendar holds (the u64 maximum), checksum repaired.
    forged = tmp_path / "forged.pmi"
    forged.write_bytes(_with_created(sat.read_bytes(), 2**64 - 1))
    code, out, err = cli(capsys, "inspect", str(forged))
    assert code == 0 and "invalid timestamp" in out, err


def _with_created(data: bytes, created: int) -> bytes:
    """The artefact with another header timestamp and its header checksum recomputed, per
    docs/FORMAT.md §5 (created at 32; at 56 the xxh3-64 of bytes 0..56 and the section table)."""
    import xxhash

    b = bytearray(data)
    n = int.from_bytes(b[12:16], "little")
    b[32:40] = created.to_bytes(8, "little")
    table = bytes(b[64 : 64 + 64 * n])
    b[56:64] = xxhash.xxh3_64_intdigest(bytes(b[:56]) + table).to_bytes(8, "little")
    return bytes(b)


def test_merge_that_would_saturate_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    key = pi_match.Key.from_bytes(bytes(range(32)))
    big = pi_match.BloomIndex(key, "cn_ric", capacity=100_000)
    big.add(list(ric_numbers(np.random.default_rng(1), 60_000)))
    small = pi_match.BloomIndex(key, "cn_ric", capacity=10, fpr=0.1)
    small.add(IDS[:5])
    a, b = tmp_path / "big.pmi", tmp_path / "small.pmi"
    big.save(a)
    small.save(b)
    err = refused(capsys, "merge", str(a), str(b), "-o", str(tmp_path / "m.pmi"))
    assert "saturated" in err and not (tmp_path / "m.pmi").exists()


STRESS = r"""
import sys, threading
import pi_match
key = pi_match.Key.from_bytes(bytes(range(32)))
ids = [f"11010519491231{i:04d}" for i in range(3000)]
a = pi_match.BloomIndex(key, "cn_ric", capacity=20000)
b = pi_match.BloomIndex(key, "cn_ric", capacity=20000)
t = pi_match.TagSet(key, "cn_ric")
path = sys.argv[1]
def work(i):
    for j in range(6):
        k = (i + j) % 9
        if k == 0: a.__ior__(b)
        elif k == 1: b.__ior__(a)
        elif k == 2: a.add(ids); b.add(ids[:100]); t.add(ids[:50])
        elif k == 3: _ = b | b; _ = a | b
        elif k == 4: pi_match.estimate_overlap(b, b); pi_match.estimate_overlap(a, b)
        elif k == 5: _ = t & t; _ = t | t; len(t)
        elif k == 6: pi_match.Artefact([a, b, a, t]).save(path)
        elif k == 7: a.to_bytes(); "110105194912310021" in a; a.contains(ids[:10])
        else: a == b; repr(a); b.items_added; pi_match.Artefact([t, t]).to_bytes()
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for x in ts: x.start()
for x in ts: x.join()
"""


def test_locks_never_deadlock_under_mixed_operations(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "stress.py"
    script.write_text(STRESS)
    runs = int(os.environ.get("PI_MATCH_STRESS_RUNS", "100"))
    # Many runs in one process would hide a leak of held locks; a process per 10 runs keeps
    # the cost down while each run starts with fresh objects.
    loop = tmp_path / "loop.py"
    loop.write_text(
        "import runpy, sys\n"
        f"for _ in range({runs}):\n"
        f"    sys.argv = ['stress', {str(tmp_path / 's.pmi')!r}]\n"
        f"    runpy.run_path({str(script)!r})\n"
    )
    r = subprocess.run([sys.executable, str(loop)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_file_given_twice_is_refused_and_a_copy_is_named(
    capsys: pytest.CaptureFixture[str],
    case: dict[str, pathlib.Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Overlapping shell patterns (`*.csv seized.csv`) give one file twice: its rows would be
    counted twice in every count but the distinct ones, so the build stops, whatever names
    the file goes by (the same path, `./x` and `x`, a hard or a symbolic link). A copy — other
    bytes on disk holding the same bytes, as the same dump seized twice — is built, with a
    warning in the output and the summary naming both."""
    d, csv = case["dir"], case["csv"]
    monkeypatch.chdir(d)
    os.link(csv, d / "hard.csv")
    os.symlink(csv, d / "soft.csv")
    base = ("--key", str(case["key"]), "-o", str(d / "out.pmi"))
    err = refused(capsys, "build", "seized.csv", "seized.csv", *base)
    assert "seized.csv: given twice; each input is read once" in err
    for other in ("./seized.csv", str(csv), "hard.csv", "soft.csv"):
        err = refused(capsys, "build", "seized.csv", other, *base)
        assert f"{other}: the same file as seized.csv" in err, err
    assert not (d / "out.pmi").exists()
    (d / "copy.csv").write_bytes(csv.read_bytes())
    code, out, err = cli(capsys, "build", "seized.csv", "copy.csv", *base, "--json")
    assert code == 0, err
    s = json.loads(out)
    warned = [w for w in s["warnings"] if "copy.csv holds the same bytes as seized.csv" in w]
    assert len(warned) == 1 and "counted again" in warned[0]
    balanced(s)
    assert s["accounting"]["rows"] == 2 * 301
    code, out, err = cli(capsys, "build", "seized.csv", "copy.csv", *base)
    assert code == 0 and (out + err).count("copy.csv holds the same bytes as seized.csv") == 1
    # One artefact twice would be two cases sharing every victim.
    err = refused(capsys, "compare", "out.pmi", "./out.pmi")
    assert "./out.pmi: the same file as out.pmi" in err
    # A copy of one artefact is compared, with a warning: every victim would count as shared.
    (d / "copy.pmi").write_bytes((d / "out.pmi").read_bytes())
    # (another build: another rate, so not the same bytes even within the same second)
    ok(capsys, "build", "seized.csv", *base[:-1], str(d / "other.pmi"), "--fpr", "1e-4")
    notes = ok(capsys, "compare", "out.pmi", "copy.pmi", "other.pmi")["notes"]
    assert [n for n in notes if "is a copy" in n] == [
        "warning: copy.pmi is a copy of out.pmi (the same artefact, byte for byte): compared "
        "as two cases, every victim in it counts as shared"
    ]


def test_an_output_in_a_missing_folder_is_named_and_warnings_are_one_line(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    """An output whose folder does not exist is named with that folder (not a temporary file
    beside it); a warning (a key file others can read) is one `pi-match: warning:` line, not
    Python's `file:line: Category` with a line of source under it."""
    d = case["dir"]
    err = refused(capsys, "build", str(case["csv"]), "--key", str(case["key"]),
                  "-o", str(d / "nodir" / "out.pmi"))  # fmt: skip
    assert (
        f"cannot write the artefact {d / 'nodir' / 'out.pmi'}: {d / 'nodir'} does not exist" in err
    )
    assert not list(d.glob("**/.*tmp*"))
    (d / "file").write_text("x")
    err = refused(capsys, "build", str(case["csv"]), "--key", str(case["key"]),
                  "-o", str(d / "file" / "out.pmi"))  # fmt: skip
    assert f"{d / 'file'} is not a folder" in err
    open_key = d / "open.key"
    open_key.write_bytes(case["key"].read_bytes())
    open_key.chmod(0o644)
    code, out, err = cli(capsys, "build", str(case["csv"]), "--key", str(open_key),
                         "-o", str(d / "w.pmi"), "--quiet")  # fmt: skip
    assert code == 0, err
    warned = [ln for ln in err.splitlines() if "can be read by other users" in ln]
    assert len(warned) == 1 and warned[0].startswith("pi-match: warning: key file "), err
    assert "Key.load" not in err and "Warning:" not in err


def test_an_empty_input_is_called_empty(
    capsys: pytest.CaptureFixture[str], case: dict[str, pathlib.Path]
) -> None:
    """A 0-byte file is named as empty, not as one whose columns hold no identifier; given its
    column, it builds an artefact of no values that says so."""
    d = case["dir"]
    (d / "empty.csv").write_bytes(b"")
    base = ["build", str(d / "empty.csv"), "--key", str(case["key"]), "-o", str(d / "e.pmi")]
    assert "empty.csv: is empty (0 bytes)" in refused(capsys, *base)
    s = ok(capsys, *base, "--field", "cn_ric=1")
    assert s["accounting"]["records"] == 0 and s["sections"][0]["valid"] == 0
