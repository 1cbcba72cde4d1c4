//! The compressed tag-set payload (docs/FORMAT.md §5, section type 6): the sorted 64-bit tags
//! Elias–Fano coded. Each tag is split into its `l` low bits, stored as they are, and its high
//! `64 − l` bits, stored as a unary-coded bucket count: item `i` sets bit `(t_i >> l) + i` of a
//! bit vector of `n + 2^(64−l)` bits. With `l ≈ 64 − log2 n`, an item costs `l + 1` bits plus
//! `2^(64−l)/n` (0.7 … 1.4 for the writer's choice of `l`), so 64 − log2(n) + 1.9 … 2.2 bits
//! instead of 64.
//!
//! A packed set answers membership in place: one sampled bucket start per 256 buckets (built
//! in the pass that checks the payload, ≈ 0.05 bytes per item) finds a tag's bucket after a
//! scan of a few words, and a bucket holds about 0.7 items. Decoding everything (for set
//! algebra) is a parallel pass of about a nanosecond per item.

use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;

use super::error::{Error, Result};

/// Buckets per sampled bucket start.
const SAMPLE: u64 = 256;

/// The payload's length in bytes for `n` items with `l` low bits, or None when it could not be
/// a file's (more than 2^62 bytes).
pub fn payload_len(n: u64, l: u8) -> Option<u64> {
    if !(1..=63).contains(&l) {
        return None;
    }
    let (n, l) = (u128::from(n), u32::from(l));
    let buckets = 1u128 << (64 - l);
    let words = (n * u128::from(l)).div_ceil(64) + (n + buckets).div_ceil(64);
    let bytes = words * 8;
    (bytes < 1u128 << 62).then_some(bytes as u64)
}

/// The writer's choice of `l` for `n ≥ 1` items: the one of 1 … 63 giving the shortest
/// payload, the largest such `l` on a tie. With its payload length in bytes.
pub fn choose(n: u64) -> (u8, u64) {
    let mut best = (63u8, payload_len(n, 63).unwrap_or(u64::MAX));
    for l in (1..63u8).rev() {
        if let Some(len) = payload_len(n, l) {
            if len < best.1 {
                best = (l, len);
            }
        }
    }
    best
}

/// Whether the writer stores `n` tags compressed: when that payload is shorter than the plain
/// one (8 bytes per tag). From about 50 tags on.
pub fn compresses(n: u64) -> Option<u8> {
    if n == 0 {
        return None;
    }
    let (l, len) = choose(n);
    (len < n.saturating_mul(8)).then_some(l)
}

#[inline]
fn low_mask(l: u32) -> u64 {
    (1u64 << l) - 1
}

/// Read `l` bits at bit `at` of `words` (`l` ≤ 63; the words hold them).
#[inline]
fn get_bits(words: &[u64], at: u64, l: u32) -> u64 {
    let (w, off) = ((at / 64) as usize, (at % 64) as u32);
    let mut v = words[w] >> off;
    if off + l > 64 {
        v |= words[w + 1] << (64 - off);
    }
    v & low_mask(l)
}

/// Position (0 … 63) of the `k`-th (from 0) set bit of `w`, which has more than `k`.
#[inline]
fn select_in_word(mut w: u64, k: u32) -> u32 {
    for _ in 0..k {
        w &= w - 1;
    }
    w.trailing_zeros()
}

/// Elias–Fano code `tags` (strictly ascending, at least one) with `l` low bits: the payload's
/// words, low part then high part.
pub fn encode(tags: &[u64], l: u8) -> Vec<u64> {
    let n = tags.len() as u64;
    let len = payload_len(n, l).expect("a valid layout") as usize / 8;
    let lw = (n * u64::from(l)).div_ceil(64) as usize;
    let l32 = u32::from(l);
    let mut out = vec![0u64; len];
    let (low, high) = out.split_at_mut(lw);
    // 64 items fill exactly l words of the low part, so chunks of 64·K items write disjoint
    // runs of words and go in parallel.
    const K: usize = 1024;
    low.par_chunks_mut(K * l as usize)
        .zip(tags.par_chunks(64 * K))
        .for_each(|(dst, src)| {
            let mask = low_mask(l32);
            for (i, &t) in src.iter().enumerate() {
                let at = i as u64 * u64::from(l32);
                let (w, off) = ((at / 64) as usize, (at % 64) as u32);
                let v = t & mask;
                dst[w] |= v << off;
                if off + l32 > 64 {
                    dst[w + 1] |= v >> (64 - off);
                }
            }
        });
    for (i, &t) in tags.iter().enumerate() {
        let at = (t >> l32) + i as u64;
        high[(at / 64) as usize] |= 1 << (at % 64);
    }
    out
}

/// The payload's words: in memory, or where a memory-mapped file has them (read in place, never
/// copied: a large set opens without touching memory of its own).
#[derive(Clone, Debug)]
enum Words {
    Owned(Vec<u64>),
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

/// A checked Elias–Fano payload, held packed.
#[derive(Clone, Debug)]
pub struct EliasFano {
    n: u64,
    l: u8,
    /// The payload: `low_words` words of low bits, then the high bit vector.
    words: Words,
    low_words: usize,
    /// `samples[k]`: the bit where bucket `256·k` starts in the high part.
    samples: Vec<u64>,
}

impl EliasFano {
    /// From a payload's bytes, checking everything a reader must (docs/FORMAT.md §5): the
    /// length for `n` and `l`, exactly `n` one bits in the high part and none in its last bit
    /// or padding, zero padding in the low part, and tags strictly ascending.
    pub fn from_le_bytes(n: u64, l: u8, payload: &[u8]) -> Result<EliasFano> {
        Self::check_len(n, l, payload.len())?;
        let words: Vec<u64> = payload
            .par_chunks(8 << 12)
            .flat_map_iter(|c| {
                c.chunks_exact(8)
                    .map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8")))
            })
            .collect();
        Self::checked(n, l, Words::Owned(words))
    }

    /// As `from_le_bytes`, the payload read in place at `offset` of a memory-mapped file.
    pub fn from_mmap(
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
        n: u64,
        l: u8,
    ) -> Result<EliasFano> {
        Self::check_len(n, l, len)?;
        let fits = offset.checked_add(len).is_some_and(|end| end <= map.len());
        if !fits || !(map.as_ptr() as usize + offset).is_multiple_of(8) {
            return Err(Error::format(
                "compressed tag set does not fit the mapped file",
            ));
        }
        Self::checked(
            n,
            l,
            Words::Mapped {
                map,
                offset,
                len: len / 8,
            },
        )
    }

    fn check_len(n: u64, l: u8, len: usize) -> Result<()> {
        match payload_len(n, l).filter(|_| n >= 1) {
            None => Err(Error::format(format!(
                "compressed tag set of {n} tags with {l} low bits is impossible (1 or more \
                 tags, 1 to 63 low bits)"
            ))),
            Some(want) if len as u64 != want => Err(Error::format(format!(
                "compressed tag set of {n} tags with {l} low bits has a {len}-byte payload, not {want}"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn checked(n: u64, l: u8, words: Words) -> Result<EliasFano> {
        let bad = |m: String| Err(Error::format(m));
        let ef = EliasFano {
            n,
            l,
            samples: Vec::new(),
            words,
            low_words: (n * u64::from(l)).div_ceil(64) as usize,
        };
        let words = ef.all_words();
        let l32 = u32::from(l);
        let low_bits = n * u64::from(l32);
        let low_words = low_bits.div_ceil(64) as usize;
        if !low_bits.is_multiple_of(64) && words[low_words - 1] >> (low_bits % 64) != 0 {
            return bad("compressed tag set: padding after the low bits is not zero".into());
        }
        let high = &words[low_words..];
        // Fits: payload_len checked the size. Bit high_bits − 1 closes the last bucket: it and
        // the padding after it are zero.
        let high_bits = n + (1u64 << (64 - l32));
        let last = high_bits - 1;
        let (lw, lo) = ((last / 64) as usize, last % 64);
        if high[lw] >> lo != 0 || high[lw + 1..].iter().any(|&w| w != 0) {
            return bad("compressed tag set: bits after the last bucket are not zero".into());
        }
        let ones: u64 = high.par_iter().map(|w| u64::from(w.count_ones())).sum();
        if ones != n {
            return bad(format!("compressed tag set says {n} tags but codes {ones}"));
        }
        if let Some(i) = ef.first_not_ascending() {
            return bad(format!(
                "compressed tag set is not strictly ascending at item {i}"
            ));
        }
        let samples = ef.sample_buckets();
        Ok(EliasFano { samples, ..ef })
    }

    fn all_words(&self) -> &[u64] {
        match &self.words {
            Words::Owned(v) => v,
            Words::Mapped { map, offset, len } => {
                // SAFETY: from_mmap checked that offset..offset + 8·len lies inside the map and
                // that the address is 8-aligned; the map is read-only and lives as long as the
                // Arc we hold; every bit pattern is a valid u64; the file is little-endian and
                // so is every supported target (the compile_error in core::format).
                unsafe { std::slice::from_raw_parts(map.as_ptr().add(*offset).cast::<u64>(), *len) }
            }
        }
    }

    fn high(&self) -> &[u64] {
        &self.all_words()[self.low_words..]
    }

    fn low(&self, i: u64) -> u64 {
        get_bits(
            &self.all_words()[..self.low_words],
            i * u64::from(self.l),
            u32::from(self.l),
        )
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn low_bits(&self) -> u8 {
        self.l
    }

    /// Whether the payload is read in place from a memory-mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.words, Words::Mapped { .. })
    }

    /// The payload's words (low part, then high part), to write back unchanged.
    pub fn words(&self) -> &[u64] {
        self.all_words()
    }

    /// Per run of high words, the number of items before it.
    fn runs(&self) -> Vec<(usize, u64)> {
        const RUN: usize = 1 << 14;
        let high = self.high();
        let counts: Vec<u64> = high
            .par_chunks(RUN)
            .map(|c| c.iter().map(|w| u64::from(w.count_ones())).sum())
            .collect();
        let mut out = Vec::with_capacity(counts.len() + 1);
        let mut before = 0u64;
        for (k, &c) in counts.iter().enumerate() {
            out.push((k * RUN, before));
            before += c;
        }
        out.push((high.len(), before));
        out
    }

    /// Call `f(item index, tag)` for the items coded in high words `from..to`, the first of
    /// which is item `first`.
    fn each_in(&self, from: usize, to: usize, first: u64, mut f: impl FnMut(u64, u64)) {
        let high = self.high();
        let l = u32::from(self.l);
        let mut i = first;
        for (wi, &w0) in high[from..to].iter().enumerate() {
            let mut w = w0;
            let base = (from + wi) as u64 * 64;
            while w != 0 {
                let q = base + u64::from(w.trailing_zeros());
                // item i's one bit is at (t >> l) + i
                f(i, ((q - i) << l) | self.low(i));
                i += 1;
                w &= w - 1;
            }
        }
    }

    /// The first item (from 1) that is not above the one before, if any.
    fn first_not_ascending(&self) -> Option<u64> {
        let runs = self.runs();
        // Per run: its first and last tag, and its first item out of order.
        type RunCheck = (Option<(u64, u64)>, Option<u64>);
        let per: Vec<RunCheck> = runs
            .par_windows(2)
            .map(|r| {
                let ((from, first), to) = (r[0], r[1].0);
                let (mut ends, mut bad) = (None::<(u64, u64)>, None);
                self.each_in(from, to, first, |i, t| {
                    ends = Some(match ends {
                        None => (t, t),
                        Some((a, p)) => {
                            if bad.is_none() && t <= p {
                                bad = Some(i + 1);
                            }
                            (a, t)
                        }
                    });
                });
                (ends, bad)
            })
            .collect();
        let mut prev_last: Option<u64> = None;
        for (k, (ends, bad)) in per.iter().enumerate() {
            if let Some((a, z)) = ends {
                if prev_last.is_some_and(|p| *a <= p) {
                    return Some(runs[k].1 + 1);
                }
                if bad.is_some() {
                    return *bad;
                }
                prev_last = Some(*z);
            }
        }
        None
    }

    /// Every tag, ascending.
    pub fn decode(&self) -> Vec<u64> {
        let runs = self.runs();
        let mut out = vec![0u64; self.n as usize];
        let mut rest: &mut [u64] = &mut out;
        let mut parts = Vec::with_capacity(runs.len());
        for r in runs.windows(2) {
            let (part, tail) = rest.split_at_mut((r[1].1 - r[0].1) as usize);
            parts.push((r[0], r[1].0, part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|((from, first), to, part)| {
            self.each_in(from, to, first, |i, t| part[(i - first) as usize] = t);
        });
        out
    }

    /// The bit where every 256th bucket starts in the high part.
    fn sample_buckets(&self) -> Vec<u64> {
        let high = self.high();
        let buckets = 1u64 << (64 - u32::from(self.l));
        let valid_bits = self.n + buckets;
        let mut samples = Vec::with_capacity(buckets.div_ceil(SAMPLE) as usize);
        samples.push(0);
        let mut zeros = 0u64; // zeros before the current word
        for (wi, &w) in high.iter().enumerate() {
            let base = wi as u64 * 64;
            if base >= valid_bits {
                break;
            }
            let live = (valid_bits - base).min(64);
            let z = !w
                & if live == 64 {
                    u64::MAX
                } else {
                    (1 << live) - 1
                };
            let zc = u64::from(z.count_ones());
            // The zero closing bucket h is zero number h; bucket h + 1 starts after it.
            let next = (zeros / SAMPLE + 1) * SAMPLE - 1; // the next zero whose successor is sampled
            if next < zeros + zc {
                let q = base + u64::from(select_in_word(z, (next - zeros) as u32));
                if next + 1 < buckets {
                    samples.push(q + 1);
                }
            }
            zeros += zc;
        }
        samples
    }

    /// The bit of the high part where bucket `h` starts (`h` < 2^(64−l)).
    fn bucket_start(&self, h: u64) -> u64 {
        let high = self.high();
        let mut p = self.samples[(h / SAMPLE) as usize];
        // Pass the zeros that close buckets 256·⌊h/256⌋ … h − 1.
        let mut skip = (h % SAMPLE) as u32;
        while skip > 0 {
            let (w, off) = ((p / 64) as usize, (p % 64) as u32);
            let z = !high[w] >> off; // zeros from p on, in this word
            let zc = z.count_ones(); // the shift brought in no ones
            if zc < skip {
                skip -= zc;
                p = (w as u64 + 1) * 64;
            } else {
                p += u64::from(select_in_word(z, skip - 1)) + 1;
                skip = 0;
            }
        }
        p
    }

    /// Whether `t` is one of the tags, read in place.
    pub fn contains(&self, t: u64) -> bool {
        let l = u32::from(self.l);
        let (h, low) = (t >> l, t & low_mask(l));
        let high = self.high();
        let mut p = self.bucket_start(h);
        // Bucket h: the one bits from p until the next zero; item index = p − h.
        let mut i = p - h;
        loop {
            if high[(p / 64) as usize] >> (p % 64) & 1 == 0 {
                return false;
            }
            let x = self.low(i);
            if x >= low {
                return x == low;
            }
            p += 1;
            i += 1;
        }
    }

    /// The tags `t` with `lo ≤ t < hi` (`hi` up to 2^64), ascending, into `out` (cleared): a
    /// stretch decoded in place, without decoding the rest.
    pub fn decode_range(&self, lo: u64, hi: u128, out: &mut Vec<u64>) {
        out.clear();
        if u128::from(lo) >= hi {
            return;
        }
        let l = u32::from(self.l);
        let h0 = lo >> l;
        let p = self.bucket_start(h0);
        let high = self.high();
        let mut i = p - h0; // items before bucket h0
        let (mut w, off) = ((p / 64) as usize, p % 64);
        let mut word = high[w] & (u64::MAX << off);
        loop {
            while word != 0 {
                let q = w as u64 * 64 + u64::from(word.trailing_zeros());
                let t = ((q - i) << l) | self.low(i);
                if u128::from(t) >= hi {
                    return;
                }
                if t >= lo {
                    out.push(t);
                }
                i += 1;
                word &= word - 1;
            }
            w += 1;
            if w >= high.len() || i >= self.n {
                return;
            }
            word = high[w];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn lcg(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        let mut v: Vec<u64> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                x ^ (x >> 29)
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn round_trip_membership_and_size() {
        for &(n, seed) in &[
            (1usize, 1u64),
            (2, 2),
            (63, 3),
            (64, 4),
            (65, 5),
            (1000, 6),
            (100_000, 7),
        ] {
            let tags = lcg(n, seed);
            for l in [1u8, 7, 30, 63] {
                let Some(len) = payload_len(tags.len() as u64, l) else {
                    continue;
                };
                if len > 1 << 24 {
                    continue;
                }
                let w = encode(&tags, l);
                let ef = EliasFano::from_le_bytes(tags.len() as u64, l, &bytes(&w)).unwrap();
                assert_eq!(ef.decode(), tags, "n {n} l {l}");
                for &t in tags.iter().take(500) {
                    assert!(ef.contains(t));
                    assert!(!ef.contains(t ^ 1) || tags.binary_search(&(t ^ 1)).is_ok());
                }
                for t in lcg(300, seed + 100) {
                    assert_eq!(ef.contains(t), tags.binary_search(&t).is_ok());
                }
            }
            let (l, len) = choose(tags.len() as u64);
            let w = encode(&tags, l);
            assert_eq!(w.len() as u64 * 8, len);
        }
        assert_eq!(compresses(10), None);
        let (l, len) = choose(100_000_000);
        assert_eq!(l, 37);
        assert!((len as f64 / 1e8 - 4.92).abs() < 0.01, "{len}");
    }

    #[test]
    fn extremes() {
        let tags = vec![0, 1, u64::MAX - 1, u64::MAX];
        for l in [1u8, 2, 62, 63] {
            if payload_len(4, l).unwrap() > 1 << 20 {
                continue;
            }
            let ef = EliasFano::from_le_bytes(4, l, &bytes(&encode(&tags, l))).unwrap();
            assert_eq!(ef.decode(), tags);
            assert!(tags.iter().all(|&t| ef.contains(t)));
            assert!(!ef.contains(2) && !ef.contains(u64::MAX - 2));
        }
    }

    #[test]
    fn damage_is_refused() {
        let tags = lcg(500, 9);
        let n = tags.len() as u64;
        let (l, _) = choose(n);
        let good = bytes(&encode(&tags, l));
        assert!(EliasFano::from_le_bytes(n, l, &good).is_ok());
        assert!(EliasFano::from_le_bytes(n + 1, l, &good).is_err());
        assert!(EliasFano::from_le_bytes(n, l + 1, &good).is_err());
        assert!(EliasFano::from_le_bytes(n, 0, &good).is_err());
        assert!(EliasFano::from_le_bytes(0, l, &[]).is_err());
        assert!(EliasFano::from_le_bytes(n, l, &good[8..]).is_err());
        // Every single-bit flip: refused, or (a low bit) a different valid set.
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[byte] ^= 1 << bit;
                if let Ok(ef) = EliasFano::from_le_bytes(n, l, &b) {
                    assert_ne!(ef.decode(), tags);
                }
            }
        }
        // Equal neighbours (a repeat) are refused as not ascending.
        let mut rep = tags.clone();
        rep[10] = rep[11];
        let e = EliasFano::from_le_bytes(n, l, &bytes(&encode(&rep, l)))
            .err()
            .unwrap();
        assert!(e.to_string().contains("ascending at item 12"), "{e}");
    }

    #[test]
    fn the_worked_example_of_format_md() {
        let tags = [
            0x0000000000000005,
            0x1000000000000003,
            0x1000000000000007,
            0xF00000000000000A,
        ];
        let w = encode(&tags, 60);
        assert_eq!(
            w,
            vec![
                0x3000000000000005,
                0x0700000000000000,
                0x00a0000000000000,
                0,
                0x4000d
            ]
        );
        let ef = EliasFano::from_le_bytes(4, 60, &bytes(&w)).unwrap();
        assert_eq!(ef.decode(), tags);
        assert_eq!(compresses(4), None);
        assert_eq!(choose(1000).0, 54);
    }
}

#[cfg(test)]
mod ranges {
    use super::*;

    #[test]
    fn a_decoded_range_is_that_stretch_of_the_tags() {
        let mut tags: Vec<u64> = (0..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        tags.extend([0, 1, u64::MAX]);
        tags.sort_unstable();
        tags.dedup();
        let (l, _) = choose(tags.len() as u64);
        let b: Vec<u8> = encode(&tags, l)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let ef = EliasFano::from_le_bytes(tags.len() as u64, l, &b).unwrap();
        let mut out = Vec::new();
        let mut all: Vec<u64> = Vec::new();
        for r in 0..256u64 {
            let (lo, hi) = (r << 56, u128::from(r + 1) << 56);
            ef.decode_range(lo, hi, &mut out);
            let want: Vec<u64> = tags
                .iter()
                .copied()
                .filter(|&t| t >= lo && u128::from(t) < hi)
                .collect();
            assert_eq!(out, want, "range {r}");
            all.extend(&out);
        }
        assert_eq!(all, tags);
        ef.decode_range(tags[10], u128::from(tags[20]), &mut out);
        assert_eq!(out, &tags[10..20]);
        ef.decode_range(5, 5, &mut out);
        assert!(out.is_empty());
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `EF_N=100000000 cargo test --release -- --ignored ef_speed --nocapture`: encode,
    /// check, decode and probe EF_N tags (10 M by default).
    #[test]
    #[ignore]
    fn ef_speed() {
        let n: u64 = std::env::var("EF_N").map_or(10_000_000, |v| v.parse().unwrap());
        let mut tags: Vec<u64> = (0..n)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        tags.par_sort_unstable();
        tags.dedup();
        let (l, _) = choose(tags.len() as u64);
        let t = std::time::Instant::now();
        let w = encode(&tags, l);
        let enc = t.elapsed();
        let b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        let t = std::time::Instant::now();
        let ef = EliasFano::from_le_bytes(tags.len() as u64, l, &b).unwrap();
        let check = t.elapsed();
        let t = std::time::Instant::now();
        let d = ef.decode();
        let dec = t.elapsed();
        assert_eq!(d, tags);
        let t = std::time::Instant::now();
        let hits = tags.iter().step_by(10).filter(|&&x| ef.contains(x)).count();
        let probe = t.elapsed();
        assert_eq!(hits, tags.len().div_ceil(10));
        // Two packed sets, the second every other tag: intersected stretch by stretch, and
        // decoded then merged.
        let half: Vec<u64> = tags.iter().step_by(2).copied().collect();
        let (l2, _) = choose(half.len() as u64);
        let b2: Vec<u8> = encode(&half, l2)
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let pack = |b: &[u8], n: usize, l| {
            crate::core::tagset::TagSet::from_packed(
                EliasFano::from_le_bytes(n as u64, l, b).unwrap(),
            )
        };
        let (a, c) = (pack(&b, tags.len(), l), pack(&b2, half.len(), l2));
        let t = std::time::Instant::now();
        assert_eq!(a.intersection_len(&c), half.len());
        let stretched = t.elapsed();
        let t = std::time::Instant::now();
        let (da, dc) = (a.tags().to_vec(), c.tags().to_vec());
        let decoded = t.elapsed();
        drop((da, dc));
        let per = |d: std::time::Duration, k: usize| d.as_secs_f64() * 1e9 / k as f64;
        eprintln!(
            "ns/tag of both sets: |A ∩ B| by stretches {:.1}; decoding both alone {:.1}",
            per(stretched, tags.len() + half.len()),
            per(decoded, tags.len() + half.len())
        );
        eprintln!(
            "ns/item: encode {:.1} check {:.1} decode {:.1} contains {:.1}",
            per(enc, tags.len()),
            per(check, tags.len()),
            per(dec, tags.len()),
            per(probe, hits)
        );
    }
}
