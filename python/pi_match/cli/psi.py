"""`pi-match psi init | blind | count`: the keyless mode (`pi_match.psi`)."""

from __future__ import annotations

import argparse
import os

from .. import PiMatchError
from ._common import UserError, note, out, overlap_lines, read_options, write_plot


def _load_secret(path: str):  # type: ignore[no-untyped-def]
    from ..psi import PsiSecret

    if not os.path.exists(path):
        raise UserError(f"secret file {path} not found (psi init makes it)")
    return PsiSecret.load(path)


def _load_message(path: str):  # type: ignore[no-untyped-def]
    from ..psi import PsiMessage

    if not os.path.exists(path):
        raise UserError(f"message {path} not found")
    return PsiMessage.load(path)


def _init(args: argparse.Namespace) -> int:
    from ..build import Progress
    from ..psi.files import init_files

    parties = [p.strip() for p in args.parties.split(",")]
    s = init_files(
        args.inputs,
        args.secret,
        args.output,
        operation=args.operation,
        party=args.party,
        parties=parties,
        fields=args.field,
        options=read_options(args),
        rejects_path=args.rejects,
        progress=Progress(quiet=args.quiet or args.json),
        note=lambda m: note(args, m),
        output_encoding=args.output_encoding,
        canon_version=args.canon_version,
    )
    lines = [f"wrote {s['output']} ({args.party}'s first message, operation {args.operation!r})",
             f"  secret: {s['secret']} (mode 0600: keep it, never send it)"]  # fmt: skip
    for sec in s["sections"]:
        lines.append(f"  {sec['kind']} ({sec['column']}): {sec['valid']:,} valid, "
                     f"{sec['missing']:,} missing, {sec['rejected']:,} rejected; "
                     f"{sec['items']:,} distinct items blinded")  # fmt: skip
    if s["rejects_file"]:
        lines.append(f"  rejects: {s['rejects_file']} ({s['rejected_rows']:,} rows; raw values: "
                     "keep it with the case file)")  # fmt: skip
    lines.append(f"  manifest: {s['manifest']}")
    nxt = parties[(parties.index(args.party) + 1) % len(parties)]
    lines.append(f"  next: send {os.path.basename(s['output'])} to {nxt} for `pi-match psi blind`")
    out(args, s, "\n".join(lines))
    return 0


def _blind(args: argparse.Namespace) -> int:
    from ..outputs import check_outputs
    from ..psi import blind

    check_outputs({"message": [args.message], "secret": [args.secret]}, {"output": args.output})
    secret = _load_secret(args.secret)
    msg = _load_message(args.message)
    res = blind(msg, secret, max_items=args.max_items)
    sha = res.save(args.output)
    data = {
        "output": args.output, "sha256": sha, "operation": res.operation,
        "origin": res.origin, "applied": res.applied, "round": res.round,
        "final": res.is_final, "sizes": res.sizes,
    }  # fmt: skip
    missing = [p for p in res.parties if p not in res.applied]
    state = ("blinded by every party: ready for `pi-match psi count`" if res.is_final
             else f"still to be blinded by {', '.join(missing)}")  # fmt: skip
    out(args, data, f"wrote {args.output}: {res.origin}'s set blinded by "
                    f"{', '.join(res.applied)}; {state}")  # fmt: skip
    return 0


def _count(args: argparse.Namespace) -> int:
    from ..psi import count

    if len(args.messages) < 2:
        raise UserError("psi count needs the fully blinded messages of at least two parties")
    if args.plot:
        from ..outputs import check_outputs

        check_outputs({"message": args.messages}, {"plot": args.plot})
    msgs = [_load_message(p) for p in args.messages]
    try:
        c = count(msgs)
    except PiMatchError as e:
        raise UserError(str(e).removeprefix("incompatible artefacts: ")) from None
    lines = [f"{p['a']} ∩ {p['b']} [{p['kind']}]: {p['exact']:,.0f} (exact, keyless)"
             for p in c.pairs]  # fmt: skip
    lines += overlap_lines(c, name=str)
    data = c.to_dict()
    data["method"] = "psi"
    data["operation"] = msgs[0].operation
    if args.plot:
        write_plot(args.plot, c.overlaps, data, lines)
    out(args, data, "\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    return {"init": _init, "blind": _blind, "count": _count}[args.psi_command](args)
