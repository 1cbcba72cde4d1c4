//! Two SHA-256 compressions at once with the x86 SHA extensions. One compression is a chain of
//! 32 dependent `sha256rnds2` instructions, so a core running one chain sits mostly idle;
//! interleaving two independent chains (two items) nearly doubles throughput. Elsewhere, or on
//! CPUs without the extensions, it is two calls of `sha2`'s own compression function.

use sha2::block_api::compress256;

/// Compress one block into each of two independent states.
#[inline]
pub fn compress_x2(a: &mut [u32; 8], block_a: &[u8; 64], b: &mut [u32; 8], block_b: &[u8; 64]) {
    #[cfg(target_arch = "x86_64")]
    if has_sha_ni() {
        // SAFETY: the CPU supports sha, sse4.1 and ssse3 (checked at run time just above).
        unsafe { x86::compress_x2(a, block_a, b, block_b) };
        return;
    }
    compress256(a, std::slice::from_ref(block_a));
    compress256(b, std::slice::from_ref(block_b));
}

#[cfg(target_arch = "x86_64")]
fn has_sha_ni() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
    })
}

/// SHA-256's round constants (FIPS 180-4 §4.2.2), for every SIMD path.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const K32: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::K32;

    /// One lane: the working state in the SHA-NI register layout and the message schedule.
    struct Lane {
        abef: __m128i,
        cdgh: __m128i,
        w: [__m128i; 4],
    }

    #[inline]
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn load(state: &[u32; 8], block: &[u8; 64]) -> Lane {
        let p: *const __m128i = state.as_ptr().cast();
        // SAFETY: `state` is 32 readable bytes; unaligned loads.
        let (dcba, hgfe) = unsafe { (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1))) };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let bp: *const __m128i = block.as_ptr().cast();
        Lane {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
            // SAFETY: `block` is 64 readable bytes; unaligned loads.
            w: std::array::from_fn(|i| unsafe {
                _mm_shuffle_epi8(_mm_loadu_si128(bp.add(i)), mask)
            }),
        }
    }

    #[inline]
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn store(state: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let p: *mut __m128i = state.as_mut_ptr().cast();
        // SAFETY: `state` is 32 writable bytes; unaligned stores.
        unsafe {
            _mm_storeu_si128(p, dcba);
            _mm_storeu_si128(p.add(1), hgef);
        }
    }

    #[inline]
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn rounds4(r: usize, l: &mut Lane, msg: __m128i) {
        let rk = _mm_set_epi32(
            K32[4 * r + 3] as i32,
            K32[4 * r + 2] as i32,
            K32[4 * r + 1] as i32,
            K32[4 * r] as i32,
        );
        let t1 = _mm_add_epi32(msg, rk);
        l.cdgh = _mm_sha256rnds2_epu32(l.cdgh, l.abef, t1);
        let t2 = _mm_shuffle_epi32(t1, 0x0E);
        l.abef = _mm_sha256rnds2_epu32(l.abef, l.cdgh, t2);
    }

    #[inline]
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn schedule(i: usize, l: &mut Lane) -> __m128i {
        let (w0, w1, w2, w3) = (l.w[i], l.w[(i + 1) % 4], l.w[(i + 2) % 4], l.w[(i + 3) % 4]);
        let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
        l.w[i] = _mm_sha256msg2_epu32(t, w3);
        l.w[i]
    }

    #[target_feature(enable = "sha,sse4.1,ssse3")]
    pub(super) fn compress_x2(
        a: &mut [u32; 8],
        block_a: &[u8; 64],
        b: &mut [u32; 8],
        block_b: &[u8; 64],
    ) {
        let mut la = load(a, block_a);
        let mut lb = load(b, block_b);
        let (sa, sb) = ((la.abef, la.cdgh), (lb.abef, lb.cdgh));
        for r in 0..4 {
            let (ma, mb) = (la.w[r], lb.w[r]);
            rounds4(r, &mut la, ma);
            rounds4(r, &mut lb, mb);
        }
        for r in 4..16 {
            let ma = schedule(r % 4, &mut la);
            let mb = schedule(r % 4, &mut lb);
            rounds4(r, &mut la, ma);
            rounds4(r, &mut lb, mb);
        }
        store(
            a,
            _mm_add_epi32(la.abef, sa.0),
            _mm_add_epi32(la.cdgh, sa.1),
        );
        store(
            b,
            _mm_add_epi32(lb.abef, sb.0),
            _mm_add_epi32(lb.cdgh, sb.1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_single_compressions() {
        for seed in 0..50u32 {
            let block_a: [u8; 64] = std::array::from_fn(|i| (i as u32 * 31 + seed) as u8);
            let block_b: [u8; 64] = std::array::from_fn(|i| (i as u32 * 17 + seed * 3) as u8);
            let mut a: [u32; 8] = std::array::from_fn(|i| seed.wrapping_mul(2654435761) ^ i as u32);
            let mut b: [u32; 8] = std::array::from_fn(|i| seed.wrapping_add(99) ^ (i as u32) << 7);
            let (mut ra, mut rb) = (a, b);
            compress256(&mut ra, &[block_a]);
            compress256(&mut rb, &[block_b]);
            compress_x2(&mut a, &block_a, &mut b, &block_b);
            assert_eq!((a, b), (ra, rb));
        }
    }
}
