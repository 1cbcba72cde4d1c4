//! Facts about raw text bytes that the readers need before they decode: where lines end
//! (`\n`, `\r\n` and a lone `\r` all end a record — old Mac exports and mangled dumps use bare
//! CRs), and whether a file that is not valid UTF-8 mixes UTF-8 lines with lines in another
//! encoding (decoding such a file as GB18030 turns its UTF-8 lines into mojibake silently).

/// Line breaks in `data`: each `\r`, and each `\n` not preceded by `\r` (`after_cr`: the byte
/// before `data` was a `\r`). Returns the count and whether `data` ends with `\r`.
pub fn line_breaks(data: &[u8], after_cr: bool) -> (u64, bool) {
    let lf = memchr::memchr_iter(b'\n', data).count() as u64;
    let cr = memchr::memchr_iter(b'\r', data).count() as u64;
    // (no CR, no CRLF to look for: the usual text saves a pass)
    let crlf = if cr == 0 {
        0
    } else {
        memchr::memmem::find_iter(data, b"\r\n").count() as u64
    } + u64::from(after_cr && data.first() == Some(&b'\n'));
    (cr + lf - crlf, data.last() == Some(&b'\r'))
}

/// What one pass over a text file's bytes found ([`scan_file`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TextScan {
    /// Bytes read.
    pub bytes: u64,
    /// Line breaks, as [`line_breaks`] counts them.
    pub newlines: u64,
    /// A 0x80 byte was seen.
    pub x80: bool,
    /// Where the first sequence that is not UTF-8 starts (when checked); a character cut off
    /// by the end of the file is one.
    pub utf8_bad_at: Option<u64>,
    /// How the file's lines mix encodings, when asked for and its first block is not UTF-8.
    pub mix: Option<EncodingMix>,
}

/// Read `read_at(offset, buf)` (a file's positioned read) from offset 0 to its end in blocks
/// of `chunk` bytes: its size, line breaks, whether it holds 0x80 and, with `check_utf8`,
/// where it first stops being UTF-8 — a scan's facts in one Rust pass, without the GIL. With
/// `mixed_if_not_utf8`, a file whose first block is not UTF-8 has its lines tallied by
/// encoding too ([`MixedLines`]: what such a file left to detection needs).
pub fn scan_file(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
    chunk: usize,
    check_utf8: bool,
    mixed_if_not_utf8: bool,
) -> std::io::Result<TextScan> {
    let chunk = chunk.max(1);
    let mut out = TextScan::default();
    let mut mixed: Option<MixedLines> = None;
    // `buf[..carry]` is a character the last block cut off; the next block is read after it.
    let mut buf = vec![0u8; chunk + 4];
    let (mut carry, mut after_cr) = (0usize, false);
    loop {
        let mut n = 0;
        while n < chunk {
            match read_at(out.bytes + n as u64, &mut buf[carry + n..carry + chunk]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        let block = &buf[carry..carry + n];
        out.x80 = out.x80 || memchr::memchr(0x80, block).is_some();
        let (breaks, cr) = line_breaks(block, after_cr);
        (out.newlines, after_cr) = (out.newlines + breaks, cr);
        if let Some(m) = &mut mixed {
            m.feed(block);
        }
        if check_utf8 && out.utf8_bad_at.is_none() {
            let data = &buf[..carry + n];
            let start = out.bytes - carry as u64;
            let tail = match simdutf8::compat::from_utf8(data) {
                Ok(_) => 0,
                Err(e) if e.error_len().is_none() => data.len() - e.valid_up_to(),
                Err(e) => {
                    out.utf8_bad_at = Some(start + e.valid_up_to() as u64);
                    if out.bytes == 0 && mixed_if_not_utf8 {
                        // (the first block: no character carried into it, `data` is it)
                        let mut m = MixedLines::default();
                        m.feed(data);
                        mixed = Some(m);
                    }
                    0
                }
            };
            buf.copy_within(carry + n - tail..carry + n, 0);
            carry = tail;
        }
        out.bytes += n as u64;
    }
    if out.utf8_bad_at.is_none() && carry > 0 {
        out.utf8_bad_at = Some(out.bytes - carry as u64); // the file ends inside a character
    }
    out.mix = mixed.map(MixedLines::finish);
    Ok(out)
}

/// Where the whole lines of `data` end: after its last line break, a `\r` at the very end
/// not counted (it may be half of a `\r\n` the next block completes). 0 if none ends.
fn whole_lines_end(data: &[u8]) -> usize {
    let lf = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
    let cr = memchr::memrchr(b'\r', &data[..data.len().saturating_sub(1)]).map_or(0, |i| i + 1);
    lf.max(cr)
}

/// The encoding tally of a file's lines ([`encoding_mix`]), fed its blocks in order: a line
/// cut by a block's end is carried and tallied whole (as `io.encoding._Mixed` does).
#[derive(Debug)]
pub struct MixedLines {
    mix: EncodingMix,
    /// The number of the next line to tally.
    line: u64,
    carry: Vec<u8>,
}

impl Default for MixedLines {
    fn default() -> MixedLines {
        MixedLines {
            mix: EncodingMix::default(),
            line: 1,
            carry: Vec::new(),
        }
    }
}

impl MixedLines {
    fn count(&mut self, data: &[u8]) {
        let seen = self.mix.lines;
        encoding_mix(data, self.line, &mut self.mix);
        self.line += self.mix.lines - seen;
    }

    /// The next block of the file.
    pub fn feed(&mut self, block: &[u8]) {
        let cut = whole_lines_end(block);
        let Some(k) = memchr::memchr2(b'\n', b'\r', &block[..cut]) else {
            self.carry.extend_from_slice(block); // no line ends in this block
            return;
        };
        // The line begun in the blocks before ends at this block's first break: tallied
        // joined with that line alone, then the rest of the block's whole lines in place.
        let first_end = k
            + 1
            + usize::from(block[k] == b'\r' && block.get(k + 1) == Some(&b'\n') && k + 1 < cut);
        let mut line = std::mem::take(&mut self.carry);
        line.extend_from_slice(&block[..first_end]);
        self.count(&line);
        self.count(&block[first_end..cut]);
        line.clear();
        line.extend_from_slice(&block[cut..]);
        self.carry = line;
    }

    /// The tally, the last (unended) line included.
    pub fn finish(mut self) -> EncodingMix {
        if !self.carry.is_empty() {
            let last = std::mem::take(&mut self.carry);
            self.count(&last);
        }
        self.mix
    }
}

/// The end of the line starting at `pos` and the start of the next one.
pub fn next_line(input: &[u8], pos: usize) -> (usize, usize) {
    match memchr::memchr2(b'\n', b'\r', &input[pos..]) {
        None => (input.len(), input.len()),
        Some(k) => {
            let end = pos + k;
            let crlf = input[end] == b'\r' && input.get(end + 1) == Some(&b'\n');
            (end, end + 1 + usize::from(crlf))
        }
    }
}

/// How the lines of a not-entirely-UTF-8 text split by encoding.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EncodingMix {
    /// Lines that are valid UTF-8, hold Chinese text, and are not GB2312 byte pairs.
    pub utf8_lines: u64,
    /// Lines that are not valid UTF-8.
    pub other_lines: u64,
    /// Line numbers (from `first_line`) of the first few of each.
    pub first_utf8: Vec<u64>,
    pub first_other: Vec<u64>,
    /// Lines seen.
    pub lines: u64,
}

const SHOW: usize = 5;

/// Every non-ASCII byte pairs up as a GB2312 character (lead A1–F7, trail A1–FE).
fn gb2312_pairs(line: &[u8]) -> bool {
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b < 0x80 {
            i += 1;
            continue;
        }
        match line.get(i + 1) {
            Some(&t) if (0xA1..=0xF7).contains(&b) && (0xA1..=0xFE).contains(&t) => i += 2,
            _ => return false,
        }
    }
    true
}

/// Characters that real Chinese UTF-8 text is made of; GB18030 bytes that happen to be valid
/// UTF-8 decode mostly to other scripts (Latin-1, Cyrillic, Arabic…).
fn chinese_text(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_ascii()
            || ('\u{4E00}'..='\u{9FFF}').contains(&c)
            || ('\u{3000}'..='\u{303F}').contains(&c)
            || ('\u{FF00}'..='\u{FFEF}').contains(&c)
            || c == '\u{00B7}'
    })
}

/// Sort the lines of `data` (whole lines, numbered from `first_line`) into those that are
/// clearly UTF-8 and those that are not UTF-8 at all; a file with both is of mixed encoding.
pub fn encoding_mix(data: &[u8], first_line: u64, acc: &mut EncodingMix) {
    let mut pos = 0;
    let mut line_no = first_line;
    while pos < data.len() {
        let (end, next) = next_line(data, pos);
        let line = &data[pos..end];
        pos = next;
        acc.lines += 1;
        let this = line_no;
        line_no += 1;
        if line.is_ascii() {
            continue;
        }
        match std::str::from_utf8(line) {
            Err(_) => {
                acc.other_lines += 1;
                if acc.first_other.len() < SHOW {
                    acc.first_other.push(this);
                }
            }
            Ok(s) if chinese_text(s) && !gb2312_pairs(line) => {
                acc.utf8_lines += 1;
                if acc.first_utf8.len() < SHOW {
                    acc.first_utf8.push(this);
                }
            }
            Ok(_) => {}
        }
    }
}

/// A strict, incremental GB18030 decoder to UTF-8 (encoding_rs, WHATWG / GB18030-2022
/// mapping): blocks in, UTF-8 out, a sequence split between blocks carried over; the first
/// malformed sequence stops it, reported by its offset from the start of the whole input.
pub struct Gb18030 {
    dec: encoding_rs::Decoder,
    /// Bytes of input consumed before the current block.
    done: u64,
}

impl Default for Gb18030 {
    fn default() -> Self {
        Gb18030 {
            dec: encoding_rs::GB18030.new_decoder_without_bom_handling(),
            done: 0,
        }
    }
}

impl Gb18030 {
    /// A decoder for the input that follows a line feed at byte `done` of the whole input. A
    /// line feed is never part of a GB18030 sequence, so there the stream holds nothing and
    /// the rest decodes on its own (the first part on another decoder, at the same time).
    pub fn after_line_feed(done: u64) -> Gb18030 {
        Gb18030 {
            done,
            ..Gb18030::default()
        }
    }

    /// Bytes of input consumed so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// The most UTF-8 bytes `decode_into` can write for `len` input bytes.
    pub fn max_out(&self, len: usize) -> usize {
        self.dec
            .max_utf8_buffer_length_without_replacement(len)
            .unwrap_or(len.saturating_mul(3).saturating_add(16))
    }

    /// Check that `src` decodes (`last`: nothing follows it), keeping nothing: as
    /// `decode_into`, through a small buffer that stays in cache rather than one the size of
    /// the block's UTF-8.
    pub fn check(&mut self, src: &[u8], last: bool) -> Result<(), u64> {
        const STEP: usize = 16 << 10;
        let mut buf = Vec::new();
        let pieces = src.len().div_ceil(STEP).max(1);
        for i in 0..pieces {
            let piece = &src[(i * STEP).min(src.len())..((i + 1) * STEP).min(src.len())];
            let need = self.max_out(piece.len());
            if buf.len() < need {
                buf.resize(need, 0);
            }
            self.decode_into(piece, last && i + 1 == pieces, &mut buf)?;
        }
        Ok(())
    }

    /// Decode `src` (`last`: nothing follows it) into `buf` (at least `max_out(src.len())`
    /// bytes; reused between calls, so no fresh memory per block), returning the UTF-8 bytes
    /// written. `Err(offset)`: the input byte (counted from the start of the whole input) where
    /// the first malformed sequence starts.
    pub fn decode_into(&mut self, src: &[u8], last: bool, buf: &mut [u8]) -> Result<usize, u64> {
        assert!(
            buf.len() >= self.max_out(src.len()),
            "decode_into needs max_out bytes"
        );
        match self.decode_some(src, last, buf)? {
            (read, written) if read == src.len() => Ok(written),
            _ => unreachable!("the output was sized by max_utf8_buffer_length"),
        }
    }

    /// Decode as much of `src` as fits in `buf` (any size): `(read, written)`, all of `src`
    /// read unless `buf` filled up first — the caller then gives the rest of `src` and more room.
    /// Real text needs far less than `max_out` (at most 3 UTF-8 bytes for 2 of GB18030), so a
    /// caller can size `buf` for it and grow it only in the rare case. Errors as `decode_into`.
    pub fn decode_some(
        &mut self,
        src: &[u8],
        last: bool,
        buf: &mut [u8],
    ) -> Result<(usize, usize), u64> {
        let (res, read, written) = self.dec.decode_to_utf8_without_replacement(src, buf, last);
        match res {
            encoding_rs::DecoderResult::InputEmpty | encoding_rs::DecoderResult::OutputFull => {
                self.done += read as u64;
                Ok((read, written))
            }
            encoding_rs::DecoderResult::Malformed(bad, extra) => {
                // The malformed bytes end `extra` bytes before `read`; they may have begun in an
                // earlier block (a sequence carried over), hence the saturating start.
                let end = self.done + read as u64 - u64::from(extra);
                Err(end.saturating_sub(u64::from(bad)))
            }
        }
    }

    /// Room for the UTF-8 of `len` bytes of real text: 3 bytes for every 2 of GB18030 (a
    /// four-byte sequence gives at most 4, ASCII 1), plus a character carried over. A lone
    /// 0x80 (read as €, 3 bytes) can need more: `decode_some` then says the room ran out.
    pub fn typical_out(len: usize) -> usize {
        len.saturating_add(len / 2).saturating_add(16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_in_blocks_finds_what_the_whole_text_holds() {
        // Texts of UTF-8 (1–4 byte characters), line breaks of every kind, 0x80 and invalid
        // bytes, scanned in blocks of every small size: the facts of the whole text at once.
        let pieces: [&[u8]; 9] = [
            b"a",
            b"\n",
            b"\r",
            b"\r\n",
            "中".as_bytes(),
            "😀".as_bytes(),
            b"\x80",
            b"\xff",
            b"\xe4\xb8",
        ];
        let mut seed = 7u64;
        for round in 0..400 {
            let mut text = Vec::new();
            for _ in 0..(round % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // invalid pieces rarely, so many texts are valid UTF-8 throughout
                let k = (seed >> 33) as usize % if round % 3 == 0 { 9 } else { 6 };
                text.extend_from_slice(pieces[k]);
            }
            let want_bad = std::str::from_utf8(&text)
                .err()
                .map(|e| e.valid_up_to() as u64);
            for chunk in (1..=9).chain([64]) {
                let read_at = |at: u64, buf: &mut [u8]| {
                    let at = (at as usize).min(text.len());
                    let n = buf.len().min(text.len() - at).min(3); // short reads too
                    buf[..n].copy_from_slice(&text[at..at + n]);
                    Ok(n)
                };
                let got = scan_file(read_at, chunk, true, false).unwrap();
                let want = TextScan {
                    bytes: text.len() as u64,
                    newlines: line_breaks(&text, false).0,
                    x80: text.contains(&0x80),
                    utf8_bad_at: want_bad,
                    mix: None,
                };
                assert_eq!(got, want, "{text:?} in blocks of {chunk}");
                let unchecked = scan_file(read_at, chunk, false, true).unwrap();
                assert_eq!((unchecked.utf8_bad_at, unchecked.mix), (None, None));
                // The lines tallied by encoding where the first block is not UTF-8: what
                // tallying the whole text at once gives, however the blocks cut its lines.
                let tallied = scan_file(read_at, chunk, true, true).unwrap();
                let first = &text[..chunk.min(text.len())];
                let first_bad =
                    matches!(std::str::from_utf8(first), Err(e) if e.error_len().is_some());
                let mut whole = EncodingMix::default();
                encoding_mix(&text, 1, &mut whole);
                assert_eq!(
                    tallied.mix,
                    first_bad.then_some(whole),
                    "{text:?} in {chunk}s"
                );
                assert_eq!(
                    TextScan {
                        mix: None,
                        ..tallied
                    },
                    want
                );
            }
        }
    }

    #[test]
    fn decode_some_resumes_when_the_room_runs_out() {
        // 0x80 is € (3 bytes for 1): typical_out is too small, and the rest comes in a second
        // call with more room, the same UTF-8 as one call with max_out.
        let raw: Vec<u8> = b"\x80\x80\x80\x80ab\xD5\xC5\n".repeat(50);
        let mut whole = Gb18030::default();
        let mut buf = vec![0u8; whole.max_out(raw.len())];
        let n = whole.decode_into(&raw, true, &mut buf).unwrap();
        let want = &buf[..n];
        for room in [4usize, 7, Gb18030::typical_out(raw.len()), raw.len() * 3] {
            let mut d = Gb18030::default();
            let mut out = vec![0u8; room];
            let (mut read, mut written) = d.decode_some(&raw, true, &mut out).unwrap();
            let mut calls = 1;
            while read < raw.len() {
                out.resize(out.len() + room.max(8), 0);
                let (r, w) = d
                    .decode_some(&raw[read..], true, &mut out[written..])
                    .unwrap();
                read += r;
                written += w;
                calls += 1;
                assert!(calls < 1000);
            }
            assert_eq!(&out[..written], want, "room {room}");
        }
        // Errors keep their offsets in the whole input across the calls.
        let mut d = Gb18030::default();
        let mut out = vec![0u8; 8];
        let bad = b"\x80\x80\x80\x80\x80\x80\xFF";
        let (r, _) = d.decode_some(bad, true, &mut out).unwrap();
        assert!(r < bad.len());
        let mut more = vec![0u8; 64];
        assert_eq!(d.decode_some(&bad[r..], true, &mut more), Err(6));
    }

    #[test]
    fn gb18030_carries_split_characters_and_names_the_first_bad_byte() {
        struct D(Gb18030);
        impl D {
            fn decode(&mut self, src: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), u64> {
                let mut buf = vec![0u8; self.0.max_out(src.len())];
                let n = self.0.decode_into(src, last, &mut buf)?;
                out.extend_from_slice(&buf[..n]);
                Ok(())
            }
        }
        // 张 (2 bytes) and 𠀀 (4 bytes) cut at every byte
        let raw = [0xD5u8, 0xC5, 0x95, 0x32, 0x82, 0x36, b','];
        for cut in 0..=raw.len() {
            let mut d = D(Gb18030::default());
            let mut out = Vec::new();
            d.decode(&raw[..cut], false, &mut out).unwrap();
            d.decode(&raw[cut..], true, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), "张\u{20000},");
        }
        let mut d = D(Gb18030::default());
        let mut out = Vec::new();
        d.decode(b"ab\xD5\xC5", false, &mut out).unwrap();
        assert_eq!(d.decode(b"cd\xFFx", true, &mut out), Err(6));
        let mut d = D(Gb18030::default());
        d.decode(b"ab\x81", false, &mut out).unwrap();
        assert_eq!(d.decode(b"\x20", true, &mut out), Err(2)); // began in the block before

        // `check` finds the same first bad byte as decoding, whatever the block sizes.
        // 张三,𠀀 in GB18030, 20,000 lines; the last 𠀀's first byte made 0xFF.
        let mut text = b"\xD5\xC5\xC8\xFD,\x95\x32\x82\x36\n".repeat(20_000);
        let bad = text.len() - 5;
        text[bad] = 0xFF;
        for block in [1usize, 7, 16 << 10, (16 << 10) + 1, text.len()] {
            let mut d = Gb18030::default();
            let mut r = Ok(());
            for (i, b) in text.chunks(block).enumerate() {
                r = d.check(b, (i + 1) * block >= text.len());
                if r.is_err() {
                    break;
                }
            }
            assert_eq!(r, Err(bad as u64), "block {block}");
        }
        let mut d = Gb18030::default();
        assert_eq!(d.check(&text[..bad], true), Ok(()));
        assert_eq!(Gb18030::default().check(b"ab\x81", true), Err(2)); // cut off at the end
    }

    #[test]
    fn every_line_ending_counts_once() {
        assert_eq!(line_breaks(b"a\nb\r\nc\rd", false), (3, false));
        assert_eq!(line_breaks(b"a\nb\nc", false), (2, false));
        assert_eq!(line_breaks(b"a\r", false), (1, true));
        // A CRLF split across two chunks is one break.
        assert_eq!(line_breaks(b"\nb", true), (0, false));
        let text = b"a\rb\r\nc\n\rd";
        let mut pos = 0;
        let mut lines = Vec::new();
        while pos < text.len() {
            let (end, next) = next_line(text, pos);
            lines.push(&text[pos..end]);
            pos = next;
        }
        assert_eq!(lines, [&b"a"[..], b"b", b"c", b"", b"d"]);
    }

    #[test]
    fn mixed_utf8_and_gb18030_lines_are_told_apart() {
        // "张三" in UTF-8 and in GB18030, and an ASCII line.
        let utf8 = "张三,110105194912310021".as_bytes();
        let gb = [0xD5, 0xC5, 0xC8, 0xFD, b',', b'1'];
        let mut data = Vec::new();
        for l in [utf8, b"id,x" as &[u8], &gb, utf8] {
            data.extend_from_slice(l);
            data.push(b'\n');
        }
        let mut m = EncodingMix::default();
        encoding_mix(&data, 1, &mut m);
        assert_eq!((m.utf8_lines, m.other_lines, m.lines), (2, 1, 4));
        assert_eq!((m.first_utf8, m.first_other), (vec![1, 4], vec![3]));
        // A GB18030-only file has no UTF-8 lines.
        let mut m = EncodingMix::default();
        encoding_mix(&gb, 1, &mut m);
        assert_eq!((m.utf8_lines, m.other_lines), (0, 1));
    }
}
