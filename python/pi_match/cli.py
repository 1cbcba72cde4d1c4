"""The `pi-match` command line. Every command takes `--json` for machine output and `--quiet`.
User mistakes (a missing file, a wrong key, an unknown column, an undecodable file) print one
line on stderr saying what, where and what to do, and exit 1; usage errors exit 2."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import Artefact, BloomIndex, Key, PiMatchError, TagSet, __version__, _core, estimate_overlap
from .build import (
    FPR_WARN_FACTOR,
    MISSING,
    OK,
    REASONS,
    SATURATED_FPR,
    Progress,
    SectionStats,
    build,
    csv_encoding,
    raw_text,
    resolve_fields,
)
from .io import InputError, ReadOptions, open_source
from .outputs import (
    OUTPUT_MODE,
    RAW_VALUES_MODE,
    Staged,
    check_outputs,
    commit,
    require_regular,
    write_bytes,
)


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit 1."""


def jsonable(obj: Any) -> Any:
    """Standard JSON: infinities and NaN (a saturated index's estimate) become null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(
            jsonable(data), sys.stdout, ensure_ascii=False, indent=1, default=str, allow_nan=False
        )
        sys.stdout.write("\n")
    elif not args.quiet:
        print(text)


def _note(args: argparse.Namespace, msg: str) -> None:
    if not args.json and not args.quiet:
        print(msg, file=sys.stderr)


def _key(path: str) -> Key:
    if not os.path.exists(path):
        raise UserError(f"key file {path} not found; make one with: pi-match keygen -o {path}")
    return Key.load(path)


def _same_key(paths: list[str], arts: list[Artefact]) -> None:
    """Artefacts to be combined must share one key; name the files when they do not."""
    for p, a in zip(paths[1:], arts[1:], strict=True):
        if a.key_id != arts[0].key_id:
            raise UserError(
                f"{p} was made with key id {a.key_id} but {paths[0]} with key id "
                f"{arts[0].key_id}: artefacts of different keys (different joint operations) "
                "cannot be combined"
            )


def _read_options(args: argparse.Namespace) -> ReadOptions:
    return ReadOptions(
        encoding=args.encoding,
        delimiter=args.delimiter,
        header=False if args.no_header else None,
        sheet=args.sheet,
        format=args.format,
    )


def _load(path: str, key: Key | None = None) -> Artefact:
    if not os.path.exists(path):
        raise UserError(f"artefact {path} not found")
    return Artefact.open(path, key=key)


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == x and abs(x) != float("inf") else "unknown (saturated)"


def _fmt_est(e: Any) -> str:
    if e.exact:
        return f"{e.value:,.0f} (exact)"
    return f"{_num(e.value)} [95% {_num(e.low)}–{_num(e.high)}]"


def _created(ts: int) -> str:
    """A header's timestamp as UTC text; a forged one that no calendar holds is said so."""
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"invalid timestamp {ts}"


# ---- commands -----------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    if os.path.lexists(args.output):
        require_regular(args.output, "key file")
        with open(args.output, "rb") as f:
            head = f.read(64)
        if not head.startswith(b"pi_match-key-v1:"):
            raise UserError(
                f"{args.output} exists and is not a pi_match key file (it may be an artefact or "
                "evidence); keygen replaces only key files, even with --force"
            )
    key = Key.generate()
    try:
        key.save(args.output, overwrite=args.force)
    except FileExistsError:
        raise UserError(f"{args.output} already exists; pass --force to replace it") from None
    _out(args, {"output": args.output, "key_id": key.id},
         f"wrote {args.output} (mode 0600), key id {key.id}. Hand it over out of band; never "
         "send it with an artefact.")  # fmt: skip
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    key = _key(args.key)
    summary = build(
        args.inputs,
        key,
        args.output,
        fields=args.field,
        fpr=args.fpr,
        capacity=args.capacity,
        exact=args.exact,
        options=_read_options(args),
        rejects_path=args.rejects,
        progress=Progress(quiet=args.quiet or args.json),
        note=lambda s: _note(args, s),
        authenticate=args.authenticate,
        key_path=args.key,
        output_encoding=args.output_encoding,
        canon_version=args.canon_version,
    )
    lines = [f"wrote {summary['output']} (key id {key.id})"]
    for inp in summary["inputs"]:
        lines.append(
            f"  {inp['path']}: {inp['records']:,} records: {inp['rows']:,} rows used, "
            f"{inp['unreadable_rows']:,} unreadable; {inp['format']}, {inp['encoding']}"
        )
        for s in inp.get("skipped_sheets") or []:
            lines.append(
                f"    sheet {s['sheet']!r} skipped ({s['rows']:,} rows): no column "
                + ", ".join(map(repr, s["missing_columns"]))
            )
    for s in summary["sections"]:
        e = _core.Estimate(**s["distinct_estimate"])
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(s["rejected_by_reason"].items()))
        lines.append(
            f"  {s['kind']} ({s['column']}): {s['valid']:,} valid, {s['missing']:,} missing, "
            f"{s['rejected']:,} rejected{' (' + reasons + ')' if reasons else ''}; "
            f"distinct {_fmt_est(e)}"
        )
    if summary["rejects_file"]:
        lines.append(
            f"  rejects: {summary['rejects_file']} ({summary['rejected_rows']:,} rows; "
            "it holds raw values: keep it with the case file)"
        )
    lines.append(f"  manifest: {summary['manifest']}")
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    _out(args, summary, "\n".join(lines))
    return 0


def _section_facts(s: BloomIndex | TagSet) -> dict[str, Any]:
    e = s.estimate_count()
    d: dict[str, Any] = {
        "type": "bloom" if isinstance(s, BloomIndex) else "tagset",
        "kind": s.kind,
        "canon_version": s.canon_version,
        "estimate": e.to_dict(),
    }
    if isinstance(s, BloomIndex):
        fpr = s.expected_fpr()
        d.update(num_blocks=s.num_blocks, blocks_per_key=s.blocks_per_key, size_bytes=s.size_bytes,
                 items_added=s.items_added, expected_fpr=fpr,
                 saturated=not fpr == fpr or fpr >= 0.5)  # fmt: skip
    else:
        d.update(tags=len(s), size_bytes=8 * len(s))
    return d


def cmd_inspect(args: argparse.Namespace) -> int:
    art = _load(args.artefact)
    created = _created(art.created)
    data = {
        "path": args.artefact,
        "format_version": _core.FORMAT_VERSION,
        "authenticated": art.authenticated,
        "key_id": art.key_id,
        "created": created,
        "file_size": os.path.getsize(args.artefact),
        "sections": [_section_facts(s) for s in art],
    }
    lines = [
        f"{args.artefact}: pi_match format v{_core.FORMAT_VERSION}, key id {art.key_id}, "
        f"created {created}, "
        + (
            "authenticated (check with: pi-match verify --key)"
            if art.authenticated
            else "not authenticated"
        )  # fmt: skip
    ]
    for d in data["sections"]:
        e = _core.Estimate(**d["estimate"])
        size = f"{d['size_bytes'] / 2**20:,.2f} MiB"
        extra = ""
        if d["type"] == "bloom":
            extra = (
                f", {d['num_blocks']:,} blocks × {d['blocks_per_key']} per item, "
                f"FPR now {d['expected_fpr']:.1e}"
            )
        lines.append(f"  {d['kind']} {d['type']}: {_fmt_est(e)} items, {size}{extra}")
    _out(args, data, "\n".join(lines))
    return 0


def _sections_by_kind(art: Artefact) -> dict[str, dict[str, BloomIndex | TagSet]]:
    out: dict[str, dict[str, BloomIndex | TagSet]] = {}
    for s in art:
        out.setdefault(s.kind, {})["tagset" if isinstance(s, TagSet) else "bloom"] = s
    return out


def _pick(secs: list[dict[str, BloomIndex | TagSet]]) -> list[BloomIndex | TagSet] | None:
    """Tag sets when every input has one (exact), else Bloom indices when every input has one."""
    for t in ("tagset", "bloom"):
        if all(t in s for s in secs):
            return [s[t] for s in secs]
    return None


def cmd_compare(args: argparse.Namespace) -> int:
    from .count import count_overlaps

    if args.plot:
        check_outputs({"artefact": args.artefacts}, {"plot": args.plot})
    loaded = [_load(p) for p in args.artefacts]
    _same_key(args.artefacts, loaded)
    arts = [(p, _sections_by_kind(a)) for p, a in zip(args.artefacts, loaded, strict=True)]
    pairs = []
    unmatched: list[str] = []
    lines = []
    for (pa_, a), (pb, b) in itertools.combinations(arts, 2):
        for kind in sorted(set(a) & set(b)):
            if "tagset" in a[kind] and "tagset" in b[kind]:
                e = estimate_overlap(a[kind]["tagset"], b[kind]["tagset"])
            elif "bloom" in a[kind] and "bloom" in b[kind]:
                e = estimate_overlap(a[kind]["bloom"], b[kind]["bloom"])
            else:
                unmatched.append(
                    f"{pa_} holds {kind} only as {' and '.join(a[kind])} and {pb} only as "
                    f"{' and '.join(b[kind])}"
                )
                continue
            pairs.append({"a": pa_, "b": pb, "kind": kind, "estimate": e.value, "low": e.low,
                          "high": e.high, "exact": e.value if e.exact else None,
                          "method": e.method})  # fmt: skip
            lines.append(
                f"{os.path.basename(pa_)} ∩ {os.path.basename(pb)} [{kind}]: {_fmt_est(e)}"
            )
    if not pairs:
        if unmatched:
            raise UserError(
                "nothing to compare: " + "; ".join(unmatched) + " (a tag set compares only with "
                "tag sets and a Bloom index with Bloom indices; rebuild with the same --exact)"
            )
        raise UserError("these artefacts share no identifier kind to compare")
    names = [p for p, _ in arts]
    kinds = []
    overlaps = []
    notes: list[str] = []
    for kind in sorted(set.intersection(*(set(a) for _, a in arts))):
        picked = _pick([a[kind] for _, a in arts])
        partial = [p for p, a in arts if "tagset" in a[kind]]
        if picked is not None and isinstance(picked[0], BloomIndex) and partial:
            # Some inputs are exact, not all: a tag set only compares with tag sets.
            lacking = [p for p, a in arts if "tagset" not in a[kind]]
            why = (f"[{kind}] estimates from the Bloom indices: {', '.join(lacking)} "
                   f"{'has' if len(lacking) == 1 else 'have'} no exact tag set (build "
                   "it with --exact for exact counts)")  # fmt: skip
            notes.append(why)
            lines.append(why)
        if picked is None:
            continue
        ov = count_overlaps(picked, names)
        overlaps.append(ov)
        kinds.append(ov.to_dict())
        lines.append(f"[{kind}] distinct across all: {_fmt_est(ov.union)}; in two or more: "
                     f"{_fmt_est(ov.in_two_or_more)}")  # fmt: skip
        for name, u in zip(names, ov.unique, strict=True):
            lines.append(f"    only in {os.path.basename(name)}: {_fmt_est(u)}")
    data: dict[str, Any] = {"pairs": pairs, "kinds": kinds, "notes": notes}
    for k in kinds:
        # The per-kind totals also sit beside "pairs" under the kind's name.
        data[k["kind"]] = {q: k[q] for q in ("union", "in_two_or_more", "unique")}
    if args.plot:
        from .plot import overlap_plot, stack_pngs

        plots = [overlap_plot(ov) for ov in overlaps]
        write_bytes(args.plot, stack_pngs([p.png for p in plots]))
        data["plot"] = args.plot
        lines.append(f"plot: {args.plot}")
        legend = {k: v for p in plots for k, v in p.legend.items()}
        if legend:
            # No CJK font: the figure names inputs by letter; say which is which.
            data["plot_legend"] = legend
            lines += [f"  {k} = {v}" for k, v in legend.items()]
            lines.append("  (install fonts-noto-cjk to see the names in the figure)")
    _out(args, data, "\n".join(lines))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .count import build_options, plan

    if len(args.sizes) > 1 and args.min_overlap is None:
        raise UserError("plan with two or more sizes needs --min-overlap")
    p = plan(args.sizes, args.min_overlap or 0, precision=args.precision, fpr=args.fpr)
    text = f"{p.recommendation}: {p.reason}"
    data = p.to_dict()
    if p.recommendation == "bloom" and p.num_blocks:
        capacity, rate = build_options(max(args.sizes), p.num_blocks)
        data["build_options"] = {"capacity": capacity, "fpr": rate}
        text += (f"\n  build with: --capacity {capacity} --fpr {rate} "
                 f"(index of {p.num_blocks:,} blocks, FPR {p.fpr:.1e} at that size)")  # fmt: skip
    elif p.recommendation == "tagset":
        text += "\n  build with --exact and compare the tag sets, or probe with the raw list"
    _out(args, data, text)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .count import overlaps_from_tags
    from .report import count_case, load_case, public, to_html, to_markdown

    if args.example:
        from .example import write_example

        written = write_example(args.example)
        _out(args, {"example": args.example, "files": written},
             f"wrote the worked example to {args.example}; run: pi-match report "
             f"{os.path.join(args.example, 'case.toml')}")  # fmt: skip
        return 0
    if not args.case:
        raise UserError("report needs a case file (CASE.toml), or --example DIR to write one")
    if args.pdf:
        from .pdf import INSTALL, find_browser

        if find_browser() is None:
            raise UserError(INSTALL)
    case = load_case(args.case)
    if not os.path.exists(case.key_path):
        raise UserError(f"{args.case}: key file {case.key_path} not found")
    prefix = args.output or os.path.splitext(args.case)[0] + "_report"
    exts = (".md", ".html", ".json") + ((".pdf",) if args.pdf else ())
    check_outputs(
        {"case file": [args.case], "key file": [case.key_path],
         "input": [d.path for d in case.datasets]},
        {f"report ({ext})": prefix + ext for ext in exts},
    )  # fmt: skip
    progress = Progress(quiet=args.quiet or args.json)
    try:
        report = count_case(case, progress=lambda n: progress.update("report", n))
    finally:
        progress.done()
    figures = []
    if not args.no_plot and len(report["datasets"]) >= 2:
        try:
            from .plot import overlap_figure

            tags = report["_tags"]
            ov = overlaps_from_tags(
                "items", [os.path.basename(p) for p in tags], list(tags.values())
            )
            figures.append(overlap_figure(ov))
        except PiMatchError as e:
            _note(args, f"note: {e}; the HTML report has no figure")
    staged = {ext: Staged(prefix + ext, mode=OUTPUT_MODE) for ext in exts}
    body = {
        ".md": to_markdown(report),
        ".html": to_html(report, figures),
        ".json": json.dumps(jsonable(public(report)), ensure_ascii=False, indent=1),
    }
    try:
        for ext, s in staged.items():
            if ext == ".pdf":
                from .pdf import html_to_pdf

                html_to_pdf(body[".html"], s.tmp)
                continue
            with s.open_text() as f:
                f.write(body[ext])
                f.flush()
                os.fsync(f.fileno())
        commit(list(staged.values()))
    finally:
        for s in staged.values():
            if not s.done:
                s.discard()
    yes = {True: "yes", False: "no"}

    def by(reasons: list[str]) -> str:
        return f" (by {', '.join(reasons)})" if reasons else ""

    text = "\n".join(
        [f"{report['case']}: Σ n/T = {report['ratio_sum']:.3f}; serious: "
         f"{yes[report['serious']]}{by(report['serious_by'])}; especially "
         f"serious: {yes[report['especially_serious']]}{by(report['especially_serious_by'])}"]
        + [f"  {c['category']} (tier {c['tier']}): {c['count']:,} items"
           + (f" ({c['count_person']:,} persons, {c['count_identifier']:,} by first "
              f"identifier; using {report['dedup']})"
              if c["count_person"] != c["count_identifier"] else "")
           for c in report["categories"]]
        + [f"wrote {', '.join(prefix + e for e in exts)} (a counting aid, not a legal conclusion)"]
    )  # fmt: skip
    _out(args, public(report), text)
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    rejects_path = args.rejects or (args.output + ".rejects.csv" if args.output else None)
    check_outputs(
        {"input": [args.input], "their artefact": [args.index], "key file": [args.key]},
        {"hits file": args.output, "rejects file": rejects_path},
    )
    key = _key(args.key)
    theirs = _sections_by_kind(_load(args.index, key=key))
    src = open_source(args.input, _read_options(args))
    chosen, notes = resolve_fields([src], args.field)
    for msg in notes:
        _note(args, "field " + msg)
    missing = [k for k, _ in chosen if k not in theirs]
    if missing:
        raise UserError(
            f"{args.index} has no section for {', '.join(missing)}; "
            f"it has {', '.join(sorted(theirs))}"
        )
    progress = Progress(quiet=args.quiet or args.json)
    stats = {k: SectionStats(k, c) for k, c in chosen}
    rows = hits = n_rejects = 0
    expected_fp = 0.0
    hits_out = Staged(args.output, mode=RAW_VALUES_MODE) if args.output else None
    rej_out = Staged(rejects_path, mode=RAW_VALUES_MODE) if rejects_path else None
    staged = [s for s in (hits_out, rej_out) if s is not None]
    try:
        enc = csv_encoding(args.output_encoding)
        hf = hits_out.open_text(enc) if hits_out else None
        rf = rej_out.open_text(enc) if rej_out else None
        writer = csv.writer(hf) if hf else None
        rwriter = csv.writer(rf) if rf else None
        if writer is not None:
            writer.writerow(["line", "matched", *src.columns])
        if rwriter is not None:
            rwriter.writerow(["file", "line", "column", "reason", "raw"])
        for batch in src.batches():
            n = len(batch)
            rows += n
            hit = np.zeros(n, dtype=bool)
            matched: list[list[str]] = [[] for _ in range(n)]
            for kind, col in chosen:
                sec = theirs[kind].get("tagset") or theirs[kind]["bloom"]
                values = batch.column(col)
                h, codes = sec.contains(values, reasons=True)
                stats[kind].absorb_codes(np.asarray(codes, dtype=np.uint8))
                if isinstance(sec, BloomIndex):
                    expected_fp += float((codes == 0).sum()) * sec.expected_fpr()
                bad = np.flatnonzero((codes != OK) & ~np.isin(codes, list(MISSING)))
                if len(bad):
                    n_rejects += len(bad)
                    if rwriter is not None:
                        raw = values.take(bad).to_pylist()
                        for i, v in zip(bad.tolist(), raw, strict=True):
                            rwriter.writerow(
                                [src.path, int(batch.lines[i]), col, REASONS[codes[i]], raw_text(v)]
                            )
                for i in np.flatnonzero(h).tolist():
                    matched[i].append(kind)
                hit |= h
            idx = np.flatnonzero(hit)
            hits += len(idx)
            if writer is not None and len(idx):
                cols = {c: batch.column(c).take(idx).to_pylist() for c in src.columns}
                for j, i in enumerate(idx.tolist()):
                    vals = [
                        None if cols[c][j] is None else raw_text(cols[c][j]) for c in src.columns
                    ]
                    writer.writerow([int(batch.lines[i]), "+".join(matched[i]), *vals])
            progress.update(os.path.basename(src.path), n)
        for r in src.rejects:
            n_rejects += 1
            if rwriter is not None:
                rwriter.writerow([r.file, r.line, r.column, r.reason, r.raw])
        for f in (hf, rf):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
                f.close()
        commit(staged)
    finally:
        progress.done()
        for s in staged:
            if not s.done:
                s.discard()
    unreadable = src.unreadable
    data = {"rows": rows, "hits": hits, "expected_false_positives": expected_fp,
            "input": args.input, "index": args.index, "output": args.output,
            "fields": [{"kind": k, "column": c} for k, c in chosen],
            "records": rows + unreadable, "unreadable_rows": unreadable,
            "rejects_file": rejects_path,
            "sections": [{"kind": s.kind, "column": s.column, "rows": s.rows, "valid": s.valid,
                          "missing": s.missing, "rejected": s.rejected,
                          "rejected_by_reason": s.rejected_by_reason} for s in stats.values()],
            }  # fmt: skip
    fields_text = "; ".join(
        f"{s.kind}: {s.valid:,} valid, {s.missing:,} missing, {s.rejected:,} rejected"
        for s in stats.values()
    )
    text = (f"{hits:,} of {rows + unreadable:,} records of {args.input} appear in {args.index} "
            f"(about {expected_fp:.2g} of them expected to be false positives)"
            + (f"; {unreadable:,} records could not be read and were not probed"
               if unreadable else "")
            + f"\n  {fields_text}"
            + (f"; rejected and unreadable rows in {rejects_path}" if rejects_path and n_rejects
               else "")
            + (f"\n  hits written to {args.output} (raw values: keep it with the case file)"
               if args.output else ""))  # fmt: skip
    _out(args, data, text)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ._artefact import verify

    if not os.path.exists(args.artefact):
        raise UserError(f"artefact {args.artefact} not found")
    status = verify(args.artefact, _key(args.key))
    text = {
        "valid": f"{args.artefact}: authentic — made with key {_key(args.key).id} and not altered",
        "invalid": f"{args.artefact}: NOT authentic — altered, or not made by a holder of this key",
        "not_authenticated": f"{args.artefact}: carries no MAC (built without --authenticate)",
    }[status]
    # Each verdict once: on stdout when it holds, as the error line when it does not.
    if status == "valid" or args.json:
        _out(args, {"artefact": args.artefact, "status": status}, text)
    else:
        print(f"pi-match: error: {text}", file=sys.stderr)
    return 0 if status == "valid" else 1


def cmd_merge(args: argparse.Namespace) -> int:
    check_outputs({"artefact": args.artefacts}, {"merged artefact": args.output})
    arts = [_load(p) for p in args.artefacts]
    _same_key(args.artefacts, arts)
    merged: dict[tuple[str, str], Any] = {}
    count: dict[tuple[str, str], int] = {}
    order: list[tuple[str, str]] = []
    for art in arts:
        for s in art:
            k = (s.kind, type(s).__name__)
            count[k] = count.get(k, 0) + 1
            if k in merged:
                merged[k] = merged[k] | s
            else:
                merged[k] = s
                order.append(k)
    # An exact set is only exact if every input had one for that kind: otherwise drop it
    # rather than pass off a partial union as exact.
    dropped = [k for k in order if k[1] == "TagSet" and count[k] < len(arts)]
    for k in dropped:
        _note(args, f"note: not every input has an exact {k[0]} tag set; the merge keeps only "
                    f"the {k[0]} Bloom index")  # fmt: skip
    keep = [k for k in order if k not in dropped]
    missing = [k for k in keep if k[1] == "BloomIndex" and count[k] < len(arts)]
    if missing:
        raise UserError(
            f"not every input has a {missing[0][0]} index; a merge would undercount. "
            "Merge artefacts that hold the same kinds."
        )
    # Indices of different sizes are folded to the smallest: say what that does to the rate.
    warnings = []
    for k in keep:
        if k[1] != "BloomIndex":
            continue
        after = merged[k].expected_fpr()
        before = max(s.expected_fpr() for a in arts for s in a
                     if isinstance(s, BloomIndex) and s.kind == k[0])  # fmt: skip
        if not after == after or after >= SATURATED_FPR:
            raise UserError(
                f"merge refused: the merged {k[0]} index would be saturated "
                f"({merged[k].num_blocks:,} blocks for about {merged[k].items_added:,} "
                "values; nearly every lookup would match). Rebuild the smaller inputs with a "
                "larger --capacity"
            )
        sizes = {s.num_blocks for a in arts for s in a
                 if isinstance(s, BloomIndex) and s.kind == k[0]}  # fmt: skip
        if len(sizes) > 1 or after > FPR_WARN_FACTOR * max(before, 1e-12):
            warnings.append(
                f"the {k[0]} indices were folded to {merged[k].num_blocks:,} blocks (the "
                f"smallest input; the others had {', '.join(f'{b:,}' for b in sorted(sizes)[1:])}"
                f"): the false-positive rate is now {after:.1e} (inputs: up to {before:.1e})"
                if len(sizes) > 1 else
                f"merging into {merged[k].num_blocks:,} blocks raised the {k[0]} false-positive "
                f"rate from {before:.1e} to {after:.1e}"
            )  # fmt: skip
    for w in warnings:
        _note(args, "warning: " + w)
    out = Artefact([merged[k] for k in keep])
    out.save(args.output)
    data = {"output": args.output, "inputs": args.artefacts, "key_id": out.key_id,
            "sections": [_section_facts(s) for s in out],
            "dropped_exact": [k[0] for k in dropped],
            "warnings": warnings}  # fmt: skip
    text = f"wrote {args.output}: " + ", ".join(
        f"{s.kind} {type(s).__name__} {_fmt_est(s.estimate_count())}" for s in out
    )
    _out(args, data, text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import contextlib
    import io

    from .demo import run

    key = _key(args.key) if args.key else None
    shown = io.StringIO()
    # With --json the text goes nowhere and the numbers come out as JSON, like every command.
    with contextlib.redirect_stdout(shown) if args.json or args.quiet else contextlib.nullcontext():
        result = run(args.hotel, args.resold, args.shared, key=key)
    kinds = {
        kind: {"estimate": r["estimate"].to_dict(), "exact": r["exact"], "truth": r["truth"]}
        for kind, r in result["kinds"].items()
    }
    if args.json:
        _out(args, {"kinds": kinds}, "")
    exact_ok = all(k["exact"] == k["truth"] for k in kinds.values())
    return 0 if exact_ok else 1


# ---- parser -------------------------------------------------------------------------------

REPORT_HELP = """\
Count the items of a case under 法释〔2017〕10号 (arts. 5, 6, 11) and write PREFIX.md,
PREFIX.html and PREFIX.json (and PREFIX.pdf with --pdf). A counting aid, not a legal
conclusion. The case manifest is TOML (every key: docs/REPORT.md; a commented one:
pi-match report --example DIR):

  [case]
  name = "..."                 case name (shown in the report)
  key = "op.key"               the operation's key file
  insider = false              obtained in the course of duties: thresholds halved
  dedup = "person"             "person": rows sharing any identifier are one item;
                               "identifier": a row is its first valid identifier
  illegal_gains = 4000         违法所得 in yuan (optional; art. 5 (七))
  purpose = "legitimate_business"   art. 6 (optional); profit = 60000 (optional)

  [[dataset]]                  one per file
  path = "seized/a.csv"
  fields = { cn_ric = "身份证号", cn_mobile = 3 }   kind = column name or number
  category = "住宿信息"          an art. 5 category (or give tier = 50 | 500 | 5000)
  role = "obtained"            or "sold", with buyers = ["张某", "李某"]
  delimiter, header, encoding, sheet, format   read options, as for build
"""


def rate(text: str) -> float:
    """A false-positive rate: a number strictly between 0 and 1."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1, e.g. 1e-6")
    return x


def count(text: str) -> int:
    """A positive whole number of items; `1e6` and `1_000_000` are accepted."""
    try:
        x = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (x == x and 1 <= x < 2**62) or x != int(x):
        raise argparse.ArgumentTypeError(f"{text} must be a whole number of at least 1")
    return int(x)


def positive(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (x > 0 and x != float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return x


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or notes")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument("--field", action="append", default=[], metavar="KIND=COLUMN",
                         help="identifier kind and its column (header name or 1-based number); "
                         "repeat for several kinds; detected when omitted")  # fmt: skip
    reading.add_argument("--encoding", help="the input's encoding (default: BOM, UTF-8, GB18030)")
    reading.add_argument(
        "--delimiter", help="field separator, e.g. ',' '\\t' '|' '----' (default: sniffed)"
    )
    reading.add_argument("--no-header", action="store_true", help="the first line is data")
    reading.add_argument(
        "--sheet", help="Excel sheet (or SQL table) to read (default: all sheets / the first table)"
    )
    reading.add_argument("--format", choices=["csv", "lines", "jsonl", "parquet", "xlsx", "sql"],
                         help="input format (default: from the file name)")  # fmt: skip
    reading.add_argument("--output-encoding", default="utf-8-sig",
                         choices=["utf-8-sig", "utf-8", "gb18030"],
                         help="encoding of CSV outputs (rejects, hits); default UTF-8 with a "
                         "byte-order mark, which Excel on Chinese Windows opens right")  # fmt: skip

    p = argparse.ArgumentParser(
        prog="pi-match",
        description="Privacy-preserving breach matching: count shared victims across cases "
        "without exchanging raw personal data.",
    )
    p.add_argument("--version", action="version", version=f"pi_match {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    k = sub.add_parser("keygen", parents=[common], help="make a new key for a joint operation")
    k.add_argument("-o", "--output", required=True, help="key file to write (mode 0600)")
    k.add_argument("--force", action="store_true", help="replace an existing key file")
    k.set_defaults(func=cmd_keygen)

    b = sub.add_parser(
        "build", parents=[common, reading], help="build an artefact from input files"
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT")
    b.add_argument("--key", required=True, help="key file")
    b.add_argument("-o", "--output", required=True, help="artefact to write (.pmi)")
    b.add_argument(
        "--fpr", type=rate, default=1e-6, help="Bloom false-positive rate (default 1e-6)"
    )
    b.add_argument(
        "--capacity", type=count, help="distinct values to size for (default: the row count)"
    )
    b.add_argument("--exact", action="store_true", help="also store exact tag sets")
    b.add_argument(
        "--canon-version",
        type=int,
        metavar="N",
        help="identifier rules of generation N (1: pi_match 0.1) to match a partner's older "
        "artefacts (default: the newest)",
    )
    b.add_argument("--rejects", help="rejects CSV (default: OUTPUT.rejects.csv)")
    b.add_argument(
        "--authenticate",
        action="store_true",
        help="add a MAC so key holders can check the artefact (pi-match verify)",
    )
    b.set_defaults(func=cmd_build)

    i = sub.add_parser(
        "inspect", parents=[common], help="header facts of an artefact (no key needed)"
    )
    i.add_argument("artefact")
    i.set_defaults(func=cmd_inspect)

    c = sub.add_parser(
        "compare", parents=[common], help="overlaps, union, shared and unique victims (no key)"
    )
    c.add_argument("artefacts", nargs="+", metavar="ARTEFACT")
    c.add_argument("--plot", metavar="PNG", help="write an overlap heatmap and combination bars")
    c.set_defaults(func=cmd_compare)

    pl = sub.add_parser("plan", parents=[common], help="size indices for an exchange")
    pl.add_argument(
        "--sizes", nargs="+", required=True, type=count, metavar="N", help="expected list sizes"
    )
    pl.add_argument(
        "--min-overlap",
        type=count,
        help="the smallest overlap that matters (needed with two or more sizes)",
    )
    pl.add_argument(
        "--precision",
        type=positive,
        default=0.5,
        help="95%% interval half-width relative to that overlap (default 0.5)",
    )
    pl.add_argument("--fpr", type=rate, help="also probe at this false-positive rate")
    pl.set_defaults(func=cmd_plan)

    rp = sub.add_parser(
        "report",
        parents=[common],
        help="statutory count report from a case",
        description=REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("case", metavar="CASE.toml", nargs="?", help="the case manifest")
    rp.add_argument("-o", "--output", help="path prefix for .md/.html/.json (default: CASE_report)")
    rp.add_argument("--no-plot", action="store_true", help="no figure in the HTML report")
    rp.add_argument("--pdf", action="store_true", help="also write PREFIX.pdf (needs Chromium)")
    rp.add_argument(
        "--example", metavar="DIR", help="write a commented case.toml and synthetic data to DIR"
    )
    rp.set_defaults(func=cmd_report)

    pr = sub.add_parser(
        "probe", parents=[common, reading], help="which of my rows are in their artefact"
    )
    pr.add_argument("input", metavar="INPUT")
    pr.add_argument("--index", required=True, help="their artefact")
    pr.add_argument("--key", required=True, help="key file")
    pr.add_argument("-o", "--output", help="CSV of the matching rows (line number and row)")
    pr.add_argument(
        "--rejects", help="CSV of rows that could not be probed (default: OUTPUT.rejects.csv)"
    )
    pr.set_defaults(func=cmd_probe)

    v = sub.add_parser("verify", parents=[common], help="check an artefact's MAC with the key")
    v.add_argument("artefact")
    v.add_argument("--key", required=True, help="key file")
    v.set_defaults(func=cmd_verify)

    m = sub.add_parser("merge", parents=[common], help="union artefacts made with one key")
    m.add_argument("artefacts", nargs="+", metavar="ARTEFACT")
    m.add_argument("-o", "--output", required=True)
    m.set_defaults(func=cmd_merge)

    d = sub.add_parser(
        "demo", parents=[common], help="index two synthetic breach lists and compare them"
    )
    d.add_argument("--hotel", type=int, default=200_000, help="rows in the first list")
    d.add_argument("--resold", type=int, default=120_000, help="rows in the second list")
    d.add_argument("--shared", type=int, default=30_000, help="people in both lists")
    d.add_argument("--key", help="use this key file instead of a fresh key (reproducible run)")
    d.set_defaults(func=cmd_demo)
    return p


def _fix_dash_values(argv: list[str]) -> list[str]:
    """`--delimiter ----` would read as an option; glue such values to their flag."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a in ("--delimiter",):
            nxt = next(it, None)
            out.append(a if nxt is None else f"{a}={nxt}")
        else:
            out.append(a)
    return out


def one_line(msg: str) -> str:
    return " ".join(msg.split("\n"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = _fix_dash_values(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    if getattr(args, "delimiter", None) == "\\t":
        args.delimiter = "\t"
    try:
        if args.command == "compare" and len(args.artefacts) < 2:
            raise UserError("compare needs at least two artefacts")
        return int(args.func(args))
    except (UserError, InputError, PiMatchError) as e:
        print(f"pi-match: error: {one_line(str(e))}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more.
        sys.stderr.close()
        return 0
    except FileNotFoundError as e:
        print(f"pi-match: error: {e.filename or e}: no such file", file=sys.stderr)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename and str(e.filename) not in str(e.strerror) else ""
        print(f"pi-match: error: {one_line(where + (e.strerror or str(e)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pi-match: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
