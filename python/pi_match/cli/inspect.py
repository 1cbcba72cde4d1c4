"""`pi-match inspect`: an artefact's header facts, no key needed (`Artefact.describe`)."""

from __future__ import annotations

import argparse
import os

from .. import _core
from ._common import (
    fmt_est,
    load_artefact,
    out,
)


def run(args: argparse.Namespace) -> int:
    art = load_artefact(args.artefact)
    data = {"path": args.artefact, "file_size": os.path.getsize(args.artefact), **art.describe()}
    lines = [
        f"{args.artefact}: pi_match format v{data['format_version']}, key id {art.key_id}, "
        f"created {data['created']}, "
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
        lines.append(
            f"  {d['kind']} {d['type']} ({d['prf']}, rules v{d['canon_version']}): "
            f"{fmt_est(e)} items, "
            f"{size}{extra}"
        )
    out(args, data, "\n".join(lines))
    return 0
