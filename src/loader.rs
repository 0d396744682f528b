//! The background side: one tokio runtime and one shared MongoDB client. Knows nothing of Redis.
//!
//! The client (a connection pool) is created on first use, so the module loads and Redis serves
//! while MongoDB is down; the driver reconnects by itself when MongoDB comes back. Changing
//! `readthrough.mongo-uri` (or `readthrough.timeout`, which bounds server selection) drops the
//! client; the next load builds a new one from the new settings.

use crate::codec;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::mapping::{self, Mapping, Target};
use futures_util::TryStreamExt;
use mongodb::bson::Document;
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::Client;
use once_cell::sync::OnceCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::runtime::Runtime;

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// How often the driver checks a server unless the URI says otherwise (`heartbeatFrequencyMS`).
const HEARTBEAT: Duration = Duration::from_millis(500);
/// Pause between two tries of a query whose server did not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Starts the runtime (two worker threads: the machine's loads are I/O bound).
pub fn start_runtime() -> Result<(), String> {
    RUNTIME
        .get_or_try_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("readthrough-loader")
                .enable_all()
                .build()
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the loader runtime: {e}"))
}

pub fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
    RUNTIME.get().expect("runtime started in init").spawn(f);
}

struct Backend {
    uri: String,
    server_selection: Duration,
    client: Option<Client>,
    generation: u64,
}

static BACKEND: Mutex<Backend> = Mutex::new(Backend {
    uri: String::new(),
    server_selection: Duration::from_millis(1500),
    client: None,
    generation: 0,
});

fn backend() -> std::sync::MutexGuard<'static, Backend> {
    BACKEND.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks a connection string without any I/O. The error never repeats the URI.
pub fn validate_uri(uri: &str) -> Result<(), String> {
    ConnectionString::parse(uri)
        .map(|_| ())
        .map_err(|e| format!("invalid MongoDB URI: {}", redact(&e.to_string(), uri)))
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
    if let (Some(old), Some(rt)) = (old, RUNTIME.get()) {
        rt.spawn(async move { drop(old) });
    }
}

/// The current URI with the password replaced by `***` (for logs).
pub fn uri_for_display() -> String {
    let uri = backend().uri.clone();
    match userinfo(&uri) {
        Some((start, end)) => format!("{}***@{}", &uri[..start], &uri[end + 1..]),
        None => uri,
    }
}

pub async fn client() -> Result<Client, Error> {
    let (uri, selection, generation) = {
        let b = backend();
        if let Some(c) = &b.client {
            return Ok(c.clone());
        }
        (b.uri.clone(), b.server_selection, b.generation)
    };
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
    opts.app_name
        .get_or_insert_with(|| "redis-readthrough".to_owned());
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

/// Finds the document a key stands for and encodes it; `None` when there is none. Bounded by
/// `limit`: `TIMEOUT` when MongoDB has not answered by then, whatever the driver was doing.
pub async fn find_one(target: &Target, deadline: Deadline) -> Result<Option<String>, Error> {
    within(deadline, async {
        let client = client().await?;
        let m = &target.mapping;
        let coll = client.database(&m.db).collection::<Document>(&m.collection);
        let doc = until_answered(|| coll.find_one(target.filter())).await?;
        Ok(doc.map(|d| {
            crate::cdc::remember(m, &d);
            codec::to_json(d)
        }))
    })
    .await
}

/// Finds the documents of many ids of one mapping with one `$in` query; the JSON of each
/// found document by its canonical id (`mapping::canonical_id`). Bounded by `deadline` as
/// `find_one` is.
pub async fn find_many(
    mapping: &Mapping,
    ids: &[&str],
    deadline: Deadline,
) -> Result<HashMap<String, String>, Error> {
    within(deadline, async {
        let client = client().await?;
        let coll = client
            .database(&mapping.db)
            .collection::<Document>(&mapping.collection);
        let values: Vec<_> = ids
            .iter()
            .flat_map(|id| mapping::id_candidates(id))
            .collect();
        let filter = mapping::filter_for(&mapping.field, values);
        let mut cursor = until_answered(|| coll.find(filter.clone())).await?;
        let mut found = HashMap::new();
        while let Some(doc) = cursor.try_next().await.map_err(|e| backend_error(&e))? {
            let id = mapping::field_value(&doc, &mapping.field).and_then(mapping::id_of_value);
            if let Some(id) = id {
                crate::cdc::remember(mapping, &doc);
                let id = mapping::canonical_id(&id).into_owned();
                found.entry(id).or_insert_with(|| codec::to_json(doc));
            }
        }
        Ok(found)
    })
    .await
}

/// Runs `work` until `deadline`; `TIMEOUT` when it runs out.
async fn within<T>(
    deadline: Deadline,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(deadline.at.into(), work)
        .await
        .unwrap_or_else(|_| Err(Error::Timeout(deadline.timeout_ms)))
}

/// Runs one driver operation until MongoDB answers it. A failure that only says MongoDB did
/// not answer (a stall: server selection or a connection timed out) is tried again, so the
/// caller's bound turns it into `TIMEOUT`, and a MongoDB that comes back in time still serves
/// the load. An answer, even an error or a refused connection, ends it (`BACKEND`).
async fn until_answered<T, F, Fut>(mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::IntoFuture<Output = mongodb::error::Result<T>>,
{
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if crate::unanswered::unanswered(&cause_of(&e)) => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(backend_error(&e)),
        }
    }
}

/// What `unanswered` needs to know of a driver error.
fn cause_of(e: &mongodb::error::Error) -> crate::unanswered::Cause<'_> {
    use crate::unanswered::Cause;
    use mongodb::error::ErrorKind;
    match &*e.kind {
        ErrorKind::Io(io) => Cause::Io(io.kind()),
        ErrorKind::ServerSelection { message, .. } => Cause::Selection(message),
        ErrorKind::ConnectionPoolCleared { message, .. } => Cause::PoolCleared(message),
        _ => Cause::Answered,
    }
}

/// A driver error as text fit for logs and replies: credentials removed, length bounded.
pub fn redact_error(e: &mongodb::error::Error) -> String {
    match backend_error(e) {
        Error::Backend(m) => m,
        other => other.to_string(),
    }
}

fn backend_error(e: &mongodb::error::Error) -> Error {
    let uri = backend().uri.clone();
    let mut msg = redact(&e.to_string(), &uri);
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

/// Byte range of `user:password` in a `mongodb://user:password@host` URI.
fn userinfo(uri: &str) -> Option<(usize, usize)> {
    let start = uri.find("://")? + 3;
    let hosts_end = uri[start..]
        .find(['/', '?'])
        .map_or(uri.len(), |i| start + i);
    let at = uri[start..hosts_end].rfind('@')? + start;
    Some((start, at))
}

/// Removes the URI's credentials (raw and percent-decoded) from a message.
pub fn redact(msg: &str, uri: &str) -> String {
    let mut out = msg.replace(uri, "<uri>");
    if let Some((start, at)) = userinfo(uri) {
        let info = &uri[start..at];
        let password = info.split_once(':').map_or("", |(_, p)| p);
        for secret in [
            info.to_owned(),
            password.to_owned(),
            percent_decode(password),
        ] {
            if secret.len() >= 2 {
                out = out.replace(&secret, "***");
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        let uri = "mongodb://alice:s%40cret@db1:27017,db2/app?authSource=admin";
        let msg = format!("auth failed for alice:s%40cret using s@cret at {uri}");
        let r = redact(&msg, uri);
        assert!(!r.contains("s%40cret") && !r.contains("s@cret"), "{r}");
        assert!(r.contains("<uri>"), "{r}");
        assert_eq!(redact("no secrets", "mongodb://h:1"), "no secrets");
    }

    #[test]
    fn uri_validation_does_not_echo_the_uri() {
        assert!(validate_uri("mongodb://127.0.0.1:27017").is_ok());
        assert!(validate_uri("mongodb://u:p@h/db?tls=true").is_ok());
        for bad in [
            "",
            "http://x",
            "mongodb://",
            "mongodb://u:topsecret@h:99999",
        ] {
            let e = validate_uri(bad).unwrap_err();
            assert!(e.starts_with("invalid MongoDB URI"), "{e}");
            assert!(!e.contains("topsecret"), "{e}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
