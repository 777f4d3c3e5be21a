//! [`Store`] on a Redis server, through the `redis` crate's synchronous client (plain
//! blocking I/O on the persistence actor's thread, no runtime of its own).
//!
//! What it promises: a batch is applied with one MULTI/EXEC (atomic, in order, one round
//! trip per group commit), and an acknowledged message is as durable as the server's
//! `appendfsync` allows: with `appendonly yes` and `appendfsync always` redis writes and
//! fsyncs its AOF before it replies, so nothing acknowledged is lost; with `everysec`
//! about a second can be. The settings are read at start and a warning says the window
//! ([`durability`]). `flush` has nothing left to do: what `apply` wrote is on the server.
//!
//! When the connection breaks, the call fails with [`StoreError::Server`] and the next
//! call connects again. Sessions resumed while the broker runs are loaded on a second
//! connection, off the persistence actor's thread ([`Store::session_reader`]). Key layout: [`keys`]; values are the postcard records of the
//! sled store.

mod durability;
mod keys;
mod link;
mod read;
mod write;

use std::sync::Arc;

pub use durability::Risk;
pub use keys::DEFAULT_PREFIX;

use keys::Keys;
use link::{Failure, Link};

use super::store::{validate_ops, Op, SessionReader, Snapshot, Store, StoreError, StoredSession};

/// Schema version written by this binary under the prefix.
pub const REDIS_SCHEMA: u32 = 1;

/// A [`Store`] on a Redis server.
#[derive(Debug)]
pub struct RedisStore {
    link: Link,
    /// A second connection, for the loads of [`Store::session_reader`] on other threads.
    reader: Arc<Link>,
    keys: Keys,
    next_seq: u64,
    /// A call failed: `next_seq` is read again from the server before the next apply
    /// (a batch whose reply was lost may have raised it there).
    resync: bool,
    risk: Risk,
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://[user:password@]host:port/db`), checks
    /// or writes the schema version under [`DEFAULT_PREFIX`], and logs a warning when
    /// the server's settings let acknowledged messages be lost on a crash.
    pub fn connect(url: &str) -> Result<RedisStore, StoreError> {
        Self::connect_with_prefix(url, DEFAULT_PREFIX)
    }

    /// Like [`connect`](Self::connect), with every key under `prefix` (several stores
    /// can share one database).
    pub fn connect_with_prefix(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let link = Link::new(url)?;
        let reader = Arc::new(Link::new(url)?);
        let keys = Keys::new(prefix);
        let (schema, next_seq, risk) = link.with(|con| {
            let schema = init_schema(con, &keys)?;
            let next_seq = read::next_seq(con, &keys)?;
            Ok((schema, next_seq, durability::check(con)))
        })?;
        if schema > REDIS_SCHEMA {
            return Err(link.error(&format!(
                "keys under {:?} have schema version {schema}; this binary supports up to {REDIS_SCHEMA}",
                keys.prefix()
            )));
        }
        durability::warn(&risk, link.target());
        Ok(RedisStore {
            link,
            reader,
            keys,
            next_seq,
            resync: false,
            risk,
        })
    }

    /// What the server's settings let a crash lose, as read at connect.
    pub fn durability_risk(&self) -> &Risk {
        &self.risk
    }
}

/// One session and its children, on `link`.
fn load_one(
    link: &Link,
    keys: &Keys,
    client_id: &str,
) -> Result<Option<StoredSession>, StoreError> {
    link.with(|con| {
        let Some(mut s) = read::session(con, keys, client_id)? else {
            return Ok(None);
        };
        read::children(con, keys, std::iter::once(&mut s))?;
        Ok(Some(s))
    })
}

/// Loads sessions on its own connection, off the persistence actor's thread.
struct Reader {
    link: Arc<Link>,
    keys: Keys,
}

impl SessionReader for Reader {
    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        load_one(&self.link, &self.keys, client_id)
    }
}

/// The schema version under the prefix, writing the current one if there is none.
fn init_schema(con: &mut redis::Connection, keys: &Keys) -> Result<u32, Failure> {
    let set: bool = redis::cmd("SET")
        .arg(keys.schema())
        .arg(REDIS_SCHEMA)
        .arg("NX")
        .query::<Option<String>>(con)?
        .is_some();
    if set {
        return Ok(REDIS_SCHEMA);
    }
    let found: String = redis::cmd("GET").arg(keys.schema()).query(con)?;
    found.parse().map_err(|_| {
        Failure::Store(StoreError::Corrupt {
            tree: "schema",
            key: keys.schema().into_bytes(),
            reason: format!("schema version {found:?} is not a number"),
        })
    })
}

impl Store for RedisStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.link.with(|con| {
            let mut sessions = read::sessions(con, &self.keys)?;
            read::children(con, &self.keys, sessions.values_mut())?;
            let retained = read::retained(con, &self.keys)?;
            let mut next_seq = read::next_seq(con, &self.keys)?.max(self.next_seq);
            for s in sessions.values() {
                if let Some((seq, _)) = s.queue.last() {
                    next_seq = next_seq.max(seq.saturating_add(1));
                }
            }
            Ok(Snapshot {
                sessions: sessions.into_values().collect(),
                retained,
                next_seq,
            })
        })
    }

    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        if self.resync {
            let stored = self.link.with(|con| read::next_seq(con, &self.keys))?;
            self.next_seq = self.next_seq.max(stored);
            self.resync = false;
        }
        let (pipe, next_seq, commands) = write::plan(&self.keys, ops, self.next_seq)?;
        if commands == 0 {
            return Ok(());
        }
        let written = self.link.with(|con| Ok(pipe.query::<()>(con)?));
        if written.is_err() {
            self.resync = true;
        }
        written?;
        self.next_seq = next_seq;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        // Every apply already waited for the server's reply; with appendfsync always
        // that reply comes after the fsync.
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        // Not this process's disk: nothing to compact here.
        Ok(0)
    }

    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        load_one(&self.link, &self.keys, client_id)
    }

    fn session_reader(&self) -> Option<Box<dyn SessionReader>> {
        Some(Box::new(Reader {
            link: Arc::clone(&self.reader),
            keys: self.keys.clone(),
        }))
    }
}
