//! JSON lines read the way `pi_match.io.jsonl` reads them, for the lines that need nothing
//! unusual: a flat object whose values are strings, numbers, booleans or null, with no key
//! twice. Each such line's chosen keys become text exactly as `jsonl.to_text(json.loads(line)
//! .get(key))` gives it; every other line (not an object, not JSON, nested values, a lone
//! surrogate escape, a repeated key, whitespace JSON does not know) is left to Python, which
//! decides it — a reject or an error — as before.

use std::borrow::Cow;

/// What became of a line.
pub const ROW: u8 = 0;
pub const BLANK: u8 = 1;
pub const PYTHON: u8 = 2;

/// One column's values: `data[offsets[i]..offsets[i + 1]]`, `valid[i]` false for a missing
/// value (null or an absent key).
pub struct TextColumn {
    pub offsets: Vec<i64>,
    pub data: Vec<u8>,
    pub valid: Vec<bool>,
}

/// Every line's status, and each of `keys`' values on every line (a line not `ROW` has none).
/// Stretches of lines are read on every thread and joined in order.
pub fn read(lines: &[&str], keys: &[&str]) -> (Vec<u8>, Vec<TextColumn>) {
    use rayon::prelude::*;
    const STRETCH: usize = 8192;
    if lines.len() <= STRETCH {
        return read_stretch(lines, keys);
    }
    let parts: Vec<(Vec<u8>, Vec<TextColumn>)> = lines
        .par_chunks(STRETCH)
        .map(|l| read_stretch(l, keys))
        .collect();
    let mut status = Vec::with_capacity(lines.len());
    let mut cols: Vec<TextColumn> = keys
        .iter()
        .map(|_| TextColumn {
            offsets: Vec::with_capacity(lines.len() + 1),
            data: Vec::new(),
            valid: Vec::with_capacity(lines.len()),
        })
        .collect();
    cols.iter_mut().for_each(|c| c.offsets.push(0));
    for (st, part) in parts {
        status.extend(st);
        for (c, p) in cols.iter_mut().zip(part) {
            let base = c.data.len() as i64;
            c.offsets.extend(p.offsets[1..].iter().map(|o| o + base));
            c.data.extend(p.data);
            c.valid.extend(p.valid);
        }
    }
    (status, cols)
}

fn read_stretch<'a>(lines: &[&'a str], keys: &[&str]) -> (Vec<u8>, Vec<TextColumn>) {
    let mut cols: Vec<TextColumn> = keys
        .iter()
        .map(|_| TextColumn {
            offsets: vec![0],
            data: Vec::new(),
            valid: Vec::with_capacity(lines.len()),
        })
        .collect();
    let mut status = Vec::with_capacity(lines.len());
    let mut vals: Vec<Option<Cow<'a, str>>> = vec![None; keys.len()];
    let mut seen: Vec<Cow<'a, str>> = Vec::new();
    for line in lines {
        vals.iter_mut().for_each(|v| *v = None);
        let st = if line.chars().all(char::is_whitespace) {
            BLANK
        } else if parse_line(line, keys, &mut vals, &mut seen).is_some() {
            ROW
        } else {
            PYTHON
        };
        status.push(st);
        for (c, v) in cols.iter_mut().zip(&vals) {
            match v {
                Some(s) if st == ROW => {
                    c.data.extend_from_slice(s.as_bytes());
                    c.valid.push(true);
                }
                _ => c.valid.push(false),
            }
            c.offsets.push(c.data.len() as i64);
        }
    }
    (status, cols)
}

struct P<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.at < self.b.len() && matches!(self.b[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.at) == Some(&c)).then(|| self.at += 1)
    }
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.b[self.at..].starts_with(s).then(|| self.at += s.len())
    }

    /// A JSON string, unescaped (borrowed where it has no escape); None for bad syntax or a
    /// lone surrogate.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let b: &'a [u8] = self.b;
        while let Some(&c) = b.get(self.at) {
            match c {
                b'"' => {
                    self.at += 1;
                    // (the line is text, and the cut falls on ASCII: a whole character run)
                    return std::str::from_utf8(&b[start..self.at - 1])
                        .ok()
                        .map(Cow::Borrowed);
                }
                b'\\' => break,
                0..=0x1f => return None, // (control characters must be escaped)
                _ => self.at += 1,
            }
        }
        let mut out = b[start..self.at].to_vec();
        loop {
            let c = *self.b.get(self.at)?;
            self.at += 1;
            match c {
                b'"' => return String::from_utf8(out).ok().map(Cow::Owned),
                b'\\' => {
                    let e = *self.b.get(self.at)?;
                    self.at += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                self.lit(b"\\u")?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                            } else {
                                char::from_u32(hi)? // (a lone low surrogate: None)
                            }
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return None, // (control characters must be escaped)
                _ => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.at..self.at + 4)?;
        self.at += 4;
        let s = std::str::from_utf8(h).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }

    /// A number as `to_text` shows it; None for bad syntax.
    fn number(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        self.eat(b'-');
        let int_start = self.at;
        match self.b.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                while self.b.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
            }
            _ => return None,
        }
        let int_end = self.at;
        let mut float = false;
        if self.eat(b'.').is_some() {
            float = true;
            let d = self.at;
            while self.b.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
            if self.at == d {
                return None;
            }
        }
        if matches!(self.b.get(self.at), Some(b'e' | b'E')) {
            float = true;
            self.at += 1;
            if matches!(self.b.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            let d = self.at;
            while self.b.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
            if self.at == d {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.at]).ok()?;
        if !float {
            // Python's int: any length; "-0" is 0.
            let digits = &self.b[int_start..int_end];
            return Some(if digits == b"0" {
                Cow::Borrowed("0")
            } else {
                let b: &'a [u8] = self.b;
                Cow::Borrowed(std::str::from_utf8(&b[start..self.at]).ok()?)
            });
        }
        python_float_text(text.parse::<f64>().ok()?).map(Cow::Owned)
    }
}

/// `to_text` of a Python float: an integral value below 1e15 as an int, else `f"{v:G}"`.
/// None where the two might disagree in ways not worth matching (infinities: Python's
/// `json.loads` reads `1e999` as inf, shown "INF").
fn python_float_text(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return Some(format!("{}", v as i64));
    }
    // %G: six significant digits; scientific when the exponent is < -4 or >= 6; trailing
    // zeros (and a trailing point) dropped; exponent signed, at least two digits.
    if v == 0.0 {
        return Some(if v.is_sign_negative() { "-0" } else { "0" }.into());
    }
    let sci = format!("{v:.5e}"); // d.ddddde±x, correctly rounded to 6 digits
    let (mant, exp) = sci.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).ok()?;
        let fixed = format!("{v:.decimals$}");
        return Some(trim_zeros(&fixed).into());
    }
    let mant = trim_zeros(mant);
    Some(format!(
        "{mant}E{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    ))
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Fill `vals` with `keys`' values of a flat object line; None if Python must read it.
fn parse_line<'a>(
    line: &'a str,
    keys: &[&str],
    vals: &mut [Option<Cow<'a, str>>],
    seen: &mut Vec<Cow<'a, str>>,
) -> Option<()> {
    let mut p = P {
        b: line.as_bytes(),
        at: 0,
    };
    seen.clear();
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.eat(b'}').is_none() {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            let value = match p.b.get(p.at)? {
                b'"' => Some(p.string()?),
                b't' => p.lit(b"true").map(|()| Some(Cow::Borrowed("true")))?,
                b'f' => p.lit(b"false").map(|()| Some(Cow::Borrowed("false")))?,
                b'n' => p.lit(b"null").map(|()| None)?,
                b'-' | b'0'..=b'9' => Some(p.number()?),
                _ => return None, // nested, NaN, Infinity, or not JSON
            };
            if seen.contains(&key) {
                return None; // (Python keeps the last; left to it)
            }
            if let Some(k) = keys.iter().position(|k| *k == &*key) {
                vals[k] = value;
            }
            seen.push(key);
            p.ws();
            if p.eat(b',').is_some() {
                continue;
            }
            p.eat(b'}')?;
            break;
        }
    }
    p.ws();
    (p.at == p.b.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_objects_are_read_and_the_rest_left_to_python() {
        let lines = [
            r#"{"id": "11010519491231002X", "n": 12, "ok": true, "x": null}"#,
            "   ",
            r#"{"id": "\u5f20\ud83d\ude00", "n": -0}"#,
            r#"{"id": {"a": 1}}"#,
            r#"{"id": "a", "id": "b"}"#,
            "[1, 2]",
            r#"{"id": "\udc80"}"#,
            r#"{"n": 1.5e-7, "id": 2.0}"#,
            "{}",
            r#"{"id": "x"} junk"#,
        ];
        let (st, cols) = read(&lines, &["id", "n"]);
        assert_eq!(st, [0, 1, 0, 2, 2, 2, 2, 0, 0, 2]);
        let get = |c: &TextColumn, i: usize| {
            c.valid[i].then(|| {
                String::from_utf8(c.data[c.offsets[i] as usize..c.offsets[i + 1] as usize].to_vec())
                    .unwrap()
            })
        };
        assert_eq!(get(&cols[0], 0).as_deref(), Some("11010519491231002X"));
        assert_eq!(get(&cols[1], 0).as_deref(), Some("12"));
        assert_eq!(get(&cols[0], 2).as_deref(), Some("张😀"));
        assert_eq!(get(&cols[1], 2).as_deref(), Some("0"));
        assert_eq!(get(&cols[1], 7).as_deref(), Some("1.5E-07"));
        assert_eq!(get(&cols[0], 7).as_deref(), Some("2"));
        assert_eq!((get(&cols[0], 8), get(&cols[0], 1)), (None, None));
    }

    #[test]
    fn stretches_read_on_every_thread_join_as_one_pass() {
        let forms = [
            r#"{"id": "a\"b", "n": 1}"#,
            "",
            "not json",
            r#"{"n": 2.5}"#,
            r#"{"id": "张三"}"#,
        ];
        let owned: Vec<String> = (0..20_011)
            .map(|i| match i % 7 {
                0 => format!(r#"{{"id": "{i}", "n": {i}}}"#),
                k => forms[k % forms.len()].to_string(),
            })
            .collect();
        let lines: Vec<&str> = owned.iter().map(String::as_str).collect();
        let (st, cols) = read(&lines, &["id", "n"]);
        let (st1, cols1) = read_stretch(&lines, &["id", "n"]);
        assert_eq!(st, st1);
        for (a, b) in cols.iter().zip(&cols1) {
            assert_eq!(
                (&a.offsets, &a.data, &a.valid),
                (&b.offsets, &b.data, &b.valid)
            );
        }
        assert!(st.contains(&ROW) && st.contains(&BLANK) && st.contains(&PYTHON));
    }

    #[test]
    fn floats_are_shown_as_python_shows_them() {
        for (v, want) in [
            (0.5, "0.5"),
            (123456.7, "123457"),
            (1234567.0, "1234567"),
            (1e15, "1E+15"),
            (1.5e300, "1.5E+300"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234E-05"),
            (-2.5, "-2.5"),
            (999999.5, "1E+06"),
        ] {
            assert_eq!(python_float_text(v).as_deref(), Some(want), "{v}");
        }
    }
}
