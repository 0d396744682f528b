//! The one shared MongoDB client (a connection pool), built from the URI in force.
//!
//! The client is created on first use, so the module loads and Redis serves while MongoDB is
//! down; the driver reconnects by itself when MongoDB comes back. Changing
//! `readthrough.mongo-uri` (or `readthrough.timeout`, which bounds server selection) drops the
//! client; the next load builds a new one from the new settings.

use crate::core::error::Error;
use crate::core::uri::redact;
use crate::mongo::runtime;
use mongodb::options::ClientOptions;
use mongodb::Client;
use std::sync::Mutex;
use std::time::Duration;

/// How often the driver checks a server unless the URI says otherwise (`heartbeatFrequencyMS`).
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Connections the driver keeps open even when idle, unless the URI says otherwise
/// (`minPoolSize`): a miss after a quiet spell never waits for a connection to be made, and a
/// burst of misses finds as many ready as the shared-query slots of a mapping can use.
const MIN_POOL: u32 = 4;

struct Backend {
    uri: String,
    server_selection: Duration,
    client: Option<Client>,
    generation: u64,
}

static BACKEND: Mutex<Backend> = Mutex::new(Backend {
    uri: String::new(),
    // 3/4 of the default `readthrough.timeout` (2000 ms) until the config says otherwise.
    server_selection: Duration::from_millis(1500),
    client: None,
    generation: 0,
});

fn backend() -> std::sync::MutexGuard<'static, Backend> {
    BACKEND.lock().unwrap_or_else(|p| p.into_inner())
}

/// Switches to a new URI and/or server-selection bound; the current client is dropped.
pub fn configure(uri: Option<&str>, server_selection: Option<Duration>) {
    let old = {
        let mut b = backend();
        if let Some(uri) = uri {
            b.uri = uri.to_owned();
        }
        if let Some(d) = server_selection {
            b.server_selection = d;
        }
        b.generation += 1;
        b.client.take()
    };
    // The driver's drop spawns clean-up tasks, so drop it inside the runtime.
    if let (Some(old), Some(rt)) = (old, runtime::get()) {
        rt.spawn(async move { drop(old) });
    }
}

/// A number that changes whenever the URI or the bound on connecting does.
pub fn generation() -> u64 {
    backend().generation
}

/// The URI in force, the bound on connecting, and `generation()`.
pub fn settings() -> (String, Duration, u64) {
    let b = backend();
    (b.uri.clone(), b.server_selection, b.generation)
}

/// The current URI with the password replaced by `***` (for logs).
pub fn uri_for_display() -> String {
    crate::core::uri::for_display(&backend().uri)
}

pub async fn client() -> Result<Client, Error> {
    if let Some(c) = &backend().client {
        return Ok(c.clone());
    }
    let (opts, generation) = options().await?;
    let uri = backend().uri.clone();
    let client =
        Client::with_options(opts).map_err(|e| Error::Backend(redact(&e.to_string(), &uri)))?;
    let mut b = backend();
    if b.generation == generation {
        Ok(b.client.get_or_insert(client).clone())
    } else {
        // The settings changed while this one was built: use it once, keep none.
        Ok(client)
    }
}

/// Runs one `ping` on the shared client, so that a connection of it has authenticated (if the
/// URI has credentials) and the driver holds the SCRAM key it derived. A failure is left to the
/// loads that follow.
pub async fn authenticate_once() {
    if let Ok(c) = client().await {
        let _ = c
            .database("admin")
            .run_command(mongodb::bson::doc! { "ping": 1 })
            .await;
    }
}

/// The driver's options for the settings in force, and their `generation()`. Parsing may
/// look up DNS records (`mongodb+srv`), so it runs on the loader thread.
pub async fn options() -> Result<(ClientOptions, u64), Error> {
    let (uri, selection, generation) = settings();
    let mut opts = ClientOptions::parse(&uri)
        .await
        .map_err(|e| Error::Backend(redact(&e.to_string(), &uri)))?;
    // The user's URI wins. Otherwise a refused connection fails server selection before the
    // client's own timeout (BACKEND rather than TIMEOUT), and the server is checked every
    // 500 ms (the driver's floor; its default is 10 s): after a stall the driver keeps the
    // server "Unknown" until its monitor checks again, so this is how soon loads work again.
    opts.server_selection_timeout.get_or_insert(selection);
    opts.connect_timeout.get_or_insert(selection);
    opts.heartbeat_freq.get_or_insert(HEARTBEAT);
    opts.min_pool_size.get_or_insert(MIN_POOL);
    opts.app_name
        .get_or_insert_with(|| "redis-readthrough".to_owned());
    Ok((opts, generation))
}

/// A driver error as text fit for logs and replies: credentials removed, length bounded.
pub fn redact_error(e: &mongodb::error::Error) -> String {
    match backend_error(e) {
        Error::Backend(m) => m,
        other => other.to_string(),
    }
}

/// A driver error as `BACKEND`: what went wrong (the error's kind, e.g. `Command failed: Error
/// code 13 (Unauthorized): ...`), without the driver's debug fields (labels, source, the raw
/// server response), the URI's credentials removed, the length bounded. The inline path words
/// a command error the same way (`core/wire.rs`).
pub fn backend_error(e: &mongodb::error::Error) -> Error {
    let uri = backend().uri.clone();
    let mut msg = redact(&e.kind.to_string(), &uri);
    if msg.len() > 400 {
        let mut cut = 400;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push_str("...");
    }
    Error::Backend(msg)
}
