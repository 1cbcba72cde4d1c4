"""End-to-end `pi-match build` on a large CSV (issue #3, §6).

    python bench/bench_build.py [--rows 20000000] [--dir /tmp/pi_match_bench] [--keep]
                                [--gb18030] [--stages] [--repeat 3]

Writes a CSV of synthetic rows (name, ID number, mobile; about 1 GB at 20 million rows), then
runs the real command line on it, timing it and reading the child's peak RSS. Checks its own
answer: every row is read, every value is valid, and the distinct-count intervals hold the
true distinct counts (computed here with numpy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from pi_match.synth import mobile_numbers, ric_numbers

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力波宁")


def write_csv(path: str, rows: int, seed: int = 2018) -> tuple[int, int]:
    """Write the file; return the true distinct counts (ID numbers, mobiles)."""
    rng = np.random.default_rng(seed)
    ids_seen, mobs_seen = [], []
    step = 1_000_000
    with open(path, "w", encoding="utf-8") as f:
        f.write("姓名,身份证号,手机\n")
        for start in range(0, rows, step):
            n = min(step, rows - start)
            ids = ric_numbers(rng, n)
            mobs = mobile_numbers(rng, n)
            names = np.char.add(
                np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)],
                np.char.add(np.array(GIVEN)[rng.integers(0, len(GIVEN), n)],
                            np.array(GIVEN)[rng.integers(0, len(GIVEN), n)]),
            )  # fmt: skip
            lines = np.char.add(np.char.add(np.char.add(names, ","), np.char.add(ids, ",")), mobs)
            f.write("\n".join(lines.tolist()))
            f.write("\n")
            # The first 17 digits decide the check character: they identify the number.
            ids_seen.append(ids.astype("U17").astype(np.int64))
            mobs_seen.append(mobs.astype(np.int64))
    return len(np.unique(np.concatenate(ids_seen))), len(np.unique(np.concatenate(mobs_seen)))


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def stages(path: str, key_path: str, rows: int, build_s: float) -> dict[str, float]:
    """Each stage of the CLI path on its own, on the same file, every one checked: start-up
    and imports, pyarrow's multi-threaded read_csv, the PRF alone over both columns,
    BloomIndex.add of both columns from Arrow, SHA-256 of the file."""
    import hashlib

    import pyarrow as pa
    import pyarrow.csv as pacsv

    import pi_match

    def timed(f: Any) -> tuple[float, Any]:
        best, out = float("inf"), None
        for _ in range(3):
            t = time.perf_counter()
            out = f()
            best = min(best, time.perf_counter() - t)
        return best, out

    out: dict[str, float] = {}
    out["start-up and imports (python -c 'import pi_match.build')"], _ = timed(
        lambda: subprocess.run([sys.executable, "-c", "import pi_match.build"], check=True)
    )
    opts = pacsv.ConvertOptions(column_types={"身份证号": pa.string(), "手机": pa.string()})
    t_read, table = timed(lambda: pacsv.read_csv(path, convert_options=opts))
    assert table.num_rows == rows, "read_csv lost rows"
    out["pyarrow read_csv (multi-threaded)"] = t_read
    key = pi_match.Key.load(key_path)
    cols = [table.column("身份证号").combine_chunks(), table.column("手机").combine_chunks()]
    out["HMAC-SHA256 alone over both columns (_prf_floor)"], _ = timed(
        lambda: [pi_match._core._prf_floor(key, c) for c in cols]  # a checksum of the tags
    )

    def add() -> int:
        valid = 0
        for kind, c in zip(("cn_ric", "cn_mobile"), cols, strict=True):
            b = pi_match.BloomIndex(key, kind, capacity=rows)
            valid += b.add(c).valid
        return valid

    out["BloomIndex.add of both columns from Arrow"], valid = timed(add)
    assert valid == 2 * rows, "add did not take every value"

    def sha() -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                h.update(block)
        return h.hexdigest()

    out["SHA-256 of the file"], _ = timed(sha)
    out["pi-match build (the command, both identifier columns; best run)"] = build_s
    floor = t_read + out["HMAC-SHA256 alone over both columns (_prf_floor)"]
    print(f"\n| step ({rows:,} rows) | seconds |\n|---|---:|")
    for k, v in out.items():
        print(f"| {k} | {v:.2f} |")
    print(f"\nthe command / (read + PRF): {build_s / floor:.2f}x")
    return out


def run_build(path: str, key: str, out: str) -> tuple[float, dict | None, int]:  # type: ignore[type-arg]
    """`pi-match build` of `path`: seconds, its JSON summary (None if it failed), peak RSS."""
    cmd = [sys.executable, "-m", "pi_match.cli", "build", path, "--key", key, "-o", out,
           "--field", "cn_ric=身份证号", "--field", "cn_mobile=手机", "--json"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Peak RSS of the build itself: VmHWM of the child (reset at exec, unlike the rusage of
    # children, which counts this process's memory copied at fork).
    peak_rss = 0
    while proc.poll() is None:
        peak_rss = max(peak_rss, _vm_hwm(proc.pid))
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        print(stderr, file=sys.stderr)
        return seconds, None, peak_rss
    return seconds, json.loads(stdout), peak_rss


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--dir", default="/tmp/pi_match_bench")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--json", help="write the result here too")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each build (best and median reported; default 3)")  # fmt: skip
    ap.add_argument("--stages", action="store_true",
                    help="also time the stages of the CLI path on the same file (docs/PERFORMANCE.md)")  # fmt: skip
    ap.add_argument("--gb18030", action="store_true",
                    help="also build the same rows written in GB18030, in the same run")  # fmt: skip
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    csv_path = os.path.join(args.dir, f"breach_{args.rows}.csv")
    t0 = time.perf_counter()
    distinct_ids, distinct_mobs = write_csv(csv_path, args.rows)
    size = os.path.getsize(csv_path)
    print(
        f"wrote {csv_path}: {args.rows:,} rows, {size / 1e9:.2f} GB "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    key = os.path.join(args.dir, "bench.key")
    if not os.path.exists(key):
        subprocess.run([sys.executable, "-m", "pi_match.cli", "keygen", "-o", key], check=True)
    runs = {"utf-8": csv_path}
    if args.gb18030:
        gb_path = csv_path.replace(".csv", ".gb18030.csv")
        with open(csv_path, encoding="utf-8") as src, open(gb_path, "w", encoding="gb18030") as dst:
            while block := src.read(1 << 24):
                dst.write(block)
        runs["gb18030"] = gb_path
    # The files just written are flushed first: their writeback would otherwise run beside the
    # first builds. Each build runs `--repeat` times, the encodings alternating; the best run
    # is set against the stages' best of 3, the median is printed beside it, and every run's
    # answer is checked.
    os.sync()
    timings: dict[str, list[tuple[float, dict | None, int]]] = {enc: [] for enc in runs}  # type: ignore[type-arg]
    for _ in range(args.repeat):
        for enc, path in runs.items():
            timings[enc].append(run_build(path, key, os.path.join(args.dir, f"breach.{enc}.pmi")))
    results = {}
    for enc, path in runs.items():
        out = os.path.join(args.dir, f"breach.{enc}.pmi")
        if any(summary is None for _, summary, _ in timings[enc]):
            return 1
        times = sorted(t for t, _, _ in timings[enc])
        seconds, median = times[0], times[len(times) // 2]
        peak_rss = max(p for _, _, p in timings[enc])
        # The runs before the last (whose counts are printed below) are checked here.
        checks = {"earlier runs": all(
            s["rows"] == args.rows and s["valid"] == args.rows
            for _, summary, _ in timings[enc][:-1] for s in summary["sections"]  # type: ignore[index]
        )}  # fmt: skip
        summary = timings[enc][-1][1]
        assert summary is not None
        for s, truth in zip(summary["sections"], (distinct_ids, distinct_mobs), strict=True):
            e = s["distinct_estimate"]
            checks[s["kind"]] = (s["rows"] == args.rows and s["valid"] == args.rows
                                 and e["low"] <= truth <= e["high"])  # fmt: skip
            print(f"  {s['kind']}: {s['valid']:,} valid of {s['rows']:,}; distinct "
                  f"{e['value']:,.0f} [{e['low']:,.0f}–{e['high']:,.0f}], true {truth:,}")  # fmt: skip
        size = os.path.getsize(path)
        result = {
            "encoding": enc, "rows": args.rows, "bytes": size, "seconds": seconds,
            "median_seconds": median, "runs": len(times),
            "rows_per_s": args.rows / seconds, "mb_per_s": size / seconds / 1e6,
            "peak_rss_bytes": peak_rss, "index_bytes": os.path.getsize(out),
            "correct": all(checks.values()),
        }  # fmt: skip
        print(f"pi-match build ({enc}): {seconds:.2f} s best of {len(times)} (median "
              f"{median:.2f} s), {result['rows_per_s']:,.0f} rows/s, "
              f"{result['mb_per_s']:.0f} MB/s, peak RSS {peak_rss / 2**20:,.0f} MiB, "
              f"artefact {result['index_bytes'] / 2**20:,.0f} MiB, "
              f"correct: {result['correct']}")  # fmt: skip
        results[enc] = (result, out)
    result = results["utf-8"][0]
    if args.stages:
        result["stages"] = stages(csv_path, key, args.rows, result["seconds"])
    if "gb18030" in results:
        import pi_match

        k = pi_match.Key.load(key)
        same = (pi_match.Artefact.open(results["utf-8"][1], key=k).sections
                == pi_match.Artefact.open(results["gb18030"][1], key=k).sections)  # fmt: skip
        gb = results["gb18030"][0]
        result = {**result, "gb18030": gb, "gb18030_ratio": gb["seconds"] / result["seconds"],
                  "same_sections": same, "correct": result["correct"] and gb["correct"] and same}  # fmt: skip
        medians = gb["median_seconds"] / result["median_seconds"]
        result["gb18030_median_ratio"] = medians
        print(
            f"GB18030 / UTF-8: {result['gb18030_ratio']:.2f}x best, {medians:.2f}x median; "
            f"the same sections: {same}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if not args.keep:
        for path in runs.values():
            os.remove(path)
        for _, out in results.values():
            for p in (out, out + ".manifest.json"):
                if os.path.exists(p):
                    os.remove(p)
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
