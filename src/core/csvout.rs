//! Rows of a CSV file written as Python's `csv.writer` writes them (the default dialect:
//! `,` between fields, `"` around a field that needs it with inner quotes doubled, `\r\n`
//! after each row), so a hits file made in one bulk call reads — byte for byte — as the one
//! the Python loop wrote.

use super::bulk::{Item, Values};

/// Append `s` as one field: quoted when it holds `,`, `"`, `\r` or `\n` (`QUOTE_MINIMAL`: the
/// delimiter, the quote character, and the characters of the line terminator).
pub fn push_field(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for (k, part) in s.split('"').enumerate() {
        if k > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
}

/// `b` as Python's `b.decode("utf-8", "backslashreplace")` gives it: valid UTF-8 as it is,
/// every byte of an invalid sequence as `\xNN` (lower-case hex). Rust's and Python's decoders
/// agree on what is invalid (both follow Unicode's "maximal subpart" practice), and since
/// every byte of an invalid stretch is replaced on its own, how the stretch is cut into
/// errors does not matter.
pub fn push_backslashreplaced(out: &mut String, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for &x in chunk.invalid() {
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(x >> 4)]));
            out.push(char::from(HEX[usize::from(x & 15)]));
        }
    }
}

/// A column value that is not text (a number, say): the caller formats such columns itself.
#[derive(Debug, PartialEq, Eq)]
pub struct NotText {
    pub column: usize,
    pub row: usize,
}

/// The fields every row has in the same places: `before` the line number, and `between` it
/// and the label.
#[derive(Default)]
pub struct Fixed<'a> {
    pub before: &'a [String],
    pub between: &'a [String],
}

/// Row `i` is `fixed.before`, `lines[i]`, `fixed.between`, `labels[label_at[i]]`, then the
/// columns' `i`-th values (a missing value as an empty field, bytes as
/// `push_backslashreplaced`), each row ended by `\r\n`. Every column has `lines.len()` values
/// and every `label_at` indexes `labels` (checked by the caller).
pub fn rows<V: Values>(
    lines: &[u64],
    label_at: &[u32],
    labels: &[String],
    columns: &[V],
    fixed: &Fixed<'_>,
) -> Result<String, NotText> {
    let (mut head, mut mid) = (String::new(), String::from(","));
    for f in fixed.before {
        push_field(&mut head, f);
        head.push(',');
    }
    for f in fixed.between {
        push_field(&mut mid, f);
        mid.push(',');
    }
    let per_row = 16 + head.len() + mid.len() + 24 * columns.len();
    let mut out = String::with_capacity(lines.len() * per_row);
    let (mut scratch, mut text) = (String::new(), String::new());
    for (i, (&line, &label)) in lines.iter().zip(label_at).enumerate() {
        out.push_str(&head);
        out.push_str(itoa(line, &mut [0u8; 20]));
        out.push_str(&mid);
        push_field(&mut out, &labels[label as usize]);
        for (column, col) in columns.iter().enumerate() {
            out.push(',');
            col.with_item(i, &mut scratch, |item| match item {
                Item::Str(s) => {
                    push_field(&mut out, s);
                    Ok(())
                }
                Item::Bytes(b) => {
                    text.clear();
                    push_backslashreplaced(&mut text, b);
                    push_field(&mut out, &text);
                    Ok(())
                }
                Item::Null => Ok(()),
                Item::NotText => Err(NotText { column, row: i }),
            })?;
        }
        out.push_str("\r\n");
    }
    Ok(out)
}

fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bulk::Packed;

    #[test]
    fn fields_are_quoted_as_python_csv_quotes_them() {
        let f = |s: &str| {
            let mut o = String::new();
            push_field(&mut o, s);
            o
        };
        assert_eq!(f("张三"), "张三");
        assert_eq!(f(""), "");
        assert_eq!(f("a,b"), "\"a,b\"");
        assert_eq!(f("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(f("x\ny"), "\"x\ny\"");
        assert_eq!(f("x\r"), "\"x\r\"");
        assert_eq!(f(" lead;tab\t"), " lead;tab\t");
    }

    #[test]
    fn bytes_read_as_backslashreplace_reads_them() {
        let f = |b: &[u8]| {
            let mut o = String::new();
            push_backslashreplaced(&mut o, b);
            o
        };
        assert_eq!(f("张".as_bytes()), "张");
        assert_eq!(f(b"\xd5\xc5\xc8\xfd"), "\\xd5\\xc5\\xc8\\xfd"); // GB18030 张三
        assert_eq!(f(b"a\xe5\xbcb"), "a\\xe5\\xbcb"); // a character cut short
        assert_eq!(f(b"\xed\xa0\x80"), "\\xed\\xa0\\x80"); // an encoded surrogate
    }

    #[test]
    fn rows_join_line_label_and_columns() {
        let mut a = Packed::with_capacity(3, 16);
        a.push_str("1,2");
        a.push_null();
        a.push_bytes(b"\xff");
        let labels = ["cn_ric".to_string(), "cn_ric+cn_mobile".to_string()];
        let lines = [7, 10, 12_345_678_901];
        let got = rows(
            &lines,
            &[1, 0, 0],
            &labels,
            std::slice::from_ref(&a),
            &Fixed::default(),
        )
        .unwrap();
        assert_eq!(
            got,
            "7,cn_ric+cn_mobile,\"1,2\"\r\n10,cn_ric,\r\n12345678901,cn_ric,\\xff\r\n"
        );
        let (file, col) = (["a,b.csv".to_string()], ["手机".to_string(), String::new()]);
        let fixed = Fixed {
            before: &file,
            between: &col,
        };
        let got = rows(&lines[..1], &[0], &labels, std::slice::from_ref(&a), &fixed).unwrap();
        assert_eq!(got, "\"a,b.csv\",7,手机,,cn_ric,\"1,2\"\r\n");
        let mut n = Packed::with_capacity(1, 0);
        n.push_not_text();
        assert_eq!(
            rows(&[1], &[0], &labels, &[n], &Fixed::default()),
            Err(NotText { column: 0, row: 0 })
        );
    }
}
