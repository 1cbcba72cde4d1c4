//! The published canonicaliser vectors (tests/data/canon_vectors.json), also run by pytest.

use pi_match::core::canon::{canonicalize, Kind};

#[test]
fn every_vector_holds() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/canon_vectors.json"
    ))
    .expect("vectors file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let vectors = doc["vectors"].as_array().expect("vectors array");
    assert!(vectors.len() >= 60, "only {} vectors", vectors.len());
    let mut failures = Vec::new();
    for v in vectors {
        let kind = Kind::from_name(v["kind"].as_str().unwrap()).expect("known kind");
        let input = v["input"].as_str().unwrap();
        let got = canonicalize(kind, input);
        let want = match (v["canonical"].as_str(), v["reason"].as_str()) {
            (Some(c), None) => Ok(c.to_string()),
            (None, Some(r)) => Err(r.to_string()),
            _ => panic!("vector must have exactly one of canonical/reason: {v}"),
        };
        let got = got.map_err(|r| r.name().to_string());
        if got != want {
            failures.push(format!(
                "{} {input:?}: want {want:?}, got {got:?}",
                kind.name()
            ));
        }
        // Canonical forms are fixed points.
        if let Ok(c) = &want {
            assert_eq!(canonicalize(kind, c).as_ref(), Ok(c), "not idempotent: {c}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
