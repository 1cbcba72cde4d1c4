"""Scale-out on Dask (`pip install pi_match[dask]`): one shard per partition, built in the Rust
core with the GIL released, merged by a tree of unions into the artefact a single process
would build from the same rows — the same sections, bit for bit.

The key never enters the task graph (graph arguments pass through the scheduler): every task
loads it from `key_path`, a path on a file system the workers share, and every shard's key id
is checked against the key's. Shards travel as artefact bytes; a merge ORs Bloom shards (they
have one layout, sized once for the whole build) and merges tag sets, straight from the bytes
in the Rust core.

>>> import dask.dataframe as dd, pandas as pd                       # doctest: +SKIP
>>> ddf = dd.from_pandas(pd.DataFrame({"phone": [...]}), npartitions=8)  # doctest: +SKIP
>>> art = pi_match.dask.build(ddf, "/shared/op.key", {"cn_mobile": "phone"})  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from . import _core
from ._core import BloomIndex, Key, TagSet
from .artefact import Artefact
from .build import version_of_generation

__all__ = ["build", "probe"]

Fields = Mapping[str, str]
#: Per kind: rows, valid, missing, rejected and rejected_by_reason (rows = the other three).
Stats = dict[str, Any]


def _new_stats() -> Stats:
    return {"partitions": 0, "rows": 0, "valid": 0, "missing": 0, "rejected": 0,
            "rejected_by_reason": {}}  # fmt: skip


def _report_stats(rep: Any, partitions: int = 1) -> Stats:
    """An `AddReport`'s accounting, for `partitions` partitions (to count them in merges)."""
    return {
        "partitions": partitions,
        "rows": rep.rows, "valid": rep.valid, "missing": rep.missing,
        "rejected": rep.rejected, "rejected_by_reason": dict(rep.rejected_by_reason),
    }  # fmt: skip


def _absorb(acc: Stats, st: Mapping[str, Any]) -> None:
    for f in ("partitions", "rows", "valid", "missing", "rejected"):
        acc[f] += st[f]
    for r, n in st["rejected_by_reason"].items():
        acc["rejected_by_reason"][r] = acc["rejected_by_reason"].get(r, 0) + n


def _values(pdf: Any, column: str) -> pa.Array:
    """A partition's column as an Arrow array (pandas NaN and None are nulls: missing)."""
    if column not in pdf.columns:
        raise _core.PiMatchError(
            f"no column {column!r} in the data; it has {', '.join(map(str, pdf.columns))}"
        )
    return pa.array(pdf[column], from_pandas=True)


@functools.lru_cache(maxsize=4)
def _key(key_path: str, mtime: float) -> Key:
    # one load per worker process and key file version
    return Key.load(key_path)


def _load_key(key_path: str) -> Key:
    return _key(key_path, os.stat(key_path).st_mtime)


def _count(pdf: Any, fields: Fields, versions: Mapping[str, int | None]) -> dict[str, int]:
    return {
        k: _core.count_valid(k, _values(pdf, c), canon_version=versions[k])
        for k, c in fields.items()
    }


class _Shard:
    """The sections one chain of partitions is building, and how its values were accounted
    for: built on one worker, a partition at a time (a worker holds one shard and one
    partition, not a shard per partition)."""

    def __init__(self, key: Key, fields: Fields, capacity: Mapping[str, int], fpr: float,
                 exact: bool, versions: Mapping[str, int | None], prf: str) -> None:  # fmt: skip
        self.sections: list[BloomIndex | TagSet] = []
        self.targets: dict[str, tuple[BloomIndex, TagSet | None]] = {}
        for kind in fields:
            b = BloomIndex(key, kind, capacity=capacity[kind], fpr=fpr,
                           canon_version=versions[kind], prf=prf)  # fmt: skip
            t = TagSet(key, kind, canon_version=versions[kind], prf=prf) if exact else None
            self.targets[kind] = (b, t)
            self.sections += [b] if t is None else [b, t]
        self.stats: dict[str, Stats] = {k: _new_stats() for k in fields}
        self.parts: set[int] = set()

    def add(self, pdf: Any, index: int, key: Key, fields: Fields) -> None:
        if index in self.parts:
            # Only a task run twice on the state it already changed could get here; adding the
            # rows again would count them twice.
            raise _core.PiMatchError(
                f"internal error: partition {index} reached its shard twice; nothing was returned"
            )
        for s in self.sections:
            if not s.has_key:  # the shard moved between workers: pickles carry no key
                s.attach_key(key)
        values = {kind: _values(pdf, col) for kind, col in fields.items()}  # check every column
        for kind, v in values.items():
            b, t = self.targets[kind]
            _absorb(self.stats[kind], _report_stats(b.add(v, tag_set=t)))
        self.parts.add(index)


def _extend(
    shard: _Shard | None,
    pdf: Any,
    index: int,
    key_path: str,
    fields: Fields,
    capacity: Mapping[str, int],
    fpr: float,
    exact: bool,
    versions: Mapping[str, int | None],
    prf: str,
) -> _Shard:
    """One link of a chain: partition `index` added to the chain's shard (made by the first
    link). The shard is updated in place — it is this chain's alone, and copying an index per
    partition would cost more than building it."""
    key = _load_key(key_path)
    if shard is None:
        shard = _Shard(key, fields, capacity, fpr, exact, versions, prf)
    shard.add(pdf, index, key, fields)
    return shard


def _seal(shard: _Shard) -> tuple[bytes, dict[str, Stats]]:
    """A chain's shard as artefact bytes (what travels to the merges) and its accounting."""
    return Artefact(shard.sections).to_bytes(), shard.stats


def _shard(
    pdf: Any,
    key_path: str,
    fields: Fields,
    capacity: Mapping[str, int],
    fpr: float,
    exact: bool,
    versions: Mapping[str, int | None],
    prf: str,
) -> tuple[bytes, dict[str, Stats]]:
    """One partition's artefact bytes and, per kind, how its values were accounted for."""
    return _seal(_extend(None, pdf, 0, key_path, fields, capacity, fpr, exact, versions, prf))


def _merge(key_id: str, *shards: tuple[bytes, dict[str, Stats]]) -> tuple[bytes, dict[str, Stats]]:
    """The union of shards (all of `key_id`), merged from their bytes in the Rust core (every
    shard checked, Bloom payloads OR-ed in one pass), and their accounting summed."""
    data = _core.merge_shards([d for d, _ in shards], key_id=key_id)
    stats: dict[str, Stats] = {}
    for _, s in shards:
        for kind, st in s.items():
            _absorb(stats.setdefault(kind, _new_stats()), st)
    return data, stats


def _tree(items: list[Any], key_id: str, split_every: int) -> Any:
    """A tree of merges over delayed shards, `split_every` at a time (as dask.bag.reduction)."""
    from dask import delayed

    if len(items) == 1:
        return delayed(_merge)(key_id, items[0])  # one shard: still checked
    level = items
    while len(level) > 1:
        level = [
            delayed(_merge)(key_id, *level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]


def _default_shards() -> int:
    """The threads of the cluster a distributed client is connected to, else this machine's
    cores (the local schedulers)."""
    try:
        from distributed import get_client

        return max(sum(get_client().nthreads().values()), 1)
    except (ImportError, ValueError):
        return os.cpu_count() or 1


def build(
    ddf: Any,
    key_path: str | os.PathLike[str],
    fields: Fields,
    *,
    fpr: float = 1e-6,
    capacity: int | Mapping[str, int] | None = None,
    exact: bool = False,
    split_every: int = 8,
    shards: int | None = None,
    canon_version: int | None = None,
    prf: str = "hmac-sha256",
    accounting: dict[str, Any] | None = None,
) -> Artefact:
    """The artefact of `ddf`'s identifier columns (`fields`: {kind: column}), built in shards
    in the Rust core and merged by a tree of unions (`split_every` at a time) — the sections a
    single `BloomIndex.add` / `TagSet.add` of every row would make. `capacity=None` counts each
    kind's valid values first (one cheap pass, no tagging) and sizes each index from that count.

    Every shard has the whole index's layout, so a shard per partition would cost an index per
    partition; instead the partitions are dealt into `shards` chains (default: the cluster's
    worker threads, at most one per partition), each adding its partitions one at a time to one
    shard. `shards=ddf.npartitions` gives one shard per partition. With `accounting={}` the dict
    receives, per kind, rows = valid + missing + rejected over the whole build."""
    from dask import compute, delayed

    key_path = os.fspath(key_path)
    if not fields:
        raise _core.PiMatchError("build needs at least one field: {kind: column}")
    if split_every < 2:
        raise _core.PiMatchError(f"split_every must be at least 2, got {split_every}")
    if shards is not None and shards < 1:
        raise _core.PiMatchError(f"shards must be at least 1, got {shards}")
    key_id = Key.load(key_path).id  # the client's own check; the key stays out of the graph
    versions = {k: version_of_generation(k, canon_version) for k in fields}
    parts = ddf.to_delayed()
    caps = capacities(
        fields,
        capacity,
        lambda: compute(*[delayed(_count)(p, dict(fields), versions) for p in parts]),  # fmt: skip
    )
    chains = max(min(shards or _default_shards(), len(parts)), 1)
    args = (key_path, dict(fields), caps, fpr, exact, versions, prf)
    sealed = []
    for c in range(chains):
        # contiguous runs of partitions, as even as the count allows
        lo, hi = c * len(parts) // chains, (c + 1) * len(parts) // chains
        state = None
        for i in range(lo, hi):
            state = delayed(_extend, pure=False)(state, parts[i], i, *args)
        sealed.append(delayed(_seal)(state))
    data, stats = _tree(sealed, key_id, split_every).compute()
    return _finish(data, stats, key_id, len(parts), caps, accounting)


def capacities(
    fields: Fields,
    capacity: int | Mapping[str, int] | None,
    count: Callable[[], Sequence[Mapping[str, int]]],
) -> dict[str, int]:
    """Each kind's index capacity: as given, or (None) the valid values `count()` finds per
    partition, summed."""
    if capacity is None:
        counts = count()
        return {k: max(sum(c[k] for c in counts), 1) for k in fields}
    if isinstance(capacity, Mapping):
        return {k: int(capacity[k]) for k in fields}
    return dict.fromkeys(fields, int(capacity))


def _finish(
    data: bytes,
    stats: Mapping[str, Stats],
    key_id: str,
    partitions: int,
    caps: Mapping[str, int],
    accounting: dict[str, Any] | None,
) -> Artefact:
    """The merged artefact, checked: the build's key, every partition's shard in it, and per
    kind rows = valid + missing + rejected, the same rows for every kind."""
    art = Artefact.from_bytes(data)
    if art.key_id != key_id:
        raise _core.KeyMismatchError(
            f"key mismatch: the merged artefact has key id {art.key_id}, the key {key_id}"
        )
    rows = {st["rows"] for st in stats.values()}
    for kind, st in stats.items():
        if (st["partitions"] != partitions or len(rows) != 1
                or st["rows"] != st["valid"] + st["missing"] + st["rejected"]):  # fmt: skip
            raise _core.PiMatchError(
                f"internal error: the {kind} accounting of the distributed build does not "
                f"balance ({st['partitions']} of {partitions} partitions merged); nothing was "
                "returned"
            )
    if accounting is not None:
        accounting.update({"rows": rows.pop(), "capacity": dict(caps), "sections": stats})
    return art


def _probe_part(pdf: Any, offset: int, artefact_path: str, key_path: str, fields: Fields) -> Any:
    import pandas as pd

    art = _open(artefact_path, os.stat(artefact_path).st_mtime, key_path)
    frames = []
    for kind, col in fields.items():
        hits = np.asarray(art.get(kind).contains(_values(pdf, col), reasons=True)[0])
        if hits.any():
            f = pdf.iloc[np.flatnonzero(hits)].copy()
            f["row"] = offset + np.flatnonzero(hits)
            f["kind"] = kind
            frames.append(f)
    if not frames:
        empty = pdf.iloc[:0].copy()
        empty["row"] = pd.Series(dtype="int64")
        empty["kind"] = pd.Series(dtype="object")
        return empty
    return pd.concat(frames)


@functools.lru_cache(maxsize=4)
def _open(path: str, mtime: float, key_path: str) -> Artefact:
    # memory-mapped once per worker process and file version, never sent through the graph
    return Artefact.open(path, key=_load_key(key_path), verify=False)


def probe(
    ddf: Any,
    artefact_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    fields: Fields,
) -> Any:
    """The rows of `ddf` whose `fields` ({kind: column}) are in the artefact at
    `artefact_path` (a Bloom index: with its false-positive rate; a tag set: exact), with
    their columns plus `row` (0-based position in `ddf`) and `kind`: a dask DataFrame. Each
    worker memory-maps the artefact once; neither it nor the key passes through the graph."""
    import dask.dataframe as dd
    import pandas as pd
    from dask import delayed

    artefact_path, key_path = os.fspath(artefact_path), os.fspath(key_path)
    art = Artefact.open(artefact_path, verify=False)  # the client checks kinds up front
    for kind in fields:
        art.get(kind)
    meta = ddf._meta.copy()
    meta["row"] = pd.Series(dtype="int64")
    meta["kind"] = pd.Series(dtype="object")
    # Each partition's offset is the sum of the lengths before it, computed in the same graph
    # as the probe: the data is read once.
    blocks = ddf.to_delayed()
    lengths = [delayed(len)(p) for p in blocks]
    offsets = [delayed(sum)(lengths[:i]) for i in range(len(blocks))]
    parts = [delayed(_probe_part)(p, off, artefact_path, key_path, dict(fields))
             for p, off in zip(blocks, offsets, strict=True)]  # fmt: skip
    return dd.from_delayed(parts, meta=meta, verify_meta=False)
