//! Finding documents: by one id, or by many ids of one mapping in one `$in` query. Every
//! query is bounded by its load's deadline, and a driver error that only says MongoDB did not
//! answer is tried again until then (see `core/unanswered.rs`). Knows nothing of Redis.

use crate::core::deadline::Deadline;
use crate::core::error::Error;
use crate::core::mapping::{Mapping, Target};
use crate::core::unanswered::{unanswered, Cause};
use crate::core::wire;
use crate::mongo::client::{backend_error, client};
use futures_util::TryStreamExt;
use mongodb::action::Action;
use mongodb::bson::{Document, RawDocumentBuf};
use mongodb::Client;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Pause between two tries of a query whose server did not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Why a query failed, and whether MongoDB's error is one after which the driver tries a read
/// once more (a dropped connection, a step-down, a shutdown: Retryable Reads): then the fault
/// outlasted the driver's retry, and the next query would most likely meet it too.
#[derive(Debug, Clone)]
pub struct Failed {
    pub error: Error,
    pub retried: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            retried: false,
        }
    }
}

impl From<Failed> for Error {
    fn from(f: Failed) -> Error {
        f.error
    }
}

/// Finds the document a key stands for (with the mapping's projection); `None` when there is
/// none. The engine turns it into a value (`engine/load: value_of`). Bounded by `deadline`: `TIMEOUT` when MongoDB
/// has not answered by then, whatever the driver was doing.
pub async fn find_one(target: &Target, deadline: Deadline) -> Result<Option<Document>, Failed> {
    within(deadline, async {
        let client = client().await?;
        find_one_of(&client, target).await
    })
    .await
}

/// `find_one` on a client of the caller's (the main thread's, `mongo/main_runtime.rs`), the
/// document left undecoded: the caller decides on which thread a large one is decoded.
pub async fn find_one_raw_on(
    client: &Client,
    target: &Target,
    deadline: Deadline,
) -> Result<Option<RawDocumentBuf>, Failed> {
    within(deadline, find_one_of(client, target)).await
}

/// The key's document on `client`, read as a `T`.
async fn find_one_of<T>(client: &Client, target: &Target) -> Result<Option<T>, Failed>
where
    T: serde::de::DeserializeOwned + Send + Sync,
{
    let m = &target.mapping;
    let coll = client.database(&m.db).collection::<T>(&m.collection);
    let projection = m.projection();
    until_answered(|| {
        coll.find_one(target.filter())
            .optional(projection.clone(), |f, p| f.projection(p))
    })
    .await
}

/// The documents a `many` mapping's key stands for: `find(filter).sort(...).limit(...)` with
/// the mapping's projection. Bounded by `deadline` as `find_one` is.
pub async fn find_list(target: &Target, deadline: Deadline) -> Result<Vec<Document>, Error> {
    within(deadline, async {
        let client = client().await?;
        let m = &target.mapping;
        let many = m.many.clone().unwrap_or_default();
        let coll = client.database(&m.db).collection::<Document>(&m.collection);
        let projection = m.projection();
        let mut cursor = until_answered(|| {
            coll.find(target.filter())
                .sort(many.sort_doc())
                .limit(many.limit)
                .batch_size(many.limit.min(1000) as u32)
                .optional(projection.clone(), |f, p| f.projection(p))
        })
        .await?;
        let mut docs = Vec::new();
        while let Some(doc) = cursor.try_next().await.map_err(|e| backend_error(&e))? {
            docs.push(doc);
        }
        Ok(docs)
    })
    .await
}

/// Finds the documents of many ids of one mapping: one `$in` query, or for a compound key one
/// per distinct leading parts (`KeyFields::batch_filters`), run at once; each found document by
/// its canonical id (`KeyFields::canonical`). Bounded by `deadline` as `find_one` is.
pub async fn find_many(
    mapping: &Mapping,
    ids: &[&str],
    deadline: Deadline,
) -> Result<HashMap<String, Document>, Failed> {
    within(deadline, async {
        let client = client().await?;
        let coll = client
            .database(&mapping.db)
            .collection::<Document>(&mapping.collection);
        let projection = mapping.projection();
        let queries = mapping.key.batch_filters(ids).into_iter().map(|filter| {
            let (coll, projection) = (&coll, &projection);
            async move {
                let mut cursor = until_answered(|| {
                    coll.find(filter.clone())
                        .optional(projection.clone(), |f, p| f.projection(p))
                })
                .await?;
                let mut docs = Vec::new();
                while let Some(doc) = cursor.try_next().await.map_err(|e| backend_error(&e))? {
                    docs.push(doc);
                }
                Ok::<_, Failed>(docs)
            }
        });
        let mut found = HashMap::new();
        for doc in futures_util::future::try_join_all(queries)
            .await?
            .into_iter()
            .flatten()
        {
            if let Some(id) = mapping.key.id_of(&doc) {
                let id = mapping.key.canonical(&id).into_owned();
                found.entry(id).or_insert(doc);
            }
        }
        Ok(found)
    })
    .await
}

/// Runs `work` until `deadline`; `TIMEOUT` when it runs out.
async fn within<T, E: From<Error>>(
    deadline: Deadline,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout_at(deadline.at.into(), work)
        .await
        .unwrap_or_else(|_| Err(Error::Timeout(deadline.timeout_ms).into()))
}

/// Runs one driver operation until MongoDB answers it. A failure that only says MongoDB did
/// not answer (a stall: server selection or a connection timed out) is tried again, so the
/// caller's bound turns it into `TIMEOUT`, and a MongoDB that comes back in time still serves
/// the load. An answer, even an error or a refused connection, ends it (`BACKEND`).
async fn until_answered<T, F, Fut>(mut op: F) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::IntoFuture<Output = mongodb::error::Result<T>>,
{
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if unanswered(&cause_of(&e)) => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => {
                return Err(Failed {
                    error: backend_error(&e),
                    retried: read_retryable(&e),
                })
            }
        }
    }
}

/// Whether the driver tries a read again after `e` (the Retryable Reads specification: a
/// network error, or one of its codes).
fn read_retryable(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    match &*e.kind {
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::Command(c) => wire::retryable_read_code(c.code),
        _ => false,
    }
}

/// What `unanswered` needs to know of a driver error.
fn cause_of(e: &mongodb::error::Error) -> Cause<'_> {
    use mongodb::error::ErrorKind;
    match &*e.kind {
        ErrorKind::Io(io) => Cause::Io(io.kind()),
        ErrorKind::ServerSelection { message, .. } => Cause::Selection(message),
        ErrorKind::ConnectionPoolCleared { message, .. } => Cause::PoolCleared(message),
        _ => Cause::Answered,
    }
}
