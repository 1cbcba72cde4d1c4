"""`pi-match probe`: which of my rows are in their artefact (`pi_match.probe.probe`)."""

from __future__ import annotations

import argparse

from .. import PiMatchError
from ..build import Progress
from ..outputs import check_outputs
from ._common import (
    UserError,
    load_artefact,
    load_key,
    note,
    out,
    read_options,
)


def run(args: argparse.Namespace) -> int:
    from ..probe import probe

    rejects_path = args.rejects or (args.output + ".rejects.csv" if args.output else None)
    check_outputs(
        {"input": [args.input], "their artefact": [args.index], "key file": [args.key]},
        {"hits file": args.output, "rejects file": rejects_path},
    )
    key = load_key(args.key)
    theirs = load_artefact(args.index, key=key)
    try:
        data = probe(
            args.input, theirs, fields=args.field, options=read_options(args),
            hits_path=args.output, rejects_path=rejects_path,
            output_encoding=args.output_encoding,
            progress=Progress(quiet=args.quiet or args.json), note=lambda s: note(args, s),
        )  # fmt: skip
    except PiMatchError as e:
        raise UserError(str(e).replace("their artefact", args.index)) from None
    data["index"] = args.index
    unreadable = data["unreadable_rows"]
    fields_text = "; ".join(
        f"{s['kind']}: {s['valid']:,} valid, {s['missing']:,} missing, {s['rejected']:,} rejected"
        for s in data["sections"]
    )
    text = (f"{data['hits']:,} of {data['records']:,} records of {args.input} appear in "
            f"{args.index} (about {data['expected_false_positives']:.2g} of them expected to be "
            "false positives)"
            + (f"; {unreadable:,} records could not be read and were not probed"
               if unreadable else "")
            + f"\n  {fields_text}"
            + (f"; rejected and unreadable rows in {rejects_path}"
               if rejects_path and (data["rejected_values"] or unreadable) else "")
            + (f"\n  hits written to {args.output} (raw values: keep it with the case file)"
               if args.output else ""))  # fmt: skip
    out(args, data, text)
    return 0
