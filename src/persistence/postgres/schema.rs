//! Versioned schema migrations, embedded in the binary and applied in order at
//! connect. `starling_schema_version` holds one row per applied version; a database
//! whose newest version is above [`PG_SCHEMA`] was written by a newer binary and is
//! refused ([`StoreError::NewerSchema`]) rather than used.

use tokio_postgres::Client;

use super::{server_error, Target};
use crate::persistence::StoreError;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// The schema version this binary writes (and the newest it reads).
pub const PG_SCHEMA: u32 = MIGRATIONS.len() as u32;

/// Key of the advisory lock that serialises migrations of brokers starting together.
const MIGRATION_LOCK: i64 = 0x5354_4152_4c49_4e47; // "STARLING"

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS starling_schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Brings the schema up to [`PG_SCHEMA`] in one transaction; returns the version the
/// database had before.
pub(super) async fn migrate(client: &mut Client, target: &Target) -> Result<u32, StoreError> {
    let tx = client.transaction().await.map_err(server_error)?;
    tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(server_error)?;
    tx.batch_execute(VERSION_TABLE)
        .await
        .map_err(server_error)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM starling_schema_version",
            &[],
        )
        .await
        .map_err(server_error)?;
    let found: i32 = row.get(0);
    let found = u32::try_from(found).unwrap_or(0);
    if found > PG_SCHEMA {
        return Err(StoreError::NewerSchema {
            path: target.0.clone().into(),
            found,
            supported: PG_SCHEMA,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(server_error)?;
        tx.execute(
            "INSERT INTO starling_schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(server_error)?;
        tracing::info!(version, "postgres store: schema migrated");
    }
    tx.commit().await.map_err(server_error)?;
    Ok(found)
}
