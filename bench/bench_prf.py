"""Keyed build rate by PRF: HMAC-SHA256 (two-lane SHA-NI) beside HMAC-SM3 (issue #11 §3).

    python bench/bench_prf.py [--n 2000000] [--repeat 5]

Builds a Bloom index of N valid ID numbers from a pyarrow array with each PRF, round-robin,
and prints the median items/s and the ratio; also the PRF-only floor of each. Every run checks
its answer: all N values valid, and every value found in the index it was added to.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pyarrow as pa

import pi_match
from pi_match.synth import ric_numbers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    key = pi_match.Key.generate()
    values = pa.array(ric_numbers(np.random.default_rng(1), args.n).tolist())
    probe = values.slice(0, 10_000)
    times: dict[str, list[float]] = {p: [] for p in pi_match._core.PRFS}
    floors: dict[str, list[float]] = {p: [] for p in pi_match._core.PRFS}
    correct = True
    for _ in range(args.repeat):
        for prf in pi_match._core.PRFS:
            idx = pi_match.BloomIndex(key, "cn_ric", capacity=args.n, prf=prf)
            t = time.perf_counter()
            rep = idx.add(values)
            times[prf].append(time.perf_counter() - t)
            correct &= rep.valid == args.n and bool(idx.contains(probe).all())
            t = time.perf_counter()
            pi_match._core._prf_floor(key, values, prf)
            floors[prf].append(time.perf_counter() - t)
    print(f"N = {args.n:,}, {args.repeat} rounds, medians; correct: {correct}")
    med = {p: statistics.median(v) for p, v in times.items()}
    for prf in pi_match._core.PRFS:
        floor = statistics.median(floors[prf])
        print(f"  {prf:12s} build {args.n / med[prf] / 1e6:6.2f} M items/s   "
              f"PRF alone {args.n / floor / 1e6:6.2f} M/s")  # fmt: skip
    ratios = [a / b for a, b in zip(times["hmac-sm3"], times["hmac-sha256"], strict=True)]
    print(f"  HMAC-SM3 build time / HMAC-SHA256: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip
    if not correct:
        raise SystemExit("a build lost values")


if __name__ == "__main__":
    main()
