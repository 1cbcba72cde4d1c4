"""Artefact files: one or more sections (a BloomIndex or TagSet per identifier kind)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import _core
from ._core import BloomIndex, Key, TagSet
from .outputs import require_regular

Section = BloomIndex | TagSet


@dataclass
class Artefact:
    """The sections of an artefact file, all made with one key.

    >>> key = Key.from_bytes(bytes(range(32)))
    >>> ids = BloomIndex(key, "cn_ric", capacity=100)
    >>> phones = TagSet(key, "cn_mobile")
    >>> art = Artefact([ids, phones])
    >>> [type(s).__name__ for s in Artefact.from_bytes(art.to_bytes()).sections]
    ['BloomIndex', 'TagSet']
    """

    sections: list[Section]
    key_id: str = field(default="")
    created: int = 0
    authenticated: bool = False
    #: What `union` had to say: folded indices and the rate reached, exact sets dropped.
    notes: list[str] = field(default_factory=list, compare=False)
    #: Kinds whose tag sets `union` dropped because not every input had one.
    dropped_exact: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if not self.sections:
            raise _core.PiMatchError("an artefact needs at least one section")
        if not self.key_id:
            self.key_id = self.sections[0].key_id
        if not self.created:
            self.created = max(s.created for s in self.sections)

    def __iter__(self) -> Iterator[Section]:
        return iter(self.sections)

    def __len__(self) -> int:
        return len(self.sections)

    def get(self, kind: str, *, exact: bool | None = None) -> Section:
        """The section for `kind`: a TagSet when `exact` is True, a BloomIndex when False,
        whichever exists (the TagSet first) when None."""
        found = [
            s
            for s in self.sections
            if s.kind == kind and (exact is None or isinstance(s, TagSet) == exact)
        ]
        if not found:
            have = ", ".join(f"{s.kind} ({type(s).__name__})" for s in self.sections)
            raise KeyError(f"no {kind} section in this artefact; it has {have}")
        found.sort(key=lambda s: not isinstance(s, TagSet))
        return found[0]

    @property
    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.sections})

    def by_kind(self) -> dict[str, dict[str, Section]]:
        """{kind: {"bloom": BloomIndex, "tagset": TagSet}} for the sections present."""
        out: dict[str, dict[str, Section]] = {}
        for s in self.sections:
            out.setdefault(s.kind, {})["tagset" if isinstance(s, TagSet) else "bloom"] = s
        return out

    def describe(self) -> dict[str, Any]:
        """Header facts and, per section, its type, kind, canonicaliser version, estimated
        count and layout: what `pi-match inspect --json` prints (no key needed). Standard JSON:
        a saturated index's estimate is reported with `saturated: true`."""
        return {
            "format_version": _core.FORMAT_VERSION,
            "authenticated": self.authenticated,
            "key_id": self.key_id,
            "created": created_text(self.created),
            "sections": [section_facts(s) for s in self.sections],
        }

    def union(self, *others: Artefact) -> Artefact:
        """The union of this artefact and `others` (one key): per kind the Bloom indices OR-ed
        (folded to the smallest size) and the tag sets merged. A tag set stays only if every
        input has one for its kind — a partial union is not passed off as exact — and a kind's
        Bloom index must be in every input, or the union would undercount. A union that would
        saturate an index is refused; folding that raised the false-positive rate is said in
        `notes`."""
        arts = [self, *others]
        for a in arts[1:]:
            if a.key_id != self.key_id:
                raise _core.KeyMismatchError(
                    f"key mismatch: artefacts of key ids {self.key_id} and {a.key_id} cannot be "
                    "combined (different joint operations)"
                )
        merged: dict[tuple[str, str], Section] = {}
        count: dict[tuple[str, str], int] = {}
        ours: set[tuple[str, str]] = set()  # merged objects made here, safe to update in place
        for art in arts:
            for s in art:
                k = (s.kind, type(s).__name__)
                count[k] = count.get(k, 0) + 1
                m = merged.get(k)
                if m is None:
                    merged[k] = s
                elif k in ours and isinstance(m, BloomIndex) and isinstance(s, BloomIndex):
                    m |= s  # no new memory: the N-way union allocates one index, not N − 1
                else:
                    merged[k] = m | s  # type: ignore[operator]
                    ours.add(k)
        dropped = [k for k in merged if k[1] == "TagSet" and count[k] < len(arts)]
        notes = [
            f"not every input has an exact {k[0]} tag set; the union keeps only the {k[0]} "
            "Bloom index"
            for k in dropped
        ]
        keep = [k for k in merged if k not in dropped]
        missing = [k for k in keep if k[1] == "BloomIndex" and count[k] < len(arts)]
        if missing:
            raise _core.IncompatibleError(
                f"incompatible artefacts: not every input has a {missing[0][0]} index; a union "
                "would undercount. Merge artefacts that hold the same kinds."
            )
        for k in keep:
            b = merged[k]
            if not isinstance(b, BloomIndex):
                continue
            inputs = [s for a in arts for s in a if isinstance(s, BloomIndex) and s.kind == k[0]]
            after, before = b.expected_fpr(), max(s.expected_fpr() for s in inputs)
            if not after == after or after >= SATURATED_FPR:
                raise _core.IncompatibleError(
                    f"the merged {k[0]} index would be saturated ({b.num_blocks:,} blocks for "
                    f"about {b.items_added:,} values; nearly every lookup would match). Rebuild "
                    "the smaller inputs with a larger --capacity"
                )
            sizes = sorted({s.num_blocks for s in inputs})
            if len(sizes) > 1:
                notes.append(
                    f"the {k[0]} indices were folded to {b.num_blocks:,} blocks (the smallest "
                    f"input; the others had {', '.join(f'{n:,}' for n in sizes[1:])}): the "
                    f"false-positive rate is now {after:.1e} (inputs: up to {before:.1e})"
                )
            elif after > FPR_WARN_FACTOR * max(before, 1e-12):
                notes.append(
                    f"merging into {b.num_blocks:,} blocks raised the {k[0]} false-positive "
                    f"rate from {before:.1e} to {after:.1e}"
                )
        out = Artefact([merged[k] for k in keep])
        out.notes, out.dropped_exact = notes, [k[0] for k in dropped]
        return out

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        authenticate_with: Key | None = None,
        plain_tag_sets: bool = False,
    ) -> str:
        """Write the file (atomically); with `authenticate_with=key` it carries a MAC over all
        its bytes, so a key holder can check it was made by a key holder and not altered
        (`verify`). Returns the file's SHA-256 (hex), computed as it was written.

        Tag sets are stored compressed (Elias–Fano, docs/FORMAT.md §5 type 6, ≈ 64 − log2 n
        + 2 bits a tag) wherever that is shorter than 8 bytes a tag; `plain_tag_sets=True`
        writes them plain, for a recipient whose pi_match predates the compressed form."""
        return _core.save_artefact(
            os.fspath(path),
            self.sections,
            authenticate_with=authenticate_with,
            plain_tag_sets=plain_tag_sets,
        )

    def to_bytes(
        self, *, authenticate_with: Key | None = None, plain_tag_sets: bool = False
    ) -> bytes:
        """The file's bytes (see `save`)."""
        return _core.artefact_to_bytes(
            self.sections, authenticate_with=authenticate_with, plain_tag_sets=plain_tag_sets
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, key: Key | None = None) -> Artefact:
        key_id, created, sections, auth = _core.artefact_from_bytes(data, key=key)
        return cls(sections, key_id, created, auth)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, key: Key | None = None, verify: bool = True
    ) -> Artefact:
        key_id, created, sections, auth = _core.load_artefact(
            os.fspath(path), key=key, verify=verify
        )
        return cls(sections, key_id, created, auth)


#: A Bloom index whose expected false-positive rate passes this is saturated: nearly every
#: lookup would match. Builds and unions refuse to write one.
SATURATED_FPR = 0.5
#: Above this many times the rate designed for, builds and unions warn with the rate reached.
FPR_WARN_FACTOR = 10.0


def created_text(ts: int) -> str:
    """A header's timestamp as UTC text; a forged one that no calendar holds is said so."""
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"invalid timestamp {ts}"


def section_facts(s: Section) -> dict[str, Any]:
    """What a section says of itself (type, kind, version, estimate, layout)."""
    e = s.estimate_count()
    d: dict[str, Any] = {
        "type": "bloom" if isinstance(s, BloomIndex) else "tagset",
        "kind": s.kind,
        "canon_version": s.canon_version,
        "prf": s.prf,
        "estimate": e.to_dict(),
    }
    if isinstance(s, BloomIndex):
        fpr = s.expected_fpr()
        d.update(num_blocks=s.num_blocks, blocks_per_key=s.blocks_per_key, size_bytes=s.size_bytes,
                 items_added=s.items_added, expected_fpr=fpr,
                 saturated=not fpr == fpr or fpr >= SATURATED_FPR)  # fmt: skip
    else:
        d.update(tags=len(s), size_bytes=8 * len(s))
    return d


def load(
    path: str | os.PathLike[str], *, key: Key | None = None, verify: bool = True
) -> Section | Artefact:
    """Open an artefact file. One section gives that BloomIndex or TagSet; several give an
    `Artefact`. Large files are memory-mapped. Without `key` the result can be counted,
    merged and compared; with it, also probed and extended (a key with another id raises
    `KeyMismatchError`). Damaged or foreign files raise `FormatError`. `verify=False` skips
    the payload checksums (every structural check still runs): a large memory-mapped index
    then opens in milliseconds and is read only where it is probed — for trusted local files."""
    art = Artefact.open(path, key=key, verify=verify)
    return art.sections[0] if len(art.sections) == 1 else art


def verify(artefact: str | os.PathLike[str] | bytes, key: Key) -> str:
    """Check an artefact's MAC with the key: "valid", "invalid" (altered, or made without the
    key) or "not_authenticated" (saved without `authenticate_with`). Damaged files raise
    `FormatError`; a key with another id raises `KeyMismatchError`.

    >>> key = Key.from_bytes(bytes(range(32)))
    >>> ids = BloomIndex(key, "cn_ric", capacity=10)
    >>> verify(Artefact([ids]).to_bytes(authenticate_with=key), key)
    'valid'
    >>> verify(Artefact([ids]).to_bytes(), key)
    'not_authenticated'
    """
    if isinstance(artefact, bytes | bytearray):
        return _core.verify_artefact(bytes(artefact), key)
    require_regular(artefact, "artefact")  # a FIFO would block the open for ever
    with open(artefact, "rb") as f:
        data = f.read()
    try:
        return _core.verify_artefact(data, key)
    except _core.FormatError as e:
        raise _core.FormatError(f"{os.fspath(artefact)}: {e}") from None
