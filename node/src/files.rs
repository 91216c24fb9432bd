//! The files of a node's data directory besides the store: their names,
//! the directory itself (mode 0700), and the device key file, written
//! privately and replaced atomically. Every file the node writes here is
//! mode 0600 (the store's own files are `crate::store`'s, also 0600).
//!
//! Never does: open the store, or print a key.

use std::io::Write;
use std::path::Path;

use sentinel_schema::SigningKey;

use crate::error::NodeError;

/// File names inside a node's data directory.
pub const DB_FILE: &str = "node.sqlite";
pub const KEY_FILE: &str = "node.key";
pub const MEDIA_DIR: &str = "media";
/// The deployment CA's certificate and this device's, after `enroll`.
pub const CA_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "node.crt";

/// Creates the data directory (and any missing parent) with mode 0700 on
/// Unix, and closes up one that exists already: the store, the device key
/// and the media are nobody else's to read.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), NodeError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(NodeError::io(dir))?;
    #[cfg(unix)]
    restrict(dir, 0o700).map_err(NodeError::io(dir))?;
    Ok(())
}

/// Takes every permission bit beyond `mode` away from `path` (Unix).
#[cfg(unix)]
pub(crate) fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let held = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if held & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(held & mode))?;
    }
    Ok(())
}

/// Creates the key file (mode 0600 on Unix), refusing one that exists.
pub(crate) fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), NodeError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(NodeError::io(path))?;
    f.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(NodeError::io(path))
}

/// Writes a file (mode 0600 on Unix) next to its final name, syncs it,
/// then renames it into place, so a crash leaves either the old or the new
/// file.
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> Result<(), NodeError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(NodeError::io(&tmp))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(NodeError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(NodeError::io(path))
}

/// Reads the device key file (refusing one that others can read).
pub(crate) fn read_key(path: &Path) -> Result<SigningKey, NodeError> {
    let bad = |reason: &str| NodeError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(NodeError::io(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(bad("readable by others; run `chmod 600` on it"));
        }
    }
    let text = std::fs::read_to_string(path).map_err(NodeError::io(path))?;
    let bytes = hex::decode(text.trim()).map_err(|_| bad("not a hex-encoded key"))?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| bad("not a 32-byte key"))?;
    Ok(SigningKey::from_bytes(&seed))
}
