"""`pi-match inspect`: an artefact's header facts, no key needed (`Artefact.describe`)."""

from __future__ import annotations

import argparse
import os
import stat

from .. import _core
from ._common import (
    fmt_est,
    load_artefact,
    out,
)


def _is_message(path: str) -> bool:
    """A keyless-mode message (header flag bit 1, docs/PSI.md), not a keyed artefact. Only a
    regular file is opened to look (a FIFO would block); anything else is left to the
    artefact loader, which refuses it by name."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            head = f.read(41)
    except OSError:
        return False
    return len(head) == 41 and head[:8] == b"\x89PIM\r\n\x1a\n" and bool(head[40] & 2)


def _message(args: argparse.Namespace) -> int:
    from ..psi import PsiMessage

    m = PsiMessage.load(args.artefact)
    missing = [p for p in m.parties if p not in m.applied]
    data = {
        "path": args.artefact, "file_size": os.path.getsize(args.artefact), "type": "psi_message",
        "operation": m.operation, "parties": m.parties, "origin": m.origin,
        "applied": m.applied, "round": m.round, "final": m.is_final, "created": m.created,
        "sets": [{"kind": k, "items": m.sizes[k], "canon_version": m.canon_versions[k]}
                 for k in m.kinds],
    }  # fmt: skip
    lines = [f"{args.artefact}: keyless-mode message of operation {m.operation!r}: "
             f"{m.origin}'s sets, blinded by {', '.join(m.applied)}"
             + ("; final (ready to count)" if m.is_final else
                f"; still to be blinded by {', '.join(missing)}")]  # fmt: skip
    lines += [f"  {s['kind']} (rules v{s['canon_version']}): {s['items']:,} items"
              for s in data["sets"]]  # fmt: skip
    out(args, data, "\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    if _is_message(args.artefact):
        return _message(args)
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
