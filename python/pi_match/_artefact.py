"""Artefact files: one or more sections (a BloomIndex or TagSet per identifier kind)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

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

    def save(self, path: str | os.PathLike[str], *, authenticate_with: Key | None = None) -> None:
        """Write the file; with `authenticate_with=key` it carries a MAC over all its bytes, so
        a key holder can check it was made by a key holder and not altered (`verify`)."""
        _core.save_artefact(os.fspath(path), self.sections, authenticate_with=authenticate_with)

    def to_bytes(self, *, authenticate_with: Key | None = None) -> bytes:
        return _core.artefact_to_bytes(self.sections, authenticate_with=authenticate_with)

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
