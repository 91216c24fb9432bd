//! Identifiers: authors (ed25519 public keys), entries (SHA-256 of the
//! signed bytes) and events. All print as lowercase hex.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Parse error for hex identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits")]
pub struct ParseIdError {
    pub expected: usize,
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseIdError> {
    let err = ParseIdError { expected: N * 2 };
    if s.len() != N * 2 {
        return Err(err);
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16).ok_or(err.clone())?;
        let lo = (chunk[1] as char).to_digit(16).ok_or(err.clone())?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $n:expr, $short:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            pub const LEN: usize = $n;

            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }

            /// The full lowercase hex form.
            pub fn to_hex(&self) -> String {
                self.to_string()
            }

            /// A short prefix for human output.
            pub fn short(&self) -> String {
                self.to_string()[..$short].to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex::<$n>(s).map($name)
            }
        }
    };
}

hex_id!(
    /// An author: the ed25519 public key of the node, hub or sensor that
    /// signs entries.
    AuthorId,
    32,
    12
);
hex_id!(
    /// An entry's id: SHA-256 of its full signed encoding.
    EntryId,
    32,
    12
);
hex_id!(
    /// An event (incident): 16 bytes chosen at random by its creator.
    EventId,
    16,
    12
);

impl EntryId {
    /// The id of the given signed bytes.
    pub fn of(signed_bytes: &[u8]) -> EntryId {
        EntryId(Sha256::digest(signed_bytes).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = EventId([0xab; 16]);
        assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        assert_eq!(
            "zz".repeat(16).parse::<EventId>(),
            Err(ParseIdError { expected: 32 })
        );
        assert_eq!("ab".parse::<AuthorId>(), Err(ParseIdError { expected: 64 }));
        assert_eq!(format!("{id:?}"), "EventId(abababababab)");
    }

    #[test]
    fn entry_id_is_sha256() {
        assert_eq!(
            EntryId::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
