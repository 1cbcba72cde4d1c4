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

import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from . import _core
from ._core import BloomIndex, Key, TagSet
from .artefact import Artefact
from .build import raw_text, rejected_values, version_of_generation
from .outputs import check_outputs

__all__ = ["build", "build_files", "cluster", "probe", "read"]

Fields = Mapping[str, str]
#: Per kind: rows, valid, missing, rejected and rejected_by_reason (rows = the other three).
Stats = dict[str, Any]


_COUNTS = ("rows", "valid", "missing", "rejected", "rejected_by_reason")


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
    try:
        mtime = os.stat(key_path).st_mtime
    except OSError as e:
        import socket

        raise _core.PiMatchError(
            f"key file {key_path} cannot be read on {socket.gethostname()} ({e.strerror}): "
            "every worker loads the key from that path; put it on a file system all the "
            "workers share (mode 0600)"
        ) from None
    return _key(key_path, mtime)


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
        self.targets: dict[str, tuple[BloomIndex, TagSet | None]] = {}
        for kind in fields:
            b = BloomIndex(key, kind, capacity=capacity[kind], fpr=fpr,
                           canon_version=versions[kind], prf=prf)  # fmt: skip
            t = TagSet(key, kind, canon_version=versions[kind], prf=prf) if exact else None
            self.targets[kind] = (b, t)
        self.stats: dict[str, Stats] = {k: _new_stats() for k in fields}
        self.parts: set[int] = set()
        #: Records a reader could not read (rows of `read` with a `_reason`), per partition.
        self.unreadable: dict[int, int] = {}
        #: With `keep_rejects`: per partition, its rejects as the CLI's rejects file has them.
        self.rejects: dict[int, list[list[Any]]] | None = None
        #: The input files the rows came from (frames of `read`), which no output may be.
        self.files: set[str] = set()

    @property
    def sections(self) -> list[BloomIndex | TagSet]:
        """Per kind its index, then its tag set with `exact`: the artefact's order."""
        return [s for b, t in self.targets.values() for s in (b, t) if s is not None]

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
        rejects: list[list[Any]] = []
        if READ_FILE in pdf.columns:
            self.files.update(pdf[READ_FILE].dropna().unique().tolist())
        if READ_REASON in pdf.columns:  # a frame of `read`: its unreadable records are rows
            bad = pdf[READ_REASON].notna().to_numpy()
            if bad.any():
                gone = pdf[bad]
                self.unreadable[index] = int(gone[READ_RECORDS].sum())
                rejects += [[f, int(ln), "", r, raw_text(raw)] for f, ln, r, raw in zip(
                    gone[READ_FILE], gone[READ_LINE], gone[READ_REASON], gone[READ_RAW],
                    strict=True)]  # fmt: skip
                pdf = pdf[~bad]
        values = {kind: _values(pdf, col) for kind, col in fields.items()}  # check every column
        where = None
        for kind, v in values.items():
            b, t = self.targets[kind]
            rep = b.add(v, tag_set=t)
            _absorb(self.stats[kind], _report_stats(rep))
            if self.rejects is not None:
                codes = np.asarray(rep.codes, dtype=np.uint8)
                for i, reason, raw in rejected_values(v, codes):
                    if where is None:
                        where = _where(pdf, index)
                    rejects.append([where[0][i], int(where[1][i]), fields[kind], reason, raw])
        if self.rejects is not None:
            rejects.sort(key=lambda r: r[1])  # in line order, as a single pass finds them
            self.rejects[index] = rejects
        self.parts.add(index)


#: The columns `read` adds: where each row is, and for an unreadable record why and its text.
READ_FILE, READ_LINE, READ_REASON, READ_RAW, READ_RECORDS = (
    "_file", "_line", "_reason", "_raw", "_records")  # fmt: skip


def _where(pdf: Any, index: int) -> tuple[Any, Any]:
    """Each row's file and line: `read`'s columns, else the partition and the row in it."""
    if READ_FILE in pdf.columns and READ_LINE in pdf.columns:
        return pdf[READ_FILE].to_numpy(), pdf[READ_LINE].to_numpy()
    return np.full(len(pdf), f"partition {index}", object), np.arange(1, len(pdf) + 1)


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What every shard of one build is made with (the key is read from `key_path`)."""

    key_path: str
    fields: Fields
    capacity: Mapping[str, int]
    fpr: float = 1e-6
    exact: bool = False
    versions: Mapping[str, int | None] = dataclasses.field(default_factory=dict)
    prf: str = "hmac-sha256"
    keep_rejects: bool = False


def _extend(shard: _Shard | None, pdf: Any, index: int, spec: _Spec) -> _Shard:
    """One link of a chain: partition `index` added to the chain's shard (made by the first
    link). The shard is updated in place — it is this chain's alone, and copying an index per
    partition would cost more than building it."""
    key = _load_key(spec.key_path)
    if shard is None:
        versions = {k: spec.versions.get(k) for k in spec.fields}
        shard = _Shard(key, spec.fields, spec.capacity, spec.fpr, spec.exact, versions, spec.prf)
        if spec.keep_rejects:
            shard.rejects = {}
    shard.add(pdf, index, key, spec.fields)
    return shard


def _side(shard: _Shard) -> tuple[dict[int, int], dict[int, list[list[Any]]], set[str]]:
    """What a chain's shard has besides its sections: unreadable records, rejects, files."""
    return shard.unreadable, shard.rejects or {}, shard.files


def _seal(shard: _Shard) -> tuple[bytes, dict[str, Stats]]:
    """A chain's shard as artefact bytes (what travels to the merges) and its accounting."""
    return Artefact(shard.sections).to_bytes(), shard.stats


def _shard(pdf: Any, spec: _Spec) -> tuple[bytes, dict[str, Stats]]:
    """One partition's artefact bytes and, per kind, how its values were accounted for."""
    return _seal(_extend(None, pdf, 0, spec))


def _summed(shards: Sequence[tuple[bytes, Mapping[str, Stats]]]) -> dict[str, Stats]:
    """The shards' accounting, summed per kind."""
    stats: dict[str, Stats] = {}
    for _, s in shards:
        for kind, st in s.items():
            _absorb(stats.setdefault(kind, _new_stats()), st)
    return stats


def _merge(key_id: str, *shards: tuple[bytes, dict[str, Stats]]) -> tuple[bytes, dict[str, Stats]]:
    """The union of shards (all of `key_id`), merged from their bytes in the Rust core (every
    shard checked, Bloom payloads OR-ed in one pass), and their accounting summed."""
    return _core.merge_shards([d for d, _ in shards], key_id=key_id), _summed(shards)


def _tree(items: list[Any], key_id: str, split_every: int) -> list[Any]:
    """A tree of merges over delayed shards, `split_every` at a time (as dask.bag.reduction),
    down to at most `split_every` shards: the client merges those (`_top`), straight into the
    sections it returns — the top level's shards travel to the client instead of to a merge
    node and then the client, one hop and one copy fewer."""
    from dask import delayed

    level = items
    while len(level) > split_every:
        level = [
            delayed(_merge)(key_id, *level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level


def _top(
    key_id: str, shards: Sequence[tuple[bytes, dict[str, Stats]]]
) -> tuple[Artefact, dict[str, Stats]]:
    """The last merge, on the client: the shards' union as sections in memory, checked as
    every merge is, and their accounting summed."""
    kid, created, sections, auth = _core.merge_shard_parts([d for d, _ in shards], key_id=key_id)
    return Artefact(sections, kid, created, auth), _summed(shards)


def _client() -> Any:
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _chains(ddf: Any, parts: int, shards: int | None) -> list[list[int]]:
    """The partitions each chain adds, in order. By default a chain per worker thread: on a
    distributed cluster holding `ddf` in memory (persisted), each worker's chains take the
    partitions that worker holds (rows cross the network only to even the chains out);
    otherwise contiguous runs, as even as the count allows."""
    client = _client()
    if shards is None and client is not None:
        from distributed import futures_of

        # A persisted collection's futures are its partitions, keyed (name, index); the
        # collection's own keys may carry another name (dask-expr renames), so match by index.
        fs = [f for f in futures_of(ddf) if isinstance(f.key, tuple) and len(f.key) == 2]
        futures = {f.key[1]: f for f in fs}
        if len({f.key[0] for f in fs}) == 1 and sorted(futures) == list(range(parts)):
            nthreads = client.nthreads()
            held = client.who_has([futures[i] for i in range(parts)])
            where = {i: [w for w in held.get(futures[i].key, ()) if w in nthreads]
                     for i in range(parts)}  # fmt: skip
            slots = [w for w in sorted(nthreads) for _ in range(nthreads[w])][:parts]
            return _balance(slots, where, parts)
    n = max(min(shards or _thread_count(), parts), 1)
    return [list(range(c * parts // n, (c + 1) * parts // n)) for c in range(n)]


def _balance(slots: list[str], where: Mapping[int, Sequence[str]], parts: int) -> list[list[int]]:
    """Chains (one per slot, a worker thread) of as even a number of partitions as the count
    allows, each taking the partitions its worker holds first and then the ones left over."""
    quota = [parts // len(slots) + (c < parts % len(slots)) for c in range(len(slots))]
    chains: list[list[int]] = [[] for _ in slots]
    left = []
    for i in range(parts):
        mine = [c for c, w in enumerate(slots) if w in where[i] and len(chains[c]) < quota[c]]
        if mine:
            chains[min(mine, key=lambda c: len(chains[c]))].append(i)
        else:
            left.append(i)
    for i in left:
        chains[min(range(len(slots)), key=lambda c: len(chains[c]) - quota[c])].append(i)
    return [sorted(c) for c in chains if c]


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
    rejects: str | os.PathLike[str] | None = None,
    output_encoding: str = "utf-8-sig",
) -> Artefact:
    """The artefact of `ddf`'s identifier columns (`fields`: {kind: column}), built in shards
    in the Rust core and merged by a tree of unions (`split_every` at a time) — the sections a
    single `BloomIndex.add` / `TagSet.add` of every row would make. `capacity=None` counts each
    kind's valid values first (one cheap pass, no tagging) and sizes each index from that count.

    Every shard has the whole index's layout, so a shard per partition would cost an index per
    partition; instead the partitions are dealt into `shards` chains (default: a chain per
    worker thread of the cluster, taking the partitions that worker holds when `ddf` is
    persisted; at most one per partition), each adding its partitions one at a time to one
    shard. `shards=ddf.npartitions` gives one shard per partition. With `accounting={}` the dict
    receives, per kind, rows = valid + missing + rejected over the whole build, and the
    records: rows used + unreadable (rows of `read` a reader could not read, which are not
    values). With `rejects=PATH` every rejected value and unreadable record is written there
    once, at the end, as `pi-match build` writes its rejects file (file, line, column, reason,
    raw; it holds raw values: keep it with the case file)."""
    from dask import compute, delayed

    key_path = os.fspath(key_path)
    if not fields:
        raise _core.PiMatchError("build needs at least one field: {kind: column}")
    if split_every < 2:
        raise _core.PiMatchError(f"split_every must be at least 2, got {split_every}")
    if shards is not None and shards < 1:
        raise _core.PiMatchError(f"shards must be at least 1, got {shards}")
    key_id = Key.load(key_path).id  # the client's own check; the key stays out of the graph
    if rejects is not None:  # before any work: not the key, not a non-regular file
        check_outputs({"key file": [key_path]}, {"rejects file": rejects})
    versions = {k: version_of_generation(k, canon_version) for k in fields}
    parts = ddf.to_delayed()
    caps = capacities(
        fields,
        capacity,
        lambda: compute(*[delayed(_count)(p, dict(fields), versions) for p in parts]),  # fmt: skip
    )
    spec = _Spec(key_path, dict(fields), caps, fpr, exact, versions, prf, rejects is not None)
    sealed, sides = [], []
    for chain in _chains(ddf, len(parts), shards):
        state = None
        for i in chain:
            state = delayed(_extend, pure=False)(state, parts[i], i, spec)
        sealed.append(delayed(_seal)(state))
        sides.append(delayed(_side)(state))
    tops, side = compute(_tree(sealed, key_id, split_every), sides)
    art, stats = _top(key_id, tops)
    unreadable = {i: n for u, _, _ in side for i, n in u.items()}
    _finish(art, stats, key_id, len(parts), caps, accounting)
    if accounting is not None:
        gone = sum(unreadable.values())
        accounting.update({"records": accounting["rows"] + gone, "unreadable_rows": gone})
    if rejects is not None:
        # The files are known only now: the rejects file must not be one of them either.
        files = sorted({f for _, _, fs in side for f in fs})
        check_outputs({"input": files, "key file": [key_path]}, {"rejects file": rejects})
        per = {i: r for _, rj, _ in side for i, r in rj.items()}
        _write_rejects(os.fspath(rejects), (r for i in sorted(per) for r in per[i]),
                       output_encoding)  # fmt: skip
    return art


def _write_rejects(path: str, rows: Iterator[list[Any]], encoding: str) -> None:
    """The rejects file, written atomically with the permissions of raw values."""
    import csv

    from .build import csv_encoding
    from .outputs import RAW_VALUES_MODE, Staged, commit

    staged = Staged(path, mode=RAW_VALUES_MODE)
    try:
        with staged.open_text(csv_encoding(encoding)) as f:
            w = csv.writer(f)
            w.writerow(["file", "line", "column", "reason", "raw"])
            w.writerows(rows)
        commit([staged])
    finally:
        if not staged.done:
            staged.discard()


def read(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
         **options: Any) -> Any:  # fmt: skip
    """Input files as a dask DataFrame, one partition per file, each read on a worker by the
    CLI's own readers: the same formats (CSV/TSV, Excel, Parquet, JSON lines, SQL dumps),
    encodings (GB18030 and the rest, detected or `encoding=`) and strictness; `options` are
    `pi_match.io.ReadOptions` fields (encoding, delimiter, header, quote, sheet, format).
    Every column as the reader gives it, plus `_file` (the path as given) and `_line`; a record
    the reader cannot read is a row too, with `_reason`, `_raw` and `_records` (how many records
    it stands for) and its columns empty, so nothing is lost: `build` counts those rows as
    unreadable, never as values, and with `rejects=` writes them with the value rejects. Every
    file must have the columns of the first. The files must be at the same paths on every
    worker."""
    import dask.dataframe as dd
    import pandas as pd
    from dask import delayed

    from .io import ReadOptions, open_source

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    named = [(os.path.abspath(p), os.fspath(p)) for p in paths]
    if not named:
        raise _core.PiMatchError("read needs at least one input file")
    opts = ReadOptions(**options)
    columns = list(open_source(named[0][0], opts).columns)
    meta = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    meta[READ_FILE] = pd.Series(dtype="object")
    meta[READ_LINE] = pd.Series(dtype="int64")
    meta[READ_REASON] = pd.Series(dtype="object")
    meta[READ_RAW] = pd.Series(dtype="object")
    meta[READ_RECORDS] = pd.Series(dtype="int64")
    parts = [delayed(_read_file, pure=False)(p, shown, opts, columns) for p, shown in named]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def _read_file(path: str, shown: str, options: Any, columns: list[str]) -> Any:
    import pandas as pd

    from .io import open_source

    src = open_source(path, options, read_all=True)  # every batch is read below
    if list(src.columns) != columns:
        raise _core.PiMatchError(
            f"{shown}: its columns ({', '.join(src.columns)}) are not those of the first "
            f"input ({', '.join(columns)}); read files of one layout together"
        )
    frames = []
    for b in src.batches():
        n = len(b)
        f = pd.DataFrame({c: b.column(c).to_pandas(types_mapper=None) for c in columns})
        f[READ_FILE] = shown
        f[READ_LINE] = b.lines.astype("int64")
        f[READ_REASON] = None
        f[READ_RAW] = None
        f[READ_RECORDS] = np.ones(n, "int64")
        frames.append(f)
    if src.rejects:
        frames.append(pd.DataFrame({
            **{c: [None] * len(src.rejects) for c in columns},
            READ_FILE: [shown] * len(src.rejects),
            READ_LINE: [r.line for r in src.rejects],
            READ_REASON: [r.reason for r in src.rejects],
            READ_RAW: [r.raw for r in src.rejects],
            READ_RECORDS: [r.rows for r in src.rejects],
        }))  # fmt: skip
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
        for c, t in ((READ_FILE, "object"), (READ_LINE, "int64"), (READ_REASON, "object"),
                     (READ_RAW, "object"), (READ_RECORDS, "int64")):  # fmt: skip
            empty[c] = pd.Series(dtype=t)
        return empty
    return pd.concat(frames, ignore_index=True)


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
    art: Artefact,
    stats: Mapping[str, Stats],
    key_id: str,
    partitions: int,
    caps: Mapping[str, int],
    accounting: dict[str, Any] | None,
) -> Artefact:
    """The merged artefact, checked: the build's key, every partition's shard in it, and per
    kind rows = valid + missing + rejected, the same rows for every kind."""
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


# -- Input files on a cluster: the CLI's `pi-match build --workers N / --scheduler ADDRESS` --


def _build_group(
    paths: Sequence[tuple[str, str]],
    key_path: str,
    fields: Sequence[tuple[str, str]],
    capacity: int,
    fpr: float,
    exact: bool,
    options: Any,
    canon_version: int | None,
    prf: str,
    rows_as_text: bool = False,
) -> tuple[tuple[bytes, dict[str, Stats]], list[Any], list[dict[str, Any]]]:
    """One task: the input files `paths`, read in order by the CLI's own readers into the CLI's
    own `Builder` (the same strictness, encodings and Excel rules, held values decided per
    file), as one shard; with the files' rejects, in the order the CLI writes them, and facts.
    `paths` are (absolute path, the path as the user gave it): rejects and facts name the
    latter, as a single-process build does. A reject is a row (a list), or with `rows_as_text`
    a batch's rejected values as the rejects file's text and their count (a tuple)."""
    from .build import Builder, Progress, open_inputs

    shown = dict(paths)
    missing = [p for p, _ in paths if not os.path.exists(p)]
    if missing:
        import socket

        raise _core.PiMatchError(
            f"input {missing[0]} not found on {socket.gethostname()}: every worker reads the "
            "inputs at the paths the client gave; put them on a file system all the workers "
            "share"
        )
    sources = open_inputs([p for p, _ in paths], options)
    for src in sources:
        for _, col in fields:
            src.resolve(col)
        src.require([c for _, c in fields])
    rejects: list[Any] = []

    def reject(r: list[Any]) -> None:
        rejects.append([shown.get(r[0], r[0]), *r[1:]])

    def reject_rows(text: str, n: int) -> None:
        rejects.append((text, n))

    b = Builder(_load_key(key_path), fields, capacity=capacity, fpr=fpr, exact=exact,
                on_reject=reject, on_reject_rows=reject_rows if rows_as_text else None,
                names=shown, canon_version=canon_version, prf=prf)  # fmt: skip
    facts = b.read_all(sources, Progress(quiet=True))
    for f in facts:
        f["path"] = shown.get(f["path"], f["path"])
    sections = b.finish()
    stats = {k: {**b.stats[k].to_dict(), "partitions": len(paths)} for k, _ in fields}
    return (Artefact(sections).to_bytes(), stats), rejects, facts


def _groups(paths: Sequence[tuple[str, str]], n: int) -> list[list[tuple[str, str]]]:
    """`paths` in order, cut into at most `n` runs of about equal bytes (a run is one task and
    one shard; its rejects stay in the inputs' order)."""
    sizes = [max(os.stat(p).st_size, 1) for p, _ in paths]
    total, n = sum(sizes), max(min(n, len(paths)), 1)
    out: list[list[tuple[str, str]]] = [[]]
    done = 0
    for p, s in zip(paths, sizes, strict=True):
        if out[-1] and len(out) < n and done >= total * len(out) / n:
            out.append([])
        out[-1].append(p)
        done += s
    return out


def build_files(
    paths: Sequence[str],
    key_path: str | os.PathLike[str],
    fields: Sequence[tuple[str, str]],
    *,
    capacity: int,
    fpr: float = 1e-6,
    exact: bool = False,
    options: Any = None,
    canon_version: int | None = None,
    prf: str = "hmac-sha256",
    on_reject: Callable[[list[Any]], None] = lambda r: None,
    split_every: int = 8,
    shards: int | None = None,
    on_reject_rows: Callable[[str, int], None] | None = None,
) -> tuple[list[BloomIndex | TagSet], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """What `Builder.read_all` + `finish` give for `paths`, computed on the Dask cluster of
    the current client (or the local scheduler): the sections, each kind's counts (rows =
    valid + missing + rejected) and each input's facts, with every reject passed to
    `on_reject` in the order a single process finds them. The files and `key_path` must be
    readable at the same paths on every worker. The inputs are cut into `shards` runs (default:
    the cluster's worker threads), each read by one task into one shard. With
    `on_reject_rows`, the rejected values of a batch come to it instead, as the rejects file's
    rows already formatted (`Builder`'s), in the same order among the rows `on_reject` gets."""
    from dask import compute, delayed

    from .io import ReadOptions

    key_path = os.fspath(key_path)
    key_id = Key.load(key_path).id
    named = [(os.path.abspath(p), os.fspath(p)) for p in paths]
    groups = _groups(named, shards or _thread_count())
    tasks = [delayed(_build_group, pure=False)(g, key_path, list(fields), capacity, fpr, exact,
                                               options or ReadOptions(), canon_version, prf,
                                               on_reject_rows is not None)
             for g in groups]  # fmt: skip
    tops, sides = compute(_tree([t[0] for t in tasks], key_id, split_every),
                          [(t[1], t[2]) for t in tasks])  # fmt: skip
    art, stats = _top(key_id, tops)
    _finish(art, stats, key_id, len(paths), {k: capacity for k, _ in fields}, None)
    facts: list[dict[str, Any]] = []
    for rejects, f in sides:
        for r in rejects:
            if isinstance(r, tuple):
                assert on_reject_rows is not None
                on_reject_rows(*r)
            else:
                on_reject(r)
        facts += f
    counts = {k: {"kind": k, "column": c, **{f: stats[k][f] for f in _COUNTS}} for k, c in fields}
    return art.sections, counts, facts


def _thread_count() -> int:
    client = _client()
    return max(sum(client.nthreads().values()), 1) if client else (os.cpu_count() or 1)


@contextlib.contextmanager
def cluster(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client for the CLI: on the scheduler at `scheduler`, or on a new local cluster of
    `workers` processes of one thread each (closed on exit)."""
    try:
        import distributed
    except ImportError as e:
        raise _core.PiMatchError(
            "--workers and --scheduler need Dask: pip install 'pi_match[dask]'"
        ) from e
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as e:
            raise _core.PiMatchError(f"--scheduler {scheduler}: cannot connect ({e})") from e
        with client:
            yield client
        return
    with distributed.LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc:  # fmt: skip
        with distributed.Client(lc) as client:
            yield client
