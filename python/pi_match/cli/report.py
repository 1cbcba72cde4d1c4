"""`pi-match report`: the statutory count report (`pi_match.report`)."""

from __future__ import annotations

import argparse
import json
import os

from .. import PiMatchError
from ..build import Progress
from ..outputs import OUTPUT_MODE, Staged, check_outputs, commit
from ._common import (
    UserError,
    jsonable,
    note,
    out,
)


def run(args: argparse.Namespace) -> int:
    from ..count import overlaps_from_tags
    from ..report import count_case, load_case, public, to_html, to_markdown

    if args.example:
        from ..example import write_example

        written = write_example(args.example)
        out(args, {"example": args.example, "files": written},
             f"wrote the worked example to {args.example}; run: pi-match report "
             f"{os.path.join(args.example, 'case.toml')}")  # fmt: skip
        return 0
    if not args.case:
        raise UserError("report needs a case file (CASE.toml), or --example DIR to write one")
    if args.pdf:
        from ..pdf import INSTALL, find_browser

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
            from ..plot import overlap_figure

            tags = report.tags
            ov = overlaps_from_tags(
                "items", [os.path.basename(p) for p in tags], list(tags.values())
            )
            figures.append(overlap_figure(ov))
        except PiMatchError as e:
            note(args, f"note: {e}; the HTML report has no figure")
    staged = {ext: Staged(prefix + ext, mode=OUTPUT_MODE) for ext in exts}
    body = {
        ".md": to_markdown(report),
        ".html": to_html(report, figures),
        ".json": json.dumps(jsonable(public(report)), ensure_ascii=False, indent=1),
    }
    try:
        for ext, s in staged.items():
            if ext == ".pdf":
                from ..pdf import html_to_pdf

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
    out(args, public(report), text)
    return 0
