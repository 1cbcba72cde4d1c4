//! Whole-core checks: keyed tags end to end, the artefact format round trip and its damage
//! detection, bulk results independent of thread count.

use pi_match::core::bloom::Bloom;
use pi_match::core::bulk::{tag_chunks, Packed};
use pi_match::core::canon::Kind;
use pi_match::core::format::{self, Artefact, Payload, PayloadRef, SectionRef, WriteOptions};
use pi_match::core::key::Key;
use pi_match::core::tagset::{tag64, TagSet};
use pi_match::core::Error;

fn test_key() -> Key {
    let bytes: Vec<u8> = (0u8..32).collect();
    Key::from_bytes(&bytes).unwrap()
}

fn ids(n: usize) -> Vec<String> {
    // Valid ID numbers: one region, a birth year and sequence per item, computed check char.
    (0..n)
        .map(|i| {
            let body = format!("440305{}0307{:03}", 1950 + i / 1000 % 50, i % 1000);
            let c = pi_match::core::canon::ric_check_char(body.as_bytes()) as char;
            format!("{body}{c}")
        })
        .collect()
}

#[test]
fn artefact_round_trip_and_every_bit_flip_is_caught() {
    let key = test_key();
    let prf = key.prf(Kind::CnMobile);
    let mut bloom = Bloom::new(2, 2).unwrap();
    let mut tags = Vec::new();
    for v in ["+8613800138000", "+8613900000000"] {
        let t = prf.tag(v.as_bytes());
        bloom.insert_tag(&t);
        tags.push(tag64(&t));
    }
    let set = TagSet::from_unsorted(tags);
    let sections = [
        SectionRef {
            kind: Kind::CnMobile,
            canon_version: 1,
            prf: pi_match::core::prf::PrfId::HmacSha256,
            items: 2,
            payload: PayloadRef::Bloom(&bloom),
        },
        SectionRef {
            kind: Kind::CnMobile,
            canon_version: 1,
            prf: pi_match::core::prf::PrfId::HmacSha256,
            items: 2,
            payload: PayloadRef::Tags(&set),
        },
    ];
    let bytes = format::to_bytes(
        key.id(),
        &sections,
        &WriteOptions {
            created: 1_700_000_000,
            ..WriteOptions::default()
        },
    )
    .unwrap();
    assert_eq!(bytes.len() % 64, 0);
    let art = Artefact::from_bytes(&bytes).unwrap();
    assert_eq!(&art.key_id, key.id());
    assert_eq!(art.to_bytes().unwrap(), bytes);
    match &art.sections[0].payload {
        Payload::Bloom(b) => assert_eq!(b, &bloom),
        Payload::Tags(_) => panic!("first section is the Bloom filter"),
    }
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            let mut d = bytes.clone();
            d[byte] ^= 1 << bit;
            match Artefact::from_bytes(&d) {
                Err(Error::Format(_)) => {}
                other => panic!("flip at byte {byte} bit {bit} not caught: {other:?}"),
            }
        }
    }
    for len in 0..bytes.len() {
        assert!(
            matches!(Artefact::from_bytes(&bytes[..len]), Err(Error::Format(_))),
            "truncated to {len}"
        );
    }
}

#[test]
fn huge_header_claims_fail_before_allocating() {
    let key = test_key();
    let bloom = Bloom::new(0, 1).unwrap();
    let s = [SectionRef {
        kind: Kind::Raw,
        canon_version: 1,
        prf: pi_match::core::prf::PrfId::HmacSha256,
        items: 0,
        payload: PayloadRef::Bloom(&bloom),
    }];
    let good = format::to_bytes(key.id(), &s, &WriteOptions::default()).unwrap();
    // Claim 2^36 blocks with a matching header checksum: the length check must refuse it.
    let mut d = good.clone();
    d[64 + 4] = 36;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&d[..56]);
    h.update(&d[64..128]);
    d[56..64].copy_from_slice(&h.digest().to_le_bytes());
    let e = Artefact::from_bytes(&d).unwrap_err().to_string();
    assert!(e.contains("Bloom payload"), "{e}");
    // Unknown version is named.
    let mut d = good.clone();
    d[8] = 2;
    let e = Artefact::from_bytes(&d).unwrap_err().to_string();
    assert!(e.contains("version 2"), "{e}");
}

#[test]
fn bulk_tags_do_not_depend_on_threads() {
    let key = test_key();
    let prf = key.prf(Kind::CnRic);
    let values = ids(20_000);
    let collect = || {
        let mut out = Vec::new();
        tag_chunks(Kind::CnRic, &prf, values.as_slice(), |_, c, t| {
            assert!(c.iter().all(|&c| c == 0));
            out.extend_from_slice(t);
        });
        out
    };
    let parallel = collect();
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(collect);
    assert_eq!(parallel, single);
    let mut packed = Packed::default();
    for v in &values {
        packed.push_str(v);
    }
    let mut from_packed = Vec::new();
    tag_chunks(Kind::CnRic, &prf, &packed, |_, _, t| {
        from_packed.extend_from_slice(t)
    });
    assert_eq!(from_packed, parallel);
}

#[test]
fn published_test_key_examples() {
    // The worked examples of docs/FORMAT.md §7; an independent Python reader checks the same
    // numbers from the document's rules (tests/test_format_spec.py).
    let key = test_key();
    assert_eq!(
        key.id_hex(),
        include_str!("data/format_v1/test_key_id.txt").trim()
    );
}

#[test]
fn authenticated_artefacts() {
    use pi_match::core::format::{verify_mac, MacStatus};
    let key = test_key();
    let mut bloom = Bloom::new(3, 2).unwrap();
    bloom.insert_tag(&key.prf(Kind::Email).tag(b"a@b.cn"));
    let s = [SectionRef {
        kind: Kind::Email,
        canon_version: 1,
        prf: pi_match::core::prf::PrfId::HmacSha256,
        items: 1,
        payload: PayloadRef::Bloom(&bloom),
    }];
    let plain = format::to_bytes(
        key.id(),
        &s,
        &WriteOptions {
            created: 7,
            ..WriteOptions::default()
        },
    )
    .unwrap();
    let signed = format::to_bytes(
        key.id(),
        &s,
        &WriteOptions {
            created: 7,
            mac_key: Some(&key.mac_key()),
            ..WriteOptions::default()
        },
    )
    .unwrap();
    assert_eq!(signed.len(), plain.len() + 64);
    assert_eq!(
        verify_mac(&plain, &key).unwrap(),
        MacStatus::NotAuthenticated
    );
    assert_eq!(verify_mac(&signed, &key).unwrap(), MacStatus::Valid);
    assert!(Artefact::from_bytes(&signed).is_ok());
    // Without the key, every single-bit change is still caught by the checksums.
    for byte in 0..signed.len() {
        let mut d = signed.clone();
        d[byte] ^= 0x10;
        assert!(
            matches!(Artefact::from_bytes(&d), Err(Error::Format(_))),
            "byte {byte}"
        );
    }
    // A forger without the key who alters a payload and repairs every checksum: the MAC fails.
    let mut forged = signed.clone();
    forged[128] ^= 1;
    let sum = xxhash_rust::xxh3::xxh3_64(&forged[128..128 + 256]);
    forged[64 + 32..64 + 40].copy_from_slice(&sum.to_le_bytes());
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&forged[..56]);
    h.update(&forged[64..128]);
    let hs = h.digest();
    forged[56..64].copy_from_slice(&hs.to_le_bytes());
    assert!(
        Artefact::from_bytes(&forged).is_ok(),
        "the forgery passes the checksums"
    );
    assert_eq!(verify_mac(&forged, &key).unwrap(), MacStatus::Invalid);
    let other = Key::from_bytes(&[9u8; 32]).unwrap();
    assert!(matches!(
        verify_mac(&signed, &other),
        Err(Error::KeyMismatch { .. })
    ));
}

#[test]
fn a_large_compressed_tag_set_is_read_in_place_from_the_mapped_file() {
    // 4 M tags: a 21 MiB file (5.5 bytes a tag), above the memory-mapping threshold.
    let tags: Vec<u64> = (0..4_000_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 3))
        .collect();
    let set = TagSet::from_unsorted(tags);
    let sections = [SectionRef {
        kind: Kind::Email,
        canon_version: 2,
        prf: pi_match::core::prf::PrfId::HmacSha256,
        items: set.len() as u64,
        payload: PayloadRef::Tags(&set),
    }];
    let dir = std::env::temp_dir().join(format!("pi_match_ef_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.pmi");
    let (_, sha) =
        format::save(&path, test_key().id(), &sections, &WriteOptions::default()).unwrap();
    // Its payload (megabytes) hashed beside its write: the SHA-256 handed back is the file's.
    let on_disk: [u8; 32] = sha2::Digest::finalize(
        <sha2::Sha256 as sha2::Digest>::new_with_prefix(std::fs::read(&path).unwrap()),
    )
    .into();
    assert_eq!(sha, on_disk);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len >= format::MMAP_THRESHOLD && len < 6 * set.len() as u64, // 5.5 bytes a tag
        "{len}"
    );
    let art = Artefact::open(&path, &format::ReadOptions::default()).unwrap();
    let Payload::Tags(read) = &art.sections[0].payload else {
        panic!("a tag set")
    };
    let packed = read.packed().expect("read compressed");
    assert!(packed.is_mapped() && !read.is_decoded());
    assert!(set.tags().iter().step_by(997).all(|&t| read.contains(t)));
    assert!(!read.contains(set.tags()[0].wrapping_add(1)) || set.contains(set.tags()[0] + 1));
    assert!(!read.is_decoded(), "membership is answered in place");
    // Written back as it was read: the same bytes, straight from the map.
    let again = art.to_bytes().unwrap();
    assert_eq!(&again[64..], &std::fs::read(&path).unwrap()[64..]);
    assert_eq!(read, &set);
    std::fs::remove_dir_all(&dir).unwrap();
}
