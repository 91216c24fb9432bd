//! File helpers shared by key files, CA directories and bundles: bounded
//! reads, writes that never overwrite, owner-only permissions, and
//! splitting a text file into PEM blocks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use pkcs8::der::pem;

use crate::error::CertsError;

/// Largest PEM file we read: certificates, keys and bundles are a few KiB;
/// anything bigger is not ours and is refused before it is read.
pub(crate) const MAX_PEM_FILE_BYTES: u64 = 64 * 1024;

pub(crate) fn io_error(path: &Path, source: io::Error) -> CertsError {
    match source.kind() {
        io::ErrorKind::NotFound => CertsError::NotFound {
            path: path.to_path_buf(),
        },
        io::ErrorKind::AlreadyExists => CertsError::AlreadyExists {
            path: path.to_path_buf(),
        },
        _ => CertsError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Reads a whole file, refusing files larger than `limit` bytes without
/// reading them.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, CertsError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    if len > limit {
        return Err(CertsError::FileTooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(len as usize);
    // `take` guards against a file that grows between the check and the read.
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| io_error(path, e))?;
    if out.len() as u64 > limit {
        return Err(CertsError::FileTooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(out)
}

/// Reads a text file of PEM blocks.
pub(crate) fn read_pem_file(path: &Path) -> Result<String, CertsError> {
    let bytes = read_limited(path, MAX_PEM_FILE_BYTES)?;
    String::from_utf8(bytes).map_err(|_| CertsError::Malformed {
        path: path.to_path_buf(),
        reason: "not a text (PEM) file".to_string(),
    })
}

fn new_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    // `create_new` fails if the file exists, atomically: a key, certificate
    // or bundle is never silently replaced.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Owner read/write only, set at creation so the secret is never
        // readable by others, not even for an instant.
        options.mode(0o600);
    }
    options
}

/// Writes a new file with owner-only permissions; fails if it exists.
/// The data is flushed to disk before returning.
pub(crate) fn write_new(path: &Path, contents: &[u8]) -> Result<(), CertsError> {
    let mut file = new_file_options()
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A half-written key or bundle is worse than none.
        let _ = fs::remove_file(path);
        return Err(io_error(path, e));
    }
    Ok(())
}

/// Replaces a file atomically (write a temporary file beside it, then
/// rename), for documents that are meant to be superseded, such as the
/// revocation list.
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> Result<(), CertsError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A temporary file left by a crash is ours to replace.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp, e)),
    }
    write_new(&tmp, contents)?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// One decoded PEM block.
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Splits text into its PEM blocks, in order. Text outside the blocks is
/// ignored (RFC 7468 allows explanatory text); each block is decoded
/// strictly.
pub(crate) fn pem_blocks(path: &Path, text: &str) -> Result<Vec<PemBlock>, CertsError> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    const DASHES: &str = "-----";
    let malformed = |reason: String| CertsError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let end = block
            .find(END)
            .ok_or_else(|| malformed("a PEM block has no END line".to_string()))?;
        let after_end = &block[end + END.len()..];
        let close = after_end
            .find(DASHES)
            .ok_or_else(|| malformed("a PEM END line is not closed".to_string()))?;
        let len = end + END.len() + close + DASHES.len();
        let (label, der) = pem::decode_vec(&block.as_bytes()[..len])
            .map_err(|e| malformed(format!("bad PEM block: {e}")))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
        rest = &block[len..];
    }
    Ok(blocks)
}

/// Encodes DER as one PEM block with LF line endings.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> Result<String, CertsError> {
    pem::encode_string(label, pem::LineEnding::LF, der)
        .map_err(|e| CertsError::Encoding(format!("PEM {label}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_to_overwrite_and_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_new(&path, b"one").unwrap();
        assert!(matches!(
            write_new(&path, b"two"),
            Err(CertsError::AlreadyExists { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        replace_file(&path, b"three").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
    }

    #[test]
    fn read_limited_refuses_big_files_and_names_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![0u8; 100]).unwrap();
        assert!(matches!(
            read_limited(&path, 99),
            Err(CertsError::FileTooLarge { limit: 99, .. })
        ));
        let missing = dir.path().join("missing");
        match read_limited(&missing, 10) {
            Err(CertsError::NotFound { path }) => assert_eq!(path, missing),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn pem_blocks_skip_text_and_keep_order() {
        let text = format!(
            "explanatory text\n{}between\n{}",
            pem_encode("CERTIFICATE", b"abc").unwrap(),
            pem_encode("ENCRYPTED PRIVATE KEY", b"xyz").unwrap()
        );
        let blocks = pem_blocks(Path::new("x"), &text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, b"abc");
        assert_eq!(blocks[1].label, "ENCRYPTED PRIVATE KEY");
        assert_eq!(blocks[1].der, b"xyz");
        assert!(pem_blocks(Path::new("x"), "-----BEGIN X-----\nAAAA\n").is_err());
    }
}
