//! The published canonicaliser vectors (tests/data/canon_vectors.json), also run by pytest.

use pi_match::core::canon::{canonicalize_version, Canon, Kind};

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
        let want = match (v["canonical"].as_str(), v["reason"].as_str()) {
            (Some(c), None) => Ok(c.to_string()),
            (None, Some(r)) => Err(r.to_string()),
            _ => panic!("vector must have exactly one of canonical/reason: {v}"),
        };
        for version in v["versions"].as_array().expect("versions") {
            let version = version.as_u64().expect("a version number") as u16;
            let Ok(canon) = Canon::new(kind, Some(version)) else {
                continue; // a kind without this version
            };
            let got = canonicalize_version(canon, input).map_err(|r| r.name().to_string());
            if got != want {
                failures.push(format!(
                    "{} v{version} {input:?}: want {want:?}, got {got:?}",
                    kind.name()
                ));
            }
            // Canonical forms are fixed points.
            if let Ok(c) = &want {
                let again = canonicalize_version(canon, c);
                assert_eq!(again.as_ref(), Ok(c), "not idempotent: {c}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
