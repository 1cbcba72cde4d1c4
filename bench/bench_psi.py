"""The keyless mode's speed (issue #12), side by side with OpenMined PSI in one run.

    python bench/bench_psi.py [--n 100000] [--repeat 3] [--ring-n 0] [--out bench/results]

- Per pass, items/s on 1 core and on 2, beside the floor (the scalar multiplications alone) (a child process per thread count: rayon's pool is
  fixed at its first use): the first pass (canonicalise + SHA-512 + hash to the group +
  scalar multiplication + batch encoding) and a further pass (decode + multiplication +
  batch encoding).
- A two-party count end to end, n items each and n/2 shared: pi_match (A init, B init, B blinds
  A's set, A blinds B's, count) against OpenMined PSI's cardinality mode (`openmined-psi`:
  client request, server setup and response, client count; GCS at fpr 1e-9, its default
  structure). Items/s = 2n / wall time; both answers are checked against the truth. Bytes per
  item on the wire: what the parties send each other, over 2n.
- With --ring-n N: three parties of N items each, a full ring (every set blinded by all three)
  and the count, timed end to end and checked.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from pi_match import psi

PASS_CHILD = r"""
import json, sys, time
import numpy as np
from pi_match import _core, psi
n = int(sys.argv[1]); repeat = int(sys.argv[2])
floor = sorted(_core._psi_floor(n) for _ in range(repeat))[repeat // 2]
rng = np.random.default_rng(1)
vals = [f"1{x:010d}" for x in np.unique(rng.integers(3 * 10**9, 10**10, 2 * n))[:n]]
a = psi.PsiSecret.generate("bench", "A", ["A", "B"])
b = psi.PsiSecret.generate("bench", "B", ["A", "B"])
first, second = [], []
for _ in range(repeat):
    t = time.perf_counter(); m, _ = psi.init(a, {"cn_mobile": vals}); first.append(time.perf_counter() - t)
    t = time.perf_counter(); f = psi.blind(m, b); second.append(time.perf_counter() - t)
    assert m.sizes["cn_mobile"] == n and f.sizes["cn_mobile"] == n
print(json.dumps({"first": sorted(first)[len(first) // 2], "second": sorted(second)[len(second) // 2],
                  "mul_floor": floor}))
"""


def numbers(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct valid mobile numbers (1, then 3–9, then nine digits), in random order."""
    x = np.unique(rng.integers(3 * 10**9, 10**10, 2 * n))[:n]
    rng.shuffle(x)
    return [f"1{v:010d}" for v in x]


def two_sets(n: int) -> tuple[list[str], list[str], int]:
    pool = numbers(np.random.default_rng(7), 2 * n - n // 2)
    return pool[:n], pool[n - n // 2 :], n // 2


def pi_match_two_party(a_vals: list[str], b_vals: list[str]) -> tuple[float, int, int]:
    t = time.perf_counter()
    a = psi.PsiSecret.generate("bench-2p", "A", ["A", "B"])
    b = psi.PsiSecret.generate("bench-2p", "B", ["A", "B"])
    ma, _ = psi.init(a, {"cn_mobile": a_vals})
    mb, _ = psi.init(b, {"cn_mobile": b_vals})
    wire_a, wire_b = ma.to_bytes(), mb.to_bytes()  # A → B, B → A
    fa = psi.blind(psi.PsiMessage.from_bytes(wire_a), b)
    wire_fa = fa.to_bytes()  # B → A: A's set, blinded by B
    fb = psi.blind(psi.PsiMessage.from_bytes(wire_b), a)
    c = psi.count([psi.PsiMessage.from_bytes(wire_fa), fb])
    dt = time.perf_counter() - t
    return dt, int(c.pairs[0]["exact"]), len(wire_a) + len(wire_b) + len(wire_fa)


def openmined_two_party(a_vals: list[str], b_vals: list[str]) -> tuple[float, int, int]:
    import private_set_intersection.python as om

    t = time.perf_counter()
    client = om.client.CreateWithNewKey(False)  # cardinality only
    server = om.server.CreateWithNewKey(False)
    request = client.CreateRequest(a_vals)
    setup = server.CreateSetupMessage(1e-9, len(a_vals), b_vals, om.DataStructure.GCS)
    response = server.ProcessRequest(request)
    n = client.GetIntersectionSize(setup, response)
    dt = time.perf_counter() - t
    wire = sum(len(m.SerializeToString()) for m in (request, setup, response))
    return dt, int(n), wire


def ring(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    pool = numbers(rng, 2 * n)
    sets = [pool[:n], pool[n // 2 : n // 2 + n], pool[n:]]
    truth_ab = len(set(sets[0]) & set(sets[1]))
    ps = ["A", "B", "C"]
    t = time.perf_counter()
    secrets = [psi.PsiSecret.generate("bench-ring", p, ps) for p in ps]
    msgs = [psi.init(s, {"cn_mobile": v})[0] for s, v in zip(secrets, sets, strict=True)]
    for i in range(3):
        for j in (1, 2):
            msgs[i] = psi.blind(msgs[i], secrets[(i + j) % 3])
    c = psi.count(msgs)
    dt = time.perf_counter() - t
    ab = next(p["exact"] for p in c.pairs if (p["a"], p["b"]) == ("A", "B"))
    return {"n_per_party": n, "seconds": dt, "items_per_s": 3 * n / dt,
            "correct": ab == truth_ab}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ring-n", type=int, default=0)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    res: dict[str, Any] = {"n": args.n, "repeat": args.repeat, "cpus": os.cpu_count()}
    for threads in (1, 2):
        env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
        r = json.loads(subprocess.run([sys.executable, "-c", PASS_CHILD, str(args.n), str(args.repeat)],
                                      env=env, check=True, capture_output=True, text=True).stdout)  # fmt: skip
        res[f"pass_{threads}core"] = {k: args.n / v for k, v in r.items()}
    a_vals, b_vals, truth = two_sets(args.n)
    ours, theirs = [], []
    for _ in range(args.repeat):  # round-robin: both share the machine's noise
        dt, got, wire = pi_match_two_party(a_vals, b_vals)
        assert got == truth, (got, truth)
        ours.append((dt, wire))
        dt, got, wire2 = openmined_two_party(a_vals, b_vals)
        assert abs(got - truth) <= max(1, truth // 10**6), (got, truth)
        theirs.append((dt, wire2))
    t_ours = statistics.median(d for d, _ in ours)
    t_theirs = statistics.median(d for d, _ in theirs)
    res["two_party"] = {
        "pi_match_items_per_s": 2 * args.n / t_ours, "openmined_items_per_s": 2 * args.n / t_theirs,
        "ratio": t_theirs / t_ours, "pi_match_wire_bytes_per_item": ours[0][1] / (2 * args.n),
        "openmined_wire_bytes_per_item": theirs[0][1] / (2 * args.n), "truth": truth,
    }  # fmt: skip
    if args.ring_n:
        res["ring"] = ring(args.ring_n)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "psi.json"), "w") as f:
        json.dump(res, f, indent=1)
    p1, p2, tp = res["pass_1core"], res["pass_2core"], res["two_party"]
    lines = [
        f"n = {args.n:,} per party, median of {args.repeat}, {os.cpu_count()} cores",
        "",
        "| what | 1 core items/s | 2 cores items/s |",
        "|---|---:|---:|",
        f"| first pass (hash to group + multiply + encode) | {p1['first']:,.0f} | {p2['first']:,.0f} |",
        f"| further pass (decode + multiply + encode) | {p1['second']:,.0f} | {p2['second']:,.0f} |",
        f"| floor: scalar multiplication alone (curve25519-dalek, constant time) | "
        f"{p1['mul_floor']:,.0f} | {p2['mul_floor']:,.0f} |",
        "",
        "| two-party count end to end | items/s | wire bytes/item | correct |",
        "|---|---:|---:|:---:|",
        f"| pi_match psi | {tp['pi_match_items_per_s']:,.0f} | {tp['pi_match_wire_bytes_per_item']:.1f} | yes |",
        f"| OpenMined PSI (cardinality, GCS 1e-9) | {tp['openmined_items_per_s']:,.0f} | "
        f"{tp['openmined_wire_bytes_per_item']:.1f} | yes |",
        "",
        f"- pi_match / OpenMined PSI, two-party count: {tp['ratio']:.2f}x",
        f"- first pass / multiplication floor, 1 core: {p1['first'] / p1['mul_floor']:.2f}; "
        f"further pass: {p1['second'] / p1['mul_floor']:.2f}",
    ]
    if "ring" in res:
        r = res["ring"]
        lines.append(f"- three-party ring, {r['n_per_party']:,} items per party: {r['seconds']:,.0f} s "
                     f"end to end ({r['items_per_s']:,.0f} items/s), correct: {r['correct']}")  # fmt: skip
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "psi.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
