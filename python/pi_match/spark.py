"""Scale-out on Spark (`pip install pi_match[spark]`): one shard per partition through
`mapInArrow` (the values reach the Rust core as Arrow arrays, the GIL released), merged by
`treeReduce` into the artefact a single process would build from the same rows — the same
sections, bit for bit. As with `pi_match.dask`, the key never travels with the job: every
task loads it from `key_path` on a file system the executors share, and every shard's key id
is checked against the key's."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from . import _core
from ._core import BloomIndex, Key, TagSet
from .artefact import Artefact
from .build import version_of_generation
from .dask import (
    _absorb,
    _finish,
    _load_key,
    _merge,
    _new_stats,
    _open,
    _report_stats,
    capacities,
)

__all__ = ["build", "probe"]

Fields = Mapping[str, str]


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    i = batch.schema.get_field_index(name)
    if i < 0:
        raise _core.PiMatchError(
            f"no column {name!r} in the data; it has {', '.join(batch.schema.names)}"
        )
    return batch.column(i)


def _counter(fields: Fields, versions: Mapping[str, int | None]) -> Any:
    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        n = dict.fromkeys(fields, 0)
        for b in batches:
            for k, c in fields.items():
                n[k] += _core.count_valid(k, _column(b, c), canon_version=versions[k])
        yield pa.RecordBatch.from_pydict({"counts": [json.dumps(n)]})

    return count


def _sharder(
    key_path: str,
    fields: Fields,
    caps: Mapping[str, int],
    fpr: float,
    exact: bool,
    versions: Mapping[str, int | None],
    prf: str,
) -> Any:
    def shard(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        key = _load_key(key_path)
        blooms = {k: BloomIndex(key, k, capacity=caps[k], fpr=fpr, canon_version=versions[k],
                                prf=prf) for k in fields}  # fmt: skip
        tags = (
            {k: TagSet(key, k, canon_version=versions[k], prf=prf) for k in fields} if exact else {}
        )
        stats = {k: {**_new_stats(), "partitions": 1} for k in fields}  # this partition
        for b in batches:
            for k, c in fields.items():
                rep = blooms[k].add(_column(b, c), tag_set=tags.get(k))
                _absorb(stats[k], _report_stats(rep, partitions=0))
        sections: list[BloomIndex | TagSet] = []
        for k in fields:
            sections += [blooms[k]] + ([tags[k]] if k in tags else [])
        yield pa.RecordBatch.from_pydict(
            {"shard": [Artefact(sections).to_bytes()], "stats": [json.dumps(stats)]},
            schema=pa.schema([("shard", pa.binary()), ("stats", pa.string())]),
        )

    return shard


def build(
    df: Any,
    key_path: str | os.PathLike[str],
    fields: Fields,
    *,
    fpr: float = 1e-6,
    capacity: int | Mapping[str, int] | None = None,
    exact: bool = False,
    depth: int = 3,
    shards: int | None = None,
    canon_version: int | None = None,
    prf: str = "hmac-sha256",
    accounting: dict[str, Any] | None = None,
) -> Artefact:
    """The artefact of a Spark DataFrame's identifier columns (`fields`: {kind: column}):
    a shard per task via `mapInArrow`, merged by `treeReduce(depth=depth)`. The same
    contract as `pi_match.dask.build`. Every shard has the whole index's layout, so the
    partitions are first coalesced (no shuffle) to `shards` tasks — by default the
    context's default parallelism, one shard per task slot."""
    key_path = os.fspath(key_path)
    if not fields:
        raise _core.PiMatchError("build needs at least one field: {kind: column}")
    key_id = Key.load(key_path).id
    versions = {k: version_of_generation(k, canon_version) for k in fields}
    if shards is not None and shards < 1:
        raise _core.PiMatchError(f"shards must be at least 1, got {shards}")
    cols = df.select(*[df[c] for c in dict.fromkeys(fields.values())])
    want = shards or df.sparkSession.sparkContext.defaultParallelism
    if cols.rdd.getNumPartitions() > want:
        cols = cols.coalesce(want)
    caps = capacities(
        fields,
        capacity,
        lambda: [json.loads(r["counts"]) for r in
                 cols.mapInArrow(_counter(dict(fields), versions), "counts string").collect()],
    )  # fmt: skip
    sharder = _sharder(key_path, dict(fields), caps, fpr, exact, versions, prf)
    pieces = cols.mapInArrow(sharder, "shard binary, stats string").rdd.map(
        lambda r: (bytes(r["shard"]), json.loads(r["stats"]))
    )
    data, stats = pieces.treeReduce(lambda a, b: _merge(key_id, a, b), depth=depth)
    return _finish(Artefact.from_bytes(data), stats, key_id, cols.rdd.getNumPartitions(), caps,
                   accounting)  # fmt: skip


def probe(
    df: Any,
    artefact_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    fields: Fields,
    *,
    row_column: str | None = None,
) -> Any:
    """The rows of `df` whose `fields` ({kind: column}) are in the artefact, with their columns
    plus `kind` (and `row` when `row_column` names a column holding each row's position — Spark
    rows have no order of their own). Each executor memory-maps the artefact once."""
    from pyspark.sql.types import StringType, StructField, StructType

    artefact_path, key_path = os.fspath(artefact_path), os.fspath(key_path)
    art = Artefact.open(artefact_path, verify=False)
    for kind in fields:
        art.get(kind)
    schema = StructType([*df.schema.fields, StructField("kind", StringType(), False)])
    names = list(df.schema.names)
    flds = dict(fields)

    def hits(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        a = _open(artefact_path, os.stat(artefact_path).st_mtime, key_path)
        for b in batches:
            for kind, col in flds.items():
                found = np.asarray(a.get(kind).contains(_column(b, col), reasons=True)[0])
                idx = np.flatnonzero(found)
                if len(idx):
                    t = b.take(pa.array(idx))
                    yield pa.RecordBatch.from_arrays(
                        [*t.columns, pa.array([kind] * len(idx))], names=[*names, "kind"]
                    )

    out = df.mapInArrow(hits, schema)
    return out if row_column is None else out.withColumnRenamed(row_column, "row")
