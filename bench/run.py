"""pi_match against its peers, on the same data in one process (issue #5).

    python bench/run.py [--n 10000000] [--repeat 3] [--big-gib 1] [--out bench/results]

Data: n valid 18-character ID numbers (set A) and a set B of n/2 items of which n/4 are in A.
Each row: items/s (median of --repeat rounds; every case runs once per round, round-robin, so
all share the machine's noise), ns/item, bytes/item of the structure, measured false-positive
rate where it applies, and whether the answer was right. Slow pure-Python peers run on a
subset (--slow-n) and are marked so; their rate is per item all the same.

Peers: rbloom (unkeyed `update`/`in`, and keyed with a blake2b `hash_func`), fastbloom-rs
(`add_str_batch`/`contains_str_batch`, and keyed with HMAC digests computed in Python),
pybloomfiltermmap3 (`update`/`in`), a pure-Python `hmac` loop, and the PRF-only Rust floor
(HMAC-SHA256 of the raw bytes, nothing else).
Writes results.json and results.md to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

import pi_match
from pi_match import _core
from pi_match.synth import ric_numbers

FPR = 1e-6


CHILD = """
import sys, pyarrow as pa, pi_match
def status(k):
    return next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith(k))
col = pa.ipc.open_file(sys.argv[1]).read_all().column(0).combine_chunks()
key = pi_match.Key.load(sys.argv[2])
open("/proc/self/clear_refs", "w").write("5")  # peak RSS := current RSS
base = status("VmRSS:")
idx = pi_match.BloomIndex(key, "cn_ric", capacity=len(col), fpr=1e-6)
idx.add(col)
print(status("VmHWM:") - base, idx.size_bytes)
"""


def build_peak_in_child(values: pa.Array, key: pi_match.Key) -> tuple[int, int]:
    """Peak RSS growth of a build from an Arrow array, over the process's high-water mark with
    the input already loaded (a fresh process, so nothing else is in the number)."""
    import subprocess

    with tempfile.TemporaryDirectory() as d:
        arrow, key_path = os.path.join(d, "in.arrow"), os.path.join(d, "k.key")
        table = pa.table({"v": values})
        with pa.ipc.new_file(arrow, table.schema) as w:
            w.write_table(table)
        key.save(key_path)
        out = subprocess.run([sys.executable, "-c", CHILD, arrow, key_path],
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return int(out[0]), int(out[1])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--slow-n", type=int, default=300_000, help="items for pure-Python peers")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-gib", type=float, default=1.0, help="size of the union/load indices")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    n = args.n
    rng = np.random.default_rng(2018)
    a = np.unique(ric_numbers(rng, int(n * 1.02)))[:n]
    rng.shuffle(a)
    fresh = np.setdiff1d(ric_numbers(rng, n), a)[: n // 4]
    b = np.concatenate([a[: n // 4], fresh])
    shared = n // 4
    a_list, b_list = a.tolist(), b.tolist()
    a_pa, b_pa = pa.array(a_list), pa.array(b_list)
    others = fresh.tolist()
    others_pa = pa.array(others)
    slow = a_list[: args.slow_n]
    key = pi_match.Key.generate()
    secret = os.urandom(32)
    cases: dict[str, tuple[Callable[[], Any], Callable[[Any], tuple[bool, str]], int, str]] = {}

    def add(name: str, run: Callable[[], Any], check: Callable[[Any], tuple[bool, str]],
            items: int = n, group: str = "pi_match") -> None:  # fmt: skip
        cases[name] = (run, check, items, group)

    def build(values: Any) -> pi_match.BloomIndex:
        idx = pi_match.BloomIndex(key, "cn_ric", capacity=n, fpr=FPR)
        idx.add(values)
        return idx

    def fnr_ok(idx: pi_match.BloomIndex) -> tuple[bool, str]:
        return bool(idx.contains(a_pa).all()), f"{idx.size_bytes / n:.1f} B/item"

    add("pi_match build from list (canonicalise + HMAC + insert)", lambda: build(a_list), fnr_ok)
    add("pi_match build from numpy", lambda: build(a), fnr_ok)
    add("pi_match build from pyarrow", lambda: build(a_pa), fnr_ok)
    ref = build(a_pa)

    def fpr_check(hits: Any) -> tuple[bool, str]:
        f = float(np.mean(hits))
        return f <= 1.5 * FPR + 5 / len(hits), f"FPR {f:.1e}"

    add("pi_match contains from pyarrow", lambda: ref.contains(others_pa), fpr_check, len(others))
    add("pi_match contains from list", lambda: ref.contains(others), fpr_check, len(others))

    def probe_ok(r: Any) -> tuple[bool, str]:
        est = r[0]
        return (
            est.low <= shared <= est.high,
            f"{est.value:,.0f} [{est.low:,.0f}–{est.high:,.0f}] vs {shared:,}",
        )

    add("pi_match probe-count (FP-corrected)", lambda: ref.count_in(b_pa), probe_ok, len(b_list))

    def tagsets() -> int:
        ta, tb = pi_match.TagSet(key, "cn_ric"), pi_match.TagSet(key, "cn_ric")
        ta.add(a_pa)
        tb.add(b_pa)
        return len(ta & tb)

    add("pi_match tag-set build x2 + intersection", tagsets,
        lambda k: (k == shared, f"|A∩B| = {k:,}"), n + len(b_list))  # fmt: skip
    add("PRF-only floor (Rust HMAC-SHA256 of raw bytes)", lambda: _core._prf_floor(key, a_pa),
        lambda _: (True, "the cryptography alone"), group="floor")  # fmt: skip

    def py_hmac() -> int:
        return sum(hmac.new(secret, v.encode(), "sha256").digest()[0] for v in slow)

    add(
        "pure-Python hmac loop",
        py_hmac,
        lambda _: (True, f"on {len(slow):,} items"),
        len(slow),
        "peer",
    )

    try:
        import rbloom
    except ImportError:
        print("rbloom not installed: pip install rbloom", file=sys.stderr)
    else:

        def rb_build() -> Any:
            bf = rbloom.Bloom(n, FPR)
            bf.update(a_list)
            return bf

        rb = rb_build()
        add("rbloom update from list (unkeyed)", rb_build,
            lambda bf: (all(x in bf for x in a_list[:100_000]), f"{rb.size_in_bits / 8 / n:.1f} B/item"),
            group="peer")  # fmt: skip
        add(
            "rbloom `in` loop (unkeyed)",
            lambda: [x in rb for x in others],
            fpr_check,
            len(others),
            "peer",
        )

        def keyed_hash(s: str) -> int:
            d = hashlib.blake2b(s.encode(), key=secret, digest_size=16).digest()
            return int.from_bytes(d, "big", signed=True)

        def rb_keyed() -> Any:
            bf = rbloom.Bloom(len(slow), FPR, keyed_hash)
            bf.update(slow)
            return bf

        add("rbloom keyed (blake2b hash_func) update", rb_keyed,
            lambda bf: (all(x in bf for x in slow[:1000]), f"on {len(slow):,} items"), len(slow), "peer")  # fmt: skip

    try:
        import fastbloom_rs
    except ImportError:
        print("fastbloom-rs not installed: pip install fastbloom-rs", file=sys.stderr)
    else:

        def fb_build() -> Any:
            bf = fastbloom_rs.BloomFilter(n, FPR)
            bf.add_str_batch(a_list)
            return bf

        fb = fb_build()
        add("fastbloom-rs add_str_batch (unkeyed)", fb_build,
            lambda bf: (all(bf.contains_str_batch(a_list[:100_000])), ""), group="peer")  # fmt: skip
        add("fastbloom-rs contains_str_batch (unkeyed)", lambda: fb.contains_str_batch(others),
            fpr_check, len(others), "peer")  # fmt: skip

        def fb_keyed() -> Any:
            bf = fastbloom_rs.BloomFilter(len(slow), FPR)
            bf.add_bytes_batch([hmac.new(secret, v.encode(), "sha256").digest() for v in slow])
            return bf

        add("fastbloom-rs keyed (HMAC digests from Python)", fb_keyed,
            lambda bf: (True, f"on {len(slow):,} items"), len(slow), "peer")  # fmt: skip

    try:
        import pybloomfilter
    except ImportError:
        print("pybloomfiltermmap3 not installed: pip install pybloomfiltermmap3", file=sys.stderr)
    else:

        def pbf_build() -> Any:
            bf = pybloomfilter.BloomFilter(n, FPR)
            bf.update(a_list)
            return bf

        pbf = pbf_build()
        add("pybloomfiltermmap3 update (unkeyed)", pbf_build,
            lambda bf: (all(x in bf for x in a_list[:100_000]), ""), group="peer")  # fmt: skip
        add("pybloomfiltermmap3 `in` loop (unkeyed)", lambda: [x in pbf for x in others],
            fpr_check, len(others), "peer")  # fmt: skip

    # ---- rounds ----
    times: dict[str, list[float]] = {k: [] for k in cases}
    results: dict[str, Any] = {}
    for r in range(args.repeat):
        for name, (run, _c, _i, _g) in cases.items():
            t0 = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.repeat} done", file=sys.stderr)
    rows = []
    for name, (_r, check, items, group) in cases.items():
        sec = statistics.median(times[name])
        ok, note = check(results[name])
        rows.append({"name": name, "group": group, "items": items, "seconds": sec,
                     "items_per_s": items / sec, "ns_per_item": sec / items * 1e9,
                     "correct": bool(ok), "note": note})  # fmt: skip
    results.clear()

    # ---- memory during a build (in a fresh process), union and load of big indices ----
    peak, index_bytes = build_peak_in_child(a_pa, key)
    big = int(args.big_gib * 2**30)
    cap = n
    while pi_match.plan_layout(cap, FPR)[0] * 32 < big:
        cap *= 2
    x = pi_match.BloomIndex(key, "cn_ric", capacity=cap, fpr=FPR)
    y = pi_match.BloomIndex(key, "cn_ric", capacity=cap, fpr=FPR)
    x.add(a_pa)
    y.add(b_pa)
    ut, ut_new = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        u = x | y  # into fresh memory
        ut_new.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        u |= y  # in place: what merging into an accumulator does
        ut.append(time.perf_counter() - t0)
    union_ok = bool(u.contains(a_pa).all() and u.contains(b_pa).all())
    del u
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.pmi")
        x.save(path)
        lt, lt_fast = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            loaded = pi_match.load(path, key=key)
            lt.append(time.perf_counter() - t0)
            del loaded
            t0 = time.perf_counter()
            loaded = pi_match.load(path, key=key, verify=False)
            lt_fast.append(time.perf_counter() - t0)
        load_ok = bool(loaded.is_mapped and loaded.contains(a_pa[:100_000]).all())
        del loaded
    extra = {
        "build_peak_rss_growth": peak, "index_bytes": index_bytes,
        "input_batch_bytes": a_pa.nbytes,
        "union_bytes": x.size_bytes, "union_seconds": statistics.median(ut),
        "union_gb_per_s": x.size_bytes / statistics.median(ut) / 1e9, "union_correct": union_ok,
        "union_new_seconds": statistics.median(ut_new),
        "load_bytes": x.size_bytes, "load_ms": statistics.median(lt) * 1e3, "load_correct": load_ok,
        "load_unverified_ms": statistics.median(lt_fast) * 1e3,
    }  # fmt: skip
    byname = {r["name"]: r for r in rows}

    def ratio(a_: str, b_: str) -> float | None:
        if a_ in byname and b_ in byname:
            return float(byname[a_]["items_per_s"] / byname[b_]["items_per_s"])
        return None

    keyed_peers = ("rbloom keyed (blake2b hash_func) update",
                   "fastbloom-rs keyed (HMAC digests from Python)", "pure-Python hmac loop")  # fmt: skip
    vs_keyed = [
        v for k in keyed_peers if (v := ratio("pi_match build from pyarrow", k)) is not None
    ]
    floor = ratio("pi_match build from pyarrow", "PRF-only floor (Rust HMAC-SHA256 of raw bytes)")
    ratios = {
        "build pyarrow / fastbloom unkeyed add_str_batch": ratio(
            "pi_match build from pyarrow", "fastbloom-rs add_str_batch (unkeyed)"),
        "build list / fastbloom unkeyed add_str_batch": ratio(
            "pi_match build from list (canonicalise + HMAC + insert)",
            "fastbloom-rs add_str_batch (unkeyed)"),
        "contains pyarrow / fastbloom contains_str_batch": ratio(
            "pi_match contains from pyarrow", "fastbloom-rs contains_str_batch (unkeyed)"),
        "build pyarrow time / PRF-only floor time": 1 / floor if floor else None,
        "build pyarrow / fastest keyed peer": min(vs_keyed) if vs_keyed else None,
    }  # fmt: skip
    info = {"n": n, "repeat": args.repeat, "fpr": FPR, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "pi_match": pi_match.__version__, "rows": rows, "extra": extra, "ratios": ratios}  # fmt: skip
    md = [f"n = {n:,}, FPR {FPR:g}, median of {args.repeat} round-robin rounds, {os.cpu_count()} cores\n",
          "| what | items/s | ns/item | correct | note |", "|---|---:|---:|:---:|---|"]  # fmt: skip
    for r in rows:
        md.append(f"| {r['name']} | {r['items_per_s']:,.0f} | {r['ns_per_item']:,.0f} | "
                  f"{'yes' if r['correct'] else 'NO'} | {r['note']} |")  # fmt: skip
    md += ["", f"- build peak RSS growth {peak / 2**20:,.0f} MiB for a {index_bytes / 2**20:,.0f} MiB index "
           f"from a {a_pa.nbytes / 2**20:,.0f} MiB input array already in memory "
           f"(target: index + one batch + 10 %)",
           f"- OR-union of two {x.size_bytes / 2**30:.2f} GiB indices in place (`a |= b`): "
           f"{extra['union_seconds'] * 1e3:,.0f} ms = {extra['union_gb_per_s']:.1f} GB/s; into a new index "
           f"(`a | b`): {extra['union_new_seconds'] * 1e3:,.0f} ms (correct: {union_ok})",
           f"- load of a {x.size_bytes / 2**30:.2f} GiB index (mmap): {extra['load_ms']:,.0f} ms with payload "
           f"checksums, {extra['load_unverified_ms']:,.1f} ms with verify=False (correct: {load_ok})", ""]  # fmt: skip
    md += [f"- {k}: {v:.2f}x" if v is not None else f"- {k}: n/a" for k, v in ratios.items()]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(info, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if all(r["correct"] for r in rows) and union_ok and load_ok else 1


if __name__ == "__main__":
    sys.exit(main())
