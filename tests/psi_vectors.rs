//! RFC 9496 test vectors for ristretto255 through the group the keyless mode uses, and the
//! documented hash to the group (docs/PSI.md) pinned by a worked example.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as B;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use pi_match::core::canon::{Canon, Kind};
use pi_match::core::psi::group::{hash_to_group, uniform_bytes};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ristretto255_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn rfc9496_multiples_invalid_encodings_and_element_derivation() {
    let v = vectors();
    for (i, h) in v["multiples"].as_array().unwrap().iter().enumerate() {
        let p = B * Scalar::from(i as u64);
        assert_eq!(hex(p.compress().as_bytes()), h.as_str().unwrap(), "{i}·B");
    }
    for h in v["invalid"].as_array().unwrap() {
        let b: [u8; 32] = unhex(h.as_str().unwrap()).try_into().unwrap();
        assert!(CompressedRistretto(b).decompress().is_none(), "{h}");
    }
    for pair in v["uniform"].as_array().unwrap() {
        let input: [u8; 64] = unhex(pair[0].as_str().unwrap()).try_into().unwrap();
        let p = RistrettoPoint::from_uniform_bytes(&input);
        assert_eq!(hex(p.compress().as_bytes()), pair[1].as_str().unwrap());
    }
}

/// docs/PSI.md's worked example: the SHA-512 input and the point of one mobile number.
#[test]
fn hash_to_group_worked_example() {
    let canon = Canon {
        kind: Kind::CnMobile,
        version: 2,
    };
    let u = uniform_bytes("op-2026-17", canon, b"+8613800138000");
    let p = hash_to_group("op-2026-17", canon, b"+8613800138000");
    assert_eq!(RistrettoPoint::from_uniform_bytes(&u), p);
    let want = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/psi_worked_example.txt"
    ))
    .unwrap();
    let got = format!(
        "uniform {}\npoint {}\n",
        hex(&u),
        hex(p.compress().as_bytes())
    );
    assert_eq!(got, want);
}
