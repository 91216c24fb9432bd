//! Private keys at rest: ed25519 keys as PKCS#8 `ENCRYPTED PRIVATE KEY`
//! PEM (PBES2: scrypt, then AES-256-CBC), in files created with mode 0600
//! that are never overwritten.
//!
//! Unencrypted keys are refused on reading: every key this crate stores
//! is behind a password, and a plain key on disk is a mistake to report,
//! not a format to support.

use std::fmt;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use pkcs8::pkcs5::{pbes2, scrypt, EncryptionScheme};
use pkcs8::{EncryptedPrivateKeyInfo, LineEnding, ObjectIdentifier, PrivateKeyInfo};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::CertsError;
use crate::files::{pem_blocks, read_pem_file, write_new};

/// PEM label of an encrypted PKCS#8 key (RFC 7468).
pub(crate) const ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED PRIVATE KEY";
/// PEM label of an unencrypted PKCS#8 key, recognised only to refuse it.
const PLAIN_KEY_LABEL: &str = "PRIVATE KEY";
/// `id-Ed25519` (RFC 8410).
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// scrypt cost for new keys: N = 2^17, r = 8, p = 1, i.e. 128 MiB and a
/// fraction of a second per try, the scrypt crate's recommendation. Keys
/// are decrypted once per CLI run or enrollment, so the cost is paid
/// rarely by us and on every guess by an attacker.
const SCRYPT_LOG_N: u8 = 17;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// Most memory a key file may make scrypt use, counted as 128·r·N·p bytes
/// (as if the p lanes ran in parallel): a crafted file could otherwise ask
/// for terabytes before the password is tried.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Most PBKDF2 iterations a key file may ask for (seconds of CPU, not
/// hours).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// A password protecting a key. Never empty; wiped from memory on drop;
/// its `Debug` output does not show it.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password. There is no default password: an empty one is
    /// refused.
    pub fn new(password: impl Into<String>) -> Result<Password, CertsError> {
        let password = Zeroizing::new(password.into());
        if password.is_empty() {
            return Err(CertsError::EmptyPassword);
        }
        Ok(Password(password))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Encrypts `key` with `password` as an `ENCRYPTED PRIVATE KEY` PEM block.
pub(crate) fn encrypt_key_pem(
    key: &SigningKey,
    password: &Password,
) -> Result<Zeroizing<String>, CertsError> {
    let encoding = |e: pkcs8::Error| CertsError::Encoding(format!("PKCS#8: {e}"));
    let plain = key.to_pkcs8_der().map_err(encoding)?;
    let info = PrivateKeyInfo::try_from(plain.as_bytes()).map_err(encoding)?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let cost = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32)
        .map_err(|e| CertsError::Encoding(format!("scrypt parameters: {e}")))?;
    let params = pbes2::Parameters::scrypt_aes256cbc(cost, &salt, &iv)
        .map_err(|e| CertsError::Encoding(format!("PBES2 parameters: {e}")))?;
    let sealed = info
        .encrypt_with_params(params, password.as_bytes())
        .map_err(encoding)?;
    sealed
        .to_pem(ENCRYPTED_KEY_LABEL, LineEnding::LF)
        .map_err(|e| CertsError::Encoding(format!("PEM: {e}")))
}

/// Refuses schemes we cannot decrypt and work factors that would exhaust
/// the machine, before any work is done.
fn check_scheme(path: &Path, scheme: &EncryptionScheme<'_>) -> Result<(), CertsError> {
    let unsupported = |reason| CertsError::UnsupportedKeyEncryption {
        path: path.to_path_buf(),
        reason,
    };
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Err(unsupported("PBES1 is not supported; re-encrypt with PBES2"));
    };
    if let Some(s) = params.kdf.scrypt() {
        let memory = 128u64
            .saturating_mul(u64::from(s.block_size))
            .saturating_mul(s.cost_parameter)
            .saturating_mul(u64::from(s.parallelization).max(1));
        if memory > MAX_SCRYPT_MEMORY {
            return Err(unsupported("scrypt parameters ask for more than 1 GiB"));
        }
    } else if let Some(p) = params.kdf.pbkdf2() {
        if p.iteration_count > MAX_PBKDF2_ITERATIONS {
            return Err(unsupported("too many PBKDF2 iterations"));
        }
    }
    Ok(())
}

/// Decrypts a DER `EncryptedPrivateKeyInfo` holding an ed25519 key.
/// `path` names where it came from, for error messages.
pub(crate) fn decrypt_key_der(
    path: &Path,
    der: &[u8],
    password: &Password,
) -> Result<SigningKey, CertsError> {
    let not_a_key = |reason| CertsError::NotAKey {
        path: path.to_path_buf(),
        reason,
    };
    let info = EncryptedPrivateKeyInfo::try_from(der)
        .map_err(|_| not_a_key("not a PKCS#8 encrypted private key"))?;
    check_scheme(path, &info.encryption_algorithm)?;
    let plain = info.decrypt(password.as_bytes()).map_err(|e| match e {
        // A wrong key shows as bad CBC padding, or (rarely) as padding that
        // happens to be valid around bytes that are not DER. pkcs5 0.7
        // reports bad padding while decrypting as `EncryptFailed`.
        pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        )
        | pkcs8::Error::Asn1(_) => CertsError::WrongPassword,
        _ => CertsError::UnsupportedKeyEncryption {
            path: path.to_path_buf(),
            reason: "unsupported cipher or key derivation",
        },
    })?;
    // Decrypted bytes that are not a PKCS#8 structure mean the password was
    // wrong: we only ever encrypt PKCS#8.
    let plain_info =
        PrivateKeyInfo::try_from(plain.as_bytes()).map_err(|_| CertsError::WrongPassword)?;
    if plain_info.algorithm.oid != ED25519_OID {
        return Err(not_a_key("the key is not an ed25519 key"));
    }
    SigningKey::from_pkcs8_der(plain.as_bytes()).map_err(|_| not_a_key("malformed ed25519 key"))
}

/// Decrypts the key in a PEM text holding exactly one key block.
fn decrypt_key_pem(path: &Path, text: &str, password: &Password) -> Result<SigningKey, CertsError> {
    let blocks = pem_blocks(path, text)?;
    let [block] = blocks.as_slice() else {
        return Err(CertsError::NotAKey {
            path: path.to_path_buf(),
            reason: "expected exactly one PEM block",
        });
    };
    match block.label.as_str() {
        ENCRYPTED_KEY_LABEL => decrypt_key_der(path, &block.der, password),
        PLAIN_KEY_LABEL => Err(CertsError::KeyNotEncrypted {
            path: path.to_path_buf(),
        }),
        _ => Err(CertsError::NotAKey {
            path: path.to_path_buf(),
            reason: "the PEM block is not an ENCRYPTED PRIVATE KEY",
        }),
    }
}

/// Writes `key`, encrypted with `password`, to a new file (mode 0600).
/// Fails if the file exists.
pub fn write_key_file(
    path: &Path,
    key: &SigningKey,
    password: &Password,
) -> Result<(), CertsError> {
    let pem = encrypt_key_pem(key, password)?;
    write_new(path, pem.as_bytes())
}

/// Reads and decrypts a key written by [`write_key_file`].
pub fn read_key_file(path: &Path, password: &Password) -> Result<SigningKey, CertsError> {
    let text = Zeroizing::new(read_pem_file(path)?);
    decrypt_key_pem(path, &text, password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::pem_encode;

    #[test]
    fn key_file_round_trip_and_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let password = Password::new("correct horse").unwrap();
        write_key_file(&path, &key, &password).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let back = read_key_file(&path, &password).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        let wrong = Password::new("battery staple").unwrap();
        assert!(matches!(
            read_key_file(&path, &wrong),
            Err(CertsError::WrongPassword)
        ));
        assert!(matches!(
            write_key_file(&path, &key, &password),
            Err(CertsError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn empty_password_is_refused_and_debug_hides_it() {
        assert!(matches!(Password::new(""), Err(CertsError::EmptyPassword)));
        let p = Password::new("secret").unwrap();
        assert_eq!(format!("{p:?}"), "Password(..)");
    }

    #[test]
    fn plain_keys_and_other_blocks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let password = Password::new("pw").unwrap();
        let plain = dir.path().join("plain.pem");
        let der = key.to_pkcs8_der().unwrap();
        std::fs::write(&plain, pem_encode("PRIVATE KEY", der.as_bytes()).unwrap()).unwrap();
        assert!(matches!(
            read_key_file(&plain, &password),
            Err(CertsError::KeyNotEncrypted { .. })
        ));
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, pem_encode("CERTIFICATE", b"\x30\x00").unwrap()).unwrap();
        assert!(matches!(
            read_key_file(&cert, &password),
            Err(CertsError::NotAKey { .. })
        ));
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, pem_encode(ENCRYPTED_KEY_LABEL, b"\x30\x00").unwrap()).unwrap();
        assert!(matches!(
            read_key_file(&junk, &password),
            Err(CertsError::NotAKey { .. })
        ));
    }
}
