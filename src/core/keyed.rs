//! Keyed structures: a keyed Bloom index (`KeyedBloom`) and a keyed tag set (`KeyedTagSet`),
//! each a structure plus its `Tagging` — what it is made under (`Meta`: kind, canonicaliser
//! version, PRF, key id) and, when its key is known, the PRF itself. Add, contains, count_in,
//! union and the compatibility rules for combining two of them live here, tested by
//! `cargo test`; the bindings hold these behind locks and only convert arguments.

use super::bloom::{self, Bloom, ConcurrentInsert};
use super::bulk::{tag_chunks_with, Codes, Item, NoHook, TaskHook, Values};
use super::canon::{looks_excel_rounded, Canon, Kind};
use super::error::{Error, Result};
use super::estimate::{self, Estimate};
use super::format::{Artefact, Payload, PayloadRef, SectionRef};
use super::key::{key_id_hex, Key, KeyId};
use super::prf::{Prf, PrfId};
use super::tagset::{tag64, TagSet};

/// Seconds since the Unix epoch (0 before it): the `created` of a new structure.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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

/// How a keyed structure tags its values: what it is made under and, when the key was given,
/// the PRF. A structure loaded without its key can still be counted, merged and compared;
/// adding or testing values needs the PRF (`KeyRequired` otherwise).
#[derive(Clone)]
pub struct Tagging {
    meta: Meta,
    prf: Option<Prf>,
}

impl Tagging {
    /// Tagging under `key` with `prf` for values of `canon`.
    pub fn with_key(key: &Key, canon: Canon, prf: PrfId) -> Tagging {
        Tagging {
            meta: Meta {
                kind: canon.kind,
                version: canon.version,
                prf,
                key_id: *key.id(),
            },
            prf: Some(key.prf_with(canon.kind, canon.version, prf)),
        }
    }

    /// What a structure read from a file is made under, its key not (yet) given.
    pub fn without_key(meta: Meta) -> Tagging {
        Tagging { meta, prf: None }
    }

    pub fn meta(&self) -> Meta {
        self.meta
    }

    pub fn canon(&self) -> Canon {
        self.meta.canon()
    }

    pub fn has_key(&self) -> bool {
        self.prf.is_some()
    }

    /// Give the key of a structure loaded without it; `what` names the structure in the
    /// error when the key is another one.
    pub fn attach(&mut self, key: &Key, what: &str) -> Result<()> {
        if key.id() != &self.meta.key_id {
            return Err(Error::KeyMismatch {
                what: what.into(),
                expected: key_id_hex(&self.meta.key_id),
                other: "the key given".into(),
                found: key.id_hex(),
            });
        }
        self.prf = Some(key.prf_with(self.meta.kind, self.meta.version, self.meta.prf));
        Ok(())
    }

    /// The PRF, or the error saying that `op` needs the key.
    pub fn prf(&self, op: &str) -> Result<&Prf> {
        self.prf.as_ref().ok_or_else(|| {
            Error::KeyRequired(format!(
                "{op} on an index loaded without its key (key id {})",
                key_id_hex(&self.meta.key_id)
            ))
        })
    }

    /// The tagging of a structure made from `self`'s and `other`'s (a union): checked
    /// compatible, with the PRF if either had it.
    pub fn joined(&self, other: &Tagging) -> Result<Tagging> {
        self.meta.check_compatible(&other.meta)?;
        Ok(Tagging {
            meta: self.meta,
            prf: self.prf.clone().or_else(|| other.prf.clone()),
        })
    }

    /// Every value's reason code and the 64-bit tags of the valid ones (for a tag set).
    pub fn tags_of<P: Values>(&self, parts: &[P]) -> Result<(Codes, Vec<u64>)> {
        Ok(tags_of(self.canon(), self.prf("add")?, parts))
    }

    /// The 32-byte tag of one value, None when it cannot be used (`op` names the operation
    /// in the error when the key is missing).
    pub fn tag_one(&self, value: Item<'_>, op: &str) -> Result<Option<[u8; 32]>> {
        let prf = self.prf(op)?;
        let (canon, mut out, mut scratch) = (self.canon(), String::new(), String::new());
        let ok = match value {
            Item::Str(v) => canon.canonicalize_into(v, &mut out, &mut scratch).is_ok(),
            Item::Bytes(v) => canon
                .canonicalize_bytes_into(v, &mut out, &mut scratch)
                .is_ok(),
            Item::Null | Item::NotText => false,
        };
        Ok(ok.then(|| prf.tag(out.as_bytes())))
    }
}

/// How many of the distinct valid values probed are in a structure.
#[derive(Clone, Debug)]
pub struct CountIn {
    /// The count, corrected for false positives (exact for a tag set).
    pub estimate: Estimate,
    /// Distinct valid values probed.
    pub probed: u64,
    /// Of those, how many were found.
    pub hits: u64,
    /// The structure's false-positive rate at its fill (0 for a tag set).
    pub fpr: f64,
}

/// A keyed split-block Bloom index of one identifier kind.
pub struct KeyedBloom {
    pub tagging: Tagging,
    pub bloom: Bloom,
    /// Valid values added, repeats included.
    pub items: u64,
    /// Unix time it was made.
    pub created: u64,
}

impl KeyedBloom {
    /// An empty index for `capacity` distinct values at false-positive rate `fpr`.
    pub fn new(key: &Key, canon: Canon, prf: PrfId, capacity: u64, fpr: f64) -> Result<Self> {
        Ok(KeyedBloom {
            tagging: Tagging::with_key(key, canon, prf),
            bloom: Bloom::with_capacity(capacity, fpr)?,
            items: 0,
            created: now_unix(),
        })
    }

    pub fn meta(&self) -> Meta {
        self.tagging.meta()
    }

    /// Canonicalise, tag and insert the valid values of `parts`, except those `holds` holds
    /// back (code `HELD`, not inserted); with `want_tags64` their 64-bit tags come back too.
    pub fn add<P: Values>(
        &mut self,
        parts: &[P],
        holds: Holds<'_>,
        want_tags64: bool,
    ) -> Result<Added> {
        let hold = holds.marked;
        let n: usize = parts.iter().map(Values::len).sum();
        if let Some(h) = hold.filter(|h| h.len() != n) {
            return Err(Error::Invalid(format!(
                "hold has {} flags for {n} values",
                h.len()
            )));
        }
        let canon = self.tagging.canon();
        let prf = self.tagging.prf("add")?;
        let added = add_to_bloom(&mut self.bloom, canon, prf, parts, holds, want_tags64);
        self.items += added.valid;
        Ok(added)
    }

    /// Membership of every value (false where it cannot be used) and every value's code.
    pub fn contains<P: Values>(&self, parts: &[P]) -> Result<(Vec<bool>, Vec<u8>)> {
        let prf = self.tagging.prf("contains")?;
        Ok(bloom_contains(
            &self.bloom,
            self.tagging.canon(),
            prf,
            parts,
        ))
    }

    /// Whether one tag (from `Tagging::tag_one`) is in the index.
    pub fn contains_tag(&self, tag: &[u8; 32]) -> bool {
        self.bloom.contains_tag(tag)
    }

    /// How many of the distinct valid values of `parts` are in the index.
    pub fn count_in<P: Values>(&self, parts: &[P]) -> Result<CountIn> {
        let prf = self.tagging.prf("count_in")?;
        Ok(bloom_count_in(
            &self.bloom,
            self.tagging.canon(),
            prf,
            parts,
        ))
    }

    /// Distinct values in the index, from its fill, with the 95 % interval.
    pub fn estimate_count(&self) -> Estimate {
        estimate::bloom_count(&self.bloom)
    }

    /// The false-positive rate of a lookup once `n` distinct values are in.
    pub fn expected_fpr(&self, n: f64) -> f64 {
        bloom::expected_fpr(n, self.bloom.log2_blocks(), self.bloom.blocks_per_key())
    }

    /// The union with an index of the same key, kind, PRF, version and layout (the larger
    /// folded to the smaller size first); it has the PRF if either had it.
    pub fn union(&self, other: &KeyedBloom) -> Result<KeyedBloom> {
        let tagging = self.tagging.joined(&other.tagging)?;
        Ok(KeyedBloom {
            tagging,
            bloom: self.bloom.union(&other.bloom)?,
            items: self.items + other.items,
            created: now_unix(),
        })
    }

    /// Union `other` into this index in place.
    pub fn update(&mut self, other: &KeyedBloom) -> Result<()> {
        self.meta().check_compatible(&other.meta())?;
        self.bloom.union_in_place(&other.bloom)?;
        self.items += other.items;
        Ok(())
    }

    /// The index as a section of an artefact to write (borrowed: nothing is copied).
    pub fn as_section(&self) -> SectionRef<'_> {
        SectionRef {
            kind: self.tagging.meta.kind,
            canon_version: self.tagging.meta.version,
            prf: self.tagging.meta.prf,
            items: self.items,
            payload: PayloadRef::Bloom(&self.bloom),
        }
    }

    /// The overlap with another index: inclusion–exclusion over the fills.
    pub fn overlap(&self, other: &KeyedBloom) -> Result<Estimate> {
        self.meta().check_compatible(&other.meta())?;
        estimate::bloom_overlap(&self.bloom, &other.bloom)
    }
}

/// A keyed exact tag set of one identifier kind.
pub struct KeyedTagSet {
    pub tagging: Tagging,
    pub set: TagSet,
    /// Unix time it was made.
    pub created: u64,
}

impl KeyedTagSet {
    pub fn new(key: &Key, canon: Canon, prf: PrfId) -> KeyedTagSet {
        KeyedTagSet {
            tagging: Tagging::with_key(key, canon, prf),
            set: TagSet::new(),
            created: now_unix(),
        }
    }

    pub fn meta(&self) -> Meta {
        self.tagging.meta()
    }

    /// Canonicalise, tag and add `parts`: every value's code. (`Tagging::tags_of` then
    /// `merge` is the same in two steps, for callers that tag outside a lock.)
    pub fn add<P: Values>(&mut self, parts: &[P]) -> Result<Codes> {
        let (codes, new) = self.tagging.tags_of(parts)?;
        self.merge(new);
        Ok(codes)
    }

    /// Add 64-bit tags made by this set's tagging (any order, repeats allowed).
    pub fn merge(&mut self, tags64: Vec<u64>) {
        self.set.extend(tags64);
    }

    pub fn contains<P: Values>(&self, parts: &[P]) -> Result<(Vec<bool>, Vec<u8>)> {
        let prf = self.tagging.prf("contains")?;
        Ok(set_contains(&self.set, self.tagging.canon(), prf, parts))
    }

    pub fn contains_tag(&self, tag: &[u8; 32]) -> bool {
        self.set.contains(tag64(tag))
    }

    pub fn count_in<P: Values>(&self, parts: &[P]) -> Result<CountIn> {
        let prf = self.tagging.prf("count_in")?;
        Ok(set_count_in(&self.set, self.tagging.canon(), prf, parts))
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn combine(&self, other: &KeyedTagSet, op: fn(&TagSet, &TagSet) -> TagSet) -> Result<Self> {
        Ok(KeyedTagSet {
            tagging: self.tagging.joined(&other.tagging)?,
            set: op(&self.set, &other.set),
            created: now_unix(),
        })
    }

    pub fn union(&self, other: &KeyedTagSet) -> Result<KeyedTagSet> {
        self.combine(other, TagSet::union)
    }

    pub fn intersection(&self, other: &KeyedTagSet) -> Result<KeyedTagSet> {
        self.combine(other, TagSet::intersection)
    }

    /// The set as a section of an artefact to write.
    pub fn as_section(&self) -> SectionRef<'_> {
        SectionRef {
            kind: self.tagging.meta.kind,
            canon_version: self.tagging.meta.version,
            prf: self.tagging.meta.prf,
            items: self.set.len() as u64,
            payload: PayloadRef::Tags(&self.set),
        }
    }

    /// The exact overlap with another set.
    pub fn overlap(&self, other: &KeyedTagSet) -> Result<u64> {
        self.meta().check_compatible(&other.meta())?;
        Ok(self.set.intersection_len(&other.set) as u64)
    }
}

/// One section of an artefact as a keyed structure.
pub enum Structure {
    Bloom(KeyedBloom),
    Tags(KeyedTagSet),
}

impl Structure {
    pub fn meta(&self) -> Meta {
        match self {
            Structure::Bloom(b) => b.meta(),
            Structure::Tags(t) => t.meta(),
        }
    }
}

/// The sections of a read artefact as keyed structures; with `key` (which must be the one
/// the artefact was made with) they can add and test values.
pub fn structures(art: Artefact, key: Option<&Key>) -> Result<Vec<Structure>> {
    let (kid, created) = (art.key_id, art.created);
    if let Some(k) = key.filter(|k| k.id() != &kid) {
        return Err(Error::KeyMismatch {
            what: "this artefact".into(),
            expected: key_id_hex(&kid),
            other: "the key given".into(),
            found: k.id_hex(),
        });
    }
    art.sections
        .into_iter()
        .map(|s| {
            let mut tagging = Tagging::without_key(Meta {
                kind: s.kind,
                version: s.canon_version,
                prf: s.prf,
                key_id: kid,
            });
            if let Some(k) = key {
                tagging.attach(k, "this artefact")?;
            }
            Ok(match s.payload {
                Payload::Bloom(bloom) => Structure::Bloom(KeyedBloom {
                    tagging,
                    bloom,
                    items: s.items,
                    created,
                }),
                Payload::Tags(set) => Structure::Tags(KeyedTagSet {
                    tagging,
                    set,
                    created,
                }),
            })
        })
        .collect()
}

/// Canonicalise and tag every value of `parts`, calling `on_chunk(start, codes, tags)` for
/// consecutive chunks; returns every value's reason code (0 = used), in order. With `hold`,
/// a valid value it marks gets code `HELD` (before `on_chunk` sees the codes).
pub fn tag_values<P: Values>(
    canon: Canon,
    prf: &Prf,
    parts: &[P],
    hold: Option<&[bool]>,
    on_chunk: impl FnMut(usize, &[u8], &[[u8; 32]]),
) -> Codes {
    tag_values_with(canon, prf, parts, hold, |_| NoHook, on_chunk)
}

/// [`tag_values`], with the hook `hook(base)` for the part whose first value is value `base`
/// of `parts` run in the tagging tasks (it sees codes before `hold` is applied).
pub fn tag_values_with<P: Values, H: TaskHook>(
    canon: Canon,
    prf: &Prf,
    parts: &[P],
    hold: Option<&[bool]>,
    hook: impl Fn(usize) -> H,
    mut on_chunk: impl FnMut(usize, &[u8], &[[u8; 32]]),
) -> Codes {
    let mut codes = Codes::default();
    let mut held = Vec::new();
    let mut base = 0;
    for part in parts {
        tag_chunks_with(canon, prf, part, &hook(base), |start, c, t| {
            let start = base + start;
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
            on_chunk(start, c, t);
            codes.push(c);
        });
        base += part.len();
    }
    codes
}

/// The 64-bit tags of the values whose code is 0.
fn push_valid_tag64(out: &mut Vec<u64>, codes: &[u8], tags: &[[u8; 32]]) {
    out.extend(
        codes
            .iter()
            .zip(tags)
            .filter(|(c, _)| **c == 0)
            .map(|(_, t)| tag64(t)),
    );
}

/// What adding values did.
#[derive(Debug)]
pub struct Added {
    /// Every value's code: 0 used, a reason code, or `HELD`.
    pub codes: Codes,
    /// Values inserted (repeats included).
    pub valid: u64,
    /// Their 64-bit tags, when asked for (to feed an exact tag set from the same pass).
    pub tags64: Vec<u64>,
}

/// The valid values an add holds back (code `HELD`, not inserted); none by default.
#[derive(Clone, Copy, Default)]
pub struct Holds<'h> {
    /// Those marked (a flag a value of all the parts).
    pub marked: Option<&'h [bool]>,
    /// Those shaped as Excel's rounding leaves a long number (`canon::looks_excel_rounded`),
    /// told in the tagging tasks.
    pub excel_rounded: bool,
}

impl Holds<'_> {
    /// Whether a valid value with these raw bytes is held by its shape (`excel_rounded`).
    #[inline]
    pub fn by_shape(&self, raw: &[u8]) -> bool {
        self.excel_rounded && looks_excel_rounded(raw)
    }
}

/// Insert the valid values of `parts` into `bloom`, except those `holds` names (they get code
/// `HELD` and are left out).
fn add_to_bloom<P: Values>(
    bloom: &mut Bloom,
    canon: Canon,
    prf: &Prf,
    parts: &[P],
    holds: Holds<'_>,
    want_tags64: bool,
) -> Added {
    let hold = holds.marked;
    let mut valid = 0u64;
    let mut tags64 = Vec::new();
    let inserter = ConcurrentInsert::new(bloom, rayon::current_num_threads());
    let insert = |base| InsertInTasks {
        inserter: &inserter,
        hold: hold.map(|h| &h[base..]),
        holds,
    };
    let codes = tag_values_with(canon, prf, parts, hold, insert, |_, c, t| {
        valid += c.iter().filter(|&&c| c == 0).count() as u64;
        if want_tags64 {
            push_valid_tag64(&mut tags64, c, t);
        }
    });
    Added {
        codes,
        valid,
        tags64,
    }
}

/// Inserts each tagging task's valid tags into the index from the task itself, leaving out
/// those `hold` marks (`hold[i]` is about item `i` of the part) and those `holds` holds by
/// their shape (held in the task, before they are hashed).
struct InsertInTasks<'i, 'b> {
    inserter: &'i ConcurrentInsert<'b>,
    hold: Option<&'i [bool]>,
    holds: Holds<'i>,
}

impl TaskHook for InsertInTasks<'_, '_> {
    #[inline]
    fn holds(&self, raw: &[u8]) -> bool {
        self.holds.by_shape(raw)
    }

    #[inline]
    fn tagged(&self, tag: &[u8; 32]) {
        self.inserter.prefetch(tag);
    }

    fn task_done(&self, start: usize, codes: &[u8], tags: &[[u8; 32]]) {
        let hold = self.hold.map(|h| &h[start..start + codes.len()]);
        self.inserter
            .insert_where(tags, |i| codes[i] == 0 && !hold.is_some_and(|h| h[i]));
    }
}

/// The reason codes of `parts` and the 64-bit tags of the valid ones (to merge into a set).
fn tags_of<P: Values>(canon: Canon, prf: &Prf, parts: &[P]) -> (Codes, Vec<u64>) {
    let mut new = Vec::new();
    let codes = tag_values(canon, prf, parts, None, |_, c, t| {
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
    let codes = tag_values(canon, prf, parts, None, |start, c, t| {
        probe(t, c, &mut hits[start..start + c.len()]);
    });
    (hits, codes.into_vec())
}

/// Membership of every value in `bloom` and the codes.
fn bloom_contains<P: Values>(
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
fn set_contains<P: Values>(
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
/// positives.
fn bloom_count_in<P: Values>(bloom: &Bloom, canon: Canon, prf: &Prf, parts: &[P]) -> CountIn {
    let mut tags: Vec<[u8; 32]> = Vec::new();
    tag_values(canon, prf, parts, None, |_, c, t| {
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
    CountIn {
        estimate: estimate::probe_count(n, hits, eps),
        probed: n,
        hits,
        fpr: eps,
    }
}

/// As `bloom_count_in`, exact (`fpr` 0).
fn set_count_in<P: Values>(set: &TagSet, canon: Canon, prf: &Prf, parts: &[P]) -> CountIn {
    let (_, mine) = tags_of(canon, prf, parts);
    let mine = TagSet::from_unsorted(mine);
    let hits = mine.intersection_len(set) as u64;
    CountIn {
        estimate: Estimate::exact(hits),
        probed: mine.len() as u64,
        hits,
        fpr: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bulk::Packed;

    fn marked(hold: &[bool]) -> Holds<'_> {
        Holds {
            marked: Some(hold),
            ..Holds::default()
        }
    }

    fn packed(values: &[&str]) -> Packed {
        let mut p = Packed::with_capacity(values.len(), 64);
        for v in values {
            p.push_str(v);
        }
        p
    }

    fn key(b: u8) -> Key {
        Key::from_bytes(&[b; 32]).unwrap()
    }

    /// A valid 18-character ID number made from `r` (region 110101, a real date, its check).
    fn ric(r: u64) -> String {
        let body = format!(
            "110101{:04}{:02}{:02}{:03}",
            1950 + r % 55,
            1 + (r >> 8) % 12,
            1 + (r >> 16) % 28,
            (r >> 24) % 1000
        );
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body
            .bytes()
            .zip(W)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
    }

    #[test]
    fn an_add_holds_back_valid_values_of_excels_rounded_shape_when_asked() {
        // Valid ID numbers ending as Excel's rounding leaves them (…000, check digit 0) among
        // valid, invalid and rounded-but-failing ones, over two parts (parallel tasks).
        let key = key(5);
        let canon = Canon::from(Kind::CnRic);
        let rounded: Vec<String> = (0..1_000_000u64)
            .step_by(100)
            .map(|i| ric(i << 24))
            .filter(|v| looks_excel_rounded(v.as_bytes()))
            .take(40)
            .collect();
        assert_eq!(rounded.len(), 40);
        let values: Vec<String> = (0..20_000usize)
            .map(|i| match i % 397 {
                5 => rounded[i % 40].clone(),
                9 => " 110105194912310000 ".to_string(), // the shape, its check fails
                11 => format!("x{i}"),
                _ => ric(i as u64 * 2_654_435_761),
            })
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let parts = [packed(&refs[..7_001]), packed(&refs[7_001..])];
        let shape: Vec<bool> = refs
            .iter()
            .map(|v| looks_excel_rounded(v.as_bytes()))
            .collect();
        let mut told = KeyedBloom::new(&key, canon, PrfId::HmacSha256, 20_000, 1e-6).unwrap();
        let mut by_hand = KeyedBloom::new(&key, canon, PrfId::HmacSha256, 20_000, 1e-6).unwrap();
        let a = told
            .add(
                &parts,
                Holds {
                    excel_rounded: true,
                    ..Holds::default()
                },
                true,
            )
            .unwrap();
        let b = by_hand.add(&parts, marked(&shape), true).unwrap();
        let codes = a.codes.to_vec();
        for (i, v) in values.iter().enumerate() {
            let valid = told.tagging.tag_one(Item::Str(v), "add").unwrap().is_some();
            assert_eq!(codes[i] == HELD, valid && shape[i], "{v:?}");
        }
        // The planted ones and the random IDs that happen to end so (about 1 in 1,100).
        let held = codes.iter().filter(|&&c| c == HELD).count() as u64;
        assert!(held > 51, "{held}");
        // The same as marking the shape by hand: codes, filter and exact tags alike.
        assert_eq!(codes, b.codes.to_vec());
        assert!(told.bloom == by_hand.bloom);
        assert_eq!((a.valid, a.tags64), (b.valid, b.tags64));
        // Not asked, nothing is held.
        let mut plain = KeyedBloom::new(&key, canon, PrfId::HmacSha256, 20_000, 1e-6).unwrap();
        let c = plain.add(&parts, Holds::default(), false).unwrap();
        assert!(!c.codes.to_vec().contains(&HELD));
        assert_eq!(c.valid, a.valid + held);
    }

    #[test]
    fn a_parallel_add_over_parts_inserts_exactly_the_kept_values() {
        // Two parts large enough for parallel tasks; every 7th value invalid, every 5th held.
        let key = key(3);
        let canon = Canon::from(Kind::CnRic);
        let values: Vec<String> = (0..30_000u64)
            .map(|i| {
                if i % 7 == 3 {
                    format!("x{i}")
                } else {
                    ric(i * 2_654_435_761)
                }
            })
            .collect();
        let hold: Vec<bool> = (0..values.len()).map(|i| i % 5 == 1).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let parts = [packed(&refs[..11_003]), packed(&refs[11_003..])];
        let mut bloom = KeyedBloom::new(&key, canon, PrfId::HmacSha256, 30_000, 1e-6).unwrap();
        let added = bloom.add(&parts, marked(&hold), false).unwrap();
        let mut one = Bloom::new(bloom.bloom.log2_blocks(), bloom.bloom.blocks_per_key()).unwrap();
        let mut kept = 0;
        for (i, v) in values.iter().enumerate() {
            let tag = bloom.tagging.tag_one(Item::Str(v), "add").unwrap();
            if let (Some(tag), false) = (tag, hold[i]) {
                one.insert_tag(&tag);
                kept += 1;
            }
        }
        assert_eq!(added.valid, kept);
        assert!(
            bloom.bloom == one,
            "the index is the one-by-one insert of the kept values"
        );
    }

    #[test]
    fn add_contains_count_in_on_both_structures() {
        let key = key(7);
        let canon = Canon::from(Kind::CnRic);
        let mut bloom = KeyedBloom::new(&key, canon, PrfId::HmacSha256, 100, 1e-6).unwrap();
        let mut set = KeyedTagSet::new(&key, canon, PrfId::HmacSha256);
        let ids = packed(&["11010519491231002X", "440305199003071236", "1.10105E+17"]);
        let hold = [false, true, false];
        let added = bloom
            .add(std::slice::from_ref(&ids), marked(&hold), true)
            .unwrap();
        let codes = added.codes.to_vec();
        assert_eq!(codes[0], 0);
        assert_eq!(codes[1], HELD); // valid, held back: not inserted
        assert_ne!(codes[2], 0);
        assert_eq!((added.valid, added.tags64.len(), bloom.items), (1, 1, 1));
        set.merge(added.tags64);
        let probe = packed(&["11010519491231002x", "440305199003071236"]);
        let one = std::slice::from_ref(&probe);
        assert_eq!(bloom.contains(one).unwrap().0, [true, false]);
        assert_eq!(set.contains(one).unwrap().0, [true, false]);
        let c = set.count_in(one).unwrap();
        assert_eq!(
            (c.estimate.value, c.probed, c.hits, c.fpr),
            (1.0, 2, 1, 0.0)
        );
        let c = bloom.count_in(one).unwrap();
        assert_eq!((c.probed, c.hits), (2, 1));
        assert!(c.estimate.low <= 1.0 && 1.0 <= c.estimate.high);
        // `add` on the set itself: the same tags as through the index
        let codes = set.add(std::slice::from_ref(&ids)).unwrap().to_vec();
        assert_eq!(set.len(), 2);
        assert_eq!(codes[1], 0);
        let t = bloom
            .tagging
            .tag_one(Item::Str("440305199003071236"), "in")
            .unwrap()
            .unwrap();
        assert!(set.contains_tag(&t) && !bloom.contains_tag(&t));
        assert_eq!(
            bloom.tagging.tag_one(Item::Str("12345"), "in").unwrap(),
            None
        );
        // a hold of the wrong length is refused before anything is added
        let e = bloom.add(&[ids], marked(&[true]), false).unwrap_err();
        assert!(
            e.to_string().contains("hold has 1 flags for 3 values"),
            "{e}"
        );
        assert_eq!(bloom.items, 1);
    }

    #[test]
    fn union_and_overlap_check_compatibility_and_keep_the_key() {
        let canon = Canon::from(Kind::Email);
        let mut a = KeyedTagSet::new(&key(1), canon, PrfId::HmacSha256);
        a.add(&[packed(&["a@example.com", "b@example.com"])])
            .unwrap();
        let mut b = KeyedTagSet::new(&key(1), canon, PrfId::HmacSha256);
        b.add(&[packed(&["B@example.com", "c@example.com"])])
            .unwrap();
        assert_eq!(a.union(&b).unwrap().len(), 3);
        assert_eq!(a.intersection(&b).unwrap().len(), 1);
        assert_eq!(a.overlap(&b).unwrap(), 1);
        // a set read without its key: counting works, tagging needs the key
        let mut loaded = KeyedTagSet {
            tagging: Tagging::without_key(b.meta()),
            set: b.set.clone(),
            created: 0,
        };
        assert!(matches!(
            loaded.add(&[packed(&["d@example.com"])]),
            Err(Error::KeyRequired(_))
        ));
        assert!(a.union(&loaded).unwrap().tagging.has_key());
        assert!(matches!(
            loaded.tagging.attach(&key(2), "this tag set"),
            Err(Error::KeyMismatch { .. })
        ));
        loaded.tagging.attach(&key(1), "this tag set").unwrap();
        assert!(loaded.contains(&[packed(&["c@example.com"])]).unwrap().0[0]);
        // other key, other PRF: refused
        let other_key = KeyedTagSet::new(&key(2), canon, PrfId::HmacSha256);
        assert!(matches!(
            a.union(&other_key),
            Err(Error::KeyMismatch { .. })
        ));
        let sm3 = KeyedTagSet::new(&key(1), canon, PrfId::HmacSm3);
        assert!(matches!(a.intersection(&sm3), Err(Error::Incompatible(_))));

        let mut x = KeyedBloom::new(&key(1), canon, PrfId::HmacSha256, 1000, 1e-4).unwrap();
        let mut y = KeyedBloom::new(&key(1), canon, PrfId::HmacSha256, 1000, 1e-4).unwrap();
        x.add(
            &[packed(&["a@example.com", "b@example.com"])],
            Holds::default(),
            false,
        )
        .unwrap();
        y.add(
            &[packed(&["b@example.com", "c@example.com"])],
            Holds::default(),
            false,
        )
        .unwrap();
        let u = x.union(&y).unwrap();
        assert_eq!(u.items, 4);
        assert!((u.estimate_count().value - 3.0).abs() < 0.5);
        let o = x.overlap(&y).unwrap();
        assert!(o.low <= 1.0 && 1.0 <= o.high, "{o:?}");
        x.update(&y).unwrap();
        assert!(x.bloom == u.bloom && x.items == 4);
        let z = KeyedBloom::new(
            &key(1),
            Canon::from(Kind::CnMobile),
            PrfId::HmacSha256,
            1000,
            1e-4,
        )
        .unwrap();
        assert!(matches!(x.update(&z), Err(Error::Incompatible(_))));
        assert!(x.expected_fpr(3.0) < 1e-4);
    }

    #[test]
    fn structures_come_back_from_an_artefact_with_or_without_the_key() {
        use crate::core::format::{to_bytes, WriteOptions};
        let canon = Canon::from(Kind::CnMobile);
        let mut b = KeyedBloom::new(&key(3), canon, PrfId::HmacSm3, 100, 1e-6).unwrap();
        b.add(&[packed(&["13800138000"])], Holds::default(), false)
            .unwrap();
        let mut t = KeyedTagSet::new(&key(3), canon, PrfId::HmacSm3);
        t.add(&[packed(&["13900000000", "13800138000"])]).unwrap();
        let opts = WriteOptions {
            created: 1234,
            ..WriteOptions::default()
        };
        let bytes = to_bytes(key(3).id(), &[b.as_section(), t.as_section()], &opts).unwrap();
        let read = || Artefact::from_bytes(&bytes).unwrap();
        assert!(matches!(
            structures(read(), Some(&key(4))),
            Err(Error::KeyMismatch { .. })
        ));
        let without = structures(read(), None).unwrap();
        assert!(without.iter().all(|s| s.meta() == b.meta()));
        let [Structure::Bloom(b2), Structure::Tags(t2)] =
            &structures(read(), Some(&key(3))).unwrap()[..]
        else {
            panic!("a Bloom section then a tag set");
        };
        assert_eq!(
            (b2.items, b2.created, t2.len(), t2.created),
            (1, 1234, 2, 1234)
        );
        assert!(b2.bloom == b.bloom && t2.set == t.set);
        let probe = [packed(&["+86 138 0013 8000"])];
        assert!(b2.contains(&probe).unwrap().0[0] && t2.contains(&probe).unwrap().0[0]);
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
