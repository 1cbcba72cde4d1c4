"""Excel workbooks (.xlsx) through openpyxl, read-only and streamed: every sheet, or the one
named by --sheet. A row's line is its Excel row number; the sheet goes with the file name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .base import Batch, InputError, ReadOptions, Source, text_array
from .jsonl import to_text

BATCH = 1 << 14


def cell_text(v: Any) -> str | None:
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    # Excel stores long numbers as floats: 110105194912310021 comes back as 1.10105194912310E+17
    # and prints as such, which the canonicaliser reports as excel_scientific.
    return to_text(v)


class ExcelSource(Source):
    def __init__(self, path: str | os.PathLike[str], options: ReadOptions):
        super().__init__(os.fspath(path), options, format="xlsx", encoding="binary")
        try:
            import openpyxl
        except ImportError:
            raise InputError(
                f"{self.path}: reading Excel needs openpyxl: pip install 'pi_match[excel]'"
            ) from None
        try:
            self.book = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as e:  # openpyxl raises many types for damaged files
            raise InputError(f"{self.path}: not a readable .xlsx workbook ({e})") from None
        names = self.book.sheetnames
        if options.sheet is not None:
            if options.sheet not in names:
                raise InputError(
                    f"{self.path}: no sheet {options.sheet!r}; sheets are {', '.join(names)}"
                )
            names = [options.sheet]
        self.sheets = names
        self.header = options.header is not False
        cols: list[str] = []
        for name in names:
            first = next(self.book[name].iter_rows(max_row=1, values_only=True), ())
            here = (
                [str(c).strip() if c is not None else str(i) for i, c in enumerate(first, 1)]
                if self.header
                else [str(i) for i in range(1, len(first) + 1)]
            )
            cols += [c for c in here if c not in cols]
        self.columns = cols
        self.facts.update(sheets=names)

    def batches(self) -> Iterator[Batch]:
        self.rows = 0
        self.rejects.clear()
        for name in self.sheets:
            ws = self.book[name]
            it = ws.iter_rows(values_only=True)
            names = [str(i) for i in range(1, len(self.columns) + 1)]
            if self.header:
                first = next(it, ())
                names = [
                    str(c).strip() if c is not None else str(i) for i, c in enumerate(first, 1)
                ]
            rows: list[tuple[Any, ...]] = []
            lines: list[int] = []
            start = 2 if self.header else 1
            for r, values in enumerate(it, start):
                if all(v is None for v in values):
                    self.blank_lines += 1
                    continue
                rows.append(values)
                lines.append(r)
                if len(rows) == BATCH:
                    yield self._batch(names, rows, lines, name)
                    rows, lines = [], []
            if rows:
                yield self._batch(names, rows, lines, name)

    def _batch(
        self, names: list[str], rows: list[tuple[Any, ...]], lines: list[int], sheet: str
    ) -> Batch:
        self.rows += len(rows)
        cols = {}
        for c in self.columns:
            i = names.index(c) if c in names else None
            cols[c] = text_array(
                [cell_text(r[i]) if i is not None and i < len(r) else None for r in rows]
            )
        b = Batch(cols, np.array(lines, dtype=np.uint64))
        self.facts["sheet_of_batch"] = sheet
        return b

    def count_rows(self) -> int:
        return sum(max((self.book[s].max_row or 0) - int(self.header), 0) for s in self.sheets)
