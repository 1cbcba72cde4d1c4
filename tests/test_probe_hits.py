"""The hits file of `pi-match probe`: one Rust call a batch (`_core.csv_rows`) writes what
Python's `csv.writer` wrote row by row, byte for byte, and every matching row is in it."""

from __future__ import annotations

import csv
import io
import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pi_match import Key, _core
from pi_match.build import Builder, Progress, open_inputs
from pi_match.cli import main
from pi_match.io import ReadOptions
from pi_match.synth import mobile_numbers, ric_numbers

# Text with everything that makes csv.writer quote (`,` `"` CR LF), what it leaves alone, and
# characters beyond the BMP.
TEXT = st.text(alphabet=st.sampled_from(list(',"\r\n \t;x9张三\U0001f600\\')), max_size=8)
VALUE = st.one_of(st.none(), TEXT, st.binary(max_size=8), TEXT.map(lambda s: s.encode("utf-8")))


def by_python(lines: list[int], labels: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    for line, label, row in zip(lines, labels, rows, strict=True):
        vals = [
            None if v is None else v.decode("utf-8", "backslashreplace")
            if isinstance(v, bytes) else v
            for v in row
        ]  # fmt: skip
        w.writerow([line, label, *vals])
    return buf.getvalue()


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 6).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n),
            st.lists(st.lists(VALUE, min_size=n, max_size=n), min_size=1, max_size=3),
        )
    ),
    st.lists(TEXT, min_size=1, max_size=3),
    st.sampled_from(["binary", "large_binary", "string", "large_string", "chunked"]),
    st.randoms(use_true_random=False),
)
def test_rows_are_what_csv_writer_writes(data, labels, arrow_type, rnd) -> None:  # type: ignore[no-untyped-def]
    lines, columns = data
    label_at = [rnd.randrange(len(labels)) for _ in lines]
    if arrow_type in ("string", "large_string"):  # text columns hold text
        columns = [
            [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v for v in c]
            for c in columns
        ]
    else:
        columns = [[v.encode("utf-8") if isinstance(v, str) else v for v in c] for c in columns]
    if arrow_type == "chunked":
        cut = len(lines) // 2
        arrays = [pa.chunked_array([c[:cut], c[cut:]], pa.large_binary()) for c in columns]
    else:
        arrays = [pa.array(c, getattr(pa, arrow_type)()) for c in columns]
    got = _core.csv_rows(np.array(lines, dtype=np.uint64), np.array(label_at, dtype=np.uint32),
                         labels, arrays)  # fmt: skip
    want = by_python(
        lines, [labels[i] for i in label_at], [list(r) for r in zip(*columns, strict=True)]
    )
    assert got == want


def test_rows_refuse_what_they_cannot_format() -> None:
    one = np.array([1], dtype=np.uint64)
    with pytest.raises(ValueError, match="label 3 of 1"):
        _core.csv_rows(one, np.array([3], dtype=np.uint32), ["x"], [pa.array([b"a"])])
    with pytest.raises(ValueError, match="column 0 has 2 values for 1 rows"):
        _core.csv_rows(one, np.zeros(1, dtype=np.uint32), ["x"], [pa.array([b"a", b"b"])])
    with pytest.raises(TypeError, match="cannot hold identifiers"):
        _core.csv_rows(one, np.zeros(1, dtype=np.uint32), ["x"], [pa.array([5])])


IDS = list(ric_numbers(np.random.default_rng(11), 60))
MOBS = list(mobile_numbers(np.random.default_rng(12), 60))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_probe_writes_every_matching_row_with_what_matched(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    key = tmp_path / "k.key"
    assert main(["keygen", "-o", str(key)]) == 0
    capsys.readouterr()
    theirs = tmp_path / "theirs.csv"
    # Theirs: IDs 0-29 and mobiles 15-44; ours: rows 0-59 (both kinds), so rows 0-14 match
    # by ID only, 15-29 by both, 30-44 by mobile only, 45-59 not at all.
    theirs.write_text(
        "身份证号,手机\n" + "".join(f"{IDS[i]},{MOBS[i + 15]}\n" for i in range(30)), "utf-8"
    )
    a = tmp_path / "a.pmi"
    run(capsys, "build", str(theirs), "--key", str(key), "-o", str(a), "--exact",
        "--field", "cn_ric=身份证号", "--field", "cn_mobile=手机")  # fmt: skip
    names = [f'张,"{i}"' if i % 7 == 0 else f"李{i}" for i in range(60)]  # quoted fields too
    if fmt == "csv":
        mine = tmp_path / "mine.csv"
        with open(mine, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["姓名", "身份证号", "手机"])
            w.writerows([names[i], IDS[i], MOBS[i]] for i in range(60))
        first_line, extra = 2, []
    else:  # a column of numbers, which the Parquet reader hands over as text
        mine = tmp_path / "mine.parquet"
        pq.write_table(pa.table({"姓名": names, "身份证号": IDS, "手机": MOBS,
                                 "年龄": list(range(60))}), mine)  # fmt: skip
        first_line, extra = 1, ["年龄"]
    hits = tmp_path / "hits.csv"
    out = run(capsys, "probe", str(mine), "--index", str(a), "--key", str(key), "-o", str(hits),
              "--field", "cn_ric=身份证号", "--field", "cn_mobile=手机")  # fmt: skip
    assert (out["rows"], out["hits"]) == (60, 45)
    got = hits.read_bytes().decode("utf-8-sig")
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["line", "matched", "姓名", "身份证号", "手机", *extra])
    for i in range(45):
        label = "cn_ric" if i < 15 else "cn_ric+cn_mobile" if i < 30 else "cn_mobile"
        w.writerow([i + first_line, label, names[i], IDS[i], MOBS[i], *([i] if extra else [])])
    assert got == buf.getvalue()


def test_a_builds_rejects_rows_are_what_the_row_writer_wrote(tmp_path: pathlib.Path) -> None:
    # The same source fed twice: rejects taken row by row (`on_reject`, as a cluster build
    # does) and a batch at a time (`on_reject_rows`, the single-process build); the text of
    # the second is what csv.writer makes of the first, in the same order.
    odd = ["12345", 'x"y', "1,2", "张三", " 1101", "11010519491231002X9", "a\\b"]
    p = tmp_path / "a,b.csv"
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["身份证号", "手机"])
        w.writerows([odd[i % 7] if i % 3 else IDS[i], MOBS[i] if i % 4 else odd[i % 5]]
                    for i in range(60))  # fmt: skip
    fields = [("cn_ric", "身份证号"), ("cn_mobile", "手机")]
    key = Key.generate()

    def run(bulk: bool) -> tuple[str, int, dict[str, object]]:
        rows: list[list[object]] = []
        chunks: list[tuple[str, int]] = []

        def text_rows(t: str, n: int) -> None:
            chunks.append((t, n))

        b = Builder(key, fields, capacity=100, fpr=1e-6, exact=False, on_reject=rows.append,
                    on_reject_rows=text_rows if bulk else None)  # fmt: skip
        b.read_all(open_inputs([str(p)], ReadOptions()), Progress(quiet=True))
        assert not bulk or (chunks and not rows)  # (no record is unreadable here)
        buf = io.StringIO(newline="")
        csv.writer(buf).writerows(rows)
        text = buf.getvalue() + "".join(t for t, _ in chunks)
        stats = {k: s.to_dict() for k, s in b.stats.items()}
        return text, len(rows) + sum(n for _, n in chunks), stats

    by_rows, by_batch = run(False), run(True)
    assert by_rows[1] > 30 and '"x""y"' in by_rows[0] and '"1,2"' in by_rows[0]
    assert by_batch == by_rows


def test_a_probes_rejects_are_the_builds_rejects(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The values a probe cannot look up are those a build rejects, for the same reasons, in
    # the same order and format: written a batch at a time, then the unreadable records.
    odd = ["12345", 'x"y', "1,2", "张三", "a\\b"]
    p = tmp_path / "mine,1.csv"
    body = "".join(f"{odd[i % 5] if i % 3 else IDS[i]},{MOBS[i]}\n" for i in range(40))
    p.write_text('身份证号,手机\n"x,y",1,extra\n' + body.replace("1,2,", '"1,2",'), "utf-8")
    key = tmp_path / "k.key"
    assert main(["keygen", "-o", str(key)]) == 0
    capsys.readouterr()
    a = tmp_path / "a.pmi"
    run(capsys, "build", str(p), "--key", str(key), "-o", str(a), "--field", "cn_ric=身份证号")
    built = (tmp_path / "a.pmi.rejects.csv").read_bytes()
    out = run(capsys, "probe", str(p), "--index", str(a), "--key", str(key),
              "--field", "cn_ric=身份证号", "--rejects", str(tmp_path / "r.csv"))  # fmt: skip
    probed = (tmp_path / "r.csv").read_bytes()
    assert out["rejected_values"] == out["sections"][0]["rejected"] + 1 > 20
    assert probed == built and b'"x""y"' in probed and b'"1,2"' in probed
