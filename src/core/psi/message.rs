//! Keyless-mode messages: the files parties exchange. The container of docs/FORMAT.md §5 with
//! flag bit 1 set, the operation digest where a key id would be, an info section (type 3)
//! first, then one set per identifier kind: blinded points (type 4, 32 bytes each) until every
//! party has blinded it, then the fully blinded set truncated to 64 bits (type 5). Every set
//! is strictly ascending — sorted, so a reader cannot tell which input an item came from.
//! Reading checks everything before anything is trusted; nothing secret is ever in a message.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::group::Point;
use super::secret::{check_operation, check_parties, MAX_PARTIES};
use crate::core::canon::{Canon, Kind};
use crate::core::error::{Error, Result};
use crate::core::format::{
    self, write_container, RawEntry, ReadOptions, FLAG_PSI, SECTION_PSI_FINAL, SECTION_PSI_INFO,
    SECTION_PSI_POINTS,
};

/// The version of the keyless protocol a message follows (info byte 0).
pub const PROTOCOL_VERSION: u8 = 1;

/// One kind's set in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Items {
    /// Blinded by some parties: whole compressed points, ascending.
    Points(Vec<Point>),
    /// Blinded by every party and truncated to 64 bits, ascending.
    Final(Vec<u64>),
}

impl Items {
    pub fn len(&self) -> usize {
        match self {
            Items::Points(p) => p.len(),
            Items::Final(f) => f.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSet {
    pub canon: Canon,
    pub items: Items,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub operation: String,
    /// The parties in their agreed order; bit i of `applied` is `parties[i]`.
    pub parties: Vec<String>,
    /// Whose set this is (index into `parties`).
    pub origin: usize,
    /// Whose scalars have been applied.
    pub applied: u64,
    /// Unix seconds the message was written.
    pub created: u64,
    /// One set per kind, kinds ascending by code.
    pub sets: Vec<KindSet>,
}

/// The 8 bytes a message carries where an artefact carries its key id.
pub fn operation_digest(op: &str) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(b"pi_match/psi/v1/operation\0");
    h.update(op.as_bytes());
    h.finalize()[..8].try_into().expect("8 bytes")
}

/// The mask of `n` parties.
pub(crate) fn all_mask(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

impl Message {
    /// How many parties have blinded it.
    pub fn round(&self) -> u32 {
        self.applied.count_ones()
    }

    /// Blinded by every party.
    pub fn is_final(&self) -> bool {
        self.applied == all_mask(self.parties.len())
    }

    pub fn origin_name(&self) -> &str {
        &self.parties[self.origin]
    }

    /// The names of the parties that have blinded it, in the agreed order.
    pub fn applied_names(&self) -> Vec<&str> {
        self.parties
            .iter()
            .enumerate()
            .filter(|(i, _)| self.applied >> i & 1 == 1)
            .map(|(_, p)| p.as_str())
            .collect()
    }

    fn info_bytes(&self) -> Vec<u8> {
        let mut v = vec![
            PROTOCOL_VERSION,
            self.parties.len() as u8,
            self.origin as u8,
            self.round() as u8,
        ];
        v.extend_from_slice(&self.applied.to_le_bytes());
        v.extend_from_slice(&(self.operation.len() as u16).to_le_bytes());
        v.extend_from_slice(self.operation.as_bytes());
        for p in &self.parties {
            v.push(p.len() as u8);
            v.extend_from_slice(p.as_bytes());
        }
        v
    }

    /// Check what a message must be whichever way it was made.
    fn check(&self) -> Result<()> {
        check_operation(&self.operation)?;
        check_parties(&self.parties)?;
        let n = self.parties.len();
        if self.origin >= n
            || self.applied & !all_mask(n) != 0
            || self.applied >> self.origin & 1 == 0
        {
            return Err(Error::format(
                "the info section's origin and blinding mask do not fit its parties",
            ));
        }
        if self.sets.is_empty() {
            return Err(Error::format("a keyless message holds at least one set"));
        }
        let fin = self.is_final();
        for (i, s) in self.sets.iter().enumerate() {
            if i > 0 && self.sets[i - 1].canon.kind.code() >= s.canon.kind.code() {
                return Err(Error::format(
                    "the sets of a keyless message are one per kind, in kind order",
                ));
            }
            let ascending = match &s.items {
                Items::Points(p) if !fin => p.windows(2).all(|w| w[0] < w[1]),
                Items::Final(t) if fin => t.windows(2).all(|w| w[0] < w[1]),
                _ => {
                    return Err(Error::format(if fin {
                        "a message every party has blinded holds truncated sets"
                    } else {
                        "a message not yet blinded by every party holds whole points"
                    }))
                }
            };
            if !ascending {
                return Err(Error::format(format!(
                    "the {} set is not strictly ascending (every pass writes its items sorted)",
                    s.canon.kind.name()
                )));
            }
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }

    fn write_to<W: std::io::Write>(&self, w: &mut W) -> Result<u64> {
        self.check().map_err(|e| Error::Invalid(e.to_string()))?;
        let info = self.info_bytes();
        let mut info_head = [0u8; 16];
        info_head[0] = SECTION_PSI_INFO;
        info_head[8..16].copy_from_slice(&(info.len() as u64).to_le_bytes());
        let mut entries = vec![RawEntry {
            head: info_head,
            payload: &info,
        }];
        for s in &self.sets {
            let mut head = [0u8; 16];
            head[1] = s.canon.kind.code();
            head[2..4].copy_from_slice(&s.canon.version.to_le_bytes());
            head[8..16].copy_from_slice(&(s.items.len() as u64).to_le_bytes());
            let payload: &[u8] = match &s.items {
                Items::Points(p) => {
                    head[0] = SECTION_PSI_POINTS;
                    p.as_flattened()
                }
                Items::Final(t) => {
                    head[0] = SECTION_PSI_FINAL;
                    u64s_as_bytes(t)
                }
            };
            entries.push(RawEntry { head, payload });
        }
        write_container(
            w,
            &operation_digest(&self.operation),
            self.created,
            FLAG_PSI,
            &entries,
            None,
        )
    }

    /// Write atomically (temporary file, fsync, rename); returns the file's SHA-256.
    pub fn save(&self, path: &Path) -> Result<[u8; 32]> {
        crate::core::files::write_atomic(path, 0o644, true, |w| {
            let mut h = format::Sha256Writer {
                inner: w,
                hash: Sha256::new(),
            };
            self.write_to(&mut h)?;
            Ok(h.hash.finalize().into())
        })
    }

    /// A message from a file's bytes, every field checked first.
    pub fn from_bytes(b: &[u8]) -> Result<Message> {
        let h = format::parse(b, &ReadOptions::default())?;
        if !h.psi {
            return Err(Error::format(
                "this is a keyed artefact, not a keyless-mode message (pi-match psi reads only \
                 the messages it writes)",
            ));
        }
        let info = &h.sections[0];
        let m = parse_info(&b[info.offset..info.offset + info.len])?;
        let (operation, parties, origin, applied) = m;
        if operation_digest(&operation) != h.key_id {
            return Err(Error::format(
                "the header's operation digest does not match the info section",
            ));
        }
        let mut sets = Vec::with_capacity(h.sections.len() - 1);
        for s in &h.sections[1..] {
            let bytes = &b[s.offset..s.offset + s.len];
            let items = if s.stype == SECTION_PSI_POINTS {
                Items::Points(
                    bytes
                        .chunks_exact(32)
                        .map(|c| c.try_into().expect("32 bytes"))
                        .collect(),
                )
            } else {
                Items::Final(
                    bytes
                        .chunks_exact(8)
                        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                )
            };
            sets.push(KindSet {
                canon: Canon {
                    kind: s.kind,
                    version: s.canon_version,
                },
                items,
            });
        }
        let msg = Message {
            operation,
            parties,
            origin,
            applied,
            created: h.created,
            sets,
        };
        msg.check().map_err(|e| match e {
            Error::Invalid(m) => Error::Format(m),
            other => other,
        })?;
        Ok(msg)
    }

    /// Read a message file (regular files only; every field checked).
    pub fn open(path: &Path) -> Result<Message> {
        let (f, len) = crate::core::files::open_regular(path, None, "keyless message")?;
        let mut bytes = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut { f }, &mut bytes)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Message::from_bytes(&bytes).map_err(|e| match e {
            Error::Format(m) => Error::Format(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The set of `kind`, if the message has one.
    pub fn set(&self, kind: Kind) -> Option<&KindSet> {
        self.sets.iter().find(|s| s.canon.kind == kind)
    }
}

type Info = (String, Vec<String>, usize, u64);

fn parse_info(p: &[u8]) -> Result<Info> {
    let bad = |m: &str| Error::format(format!("the info section is damaged: {m}"));
    if p.len() < 14 {
        return Err(bad("too short"));
    }
    if p[0] != PROTOCOL_VERSION {
        return Err(Error::format(format!(
            "keyless protocol version {}: this pi_match follows version {PROTOCOL_VERSION}",
            p[0]
        )));
    }
    let n = usize::from(p[1]);
    if !(2..=MAX_PARTIES).contains(&n) {
        return Err(bad("party count"));
    }
    let (origin, round) = (usize::from(p[2]), u32::from(p[3]));
    let applied = u64::from_le_bytes(p[4..12].try_into().expect("8 bytes"));
    if applied.count_ones() != round {
        return Err(bad(
            "the round is not the number of parties that have blinded",
        ));
    }
    let op_len = usize::from(u16::from_le_bytes([p[12], p[13]]));
    let mut at = 14;
    let text = |at: usize, len: usize| -> Result<String> {
        let b = p
            .get(at..at + len)
            .ok_or_else(|| bad("runs past its end"))?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("a name is not UTF-8"))
    };
    let operation = text(at, op_len)?;
    at += op_len;
    let mut parties = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(*p.get(at).ok_or_else(|| bad("runs past its end"))?);
        parties.push(text(at + 1, len)?);
        at += 1 + len;
    }
    if at != p.len() {
        return Err(bad("bytes after the last party"));
    }
    check_operation(&operation).map_err(|e| Error::Format(e.to_string()))?;
    check_parties(&parties).map_err(|e| Error::Format(e.to_string()))?;
    Ok((operation, parties, origin, applied))
}

fn u64s_as_bytes(w: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding; the target is little-endian (format.rs refuses others).
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), std::mem::size_of_val(w)) }
}
