//! Reading the sensor rules file the configuration names (`rules_file`):
//! bounded in size, parsed and checked before the hub starts.
//!
//! Never does: watch the file, or apply the rules (`crate::sensors` does).

use std::path::Path;

use sentinel_schema::rules::config::{parse_rules_toml, RulesConfig, MAX_RULES_FILE_BYTES};

use super::ConfigError;

/// Reads and checks the sensor rules file at `path`.
pub fn load_rules(path: &Path) -> Result<RulesConfig, ConfigError> {
    let rules_error = |message: String| ConfigError::Rules {
        path: path.to_path_buf(),
        message,
    };
    let text = read_bounded(path, MAX_RULES_FILE_BYTES).map_err(|e| rules_error(e.to_string()))?;
    parse_rules_toml(&text).map_err(|e| rules_error(e.to_string()))
}

/// A text file's first `max + 1` bytes at most: enough for the parser to
/// tell a file over `max`, without reading a huge one whole.
fn read_bounded(path: &Path, max: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max as u64 + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}
