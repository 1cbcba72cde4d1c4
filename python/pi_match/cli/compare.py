"""`pi-match compare`: overlaps, union, shared and unique (`pi_match.count.compare`)."""

from __future__ import annotations

import argparse
import os

from .. import PiMatchError, _core
from ..outputs import check_outputs, write_bytes
from ._common import (
    UserError,
    fmt_est,
    load_artefact,
    out,
)


def run(args: argparse.Namespace) -> int:
    from ..count import compare

    if args.plot:
        check_outputs({"artefact": args.artefacts}, {"plot": args.plot})
    try:
        c = compare([load_artefact(p) for p in args.artefacts], args.artefacts)
    except PiMatchError as e:
        raise UserError(str(e).removeprefix("incompatible artefacts: ")) from None
    lines = [
        f"{os.path.basename(p['a'])} ∩ {os.path.basename(p['b'])} [{p['kind']}]: "
        + fmt_est(_core.Estimate(p["estimate"], p["low"], p["high"], p["method"]))
        for p in c.pairs
    ]
    lines += c.notes
    for ov in c.overlaps:
        lines.append(f"[{ov.kind}] distinct across all: {fmt_est(ov.union)}; in two or more: "
                     f"{fmt_est(ov.in_two_or_more)}")  # fmt: skip
        for name, u in zip(c.names, ov.unique, strict=True):
            lines.append(f"    only in {os.path.basename(name)}: {fmt_est(u)}")
    data = c.to_dict()
    if args.plot:
        from ..plot import overlap_plot, stack_pngs

        plots = [overlap_plot(ov) for ov in c.overlaps]
        write_bytes(args.plot, stack_pngs([p.png for p in plots]))
        data["plot"] = args.plot
        lines.append(f"plot: {args.plot}")
        legend = {k: v for p in plots for k, v in p.legend.items()}
        if legend:
            # No CJK font: the figure names inputs by letter; say which is which.
            data["plot_legend"] = legend
            lines += [f"  {k} = {v}" for k, v in legend.items()]
            lines.append("  (install fonts-noto-cjk to see the names in the figure)")
    out(args, data, "\n".join(lines))
    return 0
