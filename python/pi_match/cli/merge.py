"""`pi-match merge`: the union of artefacts of one key (`Artefact.union`)."""

from __future__ import annotations

import argparse

from .. import PiMatchError
from ..outputs import check_outputs
from ._common import (
    UserError,
    fmt_est,
    load_artefact,
    note,
    out,
    same_key,
)


def run(args: argparse.Namespace) -> int:
    check_outputs({"artefact": args.artefacts}, {"merged artefact": args.output})
    arts = [load_artefact(p) for p in args.artefacts]
    same_key(args.artefacts, arts)
    try:
        merged = arts[0].union(*arts[1:])
    except PiMatchError as e:
        raise UserError(
            f"merge refused: {str(e).removeprefix('incompatible artefacts: ')}"
        ) from None
    for n in merged.notes:
        note(args, ("note: " if "tag set" in n else "warning: ") + n)
    merged.save(args.output, plain_tag_sets=args.plain_tag_sets)
    data = {"output": args.output, "inputs": args.artefacts, "key_id": merged.key_id,
            "sections": merged.describe()["sections"], "dropped_exact": merged.dropped_exact,
            "warnings": [n for n in merged.notes if "tag set" not in n]}  # fmt: skip
    text = f"wrote {args.output}: " + ", ".join(
        f"{s.kind} {type(s).__name__} {fmt_est(s.estimate_count())}" for s in merged
    )
    out(args, data, text)
    return 0
