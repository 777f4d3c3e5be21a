//! [`Store`] on a PostgreSQL server (`[storage] backend = "postgres"`).
//!
//! Layout: one table per keyspace of the sled store (`starling_sessions`,
//! `starling_subscriptions`, `starling_queue` keyed by (client, seq),
//! `starling_inbound_qos2`, `starling_retained`) and `starling_meta` with the queue's
//! `next_seq`. Values are the postcard records the sled store keeps; keys are columns
//! with `COLLATE "C"`, so the server's order is the byte order the snapshot promises.
//! The schema is versioned ([`schema`]): migrations are embedded and applied at
//! connect, and a database of a newer binary is refused.
//!
//! Promises: [`Store::apply`] is one transaction per batch (all or nothing, in order);
//! a batch is durable once it returns, since it returns after COMMIT (the server's
//! `synchronous_commit`, on by default, decides whether COMMIT waits for its WAL
//! flush). [`Store::flush`] has nothing left to do. Group commit stays: a batch is
//! coalesced per key ([`ops`]) and written with a fixed handful of array statements,
//! pipelined with BEGIN and COMMIT, whatever its size. [`Store::load`] reads each table
//! in pages (keyset pagination) inside one read-only snapshot ([`load`]).
//!
//! The trait is synchronous and runs on the persistence actor's thread, inside the
//! broker's runtime; the client runs on a small runtime of the store's own, and the
//! caller blocks on the answer (as the JetStream store does). A call that fails drops
//! the connection; the next call connects again, so a server that comes back is used
//! again (the persistence actor retries failed batches with backoff).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::store::{validate_ops, Op, Snapshot, Store, StoreError, StoredSession};

mod load;
mod ops;
mod schema;

pub use schema::PG_SCHEMA;

/// Bound of one call into the store's runtime (a connect, a batch, a load page).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of establishing a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is, for messages: host, port and database, never the password.
#[derive(Debug, Clone)]
pub(crate) struct Target(String);

impl Target {
    fn of(config: &tokio_postgres::Config) -> Target {
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().unwrap_or("");
        Target(format!("postgres://{host}:{port}/{db}"))
    }
}

/// A live connection and its prepared statements.
struct Conn {
    client: Client,
    stmts: ops::Statements,
}

/// The PostgreSQL [`Store`]. See the module documentation for what it promises.
pub struct PgStore {
    /// `Some` until dropped (a runtime must not be dropped inside another one).
    rt: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    target: Target,
    /// `None` after a failure: the next call connects again.
    conn: Mutex<Option<Arc<Conn>>>,
    next_seq: u64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target.0)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/db`),
    /// applies the schema migrations this binary has, and reads the queue's next seq.
    /// Fails on a bad URL, an unreachable server, or a database whose schema is newer
    /// than this binary ([`StoreError::NewerSchema`]). Messages never show the password.
    ///
    /// ```no_run
    /// use starling::persistence::{PgStore, Store};
    ///
    /// let store = PgStore::connect("postgres://starling:secret@127.0.0.1:5432/starling")?;
    /// let snapshot = store.load()?;
    /// println!("{} sessions stored", snapshot.sessions.len());
    /// # Ok::<(), starling::persistence::StoreError>(())
    /// ```
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| StoreError::Server {
            backend: "postgres",
            reason: "storage.url is not a valid postgres URL".into(),
        })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives_idle(Duration::from_secs(10))
            .application_name("starling");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("starling-pg-store")
            .enable_all()
            .build()
            .map_err(|e| server(format!("cannot start the store runtime: {e}")))?;
        let mut store = PgStore {
            rt: Some(rt),
            target: Target::of(&config),
            config,
            conn: Mutex::new(None),
            next_seq: 1,
        };
        let conn = store.conn()?;
        store.next_seq = store.run(load::next_seq(conn))??;
        tracing::info!(server = %store.target.0, schema = PG_SCHEMA, "postgres store connected");
        Ok(store)
    }

    /// Where the server is (host, port, database; no credentials).
    pub fn target(&self) -> &str {
        &self.target.0
    }

    /// Runs `fut` on the store's runtime, bounded by [`CALL_TIMEOUT`], and blocks.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| server("the store runtime is gone".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(tokio::time::timeout(CALL_TIMEOUT, fut).await);
        });
        match rx.recv() {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(server(format!(
                "no answer from the server within {CALL_TIMEOUT:?}"
            ))),
            Err(_) => Err(server("the store runtime stopped".into())),
        }
    }

    /// The live connection, connecting (and migrating) if there is none.
    fn conn(&self) -> Result<Arc<Conn>, StoreError> {
        if let Some(c) = self.slot().as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let (config, target) = (self.config.clone(), self.target.clone());
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| server("no runtime".into()))?;
        let handle = rt.handle().clone();
        let conn = self.run(async move {
            let (mut client, connection) = config.connect(NoTls).await.map_err(server_error)?;
            handle.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "postgres connection ended");
                }
            });
            schema::migrate(&mut client, &target).await?;
            let stmts = ops::Statements::prepare(&client).await?;
            Ok::<_, StoreError>(Arc::new(Conn { client, stmts }))
        })??;
        *self.slot() = Some(Arc::clone(&conn));
        Ok(conn)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Conn>>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the live connection; any failure drops the connection, so that the
    /// next call starts on a fresh one (and no half-done transaction lingers).
    fn with_conn<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let result = self.conn().and_then(|conn| self.run(f(conn))?);
        if result.is_err() {
            *self.slot() = None;
        }
        result
    }
}

/// A server error of this backend.
fn server(reason: String) -> StoreError {
    StoreError::Server {
        backend: "postgres",
        reason,
    }
}

/// A client error as a [`StoreError`]: the server's message when it sent one.
pub(crate) fn server_error(e: tokio_postgres::Error) -> StoreError {
    let reason = match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    };
    server(reason)
}

impl Store for PgStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let next_seq = self.next_seq;
        self.with_conn(move |c| async move { load::everything(&c.client, next_seq).await })
    }

    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        let plan = ops::Plan::of(ops, self.next_seq)?;
        if plan.is_empty() {
            return Ok(());
        }
        let next_seq = plan.next_seq.unwrap_or(self.next_seq);
        self.with_conn(move |c| async move { plan.write(&c.client, &c.stmts).await })?;
        self.next_seq = next_seq;
        Ok(())
    }

    /// Nothing to do: [`Store::apply`] returns after COMMIT.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// 0: the data is on the server, not on this host's disk.
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        let id = client_id.to_owned();
        self.with_conn(move |c| async move { load::session(&c.client, id).await })
    }
}
