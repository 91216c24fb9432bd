//! The blob folder's tests, in a temporary directory.

use super::*;

const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";
const WEBP: &[u8] = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00";
/// `ftyp` box of 24 bytes: major `isom`, minor 0x200, brands isom, mp41;
/// then the start of an `mdat` box.
const MP4: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41\x00\x00\x00\x08mdat";

fn store() -> (tempfile::TempDir, MediaStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = MediaStore::open(tmp.path().join("media")).unwrap();
    (tmp, store)
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sniffs_each_type_from_real_headers() {
    assert_eq!(sniff(JPEG).unwrap(), MediaType::Jpeg);
    assert_eq!(sniff(PNG).unwrap(), MediaType::Png);
    assert_eq!(sniff(WEBP).unwrap(), MediaType::Webp);
    assert_eq!(sniff(MP4).unwrap(), MediaType::Mp4);
}

#[test]
fn sniff_refuses_lookalikes() {
    let refused = |bytes: &[u8]| matches!(sniff(bytes), Err(MediaError::UnsupportedType { .. }));
    assert!(refused(b"\xFF\xD8"), "truncated JPEG marker");
    assert!(refused(b"\x89PNG\r\n"), "truncated PNG signature");
    assert!(refused(b"RIFF\x1a\x00\x00\x00WAVEfmt "), "RIFF but audio");
    // ftyp boxes: HEIC photo, box size too small, box larger than the
    // input, size not a whole number of brands, QuickTime-only brands.
    assert!(refused(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1iso8"));
    assert!(refused(b"\x00\x00\x00\x08ftypisom"));
    assert!(refused(b"\x00\x00\x01\x00ftypisom\x00\x00\x02\x00isommp41"));
    assert!(refused(
        b"\x00\x00\x00\x15ftypisom\x00\x00\x02\x00isommp41\x00"
    ));
    assert!(refused(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "));
    match sniff(b"GIF89a\x01\x00\x01\x00") {
        Err(MediaError::UnsupportedType { head }) => assert_eq!(head, "4749463839610100"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn text_renamed_to_jpg_is_refused() {
    let (tmp, store) = store();
    let fake = tmp.path().join("photo.jpg");
    fs::write(&fake, "hello, not a photo").unwrap();
    match store.put_file(&fake) {
        Err(MediaError::UnsupportedType { head }) => assert_eq!(head, hex::encode("hello, n")),
        other => panic!("{other:?}"),
    }
    assert!(files(store.dir()).is_empty());
}

#[test]
fn empty_is_refused() {
    let (tmp, store) = store();
    assert!(matches!(store.put(&[]), Err(MediaError::Empty)));
    let empty = tmp.path().join("empty.png");
    fs::write(&empty, b"").unwrap();
    assert!(matches!(store.put_file(&empty), Err(MediaError::Empty)));
    assert!(matches!(
        store.put_file(tmp.path()),
        Err(MediaError::NotAFile { .. })
    ));
}

#[test]
fn put_stores_under_its_hash_once_and_reads_back() {
    let (tmp, store) = store();
    let first = store.put(PNG).unwrap();
    let expected: [u8; 32] = Sha256::digest(PNG).into();
    assert_eq!(
        first,
        StoredMedia {
            hash: expected,
            mime: MediaType::Png,
            size: PNG.len() as u64
        }
    );

    let file = tmp.path().join("upload.bin");
    fs::write(&file, PNG).unwrap();
    assert_eq!(store.put_file(&file).unwrap(), first);
    assert_eq!(store.put(PNG).unwrap(), first);

    let name = hex::encode(expected);
    assert_eq!(
        files(store.dir()),
        vec![Path::new(&name[..2]).join(&name[2..])],
        "one blob, no temp files"
    );
    assert_eq!(
        store.path(&expected),
        store.dir().join(&name[..2]).join(&name[2..])
    );
    assert!(store.contains(&expected));
    assert_eq!(store.read(&expected).unwrap(), PNG);

    let other = store.put(JPEG).unwrap();
    assert_ne!(other.hash, first.hash);
    assert_eq!(files(store.dir()).len(), 2);
}

#[test]
fn read_detects_a_flipped_byte_and_put_repairs_it() {
    let (_tmp, store) = store();
    let stored = store.put(WEBP).unwrap();
    let path = store.path(&stored.hash);
    let mut bytes = fs::read(&path).unwrap();
    bytes[20] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    assert!(matches!(
        store.read(&stored.hash),
        Err(MediaError::Corrupt { .. })
    ));
    // Storing the same bytes again must not trust the rotten copy.
    assert_eq!(store.put(WEBP).unwrap(), stored);
    assert_eq!(store.read(&stored.hash).unwrap(), WEBP);
}

#[test]
fn missing_blob_is_not_found() {
    let (_tmp, store) = store();
    let hash = [7u8; 32];
    assert!(!store.contains(&hash));
    match store.read(&hash) {
        Err(MediaError::NotFound { hash: h }) => assert_eq!(h, hex::encode(hash)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn too_large_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = MP4.len() as u64;
    let store = MediaStore::open_with_max(tmp.path().join("media"), cap).unwrap();
    assert!(store.put(MP4).is_ok(), "exactly the cap is allowed");

    let mut big = MP4.to_vec();
    big.push(0);
    assert!(
        matches!(store.put(&big), Err(MediaError::TooLarge { size, max }) if size == cap + 1 && max == cap)
    );
    let file = tmp.path().join("big.mp4");
    fs::write(&file, &big).unwrap();
    assert!(matches!(
        store.put_file(&file),
        Err(MediaError::TooLarge { .. })
    ));
}

#[test]
fn put_file_refuses_a_huge_sparse_file() {
    // A sparse file the size of the real cap plus one costs no disk and
    // would cost 64 MiB of memory if it were read.
    let (tmp, store) = store();
    let file = tmp.path().join("huge.mp4");
    File::create(&file)
        .unwrap()
        .set_len(MAX_MEDIA_BYTES + 1)
        .unwrap();
    match store.put_file(&file) {
        Err(MediaError::TooLarge { size, max }) => {
            assert_eq!((size, max), (MAX_MEDIA_BYTES + 1, MAX_MEDIA_BYTES));
        }
        other => panic!("{other:?}"),
    }
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[test]
fn a_download_in_two_parts_becomes_the_blob() {
    let (_tmp, store) = store();
    let h = hash(PNG);
    store.append_partial(&h, 0, &PNG[..10]).unwrap();
    assert_eq!(store.partial_len(&h), 10);
    assert!(!store.contains(&h), "a partial is not a blob");
    assert!(matches!(
        store.append_partial(&h, 5, &PNG[10..]),
        Err(MediaError::PartialOutOfStep {
            len: 10,
            offset: 5,
            ..
        })
    ));
    store.append_partial(&h, 10, &PNG[10..]).unwrap();
    let stored = store.finish_partial(&h, PNG.len() as u64).unwrap();
    assert_eq!(stored.hash, h);
    assert_eq!(store.read(&h).unwrap(), PNG);
    assert_eq!(store.partial_len(&h), 0);
    assert!(!store.partial_path(&h).exists());
}

#[test]
fn a_wrong_download_is_discarded_and_never_visible() {
    let (_tmp, store) = store();
    let h = hash(PNG);
    let mut bad = PNG.to_vec();
    bad[20] ^= 1;
    store.append_partial(&h, 0, &bad).unwrap();
    match store.finish_partial(&h, PNG.len() as u64) {
        Err(MediaError::Corrupt { found, .. }) => assert!(found.starts_with("sha256 ")),
        other => panic!("{other:?}"),
    }
    assert!(!store.contains(&h));
    assert!(!store.partial_path(&h).exists());

    // Right hash, wrong announced size.
    store.append_partial(&h, 0, PNG).unwrap();
    assert!(matches!(
        store.finish_partial(&h, PNG.len() as u64 + 1),
        Err(MediaError::Corrupt { .. })
    ));
    assert!(!store.contains(&h));

    // Right hash and size, but not an accepted type.
    let text = b"hello, not a photo";
    let t = hash(text);
    store.append_partial(&t, 0, text).unwrap();
    assert!(matches!(
        store.finish_partial(&t, text.len() as u64),
        Err(MediaError::UnsupportedType { .. })
    ));
    assert!(!store.contains(&t));
    assert!(!store.partial_path(&t).exists());
}

#[test]
fn a_download_over_the_cap_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = MediaStore::open_with_max(tmp.path().join("media"), 16).unwrap();
    let h = [1u8; 32];
    store.append_partial(&h, 0, &[0; 10]).unwrap();
    assert!(matches!(
        store.append_partial(&h, 10, &[0; 7]),
        Err(MediaError::TooLarge { size: 17, max: 16 })
    ));
}

#[test]
fn remove_erases_the_blob_and_its_partial_download_once() {
    let (_tmp, store) = store();
    let stored = store.put(JPEG).unwrap();
    store.append_partial(&stored.hash, 0, &JPEG[..4]).unwrap();
    store.remove(&stored.hash).unwrap();
    assert!(!store.contains(&stored.hash));
    assert_eq!(store.partial_len(&stored.hash), 0);
    assert!(store.read(&stored.hash).is_err());
    store.remove(&stored.hash).unwrap();
}
