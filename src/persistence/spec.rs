//! Naming a store on the command line (`sled:DIR`, `postgres://...`, `redis://...`) and
//! opening it, for `starling migrate` and `starling inspect`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{store_dir, PersistenceError, SledStore, Store};

/// A store named by a spec string: `sled:DIR` (a broker data directory, as `[storage]
/// data_dir`; the sled store is in `DIR/store`), `postgres://...` (or `postgresql://`)
/// or `redis://...` (or `rediss://`).
///
/// ```
/// use starling::persistence::StoreSpec;
///
/// let spec: StoreSpec = "sled:/var/lib/starling".parse()?;
/// assert_eq!(spec, StoreSpec::Sled("/var/lib/starling".into()));
/// let pg: StoreSpec = "postgres://app:secret@db/mqtt".parse()?;
/// assert_eq!(pg.to_string(), "postgres://app:***@db/mqtt");
/// # Ok::<(), starling::persistence::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A broker data directory holding a sled store.
    Sled(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
    /// A Redis URL.
    Redis(String),
}

/// Why a spec string names no store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `sled:` without a directory.
    #[error("sled: needs a directory, e.g. sled:./data")]
    EmptyDir,
    /// `memory:` holds nothing to copy or inspect.
    #[error(
        "memory: holds nothing outside a running broker; name sled:DIR, postgres:// or redis://"
    )]
    Memory,
    /// Another scheme.
    #[error("unknown store {0:?}: expected sled:DIR, postgres://... or redis://...")]
    Unknown(String),
}

impl FromStr for StoreSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(dir) = s.strip_prefix("sled:") {
            if dir.is_empty() {
                return Err(SpecError::EmptyDir);
            }
            return Ok(StoreSpec::Sled(PathBuf::from(dir)));
        }
        let scheme = s.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("postgres" | "postgresql") => Ok(StoreSpec::Postgres(s.to_owned())),
            Some("redis" | "rediss") => Ok(StoreSpec::Redis(s.to_owned())),
            _ if s == "memory" || s.starts_with("memory:") => Err(SpecError::Memory),
            _ => Err(SpecError::Unknown(redact(s))),
        }
    }
}

impl fmt::Display for StoreSpec {
    /// The spec with any URL password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Sled(dir) => write!(f, "sled:{}", dir.display()),
            StoreSpec::Postgres(url) | StoreSpec::Redis(url) => f.write_str(&redact(url)),
        }
    }
}

/// `scheme://user:password@host...` → `scheme://user:***@host...`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How [`open_spec`] opens a sled store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The store must exist; nothing is written (a migration's source, an inspection).
    Existing,
    /// Created when missing (a migration's target).
    Create,
}

/// Opens the store `spec` names. A sled store that a running broker holds fails with
/// sled's lock error ([`super::StoreError::Open`]).
pub fn open_spec(spec: &StoreSpec, mode: OpenMode) -> Result<Box<dyn Store>, PersistenceError> {
    match spec {
        StoreSpec::Sled(data_dir) => {
            let dir = store_dir(data_dir);
            let store = match mode {
                OpenMode::Existing => SledStore::open_existing(&dir)?,
                OpenMode::Create => {
                    super::prepare_data_dir(data_dir)?;
                    super::recover_interrupted(&dir)?;
                    SledStore::open(&dir)?
                }
            };
            Ok(Box::new(store))
        }
        StoreSpec::Postgres(url) => Ok(Box::new(super::PgStore::connect(url)?)),
        StoreSpec::Redis(url) => Ok(Box::new(super::RedisStore::connect(url)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::{SpecError, StoreSpec};

    fn parse(s: &str) -> Result<StoreSpec, SpecError> {
        s.parse()
    }

    #[test]
    fn parses_each_scheme() {
        assert_eq!(parse("sled:./data"), Ok(StoreSpec::Sled("./data".into())));
        assert_eq!(parse(" sled:/a b "), Ok(StoreSpec::Sled("/a b".into())));
        let url = "postgres://u:p@h:5432/db";
        assert_eq!(parse(url), Ok(StoreSpec::Postgres(url.into())));
        let url = "postgresql://h/db";
        assert_eq!(parse(url), Ok(StoreSpec::Postgres(url.into())));
        assert_eq!(
            parse("redis://h:6379/0"),
            Ok(StoreSpec::Redis("redis://h:6379/0".into()))
        );
        assert_eq!(
            parse("rediss://h"),
            Ok(StoreSpec::Redis("rediss://h".into()))
        );
    }

    #[test]
    fn refuses_the_rest() {
        assert_eq!(parse("sled:"), Err(SpecError::EmptyDir));
        assert_eq!(parse("memory:"), Err(SpecError::Memory));
        assert_eq!(parse("memory"), Err(SpecError::Memory));
        assert!(matches!(parse("./data"), Err(SpecError::Unknown(_))));
        assert!(matches!(parse("mysql://h/db"), Err(SpecError::Unknown(_))));
        assert!(matches!(parse(""), Err(SpecError::Unknown(_))));
    }

    #[test]
    fn display_hides_passwords() {
        let show = |s: &str| parse(s).map(|spec| spec.to_string());
        assert_eq!(show("sled:d"), Ok("sled:d".into()));
        assert_eq!(
            show("postgres://app:s3cr@t@db:5432/x?sslmode=disable"),
            Ok("postgres://app:***@db:5432/x?sslmode=disable".into())
        );
        assert_eq!(show("redis://:pw@h/0"), Ok("redis://:***@h/0".into()));
        assert_eq!(show("redis://h/0"), Ok("redis://h/0".into()));
        let refused = parse("mysql://u:pw@h").unwrap_err().to_string();
        assert!(!refused.contains("pw@"), "{refused}");
    }
}
