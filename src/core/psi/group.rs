//! The group side of the keyless mode: hashing a canonical value to ristretto255 (RFC 9496
//! §4.3.4 element derivation) and blinding points with a party's secret scalar.
//!
//! H(x) = `RistrettoPoint::from_uniform_bytes(SHA-512(DOMAIN ‖ u16be(|op|) ‖ op ‖
//! u8(|kind|) ‖ kind ‖ u16be(version) ‖ x))` — every field length-prefixed, so no two
//! (operation, kind, version, value) tuples share an input. Blinding multiplies by the scalar
//! k; a pass computes (k/2)·P and encodes 2·((k/2)·P) = k·P with
//! `double_and_compress_batch`, which shares one field inversion over the batch: the bytes are
//! those of `(k·P).compress()`.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use crate::core::canon::Canon;

/// The domain-separation prefix of the hash to the group (protocol version 1).
pub const DOMAIN: &[u8] = b"pi_match/psi/v1";

/// A compressed ristretto255 point.
pub type Point = [u8; 32];

/// Points per batch encoding (one inversion each) and per parallel task.
const BATCH: usize = 512;
/// Below this many items a pass runs on the calling thread.
const PARALLEL_MIN: usize = 2048;

/// The 64 uniform bytes for value `x` of `canon` in operation `op`.
pub fn uniform_bytes(op: &str, canon: Canon, x: &[u8]) -> [u8; 64] {
    let kind = canon.kind.name().as_bytes();
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update((op.len() as u16).to_be_bytes());
    h.update(op.as_bytes());
    h.update([kind.len() as u8]);
    h.update(kind);
    h.update(canon.version.to_be_bytes());
    h.update(x);
    h.finalize().into()
}

/// H(x): the value as a group element.
pub fn hash_to_group(op: &str, canon: Canon, x: &[u8]) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&uniform_bytes(op, canon, x))
}

/// A party's secret scalar, ready to blind (held as k/2, see the module note). Zeroised on
/// drop; never printed.
pub struct Blinder {
    half: Scalar,
}

impl Drop for Blinder {
    fn drop(&mut self) {
        self.half.zeroize();
    }
}

impl std::fmt::Debug for Blinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinder(..)")
    }
}

/// A point that is not a valid ristretto255 encoding, at this index of its set.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPoint(pub usize);

impl Blinder {
    pub fn new(k: &Scalar) -> Blinder {
        Blinder {
            half: k * Scalar::from(2u64).invert(),
        }
    }

    fn encode(points: &[RistrettoPoint]) -> Vec<Point> {
        RistrettoPoint::double_and_compress_batch(points)
            .into_iter()
            .map(|c| c.to_bytes())
            .collect()
    }

    /// k·H(x) for every canonical value of `op`/`canon` (in order).
    pub fn blind_values(&self, op: &str, canon: Canon, forms: &[&str]) -> Vec<Point> {
        let one = |chunk: &[&str]| {
            let pts: Vec<RistrettoPoint> = chunk
                .iter()
                .map(|x| hash_to_group(op, canon, x.as_bytes()) * self.half)
                .collect();
            Self::encode(&pts)
        };
        run_chunks(forms, one)
    }

    /// k·P for every encoded point (in order), or the index of the first that is not a
    /// valid encoding.
    pub fn blind_points(&self, points: &[Point]) -> Result<Vec<Point>, BadPoint> {
        let one = |base: usize, chunk: &[Point]| -> Result<Vec<Point>, BadPoint> {
            let pts = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    CompressedRistretto(*p)
                        .decompress()
                        .map(|q| q * self.half)
                        .ok_or(BadPoint(base + i))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Self::encode(&pts))
        };
        if points.len() < PARALLEL_MIN {
            return points
                .chunks(BATCH)
                .enumerate()
                .map(|(k, c)| one(k * BATCH, c))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat());
        }
        let parts: Vec<Result<Vec<Point>, BadPoint>> = points
            .par_chunks(BATCH)
            .enumerate()
            .map(|(k, c)| one(k * BATCH, c))
            .collect();
        let mut out = Vec::with_capacity(points.len());
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }
}

fn run_chunks<T: Sync, F: Fn(&[T]) -> Vec<Point> + Sync>(items: &[T], f: F) -> Vec<Point> {
    if items.len() < PARALLEL_MIN {
        return items.chunks(BATCH).flat_map(&f).collect();
    }
    let parts: Vec<Vec<Point>> = items.par_chunks(BATCH).map(&f).collect();
    parts.concat()
}

/// A random nonzero scalar from the operating system's generator.
pub fn random_scalar() -> crate::core::Result<Scalar> {
    loop {
        let mut wide = zeroize::Zeroizing::new([0u8; 64]);
        getrandom::fill(&mut wide[..]).map_err(|e| {
            crate::core::Error::Invalid(format!("the system random generator failed: {e}"))
        })?;
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        if k != Scalar::ZERO {
            return Ok(k);
        }
    }
}

/// Benchmark floor: the seconds `n` constant-time scalar multiplications alone take (in
/// parallel, as a pass runs them): what a pass costs at least.
pub fn mul_floor(n: usize) -> f64 {
    let k = random_scalar().unwrap_or(Scalar::ONE);
    let canon = Canon::from(crate::core::canon::Kind::Raw);
    let pts: Vec<RistrettoPoint> = (0..n as u64)
        .into_par_iter()
        .map(|i| hash_to_group("floor", canon, &i.to_le_bytes()))
        .collect();
    let t = std::time::Instant::now();
    let out: Vec<RistrettoPoint> = pts
        .par_chunks(BATCH)
        .flat_map_iter(|c| c.iter().map(|p| p * k))
        .collect();
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(out);
    s
}

/// The 64-bit truncation of a fully blinded point: its first 8 bytes, little-endian.
pub fn truncate(p: &Point) -> u64 {
    u64::from_le_bytes(p[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as B;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn blinding_commutes_and_matches_plain_multiplication() {
        let (a, b) = (random_scalar().unwrap(), random_scalar().unwrap());
        let (ba, bb) = (Blinder::new(&a), Blinder::new(&b));
        let canon = Canon::from(crate::core::canon::Kind::CnMobile);
        let xs = ["+8613800138000", "+8613900000000"];
        let once = ba.blind_values("op-1", canon, &xs);
        assert_eq!(
            once[0],
            (hash_to_group("op-1", canon, xs[0].as_bytes()) * a)
                .compress()
                .to_bytes()
        );
        let ab = bb.blind_points(&once).unwrap();
        let ba_ = ba
            .blind_points(&bb.blind_values("op-1", canon, &xs))
            .unwrap();
        assert_eq!(ab, ba_);
        // another operation: other points
        assert_ne!(ba.blind_values("op-2", canon, &xs), once);
        // many items take the parallel, batched path: same bytes as one by one
        let many: Vec<Point> = (0..3000u64)
            .map(|i| (B * Scalar::from(i + 1)).compress().to_bytes())
            .collect();
        let out = ba.blind_points(&many).unwrap();
        for (i, p) in [0usize, 511, 512, 2999].iter().map(|&i| (i, out[i])) {
            assert_eq!(
                p,
                (B * Scalar::from(i as u64 + 1) * a).compress().to_bytes()
            );
        }
        let mut bad = many.clone();
        bad[2500] = [0xff; 32];
        assert_eq!(ba.blind_points(&bad), Err(BadPoint(2500)));
        assert!(!format!("{ba:?}").contains(&hex(a.as_bytes())));
    }
}
