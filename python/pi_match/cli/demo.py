"""`pi-match demo`: two synthetic breach lists indexed and compared."""

from __future__ import annotations

import argparse

from ._common import (
    load_key,
    out,
)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import io

    from ..demo import run

    key = load_key(args.key) if args.key else None
    shown = io.StringIO()
    # With --json the text goes nowhere and the numbers come out as JSON, like every command.
    with contextlib.redirect_stdout(shown) if args.json or args.quiet else contextlib.nullcontext():
        result = run(args.hotel, args.resold, args.shared, key=key)
    kinds = {
        kind: {"estimate": r["estimate"].to_dict(), "exact": r["exact"], "truth": r["truth"]}
        for kind, r in result["kinds"].items()
    }
    if args.json:
        out(args, {"kinds": kinds}, "")
    exact_ok = all(k["exact"] == k["truth"] for k in kinds.values())
    return 0 if exact_ok else 1
