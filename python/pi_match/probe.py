"""Which of my rows are in their artefact: the library behind `pi-match probe`.

Every record of the input is accounted for as `build` does (records = rows + unreadable; per
field rows = valid + missing + rejected). Hits and rejects files hold raw values: they are
created 0600, staged and renamed into place together only when the probe is complete."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import BloomIndex, PiMatchError
from .artefact import Artefact
from .build import (
    Progress,
    SectionStats,
    csv_encoding,
    rejected_positions,
    rejects_text,
    resolve_fields,
)
from .io import Batch, ReadOptions, open_source, read_ahead
from .io.base import positions as _indices
from .outputs import RAW_VALUES_MODE, Staged, commit, shown


def probe(
    input: str,
    theirs: Artefact,
    *,
    fields: Sequence[str] = (),
    options: ReadOptions | None = None,
    hits_path: str | None = None,
    rejects_path: str | None = None,
    output_encoding: str = "utf-8-sig",
    progress: Progress | None = None,
    note: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Probe the rows of `input` against `theirs` (loaded with the key): the summary that
    `pi-match probe --json` prints. With `hits_path` the matching rows are written there (line
    number, the kinds that matched, the row); with `rejects_path` every value and row that could
    not be probed. The caller checks that these paths are not inputs (`outputs.check_outputs`)."""
    progress = progress or Progress(quiet=True)
    by_kind = theirs.by_kind()
    src = open_source(input, options or ReadOptions(), read_all=True)  # every batch is read
    chosen, notes = resolve_fields([src], fields)
    for msg in notes:
        note("field " + msg)
    missing = [k for k, _ in chosen if k not in by_kind]
    if missing:
        raise PiMatchError(
            f"their artefact has no section for {', '.join(missing)}; "
            f"it has {', '.join(sorted(by_kind))}"
        )
    if len(chosen) > 64:  # (a row's matches are one bit a field)
        raise PiMatchError(f"{len(chosen)} fields; a probe takes at most 64")
    stats = {k: SectionStats(k, c) for k, c in chosen}
    rows = hits = n_rejects = 0
    expected_fp = 0.0
    hits_out = Staged(hits_path, mode=RAW_VALUES_MODE) if hits_path else None
    rej_out = Staged(rejects_path, mode=RAW_VALUES_MODE) if rejects_path else None
    staged = [s for s in (hits_out, rej_out) if s is not None]
    try:
        enc = csv_encoding(output_encoding)
        hf = hits_out.open_text(enc) if hits_out else None
        rf = rej_out.open_text(enc) if rej_out else None
        writer = csv.writer(hf) if hf else None
        rwriter = csv.writer(rf) if rf else None
        if writer is not None:
            writer.writerow(["line", "matched", *src.columns])
        if rwriter is not None:
            rwriter.writerow(["file", "line", "column", "reason", "raw"])
        for batch in read_ahead(src):  # the next read while this one is looked up
            n = len(batch)
            rows += n
            # Bit k of a row's `which`: the value of the k-th chosen field matched.
            which = np.zeros(n, dtype=np.uint64)
            for k, (kind, col) in enumerate(chosen):
                sec = by_kind[kind].get("tagset") or by_kind[kind]["bloom"]
                values = batch.text(col)
                h, codes = sec.contains(values, reasons=True)
                stats[kind].absorb_codes(np.asarray(codes, dtype=np.uint8))
                if isinstance(sec, BloomIndex):
                    expected_fp += float((codes == 0).sum()) * sec.expected_fpr()
                bad = rejected_positions(codes)
                if len(bad):
                    n_rejects += len(bad)
                    if rf is not None:  # (the rows `rwriter` would write, in one call)
                        rf.write(rejects_text(src.path, col, values, codes, batch.lines, bad))
                which |= np.asarray(h, dtype=np.uint64) << np.uint64(k)
            idx = np.flatnonzero(which)
            hits += len(idx)
            if hf is not None and len(idx):
                _write_hits(hf, batch, src.columns, idx, which[idx], chosen)
            progress.update(os.path.basename(src.path), n)
        for r in src.rejects:
            n_rejects += 1
            if rwriter is not None:
                rwriter.writerow([shown(r.file), r.line, r.column, r.reason, r.raw])
        for f in (hf, rf):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
                f.close()
        commit(staged)
    finally:
        progress.done()
        for s in staged:
            if not s.done:
                s.discard()
    unreadable = src.unreadable
    return {
        "rows": rows,
        "hits": hits,
        "expected_false_positives": expected_fp,
        "input": input,
        "output": hits_path,
        "fields": [{"kind": k, "column": c} for k, c in chosen],
        "records": rows + unreadable,
        "unreadable_rows": unreadable,
        "rejected_values": n_rejects,
        "rejects_file": rejects_path,
        "sections": [s.to_dict() for s in stats.values()],  # fmt: skip
    }


def _write_hits(
    f: IO[str],
    batch: Batch,
    columns: Sequence[str],
    idx: npt.NDArray[np.intp],
    which: npt.NDArray[np.uint64],
    chosen: Sequence[tuple[str, str]],
) -> None:
    """The hits file's rows of one batch: line number, the kinds that matched (in the order of
    the fields, joined by `+`), then the row — in one Rust call, as `csv.writer` formats them
    (`_core.csv_rows`; a batch's columns are text, binary or string, whatever the reader)."""
    combos, label_at = np.unique(which, return_inverse=True)
    labels = ["+".join(k for b, (k, _) in enumerate(chosen) if int(c) >> b & 1) for c in combos]
    take = _indices(idx)
    cols = [batch.column(c).take(take) for c in columns]
    lines = np.ascontiguousarray(batch.lines[idx], dtype=np.uint64)
    f.write(_core.csv_rows(lines, label_at.astype(np.uint32), labels, cols))
