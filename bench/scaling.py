"""How a keyed build from a pyarrow array scales with threads and with N (docs/PERFORMANCE.md).

    python bench/scaling.py [--sizes 1e5 1e6 1e7 3e7] [--threads 1 2]

Each point runs in a fresh process with RAYON_NUM_THREADS set, builds an index for N valid ID
numbers at FPR 1e-6 (median of 3), checks no false negatives, and also times the PRF-only
floor on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, statistics, sys, time
import numpy as np, pyarrow as pa, pi_match
from pi_match import _core
from pi_match.synth import ric_numbers
n = int(float(sys.argv[1]))
rng = np.random.default_rng(1)
step = 10_000_000
v = pa.chunked_array([pa.array(ric_numbers(rng, min(step, n - i))) for i in range(0, n, step)])
key = pi_match.Key.generate()
def timed(f):
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); out = f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out
def build():
    b = pi_match.BloomIndex(key, "cn_ric", capacity=n, fpr=1e-6); b.add(v); return b
tb, b = timed(build)
tf, _ = timed(lambda: _core._prf_floor(key, v))
tc, hits = timed(lambda: b.contains(v))
print(json.dumps({"n": n, "build_ns": tb / n * 1e9, "floor_ns": tf / n * 1e9,
                  "contains_ns": tc / n * 1e9, "correct": bool(hits.all()),
                  "index_mib": b.size_bytes / 2**20}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["1e5", "1e6", "1e7", "3e7"])
    ap.add_argument("--threads", nargs="+", default=["1", "2"])
    args = ap.parse_args()
    rows = []
    print(
        "| N | threads | build ns/item | PRF floor ns/item | build/floor | contains ns/item | index MiB | correct |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for size in args.sizes:
        for t in args.threads:
            env = {**os.environ, "RAYON_NUM_THREADS": t}
            out = subprocess.run(
                [sys.executable, "-c", CHILD, size],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out) | {"threads": int(t)}
            rows.append(r)
            print(
                f"| {r['n']:,} | {t} | {r['build_ns']:.0f} | {r['floor_ns']:.0f} | "
                f"{r['build_ns'] / r['floor_ns']:.2f} | {r['contains_ns']:.0f} | {r['index_mib']:.1f} | "
                f"{'yes' if r['correct'] else 'NO'} |",
                flush=True,
            )
    return 0 if all(r["correct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
