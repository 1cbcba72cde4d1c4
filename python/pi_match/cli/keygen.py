"""`pi-match keygen`: a new key for a joint operation."""

from __future__ import annotations

import argparse
import os

from .. import Key
from ..outputs import require_regular
from ._common import (
    UserError,
    out,
)


def run(args: argparse.Namespace) -> int:
    if os.path.lexists(args.output):
        require_regular(args.output, "key file")
        with open(args.output, "rb") as f:
            head = f.read(64)
        if not head.startswith(b"pi_match-key-v1:"):
            raise UserError(
                f"{args.output} exists and is not a pi_match key file (it may be an artefact or "
                "evidence); keygen replaces only key files, even with --force"
            )
    key = Key.generate()
    try:
        key.save(args.output, overwrite=args.force)
    except FileExistsError:
        raise UserError(f"{args.output} already exists; pass --force to replace it") from None
    out(args, {"output": args.output, "key_id": key.id},
         f"wrote {args.output} (mode 0600), key id {key.id}. Hand it over out of band; never "
         "send it with an artefact.")  # fmt: skip
    return 0
