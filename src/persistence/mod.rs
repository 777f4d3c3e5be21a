//! Durable state. NOT IMPLEMENTED YET: sessions and retained messages live in memory
//! only, and are lost when the broker stops. The durable-state work (sled store,
//! persistence actor, replay at start) fills this module; today it only prepares the
//! data directory so that `--data-dir` problems show at start.

use std::path::{Path, PathBuf};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates the data directory if it is missing.
pub fn prepare_data_dir(path: &Path) -> Result<(), PersistenceError> {
    std::fs::create_dir_all(path).map_err(|source| PersistenceError::DataDir {
        path: path.to_owned(),
        source,
    })
}
