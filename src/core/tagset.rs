//! Exact tag sets: sorted, de-duplicated 64-bit tags (the first 8 bytes of the PRF output,
//! little-endian). Intersections and unions are exact up to 64-bit collisions: with nA and nB
//! items, the expected number of false matches is about nA*nB / 2^64.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use super::eliasfano::EliasFano;
use super::error::{Error, Result};

/// Held as a sorted vector, or as it was read from a compressed section (docs/FORMAT.md §5,
/// type 6): packed, answering membership in place, and decoded once, on first use, by what
/// needs every tag (set algebra, counts, writing it plain).
#[derive(Clone, Debug, Default)]
pub struct TagSet {
    plain: OnceLock<Vec<u64>>,
    packed: Option<Arc<EliasFano>>,
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
            packed: None,
        }
    }

    /// From a checked compressed payload; nothing is decoded until a caller needs every tag.
    pub fn from_packed(ef: EliasFano) -> TagSet {
        TagSet {
            plain: OnceLock::new(),
            packed: Some(Arc::new(ef)),
        }
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
        if payload.len() % 8 != 0 {
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
            (None, None) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tag, ascending (a packed set is decoded here, once).
    pub fn tags(&self) -> &[u64] {
        self.plain.get_or_init(|| match &self.packed {
            Some(p) => p.decode(),
            None => Vec::new(),
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
            (None, None) => false,
        }
    }

    /// Add tags: sort the new ones, then one linear merge.
    pub fn extend(&mut self, new: Vec<u64>) {
        let new = TagSet::from_unsorted(new);
        *self = self.union(&new);
    }

    pub fn union(&self, other: &TagSet) -> TagSet {
        let (a, b) = (self.tags(), other.tags());
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(a[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        TagSet::from_sorted(out)
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

    pub fn intersection(&self, other: &TagSet) -> TagSet {
        let (small, large, in_place) = self.sides(other);
        let tags = if in_place {
            small
                .tags()
                .par_iter()
                .copied()
                .filter(|&t| large.contains(t))
                .collect()
        } else {
            let parts: Vec<Vec<u64>> = common_runs(small.tags(), large.tags(), |a, b| {
                let mut out = Vec::new();
                merge_common(a, b, |t| out.push(t));
                out
            });
            parts.concat()
        };
        TagSet::from_sorted(tags)
    }

    pub fn intersection_len(&self, other: &TagSet) -> usize {
        let (small, large, in_place) = self.sides(other);
        if in_place {
            return small
                .tags()
                .par_iter()
                .filter(|&&t| large.contains(t))
                .count();
        }
        common_runs(small.tags(), large.tags(), |a, b| {
            let mut n = 0usize;
            merge_common(a, b, |_| n += 1);
            n
        })
        .into_iter()
        .sum()
    }
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
/// in two or more, pairwise overlaps) is a sum over these. One k-way merge.
pub fn membership_counts(sets: &[&TagSet]) -> std::collections::HashMap<u64, u64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut counts = std::collections::HashMap::new();
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = sets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.tags().first().map(|&t| Reverse((t, i))))
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
            if let Some(&next) = sets[i].tags().get(pos[i]) {
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
        let (l, _) = choose(set.len() as u64);
        let bytes: Vec<u8> = encode(set.tags(), l)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let packed = TagSet::from_packed(EliasFano::from_le_bytes(5000, l, &bytes).unwrap());
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
}
