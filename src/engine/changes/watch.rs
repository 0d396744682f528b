//! The loop of one watcher: open the change stream (resuming from the saved token), hand each
//! event to `apply`, reconnect with backoff when MongoDB goes away, stop when the
//! configuration it was started for changes. A panic while handling an event is caught: the
//! watcher logs it and opens the stream again from the last saved token.

use super::{apply, current, forward, is_cluster, tokens, topology, Watcher, RESUME_FAILURES};
use crate::core::mapping::Mapping;
use crate::core::resume_token::{self, START_AFTER};
use crate::core::wire;
use crate::engine::store;
use crate::mongo::client;
use crate::mongo::runtime;
use crate::redis::gil::Gil;
use futures_util::FutureExt;
use mongodb::bson::Document;
use mongodb::change_stream::event::{OperationType, ResumeToken};
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub async fn watch(w: Arc<Watcher>, maps: Vec<Arc<Mapping>>, gen: u64) {
    if maps.is_empty() {
        return;
    }
    let (db, coll) = (maps[0].db.clone(), maps[0].collection.clone());
    if is_cluster() {
        runtime::spawn(ticks(w.ns.clone(), gen));
    }
    let mut backoff = Duration::from_millis(100);
    let mut logged = false;
    while current(gen) {
        w.set("connecting");
        let client = match client::client().await {
            Ok(c) => c,
            Err(e) => {
                log_once(&mut logged, &format!("watcher {}: {e}", w.ns));
                w.set("reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // After an invalidate event the stream can only be restarted with `startAfter`.
        let Ok(saved) = tokens::read_token(&w.ns).await else {
            // Redis refused the read (a cluster not up yet): wait rather than lose the token.
            w.set("waiting for redis");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        };
        let (start_after, saved) = match saved.as_deref().and_then(|s| s.strip_prefix(START_AFTER))
        {
            Some(rest) => (true, Some(rest.to_owned())),
            None => (false, saved),
        };
        let token = saved
            .as_deref()
            .and_then(resume_token::parse)
            .and_then(|b| mongodb::bson::from_bson::<ResumeToken>(b).ok());
        let c = client.database(&db).collection::<Document>(&coll);
        let mut watch = c
            .watch()
            .full_document(FullDocumentType::UpdateLookup)
            .full_document_before_change(FullDocumentBeforeChangeType::WhenAvailable)
            .max_await_time(Duration::from_millis(500));
        watch = match (&token, start_after) {
            (Some(t), true) => watch.start_after(t.clone()),
            (t, _) => watch.resume_after(t.clone()),
        };
        let opened = watch.await;
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) if token.is_some() && refuses_token(&e) => {
                // MongoDB refuses the saved token (history rolled off the oplog, a new
                // collection): events may have been missed, so nothing cached can be trusted.
                RESUME_FAILURES.fetch_add(1, Ordering::Relaxed);
                log(&format!(
                    "watcher {}: cannot resume the change stream ({}); removing the cached keys of {} and starting afresh",
                    w.ns,
                    client::redact_error(&e),
                    w.prefixes
                ));
                for m in &maps {
                    apply::purge(&m.prefix).await;
                }
                tokens::forget_token(&w.ns).await;
                continue;
            }
            Err(e) => {
                log_once(
                    &mut logged,
                    &format!("watcher {}: {}", w.ns, client::redact_error(&e)),
                );
                w.set("reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if logged {
            log(&format!("watcher {}: connected again", w.ns));
        }
        logged = false;
        backoff = Duration::from_millis(100);
        w.set("watching");
        while current(gen) {
            let next = AssertUnwindSafe(stream.next_if_any()).catch_unwind().await;
            match next {
                Ok(Ok(Some(ev))) => {
                    let invalidated = ev.operation_type == OperationType::Invalidate;
                    if !current(gen) {
                        break; // reconfigured: this event is for the next watcher
                    }
                    let handled = AssertUnwindSafe(apply::handle(&w, &maps, ev, gen))
                        .catch_unwind()
                        .await;
                    if matches!(handled, Ok(false)) {
                        // Redis refused the token (a cluster down): open again from the last one.
                        log_once(
                            &mut logged,
                            &format!(
                                "watcher {}: Redis refused the resume token (is the cluster \
                                 down?); opening the stream again from the last one saved",
                                w.ns
                            ),
                        );
                        w.set("waiting for redis");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        break;
                    }
                    if handled.is_err() {
                        // The event may be lost (its token was not saved, and a stream opened
                        // without a token starts from now): nothing cached can be trusted.
                        log(&format!(
                            "watcher {}: caught a panic while applying an event; removing the \
                             cached keys of {} and opening the stream again",
                            w.ns, w.prefixes
                        ));
                        w.set("reconnecting");
                        for m in &maps {
                            apply::purge(&m.prefix).await;
                        }
                        tokio::time::sleep(backoff).await;
                        break;
                    }
                    if invalidated {
                        break; // the stream is closed; open a new one
                    }
                }
                Ok(Ok(None)) if stream.is_alive() => {}
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    log_once(
                        &mut logged,
                        &format!(
                            "watcher {}: change stream lost ({}); reconnecting",
                            w.ns,
                            client::redact_error(&e)
                        ),
                    );
                    w.set("reconnecting");
                    tokio::time::sleep(backoff).await;
                    break;
                }
                Err(_) => {
                    log(&format!("watcher {}: caught a panic; restarting", w.ns));
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}

/// In a cluster, while this watcher runs: every second, tells the other masters how many
/// messages of `ns` each was sent (`forward.rs`).
async fn ticks(ns: String, gen: u64) {
    while current(gen) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(map) = topology::current() else {
            continue;
        };
        let ns = ns.clone();
        store::with_gil(move |gil: &Gil| {
            if current(gen) {
                forward::tick(gil, &map, &ns)
            }
        })
        .await;
    }
}

/// Whether opening a stream from a saved token failed because of the token: a command error
/// that is not one of the transient ones (a step-down, a shutdown, an unreachable host, after
/// which the stream is opened again from the same token). Any other command error counts, so
/// that a token error with a code not listed here still purges rather than leaving the cache
/// unwatched.
fn refuses_token(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        mongodb::error::ErrorKind::Command(c) => !wire::retryable_read_code(c.code),
        _ => false,
    }
}

fn log(msg: &str) {
    redis_module::logging::log_warning(format!("readthrough: {msg}").as_str());
}

fn log_once(logged: &mut bool, msg: &str) {
    if !*logged {
        log(msg);
        *logged = true;
    }
}
