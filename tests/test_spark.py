"""Scale-out on Spark (issue #13) on `local[2]`: a build is the single-process build of the
same rows bit for bit, and probe finds the rows `contains` finds."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

import pi_match
from pi_match.synth import mobile_numbers, ric_numbers

if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime, and none is installed", allow_module_level=True)
pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")
import pi_match.spark as pms  # noqa: E402

N = 12_000


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    from pyspark.sql import SparkSession

    s = (SparkSession.builder.master("local[2]").appName("pi_match-tests")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
         .getOrCreate())  # fmt: skip
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(9)
    ids = list(ric_numbers(rng, N))
    phones = list(mobile_numbers(rng, N))
    ids[::50] = ["-"] * len(ids[::50])
    phones[::71] = ["12345"] * len(phones[::71])
    key_path = tmp_path_factory.mktemp("k") / "op.key"
    pi_match.Key.from_bytes(bytes(range(32))).save(key_path)
    rows = [(i, a, b) for i, (a, b) in enumerate(zip(ids, phones, strict=True))]
    return rows, key_path


def test_a_spark_build_is_the_single_process_build(spark, data) -> None:  # type: ignore[no-untyped-def]
    rows, key_path = data
    df = spark.createDataFrame(rows, "pos long, id string, phone string").repartition(5)
    acc: dict = {}
    art = pms.build(df, key_path, {"cn_ric": "id", "cn_mobile": "phone"}, exact=True,
                    accounting=acc)  # fmt: skip
    key = pi_match.Key.load(key_path)
    want = []
    for kind, i in (("cn_ric", 1), ("cn_mobile", 2)):
        values = [r[i] for r in rows]
        cap = pi_match._core.count_valid(kind, values)
        b, t = pi_match.BloomIndex(key, kind, capacity=cap), pi_match.TagSet(key, kind)
        b.add(values, tag_set=t)
        want += [b, t]
        st = acc["sections"][kind]
        assert st["rows"] == N == st["valid"] + st["missing"] + st["rejected"]
    assert art.sections == want


def test_spark_probe(spark, data, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    rows, key_path = data
    key = pi_match.Key.load(key_path)
    theirs = pi_match.TagSet(key, "cn_ric")
    theirs.add([r[1] for r in rows[::4]])
    path = tmp_path / "t.pmi"
    pi_match.Artefact([theirs]).save(path)
    df = spark.createDataFrame(rows, "pos long, id string, phone string").repartition(3)
    got = pms.probe(df, path, key_path, {"cn_ric": "id"}, row_column="pos").collect()
    want = np.flatnonzero(theirs.contains([r[1] for r in rows], reasons=True)[0]).tolist()
    assert sorted(r["row"] for r in got) == want
    assert {r["kind"] for r in got} == {"cn_ric"}
