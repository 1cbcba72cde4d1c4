//! Artefact file format v1 (docs/FORMAT.md §5): a 64-byte header, a table of 64-byte section
//! entries, then each section's payload at a 64-byte-aligned offset (so a memory-mapped Bloom
//! payload can be used in place). Every byte is covered: the header and table by one xxh3-64,
//! each payload by its own xxh3-64, and padding must be zero. Nothing is allocated from a header
//! field before it has been checked against the file's real length.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::bloom::{Bloom, BYTES_PER_BLOCK, MAX_BLOCKS_PER_KEY, MAX_LOG2_BLOCKS};
use super::canon::Kind;
use super::eliasfano::{self, EliasFano};
use super::error::{Error, Result};
use super::key::{key_id_hex, KeyId, KEY_ID_LEN};
use super::prf::PrfId;
use super::tagset::TagSet;

pub const MAGIC: [u8; 8] = *b"\x89PIM\r\n\x1a\n";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 64;
pub const ENTRY_LEN: usize = 64;
pub const ALIGN: usize = 64;
pub const MAX_SECTIONS: u32 = 256;

pub const SECTION_BLOOM: u8 = 1;
pub const SECTION_TAGSET: u8 = 2;
/// A tag set Elias–Fano coded (`core::eliasfano`): what a writer stores when it is shorter.
pub const SECTION_TAGSET_EF: u8 = 6;
/// Keyless-mode messages (docs/PSI.md): who made it, for which operation, blinded by whom.
pub const SECTION_PSI_INFO: u8 = 3;
/// Keyless mode: a set of blinded ristretto255 points, 32 bytes each, strictly ascending.
pub const SECTION_PSI_POINTS: u8 = 4;
/// Keyless mode: a fully blinded set truncated to 64 bits, u64 little-endian, ascending.
pub const SECTION_PSI_FINAL: u8 = 5;

/// Files at least this large are memory-mapped by `open` instead of read.
pub const MMAP_THRESHOLD: u64 = 16 << 20;

#[derive(Clone, Debug)]
pub enum Payload {
    Bloom(Bloom),
    Tags(TagSet),
}

#[derive(Clone, Debug)]
pub struct Section {
    pub kind: Kind,
    pub canon_version: u16,
    /// The PRF the tags were made with.
    pub prf: PrfId,
    /// Bloom: valid values added (repeats included). Tag set: distinct tags.
    pub items: u64,
    pub payload: Payload,
}

#[derive(Clone, Debug)]
pub struct Artefact {
    pub key_id: KeyId,
    /// Unix seconds.
    pub created: u64,
    pub sections: Vec<Section>,
    /// The file carries a MAC (checked with `verify_mac` and the key).
    pub authenticated: bool,
}

/// A section to write, borrowed so saving a large index copies nothing.
#[derive(Clone, Copy)]
pub struct SectionRef<'a> {
    pub kind: Kind,
    pub canon_version: u16,
    pub prf: PrfId,
    pub items: u64,
    pub payload: PayloadRef<'a>,
}

#[derive(Clone, Copy)]
pub enum PayloadRef<'a> {
    Bloom(&'a Bloom),
    Tags(&'a TagSet),
}

impl<'a> From<&'a Section> for SectionRef<'a> {
    fn from(s: &'a Section) -> Self {
        SectionRef {
            kind: s.kind,
            canon_version: s.canon_version,
            prf: s.prf,
            items: s.items,
            payload: match &s.payload {
                Payload::Bloom(b) => PayloadRef::Bloom(b),
                Payload::Tags(t) => PayloadRef::Tags(t),
            },
        }
    }
}

#[cfg(target_endian = "big")]
compile_error!("pi_match reads and writes its little-endian payloads in place");

fn u32_bytes(w: &[u32]) -> &[u8] {
    // SAFETY: u32 has no padding and any initialised u32 is valid as 4 bytes; the target is
    // little-endian (compile_error above), so these are the file's bytes.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), std::mem::size_of_val(w)) }
}

fn u64_bytes(w: &[u64]) -> &[u8] {
    // SAFETY: as for u32_bytes.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), std::mem::size_of_val(w)) }
}

/// How a section goes into the file: table bytes 4 and 5, its type, its payload length.
#[derive(Clone, Copy)]
struct Coding {
    stype: u8,
    b4: u8,
    b5: u8,
    len: usize,
}

impl PayloadRef<'_> {
    /// The section type and layout a writer uses: a tag set compressed (type 6) when that is
    /// shorter and `plain_tags` is not asked for, as it was read if it was read compressed.
    fn coding(&self, plain_tags: bool) -> Coding {
        match self {
            PayloadRef::Bloom(b) => Coding {
                stype: SECTION_BLOOM,
                b4: b.log2_blocks(),
                b5: b.blocks_per_key(),
                len: std::mem::size_of_val(b.words()),
            },
            PayloadRef::Tags(t) => {
                let n = t.len() as u64;
                let ef = match (plain_tags, t.packed()) {
                    (true, _) => None,
                    (false, Some(p)) => Some((p.low_bits(), 8 * p.words().len())),
                    (false, None) => eliasfano::compresses(n).map(|l| {
                        let len = eliasfano::payload_len(n, l).expect("a chosen layout");
                        (l, len as usize)
                    }),
                };
                match ef {
                    Some((l, len)) => Coding {
                        stype: SECTION_TAGSET_EF,
                        b4: l,
                        b5: 0,
                        len,
                    },
                    None => Coding {
                        stype: SECTION_TAGSET,
                        b4: 0,
                        b5: 0,
                        len: 8 * t.len(),
                    },
                }
            }
        }
    }

    /// The payload for `c`, borrowed where it is already in that form.
    fn payload(&self, c: &Coding) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        match self {
            PayloadRef::Bloom(b) => Cow::Borrowed(u32_bytes(b.words())),
            PayloadRef::Tags(t) if c.stype == SECTION_TAGSET => Cow::Borrowed(u64_bytes(t.tags())),
            PayloadRef::Tags(t) => match t.packed() {
                Some(p) => Cow::Borrowed(u64_bytes(p.words())),
                None => Cow::Owned(u64_bytes(&eliasfano::encode(t.tags(), c.b4)).to_vec()),
            },
        }
    }
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN as u64) * ALIGN as u64
}

pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    // Large payloads hash in one streaming pass; xxh3 is memory-bound here.
    if bytes.len() < (1 << 20) {
        xxh3_64(bytes)
    } else {
        let mut h = Xxh3::new();
        h.update(bytes);
        h.digest()
    }
}

/// Bytes of the authentication trailer: HMAC-SHA256, its xxh3-64, zeros.
pub const TRAILER_LEN: usize = 64;
/// Header byte 40, bit 0: the file ends with an authentication trailer.
pub const FLAG_AUTHENTICATED: u8 = 1;
/// Header byte 40, bit 1: a keyless-mode message (sections 3–5), not a keyed artefact; bytes
/// 24..32 then hold the operation digest instead of a key id.
pub const FLAG_PSI: u8 = 2;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Passes writes through and feeds them to the artefact MAC.
struct MacWriter<'a, W: Write> {
    inner: &'a mut W,
    mac: Option<HmacSha256>,
}

impl<W: Write> Write for MacWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(m) = &mut self.mac {
            hmac::Mac::update(m, &buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// How to write an artefact.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions<'a> {
    /// Unix seconds, for the header.
    pub created: u64,
    /// With the MAC key (from `Key::mac_key`) the file carries a MAC over all its bytes, so a
    /// key holder can check it was made by a key holder and not altered.
    pub mac_key: Option<&'a [u8; 32]>,
    /// Write tag sets plain (type 2, 8 bytes a tag) even where the compressed form (type 6)
    /// is shorter: for readers older than type 6.
    pub plain_tags: bool,
}

/// How to read an artefact.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// `false` skips the payload checksums (every structural check still runs): a large
    /// memory-mapped index then opens at once and is read only where it is probed. For
    /// trusted local files.
    pub verify_payloads: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify_payloads: true,
        }
    }
}

/// Serialise to any writer. Returns the number of bytes written.
pub fn write_to<W: Write>(
    w: &mut W,
    key_id: &KeyId,
    sections: &[SectionRef<'_>],
    opts: &WriteOptions<'_>,
) -> Result<u64> {
    write_to_with(w, key_id, opts, sections)
}

fn write_to_with<W: Write>(
    w: &mut W,
    key_id: &KeyId,
    opts: &WriteOptions<'_>,
    sections: &[SectionRef<'_>],
) -> Result<u64> {
    let codings: Vec<Coding> = sections
        .iter()
        .map(|s| s.payload.coding(opts.plain_tags))
        .collect();
    let payloads: Vec<std::borrow::Cow<'_, [u8]>> = sections
        .par_iter()
        .zip(&codings)
        .map(|(s, c)| s.payload.payload(c))
        .collect();
    let entries: Vec<RawEntry<'_>> = sections
        .iter()
        .zip(&codings)
        .zip(&payloads)
        .map(|((s, c), p)| RawEntry {
            head: section_head(c.stype, s, c.b4, c.b5),
            payload: p,
        })
        .collect();
    let flags = if opts.mac_key.is_some() {
        FLAG_AUTHENTICATED
    } else {
        0
    };
    write_container(w, key_id, opts.created, flags, &entries, opts.mac_key)
}

/// Bytes 0..16 of a keyed section's table entry.
pub(crate) fn section_head(stype: u8, s: &SectionRef<'_>, b4: u8, b5: u8) -> [u8; 16] {
    let mut head = [0u8; 16];
    head[0] = stype;
    head[1] = s.kind.code();
    head[2..4].copy_from_slice(&s.canon_version.to_le_bytes());
    head[4] = b4;
    head[5] = b5;
    head[6] = s.prf.code();
    head[8..16].copy_from_slice(&s.items.to_le_bytes());
    head
}

/// One section to write in the container: bytes 0..16 of its table entry (type, kind,
/// version, parameters, items) are the caller's; offset, length and checksum are filled in.
pub struct RawEntry<'a> {
    pub head: [u8; 16],
    pub payload: &'a [u8],
}

/// Where everything of a container goes, given each section's table head (bytes 0..16), payload
/// length and payload checksum: the header and the table bytes, each payload's offset, and the
/// length of the body (without the authentication trailer) and of the whole file.
pub(crate) struct Layout {
    pub(crate) header: [u8; HEADER_LEN],
    pub(crate) table: Vec<u8>,
    pub(crate) offsets: Vec<u64>,
    pub(crate) body_len: u64,
    pub(crate) file_len: u64,
}

/// The container's file length for payloads of these lengths (no trailer).
pub(crate) fn container_len(lens: impl IntoIterator<Item = usize>, sections: usize) -> u64 {
    let mut offset = align_up((HEADER_LEN + ENTRY_LEN * sections) as u64);
    for len in lens {
        offset = align_up(offset + len as u64);
    }
    offset
}

pub(crate) fn container_layout(
    id: &[u8; 8],
    created: u64,
    flags: u8,
    sections: &[([u8; 16], usize, u64)],
    trailer: bool,
) -> Layout {
    let table_end = (HEADER_LEN + ENTRY_LEN * sections.len()) as u64;
    let mut offset = align_up(table_end);
    let mut table = Vec::with_capacity(ENTRY_LEN * sections.len());
    let mut offsets = Vec::with_capacity(sections.len());
    for (head, len, sum) in sections {
        let mut e = [0u8; ENTRY_LEN];
        e[..16].copy_from_slice(head);
        e[16..24].copy_from_slice(&offset.to_le_bytes());
        e[24..32].copy_from_slice(&(*len as u64).to_le_bytes());
        e[32..40].copy_from_slice(&sum.to_le_bytes());
        table.extend_from_slice(&e);
        offsets.push(offset);
        offset = align_up(offset + *len as u64);
    }
    let body_len = offset;
    let file_len = body_len + if trailer { TRAILER_LEN as u64 } else { 0 };
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    h[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    h[16..24].copy_from_slice(&file_len.to_le_bytes());
    h[24..32].copy_from_slice(id);
    h[32..40].copy_from_slice(&created.to_le_bytes());
    h[40] = flags;
    let mut hh = Xxh3::new();
    hh.update(&h[..56]);
    hh.update(&table);
    h[56..64].copy_from_slice(&hh.digest().to_le_bytes());
    Layout {
        header: h,
        table,
        offsets,
        body_len,
        file_len,
    }
}

/// The container of §5 around any sections: header, table, aligned payloads, checksums, and
/// with `mac_key` the authentication trailer. Keyed artefacts and keyless messages share it.
pub fn write_container<W: Write>(
    w: &mut W,
    id: &[u8; 8],
    created: u64,
    flags: u8,
    entries: &[RawEntry<'_>],
    mac_key: Option<&[u8; 32]>,
) -> Result<u64> {
    let mac = mac_key.map(|k| {
        <HmacSha256 as hmac::KeyInit>::new_from_slice(k).expect("HMAC takes any key length")
    });
    let mut w = MacWriter { inner: w, mac };
    let w = &mut w;
    let io = |e| Error::io("writing artefact", e);
    if entries.is_empty() || entries.len() > MAX_SECTIONS as usize {
        return Err(Error::Invalid(format!(
            "an artefact holds 1 to {MAX_SECTIONS} sections, got {}",
            entries.len()
        )));
    }
    let heads: Vec<([u8; 16], usize, u64)> = entries
        .iter()
        .map(|s| (s.head, s.payload.len(), checksum(s.payload)))
        .collect();
    let lay = container_layout(id, created, flags, &heads, mac_key.is_some());
    let (h, table, body_len, file_len) = (lay.header, lay.table, lay.body_len, lay.file_len);
    let table_end = (HEADER_LEN + table.len()) as u64;
    let layout: Vec<(u64, &[u8])> = lay
        .offsets
        .iter()
        .zip(entries)
        .map(|(&o, e)| (o, e.payload))
        .collect();
    w.write_all(&h).map_err(io)?;
    w.write_all(&table).map_err(io)?;
    let mut pos = table_end;
    let zeros = [0u8; ALIGN];
    for (off, bytes) in layout {
        w.write_all(&zeros[..(off - pos) as usize]).map_err(io)?;
        w.write_all(bytes).map_err(io)?;
        pos = off + bytes.len() as u64;
    }
    w.write_all(&zeros[..(body_len - pos) as usize])
        .map_err(io)?;
    if let Some(mac) = w.mac.take() {
        let tag: [u8; 32] = hmac::Mac::finalize(mac).into_bytes().into();
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[..32].copy_from_slice(&tag);
        trailer[32..40].copy_from_slice(&xxh3_64(&tag).to_le_bytes());
        w.inner.write_all(&trailer).map_err(io)?;
    }
    Ok(file_len)
}

/// The artefact's bytes.
pub fn to_bytes(
    key_id: &KeyId,
    sections: &[SectionRef<'_>],
    opts: &WriteOptions<'_>,
) -> Result<Vec<u8>> {
    // Sized once: a large index is copied once, not regrown.
    let len = container_len(
        sections
            .iter()
            .map(|s| s.payload.coding(opts.plain_tags).len),
        sections.len(),
    ) + if opts.mac_key.is_some() {
        TRAILER_LEN as u64
    } else {
        0
    };
    let mut v = Vec::with_capacity(len as usize);
    write_to(&mut v, key_id, sections, opts)?;
    Ok(v)
}

/// Write atomically (`core::files::write_atomic`): a temporary file beside the target, then
/// rename, so a crash never leaves a half-written artefact under the real name. Returns the
/// bytes written and their SHA-256, computed as they are written (for the build manifest).
pub fn save(
    path: &Path,
    key_id: &KeyId,
    sections: &[SectionRef<'_>],
    opts: &WriteOptions<'_>,
) -> Result<(u64, [u8; 32])> {
    crate::core::files::write_atomic(path, 0o644, true, |w| {
        let mut h = Sha256Writer {
            inner: w,
            hash: <sha2::Sha256 as sha2::Digest>::new(),
        };
        let n = write_to(&mut h, key_id, sections, opts)?;
        Ok((n, sha2::Digest::finalize(h.hash).into()))
    })
}

/// A writer that hashes what passes through it: a large buffer (a section's payload) is
/// hashed on a second thread while it is written, so writing a 64 MiB index costs the slower
/// of the two, not both.
pub(crate) struct Sha256Writer<'a, W: Write> {
    pub(crate) inner: &'a mut W,
    pub(crate) hash: sha2::Sha256,
}

/// Buffers from this size on are hashed beside their write.
const HASH_BESIDE_MIN: usize = 1 << 20;

impl<W: Write + Send> Write for Sha256Writer<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() < HASH_BESIDE_MIN {
            let n = self.inner.write(buf)?;
            sha2::Digest::update(&mut self.hash, &buf[..n]);
            return Ok(n);
        }
        let (hash, inner) = (&mut self.hash, &mut *self.inner);
        // (A failed write fails the whole file, whatever the hash holds by then.)
        let ((), written) =
            rayon::join(|| sha2::Digest::update(hash, buf), || inner.write_all(buf));
        written.map(|()| buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn rd_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// One section's checked facts; the payload is still in the file's bytes.
#[derive(Clone, Debug)]
pub struct SectionInfo {
    pub stype: u8,
    pub kind: Kind,
    pub canon_version: u16,
    pub prf: PrfId,
    pub log2_blocks: u8,
    pub blocks_per_key: u8,
    pub items: u64,
    pub offset: usize,
    pub len: usize,
}

#[derive(Clone, Debug)]
pub struct Header {
    pub key_id: KeyId,
    pub created: u64,
    pub sections: Vec<SectionInfo>,
    /// The MAC of an authenticated file and the length of the bytes it covers.
    pub mac: Option<([u8; 32], usize)>,
    /// A keyless-mode message (flag bit 1): `key_id` is then the operation digest.
    pub psi: bool,
}

/// Check everything about a file's bytes; on success every section's payload is exactly where
/// the table says, with the right length and (unless `opts` says not to) checksum.
pub fn parse(b: &[u8], opts: &ReadOptions) -> Result<Header> {
    let verify_payloads = opts.verify_payloads;
    let bad = |m: String| Err(Error::format(m));
    if b.len() < HEADER_LEN {
        if b.len() >= 4 && b[..4] != MAGIC[..4] || b.is_empty() {
            return bad("not a pi_match artefact (no pi_match magic bytes)".into());
        }
        return bad(format!(
            "truncated artefact: {} bytes, shorter than the {HEADER_LEN}-byte header",
            b.len()
        ));
    }
    if b[..8] != MAGIC {
        return bad("not a pi_match artefact (no pi_match magic bytes)".into());
    }
    let version = rd_u16(b, 8);
    if version != VERSION {
        return bad(format!(
            "unsupported pi_match format version {version}: this pi_match reads version {VERSION}"
        ));
    }
    if usize::from(rd_u16(b, 10)) != HEADER_LEN {
        return bad(format!("bad header length {}", rd_u16(b, 10)));
    }
    let count = rd_u32(b, 12);
    if count == 0 || count > MAX_SECTIONS {
        return bad(format!(
            "bad section count {count} (1 to {MAX_SECTIONS} allowed)"
        ));
    }
    let file_len = rd_u64(b, 16);
    if file_len != b.len() as u64 {
        return bad(if file_len > b.len() as u64 {
            format!(
                "truncated artefact: header says {file_len} bytes, file has {}",
                b.len()
            )
        } else {
            format!(
                "artefact has {} bytes but its header says {file_len}: trailing data",
                b.len()
            )
        });
    }
    let table_end = HEADER_LEN + ENTRY_LEN * count as usize;
    if table_end > b.len() {
        return bad(format!(
            "section table ({count} entries) runs past the end of the file"
        ));
    }
    let mut hh = Xxh3::new();
    hh.update(&b[..56]);
    hh.update(&b[HEADER_LEN..table_end]);
    if hh.digest() != rd_u64(b, 56) {
        return bad(
            "header checksum mismatch: the artefact's header or section table is damaged".into(),
        );
    }
    if b[40] & !(FLAG_AUTHENTICATED | FLAG_PSI) != 0 || b[41..56].iter().any(|&x| x != 0) {
        return bad("reserved header bytes are not zero".into());
    }
    let authenticated = b[40] & FLAG_AUTHENTICATED != 0;
    let psi = b[40] & FLAG_PSI != 0;
    if psi && authenticated {
        return bad("a keyless message cannot carry a MAC (there is no shared key)".into());
    }
    let mut key_id = [0u8; KEY_ID_LEN];
    key_id.copy_from_slice(&b[24..32]);
    let created = rd_u64(b, 32);
    let mut sections = Vec::with_capacity(count as usize);
    let mut expected_offset = align_up(table_end as u64);
    for i in 0..count as usize {
        let e = &b[HEADER_LEN + ENTRY_LEN * i..HEADER_LEN + ENTRY_LEN * (i + 1)];
        let n = i + 1;
        let stype = e[0];
        let keyless = matches!(
            stype,
            SECTION_PSI_INFO | SECTION_PSI_POINTS | SECTION_PSI_FINAL
        );
        if keyless != psi
            && (keyless || matches!(stype, SECTION_BLOOM | SECTION_TAGSET | SECTION_TAGSET_EF))
        {
            return bad(if psi {
                format!("section {n}: a keyed section (type {stype}) in a keyless message")
            } else {
                format!("section {n}: a keyless-mode section (type {stype}) in a keyed artefact")
            });
        }
        if psi && (stype == SECTION_PSI_INFO) != (i == 0) {
            return bad(format!(
                "section {n}: a keyless message has its info section first, and only there"
            ));
        }
        // The info section of a keyless message names no kind, version or PRF: bytes 1–7 are
        // zero. Every other check below is the same for every section.
        let (kind, canon_version) = if stype == SECTION_PSI_INFO {
            if e[1..8].iter().any(|&x| x != 0) {
                return bad(format!("section {n}: reserved bytes are not zero"));
            }
            (Kind::Raw, 1)
        } else {
            let kind = Kind::from_code(e[1]).ok_or_else(|| {
                Error::format(format!(
                    "section {n}: unknown identifier kind code {}",
                    e[1]
                ))
            })?;
            let canon_version = rd_u16(e, 2);
            if !kind.versions().contains(&canon_version) {
                return bad(format!(
                    "section {n}: made with {} canonicaliser version {canon_version}, which \
                     this pi_match does not implement (it has {}); a newer pi_match reads it",
                    kind.name(),
                    kind.versions_text()
                ));
            }
            (kind, canon_version)
        };
        let (l2, bpk) = (e[4], e[5]);
        let prf = PrfId::from_code(e[6]).ok_or_else(|| {
            Error::format(format!(
                "section {n}: made with PRF id {}, which this pi_match does not implement \
                 (it has 0 hmac-sha256, 1 hmac-sm3); a newer pi_match reads it",
                e[6]
            ))
        })?;
        if e[7] != 0 || e[40..].iter().any(|&x| x != 0) {
            return bad(format!("section {n}: reserved bytes are not zero"));
        }
        let items = rd_u64(e, 8);
        let offset = rd_u64(e, 16);
        let len = rd_u64(e, 24);
        if offset != expected_offset {
            return bad(format!(
                "section {n}: payload offset {offset}, expected {expected_offset}"
            ));
        }
        let end = offset.checked_add(len).filter(|&x| x <= file_len);
        let Some(end) = end else {
            return bad(format!(
                "section {n}: payload of {len} bytes at {offset} runs past the end of the file ({file_len} bytes)"
            ));
        };
        match stype {
            SECTION_BLOOM => {
                if l2 > MAX_LOG2_BLOCKS || bpk == 0 || bpk > MAX_BLOCKS_PER_KEY {
                    return bad(format!(
                        "section {n}: impossible Bloom layout (2^{l2} blocks, {bpk} blocks per item)"
                    ));
                }
                let want = (BYTES_PER_BLOCK as u64) << l2;
                if len != want {
                    return bad(format!(
                        "section {n}: Bloom payload is {len} bytes, 2^{l2} blocks need {want}"
                    ));
                }
            }
            SECTION_TAGSET => {
                if l2 != 0 || bpk != 0 {
                    return bad(format!("section {n}: tag set with Bloom parameters"));
                }
                if !len.is_multiple_of(8) || items != len / 8 {
                    return bad(format!(
                        "section {n}: tag set of {items} tags cannot have a {len}-byte payload"
                    ));
                }
            }
            SECTION_TAGSET_EF => {
                if bpk != 0 {
                    return bad(format!("section {n}: tag set with Bloom parameters"));
                }
                match eliasfano::payload_len(items, l2) {
                    Some(want) if items > 0 && want == len => {}
                    Some(want) if items > 0 => {
                        return bad(format!(
                            "section {n}: compressed tag set of {items} tags with {l2} low \
                             bits cannot have a {len}-byte payload ({want} bytes)"
                        ))
                    }
                    _ => {
                        return bad(format!(
                            "section {n}: impossible compressed tag set ({items} tags, {l2} low \
                             bits; 1 or more tags and 1 to 63 low bits)"
                        ))
                    }
                }
            }
            SECTION_PSI_INFO => {
                if items != len {
                    return bad(format!(
                        "section {n}: info of {len} bytes says it has {items} (items = length)"
                    ));
                }
            }
            SECTION_PSI_POINTS | SECTION_PSI_FINAL => {
                let width: u64 = if stype == SECTION_PSI_POINTS { 32 } else { 8 };
                if l2 != 0 || bpk != 0 || e[6] != 0 {
                    return bad(format!("section {n}: keyless set with keyed parameters"));
                }
                if !len.is_multiple_of(width) || items != len / width {
                    return bad(format!(
                        "section {n}: a keyless set of {items} items cannot have a {len}-byte \
                         payload ({width} bytes each)"
                    ));
                }
            }
            other => return bad(format!("section {n}: unknown section type {other}")),
        }
        let payload = &b[offset as usize..end as usize];
        if verify_payloads && checksum(payload) != rd_u64(e, 32) {
            return bad(format!(
                "section {n} ({}): payload checksum mismatch: the data is damaged",
                if stype == SECTION_PSI_INFO {
                    "info"
                } else {
                    kind.name()
                }
            ));
        }
        let pad_end = align_up(end) as usize;
        if pad_end > b.len() || b[end as usize..pad_end].iter().any(|&x| x != 0) {
            return bad(format!("section {n}: padding after the payload is damaged"));
        }
        expected_offset = pad_end as u64;
        sections.push(SectionInfo {
            stype,
            kind,
            canon_version,
            prf,
            log2_blocks: l2,
            blocks_per_key: bpk,
            items,
            offset: offset as usize,
            len: len as usize,
        });
    }
    let mut mac = None;
    if authenticated {
        let start = expected_offset as usize;
        if start + TRAILER_LEN != b.len() {
            return bad("authenticated artefact without a whole authentication trailer".into());
        }
        let t = &b[start..];
        if xxh3_64(&t[..32]).to_le_bytes() != t[32..40] || t[40..].iter().any(|&x| x != 0) {
            return bad("authentication trailer is damaged".into());
        }
        mac = Some((t[..32].try_into().expect("32 bytes"), start));
        expected_offset = file_len;
    }
    if expected_offset != file_len {
        return bad(format!(
            "artefact has {} bytes after its last section",
            file_len - expected_offset
        ));
    }
    let gap = &b[table_end..align_up(table_end as u64) as usize];
    if gap.iter().any(|&x| x != 0) {
        return bad("padding after the section table is damaged".into());
    }
    Ok(Header {
        key_id,
        created,
        sections,
        mac,
        psi,
    })
}

/// A tag-set section's tags (plain or compressed), checked; `file` is the whole file's bytes,
/// and with `map` (they are a memory-mapped file) a compressed payload is read in place.
pub(crate) fn read_tags(
    s: &SectionInfo,
    file: &[u8],
    map: Option<&Arc<memmap2::Mmap>>,
) -> Result<TagSet> {
    let payload = &file[s.offset..s.offset + s.len];
    match (s.stype, map) {
        (SECTION_TAGSET_EF, Some(m)) => Ok(TagSet::from_packed(EliasFano::from_mmap(
            Arc::clone(m),
            s.offset,
            s.len,
            s.items,
            s.log2_blocks,
        )?)),
        (SECTION_TAGSET_EF, None) => Ok(TagSet::from_packed(EliasFano::from_le_bytes(
            s.items,
            s.log2_blocks,
            payload,
        )?)),
        _ => TagSet::from_le_bytes(payload),
    }
}

fn build(b: &[u8], map: Option<&Arc<memmap2::Mmap>>, verify: bool) -> Result<Artefact> {
    let h = parse(
        b,
        &ReadOptions {
            verify_payloads: verify,
        },
    )?;
    if h.psi {
        return Err(Error::format(
            "this is a keyless-mode message (pi-match psi), not a keyed artefact: read it with \
             pi_match.psi or pi-match psi",
        ));
    }
    let mut sections = Vec::with_capacity(h.sections.len());
    for (n, s) in h.sections.iter().enumerate() {
        let payload = match s.stype {
            SECTION_BLOOM => match map {
                Some(m) => {
                    Bloom::from_mmap(Arc::clone(m), s.offset, s.log2_blocks, s.blocks_per_key)
                }
                None => Bloom::from_le_bytes(
                    s.log2_blocks,
                    s.blocks_per_key,
                    &b[s.offset..s.offset + s.len],
                ),
            }
            .map(Payload::Bloom),
            _ => read_tags(s, b, map).map(Payload::Tags),
        }
        // Which section of the file, for a payload the structural checks of `parse` passed.
        .map_err(|e| match e {
            Error::Format(m) => Error::Format(format!("section {}: {m}", n + 1)),
            other => other,
        })?;
        sections.push(Section {
            kind: s.kind,
            canon_version: s.canon_version,
            prf: s.prf,
            items: s.items,
            payload,
        });
    }
    Ok(Artefact {
        key_id: h.key_id,
        created: h.created,
        sections,
        authenticated: h.mac.is_some(),
    })
}

/// Whether an artefact's MAC is right for `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacStatus {
    NotAuthenticated,
    Valid,
    Invalid,
}

/// Check an artefact's bytes (structure and checksums) and its MAC under `key`; a key with
/// another id is a key mismatch, not an invalid MAC.
pub fn verify_mac(b: &[u8], key: &crate::core::key::Key) -> Result<MacStatus> {
    let h = parse(b, &ReadOptions::default())?;
    if h.psi {
        return Err(Error::format(
            "this is a keyless-mode message: it carries no MAC and no key id",
        ));
    }
    if &h.key_id != key.id() {
        return Err(Error::KeyMismatch {
            what: "this artefact".into(),
            expected: key_id_hex(&h.key_id),
            other: "the key given".into(),
            found: key.id_hex(),
        });
    }
    let Some((tag, covered)) = h.mac else {
        return Ok(MacStatus::NotAuthenticated);
    };
    let mut m = <HmacSha256 as hmac::KeyInit>::new_from_slice(&key.mac_key()[..])
        .expect("HMAC takes any key length");
    hmac::Mac::update(&mut m, &b[..covered]);
    Ok(if hmac::Mac::verify_slice(m, &tag).is_ok() {
        MacStatus::Valid
    } else {
        MacStatus::Invalid
    })
}

impl Artefact {
    pub fn from_bytes(b: &[u8]) -> Result<Artefact> {
        build(b, None, true)
    }

    /// Read a file; files of at least `MMAP_THRESHOLD` bytes are memory-mapped and their Bloom
    /// payloads used in place (copied only if written to).
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<Artefact> {
        let verify = opts.verify_payloads;
        let ctx = || format!("reading {}", path.display());
        let (f, len) = crate::core::files::open_regular(path, None, "artefact")?;
        let r = if len >= MMAP_THRESHOLD {
            // SAFETY: the map is read-only. If another process truncates or rewrites the file
            // while it is mapped, reads may see the new bytes or fault; pi_match writes
            // artefacts by rename, never in place, so its own writers cannot do this.
            let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(ctx(), e))?;
            let map = Arc::new(map);
            build(&map[..], Some(&map), verify)
        } else {
            let mut bytes = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(&mut { f }, &mut bytes).map_err(|e| Error::io(ctx(), e))?;
            build(&bytes, None, verify)
        };
        r.map_err(|e| match e {
            Error::Format(m) => Error::Format(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    pub fn key_id_hex(&self) -> String {
        key_id_hex(&self.key_id)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let refs: Vec<SectionRef<'_>> = self.sections.iter().map(SectionRef::from).collect();
        let opts = WriteOptions {
            created: self.created,
            ..WriteOptions::default()
        };
        to_bytes(&self.key_id, &refs, &opts)
    }
}
