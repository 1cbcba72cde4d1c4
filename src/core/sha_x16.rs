//! HMAC-SHA256 of sixteen short messages at once, one per 32-bit lane of AVX-512 registers.
//!
//! A SHA-NI compression is a chain of dependent `sha256rnds2` steps; two interleaved chains
//! (`sha_x2`) still leave a core waiting on them (≈ 80 ns a tag on the AMD hosts this was
//! measured on). Sixteen lanes of plain SIMD arithmetic — `vprold` for the rotations,
//! `vpternlogd` for Σ, Ch and Maj in one step each — make ≈ 44 ns a tag there, the
//! gathers that load the blocks word-major and the byte swaps included. Used where the CPU
//! has AVX-512F and AVX-512BW (checked at run time), for messages of fewer than 56 bytes (one
//! inner block: every canonical identifier); anything else takes the two-chain path.

use std::sync::OnceLock;

/// Messages one call tags.
pub const LANES: usize = 16;

/// The longest message one inner block holds (with its 0x80 and 8-byte length).
pub const MAX_LEN: usize = 55;

/// Whether this CPU runs the sixteen-lane path.
pub fn available() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `out[i]` = HMAC-SHA256 of `msgs[i]` under the key whose inner and outer pad states (after
/// compressing `key ^ ipad` and `key ^ opad`) are `inner` and `outer`. False, with `out`
/// untouched, where the CPU lacks AVX-512 or a message is longer than [`MAX_LEN`].
pub fn hmac_x16(
    inner: &[u32; 8],
    outer: &[u32; 8],
    msgs: &[&[u8]; LANES],
    out: &mut [[u8; 32]; LANES],
) -> bool {
    if !available() || msgs.iter().any(|m| m.len() > MAX_LEN) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the CPU has avx512f and avx512bw (checked just above).
        unsafe { x86::hmac16(inner, outer, msgs, out) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (inner, outer, out);
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{LANES, MAX_LEN};
    use crate::core::sha_x2::K32;

    /// Compress the block `w` (its sixteen words, lane by lane) into the state `s`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn compress(s: &mut [__m512i; 8], w: &mut [__m512i; 16]) {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
        let mut round = |t: usize, wt: __m512i| {
            // Σ1(e) and Σ0(a): three rotations XORed in one ternary-logic step (0x96).
            let s1 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<6>(e),
                _mm512_ror_epi32::<11>(e),
                _mm512_ror_epi32::<25>(e),
            );
            let ch = _mm512_ternarylogic_epi32::<0xCA>(e, f, g); // e ? f : g
            let k = _mm512_set1_epi32(K32[t] as i32);
            let t1 = _mm512_add_epi32(
                _mm512_add_epi32(h, s1),
                _mm512_add_epi32(ch, _mm512_add_epi32(wt, k)),
            );
            let s0 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<2>(a),
                _mm512_ror_epi32::<13>(a),
                _mm512_ror_epi32::<22>(a),
            );
            let maj = _mm512_ternarylogic_epi32::<0xE8>(a, b, c); // the majority of a, b, c
            h = g;
            g = f;
            f = e;
            e = _mm512_add_epi32(d, t1);
            d = c;
            c = b;
            b = a;
            a = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
        };
        for (t, &wt) in w.iter().enumerate() {
            round(t, wt);
        }
        for t in 16..64 {
            let (w15, w2) = (w[(t - 15) & 15], w[(t - 2) & 15]);
            let s0 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<7>(w15),
                _mm512_ror_epi32::<18>(w15),
                _mm512_srli_epi32::<3>(w15),
            );
            let s1 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<17>(w2),
                _mm512_ror_epi32::<19>(w2),
                _mm512_srli_epi32::<10>(w2),
            );
            let next = _mm512_add_epi32(
                _mm512_add_epi32(w[t & 15], s0),
                _mm512_add_epi32(w[(t - 7) & 15], s1),
            );
            w[t & 15] = next;
            round(t, next);
        }
        for (si, x) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *si = _mm512_add_epi32(*si, x);
        }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn hmac16(
        inner: &[u32; 8],
        outer: &[u32; 8],
        msgs: &[&[u8]; LANES],
        out: &mut [[u8; 32]; LANES],
    ) {
        // Each lane's one inner block as bytes: the message, 0x80, zeros, the bit length of
        // the key block and the message.
        let mut blocks = [[0u8; 64]; LANES];
        let mut words_used = 0;
        for (b, m) in blocks.iter_mut().zip(msgs) {
            debug_assert!(m.len() <= MAX_LEN);
            b[..m.len()].copy_from_slice(m);
            b[m.len()] = 0x80;
            b[56..].copy_from_slice(&((64 + m.len()) as u64 * 8).to_be_bytes());
            words_used = words_used.max(m.len() / 4 + 1);
        }
        // Word i of every lane in one register: a gather of the blocks' i-th words (lane l's
        // block starts 16 words after lane l-1's), byte-swapped to SHA's big-endian words.
        // Words between the last message's 0x80 and the length's low word are zero in every
        // lane (the high word too: no bit length here reaches 2^32).
        let idx = _mm512_setr_epi32(
            0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
        );
        let swap = _mm512_broadcast_i32x4(_mm_setr_epi8(
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
        ));
        let base: *const i32 = blocks.as_ptr().cast();
        let mut w = [_mm512_setzero_si512(); 16];
        for (i, wi) in w.iter_mut().enumerate() {
            if i < words_used || i == 15 {
                // SAFETY: lane l reads word i of block l: byte 64 l + 4 i + 3 < 16 · 64, inside
                // `blocks`; `base.add(i)` stays inside it too.
                *wi = _mm512_shuffle_epi8(
                    unsafe { _mm512_i32gather_epi32::<4>(idx, base.add(i)) },
                    swap,
                );
            }
        }
        let mut s = inner.map(|x| _mm512_set1_epi32(x as i32));
        compress(&mut s, &mut w);
        // The outer block: the inner digest, 0x80, zeros, the bit length of 64 + 32 bytes.
        let mut w = [_mm512_setzero_si512(); 16];
        w[..8].copy_from_slice(&s);
        w[8] = _mm512_set1_epi32(0x8000_0000u32 as i32);
        w[15] = _mm512_set1_epi32((64 + 32) * 8);
        let mut o = outer.map(|x| _mm512_set1_epi32(x as i32));
        compress(&mut o, &mut w);
        let mut words = [[0u32; LANES]; 8];
        for (row, v) in words.iter_mut().zip(o) {
            // SAFETY: `row` is 64 writable bytes; an unaligned store.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
        }
        for (l, tag) in out.iter_mut().enumerate() {
            for (o, row) in tag.chunks_exact_mut(4).zip(&words) {
                o.copy_from_slice(&row[l].to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::block_api::compress256;
    use sha2::Sha256;

    use super::*;

    fn pad_state(key: &[u8; 32], pad: u8) -> [u32; 8] {
        let mut block = [pad; 64];
        block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        let mut st = crate::core::prf::SHA256_IV;
        compress256(&mut st, &[block]);
        st
    }

    #[test]
    fn sixteen_lanes_are_hmac_sha256_of_each_message() {
        let key = [0xa5u8; 32];
        let (inner, outer) = (pad_state(&key, 0x36), pad_state(&key, 0x5c));
        // Lanes of every length 0..=55, in several arrangements (lengths differ lane by lane).
        let msgs: Vec<Vec<u8>> = (0..=MAX_LEN)
            .map(|n| (0..n).map(|i| (n * 13 + i * 5) as u8).collect())
            .collect();
        for shift in 0..msgs.len() {
            let lanes: [&[u8]; LANES] =
                std::array::from_fn(|l| msgs[(shift + l * 7) % msgs.len()].as_slice());
            let mut out = [[0u8; 32]; LANES];
            if !hmac_x16(&inner, &outer, &lanes, &mut out) {
                assert!(
                    !available(),
                    "refused short messages on a CPU that has AVX-512"
                );
                return;
            }
            for (m, t) in lanes.iter().zip(out) {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
                mac.update(m);
                assert_eq!(t, <[u8; 32]>::from(mac.finalize().into_bytes()), "{m:?}");
            }
        }
        // A message of 56 bytes needs a second block: refused, `out` untouched.
        let long = [7u8; 56];
        let lanes: [&[u8]; LANES] = std::array::from_fn(|l| if l == 9 { &long[..] } else { &[] });
        let mut out = [[1u8; 32]; LANES];
        assert!(!hmac_x16(&inner, &outer, &lanes, &mut out));
        assert_eq!(out, [[1u8; 32]; LANES]);
    }
}
