"""Building artefacts from input files: the library behind `pi-match build` and `probe`.

Every record is accounted for. Per input: records read = rows used + unreadable rows (each
unreadable one is in the rejects file with file, line, reason and raw text; blank lines are
counted apart and are not records). Per identifier field: rows = valid + missing (empty or a
placeholder) + rejected (by reason, each in the rejects file). Both identities are checked
before anything is written, and stated in the JSON summary and the manifest.

A sidecar manifest, kept by the agency and never sent, records how the count was made: input
hashes, row counts, encodings, options, the pi_match version and the SHA-256 of the artefact
and rejects file it belongs with. Everything is staged under temporary names and renamed into
place together, the manifest last (`outputs`): an interrupted build leaves the old set."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from . import _core
from ._core import BloomIndex, Key, TagSet
from .artefact import FPR_WARN_FACTOR, SATURATED_FPR, Artefact
from .io import (
    InputError,
    ReadOptions,
    Source,
    check_distinct_inputs,
    choose_fields,
    detect_columns,
    open_source,
    read_ahead,
)
from .io.base import positions as _indices
from .outputs import (
    OUTPUT_MODE,
    RAW_VALUES_MODE,
    Staged,
    check_outputs,
    commit,
    naming,
    shown,
    text_safe,
)

REASONS: tuple[str, ...] = _core.REASONS
OK = REASONS.index("ok")
MISSING: frozenset[int] = frozenset(_core.MISSING_CODES)
# Rust numbers the missing reasons first, right after "ok": every code above is a rejection.
LAST_MISSING = max(MISSING)
assert MISSING == set(range(1, LAST_MISSING + 1)), "reason codes: missing ones come first"
EXCEL_ROUNDED = REASONS.index("excel_rounded")
EXCEL_DAMAGE = frozenset(REASONS.index(n) for n in ("excel_scientific", "excel_rounded"))
#: The share of a column's present values showing Excel damage that makes the column damaged.
DAMAGE_SHARE = 0.01
#: Marks a value held back until its column is decided (never a reason code).
HELD: int = _core.HELD
#: Kinds whose long digit strings Excel rounds; values that end as rounding leaves them are
#: decided by their column (see `Builder`).
ROUNDED_KINDS = ("cn_ric", "bank_card")


@dataclass
class SectionStats:
    kind: str
    column: str
    rows: int = 0
    valid: int = 0
    missing: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def absorb_codes(self, codes: npt.NDArray[np.uint8]) -> list[int]:
        """Count a batch's reason codes (values marked HELD are not counted yet); returns the
        count per code."""
        counts: list[int] = np.bincount(codes, minlength=256).tolist()
        self.rows += len(codes) - counts[HELD]
        self.valid += counts[OK]
        self.missing += sum(counts[c] for c in MISSING)
        for code, n in enumerate(counts[: len(REASONS)]):
            if n and code != OK and code not in MISSING:
                self.rejected += n
                name = REASONS[code]
                self.rejected_by_reason[name] = self.rejected_by_reason.get(name, 0) + n
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The field's counts as the JSON of build, probe and report give them."""
        return {
            "kind": self.kind,
            "column": self.column,
            "rows": self.rows,
            "valid": self.valid,
            "missing": self.missing,
            "rejected": self.rejected,
            "rejected_by_reason": self.rejected_by_reason,
        }


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
    check_distinct_inputs(paths)
    # Every batch is read (`read_all`): the reading is the GB18030 check, not a pass before it.
    return [open_source(p, options, read_all=True) for p in paths]


def same_bytes_warnings(per_input: Sequence[dict[str, Any]]) -> list[str]:
    """A warning for each input whose bytes are another input's (a copy of a seized file
    seized again elsewhere, say): allowed, but its rows count again."""
    first: dict[str, str] = {}
    out = []
    for f in per_input:
        sha = f.get("sha256")
        if not sha:
            continue
        if sha in first:
            out.append(
                f"{f['path']} holds the same bytes as {first[sha]} (SHA-256 {sha[:16]}…): "
                "its rows are counted again in the rows and valid counts (the distinct counts "
                "do not change); leave it out if it is a copy"
            )
        else:
            first[sha] = f["path"]
    return out


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
        if not found and sources[0].facts.get("bytes") == 0:
            raise InputError(f"{sources[0].path}: is empty (0 bytes); there is nothing to read")
        if not found:
            raise InputError(
                f"{sources[0].path}: no column looks like an identifier; name them with "
                f"--field KIND=COLUMN ({len(sources[0].columns)} columns; see them with a "
                "header line, or number them 1, 2, …)"
            )
        fields = [(d.kind, d.column) for d in found]
        notes += [f"{d.kind} from column {d.column!r}: {d.why()}" for d in found]
    for src in sources[1:]:
        for _, col in fields:
            src.resolve(col)
    for src in sources:
        src.require([c for _, c in fields])
    return fields, notes


def version_of_generation(kind: str, generation: int | None) -> int | None:
    """The canonicaliser version of `kind` under the rules of generation N: its newest version
    not after N (None: the newest)."""
    if generation is None:
        return None
    have = [v for v in _core.CANON_VERSIONS[kind] if v <= generation]
    if not have:
        raise InputError(
            f"--canon-version {generation}: {kind} has versions "
            f"{', '.join(map(str, _core.CANON_VERSIONS[kind]))}"
        )
    return max(have)


def rejected_positions(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """Where a batch's rejected values are — not the valid, the missing or the held ones:
    what a rejects file lists."""
    return np.flatnonzero((codes > LAST_MISSING) & (codes != HELD))


def rejects_text(
    file: str,
    column: str,
    values: pa.Array,
    codes: npt.NDArray[np.uint8],
    lines: npt.NDArray[np.uint64],
    bad: npt.NDArray[np.intp],
) -> str:
    """The rejects file's rows (file, line, column, reason, raw) of the values at `bad`, in one
    Rust call, as `csv.writer` writes the rows `rejected_values` gives."""
    return _core.csv_rows(
        np.ascontiguousarray(lines[bad], dtype=np.uint64),
        np.asarray(codes, dtype=np.uint32)[bad],
        list(REASONS),
        [values.take(_indices(bad))],
        before=[shown(file)],
        between=[column],
    )


def rejected_values(
    values: pa.Array, codes: npt.NDArray[np.uint8]
) -> Iterator[tuple[int, str, str]]:
    """(position, reason, raw text) of every rejected value of a batch (`rejected_positions`)."""
    bad = rejected_positions(codes)
    if not len(bad):
        return
    raw = values.take(_indices(bad)).to_pylist()
    for i, r in zip(bad.tolist(), raw, strict=True):
        yield i, REASONS[codes[i]], raw_text(r)


def raw_text(v: Any) -> str:
    return v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else str(v)


RejectRow = list[Any]


class Builder:
    """Streams batches into the sections of one artefact (a BloomIndex per identifier kind,
    and a TagSet with `exact`) and accounts for every value. `feed` takes a batch, `finish`
    the sections; value rejects go to `on_reject` as they are found.

    Excel's rounding is decided by column: a value of a cn_ric or bank_card column ending as
    rounding leaves it (15 digits, then zeros) whose check fails is `excel_rounded` on its
    own; one whose check holds (1 in 11 do) is held back, and becomes `excel_rounded` if the
    same column of the same file shows Excel damage — numeric Excel cells, or at least
    `DAMAGE_SHARE` of its present values `excel_scientific` or `excel_rounded` — else is
    added as valid. (A column Excel damaged is damaged nearly throughout; one stray pasted
    `1.10105E+17` among thousands of good numbers does not make their zeros suspect.)"""

    def __init__(
        self,
        key: Key,
        fields: Sequence[tuple[str, str]],
        *,
        capacity: int,
        fpr: float,
        exact: bool,
        on_reject: Callable[[RejectRow], None],
        on_reject_rows: Callable[[str, int], None] | None = None,
        names: Mapping[str, str] | None = None,
        canon_version: int | None = None,
        prf: str = "hmac-sha256",
    ):
        self.fields = list(fields)
        v = {k: version_of_generation(k, canon_version) for k, _ in fields}
        self.blooms = {
            k: BloomIndex(key, k, capacity=capacity, fpr=fpr, canon_version=v[k], prf=prf)
            for k, _ in fields
        }
        self.tags = (
            {k: TagSet(key, k, canon_version=v[k], prf=prf) for k, _ in fields} if exact else {}
        )
        self._account(on_reject, on_reject_rows, names)

    def _account(
        self,
        on_reject: Callable[[RejectRow], None],
        on_reject_rows: Callable[[str, int], None] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """The accounting every builder shares, whatever its sections are. Rejects go to
        `on_reject` one by one, or — a batch's rejected values, where `on_reject_rows` is given
        — as the rejects file's rows already formatted (CSV text, and how many rows), naming a
        source as `names` says (default: by its path)."""
        self.stats = {k: SectionStats(k, c) for k, c in self.fields}
        self.on_reject = on_reject
        self.on_reject_rows = on_reject_rows
        self.names = dict(names or {})
        self.damaged: set[tuple[str, str]] = set()
        # (path, column) -> [values showing Excel damage, values present]
        self.damage: dict[tuple[str, str], list[int]] = {}
        self.held: dict[tuple[str, str], list[tuple[int, Any]]] = {}

    def _add(
        self,
        kind: str,
        values: pa.Array | list[Any],
        hold: npt.NDArray[np.bool_] | None = None,
        hold_excel_rounded: bool = False,
    ) -> npt.NDArray[np.uint8]:
        """Put `values` into the sections of `kind`; every value's code, `HELD` for the valid
        ones `hold` marks and, with `hold_excel_rounded`, those of Excel's rounded shape. The
        one place a builder's sections are filled: the keyless `PsiBuilder` blinds here."""
        rep = self.blooms[kind].add(
            values,
            tag_set=self.tags.get(kind),
            hold=hold,
            hold_excel_rounded=hold_excel_rounded,
        )
        return np.array(rep.codes, dtype=np.uint8)

    def feed(self, batch: Any, path: str) -> None:
        for kind, col in self.fields:
            values = batch.text(col)
            key = (path, col)
            # Held (code HELD) until their column is decided: the valid values shaped as
            # Excel's rounding leaves them (rare outside damaged columns; told in `add`'s own
            # tasks), and numeric Excel cells, which are then rejected.
            known = batch.damaged.get(col)
            codes = self._add(kind, values, known, hold_excel_rounded=kind in ROUNDED_KINDS)
            if known is not None and known.any():
                self.damaged.add(key)
                codes[known] = EXCEL_ROUNDED
            counts = self.stats[kind].absorb_codes(codes)
            if counts[HELD]:
                # Few values (a valid number ends in zeros about once in a thousand): read
                # them one by one rather than load a compute kernel for them.
                keep = self.held.setdefault(key, [])
                held = np.flatnonzero(codes == HELD)
                keep += [(int(batch.lines[i]), values[int(i)].as_py()) for i in held]
            tally = self.damage.setdefault(key, [0, 0])
            # (held values are counted when their column is decided, in end_source)
            tally[0] += sum(counts[c] for c in EXCEL_DAMAGE)
            tally[1] += len(codes) - counts[HELD] - sum(counts[c] for c in MISSING)
            if self.on_reject_rows is None:
                for i, reason, raw in rejected_values(values, codes):
                    self.on_reject([path, int(batch.lines[i]), col, reason, raw])
            elif len(bad := rejected_positions(codes)):
                # One Rust call formats them (a damaged dump rejects millions: 4 µs a row
                # through the writer).
                name = self.names.get(path, path)
                text = rejects_text(name, col, values, codes, batch.lines, bad)
                self.on_reject_rows(text, len(bad))

    def end_source(self, path: str) -> None:
        """Decide the held values of `path`'s columns."""
        for kind, col in self.fields:
            held = self.held.pop((path, col), [])
            if not held:
                continue
            seen, present = self.damage.get((path, col), (0, 0))
            if (path, col) in self.damaged or (seen and seen >= DAMAGE_SHARE * present):
                codes = np.full(len(held), EXCEL_ROUNDED, np.uint8)
                for line, r in held:
                    self.on_reject([path, line, col, "excel_rounded", raw_text(r)])
            else:
                codes = self._add(kind, [r for _, r in held])
            self.stats[kind].absorb_codes(codes)

    def read_all(self, sources: Sequence[Source], progress: Progress) -> list[dict[str, Any]]:
        """Feed every batch of every source, decide each source's held values at its end,
        pass on its unreadable records, and return each source's facts (`input_facts`)."""
        per_input = []
        for src in sources:
            # The next batch is read and split on a thread of its own while this one is hashed.
            for batch in read_ahead(src):
                self.feed(batch, src.path)
                progress.update(os.path.basename(src.path), len(batch))
            self.end_source(src.path)
            for r in src.rejects:
                self.on_reject([r.file, r.line, r.column, r.reason, r.raw])
            per_input.append(input_facts(src))
        progress.done()
        return per_input

    def decide_held(self) -> None:
        """Decide whatever is still held back."""
        for path, _col in list(self.held):
            self.end_source(path)

    def finish(self) -> list[BloomIndex | TagSet]:
        """Decide whatever is still held back and return the sections: an index per kind, and
        its tag set with `exact`."""
        self.decide_held()
        return self.sections()

    def sections(self) -> list[BloomIndex | TagSet]:
        out: list[BloomIndex | TagSet] = []
        for kind, _ in self.fields:
            out.append(self.blooms[kind])
            if kind in self.tags:
                out.append(self.tags[kind])
        return out


#: Encodings for CSV outputs: UTF-8 with a BOM (what Excel needs to see UTF-8), plain UTF-8,
#: GB18030 (what Excel on Chinese Windows reads without a BOM).
CSV_ENCODINGS = {"utf-8-sig": "utf-8-sig", "utf-8": "utf-8", "gb18030": "gb18030"}


def csv_encoding(name: str) -> str:
    try:
        return CSV_ENCODINGS[name.lower().replace("_", "-")]
    except KeyError:
        raise InputError(
            f"--output-encoding {name!r}: choose one of {', '.join(CSV_ENCODINGS)}"
        ) from None


def fpr_checks(blooms: dict[str, BloomIndex], target: float) -> list[str]:
    """Warnings for indices filled past their design; raises for saturated ones."""
    warnings = []
    for kind, b in blooms.items():
        reached = b.expected_fpr()
        if not reached == reached or reached >= SATURATED_FPR:  # NaN or saturated
            raise InputError(
                f"the {kind} index is saturated ({b.num_blocks:,} blocks for about "
                f"{b.items_added:,} values; nearly every lookup would match): nothing was "
                "written. Leave out --capacity (it is sized from the rows) or raise it"
            )
        if reached > FPR_WARN_FACTOR * target:
            warnings.append(
                f"the {kind} index is filled past its design: false-positive rate "
                f"{reached:.1e}, not the {target:.0e} asked; raise --capacity"
            )
    return warnings


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
    key_path: str | None = None,
    output_encoding: str = "utf-8-sig",
    canon_version: int | None = None,
    prf: str = "hmac-sha256",
    workers: int | None = None,
    scheduler: str | None = None,
    plain_tag_sets: bool = False,
) -> dict[str, Any]:
    """Read `inputs`, build one artefact with a section per identifier kind (a BloomIndex, and
    a TagSet too with `exact`), write it to `output`, the rejects file and the manifest, and
    return the summary (the `--json` output of `pi-match build`). No output may be an input or
    the key file (`key_path`); nothing is written unless the whole build succeeds. The rejects
    file is UTF-8 with a byte-order mark by default (`output_encoding`), so Excel on Chinese
    Windows opens it right; "utf-8" and "gb18030" are the others. `canon_version=N` builds
    with the identifier rules of generation N (each kind's newest version not after N), so
    artefacts match a partner's made by an older pi_match. `prf="hmac-sm3"` tags with HMAC-SM3
    (GB/T 32905, for agencies held to 国密 rules); artefacts of different PRFs never combine.
    With `workers=N` (a local Dask cluster of N processes) or `scheduler=ADDRESS` (a running
    one) the inputs are read and tagged on the cluster (`pi_match.dask.build_files`) and the
    outputs are the same files, byte for byte but for the creation time; the inputs and the
    key file must then be readable at the same paths on every worker. Tag sets are stored
    compressed where that is shorter (docs/FORMAT.md §5, type 6); `plain_tag_sets` stores them
    8 bytes a tag, for a partner whose pi_match predates that form. `note` hears, as it goes,
    how the fields were chosen; warnings are in the summary's `warnings`."""
    options = options or ReadOptions()
    if (workers is not None or scheduler is not None) and key_path is None:
        raise InputError("a build on a cluster needs key_path: workers load the key from it")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    progress = progress or Progress(quiet=True)
    if not (fpr > 0 and fpr < 1):
        raise InputError(f"--fpr must be between 0 and 1, got {fpr}")
    if capacity is not None and capacity < 1:
        raise InputError(f"--capacity must be a positive number of values, got {capacity}")
    default_rejects = output + ".rejects.csv"
    rejects_path = rejects_path or default_rejects
    manifest_path = output + ".manifest.json"
    check_outputs(
        {"input": list(inputs), "key file": [key_path]},
        {"artefact": output, "rejects file": rejects_path, "manifest": manifest_path},
    )
    sources = open_inputs(inputs, options)
    chosen, notes = resolve_fields(sources, fields)
    for n in notes:
        note("field " + n)
    rows_counted = sum(s.count_rows() for s in sources)
    if capacity is None:
        capacity = max(rows_counted, 1)
    with BuildOutputs(output, rejects_path, output_encoding=output_encoding) as out:
        builder: Builder | Built
        if workers is not None or scheduler is not None:
            assert key_path is not None
            builder, sections, per_input = _on_cluster(
                inputs, key_path, chosen, capacity, fpr, exact, options, canon_version, prf,
                out.reject, out.reject_rows, workers, scheduler,
            )  # fmt: skip
        else:
            single = Builder(
                key, chosen, capacity=capacity, fpr=fpr, exact=exact, on_reject=out.reject,
                on_reject_rows=out.reject_rows, canon_version=canon_version, prf=prf,
            )  # fmt: skip
            per_input = single.read_all(sources, progress)
            sections = single.finish()
            builder = single
        warnings = same_bytes_warnings(per_input) + fpr_checks(builder.blooms, fpr)
        summary = _summary(
            output, builder, chosen, per_input, notes, key, capacity, exact, fpr, authenticate
        )
        check_accounting(summary)
        summary["warnings"] = warnings
        options_used = {
            "fields": list(fields), "fpr": fpr, "capacity": capacity, "exact": exact,
            "canon_version": canon_version, "prf": prf, "plain_tag_sets": plain_tag_sets,
            "encoding": options.encoding, "delimiter": options.delimiter,
            "header": options.header, "sheet": options.sheet, "format": options.format,
        }  # fmt: skip
        out.write(
            sections, summary, options_used,
            authenticate_with=key if authenticate else None, plain_tag_sets=plain_tag_sets,
        )  # fmt: skip
    return summary


@dataclass
class Built:
    """What the summary needs of a finished build, wherever it ran: each kind's counts and
    sections."""

    stats: dict[str, SectionStats]
    blooms: dict[str, BloomIndex]
    tags: dict[str, TagSet]


def _on_cluster(
    inputs: Sequence[str],
    key_path: str,
    chosen: list[tuple[str, str]],
    capacity: int,
    fpr: float,
    exact: bool,
    options: ReadOptions,
    canon_version: int | None,
    prf: str,
    on_reject: Callable[[RejectRow], None],
    on_reject_rows: Callable[[str, int], None],
    workers: int | None,
    scheduler: str | None,
) -> tuple[Built, list[BloomIndex | TagSet], list[dict[str, Any]]]:
    from . import dask as pmd

    with pmd.cluster(workers, scheduler):
        sections, counts, per_input = pmd.build_files(
            inputs, os.path.abspath(key_path), chosen, capacity=capacity, fpr=fpr, exact=exact,
            options=options, canon_version=canon_version, prf=prf, on_reject=on_reject,
            on_reject_rows=on_reject_rows,
        )  # fmt: skip
    built = Built(
        {k: SectionStats(**c) for k, c in counts.items()},
        {s.kind: s for s in sections if isinstance(s, BloomIndex)},
        {s.kind: s for s in sections if isinstance(s, TagSet)},
    )
    return built, sections, per_input


class _HashingText:
    """A text file whose bytes are hashed (SHA-256) as they are written, a BOM included."""

    def __init__(self, f: IO[str], encoding: str):
        self.f = f
        self.codec = encoding.removesuffix("-sig")
        self.hash = hashlib.sha256(codecs.BOM_UTF8 if encoding == "utf-8-sig" else b"")

    def write(self, text: str) -> int:
        self.f.write(text)
        self.hash.update(text.encode(self.codec))
        return len(text)


class BuildOutputs:
    """The files of one build — artefact, rejects file, manifest — staged beside their targets
    and renamed together, the manifest last, only by `write`: the seam any builder of sections
    (a single process, a Dask or Spark reduction) hands its result to. Use as a context
    manager; leaving it without `write` discards everything.

    The rejects file is streamed as rows come (`reject`), so memory does not grow with them;
    its SHA-256, like the artefact's, is computed as it is written."""

    def __init__(self, output: str, rejects_path: str, *, output_encoding: str = "utf-8-sig"):
        self.output = output
        self.default_rejects = output + ".rejects.csv"
        self.rejects_path = rejects_path
        self.manifest_path = output + ".manifest.json"
        self.encoding = csv_encoding(output_encoding)
        self._rejects = Staged(rejects_path, mode=RAW_VALUES_MODE)
        self._artefact = Staged(output, mode=OUTPUT_MODE)
        self._manifest = Staged(self.manifest_path, mode=OUTPUT_MODE)
        self._file: IO[str] | None = None
        self._tee: _HashingText | None = None
        self._writer: Any = None
        self.rejected_rows = 0

    def __enter__(self) -> BuildOutputs:
        with naming(self.rejects_path):
            self._file = self._rejects.open_text(self.encoding)
            self._tee = _HashingText(self._file, self.encoding)
            self._writer = csv.writer(self._tee)
            self._writer.writerow(["file", "line", "column", "reason", "raw"])
        return self

    def reject(self, row: RejectRow) -> None:
        """One rejected value or unreadable record: file, line, column, reason, raw text."""
        self.rejected_rows += 1
        with naming(self.rejects_path):
            self._writer.writerow([shown(row[0]), *row[1:]] if row else row)

    def reject_rows(self, text: str, n: int) -> None:
        """`n` rows of the rejects file, formatted as `reject` writes them (`_core.csv_rows`)."""
        assert self._tee is not None
        self.rejected_rows += n
        with naming(self.rejects_path):
            self._tee.write(text)

    def write(
        self,
        sections: list[BloomIndex | TagSet] | Callable[[str], str],
        summary: dict[str, Any],
        options: dict[str, Any],
        *,
        authenticate_with: Key | None = None,
        plain_tag_sets: bool = False,
    ) -> None:
        """Write the artefact and the manifest and rename all three into place. `summary` gets
        `rejects_file`, `rejected_rows` and `manifest`. `sections` may instead be a function
        that writes the output to the path it is given and returns its SHA-256 (a keyless
        message is written so)."""
        assert self._file is not None
        with naming(self.rejects_path):
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        with naming(self.output):
            # The SHA-256 the manifest names comes from the writer as it writes.
            if callable(sections):
                artefact_sha256 = sections(self._artefact.tmp)
            else:
                artefact_sha256 = Artefact(sections).save(
                    self._artefact.tmp,
                    authenticate_with=authenticate_with,
                    plain_tag_sets=plain_tag_sets,
                )
        have_rejects = self.rejected_rows > 0 or self.rejects_path != self.default_rejects
        summary["rejects_file"] = self.rejects_path if have_rejects else None
        summary["rejected_rows"] = self.rejected_rows
        man = {
            "pi_match_version": _core.__version__,
            "format_version": _core.FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "output_sha256": artefact_sha256,
            "rejects_sha256": self._tee.hash.hexdigest() if self._tee and have_rejects else None,
            "options": options,
            "note": "Kept by the agency that built the artefact; not sent with it (it names "
            "files). The set is complete when output_sha256 and rejects_sha256 match the files.",
            **summary,
        }
        with naming(self.manifest_path), self._manifest.open_text() as mf:
            json.dump(text_safe(man), mf, ensure_ascii=False, indent=1)
            mf.flush()
            os.fsync(mf.fileno())
        if have_rejects:
            commit([self._rejects, self._artefact, self._manifest])
        else:
            self._rejects.discard()
            # A rejects file of an earlier build must not pass for this one's.
            commit([self._artefact, self._manifest], remove=[self.default_rejects])
        summary["manifest"] = self.manifest_path

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        for s in (self._rejects, self._artefact, self._manifest):
            if not s.done:
                s.discard()


def input_facts(src: Source) -> dict[str, Any]:
    by_reason: dict[str, int] = {}
    for r in src.rejects:
        by_reason[r.reason] = by_reason.get(r.reason, 0) + r.rows
    return {
        "path": src.path,
        "format": src.format,
        "encoding": src.encoding,
        "sha256": src.sha256(),
        "records": src.rows + src.unreadable,
        "rows": src.rows,
        "blank_lines": src.blank_lines,
        "unreadable_rows": src.unreadable,
        "unreadable_by_reason": by_reason,
        **{
            k: v
            for k, v in src.facts.items()
            if k
            in ("delimiter", "header", "bom", "sheets", "skipped_sheets", "table", "other_tables")
        },
    }


def _summary(
    output: str,
    builder: Builder | Built,
    chosen: list[tuple[str, str]],
    per_input: list[dict[str, Any]],
    notes: list[str],
    key: Key,
    capacity: int,
    exact: bool,
    fpr: float,
    authenticate: bool,
) -> dict[str, Any]:
    stats, blooms, tags = builder.stats, builder.blooms, builder.tags
    encodings = sorted({i["encoding"] for i in per_input})
    return {
        "output": output,
        "sections": [
            {
                **stats[kind].to_dict(),
                "distinct_estimate": (tags[kind] if exact else blooms[kind])
                .estimate_count()
                .to_dict(),
                "bloom": {
                    "num_blocks": blooms[kind].num_blocks,
                    "size_bytes": blooms[kind].size_bytes,
                    "fpr_target": fpr,
                    "fpr_expected": blooms[kind].expected_fpr(),
                },
                "exact": exact,
            }
            for kind, _ in chosen
        ],
        "accounting": accounting_of(per_input),
        "encoding": encodings[0] if len(encodings) == 1 else "mixed",
        "inputs": per_input,
        "fields": notes,
        "key_id": key.id,
        "capacity": capacity,
        "authenticated": authenticate,
        "canon_versions": {k: b.canon_version for k, b in blooms.items()},
        "prf": next(iter(blooms.values())).prf,
    }


def accounting_of(per_input: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole read's records = rows + unreadable rows, from each input's facts."""
    rows = sum(i["rows"] for i in per_input)
    unreadable = sum(i["unreadable_rows"] for i in per_input)
    return {"records": rows + unreadable, "rows": rows, "unreadable_rows": unreadable,
            "balanced": True}  # fmt: skip


def check_accounting(summary: dict[str, Any]) -> None:
    """Refuse to write a build whose counts do not add up (a bug, never the user's fault)."""
    acc = summary["accounting"]
    problems = []
    for i in summary["inputs"]:
        if i["records"] != i["rows"] + i["unreadable_rows"]:
            problems.append(f"{i['path']}: records != rows + unreadable")
    for s in summary["sections"]:
        if s["rows"] != s["valid"] + s["missing"] + s["rejected"] or s["rows"] != acc["rows"]:
            problems.append(f"{s['kind']}: rows != valid + missing + rejected")
    if problems:
        acc["balanced"] = False
        raise _core.PiMatchError(
            "internal error: the row accounting does not balance (" + "; ".join(problems) + "); "
            "nothing was written. Please report this with the pi_match version"
        )
