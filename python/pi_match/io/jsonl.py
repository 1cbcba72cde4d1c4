"""JSON lines: one object per line; keys are columns. Lines that are not JSON objects are
rejected with their line number."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .. import _core
from .base import Batch, InputError, ReadOptions, Source, positions, text_array
from .delimited import DelimitedSource

# A line's status from `_core.jsonl_read`.
ROW, BLANK, LEFT = 0, 1, 2


def _text_column(
    offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]
) -> pa.Array:
    """A large_string array over the Rust reader's buffers (nulls where `valid` is False)."""
    bits = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.large_string(), len(valid), [bits, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def to_text(v: Any) -> str | None:
    """A cell as text: numbers keep their digits (no float rounding for ints). A string with
    an unpaired surrogate escape (`"\\udc80"`: valid JSON, but no UTF-8 text) keeps it as that
    escape, so the value is shown (and rejected) as it stands in the file."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:G}"
    if isinstance(v, int):
        return str(v)
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def is_nested(v: Any) -> bool:
    return isinstance(v, dict | list)


class JsonLinesSource(Source):
    def __init__(
        self, path: str | os.PathLike[str], options: ReadOptions, *, read_all: bool = False
    ):
        """`read_all`: every batch will be read (see `open_source`)."""
        super().__init__(os.fspath(path), options, format="jsonl")
        # Lines come from the delimited reader with no splitting: it decodes and numbers them.
        self.lines_src = DelimitedSource(path, options, plain=True, read_all=read_all)
        self.encoding = self.lines_src.encoding
        self.facts.update(self.lines_src.facts)
        keys: dict[str, None] = {}
        for b in self.lines_src.batches():
            for raw in b.column("1").to_pylist()[:200]:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    keys.update(dict.fromkeys(obj))
            break
        self.columns = list(keys) or ["1"]
        self.required: set[str] = set()

    def require(self, columns: Sequence[str]) -> None:
        self.required = set(columns)

    def batches(self) -> Iterator[Batch]:
        self.rows = self.blank_lines = 0
        self.rejects.clear()
        self.lines_src.serial = self.serial  # (reading ahead: see Source.serial)
        for b in self.lines_src.batches():
            lines = b.column("1")
            n = len(lines)
            # Flat objects of strings, numbers, booleans and nulls are read in Rust, as the
            # loop below reads them; the loop decides every other line (`core::jsonl`).
            status, fast = _core.jsonl_read(lines, self.columns)
            self.blank_lines += int(np.count_nonzero(status == BLANK))
            rows: dict[str, list[str | None]] = {c: [] for c in self.columns}
            keep: list[int] = []
            left = np.flatnonzero(status == LEFT)
            raws = lines.take(positions(left)).to_pylist() if len(left) else []
            for i, raw in zip(left.tolist(), raws, strict=True):
                line = b.lines[i]
                if not raw.strip():
                    self.blank_lines += 1
                    continue
                try:
                    obj = json.loads(raw)
                    if not isinstance(obj, dict):
                        raise ValueError("not an object")
                except (ValueError, RecursionError):
                    self.reject(int(line), "", "bad_json", raw)
                    continue
                for c in self.required:
                    if is_nested(obj.get(c)):
                        kind = "an object" if isinstance(obj[c], dict) else "a list"
                        raise InputError(
                            f"{self.path}: line {int(line)}: column {c!r} holds {kind}, not a "
                            "value; flatten the file or choose another column"
                        )
                keep.append(i)
                for c in self.columns:
                    rows[c].append(to_text(obj.get(c)))
            is_row = status == ROW
            kept_mask = is_row.copy()
            kept_mask[keep] = True
            kept = np.flatnonzero(kept_mask)
            if not len(kept):
                continue
            # Row k of the batch: line kept[k], from the Rust columns or (n + j) the loop's.
            where = kept.copy()
            if keep:
                slot = np.zeros(n, dtype=np.int64)
                slot[keep] = n + np.arange(len(keep))
                where = np.where(is_row[kept], kept, slot[kept])
            take = positions(where)
            cols = {}
            for c, (offsets, data, valid) in zip(self.columns, fast, strict=True):
                col = _text_column(offsets, data, valid)
                if keep:
                    col = pa.concat_arrays([col, text_array(rows[c])])
                cols[c] = col.take(take)
            self.rows += len(kept)
            yield Batch(cols, b.lines[kept])
        self.facts["sha256"] = self.lines_src.facts["sha256"]  # (hashed as it was read)

    def count_rows(self) -> int:
        return self.lines_src.count_rows()
