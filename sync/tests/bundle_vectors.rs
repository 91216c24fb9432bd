//! The audit bundle vector of `docs/protocol.md` part 4, kept in
//! `docs/vectors/bundle.json`: the file is what the code generates today
//! (regenerate with `SENTINEL_REGEN_VECTORS=1 cargo test -p sentinel-sync
//! --test integration bundle_vectors` and review the diff), its hex
//! strings appear in the document, and the bundle read from the file
//! decodes to its parts with a signature that verifies.
//!
//! The vector's certificate is a placeholder (two bytes), so the bundle
//! shows the format, not a deployment: `verify_bundle` would name it.

use ed25519_dalek::{Signature, SigningKey, Verifier};
use sentinel_schema::author_of;
use sentinel_sync::bundle::{signed_message, Bundle, Contents, Run};
use serde_json::{json, Value};

use crate::sensor_vectors;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/bundle.json");
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");

/// The hub's key in the vector: the seed `42 42 … 42`.
const SEED: [u8; 32] = [0x42; 32];
/// The placeholder standing for the hub's DER certificate.
const CERTIFICATE: [u8; 2] = [0x30, 0x00];

fn contents() -> Contents {
    let readings = sensor_vectors::entries();
    Contents {
        created_ms: 1_795_000_120_000,
        from_ms: 1_795_000_000_000,
        to_ms: 1_795_000_100_000,
        area: Some("13.3,52.4,13.5,52.6".into()),
        certificates: vec![CERTIFICATE.to_vec()],
        revocation_lists: vec![],
        revocations: vec![],
        checkpoints: vec![],
        runs: vec![Run {
            author: readings[0].author(),
            first_seq: 1,
            last_seq: 2,
            entries: readings.iter().map(|e| e.as_bytes().to_vec()).collect(),
        }],
    }
}

fn generate() -> Value {
    let key = SigningKey::from_bytes(&SEED);
    let contents = contents();
    let bundle = Bundle::sign(&contents, CERTIFICATE.to_vec(), &key);
    json!({
        "note": "docs/protocol.md part 4: a bundle of the two readings of part 3, signed by a hub",
        "key": {"seed": hex::encode(SEED), "public": author_of(&key).to_hex()},
        "contents_hex": hex::encode(contents.encode()),
        "signed_message_hex": hex::encode(signed_message(&bundle.contents)),
        "signature": hex::encode(bundle.signature),
        "bundle_hex": hex::encode(bundle.encode()),
    })
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn bundle_vector_matches_the_code_and_the_document() {
    let generated = generate();
    if std::env::var_os("SENTINEL_REGEN_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(
        file, generated,
        "docs/vectors/bundle.json is stale: regenerate it (see this file's doc)"
    );
    let doc: String = std::fs::read_to_string(DOC)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for field in [
        "contents_hex",
        "signed_message_hex",
        "signature",
        "bundle_hex",
    ] {
        let h = file[field].as_str().unwrap();
        assert!(doc.contains(h), "docs/protocol.md lacks the {field} {h}");
    }
}

#[test]
fn the_vector_bundle_decodes_and_its_signature_verifies() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let bytes = hex_of(&file["bundle_hex"]);
    let bundle = Bundle::decode(&bytes).unwrap();
    assert_eq!(bundle.contents, hex_of(&file["contents_hex"]));
    assert_eq!(bundle.read_contents().unwrap(), contents());
    assert_eq!(bundle.hub_certificate, CERTIFICATE);
    assert_eq!(bundle.encode(), bytes, "one encoding only");
    let message = signed_message(&bundle.contents);
    assert_eq!(message, hex_of(&file["signed_message_hex"]));
    let key = SigningKey::from_bytes(&hex_of(&file["key"]["seed"]).try_into().unwrap());
    let signature = Signature::from_bytes(&bundle.signature);
    key.verifying_key().verify(&message, &signature).unwrap();

    // Every byte matters: a changed byte anywhere fails to decode or
    // changes what the signature covers.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let b = Bundle::decode(&bad).unwrap();
    assert!(key
        .verifying_key()
        .verify(&message, &Signature::from_bytes(&b.signature))
        .is_err());
    assert!(
        Bundle::decode(&bytes[..bytes.len() - 1]).is_err(),
        "truncated"
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Bundle::decode(&longer).is_err(), "trailing bytes");
    let mut other_magic = bytes.clone();
    other_magic[2] ^= 0x20;
    let e = Bundle::decode(&other_magic).unwrap_err().to_string();
    assert!(e.contains("magic"), "{e}");
}
