//! What survives a redis crash: read from `CONFIG GET appendonly` and `appendfsync` at
//! start, and said in one warning when acknowledged messages could be lost.

use redis::Connection;

/// What the server's persistence settings allow to be lost on a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Risk {
    /// `appendonly yes` and `appendfsync always`: every write is on disk before the
    /// reply, so nothing acknowledged is lost.
    None,
    /// Acknowledged messages in this window can be lost.
    Window(&'static str),
    /// The settings could not be read (CONFIG is disabled or renamed).
    Unknown(String),
}

/// Reads the server's settings.
pub(super) fn check(con: &mut Connection) -> Risk {
    let appendonly = match config_get(con, "appendonly") {
        Ok(v) => v,
        Err(e) => return Risk::Unknown(e),
    };
    if appendonly != "yes" {
        return Risk::Window(
            "the AOF is off (appendonly no): everything written since the last RDB snapshot",
        );
    }
    match config_get(con, "appendfsync").as_deref() {
        Ok("always") => Risk::None,
        Ok("no") => Risk::Window(
            "appendfsync no: what the OS has not written back yet (typically up to 30 s)",
        ),
        // everysec, or a value this binary does not know.
        Ok(_) => Risk::Window(
            "appendfsync everysec: about the last second (up to 2 s when the disk is slow)",
        ),
        Err(e) => Risk::Unknown(e.clone()),
    }
}

/// Logs the warning `risk` calls for (nothing for [`Risk::None`]).
pub(super) fn warn(risk: &Risk, target: &str) {
    match risk {
        Risk::None => tracing::info!(
            redis = target,
            "redis store: appendonly yes, appendfsync always: acknowledged messages survive a redis crash"
        ),
        Risk::Window(window) => tracing::warn!(
            redis = target,
            "redis store: acknowledged messages can be lost if redis or its host crashes: {window}; \
             set appendonly yes and appendfsync always for no loss"
        ),
        Risk::Unknown(reason) => tracing::warn!(
            redis = target,
            reason = reason.as_str(),
            "redis store: cannot read redis's durability settings (CONFIG GET failed), so whether \
             acknowledged messages survive a redis crash cannot be checked; it needs appendonly yes \
             and appendfsync always"
        ),
    }
}

/// The value of one setting.
fn config_get(con: &mut Connection, name: &str) -> Result<String, String> {
    let reply: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .map_err(|e| e.to_string())?;
    match reply.as_slice() {
        [_, value] => Ok(value.to_ascii_lowercase()),
        _ => Err(format!("CONFIG GET {name} returned {} items", reply.len())),
    }
}
