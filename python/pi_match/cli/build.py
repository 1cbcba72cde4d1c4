"""`pi-match build`: an artefact from input files (the work is `pi_match.build.build`)."""

from __future__ import annotations

import argparse

from .. import _core
from ..build import Progress, build
from ._common import (
    fmt_est,
    load_key,
    note,
    out,
    read_options,
)


def run(args: argparse.Namespace) -> int:
    key = load_key(args.key)
    summary = build(
        args.inputs,
        key,
        args.output,
        fields=args.field,
        fpr=args.fpr,
        capacity=args.capacity,
        exact=args.exact,
        options=read_options(args),
        rejects_path=args.rejects,
        progress=Progress(quiet=args.quiet or args.json),
        note=lambda s: note(args, s),
        authenticate=args.authenticate,
        key_path=args.key,
        output_encoding=args.output_encoding,
        canon_version=args.canon_version,
        prf=args.prf,
        workers=args.workers,
        scheduler=args.scheduler,
        plain_tag_sets=args.plain_tag_sets,
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
            f"distinct {fmt_est(e)}"
        )
    if summary["rejects_file"]:
        lines.append(
            f"  rejects: {summary['rejects_file']} ({summary['rejected_rows']:,} rows; "
            "it holds raw values: keep it with the case file)"
        )
    lines.append(f"  manifest: {summary['manifest']}")
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    out(args, summary, "\n".join(lines))
    return 0
