//! Split-block Bloom filter in the Parquet SBBF layout: 256-bit blocks of eight 32-bit words,
//! one bit per word chosen with the Parquet salts, so one insert or lookup touches one cache
//! line per block. The block count is a power of two and the block index is the top bits of a
//! 64-bit word of the tag, so halving a filter is OR-ing neighbouring blocks (`fold`).
//!
//! Bit positions from a 32-byte tag `t` (docs/FORMAT.md §4): for block j in 0..blocks_per_key,
//! `h = u64::from_le_bytes(t[8 + 8j .. 16 + 8j])`, `block = h >> (64 - log2_blocks)` (0 when
//! log2_blocks = 0), `x = h as u32`, and word i gets bit `(x * SALT[i]) >> 27` (wrapping u32).

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use memmap2::Mmap;
use rayon::prelude::*;

use super::error::{Error, Result};

/// The Parquet SBBF salts.
pub const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];
pub const WORDS_PER_BLOCK: usize = 8;
pub const BYTES_PER_BLOCK: usize = 32;
/// 2^36 blocks = 2 TiB: far beyond any machine; refuses absurd headers before allocating.
pub const MAX_LOG2_BLOCKS: u8 = 36;
pub const MAX_BLOCKS_PER_KEY: u8 = 3;

/// Filter words: owned, or borrowed from a memory-mapped file until first written.
#[derive(Clone)]
enum Words {
    Owned(Owned),
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

#[derive(Clone)]
pub struct Bloom {
    words: Words,
    log2_blocks: u8,
    blocks_per_key: u8,
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bloom")
            .field("log2_blocks", &self.log2_blocks)
            .field("blocks_per_key", &self.blocks_per_key)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Bloom {
    fn eq(&self, other: &Self) -> bool {
        self.log2_blocks == other.log2_blocks
            && self.blocks_per_key == other.blocks_per_key
            && self.words() == other.words()
    }
}

/// Expected false-positive rate of one lookup after `n` distinct inserts (Poisson block loads;
/// each block's 8 words each get one of 32 bits per item). Exact enough for sizing.
pub fn expected_fpr(n: f64, log2_blocks: u8, blocks_per_key: u8) -> f64 {
    let blocks = (1u64 << log2_blocks) as f64;
    let lambda = n * f64::from(blocks_per_key) / blocks;
    let q = 31.0f64 / 32.0;
    if lambda > 4096.0 {
        // A block this loaded is full for any practical purpose; the sum below would be long.
        return (1.0 - q.powf(lambda))
            .powi(8)
            .powi(i32::from(blocks_per_key));
    }
    // E[(1 - q^J)^8] over J ~ Poisson(lambda), summed directly (in log space, so large loads
    // do not underflow) over lambda ± 12 sd.
    let spread = 12.0 * lambda.sqrt() + 40.0;
    let j_lo = (lambda - spread).max(0.0) as u64;
    let j_hi = (lambda + spread) as u64;
    let ln_lambda = lambda.ln();
    let per_block: f64 = (j_lo..=j_hi)
        .map(|j| {
            let jf = j as f64;
            let ln_pmf = if lambda > 0.0 {
                -lambda + jf * ln_lambda - ln_factorial(j)
            } else if j == 0 {
                0.0
            } else {
                f64::NEG_INFINITY
            };
            ln_pmf.exp() * (1.0 - q.powf(jf)).powi(8)
        })
        .sum();
    per_block.min(1.0).powi(i32::from(blocks_per_key))
}

/// ln(j!) exactly for small j, by Stirling's series beyond (error below 1e-12).
fn ln_factorial(j: u64) -> f64 {
    if j < 32 {
        return (2..=j).map(|i| (i as f64).ln()).sum();
    }
    let x = j as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x * x * x)
}

/// Blocks per item for every new filter. Filters can be compared only when they set the same
/// bits for an item, so this does not depend on capacity or rate: agencies that chose
/// different sizes or rates still get comparable indices. Two blocks per item need about half
/// the bits of one block at rates of 1e-5 and below, and are within a few per cent of the
/// best choice from 1e-3 to 1e-7 (docs/FORMAT.md §4 has the table).
pub const BLOCKS_PER_KEY: u8 = 2;

/// Layout for `capacity` distinct items at false-positive rate `fpr`: `BLOCKS_PER_KEY`
/// blocks per item and the smallest power-of-two block count that meets the rate.
pub fn plan(capacity: u64, fpr: f64) -> Result<(u8, u8)> {
    if !(fpr > 0.0 && fpr < 1.0) {
        return Err(Error::Invalid(format!(
            "fpr must be between 0 and 1 (exclusive), got {fpr}"
        )));
    }
    if fpr < 1e-15 {
        return Err(Error::Invalid(format!(
            "fpr {fpr} is below 1e-15; use a TagSet for exact answers"
        )));
    }
    let n = capacity.max(1) as f64;
    (0..=MAX_LOG2_BLOCKS)
        .find(|&l2| expected_fpr(n, l2, BLOCKS_PER_KEY) <= fpr)
        .map(|l2| (l2, BLOCKS_PER_KEY))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "capacity {capacity} at fpr {fpr} needs a filter larger than 2 TiB"
            ))
        })
}

#[inline]
fn block_and_mask_key(tag: &[u8; 32], j: usize, log2_blocks: u8) -> (usize, u32) {
    let mut b = [0u8; 8];
    b.copy_from_slice(&tag[8 + 8 * j..16 + 8 * j]);
    let h = u64::from_le_bytes(b);
    let block = if log2_blocks == 0 {
        0
    } else {
        (h >> (64 - u32::from(log2_blocks))) as usize
    };
    (block, h as u32)
}

#[inline]
fn bit(x: u32, i: usize) -> u32 {
    1u32 << (x.wrapping_mul(SALT[i]) >> 27)
}

/// Owned filter words, `len` of them from word `off` of `mem`. A filter made here starts on a
/// cache line (`off` skips to it), so no 32-byte block spans two lines: setting or testing a
/// block is one cache miss, not two for every other block as at malloc's 16-byte alignment.
struct Owned {
    mem: Mem,
    off: usize,
    len: usize,
}

/// Where owned words live: the heap, or (a large filter) pages mapped for it alone.
enum Mem {
    Heap(Vec<u32>),
    /// An anonymous map: zero pages no one has touched yet, so the kernel can back them with
    /// huge pages at first touch. Heap memory cannot promise that: malloc hands out memory
    /// freed earlier in the process (Python and Arrow free a lot while a CLI build starts),
    /// which is already backed by 4 KiB pages and which `calloc` must clear by touching it.
    /// Measured on a `pi-match build` of 5 M rows: both 32 MiB filters landed in reused heap
    /// memory with no huge page at all, every insert paying a page walk.
    Anon(memmap2::MmapMut),
}

const LINE: usize = 64;
const HUGE: usize = 2 << 20;

impl Owned {
    /// `n` zeroed words from a cache line on. A large filter asks Linux for transparent huge
    /// pages before its first touch (where THP is in `madvise` mode, as on many servers): a
    /// random insert or lookup then costs a cache miss, not a cache miss and a page walk.
    fn zeroed(n: usize) -> Owned {
        let bytes = n * 4;
        if bytes >= 2 * HUGE {
            // A map one huge page longer than needed, used from its first 2 MiB boundary, so
            // every huge page of the filter can be one (the slack is never touched: no memory).
            if let Ok(map) = memmap2::MmapMut::map_anon(bytes + HUGE) {
                let start = map.as_ptr() as usize;
                let off = (start.next_multiple_of(HUGE) - start) / 4;
                let words = Owned {
                    mem: Mem::Anon(map),
                    off,
                    len: n,
                };
                advise_huge(words.as_slice().as_ptr().cast(), bytes);
                return words;
            }
        }
        let buf = vec![0u32; n + LINE / 4 - 1];
        let off = (buf.as_ptr() as usize).wrapping_neg() % LINE / 4;
        let words = Owned {
            mem: Mem::Heap(buf),
            off,
            len: n,
        };
        advise_huge(words.as_slice().as_ptr().cast(), bytes);
        words
    }

    /// `words` as they are, wherever they start.
    fn from_vec(buf: Vec<u32>) -> Owned {
        let len = buf.len();
        Owned {
            mem: Mem::Heap(buf),
            off: 0,
            len,
        }
    }

    fn as_slice(&self) -> &[u32] {
        match &self.mem {
            Mem::Heap(buf) => &buf[self.off..self.off + self.len],
            // SAFETY: `zeroed` mapped at least 4 * (off + len) bytes (off < HUGE / 4 words of
            // slack, len words after it); the map starts on a page, so the words are aligned;
            // every bit pattern is a valid u32; the map lives as long as `self`.
            Mem::Anon(map) => unsafe {
                std::slice::from_raw_parts(map.as_ptr().cast::<u32>().add(self.off), self.len)
            },
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        match &mut self.mem {
            Mem::Heap(buf) => &mut buf[self.off..self.off + self.len],
            // SAFETY: as in `as_slice`, and `&mut self` makes this the only borrow of the map.
            Mem::Anon(map) => unsafe {
                std::slice::from_raw_parts_mut(
                    map.as_mut_ptr().cast::<u32>().add(self.off),
                    self.len,
                )
            },
        }
    }
}

impl Clone for Owned {
    /// A copy that starts on a cache line too (a cloned `Vec` would start where malloc says).
    fn clone(&self) -> Owned {
        let mut c = Owned::zeroed(self.len);
        c.as_mut_slice().copy_from_slice(self.as_slice());
        c
    }
}

/// Room for `n` words, advised as `Owned::zeroed` is, before anything is written to it.
pub(crate) fn words_with_capacity(n: usize) -> Vec<u32> {
    let v: Vec<u32> = Vec::with_capacity(n);
    advise_huge(v.as_ptr().cast(), n * 4);
    v
}

/// Ask for transparent huge pages on the whole 2 MiB pages of the `len` bytes at `start` (an
/// allocation of the caller's, not yet touched). A hint: where it is refused nothing changes.
#[cfg(target_os = "linux")]
fn advise_huge(start: *const u8, len: usize) {
    let start = start as usize;
    if len < 2 * HUGE {
        return;
    }
    // The whole 2 MiB pages inside the allocation (madvise needs a page-aligned start).
    let from = start.next_multiple_of(HUGE);
    let to = (start + len) / HUGE * HUGE;
    if to > from {
        // SAFETY: the range lies inside the live allocation `v`; MADV_HUGEPAGE only changes how
        // the kernel backs it (never its contents), and failure is harmless (ignored).
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_: *const u8, _: usize) {}

impl Bloom {
    pub fn new(log2_blocks: u8, blocks_per_key: u8) -> Result<Bloom> {
        check_layout(log2_blocks, blocks_per_key)?;
        let n_words = (1usize << log2_blocks) * WORDS_PER_BLOCK;
        Ok(Bloom {
            words: Words::Owned(Owned::zeroed(n_words)),
            log2_blocks,
            blocks_per_key,
        })
    }

    pub fn with_capacity(capacity: u64, fpr: f64) -> Result<Bloom> {
        let (log2, bpk) = plan(capacity, fpr)?;
        Bloom::new(log2, bpk)
    }

    /// Build from little-endian payload bytes (copied). The caller has checked the length.
    pub fn from_le_bytes(log2_blocks: u8, blocks_per_key: u8, payload: &[u8]) -> Result<Bloom> {
        check_layout(log2_blocks, blocks_per_key)?;
        let want = (1usize << log2_blocks) * BYTES_PER_BLOCK;
        if payload.len() != want {
            return Err(Error::format(format!(
                "Bloom payload is {} bytes, but 2^{log2_blocks} blocks need {want}",
                payload.len()
            )));
        }
        let mut words = Owned::zeroed(want / 4);
        for (w, c) in words.as_mut_slice().iter_mut().zip(payload.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(Bloom {
            words: Words::Owned(words),
            log2_blocks,
            blocks_per_key,
        })
    }

    /// Own `words` (the payload's little-endian u32 words) as a filter of this layout.
    pub fn from_words(log2_blocks: u8, blocks_per_key: u8, words: Vec<u32>) -> Result<Bloom> {
        check_layout(log2_blocks, blocks_per_key)?;
        if words.len() != (1usize << log2_blocks) * WORDS_PER_BLOCK {
            return Err(Error::format(format!(
                "{} Bloom words, but 2^{log2_blocks} blocks need {}",
                words.len(),
                (1usize << log2_blocks) * WORDS_PER_BLOCK
            )));
        }
        Ok(Bloom {
            words: Words::Owned(Owned::from_vec(words)),
            log2_blocks,
            blocks_per_key,
        })
    }

    /// Borrow the payload from a memory map without reading it. `offset` must be 4-aligned.
    pub fn from_mmap(
        map: Arc<Mmap>,
        offset: usize,
        log2_blocks: u8,
        blocks_per_key: u8,
    ) -> Result<Bloom> {
        check_layout(log2_blocks, blocks_per_key)?;
        let len = (1usize << log2_blocks) * WORDS_PER_BLOCK;
        let fits = offset
            .checked_add(len * 4)
            .is_some_and(|end| end <= map.len());
        if !fits || !offset.is_multiple_of(4) || !(map.as_ptr() as usize).is_multiple_of(4) {
            return Err(Error::format("Bloom payload does not fit the mapped file"));
        }
        Ok(Bloom {
            words: Words::Mapped { map, offset, len },
            log2_blocks,
            blocks_per_key,
        })
    }

    pub fn words(&self) -> &[u32] {
        match &self.words {
            Words::Owned(v) => v.as_slice(),
            Words::Mapped { map, offset, len } => {
                // SAFETY: from_mmap checked that offset..offset+4*len lies inside the map and
                // that the address is 4-aligned; the map is read-only and lives as long as
                // the Arc we hold; every bit pattern is a valid u32; the file is little-endian
                // and so is every supported target (see the compile_error in core/mod.rs).
                unsafe { std::slice::from_raw_parts(map.as_ptr().add(*offset).cast::<u32>(), *len) }
            }
        }
    }

    /// Writable words; a mapped filter is copied into memory on first write.
    fn words_mut(&mut self) -> &mut [u32] {
        if let Words::Mapped { .. } = self.words {
            let mut v = Owned::zeroed(self.words().len());
            v.as_mut_slice().copy_from_slice(self.words());
            self.words = Words::Owned(v);
        }
        match &mut self.words {
            Words::Owned(v) => v.as_mut_slice(),
            Words::Mapped { .. } => unreachable!("converted to Owned just above"),
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self.words, Words::Mapped { .. })
    }

    pub fn log2_blocks(&self) -> u8 {
        self.log2_blocks
    }

    pub fn blocks_per_key(&self) -> u8 {
        self.blocks_per_key
    }

    pub fn num_blocks(&self) -> u64 {
        1u64 << self.log2_blocks
    }

    pub fn num_bits(&self) -> u64 {
        self.num_blocks() * 256
    }

    /// Bits set per inserted item (before collisions).
    pub fn bits_per_item(&self) -> u32 {
        8 * u32::from(self.blocks_per_key)
    }

    pub fn byte_len(&self) -> usize {
        self.words().len() * 4
    }

    pub fn insert_tag(&mut self, tag: &[u8; 32]) {
        let (l2, bpk) = (self.log2_blocks, self.blocks_per_key);
        let w = self.words_mut();
        for j in 0..usize::from(bpk) {
            let (block, x) = block_and_mask_key(tag, j, l2);
            set_block(w, block, x);
        }
    }

    pub fn insert_tags(&mut self, tags: &[[u8; 32]]) {
        self.insert_tags_where(tags, &vec![0u8; tags.len()]);
    }

    /// Insert `tags[i]` wherever `codes[i] == 0`, in parallel tasks through
    /// [`ConcurrentInsert`] (the same filter as inserting one by one).
    pub fn insert_tags_where(&mut self, tags: &[[u8; 32]], codes: &[u8]) {
        const TASK: usize = 2048;
        let ins = ConcurrentInsert::new(self, rayon::current_num_threads());
        let task = |k: usize, t: &[[u8; 32]]| {
            t.iter().for_each(|t| ins.prefetch(t));
            ins.insert_where(t, |i| codes[k * TASK + i] == 0);
        };
        if tags.len() < 2 * TASK {
            task(0, tags);
        } else {
            tags.par_chunks(TASK)
                .enumerate()
                .for_each(|(k, t)| task(k, t));
        }
    }

    /// `out[i] = codes[i] == 0 && contains(tags[i])`, in parallel with prefetching.
    pub fn contains_where(&self, tags: &[[u8; 32]], codes: &[u8], out: &mut [bool]) {
        let words = self.words();
        let (l2, bpk) = (self.log2_blocks, self.blocks_per_key);
        let avx2 = has_avx2();
        let run = |t: &[[u8; 32]], c: &[u8], o: &mut [bool]| {
            for ((t, c), o) in t
                .chunks(BATCH)
                .zip(c.chunks(BATCH))
                .zip(o.chunks_mut(BATCH))
            {
                for tag in t {
                    for j in 0..usize::from(bpk) {
                        prefetch(words, block_and_mask_key(tag, j, l2).0);
                    }
                }
                for ((tag, code), out) in t.iter().zip(c).zip(o.iter_mut()) {
                    *out = *code == 0 && contains_any(words, l2, bpk, tag, avx2);
                }
            }
        };
        if tags.len() < 4096 {
            run(tags, codes, out);
        } else {
            tags.par_chunks(2048)
                .zip(codes.par_chunks(2048).zip(out.par_chunks_mut(2048)))
                .for_each(|(t, (c, o))| run(t, c, o));
        }
    }

    #[inline]
    pub fn contains_tag(&self, tag: &[u8; 32]) -> bool {
        contains_in(self.words(), self.log2_blocks, self.blocks_per_key, tag)
    }

    /// Number of set bits (parallel over chunks).
    pub fn popcount(&self) -> u64 {
        self.words()
            .par_chunks(1 << 16)
            .map(|c| c.iter().map(|w| u64::from(w.count_ones())).sum::<u64>())
            .sum()
    }

    /// Halve the block count `times` times by OR-ing neighbouring blocks. A folded filter holds
    /// exactly the bits a filter of the smaller size would hold for the same items.
    pub fn fold(&self, times: u8) -> Result<Bloom> {
        if times > self.log2_blocks {
            return Err(Error::Invalid(format!(
                "cannot fold 2^{} blocks {times} times",
                self.log2_blocks
            )));
        }
        if times == 0 {
            return Ok(self.clone());
        }
        let group = 1usize << times;
        let src = self.words();
        let new_log2 = self.log2_blocks - times;
        let mut out = Owned::zeroed((1usize << new_log2) * WORDS_PER_BLOCK);
        out.as_mut_slice()
            .par_chunks_mut(WORDS_PER_BLOCK)
            .enumerate()
            .for_each(|(b, dst)| {
                for g in 0..group {
                    let s = (b * group + g) * WORDS_PER_BLOCK;
                    for (d, w) in dst.iter_mut().zip(&src[s..s + WORDS_PER_BLOCK]) {
                        *d |= w;
                    }
                }
            });
        Ok(Bloom {
            words: Words::Owned(out),
            log2_blocks: new_log2,
            blocks_per_key: self.blocks_per_key,
        })
    }

    /// Bring two filters to the smaller of their sizes (folding the larger).
    pub fn to_common_size<'a>(
        a: &'a Bloom,
        b: &'a Bloom,
    ) -> Result<(std::borrow::Cow<'a, Bloom>, std::borrow::Cow<'a, Bloom>)> {
        use std::borrow::Cow;
        if a.blocks_per_key != b.blocks_per_key {
            return Err(Error::Incompatible(format!(
                "one index sets {} blocks per item and the other {}; they cannot be compared",
                a.blocks_per_key, b.blocks_per_key
            )));
        }
        Ok(match a.log2_blocks.cmp(&b.log2_blocks) {
            std::cmp::Ordering::Equal => (Cow::Borrowed(a), Cow::Borrowed(b)),
            std::cmp::Ordering::Greater => (
                Cow::Owned(a.fold(a.log2_blocks - b.log2_blocks)?),
                Cow::Borrowed(b),
            ),
            std::cmp::Ordering::Less => (
                Cow::Borrowed(a),
                Cow::Owned(b.fold(b.log2_blocks - a.log2_blocks)?),
            ),
        })
    }

    /// OR-union; filters of different sizes are folded to the smaller size first.
    pub fn union(&self, other: &Bloom) -> Result<Bloom> {
        let (a, b) = Bloom::to_common_size(self, other)?;
        // One pass: each thread writes the OR of its stretch straight into fresh memory (so the
        // page faults of a large result are taken in parallel, and nothing is copied first).
        let (x, y) = (a.words(), b.words());
        assert_eq!(x.len(), y.len(), "to_common_size gives equal sizes");
        let mut out = Owned::zeroed(x.len());
        out.as_mut_slice()
            .par_chunks_mut(1 << 14)
            .zip(x.par_chunks(1 << 14).zip(y.par_chunks(1 << 14)))
            .for_each(|(d, (p, q))| {
                for ((d, p), q) in d.iter_mut().zip(p).zip(q) {
                    *d = p | q;
                }
            });
        Ok(Bloom {
            words: Words::Owned(out),
            log2_blocks: a.log2_blocks,
            blocks_per_key: a.blocks_per_key,
        })
    }

    /// OR `other` into this filter in place (no new memory when the sizes match; a larger
    /// `other` is folded first, a larger `self` is replaced by its folded union).
    pub fn union_in_place(&mut self, other: &Bloom) -> Result<()> {
        if self.blocks_per_key != other.blocks_per_key || self.log2_blocks > other.log2_blocks {
            *self = self.union(other)?;
            return Ok(());
        }
        let folded;
        let src = if other.log2_blocks > self.log2_blocks {
            folded = other.fold(other.log2_blocks - self.log2_blocks)?;
            folded.words()
        } else {
            other.words()
        };
        self.words_mut()
            .par_chunks_mut(1 << 14)
            .zip(src.par_chunks(1 << 14))
            .for_each(|(d, s)| {
                for (x, y) in d.iter_mut().zip(s) {
                    *x |= y;
                }
            });
        Ok(())
    }

    /// The false-positive rate of this filter as it is: a random item hits a random block and a
    /// random bit in each of its eight words, so the rate is the mean over blocks of
    /// Π_i popcount(word_i)/32, to the power of the blocks per item.
    pub fn fill_fpr(&self) -> f64 {
        let per_block: f64 = self
            .words()
            .par_chunks(WORDS_PER_BLOCK * 1024)
            .map(|c| {
                c.chunks_exact(WORDS_PER_BLOCK)
                    .map(|b| {
                        b.iter()
                            .map(|w| f64::from(w.count_ones()) / 32.0)
                            .product::<f64>()
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / self.num_blocks() as f64;
        per_block.powi(i32::from(self.blocks_per_key))
    }

    /// Popcount of the OR of several same-size filters, without building it.
    pub fn or_popcount(filters: &[&Bloom]) -> u64 {
        let Some(first) = filters.first() else {
            return 0;
        };
        let len = first.words().len();
        const CHUNK: usize = 1 << 14;
        (0..len.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(len));
                let mut acc = first.words()[lo..hi].to_vec();
                for f in &filters[1..] {
                    for (a, w) in acc.iter_mut().zip(&f.words()[lo..hi]) {
                        *a |= w;
                    }
                }
                acc.iter().map(|w| u64::from(w.count_ones())).sum::<u64>()
            })
            .sum()
    }

    /// Payload bytes, little-endian.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let w = self.words();
        let mut out = Vec::with_capacity(w.len() * 4);
        for x in w {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }
}

/// Items whose blocks are prefetched together before any is touched.
const BATCH: usize = 16;

#[inline]
fn contains_in(w: &[u32], l2: u8, bpk: u8, tag: &[u8; 32]) -> bool {
    (0..usize::from(bpk)).all(|j| {
        let (block, x) = block_and_mask_key(tag, j, l2);
        let blk = &w[block * WORDS_PER_BLOCK..(block + 1) * WORDS_PER_BLOCK];
        blk.iter()
            .enumerate()
            .all(|(i, word)| word & bit(x, i) != 0)
    })
}

#[inline]
fn prefetch(words: &[u32], block: usize) {
    prefetch_addr(words.as_ptr() as usize, words.len(), block);
}

/// Prefetch block `block` of the `len` words at address `base`.
#[inline]
fn prefetch_addr(base: usize, len: usize, block: usize) {
    #[cfg(target_arch = "x86_64")]
    if block * WORDS_PER_BLOCK < len {
        // SAFETY: prefetching is a hint that never faults and reads nothing; the address is
        // inside the `len` words at `base`.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                (base + block * BYTES_PER_BLOCK) as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (base, len, block);
}

/// Set key `x`'s bit in each word of block `block`.
#[inline]
fn set_block(words: &mut [u32], block: usize, x: u32) {
    let blk = &mut words[block * WORDS_PER_BLOCK..(block + 1) * WORDS_PER_BLOCK];
    for (i, word) in blk.iter_mut().enumerate() {
        *word |= bit(x, i);
    }
}

/// Inserts from the tagging tasks themselves, while they hash. A task prefetches the blocks of
/// each tag soon after it makes it and sets their bits when the task ends (`insert_where`), by
/// then from cache: the memory latency of a large filter hides behind the hashing instead of
/// following it. The filter is cut into parts of contiguous blocks, each behind its own lock;
/// a task takes the parts it needs one at a time, whichever is free first, so tasks rarely
/// wait. Setting bits commutes, so the filter is the same as inserting one by one, in any
/// order and on any number of threads.
pub struct ConcurrentInsert<'a> {
    parts: Vec<Mutex<&'a mut [u32]>>,
    /// `block >> shift` is a block's part.
    shift: u8,
    log2_blocks: u8,
    blocks_per_key: u8,
    /// Where the words start, for prefetching only (a hint, never read through).
    base: usize,
    words: usize,
}

impl<'a> ConcurrentInsert<'a> {
    /// Insert into `bloom` from up to `threads` threads at once.
    pub fn new(bloom: &'a mut Bloom, threads: usize) -> ConcurrentInsert<'a> {
        let (l2, bpk) = (bloom.log2_blocks, bloom.blocks_per_key);
        let words = bloom.words_mut();
        // Four parts a thread keep the chance that two tasks want one part at once small.
        let log_parts = ((threads.max(1) * 4).next_power_of_two().trailing_zeros() as u8).min(l2);
        let (base, len) = (words.as_ptr() as usize, words.len());
        let part_words = len >> log_parts;
        ConcurrentInsert {
            parts: words.chunks_mut(part_words).map(Mutex::new).collect(),
            shift: l2 - log_parts,
            log2_blocks: l2,
            blocks_per_key: bpk,
            base,
            words: len,
        }
    }

    /// Start fetching the blocks `tag` will set.
    #[inline]
    pub fn prefetch(&self, tag: &[u8; 32]) {
        for j in 0..usize::from(self.blocks_per_key) {
            let block = block_and_mask_key(tag, j, self.log2_blocks).0;
            prefetch_addr(self.base, self.words, block);
        }
    }

    /// Set the bits of `tags[i]` for every `i` that `keep` accepts.
    pub fn insert_where(&self, tags: &[[u8; 32]], keep: impl Fn(usize) -> bool) {
        let (l2, bpk) = (self.log2_blocks, self.blocks_per_key);
        let n_parts = self.parts.len();
        // The task's blocks, grouped by part (a counting sort): (block within its part, key).
        let mut count = vec![0usize; n_parts + 1];
        let mut keys = Vec::with_capacity(tags.len() * usize::from(bpk));
        for (i, tag) in tags.iter().enumerate() {
            if keep(i) {
                for j in 0..usize::from(bpk) {
                    let (block, x) = block_and_mask_key(tag, j, l2);
                    count[(block >> self.shift) + 1] += 1;
                    keys.push((block, x));
                }
            }
        }
        for p in 0..n_parts {
            count[p + 1] += count[p];
        }
        let mut grouped = vec![(0usize, 0u32); keys.len()];
        let mut next = count.clone();
        let low = (1usize << self.shift) - 1;
        for &(block, x) in &keys {
            let p = block >> self.shift;
            grouped[next[p]] = (block & low, x);
            next[p] += 1;
        }
        // Each part with blocks to set, whichever lock is free first; wait only when none is.
        let mut todo: Vec<usize> = (0..n_parts).filter(|&p| count[p + 1] > count[p]).collect();
        while !todo.is_empty() {
            let mut k = 0;
            let mut progressed = false;
            while k < todo.len() {
                let p = todo[k];
                if let Some(mut words) = try_lock(&self.parts[p]) {
                    set_bits(&mut words, &grouped[count[p]..count[p + 1]]);
                    todo.swap_remove(k);
                    progressed = true;
                } else {
                    k += 1;
                }
            }
            if !progressed {
                let p = todo.swap_remove(0);
                let mut words = lock(&self.parts[p]);
                set_bits(&mut words, &grouped[count[p]..count[p + 1]]);
            }
        }
    }
}

/// A part's lock; a panic while one was held left only whole words set, so go on.
fn lock<'m, 'a>(part: &'m Mutex<&'a mut [u32]>) -> MutexGuard<'m, &'a mut [u32]> {
    part.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn try_lock<'m, 'a>(part: &'m Mutex<&'a mut [u32]>) -> Option<MutexGuard<'m, &'a mut [u32]>> {
    match part.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Set the bits of `(block, x)` pairs in `words`: with AVX2, a block's eight bit positions
/// are one multiply, shift and OR of a 256-bit register (the filter is the same either way).
fn set_bits(words: &mut [u32], keys: &[(usize, u32)]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { avx2::set_bits(words, keys) };
        return;
    }
    set_bits_scalar(words, keys);
}

fn set_bits_scalar(words: &mut [u32], keys: &[(usize, u32)]) {
    for &(block, x) in keys {
        set_block(words, block, x);
    }
}

/// Whether every block of `tag` has its key's bits set (AVX2 when the caller found it).
#[inline]
fn contains_any(w: &[u32], l2: u8, bpk: u8, tag: &[u8; 32], avx2: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is true only where the CPU supports AVX2 (`has_avx2`).
        return unsafe { avx2::contains(w, l2, bpk, tag) };
    }
    let _ = avx2;
    contains_in(w, l2, bpk, tag)
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{block_and_mask_key, SALT, WORDS_PER_BLOCK};

    /// The eight words' bits of key `x`: word i gets bit `(x * SALT[i]) >> 27`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mask(x: u32) -> __m256i {
        // SAFETY: SALT is 32 readable bytes; an unaligned load.
        let salt = unsafe { _mm256_loadu_si256(SALT.as_ptr().cast()) };
        let shift = _mm256_srli_epi32::<27>(_mm256_mullo_epi32(_mm256_set1_epi32(x as i32), salt));
        _mm256_sllv_epi32(_mm256_set1_epi32(1), shift)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn set_bits(words: &mut [u32], keys: &[(usize, u32)]) {
        for &(block, x) in keys {
            let blk = &mut words[block * WORDS_PER_BLOCK..(block + 1) * WORDS_PER_BLOCK];
            let p: *mut __m256i = blk.as_mut_ptr().cast();
            // SAFETY: `blk` is 8 words (32 bytes) of `words`, bounds-checked just above;
            // unaligned load and store.
            unsafe { _mm256_storeu_si256(p, _mm256_or_si256(_mm256_loadu_si256(p), mask(x))) };
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn contains(w: &[u32], l2: u8, bpk: u8, tag: &[u8; 32]) -> bool {
        (0..usize::from(bpk)).all(|j| {
            let (block, x) = block_and_mask_key(tag, j, l2);
            let blk = &w[block * WORDS_PER_BLOCK..(block + 1) * WORDS_PER_BLOCK];
            // SAFETY: `blk` is 8 words (32 bytes) of `w`, bounds-checked just above.
            let b = unsafe { _mm256_loadu_si256(blk.as_ptr().cast()) };
            // testc: every bit of the mask is set in the block.
            _mm256_testc_si256(b, mask(x)) == 1
        })
    }
}

fn check_layout(log2_blocks: u8, blocks_per_key: u8) -> Result<()> {
    if log2_blocks > MAX_LOG2_BLOCKS {
        return Err(Error::format(format!(
            "Bloom block count 2^{log2_blocks} is above the limit 2^{MAX_LOG2_BLOCKS}"
        )));
    }
    if blocks_per_key == 0 || blocks_per_key > MAX_BLOCKS_PER_KEY {
        return Err(Error::format(format!(
            "Bloom blocks per key must be 1 to {MAX_BLOCKS_PER_KEY}, got {blocks_per_key}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(i: u64) -> [u8; 32] {
        // Spread test tags with SHA-256 so positions look random.
        use sha2::Digest;
        sha2::Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn no_false_negatives_and_fold_matches_small_build() {
        let mut big = Bloom::new(10, 2).unwrap();
        let mut small = Bloom::new(7, 2).unwrap();
        for i in 0..2000 {
            big.insert_tag(&tag(i));
            small.insert_tag(&tag(i));
        }
        for i in 0..2000 {
            assert!(big.contains_tag(&tag(i)));
        }
        assert_eq!(big.fold(3).unwrap(), small);
        assert_eq!(big.union(&small).unwrap(), small);
        let mut inplace = small.clone();
        inplace.union_in_place(&big).unwrap();
        assert_eq!(inplace, small);
        let mut grow = big.clone();
        grow.union_in_place(&small).unwrap();
        assert_eq!(grow, small);
    }

    #[test]
    fn parallel_insert_and_lookup_match_one_by_one() {
        let tags: Vec<[u8; 32]> = (0..50_000).map(tag).collect();
        let codes: Vec<u8> = (0..50_000).map(|i| u8::from(i % 7 == 0)).collect();
        let mut one = Bloom::new(12, 2).unwrap();
        for (t, c) in tags.iter().zip(&codes) {
            if *c == 0 {
                one.insert_tag(t);
            }
        }
        let mut par = Bloom::new(12, 2).unwrap();
        par.insert_tags_where(&tags, &codes);
        assert_eq!(one, par);
        let mut out = vec![false; tags.len()];
        par.contains_where(&tags, &codes, &mut out);
        for ((t, c), o) in tags.iter().zip(&codes).zip(&out) {
            assert_eq!(*o, *c == 0 && one.contains_tag(t));
        }
    }

    #[test]
    fn inserting_from_tasks_at_once_is_inserting_one_by_one() {
        // Many tasks of uneven sizes on a pool of 4 threads (more parts than blocks for the
        // smallest filter, one part for a single block), a third of the items left out.
        let tags: Vec<[u8; 32]> = (0..30_000).map(tag).collect();
        let keep = |i: usize| i % 3 != 1;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        for (l2, bpk) in [(0, 1), (2, 3), (10, 2), (14, 1)] {
            let mut one = Bloom::new(l2, bpk).unwrap();
            for (i, t) in tags.iter().enumerate() {
                if keep(i) {
                    one.insert_tag(t);
                }
            }
            for threads in [1, 4, 64] {
                let mut together = Bloom::new(l2, bpk).unwrap();
                let ins = ConcurrentInsert::new(&mut together, threads);
                let starts: Vec<usize> = (0..tags.len()).step_by(997).collect();
                pool.install(|| {
                    starts.par_iter().for_each(|&a| {
                        let t = &tags[a..(a + 997).min(tags.len())];
                        t.iter().for_each(|t| ins.prefetch(t));
                        ins.insert_where(t, |i| keep(a + i));
                    })
                });
                drop(ins);
                assert!(
                    one == together,
                    "2^{l2} blocks, {bpk} a key, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn vector_and_scalar_paths_set_and_test_the_same_bits() {
        // 2^6 blocks: keys collide, so blocks hold many keys' bits; x includes the extremes.
        let l2 = 6;
        let mut keys: Vec<(usize, u32)> = (0..400u64)
            .flat_map(|i| [0, 1].map(|j| block_and_mask_key(&tag(i), j, l2)))
            .collect();
        keys.extend([(0, 0), (1, u32::MAX), (2, 1), (3, 0x8000_0000)]);
        let mut scalar = vec![0u32; WORDS_PER_BLOCK << l2];
        let mut vector = scalar.clone();
        set_bits_scalar(&mut scalar, &keys);
        set_bits(&mut vector, &keys);
        assert_eq!(scalar, vector);
        // Tags 400.. were not inserted: both paths answer alike for hits and for misses.
        let (mut hits, mut misses) = (0, 0);
        for i in 0..3000u64 {
            let t = tag(i);
            let want = contains_in(&scalar, l2, 2, &t);
            assert_eq!(
                contains_any(&scalar, l2, 2, &t, has_avx2()),
                want,
                "tag {i}"
            );
            if want {
                hits += 1
            } else {
                misses += 1
            }
        }
        assert!(hits >= 400 && misses > 100, "{hits} hits, {misses} misses");
    }

    #[test]
    fn owned_filters_start_on_a_cache_line() {
        for l2 in [0, 5, 16, 21] {
            let b = Bloom::new(l2, 2).unwrap();
            let at = |b: &Bloom| b.words().as_ptr() as usize % LINE;
            assert_eq!(at(&b), 0);
            assert_eq!(at(&b.clone()), 0);
            let mut bytes = vec![0u8; b.byte_len()];
            bytes[3] = 0x80;
            let c = Bloom::from_le_bytes(l2, 2, &bytes).unwrap();
            assert_eq!(
                (at(&c), c.words()[0], c.words().len()),
                (0, 1 << 31, b.words().len())
            );
            if l2 > 0 {
                assert_eq!(at(&b.fold(1).unwrap()), 0);
            }
            assert_eq!(at(&b.union(&c).unwrap()), 0);
        }
    }

    #[test]
    fn large_filters_are_their_own_zeroed_huge_page_aligned_memory() {
        // 2^17 blocks = 4 MiB, the smallest mapped for itself; 2^16 stays on the heap.
        for (l2, own_map) in [(16u8, false), (17, true), (19, true)] {
            let mut b = Bloom::new(l2, 2).unwrap();
            let start = b.words().as_ptr() as usize;
            assert_eq!(
                start.is_multiple_of(HUGE),
                own_map,
                "2^{l2} blocks start at {start:#x}"
            );
            assert!(b.words().iter().all(|&w| w == 0));
            let n = b.words().len();
            let last = b.words_mut();
            last[0] = 1;
            last[n - 1] = 0xdead_beef;
            let copy = b.clone();
            assert_eq!(
                (copy.words().as_ptr() as usize).is_multiple_of(HUGE),
                own_map
            );
            assert_eq!((copy.words()[0], copy.words()[n - 1]), (1, 0xdead_beef));
            assert!(copy == b);
            let folded = b.fold(1).unwrap();
            assert_eq!(folded.words()[n / 2 - 1], 0xdead_beef);
        }
    }

    #[test]
    fn plan_meets_target_and_rejects_nonsense() {
        let (l2, bpk) = plan(1_000_000, 1e-6).unwrap();
        assert_eq!((l2, bpk), (18, 2));
        assert!(expected_fpr(1e6, l2, bpk) <= 1e-6);
        assert!(expected_fpr(1e6, l2 - 1, bpk) > 1e-6);
        assert!(plan(10, 0.0).is_err());
        assert!(plan(10, 1.0).is_err());
        assert!(plan(10, f64::NAN).is_err());
        assert!(plan(u64::MAX, 1e-9).is_err());
        assert!(Bloom::new(MAX_LOG2_BLOCKS + 1, 1).is_err());
        assert!(Bloom::new(3, 0).is_err());
    }
}
