//! Device roles: what kind of identity an author is, and which entry kinds
//! each may write. The role is fixed in the author's certificate.

use std::fmt;
use std::str::FromStr;

use crate::body::BodyKind;

/// The role of a device identity (an author), as its certificate states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceRole {
    /// A regional hub: aggregates nodes, signs checkpoints, acts for admins.
    Hub,
    /// A field node: an officer's laptop or rugged device.
    Node,
    /// A sensor: pushes readings and nothing else.
    Sensor,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device role {0:?} (expected hub, node or sensor)")]
pub struct ParseRoleError(pub String);

impl DeviceRole {
    pub const ALL: [DeviceRole; 3] = [DeviceRole::Hub, DeviceRole::Node, DeviceRole::Sensor];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Hub => "hub",
            DeviceRole::Node => "node",
            DeviceRole::Sensor => "sensor",
        }
    }

    /// Whether an author with this role may write entries of `kind`.
    /// Receivers enforce it before applying; the same table is in
    /// `docs/security.md`.
    pub fn may_write(self, kind: BodyKind) -> bool {
        use BodyKind::*;
        match self {
            DeviceRole::Sensor => matches!(kind, SensorReading),
            DeviceRole::Node => matches!(kind, EventChange | MediaAttached),
            DeviceRole::Hub => matches!(
                kind,
                EventChange | MediaAttached | RoleGrant | Revocation | HubCheckpoint | Redaction
            ),
        }
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceRole {
    type Err = ParseRoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRoleError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_write_only_their_kinds() {
        assert!(DeviceRole::Sensor.may_write(BodyKind::SensorReading));
        assert!(!DeviceRole::Sensor.may_write(BodyKind::EventChange));
        assert!(DeviceRole::Node.may_write(BodyKind::EventChange));
        assert!(!DeviceRole::Node.may_write(BodyKind::HubCheckpoint));
        assert!(!DeviceRole::Node.may_write(BodyKind::RoleGrant));
        assert!(DeviceRole::Hub.may_write(BodyKind::HubCheckpoint));
        assert!(!DeviceRole::Hub.may_write(BodyKind::SensorReading));
        assert!(DeviceRole::Hub.may_write(BodyKind::Redaction));
        assert!(!DeviceRole::Node.may_write(BodyKind::Redaction));
        for r in DeviceRole::ALL {
            assert_eq!(r.as_str().parse::<DeviceRole>(), Ok(r));
        }
        assert!("admin".parse::<DeviceRole>().is_err());
    }
}
