"""Fuzzing the input readers through `pi-match build` (issue #9 §4).

A deterministic mutation fuzzer: seed files of every text format (CSV, `----` dump, SQL dump,
JSON lines) and .xlsx are mutated — bytes flipped, inserted, deleted, duplicated; line ends,
quotes, separators, NULs, invalid and mixed encodings, SQL and JSON punctuation spliced in —
and each mutant is built by the real command line, in process. The contract on every run:
no traceback (the command returns 0, or 1 with one error line), no hang (a per-case alarm),
and on success the accounting identities hold in the manifest (records = rows + unreadable;
per field rows = valid + missing + rejected).

The budget is PI_MATCH_FUZZ_SECONDS (default 60, split over the formats); the sequence of
mutants is fixed by the seed, so a failure names a case that reruns the same. Long run:
`PI_MATCH_FUZZ_SECONDS=3600 python -m pytest tests/test_fuzz_readers.py -q`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import random
import signal
import time
import zipfile
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import pi_match
from pi_match.cli import main
from pi_match.synth import mobile_numbers, ric_numbers

BUDGET = float(os.environ.get("PI_MATCH_FUZZ_SECONDS", "60"))
CASE_TIMEOUT = 20.0
IDS = list(ric_numbers(np.random.default_rng(3), 60))
MOBS = list(mobile_numbers(np.random.default_rng(4), 60))

TOKENS = [
    b"\r", b"\n", b"\r\n", b"\n\n", b'"', b'""', b",", b"----", b" # ", b"|", b"\t", b"\x00",
    b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", "䶮".encode("gb18030"), "张三".encode(),
    "李四".encode("gb18030"), b"\x81", b"\xe4\xb8", b"'", b"''", b"\\'", b"(", b")", b"),(",
    b";", b"INSERT INTO t VALUES (", b"REPLACE INTO `users` (`b`,`a`) VALUES (", b"NULL",
    b"{", b"}", b"[", b"]", b'{"a":', b"1" * 40, b"1.10105E+17", b"110105198001070000",
    b"\\", b"-", b"\\N", b" ", "，".encode(), "\u3000".encode(), b"9" * 5000,
]  # fmt: skip


def seeds() -> dict[str, tuple[str, bytes]]:
    rows = list(zip(IDS, MOBS, strict=True))
    csv = "姓名,身份证号,手机\n" + "".join(f"客{i},{a},{b}\n" for i, (a, b) in enumerate(rows))
    dump = "".join(f"张{i}----{a}----{b}\r\n" for i, (a, b) in enumerate(rows))
    sql = (
        "CREATE TABLE `users` (\n  `name` varchar(9),\n  `idno` varchar(18),\n"
        "  `phone` varchar(11)\n);\n"
        + "".join(f"INSERT INTO `users` VALUES ('n{i}','{a}','{b}'),('m{i}','{a}','{b}');\n"
                  for i, (a, b) in enumerate(rows))
    )  # fmt: skip
    jsonl = "".join(json.dumps({"name": f"客{i}", "idno": a, "phone": b}, ensure_ascii=False)
                    + "\n" for i, (a, b) in enumerate(rows))  # fmt: skip
    return {
        "csv": ("a.csv", csv.encode()),
        "gb18030_dump": ("a.txt", dump.encode("gb18030")),
        "sql": ("a.sql", sql.encode()),
        "jsonl": ("a.jsonl", jsonl.encode()),
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        op = rng.randrange(6)
        at = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(at, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[at:at] = rng.choice(TOKENS)
        elif op == 2 and b:
            del b[at : at + rng.randrange(1, 40)]
        elif op == 3 and b:
            span = bytes(b[at : at + rng.randrange(1, 200)])
            b[at:at] = span * rng.randrange(1, 4)
        elif op == 4:
            del b[at:]  # truncation
        else:
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    return bytes(b)


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    def hang(*_: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_build(path: pathlib.Path, key: pathlib.Path, out: pathlib.Path, *extra: str) -> None:
    """Build `path` as a user would; fail the test on a traceback, a hang or bad accounting."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        alarm(CASE_TIMEOUT),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        code = main(["build", str(path), "--key", str(key), "-o", str(out), "--json", *extra])
    err = stderr.getvalue()
    assert "Traceback" not in err
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pi-match: error:"), err
        assert "internal error" not in err, err
        return
    assert code == 0, (code, err)
    summary = json.loads(stdout.getvalue())
    manifest = json.loads(pathlib.Path(f"{out}.manifest.json").read_text("utf-8"))
    for doc in (summary, manifest):
        acc = doc["accounting"]
        assert acc["records"] == acc["rows"] + acc["unreadable_rows"]
        assert acc["records"] == sum(i["records"] for i in doc["inputs"])
        for s in doc["sections"]:
            assert s["rows"] == s["valid"] + s["missing"] + s["rejected"] == acc["rows"]


def fuzz(
    tmp: pathlib.Path, name: str, make: Callable[[random.Random], bytes], suffix: str, share: float
) -> int:
    key = tmp / "k.key"
    if not key.exists():
        pi_match.Key.from_bytes(bytes(range(32))).save(key)
    rng = random.Random(f"pi_match-fuzz-{name}")
    deadline = time.monotonic() + BUDGET * share
    n = 0
    while time.monotonic() < deadline:
        path = tmp / f"case{suffix}"
        path.write_bytes(make(rng))
        extra = ["--field", "cn_ric=2"] if rng.random() < 0.3 else []
        try:
            run_build(path, key, tmp / "out.pmi", *extra)
        except AssertionError as e:
            keep = tmp / f"failing-{name}-{n}{suffix}"
            keep.write_bytes(path.read_bytes())
            raise AssertionError(f"{name} case {n} (kept as {keep}): {e}") from None
        n += 1
    return n


@pytest.mark.parametrize("fmt", list(seeds()))
def test_fuzz_text_readers(tmp_path: pathlib.Path, fmt: str) -> None:
    suffix_and_seed = seeds()[fmt]
    suffix = os.path.splitext(suffix_and_seed[0])[1]
    n = fuzz(tmp_path, fmt, lambda rng: mutate(suffix_and_seed[1], rng), suffix, 0.17)
    assert n >= 20  # the budget bought real work


def test_fuzz_xlsx_reader(tmp_path: pathlib.Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "手机"])
    for i, (a, b) in enumerate(zip(IDS, MOBS, strict=True)):
        ws.append([f"客{i}", a, int(b) if i % 7 == 0 else b])
    two = wb.create_sheet("二")
    two.append(["身份证号"])
    two.append([IDS[0]])
    seed = tmp_path / "seed.xlsx"
    wb.save(seed)
    parts = {}
    with zipfile.ZipFile(seed) as z:
        for i in z.infolist():
            parts[i.filename] = z.read(i.filename)

    def make(rng: random.Random) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in parts.items():
                if name.endswith(".xml") and rng.random() < 0.4:
                    data = mutate(data, rng)
                z.writestr(name, data)
        raw = out.getvalue()
        return mutate(raw, rng) if rng.random() < 0.2 else raw

    n = fuzz(tmp_path, "xlsx", make, ".xlsx", 0.32)
    assert n >= 10
