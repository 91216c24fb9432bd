//! The webhooks' setting of the hub's configuration: how many attempts a
//! delivery gets before it goes to dead-letter (`crate::webhooks`), a
//! TOML key with an environment override, as the table in `super` lists.

use super::{invalid, parse_num, ConfigError};

pub const WEBHOOK_MAX_ATTEMPTS_ENV: &str = "SENTINEL_WEBHOOK_MAX_ATTEMPTS";

/// Attempts before dead-letter, unless configured.
pub const DEFAULT_WEBHOOK_MAX_ATTEMPTS: u32 = 12;

/// `webhook_max_attempts`: the environment's, else the file's, else the
/// default; 1 to 100.
pub(super) fn max_attempts(
    file: Option<u32>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<u32, ConfigError> {
    let n = match env(WEBHOOK_MAX_ATTEMPTS_ENV) {
        Some(v) => parse_num::<u32>(WEBHOOK_MAX_ATTEMPTS_ENV, &v)?,
        None => file.unwrap_or(DEFAULT_WEBHOOK_MAX_ATTEMPTS),
    };
    if !(1..=100).contains(&n) {
        return Err(invalid(
            WEBHOOK_MAX_ATTEMPTS_ENV,
            &n.to_string(),
            "must be 1 to 100",
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn attempts_default_come_from_file_or_environment_and_are_bounded() {
        let none = |_: &str| None;
        assert_eq!(max_attempts(None, &none).unwrap(), 12);
        assert_eq!(max_attempts(Some(3), &none).unwrap(), 3);
        let env = |name: &str| (name == WEBHOOK_MAX_ATTEMPTS_ENV).then(|| "5".to_owned());
        assert_eq!(max_attempts(Some(3), &env).unwrap(), 5);
        let zero = max_attempts(Some(0), &none).unwrap_err().to_string();
        assert!(
            zero.contains("webhook") || zero.contains("WEBHOOK"),
            "{zero}"
        );
        let bad = |name: &str| (name == WEBHOOK_MAX_ATTEMPTS_ENV).then(|| "many".to_owned());
        let e = max_attempts(None, &bad).unwrap_err().to_string();
        assert!(e.contains(WEBHOOK_MAX_ATTEMPTS_ENV), "{e}");
    }
}
