"""Parquet through pyarrow, streamed in record batches; a row's "line" is its 1-based row
number. Non-text columns are turned into text (integers keep their digits)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .base import Batch, InputError, ReadOptions, Source


def is_nested(t: pa.DataType) -> bool:
    return bool(pa.types.is_nested(t) or pa.types.is_map(t) or pa.types.is_union(t))


def as_text(a: pa.Array) -> pa.Array:
    t = a.type
    if is_nested(t):
        # Not a value: kept out as nulls (a column that is asked for is refused up front).
        return pa.nulls(len(a), pa.large_string())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return a
    if pa.types.is_large_binary(t) or pa.types.is_string_view(t):
        return a
    if pa.types.is_dictionary(t):
        return as_text(a.dictionary_decode())
    if pa.types.is_floating(t):
        # Whole numbers print without ".0"; others (Excel-mangled IDs) keep the E notation.
        whole = pc.and_(pc.equal(pc.floor(a), a), pc.less(pc.abs(a), 1e15))
        ints = pc.cast(pc.cast(pc.if_else(whole, a, 0), pa.int64()), pa.string())
        return pc.if_else(whole, ints, pc.cast(a, pa.string()))
    return pc.cast(a, pa.string())


class ParquetSource(Source):
    def __init__(self, path: str | os.PathLike[str], options: ReadOptions):
        super().__init__(os.fspath(path), options, format="parquet", encoding="binary")
        try:
            self.file = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"{self.path}: not a readable Parquet file ({e})") from None
        self.columns = list(self.file.schema_arrow.names)

    def require(self, columns: Sequence[str]) -> None:
        schema = self.file.schema_arrow
        for c in columns:
            t = schema.field(c).type
            if is_nested(t):
                raise InputError(
                    f"{self.path}: column {c!r} is of type {t}, not a value; flatten it or "
                    "choose another column"
                )

    def batches(self) -> Iterator[Batch]:
        self.rows = 0
        for rb in self.file.iter_batches(batch_size=1 << 16):
            n = rb.num_rows
            lines = np.arange(self.rows + 1, self.rows + n + 1, dtype=np.uint64)
            self.rows += n
            try:
                cols = {c: as_text(rb.column(c)) for c in self.columns}
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(f"{self.path}: a column cannot be read as text ({e})") from None
            yield Batch(cols, lines)

    def count_rows(self) -> int:
        return int(self.file.metadata.num_rows)
