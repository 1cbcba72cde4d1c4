"""Readers for what seized data actually looks like: delimited text in UTF-8 or GB18030 with any
separator, JSON lines, Parquet, Excel workbooks, SQL dumps and plain lists. Each yields batches
of Arrow columns with the line number of every row, streams with bounded memory, and reports
every row it cannot read instead of dropping it.

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "leak.txt"
>>> _ = p.write_bytes("姓名----身份证号\\n张三----11010519491231002X\\n".encode("gb18030"))
>>> src = open_source(p, ReadOptions(delimiter="----"))
>>> src.encoding, src.columns
('gb18030', ['姓名', '身份证号'])
>>> [b.column("身份证号").to_pylist() for b in src.batches()]
[[b'11010519491231002X']]
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from ..outputs import file_identity
from .base import Batch, InputError, ReadOptions, Reject, Source, read_ahead
from .detect import choose_fields, detect_columns

__all__ = [
    "Batch",
    "InputError",
    "ReadOptions",
    "Reject",
    "Source",
    "check_distinct_inputs",
    "choose_fields",
    "detect_columns",
    "open_source",
    "read_ahead",
]

FORMATS = ("csv", "lines", "jsonl", "parquet", "xlsx", "sql")
_BY_SUFFIX = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".dat": "csv", ".psv": "csv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "xlsx", ".xlsm": "xlsx",
    ".sql": "sql",
}  # fmt: skip


def guess_format(path: str | os.PathLike[str]) -> str:
    name = os.fspath(path).lower()
    for suffix in (".gz", ".bz2"):
        if name.endswith(suffix):
            raise InputError(f"{path}: compressed files are not read directly; decompress first")
    return _BY_SUFFIX.get(os.path.splitext(name)[1], "csv")


def open_source(
    path: str | os.PathLike[str], options: ReadOptions | None = None, *, read_all: bool = False
) -> Source:
    """Open one input file. The format comes from `options.format` or the file name.

    Opening checks the whole file's encoding. `read_all=True` says every batch will be read
    (as a build does): a check the reading makes anyway is then left to it — a text file
    found not UTF-8 is not decoded once more beforehand — and a byte that does not decode
    raises the same InputError, from `batches()` instead of from here."""
    options = options or ReadOptions()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or never end; inputs are read twice besides.
        raise InputError(f"{path}: is not a regular file (a pipe or device); copy it to a file")
    fmt = options.format or guess_format(path)
    if fmt in ("csv", "lines"):
        from .delimited import DelimitedSource

        return DelimitedSource(path, options, plain=fmt == "lines", read_all=read_all)
    if fmt == "jsonl":
        from .jsonl import JsonLinesSource

        return JsonLinesSource(path, options, read_all=read_all)
    if fmt == "parquet":
        from .parquet import ParquetSource

        return ParquetSource(path, options)
    if fmt == "xlsx":
        from .excel import ExcelSource

        return ExcelSource(path, options)
    if fmt == "sql":
        from .sql import SqlDumpSource

        return SqlDumpSource(path, options, read_all=read_all)
    raise InputError(f"{path}: unknown format {fmt!r}; formats are {', '.join(FORMATS)}")


def check_distinct_inputs(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse a file given twice — the same path, or two names of one file (`./a.csv` and
    `a.csv`, a hard or symbolic link), as overlapping shell patterns give: what it holds would
    be counted twice. (A path that cannot be opened is left to the reader to name.)"""
    seen: dict[tuple[int, int], str] = {}
    for path in paths:
        p = os.fspath(path)
        if (ident := file_identity(p)) is None:
            continue
        if ident in seen:
            same = "given twice" if p == seen[ident] else f"the same file as {seen[ident]}"
            raise InputError(
                f"{p}: {same}; each input is read once, or what it holds would be counted "
                "twice — give it once"
            )
        seen[ident] = p
