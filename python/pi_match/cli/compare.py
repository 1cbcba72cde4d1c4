"""`pi-match compare`: overlaps, union, shared and unique (`pi_match.count.compare`)."""

from __future__ import annotations

import argparse
import filecmp
import os

from .. import PiMatchError, _core
from ..outputs import check_outputs
from ._common import (
    UserError,
    fmt_est,
    load_artefact,
    out,
    overlap_lines,
    write_plot,
)


def run(args: argparse.Namespace) -> int:
    from ..count import compare
    from ..io import check_distinct_inputs

    if args.plot:
        check_outputs({"artefact": args.artefacts}, {"plot": args.plot})
    # One artefact given twice would be counted as two cases sharing all their victims.
    check_distinct_inputs(args.artefacts)
    try:
        c = compare([load_artefact(p) for p in args.artefacts], args.artefacts)
    except PiMatchError as e:
        raise UserError(str(e).removeprefix("incompatible artefacts: ")) from None
    c.notes[:0] = copies_among(args.artefacts)
    lines = [
        f"{os.path.basename(p['a'])} ∩ {os.path.basename(p['b'])} [{p['kind']}]: "
        + fmt_est(_core.Estimate(p["estimate"], p["low"], p["high"], p["method"]))
        for p in c.pairs
    ]
    lines += overlap_lines(c)
    data = c.to_dict()
    if args.plot:
        write_plot(args.plot, c.overlaps, data, lines)
    out(args, data, "\n".join(lines))
    return 0


def copies_among(paths: list[str]) -> list[str]:
    """A note for each artefact that is a byte-for-byte copy of an earlier one (the same size,
    header, creation time and section checksums — the first 64 KiB hold them all): compared as
    two cases, its victims would all count as shared."""
    seen: dict[tuple[int, bytes], str] = {}
    notes = []
    for p in paths:
        with open(p, "rb") as f:
            ident = (os.fstat(f.fileno()).st_size, f.read(64 << 10))
        if ident in seen and filecmp.cmp(p, seen[ident], shallow=False):
            notes.append(
                f"warning: {p} is a copy of {seen[ident]} (the same artefact, byte for byte): "
                "compared as two cases, every victim in it counts as shared"
            )
        else:
            seen.setdefault(ident, p)
    return notes
