//! A minimal MongoDB stand-in for `make bench`: speaks just enough of the wire protocol
//! (OP_MSG) for the Rust driver to connect and run `find`, and answers every `find` at once
//! with a made-up todo. It lets the bench see the module's own cost of a miss without the
//! noise of a real server: module overhead = `RT.GET` miss minus a direct `find_one`, both
//! against this stand-in.
//!
//! What it answers:
//! - `hello` / `isMaster`: a standalone server, wire version 17, no streaming monitoring;
//! - `find` with a filter `{FIELD: N}` or `{FIELD: {$in: [..]}}`: one document
//!   `{_id: N, FIELD: N, name: "Todo N", done: false}` per distinct number in the filter
//!   (strings of digits count), in one batch with cursor id 0;
//! - anything else (`ping`, `endSessions`, `killCursors`, ...): `{ok: 1}`, except `aggregate`
//!   (change streams), answered with an error: run the module with `readthrough.invalidation off`.
//!
//! Usage: mongo_standin --port N

use mongodb::bson::{doc, Bson, Document};
use std::io::Cursor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OP_MSG: i32 = 2013;

fn main() {
    let mut args = std::env::args().skip(1);
    let port = match (args.next().as_deref(), args.next()) {
        (Some("--port"), Some(p)) => p.parse::<u16>().unwrap_or_else(|_| usage()),
        _ => usage(),
    };
    // One thread, as one mongod worker would answer one connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on port {port}: {e}")));
        let mut connection_id = 0;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            connection_id += 1;
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, connection_id));
        }
    });
}

fn usage() -> ! {
    fail("usage: mongo_standin --port N")
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}

/// Answers one connection's messages in order until it closes or sends something that is not
/// an uncompressed OP_MSG.
async fn serve(mut stream: TcpStream, connection_id: i32) {
    let mut header = [0u8; 16];
    let mut next_id = 1;
    while stream.read_exact(&mut header).await.is_ok() {
        let len = i32::from_le_bytes(header[0..4].try_into().unwrap());
        let request_id = i32::from_le_bytes(header[4..8].try_into().unwrap());
        let op = i32::from_le_bytes(header[12..16].try_into().unwrap());
        let mut body = vec![0u8; (len as usize).saturating_sub(16)];
        if op != OP_MSG || stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let Some(command) = command_of(&body) else {
            return;
        };
        let reply = answer(&command, connection_id);
        if stream
            .write_all(&message(next_id, request_id, &reply))
            .await
            .is_err()
        {
            return;
        }
        next_id += 1;
    }
}

/// The command document of an OP_MSG body: flag bits, then sections; the kind-0 section is the
/// command (kind-1 document sequences, used by writes, are skipped).
fn command_of(body: &[u8]) -> Option<Document> {
    let mut at = 4;
    while at < body.len() {
        let kind = body[at];
        at += 1;
        let size = i32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        if kind == 0 {
            return Document::from_reader(Cursor::new(body.get(at..at + size)?)).ok();
        }
        at += size;
    }
    None
}

/// An OP_MSG reply: header, flag bits 0, one kind-0 section.
fn message(request_id: i32, response_to: i32, reply: &Document) -> Vec<u8> {
    let mut doc = Vec::new();
    reply.to_writer(&mut doc).expect("a reply document encodes");
    let len = 16 + 4 + 1 + doc.len();
    let mut out = Vec::with_capacity(len);
    for n in [len as i32, request_id, response_to, OP_MSG, 0] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.push(0);
    out.extend_from_slice(&doc);
    out
}

fn answer(command: &Document, connection_id: i32) -> Document {
    let name = command.keys().next().map(String::as_str).unwrap_or("");
    match name {
        "hello" | "isMaster" | "ismaster" => doc! {
            "helloOk": true,
            "isWritablePrimary": true,
            "ismaster": true,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
            "localTime": mongodb::bson::DateTime::now(),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": connection_id,
            "minWireVersion": 0,
            "maxWireVersion": 17,
            "readOnly": false,
            "ok": 1.0,
        },
        "find" => {
            let coll = command.get_str("find").unwrap_or("todos");
            let db = command.get_str("$db").unwrap_or("test");
            let filter = command.get_document("filter").cloned().unwrap_or_default();
            let docs: Vec<Bson> = ids_in(&filter)
                .into_iter()
                .map(|(field, n)| {
                    Bson::Document(doc! {
                        "_id": n, field: n, "name": format!("Todo {n}"), "done": false,
                    })
                })
                .collect();
            doc! {
                "cursor": { "firstBatch": docs, "id": 0_i64, "ns": format!("{db}.{coll}") },
                "ok": 1.0,
            }
        }
        "aggregate" => doc! {
            "ok": 0.0,
            "errmsg": "the stand-in has no change streams",
            "code": 40573,
            "codeName": "Location40573",
        },
        _ => doc! { "ok": 1.0 },
    }
}

/// The distinct numbers a filter asks for, with the field they are asked of: `{f: 5}`,
/// `{f: "5"}` or `{f: {$in: [...]}}`.
fn ids_in(filter: &Document) -> Vec<(String, i64)> {
    let Some((field, wanted)) = filter.iter().next() else {
        return Vec::new();
    };
    let values: Vec<&Bson> = match wanted {
        Bson::Document(d) => match d.get_array("$in") {
            Ok(a) => a.iter().collect(),
            Err(_) => Vec::new(),
        },
        v => vec![v],
    };
    let mut ids: Vec<i64> = values
        .into_iter()
        .filter_map(|v| match v {
            Bson::Int32(n) => Some(*n as i64),
            Bson::Int64(n) => Some(*n),
            Bson::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(|n| (field.clone(), n)).collect()
}
