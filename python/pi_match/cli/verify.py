"""`pi-match verify`: an artefact's MAC checked with the key (`pi_match.verify`)."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import (
    UserError,
    load_key,
    out,
)


def run(args: argparse.Namespace) -> int:
    from ..artefact import verify

    if not os.path.exists(args.artefact):
        raise UserError(f"artefact {args.artefact} not found")
    key = load_key(args.key)
    status = verify(args.artefact, key)
    text = {
        "valid": f"{args.artefact}: authentic — made with key {key.id} and not altered",
        "invalid": f"{args.artefact}: NOT authentic — altered, or not made by a holder of this key",
        "not_authenticated": f"{args.artefact}: carries no MAC (built without --authenticate)",
    }[status]
    # Each verdict once: on stdout when it holds, as the error line when it does not.
    if status == "valid" or args.json:
        out(args, {"artefact": args.artefact, "status": status}, text)
    else:
        print(f"pi-match: error: {text}", file=sys.stderr)
    return 0 if status == "valid" else 1
