//! SQL functions the node registers on its connection.
//!
//! Never does: hold a statement (the store's SQL is under `store/`).

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

/// The spatial index's distance function, so that SQL and the R-tree
/// measure alike.
pub use crate::spatial::geodesy::distance_m;

/// Registers `sentinel_distance_m(lon1, lat1, lon2, lat2)`.
pub fn register(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.create_scalar_function(
        "sentinel_distance_m",
        4,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| {
            let lon1: f64 = ctx.get(0)?;
            let lat1: f64 = ctx.get(1)?;
            let lon2: f64 = ctx.get(2)?;
            let lat2: f64 = ctx.get(3)?;
            Ok(distance_m(lon1, lat1, lon2, lat2))
        },
    )
}
