"""Scale-out (issue #13): Dask and Spark builds against the single-process build of the same
rows, in one run, every result checked to be the single-process artefact.

    python bench/scale.py [--n 2000000] [--partitions 16] [--repeat 3] [--shards 2 8 32 64]
                          [--no-spark] [--out bench/results]

- single process: `BloomIndex.add` of the whole column (rayon on every core);
- Dask: a LocalCluster of 1 and of 2 worker processes, one thread each (RAYON_NUM_THREADS=1 in
  the workers, so each worker is one core), `pi_match.dask.build` with the capacity given;
- merge cost: S shards of one 64 MiB layout merged by `pi_match.dask`'s tree (split_every 8),
  in one process;
- Spark: `local[1]` and `local[2]` (skipped without Java or pyspark).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import pi_match
import pi_match.dask as pmd
from pi_match.synth import ric_numbers


def timed(f: Any, repeat: int) -> tuple[float, Any]:
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shards", type=int, nargs="+", default=[2, 8, 32, 64])
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    import dask.dataframe as dd
    import distributed

    tmp = tempfile.mkdtemp()
    key_path = os.path.join(tmp, "op.key")
    key = pi_match.Key.generate()
    key.save(key_path)
    ids = list(ric_numbers(np.random.default_rng(1), args.n))
    df = pd.DataFrame({"id": ids})
    col = pa.array(ids)
    res: dict[str, Any] = {"n": args.n, "partitions": args.partitions, "cpus": os.cpu_count()}

    def single() -> pi_match.BloomIndex:
        b = pi_match.BloomIndex(key, "cn_ric", capacity=args.n)
        b.add(col)
        return b

    t_single, want = timed(single, args.repeat)
    res["single_s"] = t_single
    ddf = dd.from_pandas(df, npartitions=args.partitions)
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None,
                                      env={"RAYON_NUM_THREADS": "1"}) as cluster:  # fmt: skip
            with distributed.Client(cluster):
                ddf_p = ddf.persist()  # the rows on the workers, as data on a cluster would be
                distributed.wait(ddf_p)
                t, art = timed(lambda d=ddf_p: pmd.build(d, key_path, {"cn_ric": "id"},
                                                         capacity=args.n), args.repeat)  # fmt: skip
                assert art.sections == [want], "the Dask build differs from the single one"
                res[f"dask_{workers}w_s"] = t
    merges = {}
    b64 = pi_match.BloomIndex(key, "cn_ric", capacity=10_000_000)  # 64 MiB at 1e-6
    for s in args.shards:
        shards = []
        per = max(args.n // s, 1)
        for i in range(s):
            b = pi_match.BloomIndex(key, "cn_ric", capacity=10_000_000)
            b.add(col[i * per : (i + 1) * per])
            shards.append((pi_match.Artefact([b]).to_bytes(), {}))
        assert b.size_bytes == b64.size_bytes

        def tree(shards: list[Any] = shards) -> Any:
            level = shards
            while len(level) > 1:
                level = [pmd._merge(key.id, *level[i : i + 8]) for i in range(0, len(level), 8)]
            return level[0]

        t, _ = timed(tree, 1)
        merges[s] = t
    res["merge_64MiB_s"] = merges
    res["index_bytes"] = b64.size_bytes
    if not args.no_spark and shutil.which("java"):
        from pyspark.sql import SparkSession

        import pi_match.spark as pms

        rows = [(v,) for v in ids]
        for cores in (1, 2):
            spark = (SparkSession.builder.master(f"local[{cores}]").appName("scale")
                     .config("spark.ui.enabled", "false")
                     .config("spark.executorEnv.RAYON_NUM_THREADS", "1").getOrCreate())  # fmt: skip
            spark.sparkContext.setLogLevel("ERROR")
            sdf = spark.createDataFrame(rows, "id string").repartition(args.partitions).cache()
            sdf.count()
            t, art = timed(lambda sdf=sdf: pms.build(sdf, key_path, {"cn_ric": "id"},
                                                     capacity=args.n), args.repeat)  # fmt: skip
            assert art.sections == [want], "the Spark build differs from the single one"
            res[f"spark_local{cores}_s"] = t
            spark.stop()
    shutil.rmtree(tmp)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scale.json"), "w") as f:
        json.dump(res, f, indent=1)
    n = args.n
    lines = [f"n = {n:,} ID numbers, {args.partitions} partitions, median of {args.repeat}, "
             f"{os.cpu_count()} cores; every result equal to the single-process index", "",
             "| build | s | rows/s |", "|---|---:|---:|",
             f"| single process (all cores) | {t_single:.2f} | {n / t_single:,.0f} |"]  # fmt: skip
    for k, label in (("dask_1w_s", "Dask, 1 worker × 1 core"), ("dask_2w_s", "Dask, 2 workers × 1 core"),
                     ("spark_local1_s", "Spark local[1]"), ("spark_local2_s", "Spark local[2]")):  # fmt: skip
        if k in res:
            lines.append(f"| {label} | {res[k]:.2f} | {n / res[k]:,.0f} |")
    lines += ["", f"- Dask 2 workers / 1 worker: {res['dask_1w_s'] / res['dask_2w_s']:.2f}x; "
              f"Dask 2 workers over the single process on the same cores: "
              f"{(res['dask_2w_s'] / t_single - 1) * 100:+.0f} %"]  # fmt: skip
    lines.append("- merging S shards of a 64 MiB index (tree of 8): " + ", ".join(
        f"{s}: {t:.2f} s" for s, t in merges.items()))  # fmt: skip
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "scale.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
