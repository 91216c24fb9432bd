//! Rebuilds the crate when a migration changes: `embed_migrations!` reads
//! the SQL files at compile time, and cargo does not know about them.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
