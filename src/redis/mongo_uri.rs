//! Where the MongoDB URI in force comes from: `readthrough.mongo-uri`, or, when
//! `readthrough.mongo-uri-file` names a file, that file (a Kubernetes secret, a file only the
//! redis user may read). The file's text is kept here and handed to the engine only: `CONFIG
//! GET`, `CONFIG REWRITE`, INFO and the log see the path, never the URI.
//!
//! The file is read when the path is set (at load or by `CONFIG SET`) and again on
//! `RT.RELOAD-SECRETS`; a file that cannot be read or holds no valid URI is refused with an
//! error and the URI in force stays.

use crate::core::uri;
use crate::redis::callbacks::{self, Changed};
use crate::redis::panic_guard::catch;
use crate::state::settings;
use redis_module::logging::log_notice;
use std::sync::Mutex;

struct Source {
    /// The URI read from a file whose path is being set (between the check and the change).
    checked: Option<String>,
    /// The URI read from `readthrough.mongo-uri-file`, while that config names a file.
    from_file: Option<String>,
    /// The URI last handed to the engine (a change is handed over only when it differs).
    in_force: Option<String>,
}

static SOURCE: Mutex<Source> = Mutex::new(Source {
    checked: None,
    from_file: None,
    in_force: None,
});

fn source() -> std::sync::MutexGuard<'static, Source> {
    SOURCE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads and checks the URI in the file at `path`. Errors name the path and the reason, never
/// the file's text.
pub fn read_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read readthrough.mongo-uri-file '{path}': {e}"))?;
    let uri = text.trim();
    if uri.is_empty() {
        return Err(format!("readthrough.mongo-uri-file '{path}' is empty"));
    }
    uri::validate(uri).map_err(|e| format!("readthrough.mongo-uri-file '{path}': {e}"))?;
    Ok(uri.to_owned())
}

/// Checks a new value of `readthrough.mongo-uri-file`: the file must hold a valid URI (an
/// empty path is fine: `readthrough.mongo-uri` is in force again). Kept for `path_set`.
pub fn check_path(path: &str) -> Result<(), String> {
    let uri = if path.is_empty() {
        None
    } else {
        Some(read_file(path)?)
    };
    source().checked = uri;
    Ok(())
}

/// `readthrough.mongo-uri-file` was accepted (after `check_path`): its URI is in force.
pub fn path_set() {
    let uri = source().checked.take();
    let path = settings::MONGO_URI_FILE.get();
    let said = match &uri {
        Some(u) => format!(
            "the MongoDB URI is read from {path}: {}",
            uri::for_display(u)
        ),
        None => "readthrough.mongo-uri-file emptied: readthrough.mongo-uri is in force".into(),
    };
    log_notice(format!("readthrough: {said}"));
    file_set(uri);
}

fn file_set(from_file: Option<String>) {
    source().from_file = from_file;
    hand_over(None);
}

/// `readthrough.mongo-uri` was accepted with this text: in force unless a file is named.
pub fn uri_set(text: &str) {
    if source().from_file.is_some() {
        log_notice(
            "readthrough: readthrough.mongo-uri changed, but readthrough.mongo-uri-file names a \
             file: the file's URI stays in force",
        );
    }
    hand_over(Some(text));
}

/// Where the URI in force comes from, for the load message: the file's path, if any.
pub fn file_in_force() -> Option<String> {
    source()
        .from_file
        .is_some()
        .then(|| settings::MONGO_URI_FILE.get())
}

/// `RT.RELOAD-SECRETS`: reads the named file again and puts its URI in force if it changed.
/// `Ok(true)` when it changed.
pub fn reload() -> Result<bool, String> {
    let path = settings::MONGO_URI_FILE.get();
    if path.is_empty() {
        return Err("readthrough.mongo-uri-file is not set: there is no secret to reload".into());
    }
    let uri = read_file(&path)?;
    let changed = source().from_file.as_deref() != Some(uri.as_str());
    if changed {
        file_set(Some(uri));
    }
    let what = if changed {
        "changed: new loads use it"
    } else {
        "unchanged"
    };
    log_notice(format!(
        "readthrough: reread the MongoDB URI from {path}: {what}"
    ));
    Ok(changed)
}

/// Tells the engine the URI in force if it changed. `uri_text`: the new text of
/// `readthrough.mongo-uri` when that is what changed (not yet stored in the settings).
fn hand_over(uri_text: Option<&str>) {
    let uri = {
        let mut s = source();
        let uri = match (&s.from_file, uri_text) {
            (Some(f), _) => f.clone(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => settings::MONGO_URI.get(),
        };
        if s.in_force.as_deref() == Some(uri.as_str()) {
            return;
        }
        s.in_force = Some(uri.clone());
        uri
    };
    catch("a config change", || {
        (callbacks::get().config_changed)(Changed::MongoUri(uri))
    });
}
