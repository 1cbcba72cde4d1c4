//! Splitting delimited text into columns, with the line number of every row and every row that
//! cannot be split reported, never dropped. The caller (Python's reader) has already decoded the
//! file to UTF-8 and hands over whole lines; this never opens a file.
//!
//! Separators may be several bytes (`----`, ` # `); fields may be quoted with a quote byte
//! (doubled inside to stand for itself). A line whose field count differs from the header's is
//! rejected as `field_count` (the 2013 hotel dump's unquoted commas in addresses look like this);
//! a quote that is not closed on its line is `bad_quote` — unless the quoted field goes on over
//! the next lines and closes there into a record of the expected field count (a cell with line
//! breaks, as Excel and RFC 4180 write them), within `RECORD_LINES` lines and `RECORD_BYTES`
//! bytes: a stray quote in a dump cannot swallow the records after it. Blank lines are counted,
//! not rows.

use memchr::memmem;

#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// Empty: no splitting (one value per line).
    pub sep: Vec<u8>,
    pub quote: Option<u8>,
    /// Fields per row; `None` takes the first non-blank line's count.
    pub expected: Option<usize>,
    /// More text follows this input: a record still open at its end (a quoted field with line
    /// breaks, within the limits) is left for the next call (`Split::open_tail`) instead of
    /// being judged on part of its lines.
    pub more_follows: bool,
}

/// A record may go on over at most this many lines, and this many bytes, inside a quoted field.
pub const RECORD_LINES: u64 = 16;
pub const RECORD_BYTES: usize = 64 << 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub reason: &'static str,
    pub detail: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Default)]
pub struct Split {
    pub ncols: usize,
    /// Per column: the field bytes back to back, and `rows + 1` offsets into them.
    pub data: Vec<Vec<u8>>,
    pub offsets: Vec<Vec<i64>>,
    /// Physical (1-based) line number of each row.
    pub lines: Vec<u64>,
    pub rejects: Vec<Reject>,
    pub blank_lines: u64,
    /// Lines seen (including blank and rejected ones; not those of `open_tail`).
    pub lines_seen: u64,
    /// Where a record begins that is still open at the end of the input (`more_follows`):
    /// its bytes, `input[open_tail..]`, go in front of the next call's input.
    pub open_tail: Option<usize>,
}

impl Split {
    /// Whether a line of `fields` fields (line `line`, bytes `raw` of the input) is a row: the
    /// first one sets the count when none was expected; one of another count is rejected as
    /// `field_count`.
    fn takes(&mut self, fields: usize, line: u64, raw: (usize, usize)) -> bool {
        if self.ncols == 0 {
            self.ncols = fields;
        }
        if fields != self.ncols {
            self.rejects.push(Reject {
                line,
                reason: "field_count",
                detail: format!("{fields} fields, expected {}", self.ncols),
                start: raw.0,
                end: raw.1,
            });
            return false;
        }
        true
    }
}

/// `split_line`'s error for a quoted field still open at the end of its text (the record may
/// go on over the next line); reported as `bad_quote` if it does not.
const OPEN_QUOTE: &str = "open_quote";

/// Split one line into fields; `Err(reason)` when quoting is broken.
fn split_line<'a>(
    line: &'a [u8],
    sep: &[u8],
    finder: Option<&memmem::Finder<'_>>,
    quote: Option<u8>,
    fields: &mut Vec<std::borrow::Cow<'a, [u8]>>,
) -> Result<(), &'static str> {
    use std::borrow::Cow;
    fields.clear();
    if sep.is_empty() {
        fields.push(Cow::Borrowed(line));
        return Ok(());
    }
    let find = |hay: &[u8]| -> Option<usize> {
        match finder {
            Some(f) => f.find(hay),
            None => memchr::memchr(sep[0], hay),
        }
    };
    let mut rest = line;
    loop {
        if let Some(q) = quote.filter(|&q| rest.first() == Some(&q)) {
            // Quoted field: up to the closing quote; a doubled quote stands for itself. Its
            // bytes are borrowed as they are unless a doubled quote must be undone.
            let mut value: Option<Vec<u8>> = None;
            let mut i = 1;
            let field = loop {
                match memchr::memchr(q, &rest[i..]) {
                    None => return Err(OPEN_QUOTE),
                    Some(k) if rest.get(i + k + 1) == Some(&q) => {
                        // `""`: the text so far and one quote.
                        value
                            .get_or_insert_with(Vec::new)
                            .extend_from_slice(&rest[i..=i + k]);
                        i += k + 2;
                    }
                    Some(k) => {
                        let (from, end) = (i, i + k);
                        i = end + 1;
                        break match value.take() {
                            None => Cow::Borrowed(&rest[1..end]),
                            Some(mut v) => {
                                v.extend_from_slice(&rest[from..end]);
                                Cow::Owned(v)
                            }
                        };
                    }
                }
            };
            fields.push(field);
            rest = &rest[i..];
            if rest.is_empty() {
                return Ok(());
            }
            if !rest.starts_with(sep) {
                return Err("bad_quote");
            }
            rest = &rest[sep.len()..];
            continue;
        }
        match find(rest) {
            Some(k) => {
                fields.push(Cow::Borrowed(&rest[..k]));
                rest = &rest[k + sep.len()..];
            }
            None => {
                fields.push(Cow::Borrowed(rest));
                return Ok(());
            }
        }
    }
}

/// Split `input` (whole lines; the last may lack its newline), numbering lines from
/// `first_line`.
pub fn split(input: &[u8], first_line: u64, opts: &SplitOptions) -> Split {
    match opts.sep[..] {
        // Machine-written dumps rarely quote: a chunk without a quote byte, cut at a one-byte
        // separator, goes by one scan for separators and line ends (the same result).
        [sep]
            if sep != b'\n'
                && sep != b'\r'
                && opts
                    .quote
                    .is_none_or(|q| memchr::memchr(q, input).is_none()) =>
        {
            split_plain(input, first_line, sep, opts.expected)
        }
        _ => split_general(input, first_line, opts),
    }
}

/// Call `f` with the position of every `a`, `b` or `c` byte of `input`, in order — what
/// `memchr3_iter` yields, found 64 bytes at a time as one bit mask (SSE2, which every x86-64
/// has) instead of by a search begun again after each match: with fields of a few bytes,
/// those restarts were most of the splitter's time.
#[inline]
fn each_of3(input: &[u8], a: u8, b: u8, c: u8, mut f: impl FnMut(usize)) {
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY (all the intrinsics below): SSE2 is part of the x86-64 baseline; each load
        // reads the 16 bytes at `input[done + 16k..]`, inside `input` as `done + 64 <= len`.
        let (va, vb, vc) = unsafe {
            (
                _mm_set1_epi8(a as i8),
                _mm_set1_epi8(b as i8),
                _mm_set1_epi8(c as i8),
            )
        };
        while done + 64 <= input.len() {
            let mut mask = 0u64;
            for k in 0..4 {
                let bits = unsafe {
                    let v = _mm_loadu_si128(input.as_ptr().add(done + 16 * k).cast());
                    let hit = _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)),
                        _mm_cmpeq_epi8(v, vc),
                    );
                    _mm_movemask_epi8(hit) as u32 as u64
                };
                mask |= bits << (16 * k);
            }
            while mask != 0 {
                f(done + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            done += 64;
        }
    }
    for p in memchr::memchr3_iter(a, b, c, &input[done..]) {
        f(done + p);
    }
}

/// `split` for a one-byte separator and no quoting: one pass over the separators and line
/// ends (`\n`, `\r\n`, a lone `\r`), the fields copied straight into their columns.
fn split_plain(input: &[u8], first_line: u64, sep: u8, expected: Option<usize>) -> Split {
    let mut out = Split {
        ncols: expected.unwrap_or(0),
        ..Split::default()
    };
    // Rows are at most the line ends + 1.
    let rows = memchr::memchr2_iter(b'\n', b'\r', input).count() + 1;
    out.lines.reserve(rows);
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut start = 0usize; // of the line
    let mut field = 0usize; // start of the current field
    let mut line_no = first_line;
    let mut skip_lf = usize::MAX; // the `\n` of a `\r\n`, already counted
    let mut end_line =
        |out: &mut Split, bounds: &mut Vec<(usize, usize)>, start: usize, end: usize| {
            let this = line_no;
            line_no += 1;
            out.lines_seen += 1;
            let line = &input[start..end];
            if line.iter().all(|&b| b == b' ' || b == b'\t') {
                out.blank_lines += 1;
                bounds.clear();
                return;
            }
            if !out.takes(bounds.len(), this, (start, end)) {
                bounds.clear();
                return;
            }
            if out.data.is_empty() {
                out.data = vec![Vec::new(); out.ncols];
                out.offsets = (0..out.ncols)
                    .map(|_| {
                        let mut v = Vec::with_capacity(rows + 1);
                        v.push(0i64);
                        v
                    })
                    .collect();
            }
            for ((data, offsets), &(a, b)) in
                out.data.iter_mut().zip(&mut out.offsets).zip(bounds.iter())
            {
                data.extend_from_slice(&input[a..b]);
                offsets.push(data.len() as i64);
            }
            out.lines.push(this);
            bounds.clear();
        };
    each_of3(input, sep, b'\n', b'\r', |p| {
        if p == skip_lf && input[p] == b'\n' {
            start = p + 1;
            field = p + 1;
            return;
        }
        bounds.push((field, p));
        field = p + 1;
        if input[p] != sep {
            end_line(&mut out, &mut bounds, start, p);
            if input[p] == b'\r' {
                skip_lf = p + 1;
            }
            start = p + 1;
        }
    });
    if start < input.len() {
        bounds.push((field, input.len()));
        end_line(&mut out, &mut bounds, start, input.len());
    }
    if out.data.is_empty() {
        out.data = vec![Vec::new(); out.ncols];
        out.offsets = vec![vec![0i64]; out.ncols];
    }
    out
}

/// `split` for any separator and quoting.
fn split_general(input: &[u8], first_line: u64, opts: &SplitOptions) -> Split {
    let finder = (opts.sep.len() > 1).then(|| memmem::Finder::new(&opts.sep));
    let mut out = Split {
        ncols: opts.expected.unwrap_or(0),
        ..Split::default()
    };
    let mut fields = Vec::new();
    let mut pos = 0usize;
    let mut line_no = first_line;
    while pos < input.len() {
        // `\n`, `\r\n` and a lone `\r` each end a line.
        let (end, next) = crate::core::text::next_line(input, pos);
        let line = &input[pos..end];
        let raw = (pos, end);
        pos = next;
        let this = line_no;
        line_no += 1;
        out.lines_seen += 1;
        if line.iter().all(|&b| b == b' ' || b == b'\t') && !opts.sep.is_empty() {
            out.blank_lines += 1;
            continue;
        }
        let mut raw = raw;
        let mut split = split_line(line, &opts.sep, finder.as_ref(), opts.quote, &mut fields);
        if split == Err(OPEN_QUOTE) {
            // A quoted field may hold line breaks: the record may go on over the next lines.
            match longer_record(input, raw.0, pos, &out, opts, finder.as_ref(), &mut fields) {
                Longer::Record { end, next, lines } => {
                    raw = (raw.0, end);
                    pos = next;
                    line_no += lines - 1;
                    out.lines_seen += lines - 1;
                    split = Ok(());
                }
                Longer::Open => {
                    // Its end is in the text still to come: left for the next call.
                    out.lines_seen -= 1;
                    out.open_tail = Some(raw.0);
                    break;
                }
                Longer::Not => {}
            }
        }
        if let Err(reason) = split {
            let reason = if reason == OPEN_QUOTE {
                "bad_quote"
            } else {
                reason
            };
            out.rejects.push(Reject {
                line: this,
                reason,
                detail: "a quoted field is not closed, or text follows its closing quote".into(),
                start: raw.0,
                end: raw.1,
            });
            continue;
        }
        if !out.takes(fields.len(), this, raw) {
            continue;
        }
        if out.data.is_empty() {
            out.data = vec![Vec::new(); out.ncols];
            out.offsets = vec![vec![0i64]; out.ncols];
        }
        for (c, f) in fields.iter().enumerate() {
            out.data[c].extend_from_slice(f);
            out.offsets[c].push(out.data[c].len() as i64);
        }
        out.lines.push(this);
    }
    if out.data.is_empty() {
        out.data = vec![Vec::new(); out.ncols];
        out.offsets = vec![vec![0i64]; out.ncols];
    }
    out
}

enum Longer {
    /// A record of the expected field count ends at `end` (the next line begins at `next`),
    /// `lines` lines in all; its fields are in `fields`.
    Record { end: usize, next: usize, lines: u64 },
    /// Still open at the end of the input, within the limits, and more input follows.
    Open,
    /// Not a record over several lines: the first line is judged alone.
    Not,
}

/// Whether the line at `start`, whose quoted field is still open at its end (the next line
/// begins at `next`), goes on over the following lines into one record: its quoted field
/// closes within `RECORD_LINES` lines and `RECORD_BYTES` bytes, none of the lines it would take
/// is a record of its own, and the record then splits cleanly into the field count already set
/// (a header or earlier rows).
fn longer_record<'a>(
    input: &'a [u8],
    start: usize,
    mut next: usize,
    out: &Split,
    opts: &SplitOptions,
    finder: Option<&memmem::Finder<'_>>,
    fields: &mut Vec<std::borrow::Cow<'a, [u8]>>,
) -> Longer {
    // (A first line already past the byte limit can only grow: judged alone at once, not
    // carried to the next call.)
    if out.ncols == 0 || opts.quote.is_none() || next - start > RECORD_BYTES {
        return Longer::Not;
    }
    let mut lines = 1u64;
    let mut alone = Vec::new();
    loop {
        if next >= input.len() {
            return if opts.more_follows {
                Longer::Open
            } else {
                Longer::Not
            };
        }
        let (end, after) = crate::core::text::next_line(input, next);
        lines += 1;
        if lines > RECORD_LINES || end - start > RECORD_BYTES {
            return Longer::Not;
        }
        // A line that is a whole record on its own is never taken into the one before: a
        // stray quote must not make a row vanish into its neighbour.
        let own = split_line(&input[next..end], &opts.sep, finder, opts.quote, &mut alone);
        if own.is_ok() && alone.len() == out.ncols {
            return Longer::Not;
        }
        next = after;
        match split_line(&input[start..end], &opts.sep, finder, opts.quote, fields) {
            Err(OPEN_QUOTE) => continue,
            Err(_) => return Longer::Not,
            Ok(()) => {
                // (No line break can fall outside the quotes: each line end before this one
                // left a quoted field open, and this one ends the record.)
                return if fields.len() == out.ncols {
                    Longer::Record {
                        end,
                        next: after,
                        lines,
                    }
                } else {
                    Longer::Not
                };
            }
        }
    }
}

/// As `split`, the work cut at line feeds into `pieces` stretches split in parallel and joined
/// in order: the same result. A cut is only ever made after a `\n`, so a `\r\n` stays whole;
/// a record whose quoted field holds line breaks across a cut sends the input to one pass.
/// Needs `expected` (each piece must agree on the field count); without it, or for a small
/// input, this is `split`.
pub fn split_parallel(input: &[u8], first_line: u64, opts: &SplitOptions, pieces: usize) -> Split {
    const MIN_PIECE: usize = 1 << 20;
    let pieces = pieces.min(input.len() / MIN_PIECE);
    if opts.expected.is_none() || pieces < 2 {
        return split(input, first_line, opts);
    }
    let mut cuts = vec![0usize];
    for k in 1..pieces {
        let target = (input.len() * k / pieces).max(*cuts.last().unwrap_or(&0));
        match memchr::memchr(b'\n', &input[target..]) {
            Some(i) if target + i + 1 < input.len() => cuts.push(target + i + 1),
            _ => break,
        }
    }
    cuts.push(input.len());
    cuts.dedup();
    use rayon::prelude::*;
    let last = cuts.len() - 2;
    let parts: Vec<Split> = cuts
        .par_windows(2)
        .enumerate()
        .map(|(i, w)| {
            let piece = SplitOptions {
                more_follows: i < last || opts.more_follows,
                ..opts.clone()
            };
            split(&input[w[0]..w[1]], 0, &piece)
        })
        .collect();
    if parts[..last].iter().any(|p| p.open_tail.is_some()) {
        // A record with line breaks spans a cut: the stretches after it were split from the
        // middle of it. Rare; split the whole input in one pass instead.
        return split(input, first_line, opts);
    }
    let open_tail = parts[last].open_tail.map(|t| t + cuts[last]);
    let ncols = opts.expected.unwrap_or(0);
    let rows: usize = parts.iter().map(|p| p.lines.len()).sum();
    let mut out = Split {
        ncols,
        data: (0..ncols)
            .map(|c| Vec::with_capacity(parts.iter().map(|p| p.data[c].len()).sum()))
            .collect(),
        offsets: (0..ncols)
            .map(|_| {
                let mut v = Vec::with_capacity(rows + 1);
                v.push(0i64);
                v
            })
            .collect(),
        lines: Vec::with_capacity(rows),
        ..Split::default()
    };
    let mut line0 = first_line;
    for (p, &start) in parts.into_iter().zip(&cuts) {
        for c in 0..ncols {
            let base = out.data[c].len() as i64;
            out.data[c].extend_from_slice(&p.data[c]);
            out.offsets[c].extend(p.offsets[c][1..].iter().map(|o| o + base));
        }
        out.lines.extend(p.lines.iter().map(|l| l + line0));
        out.rejects.extend(p.rejects.into_iter().map(|r| Reject {
            line: r.line + line0,
            start: r.start + start,
            end: r.end + start,
            ..r
        }));
        out.blank_lines += p.blank_lines;
        out.lines_seen += p.lines_seen;
        line0 += p.lines_seen;
    }
    out.open_tail = open_tail;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic random source for the generated texts.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn each_of3_finds_what_memchr3_iter_finds() {
        // Lengths around the 64-byte blocks, bytes from a small alphabet (dense matches), and
        // matches at block edges and the last byte.
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for len in (0..300).chain([1023, 1024, 1025]) {
            for dense in [2u64, 5, 40] {
                let text: Vec<u8> = (0..len)
                    .map(|_| [b',', b'\n', b'\r', b'a', 0xFF][(next() % dense).min(4) as usize])
                    .collect();
                let mut got = Vec::new();
                each_of3(&text, b',', b'\n', b'\r', |p| got.push(p));
                let want: Vec<usize> = memchr::memchr3_iter(b',', b'\n', b'\r', &text).collect();
                assert_eq!(got, want, "len {len}, dense {dense}");
            }
        }
    }

    fn col(s: &Split, c: usize) -> Vec<String> {
        let o = &s.offsets[c];
        o.windows(2)
            .map(|w| String::from_utf8_lossy(&s.data[c][w[0] as usize..w[1] as usize]).into_owned())
            .collect()
    }

    #[test]
    fn commas_quotes_and_rejects() {
        let text = b"1,\"a,b\",x\r\n2,c,y\n\n3,d\n4,\"e\"\"f\",z\n5,\"open,q\n6,g,h";
        let s = split(
            text,
            10,
            &SplitOptions {
                sep: b",".to_vec(),
                quote: Some(b'"'),
                expected: None,
                more_follows: false,
            },
        );
        assert_eq!(s.ncols, 3);
        assert_eq!(col(&s, 1), ["a,b", "c", "e\"f", "g"]);
        assert_eq!(s.lines, [10, 11, 14, 16]);
        assert_eq!(s.blank_lines, 1);
        let r: Vec<_> = s.rejects.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(r, [(13, "field_count"), (15, "bad_quote")]);
        assert_eq!(&text[s.rejects[0].start..s.rejects[0].end], b"3,d");
        assert_eq!(s.lines_seen, 7);
    }

    #[test]
    fn multi_byte_separators_and_single_column() {
        let s = split(
            "张三----110105194912310021----13800138000\n李四----x----y".as_bytes(),
            1,
            &SplitOptions {
                sep: b"----".to_vec(),
                quote: None,
                expected: Some(3),
                more_follows: false,
            },
        );
        assert_eq!(col(&s, 0), ["张三", "李四"]);
        assert_eq!(col(&s, 2), ["13800138000", "y"]);
        let s = split(
            b"a\n\nb\rc\r\nd",
            1,
            &SplitOptions {
                sep: vec![],
                quote: None,
                expected: None,
                more_follows: false,
            },
        );
        assert_eq!(col(&s, 0), ["a", "", "b", "c", "d"]);
        assert_eq!(s.lines, [1, 2, 3, 4, 5]);
    }

    /// The one-pass path for unquoted text gives what the general splitter gives, on text
    /// full of what breaks splitters: blank and whitespace lines, CR, LF and CRLF ends, empty
    /// fields, short and long rows, a missing last line end, non-ASCII text.
    #[test]
    fn the_plain_path_is_the_general_split() {
        let alphabet: [&[u8]; 10] = [
            b"a",
            b"7",
            b",",
            b",",
            b" ",
            b"\t",
            b"\n",
            b"\r",
            b"\r\n",
            "张".as_bytes(),
        ];
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for case in 0..4000 {
            let len = (next() % 60) as usize;
            let mut text = Vec::new();
            for _ in 0..len {
                text.extend_from_slice(alphabet[(next() % 10) as usize]);
            }
            for (sep, expected) in [
                (b',', None),
                (b',', Some(2)),
                (b'\t', None),
                (b' ', Some(3)),
            ] {
                for quote in [None, Some(b'"')] {
                    let opts = SplitOptions {
                        sep: vec![sep],
                        quote,
                        expected,
                        more_follows: false,
                    };
                    let fast = split(&text, 3, &opts);
                    let slow = split_general(&text, 3, &opts);
                    let what = format!(
                        "case {case}: {:?} sep {sep}",
                        String::from_utf8_lossy(&text)
                    );
                    assert_eq!(fast.ncols, slow.ncols, "{what}");
                    assert_eq!(fast.data, slow.data, "{what}");
                    assert_eq!(fast.offsets, slow.offsets, "{what}");
                    assert_eq!(fast.lines, slow.lines, "{what}");
                    assert_eq!(fast.rejects, slow.rejects, "{what}");
                    assert_eq!(
                        (fast.blank_lines, fast.lines_seen),
                        (slow.blank_lines, slow.lines_seen),
                        "{what}"
                    );
                }
            }
        }
    }

    fn opts3(more_follows: bool) -> SplitOptions {
        SplitOptions {
            sep: b",".to_vec(),
            quote: Some(b'"'),
            expected: Some(3),
            more_follows,
        }
    }

    #[test]
    fn a_quoted_field_may_hold_line_breaks() {
        let text = b"1,\"a\nb\",x\n2,c,y\r\n3,\"p\r\nq\"\"\nr\",z\n4,\"open\n5,d,e\n";
        let s = split(text, 2, &opts3(false));
        assert_eq!(col(&s, 1), ["a\nb", "c", "p\r\nq\"\nr", "d"]);
        assert_eq!(s.lines, [2, 4, 5, 9]);
        // `4,"open` never closes into a record: judged alone, and line 9 is read as before.
        let r: Vec<_> = s.rejects.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(r, [(8, "bad_quote")]);
        assert_eq!((s.lines_seen, s.open_tail), (8, None));
        // A closing quote that leaves the wrong field count, or text after it, is not a
        // record: each line is judged alone.
        for bad in [
            &b"1,\"a\nb\"\n"[..],
            b"1,\"a\nb\",x,extra\n",
            b"1,\"a\nb\"c,x\n",
        ] {
            let s = split(bad, 1, &opts3(false));
            let what = String::from_utf8_lossy(bad);
            assert!(s.data.iter().all(|d| !d.contains(&b'\n')), "{what}");
            assert_eq!(
                (s.rejects[0].line, s.rejects[0].reason),
                (1, "bad_quote"),
                "{what}"
            );
        }
        // A stray quote before a separator on the next line must not take that line's row.
        let s = split(b"1,\"open\n2,name\",y\n", 1, &opts3(false));
        assert_eq!(
            (col(&s, 0), s.lines.clone()),
            (vec!["2".to_string()], vec![2])
        );
        assert_eq!((s.rejects[0].line, s.rejects[0].reason), (1, "bad_quote"));
        // At most RECORD_LINES lines: a stray quote cannot swallow what follows.
        let cell = |lines: u64| {
            let mut t = b"1,\"a".to_vec();
            for i in 2..lines {
                t.extend_from_slice(format!("\nline {i}").as_bytes());
            }
            t.extend_from_slice(b"\nend\",x\n");
            t
        };
        let s = split(&cell(RECORD_LINES), 1, &opts3(false));
        assert_eq!(
            (s.lines.as_slice(), s.lines_seen),
            (&[1u64][..], RECORD_LINES)
        );
        let s = split(&cell(RECORD_LINES + 1), 1, &opts3(false));
        assert!(s.lines.is_empty());
        assert_eq!(s.rejects.len() as u64, RECORD_LINES + 1);
        assert_eq!((s.rejects[0].line, s.rejects[0].reason), (1, "bad_quote"));
        // A first line past the byte limit is judged at once, not left open for the next call.
        let mut big = b"1,\"".to_vec();
        big.resize(RECORD_BYTES + 10, b'a');
        big.push(b'\n');
        let s = split(&big, 1, &opts3(true));
        assert_eq!((s.open_tail, s.rejects.len()), (None, 1));
        // With more to come, a record still open at the end is left for the next call.
        let s = split(b"1,a,b\n2,\"x\ny", 1, &opts3(true));
        assert_eq!(
            (s.lines.as_slice(), s.open_tail, s.lines_seen),
            (&[1u64][..], Some(6), 1)
        );
    }

    /// Splitting a text in chunks cut after line feeds — each with `more_follows`, the open
    /// tail carried in front of the next, the last tail alone without — gives what one pass
    /// over the whole text gives, on text of quoted fields with line breaks in them, stray and
    /// doubled quotes, all line ends, blank lines and short rows; and so does the parallel split.
    #[test]
    fn records_over_several_lines_split_the_same_in_any_chunks() {
        let alphabet: [&[u8]; 12] = [
            b"a",
            b"7",
            b",",
            b",",
            b"\"",
            b"\"",
            b"\"\"",
            b" ",
            b"\n",
            b"\r\n",
            b"\r",
            "张".as_bytes(),
        ];
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        type View = (
            Vec<u64>,
            Vec<Vec<Vec<u8>>>,
            Vec<(u64, &'static str, Vec<u8>)>,
            u64,
            u64,
        );
        fn view(parts: &[(&Split, &[u8])]) -> View {
            let mut v: View = (vec![], vec![vec![]; 3], vec![], 0, 0);
            for (s, input) in parts {
                v.0.extend(&s.lines);
                for c in 0..3 {
                    if let (Some(o), Some(d)) = (s.offsets.get(c), s.data.get(c)) {
                        v.1[c].extend(
                            o.windows(2)
                                .map(|w| d[w[0] as usize..w[1] as usize].to_vec()),
                        );
                    }
                }
                v.2.extend(
                    s.rejects
                        .iter()
                        .map(|r| (r.line, r.reason, input[r.start..r.end].to_vec())),
                );
                v.3 += s.blank_lines;
                v.4 += s.lines_seen;
            }
            v
        }
        let mut multi = 0;
        for case in 0..3000 {
            let mut text = Vec::new();
            for _ in 0..(next() % 120) {
                text.extend_from_slice(alphabet[(next() % 12) as usize]);
            }
            let whole = split(&text, 1, &opts3(false));
            assert_eq!(whole.open_tail, None);
            let want = view(&[(&whole, &text[..])]);
            multi += want
                .1
                .iter()
                .flatten()
                .filter(|v| v.contains(&b'\n'))
                .count();
            let lfs: Vec<usize> = (0..text.len())
                .filter(|&i| text[i] == b'\n')
                .map(|i| i + 1)
                .collect();
            let mut cuts: Vec<usize> = lfs
                .into_iter()
                .filter(|_| next().is_multiple_of(3))
                .collect();
            cuts.push(text.len());
            let mut owned: Vec<(Split, Vec<u8>)> = Vec::new();
            let (mut from, mut line, mut tail) = (0usize, 1u64, Vec::new());
            for &c in &cuts {
                let mut input = std::mem::take(&mut tail);
                input.extend_from_slice(&text[from..c]);
                from = c;
                let s = split(&input, line, &opts3(true));
                line += s.lines_seen;
                if let Some(t) = s.open_tail {
                    tail = input[t..].to_vec();
                }
                owned.push((s, input));
            }
            if !tail.is_empty() {
                let s = split(&tail, line, &opts3(false));
                owned.push((s, tail));
            }
            let parts: Vec<(&Split, &[u8])> = owned.iter().map(|(s, i)| (s, &i[..])).collect();
            assert_eq!(
                view(&parts),
                want,
                "case {case}: {:?} cut at {cuts:?}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(
            multi > 100,
            "only {multi} values with line breaks: the test is too weak"
        );
    }

    /// `split_parallel` in 2, 3 and 7 pieces gives `one`, the split in one pass.
    fn same_in_pieces(input: &[u8], opts: &SplitOptions, one: &Split) {
        for pieces in [2, 3, 7] {
            let par = split_parallel(input, 5, opts, pieces);
            assert_eq!(par.lines, one.lines);
            assert_eq!(par.data, one.data);
            assert_eq!(par.offsets, one.offsets);
            assert_eq!(par.rejects, one.rejects);
            assert_eq!(par.open_tail, one.open_tail);
            assert_eq!(
                (par.blank_lines, par.lines_seen),
                (one.blank_lines, one.lines_seen)
            );
        }
    }

    #[test]
    fn parallel_splitting_sees_records_over_several_lines_across_its_cuts() {
        let mut text = Vec::new();
        for i in 0..150_000 {
            if i % 3 == 0 {
                text.extend_from_slice(format!("{i},\"two\nlines {i}\",v\n").as_bytes());
            } else {
                text.extend_from_slice(format!("{i},q,v{i}\r\n").as_bytes());
            }
        }
        let whole = text.len();
        text.extend_from_slice(b"x,\"open\nrecord");
        for (more, end) in [(false, whole), (false, text.len()), (true, text.len())] {
            let opts = SplitOptions {
                more_follows: more,
                ..opts3(false)
            };
            let input = &text[..end];
            let one = split(input, 5, &opts);
            same_in_pieces(input, &opts, &one);
            let open = end > whole;
            assert_eq!(one.rejects.len(), if open && !more { 2 } else { 0 });
            assert_eq!(one.open_tail, (open && more).then_some(whole));
            assert_eq!(one.lines.len(), 150_000);
        }
    }

    #[test]
    fn parallel_splitting_is_the_same_split() {
        let mut text = Vec::new();
        for i in 0..200_000 {
            match i % 997 {
                0 => text.extend_from_slice(b"\r\n"),       // blank (CRLF)
                1 => text.extend_from_slice(b"x,\"open\n"), // bad quote
                2 => text.extend_from_slice(format!("{i},too,many,fields\r").as_bytes()),
                _ => text.extend_from_slice(format!("{i},\"q,{i}\",v{i}\r\n").as_bytes()),
            }
        }
        let opts = SplitOptions {
            sep: b",".to_vec(),
            quote: Some(b'"'),
            expected: Some(3),
            more_follows: false,
        };
        let one = split(&text, 5, &opts);
        same_in_pieces(&text, &opts, &one);
        assert!(one.rejects.len() > 300 && one.blank_lines > 100);
    }
}
