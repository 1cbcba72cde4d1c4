"""Core speed, measured beside rbloom on the same data in the same run (issue #2, §9).

    python bench/bench_core.py [--n 2000000] [--repeat 5] [--json out.json]

Each row: items/s (median of --repeat rounds; all cases run round-robin in each round, so
they share the machine's noise), ns/item, and whether the answer was right (no false
negatives, false-positive rate within 1.5x the target on non-members). rbloom does
no keyed hashing at all (it uses Python's built-in hash), so it is a reference, not a peer in
security terms: pi_match does HMAC-SHA256 per item on top.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

import pi_match
from pi_match.synth import ric_numbers

FPR = 1e-6


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    n = args.n
    rng = np.random.default_rng(2018)
    members = ric_numbers(rng, n)
    others = np.setdiff1d(ric_numbers(rng, n), members)
    members_list, others_list = members.tolist(), others.tolist()
    members_pa, others_pa = pa.array(members_list), pa.array(others_list)
    key = pi_match.Key.generate()
    rows: list[dict[str, Any]] = []

    # name -> (run, check(result) -> (correct, note)). Cases run round-robin, `repeat` rounds,
    # so every contender sees the same machine noise; each row is the median of its rounds.
    cases: dict[str, tuple[Callable[[], Any], Callable[[Any], tuple[bool, str]]]] = {}

    def build(values: Any) -> pi_match.BloomIndex:
        idx = pi_match.BloomIndex(key, "cn_ric", capacity=n, fpr=FPR)
        idx.add(values)
        return idx

    def no_false_negatives(idx: pi_match.BloomIndex) -> tuple[bool, str]:
        return bool(idx.contains(members_pa).all()), ""

    for label, values in (("list", members_list), ("pyarrow", members_pa), ("numpy", members)):
        cases[f"pi_match build (canonicalise+HMAC+insert) from {label}"] = (
            lambda v=values: build(v),
            no_false_negatives,
        )
    idx = build(members_pa)

    def fpr_ok(hits: Any) -> tuple[bool, str]:
        fpr = float(np.mean(hits))
        return fpr <= 1.5 * FPR + 3 / len(others), f"measured FPR {fpr:.1e}"

    for label, oth in (("list", others_list), ("pyarrow", others_pa)):
        cases[f"pi_match contains from {label}"] = (lambda o=oth: idx.contains(o), fpr_ok)
    cases["pi_match canonicalize only (to Python list)"] = (
        lambda: pi_match.canonicalize("cn_ric", members_pa),
        lambda out: (out == members_list, ""),
    )

    try:
        import rbloom
    except ImportError:
        print(
            "rbloom not installed (pip install '.[bench]'); skipping the reference rows",
            file=sys.stderr,
        )
    else:

        def rb_build() -> Any:
            b = rbloom.Bloom(n, FPR)
            b.update(members_list)
            return b

        rb = rb_build()
        cases["rbloom update from list (unkeyed, no canonicalisation)"] = (
            rb_build,
            lambda b: (all(x in b for x in members_list), ""),
        )

        def rb_fp(hits: int) -> tuple[bool, str]:
            return hits <= 1.5 * FPR * len(others) + 3, f"measured FPR {hits / len(others):.1e}"

        cases["rbloom `in` loop from list (unkeyed)"] = (
            lambda: sum(1 for x in others_list if x in rb),
            rb_fp,
        )

    times: dict[str, list[float]] = {name: [] for name in cases}
    results: dict[str, Any] = {}
    for _ in range(args.repeat):
        for name, (run, _check) in cases.items():
            t0 = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - t0)
    for name, (_run, check) in cases.items():
        seconds = statistics.median(times[name])
        correct, note = check(results[name])
        rows.append(
            {
                "name": name,
                "items": n,
                "seconds": seconds,
                "items_per_s": n / seconds,
                "ns_per_item": seconds / n * 1e9,
                "correct": bool(correct),
                "note": note,
            }
        )

    info = {
        "n": n,
        "repeat": args.repeat,
        "fpr": FPR,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pi_match": pi_match.__version__,
        "rows": rows,
    }
    print(f"n = {n:,}, median of {args.repeat}, FPR target {FPR:g}\n")
    print("| what | items/s | ns/item | correct | note |\n|---|---:|---:|:---:|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['items_per_s']:,.0f} | {r['ns_per_item']:.0f} | "
            f"{'yes' if r['correct'] else 'NO'} | {r['note']} |"
        )
    ref = {r["name"]: r for r in rows}
    rb = ref.get("rbloom update from list (unkeyed, no canonicalisation)")
    if rb:
        ours = ref["pi_match build (canonicalise+HMAC+insert) from list"]
        print(
            f"\nbuild from list: pi_match / rbloom = {ours['items_per_s'] / rb['items_per_s']:.2f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(info, f, indent=1)
    return 0 if all(r["correct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
