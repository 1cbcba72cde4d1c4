"""SQL dumps: rows of `INSERT INTO t (cols) VALUES (...), (...);` statements (mysqldump style,
one statement per line or one tuple per line), also `INSERT IGNORE`, `REPLACE INTO` and
multi-row inserts. Columns are the table's CREATE TABLE columns (else the first INSERT's column
list); each INSERT's own column list maps its values to them by name, so statements that list
the columns in another order are read right. With several tables, the first is read (or the
one named by --sheet); rows of the others are counted and reported, not silently dropped. A
tuple that cannot be parsed is one unreadable record; the tuples before it on the line are
used, and no row is ever both used and unreadable."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import numpy as np

from .base import Batch, InputError, ReadOptions, Source, text_array
from .delimited import DelimitedSource

INSERT = re.compile(
    r"\s*(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*"
    r"(?:INTO\s+)?([`\"\w.$]+)\s*(?:\(([^)]*)\))?\s*VALUES?\s*",
    re.I,
)
CREATE = re.compile(r"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([`\"\w.$]+)", re.I)
COLDEF = re.compile(r"\s*[`\"]([^`\"]+)[`\"]\s+\w")
VALUE = re.compile(r"\s*('(?:[^'\\]|\\.|'')*'|NULL\b|[^,()\s][^,()]*)\s*", re.I | re.S)
ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "b": "\b"}
BATCH = 1 << 16


def _name(ident: str) -> str:
    return ident.strip('`"').split(".")[-1]


def _unquote(tok: str) -> str | None:
    if tok.upper() == "NULL":
        return None
    if tok.startswith("'"):
        body = tok[1:-1].replace("''", "'")
        return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), body, flags=re.S)
    return tok.strip()


def _tuples(text: str, pos: int) -> Iterator[tuple[list[str | None] | None, int, bool]]:
    """(values or None for a broken tuple, position of the tuple (for a broken one) or after
    it, whether the statement ended)."""
    n = len(text)
    while pos < n:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n:
            return
        if text[pos] == ";":
            yield [], pos + 1, True
            return
        if text[pos] != "(":
            yield None, pos, False
            return
        at = pos
        pos += 1
        values: list[str | None] = []
        while True:
            m = VALUE.match(text, pos)
            if not m:
                yield None, at, False
                return
            values.append(_unquote(m.group(1)))
            pos = m.end()
            if pos < n and text[pos] == ",":
                pos += 1
                continue
            if pos < n and text[pos] == ")":
                pos += 1
                break
            yield None, at, False
            return
        yield values, pos, False


class SqlDumpSource(Source):
    def __init__(
        self, path: str | os.PathLike[str], options: ReadOptions, *, read_all: bool = False
    ):
        """`read_all`: every batch will be read (see `open_source`)."""
        super().__init__(os.fspath(path), options, format="sql")
        self.lines_src = DelimitedSource(path, options, plain=True, read_all=read_all)
        self.encoding = self.lines_src.encoding
        self.facts.update(self.lines_src.facts)
        self.table: str | None = options.sheet
        self.columns = []
        creates: dict[str, list[str]] = {}
        current: str | None = None
        for b in self.lines_src.batches():
            for raw in b.column("1").to_pylist():
                line = raw.decode("utf-8", "replace")
                if m := CREATE.match(line):
                    current = _name(m.group(1))
                    creates[current] = []
                elif current and (c := COLDEF.match(line)):
                    creates[current].append(c.group(1))
                elif m := INSERT.match(line):
                    name = _name(m.group(1))
                    if self.table is None:
                        self.table = name
                    if name != self.table:
                        continue
                    if creates.get(name):
                        self.columns = creates[name]
                    elif m.group(2):
                        self.columns = [_name(c.strip()) for c in m.group(2).split(",")]
                    else:
                        first = next(_tuples(line, m.end()), (None, 0, False))[0]
                        self.columns = [str(i) for i in range(1, len(first or [None]) + 1)]
                    break
            if self.columns:
                break
        if not self.columns:
            raise InputError(
                f"{self.path}: no INSERT INTO ... VALUES statements"
                + (f" for table {self.table!r}" if options.sheet else "")
            )
        self.facts.update(table=self.table, other_tables={})

    def _mapping(self, listed: str | None) -> tuple[list[int | None] | None, int]:
        """For each column, its position in an INSERT's own column list (None: not listed),
        and how many values each tuple holds; no mapping when the statement lists no columns
        (values come in table order)."""
        if not listed:
            return None, len(self.columns)
        names = [_name(c.strip()) for c in listed.split(",")]
        return [names.index(c) if c in names else None for c in self.columns], len(names)

    def batches(self) -> Iterator[Batch]:
        self.rows = 0
        self.rejects.clear()
        others: dict[str, int] = {}
        self.facts["other_tables"] = others
        rows: list[list[str | None]] = []
        lines: list[int] = []
        in_insert: str | None = None
        mapping: list[int | None] | None = None
        width = len(self.columns)
        self.lines_src.serial = self.serial  # (reading ahead: see Source.serial)
        for b in self.lines_src.batches():
            for raw, line_no in zip(b.column("1").to_pylist(), b.lines.tolist(), strict=True):
                line = raw.decode("utf-8", "surrogateescape")
                pos = 0
                if m := INSERT.match(line):
                    in_insert = _name(m.group(1))
                    mapping, width = self._mapping(m.group(2))
                    pos = m.end()
                elif in_insert is None:
                    continue
                for values, at, ended in _tuples(line, pos):
                    if ended:
                        in_insert = None
                        break
                    if in_insert != self.table:
                        others[in_insert] = others.get(in_insert, 0) + 1
                        continue
                    if values is None:
                        # Only the broken remainder is unreadable; tuples before it were used.
                        self.reject(line_no, "", "bad_sql", line[at : at + 2000])
                        break
                    if len(values) != width:
                        self.reject(line_no, "", "field_count", line[at : at + 2000])
                        continue
                    if mapping is not None:
                        values = [values[i] if i is not None else None for i in mapping]
                    rows.append(values)
                    lines.append(line_no)
                if len(rows) >= BATCH:
                    yield self._batch(rows, lines)
                    rows, lines = [], []
        self.facts["sha256"] = self.lines_src.facts["sha256"]  # (hashed as it was read)
        if rows:
            yield self._batch(rows, lines)

    def _batch(self, rows: list[list[str | None]], lines: list[int]) -> Batch:
        self.rows += len(rows)
        cols = {c: text_array([r[i] for r in rows]) for i, c in enumerate(self.columns)}
        return Batch(cols, np.array(lines, dtype=np.uint64))
