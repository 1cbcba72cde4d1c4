//! The keyed PRF as a concept: which one an artefact was made with is named in its header
//! (docs/FORMAT.md §5), and artefacts of different PRFs refuse to combine, as different keys do.
//!
//! - HMAC-SHA256 (id 0, the default): on the raw SHA-256 compression function, sixteen items
//!   at a time on AVX-512 lanes where the CPU has them (`sha_x16`), else two at a time on
//!   interleaved SHA-NI chains (`sha_x2`).
//! - HMAC-SM3 (id 1): SM3 (GB/T 32905-2016) in HMAC (GB/T 15852.2), for agencies whose rules
//!   require 国密 algorithms. Checked against GM/T 0042-2015's vectors.

use hmac::{KeyInit, Mac, SimpleHmac};
use sha2::block_api::compress256;
use zeroize::Zeroizing;

use super::sha_x16::{self, hmac_x16};
use super::sha_x2::compress_x2;

/// The PRFs an artefact can be made with. The codes are part of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PrfId {
    HmacSha256 = 0,
    HmacSm3 = 1,
}

pub const ALL_PRFS: [PrfId; 2] = [PrfId::HmacSha256, PrfId::HmacSm3];

impl PrfId {
    pub fn name(self) -> &'static str {
        match self {
            PrfId::HmacSha256 => "hmac-sha256",
            PrfId::HmacSm3 => "hmac-sm3",
        }
    }

    pub fn from_name(name: &str) -> Option<PrfId> {
        ALL_PRFS
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<PrfId> {
        ALL_PRFS.iter().copied().find(|p| p.code() == code)
    }
}

/// A keyed PRF under one subkey.
#[derive(Clone)]
pub enum Prf {
    Sha256(HmacSha256),
    Sm3(HmacSm3),
}

impl Prf {
    pub(crate) fn new(id: PrfId, subkey: &[u8; 32]) -> Prf {
        match id {
            PrfId::HmacSha256 => Prf::Sha256(HmacSha256::new(subkey)),
            PrfId::HmacSm3 => Prf::Sm3(HmacSm3::new(subkey)),
        }
    }

    pub fn id(&self) -> PrfId {
        match self {
            Prf::Sha256(_) => PrfId::HmacSha256,
            Prf::Sm3(_) => PrfId::HmacSm3,
        }
    }

    #[inline]
    pub fn tag(&self, msg: &[u8]) -> [u8; 32] {
        match self {
            Prf::Sha256(p) => p.tag(msg),
            Prf::Sm3(p) => p.tag(msg),
        }
    }

    /// `out[i] = self.tag(msgs[i])` for every `i`, as fast as this CPU allows: at most
    /// [`GROUP`] at a time are worth handing over together.
    #[inline]
    pub fn tag_many(&self, msgs: &[&[u8]], out: &mut [[u8; 32]]) {
        assert_eq!(msgs.len(), out.len(), "a tag for every message");
        match self {
            Prf::Sha256(p) => p.tag_many(msgs, out),
            Prf::Sm3(p) => msgs.iter().zip(out).for_each(|(m, o)| *o = p.tag(m)),
        }
    }

    /// Tags of two values; HMAC-SHA256 interleaves them on two hash chains.
    #[inline]
    pub fn tag_x2(&self, a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
        match self {
            Prf::Sha256(p) => p.tag_x2(a, b),
            Prf::Sm3(p) => (p.tag(a), p.tag(b)),
        }
    }
}

/// HMAC-SM3 under one subkey: the keyed state (after the ipad and opad blocks) is computed
/// once and cloned per tag.
#[derive(Clone)]
pub struct HmacSm3 {
    keyed: SimpleHmac<sm3::Sm3>,
}

impl HmacSm3 {
    fn new(subkey: &[u8; 32]) -> HmacSm3 {
        HmacSm3 {
            keyed: <SimpleHmac<sm3::Sm3> as KeyInit>::new_from_slice(subkey)
                .expect("HMAC takes any key length"),
        }
    }

    #[inline]
    pub fn tag(&self, msg: &[u8]) -> [u8; 32] {
        let mut m = self.keyed.clone();
        m.update(msg);
        m.finalize().into_bytes().into()
    }
}

/// HMAC-SM3 of `msg` under `key` (any length), for tests and worked examples.
pub fn hmac_sm3(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m =
        <SimpleHmac<sm3::Sm3> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// HMAC-SHA256 under one subkey (RFC 2104), written on the raw SHA-256 compression function:
/// the states after the ipad and opad blocks are computed once, so a tag of a value shorter
/// than 56 bytes costs exactly two compressions and no buffering. The states are zeroised on
/// drop. Checked against the `hmac` crate in the tests.
#[derive(Clone)]
pub struct HmacSha256 {
    inner: Zeroizing<[u32; 8]>,
    outer: Zeroizing<[u32; 8]>,
}

pub(crate) const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Messages [`Prf::tag_many`] tags in one step where the CPU has AVX-512.
pub const GROUP: usize = sha_x16::LANES;

/// Fewer messages than this go in pairs: sixteen lanes cost about what nine tags in pairs do.
const X16_MIN: usize = 9;

impl HmacSha256 {
    /// Sixteen at a time while at least `X16_MIN` are left (a short group's spare lanes hash
    /// its last message again), the rest in pairs.
    #[inline]
    fn tag_many(&self, msgs: &[&[u8]], out: &mut [[u8; 32]]) {
        let mut i = 0;
        while msgs.len() - i >= X16_MIN {
            let k = (msgs.len() - i).min(GROUP);
            let lanes: [&[u8]; GROUP] = std::array::from_fn(|j| msgs[i + j.min(k - 1)]);
            let mut tags = [[0u8; 32]; GROUP];
            if !hmac_x16(&self.inner, &self.outer, &lanes, &mut tags) {
                break; // no AVX-512, or a long message among them
            }
            out[i..i + k].copy_from_slice(&tags[..k]);
            i += k;
        }
        for (m, o) in msgs[i..].chunks(2).zip(out[i..].chunks_mut(2)) {
            if let ([a, b], [x, y]) = (m, &mut *o) {
                (*x, *y) = self.tag_x2(a, b);
            } else {
                o[0] = self.tag(m[0]);
            }
        }
    }

    fn new(subkey: &[u8; 32]) -> HmacSha256 {
        let mut ipad = Zeroizing::new([0x36u8; 64]);
        let mut opad = Zeroizing::new([0x5cu8; 64]);
        for (i, k) in subkey.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = Zeroizing::new(SHA256_IV);
        let mut outer = Zeroizing::new(SHA256_IV);
        compress256(&mut inner, &[*ipad]);
        compress256(&mut outer, &[*opad]);
        HmacSha256 { inner, outer }
    }

    /// Tags of two values at once; values under 56 bytes (every canonical ID number, mobile
    /// number and card number) take the interleaved two-lane path, four compressions in the
    /// time of about two.
    #[inline]
    pub fn tag_x2(&self, a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
        if a.len() >= 56 || b.len() >= 56 {
            return (self.tag(a), self.tag(b));
        }
        let last = |msg: &[u8]| {
            let mut block = [0u8; 64];
            block[..msg.len()].copy_from_slice(msg);
            block[msg.len()] = 0x80;
            block[56..].copy_from_slice(&((64 + msg.len()) as u64 * 8).to_be_bytes());
            block
        };
        let (mut sa, mut sb) = (*self.inner, *self.inner);
        compress_x2(&mut sa, &last(a), &mut sb, &last(b));
        let outer_block = |st: [u32; 8]| {
            let mut block = [0u8; 64];
            for (o, w) in block.chunks_exact_mut(4).zip(st) {
                o.copy_from_slice(&w.to_be_bytes());
            }
            block[32] = 0x80;
            block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
            block
        };
        let (ba, bb) = (outer_block(sa), outer_block(sb));
        let (mut oa, mut ob) = (*self.outer, *self.outer);
        compress_x2(&mut oa, &ba, &mut ob, &bb);
        (be_bytes(oa), be_bytes(ob))
    }

    #[inline]
    pub fn tag(&self, msg: &[u8]) -> [u8; 32] {
        let mut st = *self.inner;
        let full = msg.len() / 64;
        for block in msg[..full * 64].chunks_exact(64) {
            compress256(&mut st, &[block.try_into().expect("64-byte chunk")]);
        }
        let rem = &msg[full * 64..];
        // 64 bytes of ipad block precede the message.
        let bit_len = ((64 + msg.len()) as u64) * 8;
        let mut last = [[0u8; 64]; 2];
        let flat = last.as_flattened_mut();
        flat[..rem.len()].copy_from_slice(rem);
        flat[rem.len()] = 0x80;
        let nblocks = if rem.len() < 56 { 1 } else { 2 };
        flat[nblocks * 64 - 8..nblocks * 64].copy_from_slice(&bit_len.to_be_bytes());
        compress256(&mut st, &last[..nblocks]);
        let mut block = [0u8; 64];
        for (o, w) in block.chunks_exact_mut(4).zip(st) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut out_state = *self.outer;
        compress256(&mut out_state, &[block]);
        be_bytes(out_state)
    }
}

fn be_bytes(state: [u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm3::Digest;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sm3_vectors_of_gb_t_32905() {
        assert_eq!(
            hex(&sm3::Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex(&sm3::Sm3::digest(b"abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn hmac_sm3_vectors_of_gm_t_0042() {
        // GM/T 0042-2015 Appendix D.3, cases 1 and 2.
        let key: Vec<u8> = (1..=32).collect();
        let msg = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".repeat(2);
        assert_eq!(
            hex(&hmac_sm3(&key, &msg)),
            "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a"
        );
        let key: Vec<u8> = (1..=37).collect();
        assert_eq!(
            hex(&hmac_sm3(&key, &[0xcd; 50])),
            "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae"
        );
        // The keyed-state path agrees with the one-shot one for every length.
        let sub = [7u8; 32];
        let p = HmacSm3::new(&sub);
        for n in 0..200 {
            let m: Vec<u8> = (0..n).map(|i| i as u8).collect();
            assert_eq!(p.tag(&m), hmac_sm3(&sub, &m));
        }
    }
}
