//! Durable state: records, the `Store` trait with sled, PostgreSQL and in-memory implementations,
//! start-up expiry and store inspection. The persistence actor that batches changes off
//! the event loops is built on top of [`Store`].

use std::path::{Path, PathBuf};

mod actor;
mod checksum;
mod compact;
pub(crate) mod convert;
mod expiry;
mod inspect;
mod loading;
mod memory_store;
mod messages;
mod migrate;
mod observe;
mod open;
mod outage;
mod postgres;
mod records;
mod redis;
mod sled_open;
mod sled_store;
mod spec;
mod store;
#[cfg(test)]
mod tests;
mod ticket;

/// A message's cluster number, as [`Op::Delivered`] carries it.
pub use crate::delivery::Origin;
pub(crate) use actor::Persistence;
pub use checksum::{Checksums, Comparison, Tally, KEYSPACES};
pub(crate) use compact::{compact, recover_interrupted};
pub use expiry::drop_expired;
pub use inspect::{inspect, inspect_spec, Report, SessionSummary};
pub use memory_store::MemoryStore;
pub(crate) use messages::{
    FlushNow, LoadSession, Loaded, Persist, PersistDeliveries, QueuedDelivery,
};
pub use migrate::{
    compare, migrate, MigrateError, MigrateOptions, MigrateSummary, DEFAULT_BATCH_OPS,
};
pub(crate) use observe::ObserveStore;
pub use open::store_dir;
pub(crate) use open::{load_fresh, open_store, Reopen};
pub use postgres::{PgStore, PG_SCHEMA};
pub use records::{
    MessageRecord, PropertiesRecord, QueuedRecord, ReplayCursor, SessionRecord, SubscriptionRecord,
    WillRecord,
};
pub use redis::RedisStore;
pub use sled_store::{SledStore, CURRENT_SCHEMA};
pub use spec::{open_spec, OpenMode, SpecError, StoreSpec};
pub use store::{Op, SessionReader, Snapshot, Store, StoreError, StoredSession};
pub(crate) use ticket::{failed_ticket, ticket, Backlog, Durable};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    /// The data directory cannot be created.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// This build has no such backend.
    #[error("storage backend {0:?} is not available in this build")]
    Unsupported(&'static str),
    /// The store cannot be opened or used.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the data directory if it is missing.
pub(crate) fn prepare_data_dir(path: &Path) -> Result<(), PersistenceError> {
    std::fs::create_dir_all(path).map_err(|source| PersistenceError::DataDir {
        path: path.to_owned(),
        source,
    })
}
