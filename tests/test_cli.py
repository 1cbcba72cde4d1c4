"""The `pi-match` entry point, run as a user would: a subprocess."""

from __future__ import annotations

import subprocess
import sys

from conftest import DATA


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pi_match.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_demo_runs_and_reports() -> None:
    # A fixed key makes the run reproducible, so "inside the interval" is not left to chance.
    key = str(DATA / "format_v1" / "test.key")
    r = run("demo", "--hotel", "20000", "--resold", "12000", "--shared", "3000", "--key", key)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "shared victims" in out and "inside the interval" in out
    assert "exact matches" in out and "DIFFERS" not in out
    assert "excel_scientific" in out and "missing" in out
    assert "Traceback" not in r.stderr


def test_demo_json() -> None:
    key = str(DATA / "format_v1" / "test.key")
    r = run(
        "demo", "--hotel", "5000", "--resold", "3000", "--shared", "1000", "--key", key, "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for k in data["kinds"].values():
        assert (
            k["exact"] == k["truth"] and k["estimate"]["low"] <= k["truth"] <= k["estimate"]["high"]
        )


def test_usage_errors_exit_2() -> None:
    r = run("no-such-command")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run("--version")
    assert r.returncode == 0 and "pi_match" in r.stdout


# ---- the whole workflow ---------------------------------------------------------------------

import json  # noqa: E402
import pathlib  # noqa: E402

import numpy as np  # noqa: E402

from pi_match.synth import mobile_numbers, ric_numbers  # noqa: E402


def ok(*args: str) -> dict:  # type: ignore[type-arg]
    r = run(*args, "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def fail(*args: str) -> str:
    r = run(*args)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def make_case(tmp: pathlib.Path) -> dict[str, object]:
    rng = np.random.default_rng(42)
    ids, mobs = ric_numbers(rng, 3000), mobile_numbers(rng, 3000)
    a = tmp / "hotel.csv"
    with open(a, "w", encoding="utf-8") as f:
        f.write("姓名,身份证号,手机\n")
        for i in range(2000):
            f.write(f"客{i},{ids[i]},{mobs[i]}\n")
        f.write("坏,1.10105E+17,NULL\n")
        f.write("多,余,的,逗号\n")
    b = tmp / "resold.txt"
    with open(b, "w", encoding="gb18030") as f:
        for i in range(1500, 3000):
            f.write(f"䶮{i}----{ids[i]}----{mobs[i]}\n")
    # The published test key, so estimates (and the assertions on their intervals) are the
    # same on every run.
    key = tmp / "op.key"
    from pi_match import Key

    Key.from_bytes(bytes(range(32))).save(key)
    return {"a": a, "b": b, "key": key, "shared": 500}


def test_build_inspect_compare_probe_merge(tmp_path: pathlib.Path) -> None:
    c = make_case(tmp_path)
    a_pmi, b_pmi = str(tmp_path / "a.pmi"), str(tmp_path / "b.pmi")
    out = ok("build", str(c["a"]), "--key", str(c["key"]), "-o", a_pmi, "--exact")
    assert set(out) >= {"output", "sections", "encoding", "rejects_file"}
    ric = next(s for s in out["sections"] if s["kind"] == "cn_ric")
    assert {"kind", "rows", "valid", "missing", "rejected", "rejected_by_reason",
            "distinct_estimate"} <= set(ric)  # fmt: skip
    assert (ric["rows"], ric["valid"], ric["rejected"]) == (2001, 2000, 1)
    assert ric["rejected_by_reason"] == {"excel_scientific": 1}
    mob = next(s for s in out["sections"] if s["kind"] == "cn_mobile")
    assert mob["missing"] == 1 and out["encoding"] == "utf-8"
    # UTF-8 with a byte-order mark, so Excel on Chinese Windows opens it right.
    raw_rejects = pathlib.Path(out["rejects_file"]).read_bytes()
    assert raw_rejects.startswith(b"\xef\xbb\xbf")
    rejects = raw_rejects.decode("utf-8-sig").splitlines()
    assert rejects[0] == "file,line,column,reason,raw"
    assert any(",2002,身份证号,excel_scientific,1.10105E+17" in r for r in rejects)
    assert any(",2003,,field_count," in r for r in rejects)
    manifest = json.loads(pathlib.Path(a_pmi + ".manifest.json").read_text("utf-8"))
    assert manifest["inputs"][0]["sha256"] and manifest["pi_match_version"]
    assert "客1" not in json.dumps(manifest, ensure_ascii=False)  # counts and hashes, no values

    # `--delimiter ----` and `--delimiter=----` both work.
    for form in (["--delimiter", "----"], ["--delimiter=----"]):
        out = ok("build", str(c["b"]), "--key", str(c["key"]), "-o", b_pmi, "--no-header",
                 *form, "--field", "cn_ric=2", "--field", "cn_mobile=3", "--exact")  # fmt: skip
        assert out["encoding"] == "gb18030" and out["sections"][0]["valid"] == 1500

    art = pathlib.Path(a_pmi).read_bytes()
    for secret in (pathlib.Path(c["key"]).read_text().split(":")[1].strip()[:16], "客1", "11010"):
        assert secret.encode() not in art

    info = ok("inspect", a_pmi)
    assert info["format_version"] == 1 and {s["type"] for s in info["sections"]} == {
        "bloom",
        "tagset",
    }

    cmp = ok("compare", a_pmi, b_pmi)
    for p in cmp["pairs"]:
        assert {"a", "b", "kind", "estimate", "low", "high", "exact"} <= set(p)
        assert p["exact"] == p["estimate"] == p["low"] == p["high"] == 500

    hits_csv = tmp_path / "hits.csv"
    pr = ok("probe", str(c["b"]), "--index", a_pmi, "--key", str(c["key"]), "--no-header",
            "--delimiter", "----", "--field", "cn_ric=2", "-o", str(hits_csv))  # fmt: skip
    assert (pr["rows"], pr["hits"]) == (1500, 500)
    assert pr["expected_false_positives"] == 0  # exact tag set
    lines = hits_csv.read_text("utf-8-sig").splitlines()
    assert lines[0] == "line,matched,1,2,3" and lines[1].startswith("1,cn_ric,䶮1500,")

    merged = ok("merge", a_pmi, b_pmi, "-o", str(tmp_path / "ab.pmi"))
    ric_union = next(
        s for s in merged["sections"] if s["kind"] == "cn_ric" and s["type"] == "tagset"
    )
    assert ric_union["estimate"]["value"] == 3000


def test_user_errors_are_one_line_and_exit_1(tmp_path: pathlib.Path) -> None:
    c = make_case(tmp_path)
    a_pmi = str(tmp_path / "a.pmi")
    assert "no such file" in fail(
        "build", str(tmp_path / "missing.csv"), "--key", str(c["key"]), "-o", a_pmi
    )
    assert "pi-match keygen" in fail("build", str(c["a"]), "--key", "nokey", "-o", a_pmi)
    assert "no column 'nope'" in fail("build", str(c["a"]), "--key", str(c["key"]), "-o", a_pmi,
                                      "--field", "cn_ric=nope")  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id\n\x81\x20\xff\n")
    assert "--encoding" in fail(
        "build", str(bad), "--key", str(c["key"]), "-o", a_pmi, "--field", "raw=1"
    )
    ok("build", str(c["a"]), "--key", str(c["key"]), "-o", a_pmi)
    other = tmp_path / "other.key"
    run("keygen", "-o", str(other))
    msg = fail("probe", str(c["a"]), "--index", a_pmi, "--key", str(other), "--field", "cn_ric=2")
    assert "key mismatch" in msg
    from pi_match import Key

    assert Key.load(other).id in msg and Key.load(c["key"]).id in msg  # type: ignore[arg-type]
    junk = tmp_path / "junk.pmi"
    junk.write_bytes(b"not an artefact at all")
    assert "not a pi_match artefact" in fail("inspect", str(junk))
    assert "already exists" in fail("keygen", "-o", str(c["key"]))
    r = run("build", str(c["a"]))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_compare_counts_and_plot(tmp_path: pathlib.Path) -> None:
    from PIL import Image

    c = make_case(tmp_path)
    paths = []
    for name, src, extra in (("a", c["a"], []), ("b", c["b"], ["--no-header", "--delimiter", "----",
                             "--field", "cn_ric=2", "--field", "cn_mobile=3"])):  # fmt: skip
        out = str(tmp_path / f"{name}.pmi")
        ok("build", str(src), "--key", str(c["key"]), "-o", out, *extra)
        paths.append(out)
    png = tmp_path / "overlap.png"
    data = ok("compare", *paths, "--plot", str(png))
    ric = next(k for k in data["kinds"] if k["kind"] == "cn_ric")
    for q in ("union", "in_two_or_more"):
        assert {"estimate", "low", "high", "exact"} <= set(ric[q]) and ric[q]["exact"] is None
    assert ric["union"]["low"] <= 3000 <= ric["union"]["high"]
    assert ric["in_two_or_more"]["low"] <= 500 <= ric["in_two_or_more"]["high"]
    assert [u["input"] for u in ric["unique"]] == paths
    assert data["cn_ric"]["union"] == ric["union"]
    with Image.open(png) as im:
        im.load()
        assert im.size[0] > 500 and im.size[1] > 300


def test_plan_command() -> None:
    data = ok("plan", "--sizes", "1e7", "5e6", "--min-overlap", "200000")
    assert data["recommendation"] == "bloom" and data["num_blocks"] > 0
    assert ok("plan", "--sizes", "1e8", "1e8", "--min-overlap", "50")["recommendation"] == "tagset"


def test_authenticate_inspect_verify(tmp_path: pathlib.Path) -> None:
    c = make_case(tmp_path)
    out = str(tmp_path / "signed.pmi")
    ok("build", str(c["a"]), "--key", str(c["key"]), "-o", out, "--authenticate")
    assert ok("inspect", out)["authenticated"] is True
    assert ok("verify", out, "--key", str(c["key"]))["status"] == "valid"
    plain = str(tmp_path / "plain.pmi")
    ok("build", str(c["a"]), "--key", str(c["key"]), "-o", plain)
    r = run("verify", plain, "--key", str(c["key"]))
    assert r.returncode == 1 and "no MAC" in r.stderr
    other = tmp_path / "other.key"
    run("keygen", "-o", str(other))
    assert "key mismatch" in fail("verify", out, "--key", str(other))


def test_the_command_line_tunes_its_own_process_for_streaming(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The CLI owns its process: it keeps OpenBLAS to one thread (its spinning workers would
    take a core from the Rust work) unless the user set it, and on glibc lets malloc keep
    freed batch buffers. A library caller's process is not touched by importing pi_match."""
    import os
    import platform

    from pi_match import _core

    probe = (
        "import os, sys\n"
        "import pi_match.build\n"
        "before = os.environ.get('OPENBLAS_NUM_THREADS')\n"
        "from pi_match.cli import main\n"
        "main(sys.argv[1:])\n"
        "print(before, os.environ.get('OPENBLAS_NUM_THREADS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)

    def run(*argv: str, extra: dict[str, str] | None = None) -> str:
        r = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                           env={**env, **(extra or {})}, check=True)  # fmt: skip
        return r.stdout.split("\n")[-2]

    # numpy already imported (pi_match.build): too late to matter, so left alone.
    assert run("keygen", "-o", str(tmp_path / "a.key")) == "None None"
    probe = probe.replace("import pi_match.build\n", "")
    assert run("keygen", "-o", str(tmp_path / "b.key")) == "None 1"
    mine = {"OPENBLAS_NUM_THREADS": "4"}
    assert run("keygen", "-o", str(tmp_path / "c.key"), extra=mine) == "4 4"
    if platform.libc_ver()[0] == "glibc":
        assert _core._tune_malloc_for_streaming() is True


def test_start_up_stays_off_the_hot_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`pi-match --help` imports neither numpy nor pyarrow, and a build of a CSV — a held
    Excel-shaped value and a rejected one included — never imports pandas (pyarrow's
    `pa.array` would, a quarter of a second of every build)."""
    import os

    import pi_match

    key = tmp_path / "op.key"
    pi_match.Key.generate().save(key)
    p = tmp_path / "a.csv"
    rows = ["身份证号", "11010519491231002X", "110105194912310000", "1.10105E+17"]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    probe = (
        "import sys, io, contextlib\n"
        "from pi_match.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('numpy', 'pyarrow', 'pandas') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def loaded(*argv: str) -> str:
        r = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                           text=True, env=env, check=True)  # fmt: skip
        return r.stdout.strip()

    assert loaded("--help") == "[]"
    assert loaded("build", str(p), "--key", str(key), "-o", str(tmp_path / "a.pmi")) == (
        "['numpy', 'pyarrow']"
    )


def test_exact_builds_store_tag_sets_compressed_unless_asked_not_to(tmp_path: pathlib.Path) -> None:
    import struct

    c = make_case(tmp_path)
    small, plain = str(tmp_path / "small.pmi"), str(tmp_path / "plain.pmi")
    base = ("build", str(c["a"]), "--key", str(c["key"]), "--exact")
    ok(*base, "-o", small)
    out = ok(*base, "-o", plain, "--plain-tag-sets")
    assert json.loads(pathlib.Path(plain + ".manifest.json").read_text())["options"][
        "plain_tag_sets"
    ]

    def types(path: str) -> list[tuple[int, int]]:
        data = pathlib.Path(path).read_bytes()
        (count,) = struct.unpack_from("<I", data, 12)
        return [(data[64 + 64 * i], struct.unpack_from("<Q", data, 64 + 64 * i + 24)[0])
                for i in range(count)]  # fmt: skip

    # Bloom, tag set per kind; 2,000 ID numbers and 2,000 mobiles: 64 − log2(n) + ≤ 2.2 bits
    # a tag (6.9 bytes), not 8.
    got, want = types(small), types(plain)
    assert [t for t, _ in got] == [1, 6, 1, 6] and [t for t, _ in want] == [1, 2, 1, 2]
    for (_, n), (_, n_plain), s in zip(got[1::2], want[1::2], out["sections"], strict=True):
        v = s["valid"]
        assert n_plain == 8 * v and n <= (64 - np.log2(v) + 2.2) / 8 * v + 16
    # The two files hold the same sets: every exact overlap is the whole kind.
    cmp = ok("compare", small, plain)
    valid = {s["kind"]: s["valid"] for s in out["sections"]}
    assert sorted((p["kind"], p["exact"]) for p in cmp["pairs"]) == sorted(valid.items())
    # A merge writes compressed sets too, or plain ones when asked: the same sets either way.
    m, m_plain = str(tmp_path / "m.pmi"), str(tmp_path / "m_plain.pmi")
    ok("merge", small, plain, "-o", m)
    ok("merge", small, plain, "-o", m_plain, "--plain-tag-sets")
    assert [t for t, _ in types(m)] == [1, 6, 1, 6]
    assert [t for t, _ in types(m_plain)] == [1, 2, 1, 2]
    assert [n for _, n in types(m_plain)[1::2]] == [n for _, n in want[1::2]]
    cmp = ok("compare", m, m_plain)
    assert sorted((p["kind"], p["exact"]) for p in cmp["pairs"]) == sorted(valid.items())


def _console(body: str, tmp_path: object) -> subprocess.CompletedProcess[str]:
    """`pi_match.cli.console` with `main` replaced by `body` (a lambda's expression)."""
    code = (
        "import sys, threading, time\n"
        "import pi_match.cli as c\n"
        f"c.main = lambda: {body}\n"
        "c.console()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=str(tmp_path))  # fmt: skip


def test_console_leaves_early_but_loses_no_output_and_keeps_the_code(tmp_path) -> None:
    # Leaving without the interpreter's teardown must not drop what is still buffered.
    r = _console("(print('x' * 200_000, end=''), print('last', file=sys.stderr), 3)[2]", tmp_path)
    assert (r.returncode, len(r.stdout), r.stderr) == (3, 200_000, "last\n")


def test_console_waits_for_a_thread_still_working(tmp_path) -> None:
    # A non-daemon thread still running when `main` returns finishes its work, as it would
    # at a normal exit (the early exit is only for a process with nothing left to do).
    body = (
        "(threading.Thread(target=lambda: (time.sleep(0.5), open('done', 'w').write('yes')))"
        ".start(), 0)[1]"
    )
    r = _console(body, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "done").read_text() == "yes"


def test_console_waits_for_a_child_process_still_working(tmp_path) -> None:
    # Likewise a child process not yet reaped (a Dask worker, say) is left to the normal exit.
    # (The child lets go of the pipes first, so the run ends when the parent does.)
    body = (
        "(__import__('multiprocessing').get_context('fork').Process(target=lambda: "
        "(__import__('os').close(1), __import__('os').close(2), time.sleep(0.5), "
        "open('child', 'w').write('yes'))).start(), 0)[1]"
    )
    r = _console(body, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "child").read_text() == "yes"


def test_a_file_named_in_gbk_builds_and_probes(tmp_path: pathlib.Path) -> None:
    # A seized disk mounted as it came: the file's name is GBK bytes, not UTF-8. Python holds
    # it with surrogate escapes, which no UTF-8 file takes; the rejects file, the manifest,
    # --json and the messages show its bytes as \xNN (raw values are shown so) instead.
    import os

    from pi_match.synth import ric_numbers

    ids = list(ric_numbers(np.random.default_rng(3), 3))
    name = os.fsencode(tmp_path) + b"/" + "案件".encode("gbk") + b".csv"
    with open(name, "wb") as f:
        f.write(("身份证号,姓名\n" + f"{ids[0]},a\n12345,b\n{ids[1]},c,extra\n").encode())
    shown = str(tmp_path) + "/\\xb0\\xb8\\xbc\\xfe.csv"
    key, out = str(tmp_path / "k.key"), str(tmp_path / "o.pmi")
    assert run("keygen", "-o", key).returncode == 0

    def strings(obj: object) -> set[str]:
        if isinstance(obj, dict):
            return set().union(*map(strings, obj.values())) if obj else set()
        if isinstance(obj, list):
            return set().union(*map(strings, obj)) if obj else set()
        return {obj} if isinstance(obj, str) else set()

    def cli(*args: bytes | str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "pi_match.cli", *args],
                              capture_output=True, timeout=120)  # fmt: skip

    r = cli("build", name, "--key", key, "-o", out, "--field", "cn_ric=身份证号", "--json")
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()
    summary = json.loads(r.stdout)
    assert summary["rejected_rows"] == 2 and shown in strings(summary)
    rejects = (tmp_path / "o.pmi.rejects.csv").read_text("utf-8-sig").splitlines()
    assert rejects[1].startswith(f"{shown},3,身份证号,") and rejects[2].startswith(f"{shown},4,")
    manifest = json.loads((tmp_path / "o.pmi.manifest.json").read_text("utf-8"))
    assert shown in strings(manifest) and manifest["rejects_sha256"]
    r = cli(
        "build", name, "--key", key, "-o", str(tmp_path / "p.pmi"), "--field", "cn_ric=身份证号"
    )
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()
    hits = str(tmp_path / "hits.csv")
    r = cli("probe", name, "--index", out, "--key", key, "--field", "cn_ric=身份证号", "-o", hits)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()
    probe_rejects = (tmp_path / "hits.csv.rejects.csv").read_text("utf-8-sig").splitlines()
    assert probe_rejects[1:] == rejects[1:]
