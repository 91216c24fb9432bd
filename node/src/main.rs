//! `sentinel-node`: the field node's command line.
//!
//! Thin: it parses arguments, reads the clock and the key store location,
//! calls the library, and prints (for people by default, JSON with
//! `--json`). Errors print one clear message and exit non-zero.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain of causes on one line.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
