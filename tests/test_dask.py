"""Scale-out on Dask (issue #13): on a real LocalCluster of two worker processes, a build is
the single-process build of the same rows bit for bit, shards of another key or kind are
refused, empty and skewed partitions are fine, and probe finds exactly the rows
`contains` finds."""

from __future__ import annotations

import contextlib
import os
import pathlib

import numpy as np
import pytest

import pi_match
from pi_match.synth import mobile_numbers, ric_numbers

dd = pytest.importorskip("dask.dataframe", reason="the dask extra is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
pd = pytest.importorskip("pandas")
import pi_match.dask as pmd  # noqa: E402

N = 20_000


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pathlib.Path]:
    rng = np.random.default_rng(5)
    ids = list(ric_numbers(rng, N))
    phones = list(mobile_numbers(rng, N))
    ids[::97] = ["1.10105E+17"] * len(ids[::97])  # rejected
    phones[::89] = [None] * len(phones[::89])  # missing
    ids[5:400] = ids[1000:1395]  # repeats across partitions
    df = pd.DataFrame({"id": ids, "phone": phones, "name": [f"某{i}" for i in range(N)]})
    key_path = tmp_path_factory.mktemp("k") / "op.key"
    pi_match.Key.from_bytes(bytes(range(32))).save(key_path)
    return df, key_path


def skewed(df: pd.DataFrame) -> dd.DataFrame:
    """Partitions of very different sizes, one of them empty."""
    from dask import delayed

    cuts = [0, 10, 10, 2_000, 2_001, 15_000, N]
    parts = [delayed(df.iloc[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return dd.from_delayed(parts, meta=df.iloc[:0])


def strip_created(b: bytes) -> bytes:
    # the header's created time (bytes 32..40) and the checksum over it (56..64) differ
    return b[:32] + b[40:56] + b[64:]


def test_a_build_is_the_single_process_build_bit_for_bit(client, data) -> None:  # type: ignore[no-untyped-def]
    df, key_path = data
    key = pi_match.Key.load(key_path)
    acc: dict = {}
    art = pmd.build(skewed(df), key_path, {"cn_ric": "id", "cn_mobile": "phone"}, exact=True,
                    split_every=2, accounting=acc)  # fmt: skip
    want = []
    for kind, col in (("cn_ric", "id"), ("cn_mobile", "phone")):
        values = df[col].tolist()
        cap = pi_match._core.count_valid(kind, values)
        assert acc["capacity"][kind] == cap
        b, t = pi_match.BloomIndex(key, kind, capacity=cap), pi_match.TagSet(key, kind)
        b.add(values, tag_set=t)
        want += [b, t]
        st = acc["sections"][kind]
        assert st["rows"] == N == st["valid"] + st["missing"] + st["rejected"]
    assert [type(s).__name__ for s in art] == ["BloomIndex", "TagSet"] * 2
    assert art.sections == want
    assert strip_created(art.to_bytes()) == strip_created(pi_match.Artefact(want).to_bytes())
    assert acc["sections"]["cn_ric"]["rejected_by_reason"] == {"excel_scientific": len(df.id[::97])}


def test_shards_of_another_key_or_kind_are_refused(data) -> None:  # type: ignore[no-untyped-def]
    df, key_path = data
    key = pi_match.Key.load(key_path)
    other = pi_match.Key.from_bytes(bytes(32))
    mine = pmd._shard(df.iloc[:100], pmd._Spec(str(key_path), {"cn_ric": "id"}, {"cn_ric": 100}))
    o = pi_match.BloomIndex(other, "cn_ric", capacity=100)
    theirs = (pi_match.Artefact([o]).to_bytes(), mine[1])
    with pytest.raises(pi_match.KeyMismatchError, match="shard 2"):
        pmd._merge(key.id, mine, theirs)
    spec = pmd._Spec(str(key_path), {"cn_mobile": "phone"}, {"cn_mobile": 100})
    phones = pmd._shard(df.iloc[:100], spec)
    with pytest.raises(pi_match.IncompatibleError, match="shard 2 holds other sections"):
        pmd._merge(key.id, mine, phones)
    with pytest.raises(pi_match.PiMatchError, match="no column 'nope'"):
        pmd._shard(df.iloc[:10], pmd._Spec(str(key_path), {"cn_ric": "nope"}, {"cn_ric": 10}))


def test_probe_finds_the_rows_contains_finds(client, data, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    df, key_path = data
    key = pi_match.Key.load(key_path)
    theirs = pi_match.TagSet(key, "cn_mobile")
    theirs.add(df.phone.iloc[::3].tolist())
    path = tmp_path / "theirs.pmi"
    pi_match.Artefact([theirs]).save(path)
    got = pmd.probe(skewed(df), path, key_path, {"cn_mobile": "phone"}).compute()
    want = np.flatnonzero(theirs.contains(df.phone.tolist(), reasons=True)[0])
    assert sorted(got["row"].tolist()) == want.tolist()
    assert (got["kind"] == "cn_mobile").all()
    assert got.set_index("row")["name"].sort_index().tolist() == df.name.iloc[want].tolist()


def test_a_worker_killed_mid_build_loses_nothing(client, data) -> None:  # type: ignore[no-untyped-def]
    """A worker process dies while shards are being built: Dask recomputes its tasks on the
    other (a lost chain is rebuilt from its first partition, the key is read from its path), and
    the artefact is the one an
    undisturbed build makes — never a silently partial one."""
    import threading
    import time

    df, key_path = data
    big = pd.concat([df] * 6, ignore_index=True)
    ddf = dd.from_pandas(big, npartitions=48)
    fields = {"cn_ric": "id"}
    want = pmd.build(ddf, key_path, fields, capacity=len(big))
    victim = sorted(client.scheduler_info()["workers"])[0]

    def kill() -> None:
        time.sleep(0.3)
        # the worker dies before it can answer: the call itself fails, as it should
        with contextlib.suppress(Exception):
            client.run(os._exit, 1, workers=[victim])

    t = threading.Thread(target=kill)
    t.start()
    acc: dict = {}
    got = pmd.build(ddf, key_path, fields, capacity=len(big), accounting=acc)
    t.join()
    assert got.sections == want.sections
    assert acc["sections"]["cn_ric"]["rows"] == len(big)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]  # it did die (and was replaced)


def test_a_chain_survives_moving_between_workers_and_never_adds_a_partition_twice(data) -> None:  # type: ignore[no-untyped-def]
    """A chain's shard pickled to another worker (pickles carry no key) takes the key again
    from its path; a link run again on the shard it already changed is refused, not added
    twice; one shard per partition (`shards=npartitions`) gives the same artefact."""
    import pickle

    df, key_path = data
    spec = pmd._Spec(str(key_path), {"cn_ric": "id"}, {"cn_ric": N}, exact=True)
    s = pmd._extend(None, df.iloc[:5000], 0, spec)
    s = pmd._extend(pickle.loads(pickle.dumps(s)), df.iloc[5000:], 1, spec)
    key = pi_match.Key.load(key_path)
    b, t = pi_match.BloomIndex(key, "cn_ric", capacity=N), pi_match.TagSet(key, "cn_ric")
    b.add(df.id.tolist(), tag_set=t)
    assert s.sections == [b, t]
    assert s.stats["cn_ric"]["rows"] == N and s.stats["cn_ric"]["partitions"] == 2
    with pytest.raises(pi_match.PiMatchError, match="partition 1 reached its shard twice"):
        pmd._extend(s, df.iloc[5000:], 1, spec)
    ddf = dd.from_pandas(df, npartitions=5)
    one = pmd.build(ddf, key_path, {"cn_ric": "id"}, capacity=N, shards=1)
    each = pmd.build(ddf, key_path, {"cn_ric": "id"}, capacity=N, shards=5, split_every=2)
    assert one.sections == each.sections == [b]
    with pytest.raises(pi_match.PiMatchError, match="shards must be at least 1"):
        pmd.build(ddf, key_path, {"cn_ric": "id"}, shards=0)


def test_merging_shard_bytes_checks_every_shard(data) -> None:  # type: ignore[no-untyped-def]
    """The Rust merge of shard bytes: damaged bytes and a bad key id are refused, naming the
    shard; the merge of one shard is that shard."""
    df, key_path = data
    key = pi_match.Key.load(key_path)
    spec = pmd._Spec(str(key_path), {"cn_ric": "id"}, {"cn_ric": 100}, exact=True)
    a, _ = pmd._shard(df.iloc[:100], spec)
    damaged = bytearray(a)
    damaged[-70] ^= 1
    with pytest.raises(pi_match.FormatError, match="shard 2: .*checksum"):
        pi_match._core.merge_shards([a, bytes(damaged)])
    with pytest.raises(ValueError, match="16 hex digits"):
        pi_match._core.merge_shards([a], key_id="xyz")
    one = pi_match._core.merge_shards([a], key_id=key.id)
    assert strip_created(one) == strip_created(a)


def test_the_cli_build_on_a_cluster_writes_the_same_files(
    client, tmp_path: pathlib.Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """`pi-match build --scheduler ADDRESS` (and `--workers N`, a local cluster): the inputs
    are read and tagged on the workers by the CLI's own readers and Builder, and the artefact
    (but for its creation time), the rejects file and the summary are a single process's —
    GB18030 input, unreadable records, Excel damage decided per file included."""
    import json

    from pi_match.cli import main

    rng = np.random.default_rng(11)
    paths = []
    for j in range(3):
        ids, phones = list(ric_numbers(rng, 2000)), list(mobile_numbers(rng, 2000))
        if j == 1:  # an Excel-damaged column: its rounded-looking valid numbers are rejected
            ids[::40] = ["1.10105E+17"] * len(ids[::40])
        ids[3] = "110105194912310000" if j == 1 else "11010519491231002X"
        p = tmp_path / f"case{j}.csv"
        with open(p, "w", encoding="gb18030") as f:
            f.write("姓名,身份证号,手机\n")
            f.writelines(
                f"张{i},{a},{b}\n" for i, (a, b) in enumerate(zip(ids, phones, strict=True))
            )
            f.write('坏,"unterminated\n')
        paths.append(str(p))
    key = tmp_path / "op.key"
    pi_match.Key.generate().save(key)
    runs = {}
    for name, extra in (("one", []), ("sched", ["--scheduler", client.scheduler.address]),
                        ("local", ["--workers", "2"])):  # fmt: skip
        out = tmp_path / f"{name}.pmi"
        assert main(["build", *paths, "--key", str(key), "-o", str(out), "--exact", "--json",
                     *extra]) == 0  # fmt: skip
        summary = json.loads(capsys.readouterr().out)
        runs[name] = (strip_created(out.read_bytes()),
                      (tmp_path / f"{name}.pmi.rejects.csv").read_bytes(), summary)  # fmt: skip
    one = runs["one"]
    assert one[2]["rejected_rows"] > 50 and one[2]["accounting"]["unreadable_rows"] == 3
    for name in ("sched", "local"):
        art, rejects, summary = runs[name]
        assert art == one[0], name
        assert rejects == one[1], name
        for k in ("sections", "inputs", "accounting", "encoding", "capacity", "rejected_rows"):
            assert summary[k] == one[2][k], (name, k)


def test_cluster_options_are_checked(tmp_path: pathlib.Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from pi_match.cli import main

    p = tmp_path / "a.csv"
    p.write_text("身份证号\n11010519491231002X\n", encoding="utf-8")
    key = tmp_path / "op.key"
    pi_match.Key.generate().save(key)
    base = ["build", str(p), "--key", str(key), "-o", str(tmp_path / "a.pmi")]
    with pytest.raises(SystemExit):
        main([*base, "--workers", "0"])
    with pytest.raises(SystemExit):
        main([*base, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "a.pmi").exists()


def test_read_gives_every_record_and_build_accounts_for_each(client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`read` of GB18030 files by the CLI's readers, one partition per file: unreadable
    records are rows (with `_reason`), never values; `build` of it counts records = rows used +
    unreadable and per kind rows = valid + missing + rejected, and writes every reject once —
    the rows a single-process `pi-match build` of the same files rejects."""
    import csv
    import json

    from pi_match.cli import main

    rng = np.random.default_rng(12)
    paths = []
    for j in range(3):
        ids, phones = list(ric_numbers(rng, 1500)), list(mobile_numbers(rng, 1500))
        ids[10] = "11010519491231002Y"  # bad check character
        phones[20] = ""  # missing
        p = tmp_path / f"r{j}.csv"
        with open(p, "w", encoding="gb18030") as f:
            f.write("姓名,身份证号,手机\n")
            rows = enumerate(zip(ids, phones, strict=True))
            f.writelines(f"李{i},{a},{b}\n" for i, (a, b) in rows)
            f.write('坏,"unterminated\n')
        paths.append(str(p))
    key = tmp_path / "op.key"
    pi_match.Key.from_bytes(bytes(range(32))).save(key)
    ddf = pmd.read(paths)
    assert ddf.npartitions == 3
    frame = ddf.compute()
    assert len(frame) == 3 * 1501 and frame["_reason"].notna().sum() == 3
    assert frame["_file"].iloc[0] == paths[0] and frame["_line"].iloc[0] == 2
    acc: dict = {}
    rejects = tmp_path / "dask.rejects.csv"
    fields = {"cn_ric": "身份证号", "cn_mobile": "手机"}
    art = pmd.build(ddf, key, fields, capacity=4500, exact=True, accounting=acc, rejects=rejects)
    assert acc["records"] == 3 * 1501 and acc["unreadable_rows"] == 3 and acc["rows"] == 4500
    for st in acc["sections"].values():
        assert st["rows"] == st["valid"] + st["missing"] + st["rejected"] == 4500
    out = tmp_path / "one.pmi"
    assert main(["build", *paths, "--key", str(key), "-o", str(out), "--exact", "--json",
                 "--capacity", "4500"]) == 0  # fmt: skip
    single = pi_match.Artefact.open(out)
    assert art.sections == single.sections

    def rows_of(path: pathlib.Path) -> list[tuple[str, ...]]:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return sorted((r["file"], r["line"], r["reason"], r["raw"]) for r in csv.DictReader(f))

    assert rows_of(rejects) == rows_of(tmp_path / "one.pmi.rejects.csv")
    assert len(rows_of(rejects)) == 3 + 3  # a bad ID and an unreadable record per file
    assert oct(rejects.stat().st_mode & 0o777) == oct(0o600)
    json.dumps(acc)  # the accounting is plain JSON


def test_the_rejects_file_is_never_an_input_or_the_key_and_a_missing_key_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`build(rejects=)` refuses the key file up front and an input file of `read` before
    writing anything; a key a worker cannot read says which path and what to do."""
    import dask

    p = tmp_path / "in.csv"
    p.write_text("手机\n13800000001\n12345\n", encoding="utf-8")
    key = tmp_path / "op.key"
    pi_match.Key.generate().save(key)
    before = p.read_bytes(), key.read_bytes()
    fields = {"cn_mobile": "手机"}
    with dask.config.set(scheduler="sync"):
        for target in (key, p):
            with pytest.raises(pi_match.PiMatchError, match="refusing to write the rejects file"):
                pmd.build(pmd.read([str(p)]), key, fields, capacity=10, rejects=target)
        assert (p.read_bytes(), key.read_bytes()) == before
        with pytest.raises(pi_match.PiMatchError, match="cannot be read on .*shared?"):
            pmd._load_key(str(tmp_path / "nowhere.key"))
        with pytest.raises(pi_match.PiMatchError, match="not found on .*share"):
            gone = [(str(tmp_path / "gone.csv"), "gone.csv")]
            pmd._build_group(gone, str(key), [("cn_mobile", "手机")], 10, 1e-6, False, None,
                             None, "hmac-sha256")  # fmt: skip


def test_rejects_come_back_as_text_in_the_order_rows_do(
    client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """`build_files(on_reject_rows=)`: a batch's rejected values come back as the rejects
    file's text, among the unreadable records `on_reject` gets, in the same order, naming the
    files as the caller did (relative paths here) — what the row-by-row form writes."""
    import csv
    import io

    from pi_match.io import ReadOptions

    rng = np.random.default_rng(21)
    monkeypatch.chdir(tmp_path)
    names = []
    for j in range(3):
        ids = list(ric_numbers(rng, 300))
        ids[::7] = ['x"y', "1,2", "12345"] * (len(ids[::7]) // 3) + ["1"] * (len(ids[::7]) % 3)
        with open(f"c{j},.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["姓名", "身份证号"])
            w.writerows([f"某{k}", i] for k, i in enumerate(ids))
            f.write('坏,"unterminated\n')
        names.append(f"c{j},.csv")
    key = tmp_path / "k.key"
    pi_match.Key.generate().save(key)
    fields = [("cn_ric", "身份证号")]

    def run(text: bool) -> str:
        buf, batches = io.StringIO(newline=""), []
        w = csv.writer(buf)

        def rows_text(t: str, n: int) -> None:
            batches.append(n)
            buf.write(t)

        pmd.build_files(names, key, fields, capacity=1000, options=ReadOptions(),
                        on_reject=w.writerow, shards=3,
                        on_reject_rows=rows_text if text else None)  # fmt: skip
        assert (len(batches) >= 3) == text  # (a batch of text a file, at least)
        return buf.getvalue()

    by_rows, by_text = run(False), run(True)
    assert by_rows.count("\r\n") > 120 and '"c0,.csv",2,' in by_rows and ',"x""y"\r' in by_rows
    assert "field_count" in by_rows or "unterminated" in by_rows  # (the unreadable records)
    assert by_text == by_rows
