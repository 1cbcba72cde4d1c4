//! Exact tag sets: sorted, de-duplicated 64-bit tags (the first 8 bytes of the PRF output,
//! little-endian). Intersections and unions are exact up to 64-bit collisions: with nA and nB
//! items, the expected number of false matches is about nA*nB / 2^64.

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::eliasfano::EliasFano;
use super::error::{Error, Result};

/// Held as a sorted vector, or as it was read from a compressed section (docs/FORMAT.md §5,
/// type 6): packed, answering membership in place, and decoded once, on first use, by what
/// needs every tag (set algebra, counts, writing it plain).
///
/// `extend` (a build adding batch after batch) keeps sorted runs of geometrically shrinking
/// sizes and merges the smallest while one is at least half the one before it, so N tags added
/// in batches of B cost O(N log(N/B)) copies, not one copy of the whole set per batch
/// (O(N²/B)); the first read merges the runs into one vector.
#[derive(Debug, Default)]
pub struct TagSet {
    plain: OnceLock<Vec<u64>>,
    packed: Option<Arc<EliasFano>>,
    /// Sorted, de-duplicated runs added by `extend` and not merged yet (a tag may be in more
    /// than one). Never non-empty while `plain` or `packed` is set.
    runs: Mutex<Vec<Vec<u64>>>,
}

impl Clone for TagSet {
    fn clone(&self) -> Self {
        TagSet {
            plain: self.plain.clone(),
            packed: self.packed.clone(),
            runs: Mutex::new(self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        }
    }
}

impl PartialEq for TagSet {
    fn eq(&self, other: &Self) -> bool {
        self.tags() == other.tags()
    }
}
impl Eq for TagSet {}

#[inline]
pub fn tag64(prf_out: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&prf_out[..8]);
    u64::from_le_bytes(b)
}

impl TagSet {
    pub fn new() -> TagSet {
        TagSet::default()
    }

    fn from_sorted(tags: Vec<u64>) -> TagSet {
        TagSet {
            plain: OnceLock::from(tags),
            ..TagSet::default()
        }
    }

    /// From a checked compressed payload; nothing is decoded until a caller needs every tag.
    pub fn from_packed(ef: EliasFano) -> TagSet {
        TagSet {
            packed: Some(Arc::new(ef)),
            ..TagSet::default()
        }
    }

    /// The union of sorted, de-duplicated runs (shards of one set), merged pairwise.
    pub fn from_sorted_runs(runs: Vec<Vec<u64>>) -> TagSet {
        TagSet::from_sorted(union_all(runs))
    }

    /// Every tag, ascending, as a vector of its own (moved out when the set holds one).
    pub fn into_vec(mut self) -> Vec<u64> {
        self.tags(); // decodes a packed set or merges the runs, into `plain`
        self.plain.take().unwrap_or_default()
    }

    /// The compressed form this set was read from, if it was (written back as it is).
    pub fn packed(&self) -> Option<&EliasFano> {
        self.packed.as_deref()
    }

    /// From any tags, in any order, with repeats.
    pub fn from_unsorted(mut tags: Vec<u64>) -> TagSet {
        tags.par_sort_unstable();
        tags.dedup();
        TagSet::from_sorted(tags)
    }

    /// From little-endian payload bytes that must be strictly ascending (checked).
    pub fn from_le_bytes(payload: &[u8]) -> Result<TagSet> {
        if !payload.len().is_multiple_of(8) {
            return Err(Error::format(format!(
                "tag set payload is {} bytes, not a multiple of 8",
                payload.len()
            )));
        }
        let tags: Vec<u64> = payload
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect();
        if let Some(i) = tags.windows(2).position(|w| w[0] >= w[1]) {
            return Err(Error::format(format!(
                "tag set is not strictly ascending at item {}",
                i + 1
            )));
        }
        Ok(TagSet::from_sorted(tags))
    }

    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.tags().len() * 8);
        for t in self.tags() {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out
    }

    pub fn len(&self) -> usize {
        match (&self.packed, self.plain.get()) {
            (_, Some(v)) => v.len(),
            (Some(p), None) => p.len() as usize,
            (None, None) => self.tags().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tag, ascending (a packed set is decoded here, once; `extend`'s runs are merged).
    pub fn tags(&self) -> &[u64] {
        self.plain.get_or_init(|| match &self.packed {
            Some(p) => p.decode(),
            None => {
                let runs =
                    std::mem::take(&mut *self.runs.lock().unwrap_or_else(|e| e.into_inner()));
                union_all(runs)
            }
        })
    }

    /// Whether the tags are decoded (a packed set's are not until something needs them all).
    pub fn is_decoded(&self) -> bool {
        self.plain.get().is_some() || self.packed.is_none()
    }

    pub fn contains(&self, t: u64) -> bool {
        match (&self.packed, self.plain.get()) {
            (_, Some(v)) => v.binary_search(&t).is_ok(),
            (Some(p), None) => p.contains(t),
            (None, None) => self.tags().binary_search(&t).is_ok(),
        }
    }

    /// Add tags (any order, repeats allowed): sorted as a new run; runs are merged while the
    /// newest is at least half the one before it (see the type's note).
    pub fn extend(&mut self, mut new: Vec<u64>) {
        new.par_sort_unstable();
        new.dedup();
        let base = match (self.plain.take(), self.packed.take()) {
            (Some(v), _) => Some(v),
            (None, Some(p)) => Some(p.decode()),
            (None, None) => None,
        };
        let runs = self.runs.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = base.filter(|b| !b.is_empty()) {
            runs.insert(0, b);
        }
        runs.push(new);
        while runs.len() >= 2 && 2 * runs[runs.len() - 1].len() >= runs[runs.len() - 2].len() {
            let (b, a) = (runs.pop().expect("two runs"), runs.pop().expect("two runs"));
            runs.push(union_sorted(&a, &b));
        }
    }

    pub fn union(&self, other: &TagSet) -> TagSet {
        TagSet::from_sorted(union_sorted(self.tags(), other.tags()))
    }

    /// The smaller and the larger set, and whether to probe the larger in place: it is packed
    /// and not decoded, and far larger (decoding it costs more than a few lookups per item).
    fn sides<'a>(&'a self, other: &'a TagSet) -> (&'a TagSet, &'a TagSet, bool) {
        let (small, large) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        let in_place = !large.is_decoded() && small.len().saturating_mul(16) < large.len();
        (small, large, in_place)
    }

    /// This set's tags `t` with `lo ≤ t < hi`: a slice of the decoded tags, or (a packed set
    /// not decoded) that stretch decoded into `buf`.
    fn stretch<'a>(&'a self, lo: u64, hi: u128, buf: &'a mut Vec<u64>) -> &'a [u64] {
        match (self.plain.get(), &self.packed) {
            (None, Some(p)) => {
                p.decode_range(lo, hi, buf);
                buf
            }
            _ => {
                let t = self.tags();
                let a = t.partition_point(|&x| x < lo);
                let b = a + t[a..].partition_point(|&x| u128::from(x) < hi);
                &t[a..b]
            }
        }
    }

    /// `f` on the common tags of the two sets, 256 stretches of the tag space in parallel,
    /// each set's stretch decoded on its own if the set is packed (never the whole set: two
    /// packed sets intersect without the memory of either decoded).
    fn common_by_stretch<R: Send>(
        &self,
        other: &TagSet,
        f: impl Fn(&[u64], &[u64]) -> R + Sync,
    ) -> Vec<R> {
        (0..256u64)
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(ba, bb), r| {
                    let (lo, hi) = (r << 56, u128::from(r + 1) << 56);
                    f(self.stretch(lo, hi, ba), other.stretch(lo, hi, bb))
                },
            )
            .collect()
    }

    pub fn intersection(&self, other: &TagSet) -> TagSet {
        TagSet::from_sorted(self.common(other, Vec::new, |v, t| v.push(t)).concat())
    }

    pub fn intersection_len(&self, other: &TagSet) -> usize {
        self.common(other, || 0usize, |n, _| *n += 1)
            .into_iter()
            .sum()
    }

    /// The tags in both sets, in ascending order, gathered into accumulators (`new` makes
    /// one, `add` puts a tag in it) piece by piece in parallel: the pieces in order. A small
    /// set against a large packed one is looked up in place; packed sets meet stretch by
    /// stretch without being decoded; decoded ones by a merge.
    fn common<A: Send>(
        &self,
        other: &TagSet,
        new: impl Fn() -> A + Sync,
        add: impl Fn(&mut A, u64) + Sync,
    ) -> Vec<A> {
        let (small, large, in_place) = self.sides(other);
        let gather = |a: &[u64], b: &[u64]| {
            let mut acc = new();
            merge_common(a, b, |t| add(&mut acc, t));
            acc
        };
        if in_place {
            small
                .tags()
                .par_chunks(4096)
                .map(|c| {
                    let mut acc = new();
                    for &t in c.iter().filter(|&&t| large.contains(t)) {
                        add(&mut acc, t);
                    }
                    acc
                })
                .collect()
        } else if !small.is_decoded() || !large.is_decoded() {
            small.common_by_stretch(large, gather)
        } else {
            common_runs(small.tags(), large.tags(), gather)
        }
    }
}

/// The union of two sorted, de-duplicated slices.
fn union_sorted(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out.push(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The union of sorted runs, merged pairwise in a balanced tree (n log k), in parallel.
fn union_all(mut runs: Vec<Vec<u64>>) -> Vec<u64> {
    while runs.len() > 1 {
        // An odd one out waits for the next level as it is (moved, not copied).
        let odd = if runs.len() % 2 == 1 {
            runs.pop()
        } else {
            None
        };
        runs = runs
            .par_chunks(2)
            .map(|p| union_sorted(&p[0], &p[1]))
            .collect();
        runs.extend(odd);
    }
    runs.pop().unwrap_or_default()
}

/// `f` over runs of `small` paired with the stretch of `large` their tags can be in, in
/// parallel. Sets of similar sizes go by linear merges (each run's stretch found by two binary
/// searches); a small set against a much larger one by a binary search per tag (runs of one).
fn common_runs<R: Send>(
    small: &[u64],
    large: &[u64],
    f: impl Fn(&[u64], &[u64]) -> R + Sync,
) -> Vec<R> {
    let (ns, nl) = (small.len() as f64, large.len() as f64);
    let run = if ns * nl.max(2.0).log2() < ns + nl {
        1
    } else {
        1 << 14
    };
    small
        .par_chunks(run)
        .with_min_len(if run == 1 { 1 << 12 } else { 1 })
        .map(|c| {
            let lo = large.partition_point(|&x| x < c[0]);
            let hi = lo + large[lo..].partition_point(|&x| x <= c[c.len() - 1]);
            f(c, &large[lo..hi])
        })
        .collect()
}

/// Call `hit` for each tag in both sorted slices, ascending.
#[inline]
fn merge_common(a: &[u64], b: &[u64], mut hit: impl FnMut(u64)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x == y {
            hit(x);
        }
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
}

/// For N tag sets (N ≤ 64), how many distinct tags have each membership pattern: bit i of a
/// key is set when the tag is in `sets[i]`. Every exact N-way count (union, unique to each,
/// in two or more, pairwise overlaps) is a sum over these. 256 stretches of the tag space in
/// parallel, each a k-way merge of the sets' stretches (a packed set's decoded on its own, so
/// no set is ever decoded whole).
pub fn membership_counts(sets: &[&TagSet]) -> std::collections::HashMap<u64, u64> {
    (0..256u64)
        .into_par_iter()
        .map_init(
            || vec![Vec::new(); sets.len()],
            |bufs, r| {
                let (lo, hi) = (r << 56, u128::from(r + 1) << 56);
                let slices: Vec<&[u64]> = sets
                    .iter()
                    .zip(bufs.iter_mut())
                    .map(|(s, b)| s.stretch(lo, hi, b))
                    .collect();
                merge_counts(&slices)
            },
        )
        .reduce(std::collections::HashMap::new, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_insert(0) += v;
            }
            a
        })
}

/// `membership_counts` of sorted slices: one k-way merge.
fn merge_counts(sets: &[&[u64]]) -> std::collections::HashMap<u64, u64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut counts = std::collections::HashMap::new();
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = sets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.first().map(|&t| Reverse((t, i))))
        .collect();
    let mut pos = vec![0usize; sets.len()];
    while let Some(Reverse((t, _))) = heap.peek().copied() {
        let mut mask = 0u64;
        while let Some(&Reverse((t2, i))) = heap.peek() {
            if t2 != t {
                break;
            }
            heap.pop();
            mask |= 1 << i;
            pos[i] += 1;
            if let Some(&next) = sets[i].get(pos[i]) {
                heap.push(Reverse((next, i)));
            }
        }
        *counts.entry(mask).or_insert(0) += 1;
    }
    counts
}

/// Distinct counts over groups of tag arrays (each group the union of its arrays): of the
/// `base` group, of each of `groups`, and of the base tags in none of `groups`. This is the
/// shape of the statutory count (obtained, sold per buyer, obtained and never sold) and
/// takes any number of groups.
pub fn group_counts(base: &[&[u64]], groups: &[Vec<&[u64]>]) -> (u64, Vec<u64>, u64) {
    fn union_of(parts: &[&[u64]]) -> TagSet {
        TagSet::from_unsorted(parts.concat())
    }
    let base = union_of(base);
    let sets: Vec<TagSet> = groups.par_iter().map(|g| union_of(g)).collect();
    let any = sets.iter().fold(TagSet::new(), |acc, s| acc.union(s));
    let only_base = base.len() - base.intersection_len(&any);
    (
        base.len() as u64,
        sets.iter().map(|s| s.len() as u64).collect(),
        only_base as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_algebra() {
        let a = TagSet::from_unsorted(vec![5, 1, 3, 3, 9]);
        let b = TagSet::from_unsorted(vec![3, 4, 5]);
        assert_eq!(a.tags(), &[1, 3, 5, 9]);
        assert_eq!(a.union(&b).tags(), &[1, 3, 4, 5, 9]);
        assert_eq!(a.intersection(&b).tags(), &[3, 5]);
        assert_eq!(a.intersection_len(&b), 2);
        let mut c = a.clone();
        c.extend(vec![2, 9]);
        assert_eq!(c.tags(), &[1, 2, 3, 5, 9]);
        assert_eq!(TagSet::from_le_bytes(&a.to_le_bytes()).unwrap(), a);
        assert!(TagSet::from_le_bytes(&[0u8; 16]).is_err());
        assert!(TagSet::from_le_bytes(&[0u8; 7]).is_err());
        let counts = membership_counts(&[&a, &b]);
        assert_eq!(counts.get(&0b01), Some(&2)); // 1, 9
        assert_eq!(counts.get(&0b10), Some(&1)); // 4
        assert_eq!(counts.get(&0b11), Some(&2)); // 3, 5
    }

    #[test]
    fn group_counts_union_each_group() {
        let (b1, b2): (&[u64], &[u64]) = (&[1, 2, 3, 3], &[3, 4]);
        let (g1, g2, g3): (&[u64], &[u64], &[u64]) = (&[2, 9], &[9, 2, 2], &[4, 5, 6]);
        // base {1,2,3,4}; groups {2,9}, {2,9,4,5,6}, {}; base tags in no group: 1 and 3
        let (n, per, only) = group_counts(&[b1, b2], &[vec![g1], vec![g2, g3], vec![]]);
        assert_eq!((n, per, only), (4, vec![2, 5, 0], 2));
        assert_eq!(group_counts(&[], &[]), (0, vec![], 0));
    }

    #[test]
    fn a_packed_set_answers_in_place_until_something_needs_every_tag() {
        use crate::core::eliasfano::{choose, encode, EliasFano};
        let tags: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let set = TagSet::from_unsorted(tags);
        // A set as a reader holds a compressed section: packed, not decoded.
        let pack = |set: &TagSet| {
            let (l, _) = choose(set.len() as u64);
            let bytes: Vec<u8> = encode(set.tags(), l)
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            TagSet::from_packed(EliasFano::from_le_bytes(set.len() as u64, l, &bytes).unwrap())
        };
        let packed = pack(&set);
        assert!(!packed.is_decoded() && packed.len() == 5000);
        assert!(set.tags().iter().all(|&t| packed.contains(t)));
        let few = TagSet::from_unsorted(vec![set.tags()[7], 12345, set.tags()[4000]]);
        assert_eq!(packed.intersection_len(&few), 2);
        assert_eq!(
            few.intersection(&packed).tags(),
            &[set.tags()[7], set.tags()[4000]]
        );
        assert!(
            !packed.is_decoded(),
            "a few lookups do not decode 5,000 tags"
        );
        // Two packed sets of similar size intersect stretch by stretch, neither decoded.
        let other: Vec<u64> = set
            .tags()
            .iter()
            .step_by(2)
            .copied()
            .chain([1, 2, 3])
            .collect();
        let other = TagSet::from_unsorted(other);
        let packed2 = pack(&other);
        assert_eq!(packed.intersection_len(&packed2), 2500);
        assert_eq!(
            packed2.intersection(&packed).tags(),
            set.intersection(&other).tags()
        );
        assert_eq!(packed.intersection_len(&other), 2500); // one packed, one plain

        // N-way counts stretch by stretch: the same as one merge of the whole sets.
        let counts = membership_counts(&[&packed, &packed2, &few]);
        let want = merge_counts(&[set.tags(), other.tags(), few.tags()]);
        assert_eq!(counts, want);
        assert_eq!(counts.get(&0b011), Some(&2499)); // both big sets but not `few` (2500 − 1)
        assert!(!packed.is_decoded() && !packed2.is_decoded());
        assert_eq!(packed.union(&few).len(), 5001);
        assert!(packed.is_decoded() && packed == set);
    }

    #[test]
    fn intersections_by_merge_and_by_search_agree_with_a_hash_set() {
        let mk = |n: u64, mul: u64| {
            TagSet::from_unsorted((0..n).map(|i| (i * mul) % 1_000_003).collect())
        };
        for (a, b) in [
            (mk(200_000, 7), mk(150_000, 11)),
            (mk(20, 3), mk(300_000, 1)),
            (mk(0, 1), mk(5, 1)),
        ] {
            let hb: std::collections::HashSet<u64> = b.tags().iter().copied().collect();
            let want: Vec<u64> = a
                .tags()
                .iter()
                .copied()
                .filter(|t| hb.contains(t))
                .collect();
            assert_eq!(a.intersection(&b).tags(), &want[..]);
            assert_eq!(b.intersection(&a).tags(), &want[..]);
            assert_eq!(a.intersection_len(&b), want.len());
        }
    }

    #[test]
    fn extending_batch_by_batch_is_the_set_of_everything_added() {
        let mut all = Vec::new();
        let mut set = TagSet::new();
        for b in 0..300u64 {
            // overlapping batches of varying size, repeats inside a batch too
            let batch: Vec<u64> = (0..(b % 37) * 50 + 3)
                .map(|i| (b * 1000 + i * 7) % 150_000)
                .chain([5, 5])
                .collect();
            all.extend(&batch);
            set.extend(batch);
            let runs = set.runs.lock().unwrap().len();
            assert!(runs <= 20, "{runs} runs: merged geometrically");
            if b % 97 == 0 {
                // a read in between merges everything; adding goes on after it
                assert_eq!(set.tags(), TagSet::from_unsorted(all.clone()).tags());
            }
        }
        let want = TagSet::from_unsorted(all);
        assert_eq!(set.len(), want.len());
        assert!(set.contains(5) && !set.contains(150_001));
        assert_eq!(set, want);
        assert_eq!(set.clone().tags(), want.tags());
        // a packed set extended is decoded into the first run
        use crate::core::eliasfano::{choose, encode, EliasFano};
        let (l, _) = choose(want.len() as u64);
        let bytes: Vec<u8> = encode(want.tags(), l)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mut packed =
            TagSet::from_packed(EliasFano::from_le_bytes(want.len() as u64, l, &bytes).unwrap());
        packed.extend(vec![999_999_999]);
        assert!(packed.packed().is_none() && packed.len() == want.len() + 1);
    }
}
