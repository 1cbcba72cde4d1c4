"""Deciding a file's encoding without guessing: a byte-order mark first, then strict UTF-8,
then strict GB18030; if neither decodes the whole file, stop and ask for --encoding. Never
`errors="ignore"` or `"replace"`: a byte that does not decode is a fact to report."""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass

from .. import _core
from .base import InputError

BOMS = [
    (codecs.BOM_UTF8, "utf-8"),
    (b"\x84\x31\x95\x33", "gb18030"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]


@dataclass
class FileFacts:
    """What one pass over the raw bytes tells: for the manifest and for sizing."""

    encoding: str
    bom: int
    sha256: str
    size: int
    newlines: int


def _incomplete_tail(chunk: bytes) -> int:
    """Bytes at the end of `chunk` that start a UTF-8 sequence the next chunk completes."""
    for back in range(1, min(4, len(chunk)) + 1):
        b = chunk[-back]
        if b & 0xC0 == 0x80:
            continue  # continuation byte: keep looking for the lead
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return back if need > back else 0
    return 0


def line_of(path: str, offset: int) -> int:
    with open(path, "rb") as f:
        return f.read(offset).count(b"\n") + 1


def scan(
    path: str | os.PathLike[str], forced: str | None = None, chunk: int = 16 << 20
) -> FileFacts:
    """One pass: SHA-256, size, newline count and the encoding (checked strictly)."""
    path = os.fspath(path)
    h = hashlib.sha256()
    size = newlines = 0
    utf8_bad_at: int | None = None
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        bom_enc, bom = next(((e, len(b)) for b, e in BOMS if head.startswith(b)), (None, 0))
        carry = b""
        while block := f.read(chunk):
            h.update(block)
            newlines += block.count(b"\n")
            if forced is None and bom_enc is None and utf8_bad_at is None:
                data = carry + block
                tail = _incomplete_tail(data)
                body = data[: len(data) - tail] if tail else data
                bad = _core.utf8_error_offset(body)
                if bad is not None:
                    utf8_bad_at = size - len(carry) + bad
                carry = data[len(data) - tail :] if tail else b""
            size += len(block)
        if forced is None and bom_enc is None and utf8_bad_at is None and carry:
            utf8_bad_at = size - len(carry)  # the file ends inside a character
    if forced:
        try:
            codecs.lookup(forced)
        except LookupError:
            raise InputError(f"{path}: unknown encoding {forced!r}") from None
        enc = forced
    elif bom_enc:
        enc = bom_enc
    elif utf8_bad_at is None:
        enc = "utf-8"
    else:
        enc = "gb18030"
        try:
            check_decodes(path, "gb18030", 0, chunk)
        except InputError as e:
            raise InputError(
                f"{path}: not UTF-8 (byte {utf8_bad_at} on line {line_of(path, utf8_bad_at)} "
                f"does not decode) and not GB18030 ({e.args[0].split(': ', 1)[1]}); "
                "pass --encoding with the file's real encoding"
            ) from None
    return FileFacts(enc, bom, h.hexdigest(), size, newlines)


def check_decodes(path: str, encoding: str, bom: int, chunk: int = 16 << 20) -> None:
    """Decode the whole file strictly, raising InputError with the line of the first bad byte."""
    dec = codecs.getincrementaldecoder(encoding)("strict")
    done = 0
    with open(path, "rb") as f:
        f.seek(bom)
        while True:
            block = f.read(chunk)
            try:
                dec.decode(block, final=not block)
            except UnicodeDecodeError as e:
                at = bom + done + max(e.start, 0)
                raise InputError(
                    f"{path}: byte {at} on line {line_of(path, at)} is not valid {encoding}"
                ) from None
            if not block:
                return
            done += len(block)
