//! A party's secret for one keyless operation: the operation id, the parties in their agreed
//! order, this party's name and its scalar. Kept only in its own file (text, mode 0600,
//! never overwritten) so an exchange over days can resume; never in a message, an error or
//! a debug print.

use curve25519_dalek::scalar::Scalar;
use zeroize::{Zeroize, Zeroizing};

use super::group::{random_scalar, Blinder};
use crate::core::error::{Error, Result};

/// The first line of a secret file.
pub const SECRET_HEADER: &str = "pi_match-psi-secret-v1";
/// At most this many parties in one operation (the message's bit mask of who has blinded).
pub const MAX_PARTIES: usize = 64;
const MAX_NAME: usize = 64;
const MAX_OPERATION: usize = 128;

pub struct Secret {
    pub operation: String,
    pub parties: Vec<String>,
    pub party: String,
    scalar: Scalar,
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.scalar.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret(operation={:?}, party={:?}, parties={:?})",
            self.operation, self.party, self.parties
        )
    }
}

/// An operation id: 1–128 bytes of printable text without line breaks.
pub fn check_operation(op: &str) -> Result<()> {
    if op.is_empty() || op.len() > MAX_OPERATION || op.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "operation id {op:?}: 1 to {MAX_OPERATION} bytes of text without control characters"
        )));
    }
    Ok(())
}

/// The parties of an operation: 2–64 distinct names of 1–64 bytes, no commas or control
/// characters, no spaces at either end.
pub fn check_parties(parties: &[String]) -> Result<()> {
    if parties.len() < 2 || parties.len() > MAX_PARTIES {
        return Err(Error::Invalid(format!(
            "an operation has 2 to {MAX_PARTIES} parties, got {}",
            parties.len()
        )));
    }
    for (i, p) in parties.iter().enumerate() {
        if p.is_empty()
            || p.len() > MAX_NAME
            || p.trim() != p
            || p.contains(',')
            || p.chars().any(char::is_control)
        {
            return Err(Error::Invalid(format!(
                "party name {p:?}: 1 to {MAX_NAME} bytes, no commas, control characters or \
                 spaces at the ends"
            )));
        }
        if parties[..i].contains(p) {
            return Err(Error::Invalid(format!("party {p:?} is named twice")));
        }
    }
    Ok(())
}

impl Secret {
    /// A new secret for `party`, one of `parties`, in `operation`.
    pub fn generate(operation: &str, party: &str, parties: &[String]) -> Result<Secret> {
        Self::with_scalar(operation, party, parties, random_scalar()?)
    }

    fn with_scalar(operation: &str, party: &str, parties: &[String], k: Scalar) -> Result<Secret> {
        check_operation(operation)?;
        check_parties(parties)?;
        if !parties.iter().any(|p| p == party) {
            return Err(Error::Invalid(format!(
                "party {party:?} is not one of the parties ({})",
                parties.join(", ")
            )));
        }
        Ok(Secret {
            operation: operation.into(),
            parties: parties.to_vec(),
            party: party.into(),
            scalar: k,
        })
    }

    /// This party's position in the agreed order (its bit in a message's mask).
    pub fn index(&self) -> usize {
        self.parties
            .iter()
            .position(|p| p == &self.party)
            .expect("checked at creation")
    }

    pub fn blinder(&self) -> Blinder {
        Blinder::new(&self.scalar)
    }

    /// The file's text (zeroised when dropped).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let hex: Zeroizing<String> = Zeroizing::new(
            self.scalar
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        Zeroizing::new(format!(
            "{SECRET_HEADER}\noperation: {}\nparty: {}\nparties: {}\nscalar: {}\n",
            self.operation,
            self.party,
            self.parties.join(","),
            hex.as_str()
        ))
    }

    /// A secret from its file's text; the error never quotes the scalar.
    pub fn from_file_text(text: &str) -> Result<Secret> {
        let bad = |m: &str| Error::Invalid(format!("not a pi_match keyless secret file: {m}"));
        let mut lines = text.lines();
        if lines.next() != Some(SECRET_HEADER) {
            return Err(bad(&format!("the first line is not {SECRET_HEADER}")));
        }
        let mut field = |name: &str| -> Result<String> {
            let line = lines
                .next()
                .ok_or_else(|| bad(&format!("no {name} line")))?;
            line.strip_prefix(&format!("{name}: "))
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("expected the {name} line")))
        };
        let operation = field("operation")?;
        let party = field("party")?;
        let parties: Vec<String> = field("parties")?.split(',').map(str::to_string).collect();
        let hex = Zeroizing::new(field("scalar")?);
        if lines.next().is_some() {
            return Err(bad("text after the scalar line"));
        }
        let digits = hex.as_bytes();
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad("the scalar is not 64 hex digits"));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad("scalar"))?;
        }
        let k: Option<Scalar> = Scalar::from_canonical_bytes(*bytes).into();
        let k = k
            .filter(|k| *k != Scalar::ZERO)
            .ok_or_else(|| bad("the scalar is not a canonical nonzero ristretto255 scalar"))?;
        Self::with_scalar(&operation, &party, &parties, k)
    }

    #[cfg(test)]
    pub(crate) fn for_tests(operation: &str, party: &str, parties: &[&str], k: u64) -> Secret {
        let parties: Vec<String> = parties.iter().map(|s| s.to_string()).collect();
        Self::with_scalar(operation, party, &parties, Scalar::from(k)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_round_trips_and_debug_hides_the_scalar() {
        let parties = vec!["杭州".to_string(), "B".into()];
        let s = Secret::generate("op 2026-17", "杭州", &parties).unwrap();
        let text = s.to_file_text();
        let t = Secret::from_file_text(&text).unwrap();
        assert_eq!(
            (t.operation.as_str(), t.party.as_str(), t.index()),
            ("op 2026-17", "杭州", 0)
        );
        assert_eq!(t.scalar, s.scalar);
        let hex: String = s
            .scalar
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(text.contains(&hex) && !format!("{s:?}").contains(&hex));
        for bad in [
            text.replace("pi_match-psi-secret-v1", "x"),
            text.replace("scalar: ", "scalar: 0"),
            text.replace(&hex, &"f".repeat(64)), // not canonical
            text.to_string() + "more\n",
        ] {
            let e = Secret::from_file_text(&bad).unwrap_err().to_string();
            assert!(!e.contains(&hex), "{e}");
        }
        for (op, party, ps) in [
            ("", "A", vec!["A", "B"]),
            ("x", "C", vec!["A", "B"]),
            ("x", "A", vec!["A"]),
            ("x", "A", vec!["A", "A"]),
            ("x", "A", vec!["A", "B,C"]),
        ] {
            let ps: Vec<String> = ps.into_iter().map(String::from).collect();
            assert!(
                Secret::generate(op, party, &ps).is_err(),
                "{op} {party} {ps:?}"
            );
        }
    }
}
