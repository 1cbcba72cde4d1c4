//! Bulk canonicalise + tag over any column of values, in parallel chunks. Results do not
//! depend on the number of threads: every item is a pure function of its value.

use rayon::prelude::*;

use super::canon::{Canon, Reason};
use super::key::Prf;
use super::keyed::HELD;
use super::prf::GROUP;

/// One value of a column, borrowed from wherever the column lives (Arrow buffers, a packed
/// copy of a Python list, a numpy array decoded on the fly).
pub enum Item<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
    /// A null / None: a missing value.
    Null,
    /// Something that is not text (a Python int in a list, say).
    NotText,
}

pub trait Values: Sync {
    fn len(&self) -> usize;
    /// `i < len()`. `scratch` lets sources that must decode (numpy UCS-4) avoid allocation.
    fn with_item<R>(&self, i: usize, scratch: &mut String, f: impl FnOnce(Item<'_>) -> R) -> R;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: AsRef<str> + Sync> Values for [S] {
    fn len(&self) -> usize {
        <[S]>::len(self)
    }
    fn with_item<R>(&self, i: usize, _: &mut String, f: impl FnOnce(Item<'_>) -> R) -> R {
        f(Item::Str(self[i].as_ref()))
    }
}

/// Values packed into one buffer (what the binding layer makes from a Python list, so the
/// GIL can be released while the bytes are processed).
#[derive(Default)]
pub struct Packed {
    buf: Vec<u8>,
    ends: Vec<usize>,
    flags: Vec<u8>,
}

const P_STR: u8 = 0;
const P_BYTES: u8 = 1;
const P_NULL: u8 = 2;
const P_NOT_TEXT: u8 = 3;

impl Packed {
    pub fn with_capacity(items: usize, bytes: usize) -> Packed {
        Packed {
            buf: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(items),
            flags: Vec::with_capacity(items),
        }
    }
    fn push(&mut self, flag: u8, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.ends.push(self.buf.len());
        self.flags.push(flag);
    }
    pub fn push_str(&mut self, s: &str) {
        self.push(P_STR, s.as_bytes());
    }
    pub fn push_bytes(&mut self, b: &[u8]) {
        self.push(P_BYTES, b);
    }
    pub fn push_null(&mut self) {
        self.push(P_NULL, b"");
    }
    pub fn push_not_text(&mut self) {
        self.push(P_NOT_TEXT, b"");
    }
}

impl Values for Packed {
    fn len(&self) -> usize {
        self.flags.len()
    }
    fn with_item<R>(&self, i: usize, _: &mut String, f: impl FnOnce(Item<'_>) -> R) -> R {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let b = &self.buf[start..self.ends[i]];
        match self.flags[i] {
            // Pushed from a &str, so valid UTF-8; checked again rather than trusted.
            P_STR => match std::str::from_utf8(b) {
                Ok(s) => f(Item::Str(s)),
                Err(_) => f(Item::NotText),
            },
            P_BYTES => f(Item::Bytes(b)),
            P_NULL => f(Item::Null),
            _ => f(Item::NotText),
        }
    }
}

/// Scratch buffers for one worker.
#[derive(Default)]
pub struct Scratch {
    decode: String,
    out: String,
    tmp: String,
}

/// Canonicalise item `i` into `s.out`; 0 on success, else the reason code.
#[inline]
fn canon_one<V: Values + ?Sized>(canon: Canon, values: &V, i: usize, s: &mut Scratch) -> u8 {
    canon_or_hold(canon, values, i, s, |_| false)
}

/// [`canon_one`], with `HELD` for a valid value whose raw bytes `holds` accepts.
#[inline]
fn canon_or_hold<V: Values + ?Sized>(
    canon: Canon,
    values: &V,
    i: usize,
    s: &mut Scratch,
    holds: impl Fn(&[u8]) -> bool,
) -> u8 {
    let Scratch { decode, out, tmp } = s;
    let r = values.with_item(i, decode, |item| match item {
        Item::Str(v) => canon
            .canonicalize_into(v, out, tmp)
            .map(|()| holds(v.as_bytes())),
        Item::Bytes(v) => canon
            .canonicalize_bytes_into(v, out, tmp)
            .map(|()| holds(v)),
        Item::Null => Err(Reason::Empty),
        Item::NotText => Err(Reason::NotText),
    });
    match r {
        Ok(false) => 0,
        Ok(true) => HELD,
        Err(reason) => reason.code(),
    }
}

/// Items per parallel task: large enough to amortise scheduling, small enough to balance.
const TASK: usize = 2048;
/// Items per chunk handed to the sink: bounds the memory of tags in flight (32 B each).
pub const CHUNK: usize = 1 << 18;
/// Below this many items the work is done on the calling thread.
const PARALLEL_MIN: usize = 4096;

/// Work done inside the parallel tasks of [`tag_chunks_with`], beside the tagging (a Bloom
/// index inserts there, so its cache misses overlap the hashing).
pub trait TaskHook: Sync {
    /// Whether a value that canonicalised (its raw bytes here) is held back: code `HELD`,
    /// and no tag made.
    #[inline]
    fn holds(&self, _raw: &[u8]) -> bool {
        false
    }
    /// A valid tag was made: soon after it, before its task ends (a group's tags are handed
    /// over one by one between the next group's values).
    fn tagged(&self, tag: &[u8; 32]);
    /// A task finished items `start..start + codes.len()`.
    fn task_done(&self, start: usize, codes: &[u8], tags: &[[u8; 32]]);
}

/// No work beside the tagging.
pub struct NoHook;

impl TaskHook for NoHook {
    #[inline]
    fn tagged(&self, _: &[u8; 32]) {}
    #[inline]
    fn task_done(&self, _: usize, _: &[u8], _: &[[u8; 32]]) {}
}

/// Canonicalise and tag every value, calling `sink(start, codes, tags)` for consecutive chunks
/// in order. `codes[i]` is 0 when `tags[i]` is valid, else the reason code (tag zeroed).
pub fn tag_chunks<V, F>(canon: impl Into<Canon>, prf: &Prf, values: &V, sink: F)
where
    V: Values + ?Sized,
    F: FnMut(usize, &[u8], &[[u8; 32]]),
{
    tag_chunks_with(canon, prf, values, &NoHook, sink);
}

/// [`tag_chunks`], with `hook` called in the tasks: on each valid tag soon after it is made,
/// and on each task's items when they are done (before the chunk reaches `sink`).
pub fn tag_chunks_with<V, H, F>(
    canon: impl Into<Canon>,
    prf: &Prf,
    values: &V,
    hook: &H,
    mut sink: F,
) where
    V: Values + ?Sized,
    H: TaskHook,
    F: FnMut(usize, &[u8], &[[u8; 32]]),
{
    let canon = canon.into();
    let n = values.len();
    let mut codes = vec![0u8; CHUNK.min(n)];
    let mut tags = vec![[0u8; 32]; CHUNK.min(n)];
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        let (c, t) = (&mut codes[..len], &mut tags[..len]);
        // Items go through the PRF in groups: sixteen AVX-512 lanes, or interleaved SHA-NI
        // chains two by two (`Prf::tag_many`).
        let work = |base: usize, c: &mut [u8], t: &mut [[u8; 32]]| {
            let mut s: [Scratch; GROUP] = Default::default();
            // The last group's valid tags, handed to `hook.tagged` one by one between this
            // group's values (a Bloom index prefetches there: spread out, not in a burst).
            // (Read where they lie, in the group before: a copy loaded them straight after the
            // PRF's stores, and the load waited for those stores — a sixth of the tasks' time.)
            let (mut last, mut last_valid, mut last_n): (&[[u8; 32]], [usize; GROUP], usize) =
                (&[], [0; GROUP], 0);
            for (k, (c, t)) in c.chunks_mut(GROUP).zip(t.chunks_mut(GROUP)).enumerate() {
                let i = base + GROUP * k;
                let (mut valid, mut m) = ([0usize; GROUP], 0);
                for (j, (code, s)) in c.iter_mut().zip(&mut s).enumerate() {
                    if j < last_n {
                        hook.tagged(&last[last_valid[j]]);
                    }
                    *code = canon_or_hold(canon, values, i + j, s, |raw| hook.holds(raw));
                    if *code == 0 {
                        valid[m] = j;
                        m += 1;
                    }
                }
                let msgs: [&[u8]; GROUP] =
                    std::array::from_fn(|q| s[valid[q.min(m.max(1) - 1)]].out.as_bytes());
                if m == c.len() {
                    prf.tag_many(&msgs[..m], t);
                } else {
                    let mut tags = [[0u8; 32]; GROUP];
                    prf.tag_many(&msgs[..m], &mut tags[..m]);
                    t.fill([0u8; 32]);
                    for (&j, tag) in valid[..m].iter().zip(tags) {
                        t[j] = tag;
                    }
                }
                // (a short last group leaves some of the group before it)
                last_valid[c.len().min(last_n)..last_n]
                    .iter()
                    .for_each(|&j| hook.tagged(&last[j]));
                (last, last_valid, last_n) = (t, valid, m);
            }
            last_valid[..last_n]
                .iter()
                .for_each(|&j| hook.tagged(&last[j]));
            hook.task_done(base, c, t);
        };
        if len < PARALLEL_MIN {
            work(start, c, t);
        } else {
            c.par_chunks_mut(TASK)
                .zip(t.par_chunks_mut(TASK))
                .enumerate()
                .for_each(|(k, (c, t))| work(start + k * TASK, c, t));
        }
        sink(start, c, t);
        start += len;
    }
}

/// Canonicalise every value in parallel tasks and hand each task's canonical forms to `f`,
/// which returns one output per form (the keyless mode hashes them to the group and blinds
/// them there). Returns every value's reason code (0 = used, `HELD` for a valid value whose
/// raw bytes `holds` accepts: not handed to `f`) and the outputs of the used values, in input
/// order.
pub fn map_canonical<V, T, F>(
    canon: impl Into<Canon>,
    values: &V,
    holds: impl Fn(&[u8]) -> bool + Sync,
    f: F,
) -> (Vec<u8>, Vec<T>)
where
    V: Values + ?Sized,
    T: Send,
    F: Fn(&[&str]) -> Vec<T> + Sync,
{
    let canon = canon.into();
    let n = values.len();
    let task = |range: std::ops::Range<usize>| {
        let mut s = Scratch::default();
        let mut codes = Vec::with_capacity(range.len());
        let mut forms: Vec<String> = Vec::with_capacity(range.len());
        for i in range {
            let c = canon_or_hold(canon, values, i, &mut s, &holds);
            codes.push(c);
            if c == 0 {
                forms.push(s.out.clone());
            }
        }
        let refs: Vec<&str> = forms.iter().map(String::as_str).collect();
        let out = f(&refs);
        debug_assert_eq!(out.len(), refs.len());
        (codes, out)
    };
    let ranges: Vec<std::ops::Range<usize>> =
        (0..n).step_by(TASK).map(|a| a..(a + TASK).min(n)).collect();
    let parts: Vec<(Vec<u8>, Vec<T>)> = if n < PARALLEL_MIN {
        ranges.into_iter().map(task).collect()
    } else {
        ranges.into_par_iter().map(task).collect()
    };
    let mut codes = Vec::with_capacity(n);
    let mut out = Vec::new();
    for (c, o) in parts {
        codes.extend(c);
        out.extend(o);
    }
    (codes, out)
}

/// `pred` of every value's raw bytes (false for nulls and non-text), in parallel.
pub fn raw_mask<V: Values + ?Sized>(values: &V, pred: impl Fn(&[u8]) -> bool + Sync) -> Vec<bool> {
    let one = |i: usize, s: &mut String| {
        values.with_item(i, s, |item| match item {
            Item::Str(v) => pred(v.as_bytes()),
            Item::Bytes(v) => pred(v),
            Item::Null | Item::NotText => false,
        })
    };
    let n = values.len();
    if n < PARALLEL_MIN {
        let mut s = String::new();
        (0..n).map(|i| one(i, &mut s)).collect()
    } else {
        (0..n)
            .into_par_iter()
            .with_min_len(TASK)
            .map_init(String::new, |s, i| one(i, s))
            .collect()
    }
}

/// How many values canonicalise (code 0), in parallel; nothing is kept or tagged (the cheap
/// first pass that sizes a distributed build's indices).
pub fn count_valid<V: Values + ?Sized>(canon: impl Into<Canon>, values: &V) -> u64 {
    let canon = canon.into();
    let n = values.len();
    let count = |range: std::ops::Range<usize>| {
        let mut s = Scratch::default();
        range
            .filter(|&i| canon_one(canon, values, i, &mut s) == 0)
            .count() as u64
    };
    if n < PARALLEL_MIN {
        return count(0..n);
    }
    (0..n)
        .step_by(TASK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|a| count(a..(a + TASK).min(n)))
        .sum()
}

/// Canonical strings (None where rejected) and reason codes (0 = ok).
pub fn canonicalize_all<V: Values + ?Sized>(
    canon: impl Into<Canon>,
    values: &V,
) -> (Vec<Option<String>>, Vec<u8>) {
    let canon = canon.into();
    let n = values.len();
    let one = |i: usize, s: &mut Scratch| {
        let code = canon_one(canon, values, i, s);
        ((code == 0).then(|| s.out.clone()), code)
    };
    if n < PARALLEL_MIN {
        let mut s = Scratch::default();
        (0..n).map(|i| one(i, &mut s)).unzip()
    } else {
        (0..n)
            .into_par_iter()
            .with_min_len(TASK)
            .map_init(Scratch::default, |s, i| one(i, s))
            .unzip()
    }
}

/// HMAC-SHA256 of every value's raw bytes and nothing else (no canonicalisation, no filter):
/// the floor the benchmarks compare builds against. Returns a checksum so the work is not
/// optimised away.
pub fn prf_only<V: Values + ?Sized>(prf: &Prf, values: &V) -> u64 {
    let n = values.len();
    (0..n.div_ceil(GROUP))
        .into_par_iter()
        .with_min_len(TASK / GROUP)
        .map_init(
            <([String; GROUP], [Vec<u8>; GROUP])>::default,
            |(scratch, bytes), k| {
                // Each value's bytes copied out of its borrow, so sixteen can be tagged at once.
                let items = GROUP * k..(GROUP * k + GROUP).min(n);
                let mut m = 0;
                for (i, s) in items.zip(scratch.iter_mut()) {
                    values.with_item(i, s, |v| {
                        if let Item::Str(v) = v {
                            bytes[m].clear();
                            bytes[m].extend_from_slice(v.as_bytes());
                            m += 1;
                        }
                    });
                }
                let msgs: [&[u8]; GROUP] = std::array::from_fn(|q| bytes[q].as_slice());
                let mut tags = [[0u8; 32]; GROUP];
                prf.tag_many(&msgs[..m], &mut tags[..m]);
                tags[..m].iter().map(|t| u64::from(t[0])).sum::<u64>()
            },
        )
        .sum()
}

/// Every value's reason code (0 = used), collected chunk by chunk: the counts per code, and
/// the codes themselves held as positions of the non-zero ones while those are few (clean
/// data costs next to nothing, not a byte a value), as a byte a value once they are not.
#[derive(Clone, Debug)]
pub struct Codes {
    len: usize,
    counts: Box<[u64; 256]>,
    held: Held,
}

#[derive(Clone, Debug)]
enum Held {
    /// Positions and codes of the non-zero values.
    Sparse(Vec<u64>, Vec<u8>),
    Dense(Vec<u8>),
}

impl Default for Codes {
    fn default() -> Self {
        Codes {
            len: 0,
            counts: Box::new([0; 256]),
            held: Held::Sparse(Vec::new(), Vec::new()),
        }
    }
}

impl From<Vec<u8>> for Codes {
    fn from(v: Vec<u8>) -> Codes {
        let mut counts = Box::new([0; 256]);
        tally(&v, &mut counts);
        Codes {
            len: v.len(),
            counts,
            held: Held::Dense(v),
        }
    }
}

impl Codes {
    /// The codes of the next values.
    pub fn push(&mut self, c: &[u8]) {
        tally(c, &mut self.counts);
        let at = self.len;
        self.len += c.len();
        match &mut self.held {
            Held::Dense(v) => v.extend_from_slice(c),
            Held::Sparse(pos, code) => {
                if self.counts[0] as usize == self.len {
                    return; // nothing but zeros so far
                }
                for (i, &x) in c.iter().enumerate() {
                    if x != 0 {
                        pos.push((at + i) as u64);
                        code.push(x);
                    }
                }
                // Nine bytes a non-zero code: dense is smaller past one in nine.
                if pos.len() > 4096 && pos.len() * 9 > self.len {
                    self.held = Held::Dense(self.to_vec());
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values per code (index 0: the values used).
    pub fn counts(&self) -> &[u64; 256] {
        &self.counts
    }

    /// Every value's code, a byte each.
    pub fn to_vec(&self) -> Vec<u8> {
        match &self.held {
            Held::Dense(v) => v.clone(),
            Held::Sparse(pos, code) => {
                let mut v = vec![0u8; self.len];
                for (&p, &c) in pos.iter().zip(code) {
                    v[p as usize] = c;
                }
                v
            }
        }
    }

    /// As `to_vec`, without a copy when held densely.
    pub fn into_vec(self) -> Vec<u8> {
        match self.held {
            Held::Dense(v) => v,
            Held::Sparse(..) => self.to_vec(),
        }
    }
}

/// Reason counts indexed by code (index 0 counts valid values).
pub fn tally(codes: &[u8], counts: &mut [u64; 256]) {
    for &c in codes {
        counts[usize::from(c)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_same_held_sparse_or_dense() {
        // clean, then a few rejects, then so many that they go dense
        let mut want = vec![0u8; 100_000];
        for i in (0..100_000).step_by(1000) {
            want[i] = 3;
        }
        let messy: Vec<u8> = (0..50_000).map(|i| (i % 4) as u8).collect();
        want.extend(&messy);
        let mut c = Codes::default();
        for chunk in want.chunks(7777) {
            c.push(chunk);
            assert!(c.len() <= want.len());
        }
        assert_eq!(c.to_vec(), want);
        assert!(
            matches!(c.held, Held::Dense(_)),
            "one in four rejected: held a byte a value"
        );
        let mut counts = [0u64; 256];
        tally(&want, &mut counts);
        assert_eq!(c.counts(), &counts);
        assert_eq!(c.clone().into_vec(), want);
        let mut clean = Codes::default();
        clean.push(&[0; 1000]);
        clean.push(&[0, 5, 0]);
        assert!(matches!(&clean.held, Held::Sparse(pos, _) if pos == &[1001]));
        assert_eq!(clean.to_vec()[1001], 5);
        assert_eq!(Codes::from(want.clone()).to_vec(), want);
    }
}
