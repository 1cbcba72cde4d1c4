"""The keyless mode from input files: `pi-match psi init` reads its inputs exactly as `build`
does — the same readers, options, Excel rule and row accounting, a rejects file and a manifest
kept beside the message — but blinds each kind's values with the party's secret instead of
tagging them with a shared key."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .. import _core
from .._core import PsiFirstPass, PsiMessage, PsiSecret
from ..build import (
    Builder,
    BuildOutputs,
    Progress,
    RejectRow,
    accounting_of,
    check_accounting,
    open_inputs,
    resolve_fields,
    version_of_generation,
)
from ..io import InputError, ReadOptions
from ..outputs import check_outputs


class PsiBuilder(Builder):
    """A `Builder` whose sections are first passes of the keyless mode: the same accounting,
    the values blinded with `secret` (the `feed` / `end_source` / `finish` seam)."""

    def __init__(
        self,
        secret: PsiSecret,
        fields: Sequence[tuple[str, str]],
        *,
        on_reject: Callable[[RejectRow], None],
        on_reject_rows: Callable[[str, int], None] | None = None,
        canon_version: int | None = None,
    ):
        self.fields = list(fields)
        self.secret = secret
        self.passes = {
            k: PsiFirstPass(k, canon_version=version_of_generation(k, canon_version))
            for k, _ in fields
        }
        self._account(on_reject, on_reject_rows)

    def _add(
        self,
        kind: str,
        values: pa.Array | list[Any],
        hold: npt.NDArray[np.bool_] | None = None,
        hold_excel_rounded: bool = False,
    ) -> npt.NDArray[np.uint8]:
        rep = self.passes[kind].add(
            self.secret, values, hold=hold, hold_excel_rounded=hold_excel_rounded
        )
        return np.array(rep.codes, dtype=np.uint8)

    def message(self) -> PsiMessage:
        """Decide whatever is held back; this party's first message."""
        self.decide_held()
        return _core.psi_first_message(self.secret, list(self.passes.values()))


def init_files(
    inputs: Sequence[str],
    secret_path: str,
    output: str,
    *,
    operation: str,
    party: str,
    parties: Sequence[str],
    fields: Sequence[str] = (),
    options: ReadOptions | None = None,
    rejects_path: str | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] = lambda s: None,
    output_encoding: str = "utf-8-sig",
    canon_version: int | None = None,
) -> dict[str, Any]:
    """Read `inputs`, make this party's secret and its first message, and write the secret
    file (mode 0600; never replaced), the message, the rejects file and the manifest (kept
    with the case, not sent). Nothing is written unless it all succeeds; returns the summary
    (the `--json` output of `pi-match psi init`)."""
    options = options or ReadOptions()
    progress = progress or Progress(quiet=True)
    if os.path.lexists(secret_path):
        raise InputError(
            f"{secret_path} already exists: a party has one secret per operation. Keep using "
            "it for this operation's messages (pi-match psi blind), or name a new file"
        )
    rejects_path = rejects_path or output + ".rejects.csv"
    check_outputs(
        {"input": list(inputs)},
        {"secret": secret_path, "message": output, "rejects file": rejects_path,
         "manifest": output + ".manifest.json"},
    )  # fmt: skip
    secret = PsiSecret.generate(operation, party, list(parties))
    sources = open_inputs(inputs, options)
    chosen, notes = resolve_fields(sources, fields)
    for n in notes:
        note("field " + n)
    with BuildOutputs(output, rejects_path, output_encoding=output_encoding) as out:
        builder = PsiBuilder(secret, chosen, on_reject=out.reject, on_reject_rows=out.reject_rows,
                             canon_version=canon_version)  # fmt: skip
        per_input = builder.read_all(sources, progress)
        message = builder.message()
        sizes = message.sizes
        summary: dict[str, Any] = {
            "output": output,
            "secret": secret_path,
            "operation": operation,
            "party": party,
            "parties": list(parties),
            "sections": [
                {
                    **builder.stats[k].to_dict(),
                    "items": sizes[k],
                    "canon_version": message.canon_versions[k],
                }
                for k, _ in chosen
            ],  # fmt: skip
            "accounting": accounting_of(per_input),
            "inputs": per_input,
            "fields": notes,
            "warnings": [],
        }
        check_accounting(summary)
        options_used = {
            "fields": list(fields), "canon_version": canon_version,
            "encoding": options.encoding, "delimiter": options.delimiter,
            "header": options.header, "sheet": options.sheet, "format": options.format,
        }  # fmt: skip

        def save(tmp: str) -> str:
            # The secret is written first, and only now: a message is never without it.
            secret.save(secret_path)
            return str(message.save(tmp))

        out.write(save, summary, options_used)
    return summary
