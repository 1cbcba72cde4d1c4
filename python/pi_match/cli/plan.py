"""`pi-match plan`: sizing an exchange (`pi_match.count.plan`)."""

from __future__ import annotations

import argparse

from ._common import (
    UserError,
    out,
)


def run(args: argparse.Namespace) -> int:
    from ..count import build_options, plan

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
    out(args, data, text)
    return 0
