"""The 10⁸-item scaling point (docs/PERFORMANCE.md): build, contains, and exact tag-set
intersection, plain (8 bytes a tag) against compressed (Elias–Fano, FORMAT.md §5 type 6).

    python bench/bench_1e8.py [--n 1e8] [--batch 1e7]

The values are mobile numbers 138 0000 0000 + i, made in batches by numpy arithmetic before
anything is timed (1.5·N values, about 1.7 GB at N = 10⁸; the generation is timed alone and
reported), so no step below includes it. Set A is i in [0, N), set B is
i in [N/2, 3N/2): every answer is known and checked — no false negatives, the false-positive
rate near its target, |A ∩ B| = N/2 exactly (64-bit tags: an accidental collision is
expected N²/2⁶⁵ ≈ 3·10⁻⁴ times), and the compressed files round-trip to the same sets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

import pi_match


def mobiles(start: int, count: int) -> np.ndarray:
    """`count` 11-digit mobile numbers 13800000000 + start … as a numpy `S11` array."""
    n = np.arange(13_800_000_000 + start, 13_800_000_000 + start + count, dtype=np.int64)
    d = np.empty((count, 11), dtype=np.uint8)
    for j in range(11):
        d[:, 10 - j] = n % 10 + 48
        n //= 10
    return d.view("S11").ravel()


def batches(start: int, count: int, step: int):  # type: ignore[no-untyped-def]
    for at in range(start, start + count, step):
        yield mobiles(at, min(step, start + count - at))


class Clock:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def time(self, what: str, f, items: int = 0):  # type: ignore[no-untyped-def]
        """Time `f`; `items` (if any) is what the ns/item column divides by."""
        t0 = time.perf_counter()
        out = f()
        dt = time.perf_counter() - t0
        self.rows.append((what, dt, items))
        print(f"  {what}: {dt:.2f} s", flush=True)
        return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=float, default=1e8)
    ap.add_argument("--batch", type=float, default=1e7)
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args()
    n, step = int(args.n), int(args.batch)
    if n % (2 * step):
        ap.error("--n must be a multiple of twice --batch (set B starts at N/2)")
    key = pi_match.Key.generate()
    c = Clock()
    ok = True

    def generate() -> dict[int, np.ndarray]:
        return {at: mobiles(at, min(step, n + n // 2 - at)) for at in range(0, n + n // 2, step)}

    made = c.time("generate 1.5·N values (numpy; not part of any step below)", generate)
    probe_out = c.time("generate N/10 non-members", lambda: list(batches(2 * n, n // 10, step)))

    def of(start: int) -> list[np.ndarray]:
        return [made[at] for at in range(start, start + n, step)]

    def build(start: int) -> tuple[pi_match.BloomIndex, pi_match.TagSet]:
        b = pi_match.BloomIndex(key, "cn_mobile", capacity=n, fpr=1e-6)
        t = pi_match.TagSet(key, "cn_mobile")
        for v in of(start):
            rep = b.add(v, tag_set=t)
            assert rep.valid == len(v), "every generated number is valid"
        return b, t

    bloom_a, tags_a = c.time(
        "build Bloom + tag set of A (one pass over the values)", lambda: build(0), n
    )
    _, tags_b = c.time("build Bloom + tag set of B", lambda: build(n // 2), n)

    def contains() -> tuple[int, int]:
        hit = sum(int(bloom_a.contains(v).sum()) for v in of(0))
        fp = sum(int(bloom_a.contains(v).sum()) for v in probe_out)
        return hit, fp

    hit, fp = c.time("Bloom contains: N members + N/10 non-members", contains, n + n // 10)
    fpr = fp / (n // 10)
    ok &= hit == n and fpr < 3e-6
    print(f"  false positives {fp} of {n // 10:,} ({fpr:.1e}, target 1e-6)")

    both = c.time(
        "tag-set |A ∩ B|, plain in memory (the first read merges the runs of the build)",
        lambda: len(tags_a & tags_b),
        2 * n,
    )
    ok &= n // 2 <= both <= n // 2 + 2

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        paths = {}
        for form, plain in (("plain", True), ("compressed", False)):
            p = os.path.join(tmp, f"a_{form}.pmi")
            c.time(
                f"save A {form}",
                lambda p=p, plain=plain: pi_match.Artefact([tags_a]).save(p, plain_tag_sets=plain),
                n,
            )
            pb = os.path.join(tmp, f"b_{form}.pmi")
            pi_match.Artefact([tags_b]).save(pb, plain_tag_sets=plain)
            paths[form] = (p, pb)
        size = {f: os.path.getsize(p[0]) for f, p in paths.items()}
        print(
            f"  bytes per tag: plain {size['plain'] / n:.3f}, compressed {size['compressed'] / n:.3f}"
        )
        loaded = {}
        for form in ("plain", "compressed"):
            pa_, pb_ = paths[form]
            la = c.time(
                f"load A {form} (checksums verified)",
                lambda pa_=pa_: pi_match.load(pa_, key=key),
                n,
            )
            lb = pi_match.load(pb_, key=key)
            probe = made[0][:1_000_000]
            hits = c.time(
                f"contains of {len(probe):,} values on the loaded {form} set",
                lambda la=la, probe=probe: la.contains(probe),
                len(probe),
            )
            ok &= bool(hits.all())
            k = c.time(
                f"|A ∩ B| loaded {form} (compressed: stretch by stretch, neither decoded)",
                lambda la=la, lb=lb: len(la & lb),
                2 * n,
            )
            ok &= k == both
            loaded[form] = (la, lb)
        ok &= loaded["plain"][0] == loaded["compressed"][0] == tags_a
    result = {
        "n": n,
        "rows": [{"step": w, "seconds": round(s, 3), "items": k} for w, s, k in c.rows],
        "bytes_per_tag": {f: size[f] / n for f in size},
        "bloom_mib": bloom_a.size_bytes / 2**20,
        "correct": bool(ok),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(f"\n| step (N = {n:,}) | seconds | ns/item |\n|---|---:|---:|")
    for w, sec, k in c.rows:
        print(f"| {w} | {sec:.2f} | {f'{sec / k * 1e9:.0f}' if k else ''} |")
    print(json.dumps({k: result[k] for k in ("n", "bytes_per_tag", "bloom_mib", "correct")}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
