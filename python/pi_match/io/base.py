"""What every reader shares: options, batches with line numbers, rejects."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .._core import PiMatchError
from .._core import canonicalize as _canonicalize


class InputError(PiMatchError):
    """An input file that cannot be read as asked (missing, undecodable, unknown column...)."""


@dataclass
class ReadOptions:
    """How to read inputs. None means: work it out from the file."""

    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    quote: str = '"'
    sheet: str | None = None
    format: str | None = None
    chunk_bytes: int = 16 << 20


@dataclass
class Reject:
    """A row (or value) that could not be used: where it is, why, and its raw text. `rows`
    is how many records it stands for (a skipped sheet is one entry for all its rows)."""

    file: str
    line: int
    column: str
    reason: str
    raw: str
    rows: int = 1


@dataclass
class Batch:
    """Columns of one chunk (Arrow arrays, binary or string) and each row's line number."""

    columns: dict[str, pa.Array]
    lines: npt.NDArray[np.uint64]
    #: Per column, the cells the reader knows are damaged (numeric Excel cells of more than
    #: 15 digits): rejected as `excel_rounded`, never read as identifiers.
    damaged: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    #: The reader checked that every binary column holds valid UTF-8 throughout.
    utf8: bool = False

    def column(self, name: str) -> pa.Array:
        return self.columns[name]

    def text(self, name: str) -> pa.Array:
        """Column `name`; a binary one the reader found valid UTF-8 as a string array over the
        same buffers (no copy), so the core need not check each value again."""
        a = self.columns[name]
        if self.utf8 and pa.types.is_large_binary(a.type):
            return pa.Array.from_buffers(pa.large_string(), len(a), a.buffers(), offset=a.offset)
        return a

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class Source:
    """An opened input. `batches()` streams it; counts and rejects fill in as it goes."""

    path: str
    options: ReadOptions
    format: str = "csv"
    encoding: str = "binary"
    columns: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    rows: int = 0
    blank_lines: int = 0
    facts: dict[str, Any] = field(default_factory=dict)

    def batches(self) -> Iterator[Batch]:  # pragma: no cover - abstract
        raise NotImplementedError

    def require(self, columns: Sequence[str]) -> None:
        """The columns the caller will use (a reader with per-part headers checks them)."""

    @property
    def unreadable(self) -> int:
        """Records that could not be read (each in the rejects file)."""
        return sum(r.rows for r in self.rejects)

    def count_rows(self) -> int:
        """Rows (an upper bound: lines or records) without reading values; for sizing."""
        n = 0
        for b in self.batches():
            n += len(b)
        return n

    def resolve(self, ref: str) -> str:
        """A column by 1-based number (a number always means a position) or header name; the
        second of two columns with one name is `name#2`."""
        ref = ref.strip()
        if ref.isdigit():
            if 1 <= int(ref) <= len(self.columns):
                return self.columns[int(ref) - 1]
        elif ref in self.columns:
            return ref
        have = ", ".join(f"{i}:{c}" for i, c in enumerate(self.columns, 1))
        raise InputError(f"{self.path}: no column {ref!r}; columns are {have}")

    def reject(self, line: int, column: str, reason: str, raw: bytes | str) -> None:
        text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
        self.rejects.append(Reject(self.path, line, column, reason, text))


def unique_names(names: list[str]) -> list[str]:
    """Header names made unique: a blank name becomes its 1-based position, the k-th repeat of
    a name `name#k`."""
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names, 1):
        if not name:
            out.append(str(i))
            continue
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


_DIGIT_RUN = re.compile(r"\d{7,}")


def looks_like_data(field: str) -> bool:
    """Whether a header-line field is a value rather than a name: a valid identifier of any
    kind, a run of 7 or more digits, or an e-mail-like text."""
    if not field:
        return False
    if _DIGIT_RUN.search(field) or ("@" in field and "." in field):
        return True
    kinds = ("cn_ric", "cn_mobile", "email", "bank_card")
    return any(_canonicalize(k, [field]) != [None] for k in kinds)


def sha256_file(path: str | os.PathLike[str], chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def binary_array(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> pa.Array:
    """A large_binary Arrow array over numpy buffers, without copying them."""
    n = len(offsets) - 1
    return pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def text_array(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.large_string())
