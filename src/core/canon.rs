//! Versioned canonicalisers for each identifier kind (rules in docs/FORMAT.md §2 and
//! ../shared/IDENTIFIERS.md). A canonicaliser either writes the one canonical string of a value
//! or names why the value cannot be used; it never guesses (an Excel-mangled `1.10105E+17` is
//! reported, not repaired).

use unicode_normalization::UnicodeNormalization;

/// Identifier kinds. The numeric codes are part of the file format: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    CnRic = 1,
    CnMobile = 2,
    Email = 3,
    BankCard = 4,
    Raw = 5,
}

pub const ALL_KINDS: [Kind; 5] = [
    Kind::CnRic,
    Kind::CnMobile,
    Kind::Email,
    Kind::BankCard,
    Kind::Raw,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::CnRic => "cn_ric",
            Kind::CnMobile => "cn_mobile",
            Kind::Email => "email",
            Kind::BankCard => "bank_card",
            Kind::Raw => "raw",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        ALL_KINDS.iter().copied().find(|k| k.name() == name)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        ALL_KINDS.iter().copied().find(|k| k.code() == code)
    }

    /// The newest version of this kind's canonicaliser, used unless another is asked for. A
    /// change to the rules that can change any canonical output bumps it; the version is part
    /// of the key derivation and the file header, so artefacts made under different rules
    /// never silently mix.
    pub fn canon_version(self) -> u16 {
        *self.versions().last().unwrap_or(&1)
    }

    /// Every version this pi_match implements (older ones stay selectable, so an agency on a
    /// newer release can still match a partner's artefacts made by an older one).
    pub fn versions(self) -> &'static [u16] {
        match self {
            Kind::CnRic | Kind::CnMobile | Kind::Email => &[1, 2],
            Kind::BankCard | Kind::Raw => &[1],
        }
    }

    /// The versions as text, for messages: "1, 2".
    pub fn versions_text(self) -> String {
        let v: Vec<String> = self.versions().iter().map(u16::to_string).collect();
        v.join(", ")
    }

    /// The version of generation `n`: the newest version of this kind not after `n`.
    pub fn version_of_generation(self, n: u16) -> Option<u16> {
        self.versions().iter().rev().copied().find(|&v| v <= n)
    }
}

/// A kind under one canonicaliser version: what a keyed artefact is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Canon {
    pub kind: Kind,
    pub version: u16,
}

impl Canon {
    /// `kind` at `version` (None: the newest), if this pi_match implements it.
    pub fn new(kind: Kind, version: Option<u16>) -> Result<Canon, String> {
        let version = version.unwrap_or_else(|| kind.canon_version());
        if !kind.versions().contains(&version) {
            return Err(format!(
                "{} has canonicaliser versions {}, not {version}",
                kind.name(),
                kind.versions_text()
            ));
        }
        Ok(Canon { kind, version })
    }

    pub fn canonicalize_into(
        self,
        input: &str,
        out: &mut String,
        scratch: &mut String,
    ) -> Result<(), Reason> {
        let v2 = self.version >= 2;
        match self.kind {
            Kind::CnRic => cn_ric(input, out, scratch, v2),
            Kind::CnMobile => cn_mobile(input, out, scratch, v2),
            Kind::Email => email(input, out, scratch, v2),
            Kind::BankCard => bank_card(input, out, scratch),
            Kind::Raw => raw(input, out),
        }
    }

    /// Bytes must be UTF-8; anything else is `not_text`.
    pub fn canonicalize_bytes_into(
        self,
        input: &[u8],
        out: &mut String,
        scratch: &mut String,
    ) -> Result<(), Reason> {
        match std::str::from_utf8(input) {
            Ok(s) => self.canonicalize_into(s, out, scratch),
            Err(_) => Err(Reason::NotText),
        }
    }
}

impl From<Kind> for Canon {
    /// The kind under its newest canonicaliser.
    fn from(kind: Kind) -> Canon {
        Canon {
            kind,
            version: kind.canon_version(),
        }
    }
}

/// Why a value was not used. Codes are stable (Python sees them as `REASONS[code]`); 0 means ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// Empty or only white space.
    Empty = 1,
    /// A placeholder for "no value": `-`, `--`, `NULL`, `\N`, `无`, `N/A`...
    Placeholder = 2,
    /// Not text: bytes that are not UTF-8, or a non-string object.
    NotText = 3,
    /// A character that cannot occur in this kind.
    BadChar = 4,
    BadLength = 5,
    BadChecksum = 6,
    /// The birth date inside an ID number is not a real date in 1900–2099.
    BadDate = 7,
    /// The first two digits of an ID number are not a province-level code.
    BadRegion = 8,
    /// A mobile number that does not start 13–19 (or a foreign country code).
    BadPrefix = 9,
    /// An e-mail address without exactly one `@` and a dotted domain.
    BadFormat = 10,
    /// A number Excel turned into scientific notation (`1.10105E+17`): digits are lost.
    ExcelScientific = 11,
    /// A long number Excel stored as a float and so rounded to 15 significant digits
    /// (`110105198001070000`): the digits after the 15th are zeros and the check fails.
    ExcelRounded = 12,
}

pub const ALL_REASONS: [Reason; 12] = [
    Reason::Empty,
    Reason::Placeholder,
    Reason::NotText,
    Reason::BadChar,
    Reason::BadLength,
    Reason::BadChecksum,
    Reason::BadDate,
    Reason::BadRegion,
    Reason::BadPrefix,
    Reason::BadFormat,
    Reason::ExcelScientific,
    Reason::ExcelRounded,
];

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::Placeholder => "placeholder",
            Reason::NotText => "not_text",
            Reason::BadChar => "bad_char",
            Reason::BadLength => "bad_length",
            Reason::BadChecksum => "bad_checksum",
            Reason::BadDate => "bad_date",
            Reason::BadRegion => "bad_region",
            Reason::BadPrefix => "bad_prefix",
            Reason::BadFormat => "bad_format",
            Reason::ExcelScientific => "excel_scientific",
            Reason::ExcelRounded => "excel_rounded",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        ALL_REASONS.iter().copied().find(|r| r.code() == code)
    }

    /// Missing values (empty, placeholder) are counted apart from invalid ones.
    pub fn is_missing(self) -> bool {
        matches!(self, Reason::Empty | Reason::Placeholder)
    }
}

/// Tokens that stand for "no value" in seized data, compared after NFKC and trimming,
/// ignoring ASCII case.
const PLACEHOLDERS: [&str; 9] = ["-", "--", "---", "null", "\\n", "无", "n/a", "#n/a", "none"];

fn is_placeholder(s: &str) -> bool {
    s.len() <= 4 && PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(s))
}

/// Zero-width and byte-order characters that survive NFKC and are invisible in every viewer.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2212}'
    )
}

/// NFKC then trim, repeated until stable so that the canonical form is idempotent.
fn nfkc_trim(input: &str, out: &mut String) {
    out.clear();
    if input.is_ascii() {
        out.push_str(input.trim());
        return;
    }
    out.extend(input.nfkc());
    loop {
        let trimmed = out.trim();
        if trimmed.len() == out.len() {
            return;
        }
        let again: String = trimmed.nfkc().collect();
        *out = again;
    }
}

/// Excel's rendering of a long number: `1.10105E+17`, `1.38E10`, `4E+18`.
fn is_excel_scientific(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(e) = b.iter().position(|&c| c == b'e' || c == b'E') else {
        return false;
    };
    let (mant, exp) = (&b[..e], &b[e + 1..]);
    let exp = exp.strip_prefix(b"+").unwrap_or(exp);
    let mant_ok = match mant {
        [d] => d.is_ascii_digit(),
        [d, b'.', rest @ ..] => {
            d.is_ascii_digit() && !rest.is_empty() && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    mant_ok && !exp.is_empty() && exp.len() <= 2 && exp.iter().all(u8::is_ascii_digit)
}

/// Common first steps: normalise, then classify empty / placeholder / Excel-mangled.
fn prelude(input: &str, buf: &mut String, numeric: bool) -> Result<(), Reason> {
    nfkc_trim(input, buf);
    if buf.is_empty() {
        return Err(Reason::Empty);
    }
    if is_placeholder(buf) {
        return Err(Reason::Placeholder);
    }
    if numeric && is_excel_scientific(buf) {
        return Err(Reason::ExcelScientific);
    }
    Ok(())
}

/// Canonicalise `input` as `kind` (its newest canonicaliser) into `out` (cleared first). On
/// error `out` is unspecified. `scratch` is a reusable buffer so bulk callers allocate nothing
/// per item.
pub fn canonicalize_into(
    kind: Kind,
    input: &str,
    out: &mut String,
    scratch: &mut String,
) -> Result<(), Reason> {
    Canon::from(kind).canonicalize_into(input, out, scratch)
}

/// Convenience wrapper for single values and tests.
pub fn canonicalize(kind: Kind, input: &str) -> Result<String, Reason> {
    let (mut out, mut scratch) = (String::new(), String::new());
    canonicalize_into(kind, input, &mut out, &mut scratch).map(|()| out)
}

/// `canonicalize` under a given version.
pub fn canonicalize_version(canon: Canon, input: &str) -> Result<String, Reason> {
    let (mut out, mut scratch) = (String::new(), String::new());
    canon
        .canonicalize_into(input, &mut out, &mut scratch)
        .map(|()| out)
}

/// Bytes must be UTF-8; anything else is `not_text` (decoding belongs to the reader, which
/// knows the file's encoding).
pub fn canonicalize_bytes_into(
    kind: Kind,
    input: &[u8],
    out: &mut String,
    scratch: &mut String,
) -> Result<(), Reason> {
    Canon::from(kind).canonicalize_bytes_into(input, out, scratch)
}

// ---- cn_ric ------------------------------------------------------------------------------

/// Province-level codes of GB/T 2260 plus 71 (Taiwan) and the residence-permit codes 81–83.
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

const RIC_CHECK: [u8; 11] = *b"10X98765432";
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// ISO 7064 MOD 11-2 check character of the first 17 digits (17 ASCII digits). The weights
/// (7, 9, 10, 5, …) are `2^(17−i) mod 11`, so the sum is `Σ d_i·2^(17−i)` mod 11: a
/// binary-weighted sum of the digits, made two words at a time.
pub fn ric_check_char(first17: &[u8]) -> u8 {
    let digits = |at: usize| {
        let w = u64::from_le_bytes(first17[at..at + 8].try_into().expect("8 bytes"));
        w.wrapping_sub(ASCII_ZEROS)
    };
    let last = u64::from(first17[16].wrapping_sub(b'0'));
    let sum =
        (binary_weighted8(digits(0)) << 10) + (binary_weighted8(digits(8)) << 2) + (last << 1);
    RIC_CHECK[(sum % 11) as usize]
}

/// Whether all eight bytes of `x` are ASCII digits (a byte outside `0x30..=0x39` fails one of
/// the two nibble tests; a carry out of a byte happens only from `0xFA` up, which fails the first).
#[inline]
fn digits8(x: u64) -> bool {
    const HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    x & HI == ASCII_ZEROS && x.wrapping_add(0x0606_0606_0606_0606) & HI == ASCII_ZEROS
}

/// `Σ d_i · 2^(7−i)` of eight digit values (one a byte, the first in the lowest byte): three
/// multiplications fold neighbours together, as parsing eight decimal digits at once does with
/// 10 where this has 2. Every partial sum fits its lane (at most 27, 135, 2,295).
#[inline]
fn binary_weighted8(d: u64) -> u64 {
    let pairs = (d.wrapping_mul(1 + (2 << 8)) >> 8) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul(1 + (4 << 16)) >> 16) & 0x0000_FFFF_0000_FFFF;
    (quads.wrapping_mul(1 + (16 << 32)) >> 32) & 0xFFFF_FFFF
}

/// A real (proleptic Gregorian) date. Version 1 also required 1900–2099; version 2 sets no
/// lower bound, as GB 11643-1999 sets none (people born before 1900 hold valid numbers). The
/// upper bound is fixed, never today's date: a canonical form must not depend on the day it is
/// computed.
fn is_real_date(year: u32, month: u32, day: u32, any_past_year: bool) -> bool {
    let years = if any_past_year { 1..=2099 } else { 1900..=2099 };
    if !years.contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// Excel keeps 15 significant digits of a number: a longer all-digit value whose digits past
/// the 15th are all zero is what Excel's rounding leaves. Used only for a value whose check
/// already failed, so a valid number is never relabelled.
fn excel_rounded(d: &[u8]) -> bool {
    // The zeros first: nearly every real number fails there, at its 16th character.
    d.len() > 15 && d[15..].iter().all(|&c| c == b'0') && d.iter().all(u8::is_ascii_digit)
}

/// Whether a raw value (surrounding ASCII white space ignored) has the shape Excel's rounding
/// leaves of a long number — what a reader decides by its column (README, "Excel's rounding").
pub fn looks_excel_rounded(raw: &[u8]) -> bool {
    excel_rounded(raw.trim_ascii())
}

fn digits_value(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, &c| acc * 10 + u32::from(c - b'0'))
}

/// Whether the two leading digits are a province code (a table: the hot path runs it per ID).
const IS_PROVINCE: [bool; 100] = {
    let mut t = [false; 100];
    let mut i = 0;
    while i < PROVINCES.len() {
        t[PROVINCES[i] as usize] = true;
        i += 1;
    }
    t
};

/// Region, date and check character of a cleaned number (15 or 18 ASCII digits, `X` or `x`
/// only last).
fn finish_ric(text: &str, out: &mut String, v2: bool) -> Result<(), Reason> {
    let id = text.as_bytes();
    let n = id.len();
    if !IS_PROVINCE[digits_value(&id[..2]) as usize] {
        return Err(Reason::BadRegion);
    }
    let (year, month, day) = if n == 18 {
        (
            digits_value(&id[6..10]),
            digits_value(&id[10..12]),
            digits_value(&id[12..14]),
        )
    } else {
        (
            1900 + digits_value(&id[6..8]),
            digits_value(&id[8..10]),
            digits_value(&id[10..12]),
        )
    };
    if !is_real_date(year, month, day, v2) {
        return Err(Reason::BadDate);
    }
    out.clear();
    if n == 18 {
        let last = id[17].to_ascii_uppercase();
        if ric_check_char(&id[..17]) != last {
            return Err(if excel_rounded(id) {
                Reason::ExcelRounded
            } else {
                Reason::BadChecksum
            });
        }
        // ASCII digits (checked by the callers), so this is the text as it is.
        out.push_str(&text[..17]);
        out.push(last as char);
    } else {
        // GB 11643-1989 legacy number: insert the century, then compute the check character.
        let mut full = [0u8; 17];
        full[..6].copy_from_slice(&id[..6]);
        full[6..8].copy_from_slice(b"19");
        full[8..].copy_from_slice(&id[6..15]);
        out.extend(full.iter().map(|&b| b as char));
        out.push(ric_check_char(&full) as char);
    }
    Ok(())
}

/// The clean 18-character shape (17 ASCII digits, then a digit, `X` or `x`), told a word at a
/// time: `None` for any other input, which takes the general path.
#[inline]
fn ric_fast(input: &str, out: &mut String, v2: bool) -> Option<Result<(), Reason>> {
    let b: &[u8; 18] = input.as_bytes().try_into().ok()?;
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let last = b[17];
    let clean = digits8(word(0))
        && digits8(word(8))
        && b[16].is_ascii_digit()
        && (last.is_ascii_digit() || last == b'X' || last == b'x');
    clean.then(|| finish_ric(input, out, v2))
}

fn cn_ric(input: &str, out: &mut String, buf: &mut String, v2: bool) -> Result<(), Reason> {
    // Fast path for the common clean shape: 17 ASCII digits and a digit or X.
    if let Some(r) = ric_fast(input, out, v2) {
        return r;
    }
    prelude(input, buf, true)?;
    let mut id = [0u8; 18];
    let mut n = 0usize;
    let mut bad_char = false;
    for c in buf.chars() {
        if c.is_whitespace() || is_dash(c) || is_invisible(c) {
            continue;
        }
        let b = match c {
            '0'..='9' | 'X' => c as u8,
            'x' => b'X',
            _ => {
                bad_char = true;
                continue;
            }
        };
        if n < id.len() {
            id[n] = b;
        }
        n += 1;
    }
    if bad_char {
        return Err(Reason::BadChar);
    }
    if n != 15 && n != 18 {
        return Err(Reason::BadLength);
    }
    let id = &id[..n];
    // X is only ever the check character of an 18-character number.
    let body = if n == 18 { &id[..17] } else { id };
    if body.contains(&b'X') {
        return Err(Reason::BadChar);
    }
    // ASCII, as collected above.
    match std::str::from_utf8(id) {
        Ok(id) => finish_ric(id, out, v2),
        Err(_) => Err(Reason::BadChar),
    }
}

// ---- cn_mobile ---------------------------------------------------------------------------

fn mobile_digits(d: &[u8], out: &mut String) -> Result<(), Reason> {
    if d.len() != 11 {
        return Err(Reason::BadLength);
    }
    if d[0] != b'1' || !(b'3'..=b'9').contains(&d[1]) {
        return Err(Reason::BadPrefix);
    }
    out.clear();
    out.push_str("+86");
    // ASCII digits (checked by the callers): the text as it is, pushed at once.
    out.push_str(std::str::from_utf8(d).unwrap_or_default());
    Ok(())
}

/// IP long-distance access codes dialled before a mobile number (version 2 strips them):
/// 17951 and 12593 (China Mobile), 17911 and 10193 (China Unicom), 17909 (China Telecom),
/// 96688 (China Tietong / China Mobile fixed network).
const IP_PREFIXES: [&[u8]; 6] = [b"17951", b"12593", b"17911", b"10193", b"17909", b"96688"];

fn cn_mobile(input: &str, out: &mut String, buf: &mut String, v2: bool) -> Result<(), Reason> {
    let b = input.as_bytes();
    if b.len() == 11 && b.iter().all(u8::is_ascii_digit) {
        return mobile_digits(b, out);
    }
    prelude(input, buf, true)?;
    let mut digits = [0u8; 24];
    let mut n = 0usize;
    let mut plus = false;
    let mut bad_char = false;
    for c in buf.chars() {
        match c {
            _ if c.is_whitespace() || is_dash(c) || is_invisible(c) => {}
            '(' | ')' | '[' | ']' => {}
            // Version 2: dots as separators (138.0867.9572); Excel's 1.38E+10 was caught above.
            '.' if v2 => {}
            '+' if n == 0 && !plus => plus = true,
            '0'..='9' => {
                if n < digits.len() {
                    digits[n] = c as u8;
                }
                n += 1;
            }
            _ => bad_char = true,
        }
    }
    if bad_char {
        return Err(Reason::BadChar);
    }
    if n > digits.len() {
        return Err(Reason::BadLength);
    }
    let mut d = &digits[..n];
    if plus {
        // An international number must be Chinese.
        d = d.strip_prefix(b"86").ok_or(Reason::BadPrefix)?;
    } else if let Some(rest) = d.strip_prefix(b"0086") {
        d = rest;
    } else if d.len() == 13 && d.starts_with(b"86") {
        d = &d[2..];
    }
    if v2 {
        // An IP long-distance prefix before the 11 digits.
        if d.len() == 16 {
            if let Some(p) = IP_PREFIXES.iter().find(|p| d.starts_with(p)) {
                d = &d[p.len()..];
            }
        }
        // A trunk 0 before the 11 digits (013808679572, +86 (0)138…).
        if d.len() == 12 && d.starts_with(b"01") {
            d = &d[1..];
        }
    }
    mobile_digits(d, out)
}

// ---- email -------------------------------------------------------------------------------

fn email(input: &str, out: &mut String, buf: &mut String, v2: bool) -> Result<(), Reason> {
    prelude(input, buf, false)?;
    if v2 && !buf.is_ascii() {
        // The ideographic full stop (and the half-width one, which NFKC makes into it) that
        // Chinese input methods type separates domain labels like '.'.
        let dotted = buf.replace(['\u{3002}', '\u{FF61}'], ".");
        *buf = dotted;
    }
    // Lower-casing can leave a string that NFKC changes again (and vice versa): iterate to a
    // fixed point so that canonicalising a canonical address changes nothing.
    out.clear();
    out.push_str(buf);
    for _ in 0..4 {
        let next: String = if out.is_ascii() {
            out.to_ascii_lowercase()
        } else {
            out.to_lowercase()
                .nfkc()
                .collect::<String>()
                .trim()
                .to_string()
        };
        if next == *out {
            break;
        }
        *out = next;
    }
    let s = out.as_str();
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
    {
        return Err(Reason::BadFormat);
    }
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Reason::BadFormat);
    };
    let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
    if local.is_empty() || !labels_ok {
        return Err(Reason::BadFormat);
    }
    if v2 && domain.split('.').any(|l| l.starts_with("xn--")) {
        // A-labels and U-labels are one domain: the canonical form holds U-labels (UTS #46
        // ToUnicode, nontransitional), as version 1 already kept Unicode domains as typed.
        let (unicode, ok) = idna::domain_to_unicode(domain);
        if ok.is_err() || unicode.is_empty() {
            return Err(Reason::BadFormat);
        }
        let local = local.to_string();
        out.clear();
        out.push_str(&local);
        out.push('@');
        out.push_str(&unicode);
    }
    Ok(())
}

// ---- bank_card ---------------------------------------------------------------------------

fn luhn_ok(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let v = u32::from(c - b'0');
            if i % 2 == 1 {
                let v2 = v * 2;
                if v2 > 9 {
                    v2 - 9
                } else {
                    v2
                }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn bank_card(input: &str, out: &mut String, buf: &mut String) -> Result<(), Reason> {
    prelude(input, buf, true)?;
    out.clear();
    let mut bad_char = false;
    for c in buf.chars() {
        match c {
            '0'..='9' => out.push(c),
            _ if c.is_whitespace() || is_dash(c) || is_invisible(c) => {}
            _ => bad_char = true,
        }
    }
    if bad_char {
        return Err(Reason::BadChar);
    }
    if !(12..=19).contains(&out.len()) {
        return Err(Reason::BadLength);
    }
    if !luhn_ok(out.as_bytes()) {
        return Err(if excel_rounded(out.as_bytes()) {
            Reason::ExcelRounded
        } else {
            Reason::BadChecksum
        });
    }
    Ok(())
}

// ---- raw ---------------------------------------------------------------------------------

fn raw(input: &str, out: &mut String) -> Result<(), Reason> {
    nfkc_trim(input, out);
    if out.is_empty() {
        return Err(Reason::Empty);
    }
    if is_placeholder(out) {
        return Err(Reason::Placeholder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_char_known_value() {
        // The example number of GB 11643-1999's annex: 11010519491231002X.
        assert_eq!(ric_check_char(b"11010519491231002"), b'X');
    }

    #[test]
    fn excel_detection() {
        for s in ["1.10105E+17", "1.38E10", "4E+18", "1.1e+17"] {
            assert!(is_excel_scientific(s), "{s}");
        }
        for s in ["E+17", "1.E17", "11010519491231002X", "1.1E+", "1.1E+123"] {
            assert!(!is_excel_scientific(s), "{s}");
        }
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in ALL_REASONS {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        assert_eq!(Reason::from_code(0), None);
        for k in ALL_KINDS {
            assert_eq!(Kind::from_code(k.code()), Some(k));
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
    }

    /// The word-at-a-time sum is GB 11643's weighted sum: each digit 0–9 at each of the 17
    /// positions alone, and random numbers, against the standard's weights.
    #[test]
    fn the_check_character_is_the_standards_weighted_sum() {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let standard = |d: &[u8]| {
            let sum: u32 = d
                .iter()
                .zip(WEIGHTS)
                .map(|(&c, w)| u32::from(c - b'0') * w)
                .sum();
            RIC_CHECK[(sum % 11) as usize]
        };
        for pos in 0..17 {
            for digit in b'0'..=b'9' {
                let mut d = [b'0'; 17];
                d[pos] = digit;
                assert_eq!(ric_check_char(&d), standard(&d), "{digit} at {pos}");
            }
        }
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            let d: Vec<u8> = (0..17)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    b'0' + (s % 10) as u8
                })
                .collect();
            assert_eq!(ric_check_char(&d), standard(&d));
        }
        assert_eq!(
            ric_check_char(b"99999999999999999"),
            standard(b"99999999999999999")
        );
    }

    #[test]
    fn a_word_is_all_digits_exactly_when_each_byte_is_one() {
        for pos in 0..8 {
            for byte in 0..=255u8 {
                let mut w = *b"50505050";
                w[pos] = byte;
                assert_eq!(
                    digits8(u64::from_le_bytes(w)),
                    byte.is_ascii_digit(),
                    "byte {byte:#x} at {pos}"
                );
            }
        }
        // Two bytes off at once, one of which might carry into the other.
        for a in [0x2fu8, 0x3a, 0xf9, 0xfa, 0xff, 0x00, 0x39] {
            for b in [0x2fu8, 0x3a, 0xfa, 0xff, 0x30, 0x39] {
                let mut w = *b"12345678";
                (w[3], w[4]) = (a, b);
                assert_eq!(
                    digits8(u64::from_le_bytes(w)),
                    a.is_ascii_digit() && b.is_ascii_digit()
                );
            }
        }
    }

    /// The word-at-a-time path decides exactly as the general one, reason by reason: valid
    /// numbers, each check failing, near-digits, lower-case x, other lengths and characters.
    #[test]
    fn the_fast_ric_path_agrees_with_the_general_one() {
        let mut s: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let alphabet = b"0123456789Xx/:a 0123456789";
        for round in 0..400_000u32 {
            // A valid number, then (mostly) one or two bytes changed.
            let p = PROVINCES[(next() % 35) as usize];
            let year = if round % 7 == 0 {
                next() % 2200
            } else {
                1890 + next() % 130
            };
            let mut body = format!(
                "{p:02}{:04}{year:04}{:02}{:02}{:03}",
                next() % 10_000,
                next() % 14,
                next() % 33,
                next() % 1000
            );
            body.truncate(17);
            let check = ric_check_char(body.as_bytes());
            let mut b: Vec<u8> = body.into_bytes();
            b.push(if check == b'X' && round % 2 == 0 {
                b'x'
            } else {
                check
            });
            for _ in 0..(next() % 3) {
                let at = (next() % 18) as usize;
                b[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            if round % 97 == 0 {
                b[15..].copy_from_slice(b"000");
            }
            let input = std::str::from_utf8(&b).unwrap();
            let (mut o1, mut o2, mut buf) = (String::new(), String::new(), String::new());
            let fast = ric_fast(input, &mut o1, round % 3 == 0);
            let clean = b[..17].iter().all(u8::is_ascii_digit)
                && (b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x');
            assert_eq!(fast.is_some(), clean, "{input}");
            if let Some(r) = fast {
                let want = finish_ric(input, &mut o2, round % 3 == 0);
                assert_eq!(r, want, "{input}");
                if r.is_ok() {
                    assert_eq!(o1, o2, "{input}");
                }
            }
            // And through the public entry point, against the general path's answer.
            let got = cn_ric(input, &mut o1, &mut buf, true);
            let mut id = b.clone();
            id.make_ascii_uppercase();
            if clean {
                let id = std::str::from_utf8(&id).unwrap();
                assert_eq!(got, finish_ric(id, &mut o2, true), "{input}");
            }
        }
        for other in [
            "",
            "1",
            "11010519491231002",
            "11010519491231002X1",
            "１１０１０５１９４９１２３１００２Ｘ",
        ] {
            assert!(ric_fast(other, &mut String::new(), true).is_none());
        }
    }
}
