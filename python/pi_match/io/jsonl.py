"""JSON lines: one object per line; keys are columns. Lines that are not JSON objects are
rejected with their line number."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .base import Batch, InputError, ReadOptions, Source, text_array
from .delimited import DelimitedSource


def to_text(v: Any) -> str | None:
    """A cell as text: numbers keep their digits (no float rounding for ints)."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:G}"
    return str(v) if isinstance(v, int) else json.dumps(v, ensure_ascii=False)


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
            rows: dict[str, list[str | None]] = {c: [] for c in self.columns}
            keep: list[int] = []
            for i, (raw, line) in enumerate(zip(b.column("1").to_pylist(), b.lines, strict=True)):
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
            if keep:
                self.rows += len(keep)
                cols = {c: text_array(v) for c, v in rows.items()}
                yield Batch(cols, b.lines[np.array(keep, dtype=np.int64)])
        self.facts["sha256"] = self.lines_src.facts["sha256"]  # (hashed as it was read)

    def count_rows(self) -> int:
        return self.lines_src.count_rows()
