"""Building artefacts from input files: the library behind `pi-match build` and `probe`.

Every row is accounted for: used, missing (empty or a placeholder), rejected by reason (written
to the rejects file with file, line, column, reason and raw text), or unreadable (also in the
rejects file). A sidecar manifest, kept by the agency and never sent, records how the count was
made: input hashes, row counts, encodings, options and the pi_match version."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from . import _core
from ._artefact import Artefact
from ._core import BloomIndex, Key, TagSet
from .io import InputError, ReadOptions, Source, choose_fields, detect_columns, open_source
from .io.base import sha256_file

MISSING = {1, 2}  # reason codes of empty and placeholder values


@dataclass
class SectionStats:
    kind: str
    column: str
    rows: int = 0
    valid: int = 0
    missing: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def absorb(self, report: _core.AddReport) -> None:
        self.rows += report.rows
        self.valid += report.valid
        self.missing += report.missing
        self.rejected += report.rejected
        for k, v in report.rejected_by_reason.items():
            self.rejected_by_reason[k] = self.rejected_by_reason.get(k, 0) + v


class Progress:
    """Rows and bytes per second on a terminal's stderr; silent otherwise or when quiet."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.on = not quiet and self.stream.isatty()
        self.t0 = self.last = time.monotonic()
        self.rows = 0

    def update(self, label: str, rows: int, done_bytes: int | None = None) -> None:
        self.rows += rows
        now = time.monotonic()
        if self.on and now - self.last >= 0.5:
            self.last = now
            rate = self.rows / max(now - self.t0, 1e-9)
            extra = f", {done_bytes / 2**20:,.0f} MiB" if done_bytes else ""
            self.stream.write(f"\r{label}: {self.rows:,} rows{extra}, {rate:,.0f} rows/s   ")
            self.stream.flush()

    def done(self) -> None:
        if self.on:
            self.stream.write("\r" + " " * 78 + "\r")
            self.stream.flush()


def open_inputs(paths: Sequence[str], options: ReadOptions) -> list[Source]:
    return [open_source(p, options) for p in paths]


def resolve_fields(
    sources: list[Source], specs: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """(kind, column) pairs valid in every input, and notes saying how they were chosen."""
    notes: list[str] = []
    if specs:
        fields = choose_fields(sources[0], list(specs))
        notes += [f"{k} from column {c!r} (--field)" for k, c in fields]
    else:
        found = detect_columns(sources[0])
        if not found:
            raise InputError(
                f"{sources[0].path}: no column looks like an identifier; name them with "
                f"--field KIND=COLUMN (columns: {', '.join(sources[0].columns)})"
            )
        fields = [(d.kind, d.column) for d in found]
        notes += [f"{d.kind} from column {d.column!r}: {d.why()}" for d in found]
    for src in sources[1:]:
        for _, col in fields:
            src.resolve(col)
    return fields, notes


def _write_rejects(path: str, rows: list[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "line", "column", "reason", "raw"])
        w.writerows(rows)


def build(
    inputs: Sequence[str],
    key: Key,
    output: str,
    *,
    fields: Sequence[str] = (),
    fpr: float = 1e-6,
    capacity: int | None = None,
    exact: bool = False,
    options: ReadOptions | None = None,
    rejects_path: str | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] = lambda s: None,
    authenticate: bool = False,
) -> dict[str, Any]:
    """Read `inputs`, build one artefact with a section per identifier kind (a BloomIndex, and
    a TagSet too with `exact`), write it to `output`, the rejects file and the manifest, and
    return the summary (the `--json` output of `pi-match build`)."""
    options = options or ReadOptions()
    progress = progress or Progress(quiet=True)
    sources = open_inputs(inputs, options)
    chosen, notes = resolve_fields(sources, fields)
    for n in notes:
        note(n)
    if capacity is None:
        capacity = max(sum(s.count_rows() for s in sources), 1)
    blooms = {k: BloomIndex(key, k, capacity=capacity, fpr=fpr) for k, _ in chosen}
    tags = {k: TagSet(key, k) for k, _ in chosen} if exact else {}
    stats = {k: SectionStats(k, c) for k, c in chosen}
    reject_rows: list[list[Any]] = []
    per_input = []
    for src in sources:
        for batch in src.batches():
            for kind, col in chosen:
                values = batch.column(col)
                # One pass of canonicalising and hashing feeds both structures.
                rep = blooms[kind].add(values, tag_set=tags[kind] if exact else None)
                stats[kind].absorb(rep)
                bad = np.flatnonzero(rep.codes > max(MISSING))
                if len(bad):
                    raw = values.take(bad).to_pylist()
                    for i, r in zip(bad.tolist(), raw, strict=True):
                        text = r.decode("utf-8", "backslashreplace") if isinstance(r, bytes) else r
                        reason = _core.REASONS[rep.codes[i]]
                        reject_rows.append([src.path, int(batch.lines[i]), col, reason, text])
            progress.update(os.path.basename(src.path), len(batch))
        for r in src.rejects:
            reject_rows.append([r.file, r.line, r.column, r.reason, r.raw])
        per_input.append(
            {
                "path": src.path,
                "format": src.format,
                "encoding": src.encoding,
                "sha256": src.facts.get("sha256") or sha256_file(src.path),
                "rows": src.rows,
                "blank_lines": src.blank_lines,
                "unreadable_rows": len(src.rejects),
                "unreadable_by_reason": dict(Counter(r.reason for r in src.rejects)),
                **{
                    k: v
                    for k, v in src.facts.items()
                    if k in ("delimiter", "header", "bom", "sheets", "table", "other_tables")
                },
            }
        )
    progress.done()
    sections: list[BloomIndex | TagSet] = []
    for kind, _ in chosen:
        sections.append(blooms[kind])
        if exact:
            sections.append(tags[kind])
    Artefact(sections).save(output, authenticate_with=key if authenticate else None)
    if reject_rows:
        rejects_path = rejects_path or output + ".rejects.csv"
        _write_rejects(rejects_path, reject_rows)
    encodings = sorted({i["encoding"] for i in per_input})
    summary: dict[str, Any] = {
        "output": output,
        "sections": [
            {
                "kind": kind,
                "column": col,
                "rows": stats[kind].rows,
                "valid": stats[kind].valid,
                "missing": stats[kind].missing,
                "rejected": stats[kind].rejected,
                "rejected_by_reason": stats[kind].rejected_by_reason,
                "distinct_estimate": (tags[kind] if exact else blooms[kind])
                .estimate_count()
                .to_dict(),
                "bloom": {
                    "num_blocks": blooms[kind].num_blocks,
                    "size_bytes": blooms[kind].size_bytes,
                    "fpr_target": fpr,
                },
                "exact": exact,
            }
            for kind, col in chosen
        ],
        "encoding": encodings[0] if len(encodings) == 1 else "mixed",
        "rejects_file": rejects_path if reject_rows else None,
        "rejected_rows": len(reject_rows),
        "inputs": per_input,
        "fields": notes,
        "key_id": key.id,
        "capacity": capacity,
        "authenticated": authenticate,
    }
    manifest = {
        "pi_match_version": _core.__version__,
        "format_version": _core.FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "output_sha256": sha256_file(output),
        "options": {
            "fields": list(fields), "fpr": fpr, "capacity": capacity, "exact": exact,
            "encoding": options.encoding, "delimiter": options.delimiter, "header": options.header,
            "sheet": options.sheet, "format": options.format,
        },
        "note": "Kept by the agency that built the artefact; not sent with it (it names files).",
        **summary,
    }  # fmt: skip
    manifest_path = output + ".manifest.json"
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
    summary["manifest"] = manifest_path
    return summary
