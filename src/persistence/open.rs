//! Opening the configured store: at start, with what it holds (less what expired while
//! the broker was down), and again after a restart or a failure of the persistence
//! actor, when a server backend connects again.

use std::path::{Path, PathBuf};

use tracing::{error, info};

use super::convert::unix_ms_now;
use super::{
    drop_expired, MemoryStore, PersistenceError, PgStore, RedisStore, SledStore, Snapshot, Store,
    StoreError,
};
use crate::config::{Backend, Durability, StorageConfig};

/// Builds a fresh store after a restart of the actor.
pub struct Reopen(pub Box<dyn Fn() -> Box<dyn Store> + Send>);

/// Opens the store for `config`, drops what expired while the broker was down, and
/// returns the store with what is left in it.
pub fn open_store(config: &StorageConfig) -> Result<(Box<dyn Store>, Snapshot), PersistenceError> {
    if effective_backend(config) == Backend::Sled {
        super::prepare_data_dir(&config.data_dir)?;
        super::recover_interrupted(&store_dir(&config.data_dir))?;
    }
    load_fresh(open_backend(config)?)
}

/// Opens the configured store again; `None` (logged) when it cannot be.
pub(super) fn reopen(config: &StorageConfig) -> Option<Box<dyn Store>> {
    match open_backend(config) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(error = %e, "cannot re-open the store");
            None
        }
    }
}

/// The configured backend's store, opened (a server backend connected).
fn open_backend(config: &StorageConfig) -> Result<Box<dyn Store>, StoreError> {
    Ok(match effective_backend(config) {
        Backend::Memory => Box::new(MemoryStore::new()),
        Backend::Sled => Box::new(SledStore::open(&store_dir(&config.data_dir))?),
        Backend::Postgres => Box::new(PgStore::connect(server_url(config)?)?),
        Backend::Redis => Box::new(RedisStore::connect(server_url(config)?)?),
    })
}

/// The backend in use: none with `durability = "memory"`.
fn effective_backend(config: &StorageConfig) -> Backend {
    match config.durability {
        Durability::Memory => Backend::Memory,
        Durability::Sync | Durability::Periodic => config.backend,
    }
}

/// A server backend's `url` (checked at configuration time).
fn server_url(config: &StorageConfig) -> Result<&str, StoreError> {
    config.url.as_deref().ok_or_else(|| StoreError::Server {
        backend: config.backend.name(),
        reason: "storage.url is not set".into(),
    })
}

/// Loads everything `store` holds and drops what expired while the broker was down.
pub fn load_fresh(
    mut store: Box<dyn Store>,
) -> Result<(Box<dyn Store>, Snapshot), PersistenceError> {
    let mut snapshot = store.load()?;
    let ops = drop_expired(&mut snapshot, unix_ms_now());
    if !ops.is_empty() {
        info!(
            ops = ops.len(),
            "dropping state that expired while the broker was down"
        );
        store.apply(ops)?;
        store.flush()?;
    }
    Ok((store, snapshot))
}

/// Where the sled store lives inside the data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}
