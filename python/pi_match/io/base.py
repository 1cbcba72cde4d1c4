"""What every reader shares: options, batches with line numbers, rejects."""

from __future__ import annotations

import hashlib
import os
import re
import threading
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

    #: Set while `read_ahead` reads this source on a thread of its own beside a caller whose
    #: work has the cores (a build's hashing): the reader's own work (splitting, decoding)
    #: then stays on that one thread rather than queue for the cores behind the caller's.
    serial = False

    def batches(self) -> Iterator[Batch]:  # pragma: no cover - abstract
        raise NotImplementedError

    def require(self, columns: Sequence[str]) -> None:
        """The columns the caller will use (a reader with per-part headers checks them)."""

    def sha256(self) -> str:
        """The input's SHA-256: as its reader hashed the bytes it read (a text reader, once it
        has read them all), else of the file as it is now."""
        return str(self.facts.get("sha256") or sha256_file(self.path))

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


class _Handover:
    """One batch passed from a reading thread to its caller, and the reader's end."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.item: tuple[Batch | None, BaseException | None] | None = None
        self.stop = False


def read_ahead(src: Source) -> Iterator[Batch]:
    """`src.batches()`, read on a thread of its own one batch ahead of the caller: while the
    caller works on a batch, the next is read, decoded and split (`Source.serial`), so the
    reading fills the gaps the caller's work leaves on the cores. The same batches in the same
    order, and the same errors at the same point: an error of the reader is raised where the
    batch it stopped at would have come. At most two batches are alive (the caller's and the
    one being read): a reader hands its batch over and waits until it is taken before it reads
    the next. Ending early (an error of the caller, or breaking off) stops the reader after the
    batch it is reading, and closes its file, before this returns."""
    box = _Handover()
    end_of_batches = (None, None)

    def read() -> None:
        batches = src.batches()
        try:
            for b in batches:
                with box.cv:
                    box.item = (b, None)
                    box.cv.notify_all()
                    del b  # (the caller's now: not kept alive here while the next is read)
                    box.cv.wait_for(lambda: box.item is None or box.stop)
                    if box.stop:
                        return
            got: tuple[Batch | None, BaseException | None] = end_of_batches
        except BaseException as e:  # raised in the caller's thread, below
            got = (None, e)
        finally:
            if (close := getattr(batches, "close", None)) is not None:
                close()  # (a generator: its file closed here, on its own thread)
        with box.cv:
            box.item = got
            box.cv.notify_all()

    src.serial = True
    reader = threading.Thread(target=read, name=f"pi_match reader: {src.path}", daemon=True)
    reader.start()
    try:
        while True:
            with box.cv:
                box.cv.wait_for(lambda: box.item is not None)
                assert box.item is not None
                batch, error = box.item
                box.item = None
                box.cv.notify_all()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
            del batch
    finally:
        with box.cv:
            box.stop = True
            box.cv.notify_all()
        reader.join()
        src.serial = False


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


def positions(idx: npt.NDArray[np.intp]) -> pa.Array:
    """Row positions as an Arrow array over the numpy buffer. Not `pa.array`: its first call
    imports pandas (pyarrow's pandas check), a quarter of a second of a build's start-up."""
    i64 = np.ascontiguousarray(idx, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(i64), [None, pa.py_buffer(i64)])


def text_array(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.large_string())
