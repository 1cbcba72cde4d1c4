//! Splitting delimited text into columns, with the line number of every row and every row that
//! cannot be split reported, never dropped. The caller (Python's reader) has already decoded the
//! file to UTF-8 and hands over whole lines; this never opens a file.
//!
//! Separators may be several bytes (`----`, ` # `); fields may be quoted with a quote byte
//! (doubled inside to stand for itself). A line whose field count differs from the header's is
//! rejected as `field_count` (the 2013 hotel dump's unquoted commas in addresses look like this);
//! a quote that is not closed on its line is `bad_quote`. Blank lines are counted, not rows.

use memchr::memmem;

#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// Empty: no splitting (one value per line).
    pub sep: Vec<u8>,
    pub quote: Option<u8>,
    /// Fields per row; `None` takes the first non-blank line's count.
    pub expected: Option<usize>,
}

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
    /// Lines seen (including blank and rejected ones).
    pub lines_seen: u64,
}

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
            // Quoted field: up to the closing quote; a doubled quote stands for itself.
            let mut value = Vec::new();
            let mut i = 1;
            loop {
                match memchr::memchr(q, &rest[i..]) {
                    None => return Err("bad_quote"),
                    Some(k) => {
                        value.extend_from_slice(&rest[i..i + k]);
                        i += k + 1;
                        if rest.get(i) == Some(&q) {
                            value.push(q);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            fields.push(Cow::Owned(value));
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
        if let Err(reason) = split_line(line, &opts.sep, finder.as_ref(), opts.quote, &mut fields) {
            out.rejects.push(Reject {
                line: this,
                reason,
                detail: "a quoted field is not closed, or text follows its closing quote".into(),
                start: raw.0,
                end: raw.1,
            });
            continue;
        }
        if out.ncols == 0 {
            out.ncols = fields.len();
        }
        if fields.len() != out.ncols {
            out.rejects.push(Reject {
                line: this,
                reason: "field_count",
                detail: format!("{} fields, expected {}", fields.len(), out.ncols),
                start: raw.0,
                end: raw.1,
            });
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

#[cfg(test)]
mod tests {
    use super::*;

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
            },
        );
        assert_eq!(col(&s, 0), ["a", "", "b", "c", "d"]);
        assert_eq!(s.lines, [1, 2, 3, 4, 5]);
    }
}
