//! The shared secret of a joint operation, its public key id, and the keyed PRF.
//!
//! Derivations (docs/FORMAT.md §3):
//!   PRK        = HKDF-Extract(salt = "pi_match/v1", IKM = 32-byte master key)
//!   key id     = HKDF-Expand(PRK, "pi_match/v1/key-id", 8)
//!   subkey(k)  = HKDF-Expand(PRK, "pi_match/v1/<kind>/<canon version>", 32)
//!   tag(k, v)  = HMAC-SHA256(subkey(k), UTF-8 bytes of canonical v)
//! The key id is a keyed fingerprint: it does not help to guess the key.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::canon::Kind;
use super::error::{Error, Result};

pub const KEY_LEN: usize = 32;
pub const KEY_ID_LEN: usize = 8;
const HKDF_SALT: &[u8] = b"pi_match/v1";
/// First line of a key file; the secret follows as 64 hex digits.
const KEY_FILE_PREFIX: &str = "pi_match-key-v1:";

pub type KeyId = [u8; KEY_ID_LEN];
type HmacSha256 = Hmac<Sha256>;

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

    /// The keyed PRF for one identifier kind under its current canonicaliser version.
    pub fn prf(&self, kind: Kind) -> Prf {
        self.prf_for(kind, kind.canon_version())
    }

    pub fn prf_for(&self, kind: Kind, canon_version: u16) -> Prf {
        let info = format!("pi_match/v1/{}/{}", kind.name(), canon_version);
        let mut sub = Zeroizing::new([0u8; 32]);
        hkdf(&self.secret[..])
            .expand(info.as_bytes(), &mut sub[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mac = <HmacSha256 as KeyInit>::new_from_slice(&sub[..])
            .expect("HMAC accepts keys of any length");
        Prf { mac }
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

/// HMAC-SHA256 under one subkey, with the inner and outer pads hashed once; each tag clones
/// that state instead of re-keying. The state is zeroised on drop (hmac's `zeroize` feature).
#[derive(Clone)]
pub struct Prf {
    mac: HmacSha256,
}

impl Prf {
    #[inline]
    pub fn tag(&self, canonical: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(canonical);
        m.finalize().into_bytes().into()
    }
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
    fn subkeys_differ_by_kind() {
        let k = Key::from_bytes(&[3u8; 32]).unwrap();
        let a = k.prf(Kind::CnRic).tag(b"x");
        let b = k.prf(Kind::Raw).tag(b"x");
        assert_ne!(a, b);
    }
}
