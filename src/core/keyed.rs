//! Keyed structures: what a keyed Bloom index or tag set is made under (`Meta`: kind,
//! canonicaliser version, PRF, key id) and the algorithms over their values — add, contains,
//! count_in — with the compatibility rules for combining two of them. The bindings hold these
//! behind locks and convert arguments; the logic is here, tested by `cargo test`.

use super::bloom::Bloom;
use super::bulk::{tag_chunks, Values};
use super::canon::{Canon, Kind};
use super::error::{Error, Result};
use super::estimate::{self, Estimate};
use super::key::{key_id_hex, KeyId};
use super::prf::{Prf, PrfId};
use super::tagset::{tag64, TagSet};

/// The code `add` gives a valid value it was asked to hold back (never a reason code).
pub const HELD: u8 = 255;

/// What a keyed structure is made under. Two structures combine only when all four agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub version: u16,
    pub prf: PrfId,
    pub key_id: KeyId,
}

impl Meta {
    pub fn canon(&self) -> Canon {
        Canon {
            kind: self.kind,
            version: self.version,
        }
    }

    /// Same key, kind, PRF and canonicaliser version, or the error that says which differs.
    pub fn check_compatible(&self, other: &Meta) -> Result<()> {
        if self.key_id != other.key_id {
            return Err(Error::KeyMismatch {
                what: "one artefact".into(),
                expected: key_id_hex(&self.key_id),
                other: "the other".into(),
                found: key_id_hex(&other.key_id),
            });
        }
        if self.kind != other.kind {
            return Err(Error::Incompatible(format!(
                "one holds {} and the other {}",
                self.kind.name(),
                other.kind.name()
            )));
        }
        if self.prf != other.prf {
            return Err(Error::Incompatible(format!(
                "one was made with the PRF {} and the other with {}; tags of different PRFs \
                 never match: build both with the same prf",
                self.prf.name(),
                other.prf.name()
            )));
        }
        if self.version != other.version {
            let v = self.version.min(other.version);
            return Err(Error::Incompatible(format!(
                "one was made with {} canonicaliser version {} and the other with version {}; \
                 rebuild one with canon_version={v} (--canon-version {v})",
                self.kind.name(),
                self.version,
                other.version,
            )));
        }
        Ok(())
    }
}

/// Canonicalise and tag every value of `parts`, calling `on_chunk(start, codes, tags)` for
/// consecutive chunks; returns every value's reason code (0 = used), in order.
pub fn tag_values<P: Values>(
    canon: Canon,
    prf: &Prf,
    parts: &[P],
    mut on_chunk: impl FnMut(usize, &[u8], &[[u8; 32]]),
) -> Vec<u8> {
    let mut codes = Vec::with_capacity(parts.iter().map(Values::len).sum());
    let mut base = 0;
    for part in parts {
        tag_chunks(canon, prf, part, |start, c, t| {
            on_chunk(base + start, c, t);
            codes.extend_from_slice(c);
        });
        base += part.len();
    }
    codes
}

/// The 64-bit tags of the values whose code is 0.
pub fn push_valid_tag64(out: &mut Vec<u64>, codes: &[u8], tags: &[[u8; 32]]) {
    out.extend(
        codes
            .iter()
            .zip(tags)
            .filter(|(c, _)| **c == 0)
            .map(|(_, t)| tag64(t)),
    );
}

/// What adding values did.
pub struct Added {
    /// Every value's code: 0 used, a reason code, or `HELD`.
    pub codes: Vec<u8>,
    /// Values inserted (repeats included).
    pub valid: u64,
    /// Their 64-bit tags, when asked for (to feed an exact tag set from the same pass).
    pub tags64: Vec<u64>,
}

/// Insert the valid values of `parts` into `bloom`, except those `hold` marks (they get code
/// `HELD` and are left out).
pub fn add_to_bloom<P: Values>(
    bloom: &mut Bloom,
    canon: Canon,
    prf: &Prf,
    parts: &[P],
    hold: Option<&[bool]>,
    want_tags64: bool,
) -> Added {
    let mut valid = 0u64;
    let mut tags64 = Vec::new();
    let mut held = Vec::new();
    let mut codes = tag_values(canon, prf, parts, |start, c, t| {
        let c = match hold {
            Some(h) if h[start..start + c.len()].contains(&true) => {
                held.clear();
                held.extend(
                    c.iter()
                        .zip(&h[start..start + c.len()])
                        .map(|(&code, &hold)| if hold && code == 0 { HELD } else { code }),
                );
                &held[..]
            }
            _ => c,
        };
        bloom.insert_tags_where(t, c);
        valid += c.iter().filter(|&&c| c == 0).count() as u64;
        if want_tags64 {
            push_valid_tag64(&mut tags64, c, t);
        }
    });
    if let Some(h) = hold {
        for (code, &hold) in codes.iter_mut().zip(h) {
            if hold && *code == 0 {
                *code = HELD;
            }
        }
    }
    Added {
        codes,
        valid,
        tags64,
    }
}

/// The reason codes of `parts` and the 64-bit tags of the valid ones (to merge into a set).
pub fn tags_of<P: Values>(canon: Canon, prf: &Prf, parts: &[P]) -> (Vec<u8>, Vec<u64>) {
    let mut new = Vec::new();
    let codes = tag_values(canon, prf, parts, |_, c, t| {
        push_valid_tag64(&mut new, c, t)
    });
    (codes, new)
}

/// Membership of every value of `parts`, `probe` filling each chunk's hits from its tags and
/// codes (false where a value could not be used), and every value's code.
fn contains_with<P: Values>(
    canon: Canon,
    prf: &Prf,
    parts: &[P],
    probe: impl Fn(&[[u8; 32]], &[u8], &mut [bool]),
) -> (Vec<bool>, Vec<u8>) {
    let mut hits = vec![false; parts.iter().map(Values::len).sum()];
    let codes = tag_values(canon, prf, parts, |start, c, t| {
        probe(t, c, &mut hits[start..start + c.len()]);
    });
    (hits, codes)
}

/// Membership of every value in `bloom` and the codes.
pub fn bloom_contains<P: Values>(
    bloom: &Bloom,
    canon: Canon,
    prf: &Prf,
    parts: &[P],
) -> (Vec<bool>, Vec<u8>) {
    contains_with(canon, prf, parts, |t, c, out| {
        bloom.contains_where(t, c, out)
    })
}

/// As `bloom_contains`, exact, in a tag set.
pub fn set_contains<P: Values>(
    set: &TagSet,
    canon: Canon,
    prf: &Prf,
    parts: &[P],
) -> (Vec<bool>, Vec<u8>) {
    contains_with(canon, prf, parts, |t, c, out| {
        for ((tag, code), hit) in t.iter().zip(c).zip(out) {
            *hit = *code == 0 && set.contains(tag64(tag));
        }
    })
}

/// How many of the distinct valid values of `parts` are in `bloom`, corrected for false
/// positives: `(estimate, distinct probed, hits, false-positive rate)`.
pub fn bloom_count_in<P: Values>(
    bloom: &Bloom,
    canon: Canon,
    prf: &Prf,
    parts: &[P],
) -> (Estimate, u64, u64, f64) {
    let mut tags: Vec<[u8; 32]> = Vec::new();
    tag_values(canon, prf, parts, |_, c, t| {
        tags.extend(c.iter().zip(t).filter(|(c, _)| **c == 0).map(|(_, t)| *t));
    });
    tags.sort_unstable();
    tags.dedup();
    let codes = vec![0u8; tags.len()];
    let mut hit = vec![false; tags.len()];
    bloom.contains_where(&tags, &codes, &mut hit);
    let hits = hit.iter().filter(|&&h| h).count() as u64;
    let eps = bloom.fill_fpr();
    let n = tags.len() as u64;
    (estimate::probe_count(n, hits, eps), n, hits, eps)
}

/// As `bloom_count_in`, exact: `(estimate, distinct probed, hits, 0.0)`.
pub fn set_count_in<P: Values>(
    set: &TagSet,
    canon: Canon,
    prf: &Prf,
    parts: &[P],
) -> (Estimate, u64, u64, f64) {
    let (_, mine) = tags_of(canon, prf, parts);
    let mine = TagSet::from_unsorted(mine);
    let hits = mine.intersection_len(set) as u64;
    (Estimate::exact(hits), mine.len() as u64, hits, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bulk::Packed;
    use crate::core::key::Key;

    fn packed(values: &[&str]) -> Packed {
        let mut p = Packed::with_capacity(values.len(), 64);
        for v in values {
            p.push_str(v);
        }
        p
    }

    #[test]
    fn add_contains_count_in_on_both_structures() {
        let key = Key::from_bytes(&(0u8..32).collect::<Vec<_>>()).unwrap();
        let canon = Canon::from(Kind::CnRic);
        let prf = key.prf_with(canon.kind, canon.version, PrfId::HmacSha256);
        let ids = packed(&["11010519491231002X", "440305199003071236", "1.10105E+17"]);
        let mut bloom = Bloom::with_capacity(100, 1e-6).unwrap();
        let hold = [false, true, false];
        let added = add_to_bloom(&mut bloom, canon, &prf, &[ids], Some(&hold), true);
        assert_eq!(added.codes[0], 0);
        assert_eq!(added.codes[1], HELD); // valid, held back: not inserted
        assert_ne!(added.codes[2], 0);
        assert_eq!((added.valid, added.tags64.len()), (1, 1));
        let probe = packed(&["11010519491231002x", "440305199003071236"]);
        let (hits, _) = bloom_contains(&bloom, canon, &prf, std::slice::from_ref(&probe));
        assert_eq!(hits, [true, false]);
        let set = TagSet::from_unsorted(added.tags64);
        let (hits, _) = set_contains(&set, canon, &prf, std::slice::from_ref(&probe));
        assert_eq!(hits, [true, false]);
        let (e, n, h, _) = set_count_in(&set, canon, &prf, std::slice::from_ref(&probe));
        assert_eq!((e.value, n, h), (1.0, 2, 1));
        let (e, n, h, _) = bloom_count_in(&bloom, canon, &prf, &[probe]);
        assert_eq!((n, h), (2, 1));
        assert!(e.low <= 1.0 && 1.0 <= e.high);
    }

    #[test]
    fn only_one_key_kind_prf_and_version_combine() {
        let a = Meta {
            kind: Kind::CnRic,
            version: 2,
            prf: PrfId::HmacSha256,
            key_id: [1; 8],
        };
        assert!(a.check_compatible(&a).is_ok());
        let other_key = Meta {
            key_id: [2; 8],
            ..a
        };
        assert!(matches!(
            a.check_compatible(&other_key),
            Err(Error::KeyMismatch { .. })
        ));
        for (b, needle) in [
            (
                Meta {
                    kind: Kind::Email,
                    ..a
                },
                "one holds cn_ric and the other email",
            ),
            (
                Meta {
                    prf: PrfId::HmacSm3,
                    ..a
                },
                "hmac-sm3",
            ),
            (Meta { version: 1, ..a }, "canon_version=1"),
        ] {
            let e = a.check_compatible(&b).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
