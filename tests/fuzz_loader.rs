//! The artefact loader against hostile bytes: a deterministic mutation fuzzer over the golden
//! files (bit flips, byte sets, truncations, extensions, splices of header fields), one million
//! inputs in the normal test run. Every input must load or fail with `Error::Format`: no panic,
//! no hang, and no single allocation larger than the input justifies (checked with a counting
//! allocator). The corpus in tests/data/fuzz/ (inputs that reach the deeper checks) is replayed.
//!
//! Longer run: `PI_MATCH_FUZZ_ITERS=100000000 cargo test --release --test fuzz_loader`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pi_match::core::format::Artefact;
use pi_match::core::psi::Message;
use pi_match::core::Error;

struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only records the largest request.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn golden() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/format_v1");
    ["bloom_cn_ric.pmi", "tagset_email.pmi", "multi.pmi"]
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{f}")).expect("golden file"))
        .collect()
}

/// xorshift64*: deterministic, so a failure reproduces from its iteration number.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut d = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            2 => d.truncate(rng.below(d.len() + 1)),
            3 => {
                let extra = rng.below(200);
                d.extend((0..extra).map(|_| rng.next() as u8));
            }
            4 => {
                // An interesting 8-byte value into a header or table field.
                let field = [0u64, 1, 64, 0xFFFF_FFFF, u64::MAX, 1 << 40, d.len() as u64];
                let v = field[rng.below(field.len())].to_le_bytes();
                let at = rng.below(d.len().saturating_sub(8).min(64 + 64 * 3) + 1);
                let end = (at + 8).min(d.len());
                d[at..end].copy_from_slice(&v[..end - at]);
            }
            5 => {
                // One byte of the section table: kind, version, layout, lengths.
                if d.len() > 128 {
                    let i = 64 + rng.below(64);
                    d[i] = [0u8, 1, 2, 3, 7, 36, 37, 255][rng.below(8)];
                }
            }
            _ => d.clear(),
        }
        if d.is_empty() {
            break;
        }
    }
    d
}

/// Make the header checksum (and every payload checksum the table names) right again, so the
/// mutation reaches the structural checks behind them instead of stopping at a checksum.
fn refix(d: &mut [u8]) {
    use xxhash_rust::xxh3::{xxh3_64, Xxh3};
    if d.len() < 64 {
        return;
    }
    let count = u32::from_le_bytes(d[12..16].try_into().unwrap()).min(256) as usize;
    let table_end = (64 + 64 * count).min(d.len());
    for e in (64..table_end).step_by(64) {
        if e + 64 > d.len() {
            break;
        }
        let off = u64::from_le_bytes(d[e + 16..e + 24].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(d[e + 24..e + 32].try_into().unwrap()) as usize;
        if off.checked_add(len).is_some_and(|end| end <= d.len()) {
            let sum = xxh3_64(&d[off..off + len]);
            d[e + 32..e + 40].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let mut h = Xxh3::new();
    h.update(&d[..56]);
    h.update(&d[64..table_end]);
    let sum = h.digest();
    d[56..64].copy_from_slice(&sum.to_le_bytes());
}

/// `load` of `data` succeeds or fails with `Error::Format` — no other error, no panic — and
/// allocates no more than the input justifies.
fn check_with<T>(data: &[u8], what: &str, load: fn(&[u8]) -> Result<T, Error>) {
    LARGEST.store(0, Ordering::Relaxed);
    match load(data) {
        Ok(_) | Err(Error::Format(_)) => {}
        Err(other) => panic!("{what}: not a FormatError: {other:?}"),
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    // Loading copies payloads (at most the input's size) and builds small tables.
    assert!(
        largest <= 2 * data.len() + 64 * 1024,
        "{what}: allocated {largest} bytes for a {}-byte input",
        data.len()
    );
}

fn check(data: &[u8], what: &str) {
    check_with(data, what, Artefact::from_bytes);
}

#[test]
fn a_million_mutated_artefacts_never_panic() {
    let iters: usize = std::env::var("PI_MATCH_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let bases = golden();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for i in 0..iters {
        let base = &bases[i % bases.len()];
        let mut input = mutate(&mut rng, base);
        if i % 2 == 1 {
            refix(&mut input);
        }
        check(&input, &format!("iteration {i}"));
    }
}

#[test]
fn corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("corpus folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            let data = std::fs::read(&path).expect("corpus file");
            check(&data, &path.display().to_string());
            assert!(
                Artefact::from_bytes(&data).is_err(),
                "{} should be rejected",
                path.display()
            );
            n += 1;
        }
    }
    assert!(n >= 10, "corpus has only {n} cases");
}

fn check_message(data: &[u8], what: &str) {
    check_with(data, what, Message::from_bytes);
}

/// The keyless messages (golden files of tests/data/psi_v1) through the same mutations, and
/// the keyed golden files through the message reader (which must refuse them by name).
#[test]
fn mutated_keyless_messages_never_panic() {
    let iters: usize = std::env::var("PI_MATCH_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
        / 4;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/psi_v1");
    let bases: Vec<Vec<u8>> = ["first_A.pim", "final_A.pim"]
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{f}")).expect("golden message"))
        .collect();
    for b in &bases {
        Message::from_bytes(b).expect("the golden messages load");
        assert!(Artefact::from_bytes(b).is_err());
    }
    for g in golden() {
        assert!(matches!(Message::from_bytes(&g), Err(Error::Format(_))));
    }
    let mut rng = Rng(0x5EED_1234_ABCD_0002);
    for i in 0..iters {
        let mut input = mutate(&mut rng, &bases[i % bases.len()]);
        if i % 2 == 1 {
            refix(&mut input);
        }
        check_message(&input, &format!("message iteration {i}"));
        check(&input, &format!("message as artefact, iteration {i}"));
    }
}
