//! Merging the shards of one distributed build (docs/SCALING.md): artefacts with the same key,
//! the same sections in the same order and the same Bloom layouts, merged straight from their
//! bytes into the bytes of one artefact — Bloom payloads OR-ed in one pass that reads every
//! shard once and writes the result once, tag sets merged — without building an index object
//! per shard or copying a shard first. Every shard is checked (structure and payload
//! checksums) before anything is merged; the result is the artefact one process would have
//! written from all the shards' values (only the creation time differs).

use rayon::prelude::*;

use super::bloom::Bloom;
use super::eliasfano;
use super::error::{Error, Result};
use super::format::{
    self, container_layout, container_len, Artefact, Header, Payload, ReadOptions, Section,
    SectionInfo, SECTION_BLOOM, SECTION_TAGSET, SECTION_TAGSET_EF,
};
use super::key::{key_id_hex, KeyId};
use super::tagset::TagSet;

/// Bytes of a Bloom payload OR-ed per task: all the shards' stretches stay in cache.
const CHUNK: usize = 1 << 16;

/// What a merge will write, checked and with the tag sets already merged.
pub struct Plan<'a> {
    key_id: KeyId,
    inputs: Vec<&'a [u8]>,
    headers: Vec<Header>,
    /// Per section: table bytes 0..16 (type, kind, version, layout, PRF, items).
    heads: Vec<[u8; 16]>,
    /// Per section: the merged tags (tag sets) or None (Bloom: OR-ed when written).
    tags: Vec<Option<TagSet>>,
    lens: Vec<usize>,
}

/// What must agree between shards: for a tag set, not whether (or with how many low bits) it
/// was stored compressed — that follows from each shard's size.
fn signature(s: &SectionInfo) -> (u8, u8, u16, u8, u8, u8) {
    let tags = matches!(s.stype, SECTION_TAGSET | SECTION_TAGSET_EF);
    (
        if tags { SECTION_TAGSET } else { s.stype },
        s.kind.code(),
        s.canon_version,
        s.prf.code(),
        if tags { 0 } else { s.log2_blocks },
        s.blocks_per_key,
    )
}

fn describe(s: &SectionInfo) -> String {
    let what = if s.stype == SECTION_BLOOM {
        format!(
            "Bloom index of 2^{} blocks ({} per item)",
            s.log2_blocks, s.blocks_per_key
        )
    } else {
        "tag set".to_string()
    };
    format!(
        "{} {what}, canonicaliser v{}, {}",
        s.kind.name(),
        s.canon_version,
        s.prf.name()
    )
}

/// Check the shards and prepare their merge. With `key_id`, every shard must have been made
/// with that key (a shard of another key is refused, naming the shard).
pub fn plan<'a>(inputs: &[&'a [u8]], key_id: Option<&KeyId>) -> Result<Plan<'a>> {
    if inputs.is_empty() {
        return Err(Error::Invalid("a merge needs at least one shard".into()));
    }
    let headers: Vec<Header> = inputs
        .par_iter()
        .enumerate()
        .map(|(i, b)| {
            format::parse(b, &ReadOptions::default()).map_err(|e| match e {
                Error::Format(m) => Error::Format(format!("shard {}: {m}", i + 1)),
                other => other,
            })
        })
        .collect::<Result<_>>()?;
    let want = *key_id.unwrap_or(&headers[0].key_id);
    for (i, h) in headers.iter().enumerate() {
        if h.psi {
            return Err(Error::format(format!(
                "shard {}: a keyless-mode message, not a keyed artefact",
                i + 1
            )));
        }
        if h.key_id != want {
            return Err(Error::KeyMismatch {
                what: format!("shard {} of the merge", i + 1),
                expected: key_id_hex(&want),
                other: "the build's key".into(),
                found: key_id_hex(&h.key_id),
            });
        }
        let first = &headers[0].sections;
        if h.sections.len() != first.len()
            || h.sections
                .iter()
                .zip(first)
                .any(|(a, b)| signature(a) != signature(b))
        {
            let show = |s: &[SectionInfo]| s.iter().map(describe).collect::<Vec<_>>().join("; ");
            return Err(Error::Incompatible(format!(
                "shard {} holds other sections than shard 1 (shard {}: {}; shard 1: {}): the \
                 shards of one build have the same kinds, layouts and options",
                i + 1,
                i + 1,
                show(&h.sections),
                show(first)
            )));
        }
    }
    let nsec = headers[0].sections.len();
    let mut heads = Vec::with_capacity(nsec);
    let mut tags = Vec::with_capacity(nsec);
    let mut lens = Vec::with_capacity(nsec);
    for j in 0..nsec {
        let s = &headers[0].sections[j];
        let mut head = [0u8; 16];
        head[0] = s.stype;
        head[1] = s.kind.code();
        head[2..4].copy_from_slice(&s.canon_version.to_le_bytes());
        head[4] = s.log2_blocks;
        head[5] = s.blocks_per_key;
        head[6] = s.prf.code();
        let items = match s.stype {
            SECTION_BLOOM => {
                let mut n = 0u64;
                for h in &headers {
                    n = n.checked_add(h.sections[j].items).ok_or_else(|| {
                        Error::Invalid("the shards' item counts overflow 64 bits".into())
                    })?;
                }
                tags.push(None);
                lens.push(s.len);
                n
            }
            SECTION_TAGSET | SECTION_TAGSET_EF => {
                let runs: Vec<Vec<u64>> = inputs
                    .par_iter()
                    .zip(&headers)
                    .enumerate()
                    .map(|(i, (b, h))| {
                        format::read_tags(&h.sections[j], b, None)
                            .map(TagSet::into_vec)
                            .map_err(|e| match e {
                                Error::Format(m) => Error::Format(format!(
                                    "shard {}: section {}: {m}",
                                    i + 1,
                                    j + 1
                                )),
                                other => other,
                            })
                    })
                    .collect::<Result<_>>()?;
                let merged = TagSet::from_sorted_runs(runs);
                let n = merged.len() as u64;
                // Stored as one process would store it: compressed when that is shorter.
                match eliasfano::compresses(n) {
                    Some(l) => {
                        head[0] = SECTION_TAGSET_EF;
                        head[4] = l;
                        lens.push(eliasfano::payload_len(n, l).expect("a chosen layout") as usize);
                    }
                    None => {
                        head[0] = SECTION_TAGSET;
                        head[4] = 0;
                        lens.push(8 * n as usize);
                    }
                }
                tags.push(Some(merged));
                n
            }
            other => {
                return Err(Error::format(format!(
                    "section {}: type {other} cannot be merged",
                    j + 1
                )))
            }
        };
        head[8..16].copy_from_slice(&items.to_le_bytes());
        heads.push(head);
    }
    Ok(Plan {
        key_id: want,
        inputs: inputs.to_vec(),
        headers,
        heads,
        tags,
        lens,
    })
}

impl Plan<'_> {
    /// The length of the merged artefact's bytes.
    pub fn file_len(&self) -> usize {
        container_len(self.lens.iter().copied(), self.lens.len()) as usize
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Write the merged artefact into `out` (exactly `file_len()` bytes; any content, every byte is written): Bloom
    /// payloads are the OR of the shards', written in place in parallel stretches.
    pub fn write_into(&self, out: &mut [u8], created: u64) -> Result<()> {
        assert_eq!(
            out.len(),
            self.file_len(),
            "write_into takes file_len() bytes"
        );
        // The offsets do not depend on the checksums: lay out once with placeholders to place
        // the payloads, then again with the real checksums for the header and table.
        let placeholder: Vec<([u8; 16], usize, u64)> = self
            .heads
            .iter()
            .zip(&self.lens)
            .map(|(h, &l)| (*h, l, 0))
            .collect();
        let offsets = container_layout(&self.key_id, created, 0, &placeholder, false).offsets;
        // Zero what no payload covers (the table gap and each payload's padding).
        let mut pos = 0usize;
        for (&off, &len) in offsets.iter().zip(&self.lens) {
            out[pos..off as usize].fill(0);
            pos = off as usize + len;
        }
        out[pos..].fill(0);
        let mut sums = Vec::with_capacity(self.heads.len());
        for (j, &off) in offsets.iter().enumerate() {
            let dst = &mut out[off as usize..off as usize + self.lens[j]];
            match &self.tags[j] {
                Some(t) if self.heads[j][0] == SECTION_TAGSET_EF => {
                    let words = eliasfano::encode(t.tags(), self.heads[j][4]);
                    for (d, x) in dst.chunks_exact_mut(8).zip(&words) {
                        d.copy_from_slice(&x.to_le_bytes());
                    }
                }
                Some(t) => {
                    for (d, x) in dst.chunks_exact_mut(8).zip(t.tags()) {
                        d.copy_from_slice(&x.to_le_bytes());
                    }
                }
                None => {
                    let srcs = self.bloom_inputs(j);
                    dst.par_chunks_mut(CHUNK).enumerate().for_each(|(c, d)| {
                        let (at, n) = (c * CHUNK, d.len());
                        d.copy_from_slice(&srcs[0][at..at + n]);
                        for s in &srcs[1..] {
                            for (x, y) in d.iter_mut().zip(&s[at..at + n]) {
                                *x |= y;
                            }
                        }
                    });
                }
            }
            sums.push(format::checksum(dst));
        }
        let real: Vec<([u8; 16], usize, u64)> = placeholder
            .iter()
            .zip(sums)
            .map(|(&(h, l, _), s)| (h, l, s))
            .collect();
        let lay = container_layout(&self.key_id, created, 0, &real, false);
        out[..lay.header.len()].copy_from_slice(&lay.header);
        out[lay.header.len()..lay.header.len() + lay.table.len()].copy_from_slice(&lay.table);
        Ok(())
    }

    fn bloom_inputs(&self, j: usize) -> Vec<&[u8]> {
        self.inputs
            .iter()
            .zip(&self.headers)
            .map(|(b, h)| {
                let s = &h.sections[j];
                &b[s.offset..s.offset + s.len]
            })
            .collect()
    }

    /// The merged artefact as sections in memory (no bytes written and read back): what a
    /// client that merges the top of the tree returns. Bloom words are the OR of the shards',
    /// written once, in parallel stretches.
    pub fn into_artefact(mut self, created: u64) -> Result<Artefact> {
        let mut sections = Vec::with_capacity(self.heads.len());
        // The merged tag sets move into the artefact (no copy of what may be gigabytes).
        let tags = std::mem::take(&mut self.tags);
        for (j, t) in tags.into_iter().enumerate() {
            let info = &self.headers[0].sections[j];
            let items = u64::from_le_bytes(self.heads[j][8..16].try_into().expect("8 bytes"));
            let payload = match t {
                Some(t) => Payload::Tags(t),
                None => {
                    let srcs = self.bloom_inputs(j);
                    let n = self.lens[j] / 4;
                    let mut words: Vec<u32> = crate::core::bloom::words_with_capacity(n);
                    const W: usize = CHUNK / 4;
                    words
                        .spare_capacity_mut()
                        .par_chunks_mut(W)
                        .enumerate()
                        .for_each(|(c, d)| {
                            let at = c * CHUNK;
                            for (k, w) in d.iter_mut().enumerate() {
                                let o = at + 4 * k;
                                let mut x = 0u32;
                                for s in &srcs {
                                    x |= u32::from_le_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]);
                                }
                                w.write(x);
                            }
                        });
                    // SAFETY: the loop above wrote every one of the n slots (the chunks cover
                    // the spare capacity, which is exactly n words).
                    unsafe { words.set_len(n) };
                    Payload::Bloom(Bloom::from_words(
                        info.log2_blocks,
                        info.blocks_per_key,
                        words,
                    )?)
                }
            };
            sections.push(Section {
                kind: info.kind,
                canon_version: info.canon_version,
                prf: info.prf,
                items,
                payload,
            });
        }
        Ok(Artefact {
            key_id: self.key_id,
            created,
            sections,
            authenticated: false,
        })
    }

    /// The merged artefact as a new byte vector.
    pub fn to_vec(&self, created: u64) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.file_len()];
        self.write_into(&mut v, created)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bulk::Packed;
    use crate::core::canon::{Canon, Kind};
    use crate::core::key::Key;
    use crate::core::keyed::{Holds, KeyedBloom, KeyedTagSet};
    use crate::core::prf::PrfId;

    fn shard(key: &Key, values: &[&str]) -> Vec<u8> {
        let canon = Canon::from(Kind::Email);
        let mut b = KeyedBloom::new(key, canon, PrfId::HmacSha256, 1000, 1e-6).unwrap();
        let mut t = KeyedTagSet::new(key, canon, PrfId::HmacSha256);
        let mut p = Packed::with_capacity(values.len(), 64);
        for v in values {
            p.push_str(v);
        }
        b.add(std::slice::from_ref(&p), Holds::default(), false)
            .unwrap();
        t.add(std::slice::from_ref(&p)).unwrap();
        format::to_bytes(
            key.id(),
            &[b.as_section(), t.as_section()],
            &format::WriteOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn merge_is_the_build_of_all_values_and_refuses_other_keys_and_layouts() {
        let key = Key::from_bytes(&[7u8; 32]).unwrap();
        let (a, b) = (
            shard(&key, &["a@x.cn", "b@x.cn"]),
            shard(&key, &["b@x.cn", "c@x.cn"]),
        );
        let all = shard(&key, &["a@x.cn", "b@x.cn", "b@x.cn", "c@x.cn"]);
        let merged = plan(&[&a, &b], Some(key.id())).unwrap().to_vec(0).unwrap();
        assert_eq!(merged, all);
        Artefact::from_bytes(&merged).unwrap();
        let art = plan(&[&a, &b], None).unwrap().into_artefact(0).unwrap();
        assert_eq!(art.to_bytes().unwrap(), all);
        // three shards: the odd one waits a level
        let c = shard(&key, &["c@x.cn", "d@x.cn"]);
        let abc = shard(
            &key,
            &["a@x.cn", "b@x.cn", "b@x.cn", "c@x.cn", "c@x.cn", "d@x.cn"],
        );
        let three = plan(&[&a, &b, &c], None).unwrap().into_artefact(0).unwrap();
        assert_eq!(three.to_bytes().unwrap(), abc);
        let other = shard(&Key::from_bytes(&[8u8; 32]).unwrap(), &["a@x.cn"]);
        let e = plan(&[&a, &other], Some(key.id())).err().unwrap();
        assert!(e.to_string().contains("shard 2"), "{e}");
        let mut damaged = b.clone();
        let n = damaged.len();
        damaged[n - 100] ^= 1;
        let e = plan(&[&a, &damaged], None).err().unwrap();
        assert!(e.to_string().starts_with("shard 2:"), "{e}");
    }

    #[test]
    fn tag_sets_merge_whether_each_shard_stored_them_plain_or_compressed() {
        let key = Key::from_bytes(&[7u8; 32]).unwrap();
        let vals: Vec<String> = (0..300).map(|i| format!("u{i}@x.cn")).collect();
        let v: Vec<&str> = vals.iter().map(String::as_str).collect();
        // 5 tags: plain; 200 and 295: compressed (section type 6)
        let (a, b, c) = (
            shard(&key, &v[..5]),
            shard(&key, &v[..200]),
            shard(&key, &v[5..]),
        );
        let types = |bytes: &[u8]| -> Vec<u8> {
            format::parse(bytes, &ReadOptions::default())
                .unwrap()
                .sections
                .iter()
                .map(|s| s.stype)
                .collect()
        };
        assert_eq!(types(&a), vec![SECTION_BLOOM, SECTION_TAGSET]);
        assert_eq!(types(&b), vec![SECTION_BLOOM, SECTION_TAGSET_EF]);
        let mut all: Vec<&str> = v[..5].to_vec();
        all.extend(&v[..200]);
        all.extend(&v[5..]);
        let want = shard(&key, &all);
        let merged = plan(&[&a, &b, &c], None).unwrap().to_vec(0).unwrap();
        assert_eq!(merged, want);
        let art = plan(&[&c, &a, &b], None).unwrap().into_artefact(0).unwrap();
        assert_eq!(art.to_bytes().unwrap(), want);
    }
}
