"""Scale-out (issue #13): Dask and Spark builds against the single-process build of the same
rows, in one run, every result checked to be the single-process artefact.

    python bench/scale.py [--n 4000000] [--partitions 16] [--repeat 3]
                          [--shards 2 8 32 64 128 256] [--shard-mib 16] [--big-gib 1]
                          [--no-spark] [--out bench/results]

- single process: `BloomIndex.add` of the whole column (rayon on every core);
- Dask: a LocalCluster of 1 and of 2 worker processes, one thread each (RAYON_NUM_THREADS=1 in
  the workers, so each worker is one core), `pi_match.dask.build` with the capacity given;
- worker peak memory (VmHWM of each worker process) against one shard plus one partition;
- merge cost: S shards of one `--shard-mib` layout merged by `pi_match.dask`'s tree
  (split_every 8) in one process, every result checked against one index of all the values;
  and one 8-way merge of `--big-gib` shards — one node of the tree for a 1 GiB index;
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


def peak_rss() -> int:
    """This process's peak resident memory (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def capacity_for(size: int, fpr: float = 1e-6) -> int:
    """The largest capacity whose index at `fpr` is at most `size` bytes."""
    lo, hi = 1, size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pi_match._core.plan_layout(mid, fpr)[0] * 32 <= size:
            lo = mid
        else:
            hi = mid - 1
    return lo


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
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shards", type=int, nargs="+", default=[2, 8, 32, 64, 128, 256])
    ap.add_argument("--shard-mib", type=int, default=16)
    ap.add_argument("--big-gib", type=float, default=1.0)
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
            with distributed.Client(cluster) as client:
                ddf_p = ddf.persist()  # the rows on the workers, as data on a cluster would be
                distributed.wait(ddf_p)
                before = client.run(peak_rss)  # interpreter, Dask and the rows it holds
                t, art = timed(lambda d=ddf_p: pmd.build(d, key_path, {"cn_ric": "id"},
                                                         capacity=args.n), args.repeat)  # fmt: skip
                assert art.sections == [want], "the Dask build differs from the single one"
                res[f"dask_{workers}w_s"] = t
                if workers == 2:
                    peaks = client.run(peak_rss)
                    res["worker_peak_mib"] = max(peaks.values()) / 2**20
                    res["worker_build_mib"] = max(peaks[w] - before[w] for w in peaks) / 2**20
                    res["partition_mib"] = (
                        ddf_p.partitions[0].memory_usage(deep=True).sum().compute() / 2**20
                    )
    merges = {}
    cap = capacity_for(args.shard_mib * 2**20)
    for s in args.shards:
        shards, per = [], max(args.n // s, 1)
        for i in range(s):
            b = pi_match.BloomIndex(key, "cn_ric", capacity=cap)
            b.add(col[i * per : (i + 1) * per])
            shards.append((pi_match.Artefact([b]).to_bytes(), {}))
        whole = pi_match.BloomIndex(key, "cn_ric", capacity=cap)
        whole.add(col[: per * s])

        def tree(shards: list[Any] = shards) -> Any:
            level = shards
            while len(level) > 1:
                level = [pmd._merge(key.id, *level[i : i + 8]) for i in range(0, len(level), 8)]
            return level[0]

        t, top = timed(tree, 1)
        assert pi_match.Artefact.from_bytes(top[0]).sections == [whole], "merge differs"
        merges[s] = t
        del shards, top
    res["merge_s"] = merges
    res["shard_bytes"] = whole.size_bytes
    # One node of the tree for a big index: 8 shards of --big-gib merged into one.
    big_cap = capacity_for(int(args.big_gib * 2**30))
    bigs = []
    for i in range(8):
        b = pi_match.BloomIndex(key, "cn_ric", capacity=big_cap)
        b.add(col[i * 1000 : (i + 1) * 1000])
        bigs.append(pi_match.Artefact([b]).to_bytes())
        del b
    t0 = time.perf_counter()
    merged = pi_match._core.merge_shards(bigs, key_id=key.id)
    res["merge8_big_s"] = time.perf_counter() - t0
    res["big_bytes"] = len(bigs[0])
    check = pi_match.Artefact.from_bytes(merged, key=key).sections[0]
    assert check.items_added == 8000 and check.contains(ids[:8000]).all(), "big merge differs"
    del bigs, merged, check
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
    lines.append(f"- merging S shards of a {res['shard_bytes'] / 2**20:.0f} MiB index (tree of 8, "
                 "one process): " + ", ".join(f"{s}: {t:.2f} s" for s, t in merges.items()))  # fmt: skip
    lines.append(f"- one 8-way merge of {res['big_bytes'] / 2**30:.2f} GiB shards: "
                 f"{res['merge8_big_s']:.2f} s "
                 f"({8 * res['big_bytes'] / res['merge8_big_s'] / 2**30:.1f} GiB/s of shards)")  # fmt: skip
    if "worker_peak_mib" in res:
        lines.append(f"- worker peak memory {res['worker_peak_mib']:.0f} MiB, of which the build "
                     f"added {res['worker_build_mib']:.0f} MiB over the rows it holds; one shard "
                     f"{want.size_bytes / 2**20:.0f} MiB + one partition "
                     f"{res['partition_mib']:.0f} MiB")  # fmt: skip
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "scale.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
