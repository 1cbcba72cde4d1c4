//! The shared secret of a joint operation, its public key id, and the keyed PRF.
//!
//! Derivations (docs/FORMAT.md §3):
//!   PRK        = HKDF-Extract(salt = "pi_match/v1", IKM = 32-byte master key)
//!   key id     = HKDF-Expand(PRK, "pi_match/v1/key-id", 8)
//!   subkey(k)  = HKDF-Expand(PRK, "pi_match/v1/<kind>/<canon version>", 32)
//!   tag(k, v)  = HMAC-SHA256(subkey(k), UTF-8 bytes of canonical v)
//! With the HMAC-SM3 PRF (`core::prf`) the subkey and the tag use SM3 in place of SHA-256.
//! The key id is a keyed fingerprint: it does not help to guess the key.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::canon::Kind;
use super::error::{Error, Result};
pub use super::prf::{Prf, PrfId};

pub const KEY_LEN: usize = 32;
pub const KEY_ID_LEN: usize = 8;
const HKDF_SALT: &[u8] = b"pi_match/v1";
/// First line of a key file; the secret follows as 64 hex digits.
const KEY_FILE_PREFIX: &str = "pi_match-key-v1:";

pub type KeyId = [u8; KEY_ID_LEN];

pub fn key_id_hex(id: &KeyId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 256-bit master key. The secret is zeroised on drop and never printed (`Debug` shows the
/// key id only).
pub struct Key {
    secret: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id={})", key_id_hex(&self.id))
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Key::from_bytes(&self.secret[..]).expect("a key's own bytes are a valid key")
    }
}

impl Key {
    pub fn from_bytes(bytes: &[u8]) -> Result<Key> {
        let secret: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::Invalid(format!(
                "a key is {KEY_LEN} bytes, got {} bytes",
                bytes.len()
            ))
        })?;
        let secret = Zeroizing::new(secret);
        let mut id = [0u8; KEY_ID_LEN];
        hkdf(&secret[..])
            .expand(b"pi_match/v1/key-id", &mut id)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        Ok(Key { secret, id })
    }

    pub fn generate() -> Result<Key> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut bytes[..])
            .map_err(|e| Error::Invalid(format!("the system random source failed: {e}")))?;
        Key::from_bytes(&bytes[..])
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn id_hex(&self) -> String {
        key_id_hex(&self.id)
    }

    /// The secret bytes, for callers that must hand them on (never for display).
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// A key for one joint operation, derived from this master key: HKDF-SHA256 with the
    /// operation id (UTF-8) as salt and info `pi_match/v1/operation-key`. Artefacts made under
    /// different operation keys cannot be linked without the master key.
    pub fn derive(&self, operation_id: &str) -> Result<Key> {
        if operation_id.is_empty() {
            return Err(Error::Invalid("the operation id must not be empty".into()));
        }
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(Some(operation_id.as_bytes()), &self.secret[..])
            .expand(b"pi_match/v1/operation-key", &mut out[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Key::from_bytes(&out[..])
    }

    /// The key that authenticates whole artefacts (docs/FORMAT.md §5): HKDF-Expand(PRK,
    /// "pi_match/v1/artefact-mac", 32).
    pub fn mac_key(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf(&self.secret[..])
            .expand(b"pi_match/v1/artefact-mac", &mut out[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// The keyed PRF (HMAC-SHA256) for one identifier kind under its newest canonicaliser.
    pub fn prf(&self, kind: Kind) -> Prf {
        self.prf_for(kind, kind.canon_version())
    }

    /// HMAC-SHA256 for `kind` under canonicaliser `canon_version`.
    pub fn prf_for(&self, kind: Kind, canon_version: u16) -> Prf {
        self.prf_with(kind, canon_version, PrfId::HmacSha256)
    }

    /// The PRF `id` for `kind` under `canon_version`. The subkey is HKDF with the PRF's own
    /// hash (HKDF-SHA256 or HKDF-SM3) over exactly the same salt, key and info: only the hash
    /// changes. The key id stays the HKDF-SHA256 one: one key, one id, whatever the PRF.
    pub fn prf_with(&self, kind: Kind, canon_version: u16, id: PrfId) -> Prf {
        let info = format!("pi_match/v1/{}/{}", kind.name(), canon_version);
        let mut sub = Zeroizing::new([0u8; 32]);
        match id {
            PrfId::HmacSha256 => hkdf(&self.secret[..])
                .expand(info.as_bytes(), &mut sub[..])
                .expect("32 bytes is a valid HKDF-SHA256 output length"),
            PrfId::HmacSm3 => hkdf::SimpleHkdf::<sm3::Sm3>::new(Some(HKDF_SALT), &self.secret[..])
                .expand(info.as_bytes(), &mut sub[..])
                .expect("32 bytes is a valid HKDF-SM3 output length"),
        }
        Prf::new(id, &sub)
    }

    /// Text form written to key files: `pi_match-key-v1:<64 hex digits>\n`.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(KEY_FILE_PREFIX.len() + 65));
        s.push_str(KEY_FILE_PREFIX);
        for b in self.secret.iter() {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        s.push('\n');
        s
    }

    /// Parse a key file's text. Errors never quote the text (it may be a key).
    pub fn from_file_text(text: &str) -> Result<Key> {
        let body = text.trim().strip_prefix(KEY_FILE_PREFIX).ok_or_else(|| {
            Error::Invalid(format!(
                "not a pi_match key file: it must start with '{KEY_FILE_PREFIX}'"
            ))
        })?;
        if body.len() != 2 * KEY_LEN || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "damaged pi_match key file: expected {} hex digits after '{KEY_FILE_PREFIX}'",
                2 * KEY_LEN
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        for (i, b) in bytes.iter_mut().enumerate() {
            // Both digits were checked above.
            *b = u8::from_str_radix(&body[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        Key::from_bytes(&bytes[..])
    }
}

fn hkdf(secret: &[u8]) -> Hkdf<Sha256> {
    Hkdf::<Sha256>::new(Some(HKDF_SALT), secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_round_trip_and_debug_hides_secret() {
        let k = Key::from_bytes(&[7u8; 32]).unwrap();
        let text = k.to_file_text();
        let k2 = Key::from_file_text(&text).unwrap();
        assert_eq!(k.id(), k2.id());
        assert_eq!(k.expose_secret(), k2.expose_secret());
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("0707"), "{dbg}");
        assert!(dbg.contains(&k.id_hex()));
    }

    #[test]
    fn key_id_is_not_a_plain_hash() {
        use sha2::Digest;
        let k = Key::from_bytes(&[1u8; 32]).unwrap();
        let plain = sha2::Sha256::digest([1u8; 32]);
        assert_ne!(&plain[..8], &k.id()[..]);
    }

    #[test]
    fn bad_key_text_is_rejected_without_echo() {
        for t in ["", "pi_match-key-v1:abc", "hello", "pi_match-key-v1:zz"] {
            let e = Key::from_file_text(t).unwrap_err().to_string();
            assert!(!e.contains("abc") && !e.contains("zz"), "{e}");
        }
        assert!(Key::from_bytes(&[0u8; 31]).is_err());
    }

    #[test]
    fn prf_is_hmac_sha256_for_every_length() {
        use hmac::{Hmac, KeyInit, Mac};
        let k = Key::from_bytes(&[9u8; 32]).unwrap();
        let info = "pi_match/v1/raw/1";
        let mut sub = [0u8; 32];
        hkdf(&k.secret[..])
            .expand(info.as_bytes(), &mut sub)
            .unwrap();
        let prf = k.prf(Kind::Raw);
        for len in 0..300usize {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&sub).unwrap();
            mac.update(&msg);
            let want: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(prf.tag(&msg), want, "length {len}");
            let other: Vec<u8> = msg.iter().rev().copied().collect();
            assert_eq!(
                prf.tag_x2(&msg, &other),
                (want, prf.tag(&other)),
                "x2 length {len}"
            );
        }
    }

    #[test]
    fn tags_in_groups_are_the_tags_one_by_one() {
        // Every count a task's tail leaves (1..=40: short groups, full ones, the pairs after),
        // messages of every length up to two blocks: the sixteen-lane path where the CPU has
        // AVX-512, the pairs' path for what it leaves or refuses (a message of 56+ bytes).
        let k = Key::from_bytes(&[3u8; 32]).unwrap();
        for prf in [
            k.prf(Kind::Raw),
            k.prf_with(Kind::Raw, Kind::Raw.canon_version(), PrfId::HmacSm3),
        ] {
            let msgs: Vec<Vec<u8>> = (0..130usize)
                .map(|i| (0..i % 71).map(|j| (i * 31 + j * 7) as u8).collect())
                .collect();
            for count in 1..=40 {
                for start in [0, 3, 50, 90] {
                    let group: Vec<&[u8]> = msgs[start..start + count]
                        .iter()
                        .map(Vec::as_slice)
                        .collect();
                    let mut out = vec![[0u8; 32]; count];
                    prf.tag_many(&group, &mut out);
                    for (m, t) in group.iter().zip(&out) {
                        assert_eq!(*t, prf.tag(m), "{:?}: {count} from {start}", prf.id());
                    }
                }
            }
        }
    }

    #[test]
    fn derived_keys_differ_per_operation_and_are_stable() {
        let m = Key::from_bytes(&[5u8; 32]).unwrap();
        let a = m.derive("op-2026-01").unwrap();
        assert_eq!(a.id(), m.derive("op-2026-01").unwrap().id());
        assert_ne!(a.id(), m.derive("op-2026-02").unwrap().id());
        assert_ne!(a.id(), m.id());
        assert!(m.derive("").is_err());
    }

    #[test]
    fn subkeys_differ_by_kind() {
        let k = Key::from_bytes(&[3u8; 32]).unwrap();
        let a = k.prf(Kind::CnRic).tag(b"x");
        let b = k.prf(Kind::Raw).tag(b"x");
        assert_ne!(a, b);
    }
}
