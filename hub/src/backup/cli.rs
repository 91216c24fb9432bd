//! `sentinel-hub backup --out DIR` and `sentinel-hub restore --from DIR`:
//! the commands, flattened into the binary's own, with the configuration
//! `serve` reads (`DATABASE_URL`, `SENTINEL_MEDIA_DIR`; see
//! `crate::config`). Each prints one summary line (and warnings) on
//! success; on failure a message on standard error and exit code 2 for
//! bad input, 1 otherwise ([`super::BackupError::exit_code`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sentinel_sync::blobs::MediaStore;

use super::BackupError;
use crate::config::{HubConfig, MEDIA_DIR_ENV};
use crate::store::PgStore;

/// Connections a backup uses: the snapshot's, and one spare.
const BACKUP_CONNECTIONS: usize = 2;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Back up the database and the media blobs it names into a new or
    /// empty folder, while the hub serves.
    Backup {
        /// The folder to write (created if missing; must be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Restore a backup into an empty database (DATABASE_URL) and the
    /// media folder; then start `serve`.
    Restore {
        /// The backup folder `backup --out` wrote.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
}

/// Runs `command`, printing its summary or its error.
pub fn run(config_file: Option<PathBuf>, command: Command) -> ExitCode {
    match execute(config_file.as_deref(), command) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sentinel-hub: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn execute(config_file: Option<&Path>, command: Command) -> Result<String, BackupError> {
    let config = HubConfig::load(config_file).map_err(|e| BackupError::Config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BackupError::Media(format!("starting the runtime: {e}")))?;
    runtime.block_on(async move {
        let media = MediaStore::open(&config.media_dir).map_err(|e| {
            BackupError::Config(format!(
                "{MEDIA_DIR_ENV} = {}: cannot open the media folder: {e}",
                config.media_dir.display()
            ))
        })?;
        let now = crate::now_ms();
        match command {
            Command::Backup { out } => {
                let store = PgStore::connect(config.database.clone(), BACKUP_CONNECTIONS)?;
                let summary = super::backup(&store, &config.database, &media, &out, now).await?;
                Ok(summary.to_string())
            }
            Command::Restore { from } => {
                let summary = super::restore(&config.database, &media, &from, now).await?;
                Ok(summary.to_string())
            }
        }
    })
}
