"""Deciding a file's encoding without guessing: a byte-order mark first, then strict UTF-8,
then strict GB18030; if neither decodes the whole file, stop and ask for --encoding. Never
`errors="ignore"` or `"replace"`: a byte that does not decode is a fact to report.

A file that is not UTF-8 throughout but has lines that clearly are (Chinese text in UTF-8
byte patterns) mixes encodings: decoding it all as GB18030 would turn those lines into
mojibake without an error, so it stops and names lines of both kinds. UTF-16 without a
byte-order mark is recognised by its NUL bytes and named, not read as GB18030. An explicit
--encoding is checked strictly too, and must be a text encoding (not `rot13` or `base64`)."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .. import _core, _prescan
from .base import InputError

BOMS = [
    (codecs.BOM_UTF8, "utf-8"),
    (b"\x84\x31\x95\x33", "gb18030"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]


# Encodings an explicit --encoding may name for a file that starts with each mark.
BOM_FAMILY = {
    "utf-8": {"utf-8"},
    "gb18030": {"gb18030"},
    "utf-16-le": {"utf-16", "utf-16-le"},
    "utf-16-be": {"utf-16", "utf-16-be"},
}


@dataclass
class FileFacts:
    """What one pass over the raw bytes tells: for the manifest and for sizing."""

    encoding: str
    bom: int
    #: None when the scan left the hashing to the data pass (`scan(read_all=True)`): the
    #: reader hashes the bytes it reads, and sets it once it has read them all.
    sha256: str | None
    size: int
    newlines: int
    #: The file holds a 0x80 byte (see `StrictDecoder`).
    x80: bool = True
    #: Set when the scan found the file not UTF-8 and left the GB18030 check to the data pass
    #: (`scan(read_all=True)`): the first byte that is not UTF-8. The reader decodes every
    #: byte strictly anyway, and with it says what the scan would have said.
    utf8_bad_at: int | None = None

    @property
    def decodes_checked(self) -> bool:
        """The scan checked that the whole file decodes (else the reading does)."""
        return self.utf8_bad_at is None


class Hashing:
    """SHA-256 of a file's bytes fed in order, hashed on a thread beside the feeder (hashlib
    releases the GIL on large buffers): a pass over the bytes costs the slower of the hashing
    and the feeder's own work, not both. `wait()` before the next buffer is read keeps no more
    than one buffer alive for the hashing. `inline`: hashed as fed, on the feeder's thread
    (a reader reading ahead, whose thread has room for it)."""

    def __init__(self, inline: bool = False) -> None:
        self.h = hashlib.sha256()
        self.pool = None if inline else ThreadPoolExecutor(1, thread_name_prefix="pi_match sha256")
        self.pending: Future[None] | None = None

    def update(self, data: bytes | memoryview) -> None:
        if self.pool is None:
            self.h.update(data)
            return
        self.wait()  # the buffers are hashed in order
        self.pending = self.pool.submit(self.h.update, data)

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None

    def hexdigest(self) -> str:
        self.wait()
        return self.h.hexdigest()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class BadByte(Exception):
    """A byte that does not decode, at `offset` from the first byte decoded."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


class StrictDecoder:
    """Bytes of `encoding` to UTF-8, strictly, a block at a time (a character split between
    blocks is carried over). GB18030 is decoded in the Rust core (encoding_rs, the GB18030-2022
    mapping, the GIL released) — unless the file holds a 0x80 byte anywhere: encoding_rs reads a
    lone 0x80 as € (as browsers do) where GB18030 has no such character, so such a file (rare:
    0x80 is otherwise only the second byte of some GBK characters) takes Python's codec, which
    refuses it. Every other encoding takes Python's codec."""

    def __init__(self, encoding: str, x80: bool = True):
        self.rust = codecs.lookup(encoding).name == "gb18030" and not x80
        self._r = _core.Gb18030Decoder() if self.rust else None
        self._p = None if self.rust else codecs.getincrementaldecoder(encoding)("strict")
        self.done = 0

    def decode(self, block: bytes, final: bool, keep: bool = True, end: int | None = None) -> bytes:
        """The UTF-8 of `block` (`final`: nothing follows), or of `block[:end]`; BadByte if a
        byte does not decode. `keep=False` only checks (b"" back)."""
        if end is not None and (self._r is None or not keep):
            block, end = block[:end], None  # (only Rust's decode takes `end` without a copy)
        pending = 0
        try:
            if self._r is not None and keep:
                out = self._r.decode(block, final, end)
            elif self._r is not None:
                self._r.check(block, final)
                out = b""
            else:
                assert self._p is not None
                # Python's codec counts from the bytes it carried over from the last block.
                pending = len(self._p.getstate()[0])
                text = self._p.decode(block, final=final)
                out = text.encode("utf-8") if keep else b""
        except UnicodeDecodeError as e:
            # Rust counts from the first block.
            at = e.start if self._r is not None else self.done - pending + max(e.start, 0)
            raise BadByte(at) from None
        self.done += len(block) if end is None else end
        return out

    def decode_parts(
        self, block: bytes, final: bool, end: int | None = None, *, parallel: bool = True
    ) -> list[bytes]:
        """`decode`, as the UTF-8 of whole lines in one or two parts: a large GB18030 block is
        cut after a line feed near its middle and its two parts decoded on two threads at once
        (`parallel=False`: one after the other on this thread), the same text and the same
        errors as `decode`."""
        if self._r is None:
            parts: tuple[bytes, ...] = (self.decode(block, final, end=end),)
        else:
            try:
                parts = self._r.decode_halves(block, final, end, parallel=parallel)
            except UnicodeDecodeError as e:
                raise BadByte(e.start) from None  # Rust counts from the first block
            self.done += len(block) if end is None else end
        return [p for p in parts if p]  # no empty part (b"" ends a reader's chunks)


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
    """The 1-based line holding byte `offset` (`\n`, `\r\n` and a lone `\r` end lines)."""
    with open(path, "rb") as f:
        return int(_core.line_breaks(f.read(offset))[0]) + 1


def text_encoding(name: str, path: str) -> str:
    """The codec's canonical name, if `name` is a text encoding Python knows."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InputError(
            f"{path}: unknown encoding {name!r}; use e.g. utf-8, gb18030, utf-16-le, big5"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise InputError(f"{path}: {name!r} is not a text encoding; use e.g. utf-8 or gb18030")
    return info.name


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' when the sample's NUL bytes sit at odd / even offsets."""
    if len(head) < 8:
        return None
    even = head[0::2].count(0) / (len(head) // 2)
    odd = head[1::2].count(0) / (len(head) // 2)
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


#: A line break as every reader counts them: `\r\n`, a lone `\r` or `\n`.
LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def whole_lines_end(data: bytes) -> int:
    """Where the whole lines of `data` end: after its last line break, a `\r` at the very end
    not counted (it may be half of a `\r\n` the next block completes). 0 if none ends."""
    return max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1


class _Mixed:
    """The mixed-encoding tally of a file's lines (see the module text), fed the file's blocks
    in order; `check` stops on a file with lines of both kinds."""

    def __init__(self) -> None:
        self.tally: tuple[int, int, list[int], list[int], int] = (0, 0, [], [], 0)
        self.line = 1
        #: The line begun in earlier blocks, as its pieces (joined once, when it ends).
        self.carry: list[bytes] = []

    def _count(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        seen = self.tally[4]
        self.tally = _core.encoding_mix(data, self.line, self.tally, start, end)
        self.line += self.tally[4] - seen

    def feed(self, block: bytes) -> None:
        """The next block of the file; b"" at its end."""
        if not block:
            if self.carry:
                self._count(b"".join(self.carry))
            self.carry = []
            return
        cut = whole_lines_end(block)
        m = LINE_BREAK.search(block, 0, cut) if cut else None
        if m is None:
            self.carry.append(block)  # no line ends in this block
            return
        # The line begun in the blocks before ends at this block's first break: counted
        # joined with that line alone, then the rest of the block in place (no copy of it).
        self._count(b"".join([*self.carry, block[: m.end()]]))
        self._count(block, m.end(), cut)
        self.carry = [block[cut:]] if cut < len(block) else []

    def mixed(self) -> bool:
        """Lines of both kinds were seen."""
        return bool(self.tally[0] and self.tally[1])

    def check(self, path: str) -> None:
        utf8, other, first_utf8, first_other, _ = self.tally
        if utf8 and other:
            show = ", ".join
            raise InputError(
                f"{path}: mixed encodings: {utf8:,} lines are UTF-8 (lines "
                f"{show(map(str, first_utf8))}…) but {other:,} are not (lines "
                f"{show(map(str, first_other))}…, GB18030 or another); decoding it as one "
                "would garble the others. Convert the file to one encoding, or pass --encoding "
                "to take responsibility for one"
            )


def _check_mixed(path: str, start: int, chunk: int) -> None:
    """Stop on a file whose lines are partly UTF-8 and partly not (see the module text)."""
    mixed = _Mixed()
    with open(path, "rb") as f:
        f.seek(start)
        while block := f.read(chunk):
            mixed.feed(block)
    mixed.feed(b"")
    mixed.check(path)


class _Gb18030Check:
    """Whether a file decodes as GB18030 (by the Rust decoder that will read it) and how its
    lines mix encodings, fed its blocks in order: what a file found not UTF-8 needs, in the
    scan's own pass rather than two more. `decodes=False` tallies the lines only, for a caller
    whose data pass decodes every byte (`scan(read_all=True)`)."""

    def __init__(self, decodes: bool = True) -> None:
        #: None when the check is left to the data pass (only the lines are tallied).
        self.decoder = StrictDecoder("gb18030", x80=False) if decodes else None
        self.bad_at: int | None = None
        self.mixed = _Mixed()

    def feed(self, block: bytes) -> None:
        """The next block; b"" at the end of the file."""
        if self.decoder is not None and self.bad_at is None:
            try:
                self.decoder.decode(block, final=not block, keep=False)
            except BadByte as e:
                self.bad_at = e.offset
        self.mixed.feed(block)


def _not_gb18030(path: str, utf8_bad_at: int, gb_bad_at: int) -> InputError:
    return InputError(
        f"{path}: not UTF-8 (byte {utf8_bad_at} on line {line_of(path, utf8_bad_at)} does not "
        f"decode) and not GB18030 (byte {gb_bad_at} on line {line_of(path, gb_bad_at)} is not "
        "valid gb18030); pass --encoding with the file's real encoding"
    )


def scan(
    path: str | os.PathLike[str],
    forced: str | None = None,
    chunk: int = 16 << 20,
    *,
    read_all: bool = False,
) -> FileFacts:
    """One pass: SHA-256, size, line count and the encoding (checked strictly).

    `read_all`: the caller will decode every byte strictly in a data pass of its own (as a
    build does), so a file found not UTF-8 in its first block is not also decoded as GB18030
    here — the data pass is that check, and its reader raises the error this would have
    raised (`FileFacts.decodes_checked`). Mixed lines are still told here, and a file that
    both mixes lines and does not decode gets the same error either way. The SHA-256 is the
    data pass's too: of the bytes it reads, `FileFacts.sha256` None until it has read them
    all."""
    path = os.fspath(path)
    size = newlines = 0
    after_cr = x80 = False
    utf8_bad_at: int | None = None
    forced_name = text_encoding(forced, path) if forced else None
    check_utf8 = forced_name is None or forced_name == "utf-8"
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(0)
        bom_enc, bom = next(((e, len(b)) for b, e in BOMS if head.startswith(b)), (None, 0))
        if forced_name and bom_enc and forced_name not in BOM_FAMILY[bom_enc]:
            raise InputError(
                f"{path}: starts with a {bom_enc} byte-order mark, but --encoding {forced} "
                "was given; drop --encoding or give the file's real encoding"
            )
        if bom_enc is None and forced_name is None and (u16 := _utf16_without_bom(head)):
            raise InputError(
                f"{path}: looks like {u16.upper()} without a byte-order mark (NUL bytes "
                f"between the characters); pass --encoding {u16}"
            )
        carry = b""
        # Left to detection, a file whose first block is not UTF-8 is checked for mixed lines
        # (and, unless `read_all` leaves it to the reading, as GB18030) in this pass; one found
        # not UTF-8 later on (rare) takes the two passes of its own below.
        gb: _Gb18030Check | None = None
        detect = bom_enc is None and forced_name is None
        # SHA-256 runs on a second thread while the Rust checks below run on this one — or,
        # with `read_all`, in the data pass, over the very bytes it reads (`FileFacts.sha256`).
        h = None if read_all else Hashing()
        utf8_here = check_utf8 and bom_enc in (None, "utf-8")
        if h is None:
            # Nothing to hash here: the facts come from one Rust pass (a prescan's, if the
            # CLI began one for this very file: it checked UTF-8 as this scan would), which
            # also tallies the lines of a file left to detection whose first block is not
            # UTF-8 (the GB18030 check is the reading's).
            facts = _prescan.take(path, os.fstat(f.fileno()), chunk)
            if facts is None or not utf8_here:
                try:
                    facts = _prescan.scan_fd(f.fileno(), chunk, utf8_here, detect)
                except OSError as e:
                    raise InputError(
                        f"{path}: could not be read ({e.strerror or e}); check the medium it is "
                        "on, or copy the file to a sound disk and read the copy"
                    ) from None
            size, newlines, x80, utf8_bad_at, tally = facts
            if detect and tally is not None:
                gb = _Gb18030Check(decodes=False)
                gb.mixed.tally = tally
        try:
            # (the block loop of a scan that hashes)
            while h is not None and (block := f.read(chunk)):
                h.update(block)
                x80 = x80 or b"\x80" in block
                n, after_cr = _core.line_breaks(block, after_cr)
                newlines += n
                if utf8_here and utf8_bad_at is None:
                    data = carry + block if carry else block
                    # utf8_error_offset takes a sequence cut off at the end as valid; those
                    # bytes are carried to the next block and checked there.
                    bad = _core.utf8_error_offset(data)
                    if bad is not None:
                        utf8_bad_at = size - len(carry) + bad
                    tail = _incomplete_tail(data)
                    carry = data[len(data) - tail :] if tail else b""
                if detect and size == 0 and utf8_bad_at is not None:
                    gb = _Gb18030Check()
                if gb is not None:
                    gb.feed(block)
                size += len(block)
            sha256 = h.hexdigest() if h is not None else None
            if gb is not None:
                gb.feed(b"")
        finally:
            if h is not None:
                h.close()
        if utf8_here and utf8_bad_at is None and carry:
            utf8_bad_at = size - len(carry)  # the file ends inside a character
    if forced_name and bom_enc:
        enc = bom_enc  # the mark says which byte order; the codec must not guess
        if bom_enc != "utf-8":
            check_decodes(path, bom_enc, bom, chunk, x80)
    elif forced_name:
        if forced_name == "utf-8" and utf8_bad_at is not None:
            raise InputError(
                f"{path}: byte {utf8_bad_at} on line {line_of(path, utf8_bad_at)} is not valid "
                "UTF-8 (--encoding utf-8 was given); pass the file's real encoding"
            )
        if forced_name != "utf-8":
            check_decodes(path, forced_name, bom, chunk, x80)
        enc = forced_name
    elif bom_enc:
        enc = bom_enc
        if bom_enc == "utf-8" and utf8_bad_at is not None:
            raise InputError(
                f"{path}: has a UTF-8 byte-order mark, but byte {utf8_bad_at} on line "
                f"{line_of(path, utf8_bad_at)} is not valid UTF-8; pass --encoding"
            )
        if bom_enc != "utf-8":
            check_decodes(path, bom_enc, bom, chunk, x80)
    elif utf8_bad_at is None:
        enc = "utf-8"
    else:
        enc = "gb18030"
        # A 0x80 anywhere makes the reader decode with Python's codec (see StrictDecoder), so
        # that codec must be the one that says the file decodes.
        if gb is not None and not x80:
            if gb.bad_at is None and gb.decoder is None and gb.mixed.mixed():
                # Left to the data pass, but the error of a file that does not decode comes
                # before that of one that mixes lines: decode it now (an error path only).
                gb.bad_at = first_bad_byte(path, "gb18030", 0, chunk, x80)
            if gb.bad_at is not None:
                raise _not_gb18030(path, utf8_bad_at, gb.bad_at)
            gb.mixed.check(path)
            if gb.decoder is None:
                return FileFacts(enc, bom, sha256, size, newlines, x80, utf8_bad_at)
        else:
            bad = first_bad_byte(path, "gb18030", 0, chunk, x80)
            if bad is not None:
                raise _not_gb18030(path, utf8_bad_at, bad)
            _check_mixed(path, 0, chunk)
    return FileFacts(enc, bom, sha256, size, newlines, x80)


def first_bad_byte(
    path: str, encoding: str, bom: int, chunk: int = 16 << 20, x80: bool = True
) -> int | None:
    """Decode the whole file strictly: the offset of its first byte that does not decode."""
    dec = StrictDecoder(encoding, x80)
    with open(path, "rb") as f:
        f.seek(bom)
        while True:
            block = f.read(chunk)
            try:
                dec.decode(block, final=not block, keep=False)
            except BadByte as e:
                return bom + e.offset
            if not block:
                return None


def check_decodes(
    path: str, encoding: str, bom: int, chunk: int = 16 << 20, x80: bool = True
) -> None:
    """Decode the whole file strictly, raising InputError with the line of the first bad byte."""
    at = first_bad_byte(path, encoding, bom, chunk, x80)
    if at is not None:
        raise InputError(
            f"{path}: byte {at} on line {line_of(path, at)} is not valid {encoding}; the file "
            "is damaged there or in another encoding: pass --encoding with its real encoding"
        )
