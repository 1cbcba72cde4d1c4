"""The `pi-match` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from . import Key
    from .demo import run

    key = Key.load(args.key) if args.key else None
    result = run(args.hotel, args.resold, args.shared, key=key)
    exact_ok = all(k["exact"] == k["truth"] for k in result["kinds"].values())
    return 0 if exact_ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pi-match",
        description="Privacy-preserving breach matching: count shared victims across cases "
        "without exchanging raw personal data.",
    )
    p.add_argument("--version", action="version", version=f"pi_match {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("demo", help="index two synthetic breach lists and compare them")
    d.add_argument("--hotel", type=int, default=200_000, help="rows in the first list")
    d.add_argument("--resold", type=int, default=120_000, help="rows in the second list")
    d.add_argument("--shared", type=int, default=30_000, help="people in both lists")
    d.add_argument("--key", help="use this key file instead of a fresh key (reproducible run)")
    d.set_defaults(func=_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("pi-match: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
