"""Excel workbooks (.xlsx) through openpyxl, read-only and streamed: every sheet, or the one
named by --sheet. A row's line is its Excel row number; the sheet goes with the file name.

Hostile or damaged workbooks are bounded before openpyxl sees them: the zip's declared sizes
are checked (no part over 1 GiB uncompressed, 4 GiB in all, shared strings — which openpyxl
holds in memory — at most 256 MiB, and no part over 16 MiB that expands more than 200-fold),
and a sheet's declared dimension is ignored (`A1:XFD1048576` would pad every row to 16,384
cells); cells right of a sheet's first-row width are not read, for the same reason (at most
1,024 columns). Each sheet is matched to the chosen columns by its own header; a sheet that
lacks one is skipped and reported with its row count, never read as missing values. Numeric cells of
more than 15 digits are what Excel's floating point rounded (an 18-digit ID number ends up
`110105198001070000`): they are rejected as `excel_rounded`, never read as identifiers."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .base import Batch, InputError, ReadOptions, Reject, Source, text_array, unique_names
from .jsonl import to_text

BATCH = 1 << 14
MAX_COLUMNS = 1024
MAX_PART = 1 << 30
MAX_TOTAL = 4 << 30
MAX_SHARED_STRINGS = 256 << 20
MAX_RATIO = 200
RATIO_FROM = 16 << 20
#: Excel holds numbers as doubles: past 15 significant digits the value is rounded.
EXACT_DIGITS = 15


def cell_text(v: Any) -> str | None:
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    # Excel stores long numbers as floats: 110105194912310021 comes back as 1.10105194912310E+17
    # and prints as such, which the canonicaliser reports as excel_scientific.
    return to_text(v)


def rounded_by_excel(v: Any) -> bool:
    """A numeric cell too long for Excel to hold exactly."""
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and abs(v) >= 10**EXACT_DIGITS
        and v == v  # not NaN
    )


def check_zip(path: str) -> None:
    """Refuse a workbook whose parts would expand beyond bounded memory (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{path}: not a readable .xlsx workbook ({e})") from None
    total = 0
    for i in infos:
        total += i.file_size
        ratio = i.file_size / max(i.compress_size, 1)
        limit = MAX_SHARED_STRINGS if i.filename.endswith("sharedStrings.xml") else MAX_PART
        if i.file_size > limit or (i.file_size > RATIO_FROM and ratio > MAX_RATIO):
            raise InputError(
                f"{path}: part {i.filename} expands to {i.file_size:,} bytes ({ratio:,.0f}× its "
                f"compressed size); refused as a possible zip bomb (limits: {limit:,} bytes, "
                f"{MAX_RATIO}× above {RATIO_FROM:,}). Export the sheet to CSV instead"
            )
    if total > MAX_TOTAL:
        raise InputError(
            f"{path}: expands to {total:,} bytes in all (limit {MAX_TOTAL:,}); refused as a "
            "possible zip bomb. Export the sheets to CSV instead"
        )


def _damaged(path: str, sheet: str, e: Exception) -> InputError:
    return InputError(
        f"{path}: sheet {sheet!r} is damaged and cannot be read ({type(e).__name__}: "
        f"{str(e)[:200]}); open it in Excel and save it again, or export it to CSV"
    )


def rows_of(ws: Any, path: str, sheet: str, **kw: Any) -> Iterator[tuple[Any, ...]]:
    """`ws.iter_rows(values_only=True)`, with openpyxl's many exceptions on damaged XML turned
    into one InputError naming the sheet."""
    it = ws.iter_rows(values_only=True, **kw)
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except (TimeoutError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:  # openpyxl and lxml raise any type on damaged XML
            raise _damaged(path, sheet, e) from None
        yield row


class ExcelSource(Source):
    def __init__(self, path: str | os.PathLike[str], options: ReadOptions):
        super().__init__(os.fspath(path), options, format="xlsx", encoding="binary")
        try:
            import openpyxl
        except ImportError:
            raise InputError(
                f"{self.path}: reading Excel needs openpyxl: pip install 'pi_match[excel]'"
            ) from None
        check_zip(self.path)
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
        self.required: list[str] = []
        self.sheet_columns: dict[str, list[str]] = {}
        self.declared_rows: dict[str, int] = {}
        cols: list[str] = []
        for name in names:
            try:
                ws = self.book[name]
                self.declared_rows[name] = int(ws.max_row or 0)
            except (TimeoutError, MemoryError):
                raise
            except Exception as e:
                raise _damaged(self.path, name, e) from None
            ws.reset_dimensions()
            first = list(next(rows_of(ws, self.path, name, max_row=1), ()))
            while first and first[-1] is None:
                first.pop()  # a stray cell at column XFD must not make 16,384 columns
            if len(first) > MAX_COLUMNS:
                raise InputError(
                    f"{self.path}: sheet {name!r} has {len(first):,} columns in its first row; "
                    f"pi_match reads at most {MAX_COLUMNS:,} (export the columns you need)"
                )
            here = (
                unique_names([str(c).strip() if c is not None else "" for c in first])
                if self.header
                else [str(i) for i in range(1, len(first) + 1)]
            )
            self.sheet_columns[name] = here
            cols += [c for c in here if c not in cols]
        self.columns = cols
        self.facts.update(sheets=names, skipped_sheets=[])

    def require(self, columns: Sequence[str]) -> None:
        self.required = list(columns)

    def batches(self) -> Iterator[Batch]:
        self.rows = self.blank_lines = 0
        self.rejects.clear()
        skipped: list[dict[str, Any]] = []
        self.facts["skipped_sheets"] = skipped
        for name in self.sheets:
            ws = self.book[name]
            names = self.sheet_columns[name]
            # Cells right of the last column are not read: a hostile sheet with a cell at XFD in
            # every row would otherwise make every row 16,384 cells (gigabytes from a 1 MB file).
            it = rows_of(ws, self.path, name, max_col=max(len(names), 1))
            if self.header:
                next(it, ())
            start = 2 if self.header else 1
            lacking = [c for c in self.required if c not in names]
            if lacking:
                # Read only to count: the skip is reported with every row it leaves out.
                n = sum(1 for values in it if any(v is not None for v in values))
                skipped.append({"sheet": name, "rows": n, "missing_columns": lacking})
                if n:
                    self.rejects.append(
                        self._skip_reject(name, n, lacking, ", ".join(names) or "none")
                    )
                continue
            rows: list[tuple[Any, ...]] = []
            lines: list[int] = []
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

    def _skip_reject(self, sheet: str, n: int, lacking: list[str], have: str) -> Reject:
        return Reject(
            f"{self.path}[{sheet}]",
            0,
            ",".join(lacking),
            "sheet_skipped",
            f"sheet {sheet!r} has no column {', '.join(map(repr, lacking))} (it has: {have}); "
            f"its {n} rows were not read",
            rows=n,
        )

    def _batch(
        self, names: list[str], rows: list[tuple[Any, ...]], lines: list[int], sheet: str
    ) -> Batch:
        self.rows += len(rows)
        cols = {}
        damaged = {}
        for c in self.columns:
            i = names.index(c) if c in names else None
            if i is None:
                cols[c] = text_array([None] * len(rows))
                continue
            cells = [r[i] if i < len(r) else None for r in rows]
            cols[c] = text_array([cell_text(v) for v in cells])
            mask = np.fromiter((rounded_by_excel(v) for v in cells), bool, len(cells))
            if mask.any():
                damaged[c] = mask
        b = Batch(cols, np.array(lines, dtype=np.uint64), damaged)
        self.facts["sheet_of_batch"] = sheet
        return b

    def count_rows(self) -> int:
        # The declared dimension can be forged: never size for more rows than the sheet's XML
        # could hold (a row takes at least 10 bytes of it).
        total = 0
        with zipfile.ZipFile(self.path) as z:
            sizes = {i.filename: i.file_size for i in z.infolist()}
        for s in self.sheets:
            part = str(getattr(self.book[s], "_worksheet_path", "")).lstrip("/")
            bound = sizes.get(part, 0) // 10 if part in sizes else self.declared_rows[s]
            total += max(min(self.declared_rows[s], bound) - int(self.header), 0)
        return total
