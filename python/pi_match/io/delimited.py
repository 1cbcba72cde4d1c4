"""Delimited text: any separator (`,` tab `|` `----` ` # `...), quoted or not, with or without
a header, in any encoding. Chunks of whole lines are decoded to UTF-8 here and split into
columns by the Rust core, which also numbers every line and reports the ones it cannot split."""

from __future__ import annotations

import codecs
import os
from collections import Counter
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from .. import _core
from .base import (
    Batch,
    InputError,
    ReadOptions,
    Source,
    binary_array,
    looks_like_data,
    unique_names,
)
from .encoding import (
    LINE_BREAK,
    BadByte,
    Hashing,
    StrictDecoder,
    _not_gb18030,
    line_of,
    scan,
    whole_lines_end,
)

# Tried in this order when no --delimiter is given; the first that splits the sample lines
# into the same number (> 1) of fields wins.
CANDIDATES = ["\t", "----", " # ", "|", ",", ";"]


def _fields(line: bytes, sep: str, quote: bytes) -> int:
    s = _core.split_delimited(line, 1, sep.encode(), quote)
    return -1 if s.rejects else s.ncols


def _sniff(lines: list[bytes], quote: bytes) -> str:
    """The separator that splits most sample lines, the first among them, into the same number
    (> 1) of fields."""
    sample = [ln for ln in lines if ln.strip()]
    best, best_score = "", (0.0, 0)
    for sep in CANDIDATES:
        counts = Counter(_fields(ln, sep, quote) for ln in sample)
        if not counts:
            continue
        n, freq = counts.most_common(1)[0]
        share = freq / len(sample)
        # Dirty dumps have rows with stray separators: a majority that includes the first
        # (header) line is enough.
        if (
            n > 1
            and share >= 0.5
            and _fields(sample[0], sep, quote) == n
            and (share, n) > best_score
        ):
            best, best_score = sep, (share, n)
    return best


class DelimitedSource(Source):
    def __init__(
        self,
        path: str | os.PathLike[str],
        options: ReadOptions,
        *,
        plain: bool = False,
        read_all: bool = False,
    ):
        """`read_all`: every batch will be read (see `open_source`)."""
        super().__init__(os.fspath(path), options, format="lines" if plain else "csv")
        self.facts_pass = scan(self.path, options.encoding, options.chunk_bytes, read_all=read_all)
        self.encoding = self.facts_pass.encoding
        #: The scan left the hashing to the reading (`read_all`): every whole pass hashes.
        self.hash_as_read = self.facts_pass.sha256 is None
        self.facts.update(
            sha256=self.facts_pass.sha256,
            bytes=self.facts_pass.size,
            encoding=self.encoding,
            bom=bool(self.facts_pass.bom),
        )
        first = self._first_lines(20)
        if plain:
            self.sep = ""
        elif options.delimiter is not None:
            self.sep = options.delimiter
        else:
            self.sep = _sniff(first, options.quote.encode())
        self.quote = options.quote.encode() if self.sep else b""
        head_fields: list[str] = []
        if first and not plain:
            split = _core.split_delimited(first[0], 1, self.sep.encode(), self.quote)
            cols, rejects = split.columns, split.rejects
            if rejects and options.header:
                raise InputError(f"{self.path}: cannot split the header line: {rejects[0][2]}")
            head_fields = [bytes(d).decode("utf-8", "replace").strip() for _, d in cols]
        elif first:
            head_fields = [first[0].decode("utf-8", "replace").strip()]
        if options.header is not None:
            header = options.header and bool(first)
        elif plain or not first:
            header = False
        else:
            # A first line that holds an identifier (or looks like data) is a record, not a
            # header: one-value lists and headerless dumps must not lose their first row.
            header = not any(looks_like_data(f) for f in head_fields)
        self.header_lines = 0
        if header:
            self.columns = unique_names(head_fields)
            self.header_lines = 1
        else:
            sample = next((ln for ln in first if ln.strip()), b"")
            n = (
                _core.split_delimited(sample, 1, self.sep.encode(), self.quote).ncols
                if sample
                else 1
            )
            self.columns = [str(i) for i in range(1, max(n, 1) + 1)]
        self.facts.update(delimiter=self.sep, header=bool(self.header_lines))

    def _decoded_chunks(
        self, chunk: int | None = None, *, hashing: bool = False
    ) -> Iterator[tuple[bytes, int]]:
        """UTF-8 text and where its whole lines end (`text[:end]`; the last chunk's last line
        may lack its newline). The text is handed over as read or decoded, not sliced: a 16 MiB
        chunk is not copied once more only to drop a partial line. `chunk`: bytes read at a
        time (default `options.chunk_bytes`). `hashing`: a pass over every byte, which hashes
        them if the scan left that to it (`hash_as_read`)."""
        chunk = chunk or self.options.chunk_bytes
        enc = self.encoding
        utf8 = codecs.lookup(enc).name == "utf-8"
        dec = None if utf8 else StrictDecoder(enc, self.facts_pass.x80)
        # Reading ahead, the reader's own thread has room for the hashing (`Source.serial`).
        h = Hashing(inline=self.serial) if hashing and self.hash_as_read else None
        try:
            if utf8 or (dec is not None and dec.rust):
                yield from self._whole_line_blocks(dec, chunk, h)
            else:
                yield from self._other_blocks(dec, chunk, h)
        finally:
            if h is not None:
                h.close()

    def _seek_past_bom(self, h: Hashing | None, f: BinaryIO) -> None:
        """Seek `f` past the byte-order mark, which the pass skips; `h` (if any) hashes it."""
        bom = self.facts_pass.bom
        if h is not None and bom:
            f.seek(0)
            h.update(f.read(bom))
        f.seek(bom)

    def _other_blocks(
        self, dec: StrictDecoder | None, chunk: int, h: Hashing | None
    ) -> Iterator[tuple[bytes, int]]:
        """`_decoded_chunks` for encodings other than UTF-8 and GB18030 (Python's codecs): a
        partial line carried into the next block."""
        carry = b""
        read = self.facts_pass.bom
        with open(self.path, "rb") as f:
            self._seek_past_bom(h, f)
            while True:
                if h is not None:
                    h.wait()  # (the last block hashed before the next is read)
                block = f.read(chunk)
                read += len(block)
                if h is not None and block:
                    h.update(block)
                if dec is not None:
                    try:
                        text = dec.decode(block, final=not block)
                    except BadByte as e:
                        raise self._not_decoded(e) from None
                else:
                    text = block
                data = carry + text if carry else text
                if not block:
                    self._read_through(read, h)
                    if data:
                        yield data, len(data)
                    return
                cut = whole_lines_end(data)
                carry = data[cut:]
                if cut:
                    yield data, cut

    def _not_decoded(self, e: BadByte) -> InputError:
        """What a byte that does not decode means, and where it is."""
        at = self.facts_pass.bom + e.offset
        if (utf8_bad_at := self.facts_pass.utf8_bad_at) is not None:
            return _not_gb18030(self.path, utf8_bad_at, at)  # the scan left the check here
        return InputError(
            f"{self.path}: byte {at} on line {line_of(self.path, at)} is not "
            f"valid {self.encoding}; pass --encoding with the file's real encoding"
        )

    def _whole_line_blocks(
        self, dec: StrictDecoder | None, chunk: int, h: Hashing | None = None
    ) -> Iterator[tuple[bytes, int]]:
        """`_decoded_chunks` for UTF-8 and GB18030, in which a line-break byte is never part of
        a longer character: a block is cut after its last line break in the raw bytes, and the
        next block is read from there (the partial line read twice, from the page cache),
        instead of carrying the partial line over and copying the whole next block behind it.
        GB18030 decodes only the block's whole lines (`end`, no copy); the decoder then never
        holds half a character between blocks, and it sees every byte once, in order, so its
        offsets stay the file's. A line longer than a block is collected until it ends (rare),
        joined once, not copied again with every block."""
        read = self.facts_pass.bom
        with open(self.path, "rb") as f:
            self._seek_past_bom(h, f)
            long_line: list[bytes] = []
            while True:
                if h is not None:
                    h.wait()  # (the last block hashed before the next is read)
                block = f.read(chunk)
                last = len(block) < chunk  # a regular file: a short read is its end
                if not last and not whole_lines_end(block):
                    long_line.append(block)  # no line ends in it: read on
                    continue
                if long_line:
                    block = b"".join([*long_line, block])
                    long_line.clear()
                cut = len(block) if last else whole_lines_end(block)
                read += cut
                if h is not None:
                    h.update(memoryview(block)[:cut])  # the bytes read on from are read again
                if last:
                    self._read_through(read, h)
                if dec is None:
                    if cut:
                        yield block, cut
                else:
                    # A large block's two halves are decoded at once, and split one by one.
                    try:
                        parts = dec.decode_parts(block, last, cut, parallel=not self.serial)
                    except BadByte as e:
                        raise self._not_decoded(e) from None
                    for text in parts:
                        yield text, len(text)
                if last:
                    return
                if cut < len(block):
                    f.seek(cut - len(block), os.SEEK_CUR)

    def _read_through(self, read: int, h: Hashing | None) -> None:
        """The pass ends, having read `read` bytes in all: the scan's, or the file changed
        between. With `h` (the scan left the hashing to the reading) its SHA-256 is the file's
        — and that of any whole pass before it (a reader that reads twice, as SQL dumps may)."""
        if read != (size := self.facts_pass.size):
            raise InputError(
                f"{self.path}: changed while it was being read ({size:,} bytes when it was "
                f"scanned, {read:,} now); copy it somewhere it cannot change and read the copy"
            )
        if h is None:
            return
        digest = h.hexdigest()
        if (before := self.facts_pass.sha256) is not None and before != digest:
            raise InputError(
                f"{self.path}: changed while it was being read (its bytes hashed "
                f"{before[:16]}… in one pass, {digest[:16]}… in the next); copy it somewhere "
                "it cannot change and read the copy"
            )
        self.facts_pass.sha256 = self.facts["sha256"] = digest

    def _chunks_with_a_last(self) -> Iterator[tuple[bytes, int]]:
        """`_decoded_chunks`, then `(b"", 0)`: the end of the file, where what the splitter
        left open is judged on its own."""
        yield from self._decoded_chunks(hashing=True)
        yield b"", 0

    def _first_lines(self, n: int) -> list[bytes]:
        """The first `n` lines (to sniff the separator and the header), from about the first
        MiB read and decoded on its own: not a whole block, which the data pass reads again."""
        for chunk, end in self._decoded_chunks(min(self.options.chunk_bytes, 1 << 20)):
            lines = LINE_BREAK.split(chunk[: min(end, 1 << 20)], maxsplit=n)[:n]
            return [ln for ln in lines if ln or len(lines) == 1]
        return []

    def batches(self) -> Iterator[Batch]:
        self.rows = self.blank_lines = 0
        self.rejects.clear()
        line = 1
        skip = self.header_lines
        expected = len(self.columns)
        # A record whose quoted field holds line breaks may run past a chunk's end: the
        # splitter leaves it (`open_tail`, a few lines at most) to go in front of the next
        # chunk, and the text left at the end is split on its own.
        tail = b""
        for chunk, end in self._chunks_with_a_last():
            more = bool(chunk)  # (b"", 0) is the end of the file
            if skip and chunk:
                m = LINE_BREAK.search(chunk, 0, end)
                chunk, end = (chunk[m.end() :], end - m.end()) if m else (b"", 0)
                line += 1
                skip = 0
            if tail:  # (one copy: the chunk's whole lines are joined to it, not sliced first)
                chunk, end, tail = b"".join((tail, memoryview(chunk)[:end])), len(tail) + end, b""
            if not end:
                continue
            s = _core.split_delimited(
                chunk, line, self.sep.encode(), self.quote, expected, end, more=more,
                threads=1 if self.serial else None,
            )  # fmt: skip
            if s.open_tail is not None:
                tail = chunk[s.open_tail : end]
            cols, lines = s.columns, s.lines
            line += s.lines_seen
            self.blank_lines += s.blank_lines
            for ln, reason, detail, raw in s.rejects:
                self.reject(int(ln), "", reason, raw)
                self.facts.setdefault("reject_details", {}).setdefault(reason, detail)
            if len(lines):
                self.rows += len(lines)
                arrays = {
                    name: binary_array(o, d)
                    for name, (o, d) in zip(self.columns, cols, strict=True)
                }
                yield Batch(arrays, lines.astype(np.uint64, copy=False), utf8=s.utf8)

    def count_rows(self) -> int:
        return max(self.facts_pass.newlines + 1 - self.header_lines, 0)
