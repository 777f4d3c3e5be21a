//! Opening a sled store safely: directory checks, the marker file, schema version.
//!
//! sled 0.34 recovers a damaged or replaced log as an empty database without an error,
//! so a marker file (`starling-store`) is written next to it once the schema is durable:
//! a store with the marker but without a schema version is reported as damaged instead
//! of silently starting empty.

use std::io::Write;
use std::path::Path;

use super::sled_store::{CURRENT_SCHEMA, META, NEXT_SEQ_KEY, QUEUE, SCHEMA_KEY, TREE_NAMES};
use super::store::StoreError;

/// Name of the marker file written into a store directory.
pub(super) const MARKER: &str = "starling-store";
/// Files sled 0.34 creates in its directory.
const SLED_FILES: [&str; 2] = ["conf", "db"];

/// An opened and checked database.
pub(super) struct Opened {
    pub(super) db: sled::Db,
    pub(super) trees: Vec<sled::Tree>,
    pub(super) schema: u32,
    pub(super) next_seq: u64,
}

/// Opens the store in `dir`; with `create`, creates a fresh one in a missing or empty
/// directory (and writes the schema key and the marker), otherwise never writes either.
pub(super) fn open(dir: &Path, create: bool) -> Result<Opened, StoreError> {
    let has_marker = check_dir(dir, create)?;
    let db = open_db(dir).map_err(|source| StoreError::Open {
        path: dir.to_owned(),
        source,
    })?;
    let names = db.tree_names();
    let stored_schema = if names.iter().any(|n| n.as_ref() == b"meta") {
        db.open_tree("meta")?.get(SCHEMA_KEY)?
    } else {
        None
    };
    let fresh = stored_schema.is_none();
    let schema = match stored_schema {
        Some(v) => schema_version(dir, &v)?,
        None => {
            check_uninitialized(dir, &db, &names, has_marker, create)?;
            CURRENT_SCHEMA
        }
    };
    let trees = TREE_NAMES
        .iter()
        .map(|n| db.open_tree(n))
        .collect::<Result<Vec<_>, _>>()?;
    if fresh {
        trees[META].insert(SCHEMA_KEY, &CURRENT_SCHEMA.to_be_bytes())?;
        db.flush()?;
        tracing::info!(path = %dir.display(), "created a new store");
    }
    if create && !has_marker {
        write_marker(dir).map_err(|source| StoreError::Io {
            path: dir.join(MARKER),
            source,
        })?;
    }
    let next_seq = read_next_seq(&trees[QUEUE])?;
    Ok(Opened {
        db,
        trees,
        schema,
        next_seq: next_seq.max(1),
    })
}

/// The stored schema version, refused when newer than this binary's.
fn schema_version(dir: &Path, v: &[u8]) -> Result<u32, StoreError> {
    let bytes: [u8; 4] = v.try_into().map_err(|_| StoreError::Corrupt {
        tree: "meta",
        key: SCHEMA_KEY.to_vec(),
        reason: format!("schema version has {} bytes, expected 4", v.len()),
    })?;
    let found = u32::from_be_bytes(bytes);
    if found > CURRENT_SCHEMA {
        return Err(StoreError::NewerSchema {
            path: dir.to_owned(),
            found,
            supported: CURRENT_SCHEMA,
        });
    }
    Ok(found)
}

/// A database without a schema version may only become a store when it is empty, was
/// never initialized (no marker) and `create` allows it.
fn check_uninitialized(
    dir: &Path,
    db: &sled::Db,
    names: &[sled::IVec],
    has_marker: bool,
    create: bool,
) -> Result<(), StoreError> {
    let err = |reason: &str, damaged: bool| {
        let (path, reason) = (dir.to_owned(), reason.to_owned());
        if damaged {
            StoreError::Damaged { path, reason }
        } else {
            StoreError::NotAStore { path, reason }
        }
    };
    if has_marker {
        return Err(err(
            "the database has no schema version although the store was \
             initialized: its files were damaged, truncated or replaced",
            true,
        ));
    }
    let mut empty = true;
    for name in names {
        empty &= db.open_tree(name)?.is_empty();
    }
    if !empty {
        return Err(err("the database has data but no schema version", false));
    }
    if !create {
        return Err(err("the database is empty", false));
    }
    Ok(())
}

/// The queue seq high-water mark; 1 when none is stored.
fn read_next_seq(queue: &sled::Tree) -> Result<u64, StoreError> {
    match queue.get(NEXT_SEQ_KEY)? {
        Some(v) => read_u64(&v).ok_or_else(|| StoreError::Corrupt {
            tree: "meta",
            key: NEXT_SEQ_KEY.to_vec(),
            reason: format!("next_seq has {} bytes, expected 8", v.len()),
        }),
        None => Ok(1),
    }
}

/// Refuses directories that exist but hold something other than a store, so a wrong or
/// damaged `--data-dir` never silently starts empty. Returns whether the marker exists.
fn check_dir(dir: &Path, create: bool) -> Result<bool, StoreError> {
    let io_err = |source| StoreError::Io {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => return Ok(false),
        Err(source) => return Err(io_err(source)),
    };
    let has_marker = entries.iter().any(|n| n == MARKER);
    let is_sled = entries.iter().any(|n| SLED_FILES.contains(&n.as_str()));
    let reason = if has_marker && !is_sled {
        "the database files are missing".to_owned()
    } else if is_sled || (entries.is_empty() && create) {
        return Ok(has_marker);
    } else if entries.is_empty() {
        "the directory is empty".to_owned()
    } else {
        format!("no sled database, but other files: {}", entries.join(", "))
    };
    Err(if has_marker {
        StoreError::Damaged {
            path: dir.to_owned(),
            reason,
        }
    } else {
        StoreError::NotAStore {
            path: dir.to_owned(),
            reason,
        }
    })
}

fn write_marker(dir: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::create(dir.join(MARKER))?;
    f.write_all(b"Starling MQTT broker store (sled 0.34). Do not delete.\n")?;
    f.sync_all()?;
    // Make the new directory entry durable too (best effort: not supported everywhere).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens the sled database, retrying for up to 2 s while its file lock is held: sled
/// releases the lock from a background thread shortly after the previous `Db` in this
/// process was dropped, so an immediate reopen would otherwise fail.
fn open_db(dir: &Path) -> Result<sled::Db, sled::Error> {
    let mut attempts = 0;
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if attempts < 100 && e.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Reads a u64 stored big-endian.
pub(super) fn read_u64(b: &[u8]) -> Option<u64> {
    b.try_into().ok().map(u64::from_be_bytes)
}
