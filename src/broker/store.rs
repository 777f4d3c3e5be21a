//! Opening the store at start: the one the builder was given, JetStream in cluster
//! mode, or sled (or memory) as `[storage]` says.

use crate::config::{Config, Durability};
use crate::persistence::{self, PersistenceError, Snapshot, Store};

use super::BrokerError;

/// The store, what it holds, and how the persistence actor gets it back after a
/// restart.
pub(super) struct Opened {
    pub store: Box<dyn Store>,
    pub snapshot: Snapshot,
    pub origin: Origin,
}

/// Where the store came from.
pub(super) enum Origin {
    /// `[storage]`: sled or memory, re-opened from the configuration.
    Config,
    /// Cluster mode's JetStream store, re-created by this.
    Reopen(persistence::Reopen),
    /// The embedding application's ([`Broker::store`](crate::Broker::store)): kept.
    Given,
}

/// Opens (or loads the given) store. Opening reads the whole store (and in cluster
/// mode waits for JetStream): on a blocking thread, not on the runtime that serves
/// connections.
pub(super) async fn open(
    config: &Config,
    given: Option<Box<dyn Store>>,
) -> Result<Opened, BrokerError> {
    if given.is_some() && config.session_state_in_cluster() {
        return Err(BrokerError::StoreInCluster);
    }
    let config = config.clone();
    tokio::task::spawn_blocking(move || match given {
        Some(store) => {
            let (store, snapshot) = persistence::load_fresh(store)?;
            Ok(Opened {
                store,
                snapshot,
                origin: Origin::Given,
            })
        }
        None => open_configured(&config),
    })
    .await
    .map_err(|_| BrokerError::StoreTask)?
}

/// In cluster mode (unless `durability = "memory"`) session state lives in JetStream,
/// loaded per client on CONNECT, so the snapshot is empty; otherwise sled (or memory)
/// with everything in it. Blocking.
fn open_configured(config: &Config) -> Result<Opened, BrokerError> {
    let cluster = &config.cluster;
    if !cluster.enabled || config.storage.durability == Durability::Memory {
        let (store, snapshot) = persistence::open_store(&config.storage)?;
        return Ok(Opened {
            store,
            snapshot,
            origin: Origin::Config,
        });
    }
    let store = crate::cluster::JsStore::open(cluster).map_err(PersistenceError::from)?;
    let snapshot = Store::load(&store).map_err(PersistenceError::from)?;
    let spare = store.reopen();
    let reopen = persistence::Reopen(Box::new(move || Box::new(spare.reopen())));
    Ok(Opened {
        store: Box::new(store),
        snapshot,
        origin: Origin::Reopen(reopen),
    })
}
