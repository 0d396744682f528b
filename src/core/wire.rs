//! MongoDB's OP_MSG framing, the wire protocol's one message kind since MongoDB 3.6: enough to
//! send `hello` and a `find` of one document and read their replies, and to tell an answer
//! from an error the way the official driver does. Used by the inline load
//! (`engine/load/inline.rs`), whose `find` Redis's main thread sends and reads itself. Pure: bytes
//! in, documents out.

use bson::{doc, Bson, Document};

const OP_MSG: i32 = 2013;
const HEADER: usize = 16;
/// flagBits: a CRC-32C follows the sections.
const CHECKSUM_PRESENT: u32 = 1;
/// MongoDB's own bound on a message (`maxMessageSizeBytes`).
pub const MAX_MESSAGE: usize = 48_000_000;

/// One OP_MSG with `body` as its one section.
pub fn encode(request_id: i32, body: &Document) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(0); // section kind 0: the body
    body.to_writer(&mut out)
        .expect("a document of plain values always serializes");
    let len = out.len() as i32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&request_id.to_le_bytes());
    out[12..16].copy_from_slice(&OP_MSG.to_le_bytes());
    out
}

fn le_i32(b: &[u8]) -> i32 {
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The length the message at the start of `buf` says it has (its header's first field), once
/// those 4 bytes have arrived; unchecked.
pub fn announced_len(buf: &[u8]) -> Option<i32> {
    buf.get(..4).map(le_i32)
}

/// The length of the whole message at the start of `buf`, or `None` while it has not all
/// arrived. An impossible length is an error: the stream cannot be read on.
pub fn whole_message(buf: &[u8]) -> Result<Option<usize>, String> {
    let Some(len) = announced_len(buf) else {
        return Ok(None);
    };
    if len < HEADER as i32 + 5 || len as usize > MAX_MESSAGE {
        return Err(format!("a message of {len} bytes"));
    }
    let len = len as usize;
    Ok((buf.len() >= len).then_some(len))
}

/// The request a whole message answers (`responseTo`) and its body.
pub fn decode(msg: &[u8]) -> Result<(i32, Document), String> {
    if msg.len() < HEADER + 5 {
        return Err("a message shorter than its header".into());
    }
    let op = le_i32(&msg[12..]);
    if op != OP_MSG {
        return Err(format!("opcode {op}, not OP_MSG"));
    }
    let response_to = le_i32(&msg[8..]);
    let flags = u32::from_le_bytes([msg[16], msg[17], msg[18], msg[19]]);
    let end = if flags & CHECKSUM_PRESENT != 0 {
        msg.len().checked_sub(4).ok_or("no room for the checksum")?
    } else {
        msg.len()
    };
    let mut at = HEADER + 4;
    // The body is the one kind-0 section; a kind-1 section (a document sequence) is skipped.
    while at < end {
        let kind = msg[at];
        at += 1;
        let size = msg
            .get(at..at + 4)
            .map(le_i32)
            .filter(|s| *s >= 5 && at + *s as usize <= end)
            .ok_or("a section that overruns the message")? as usize;
        if kind == 0 {
            let body = Document::from_reader(&msg[at..at + size]).map_err(|e| e.to_string())?;
            return Ok((response_to, body));
        }
        if kind != 1 {
            return Err(format!("section kind {kind}"));
        }
        at += size;
    }
    Err("no body section".into())
}

/// `hello` as the first command on a new connection.
pub fn hello() -> Document {
    doc! { "hello": 1, "$db": "admin" }
}

/// The oldest wire version the official driver talks to (MongoDB 4.4): an older server is left
/// to the driver, which refuses it with its own error.
pub const MIN_WIRE_VERSION: i32 = 9;

/// Whether a `hello` reply comes from a server that answers reads sent to it without a read
/// preference (a primary, a standalone server or a mongos), of the replica set `set_name` when
/// the URI names one, and new enough for the driver.
pub fn reads_here(reply: &Document, set_name: Option<&str>) -> Result<(), String> {
    ok(reply).map_err(NoAnswer::into_text)?;
    let wire = int(reply, "maxWireVersion");
    if wire < MIN_WIRE_VERSION {
        return Err(format!(
            "wire version {wire}, older than the driver's {MIN_WIRE_VERSION}"
        ));
    }
    if let Some(want) = set_name {
        match reply.get_str("setName") {
            Ok(name) if name == want => {}
            Ok(name) => return Err(format!("replica set '{name}', not '{want}'")),
            Err(_) => return Err(format!("not a member of replica set '{want}'")),
        }
    }
    let primary = reply.get_bool("isWritablePrimary").unwrap_or(false)
        || reply.get_bool("ismaster").unwrap_or(false);
    if primary || reply.get_str("msg") == Ok("isdbgrid") {
        Ok(())
    } else {
        Err("the server is not a primary".into())
    }
}

/// `find` of at most one document, in one batch.
pub fn find_one(db: &str, coll: &str, filter: Document, projection: Option<Document>) -> Document {
    let mut cmd = doc! { "find": coll, "filter": filter };
    if let Some(p) = projection {
        cmd.insert("projection", p);
    }
    cmd.insert("limit", 1i64);
    cmd.insert("singleBatch", true);
    cmd.insert("$db", db);
    cmd
}

/// A `find` of at most `limit` documents in `sort` order, all asked for in the first batch.
/// Without `singleBatch`: a result the server cannot fit in one batch (16 MB) leaves its cursor
/// open, which `found_all` reports, rather than being cut short without a word.
pub fn find_list(
    db: &str,
    coll: &str,
    filter: Document,
    projection: Option<Document>,
    sort: Document,
    limit: i64,
) -> Document {
    let mut cmd = doc! { "find": coll, "filter": filter, "sort": sort };
    if let Some(p) = projection {
        cmd.insert("projection", p);
    }
    cmd.insert("limit", limit);
    cmd.insert("batchSize", limit);
    cmd.insert("$db", db);
    cmd
}

/// Error codes after which the driver retries a read once (the Retryable Reads
/// specification's list: the server is shutting down, stepped down, or not reachable).
const RETRYABLE_READ_CODES: [i32; 13] = [
    11600, 11602, 10107, 13435, 13436, 189, 91, 7, 6, 89, 9001, 134, 262,
];

/// Why a reply holds no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// MongoDB answered `ok: 0`: its code, and the text the driver would give it.
    Refused { code: i32, text: String },
    /// A reply of a shape not seen before.
    Odd(String),
}

/// Whether MongoDB's error `code` says the server is only passing through a state (stepping
/// down, shutting down, unreachable): the driver would try a read again after it.
pub fn retryable_read_code(code: i32) -> bool {
    RETRYABLE_READ_CODES.contains(&code)
}

impl NoAnswer {
    /// Whether the driver would try the read again (once) after this.
    pub fn retryable(&self) -> bool {
        matches!(self, NoAnswer::Refused { code, .. } if retryable_read_code(*code))
    }

    /// What it says, for a log.
    pub fn into_text(self) -> String {
        match self {
            NoAnswer::Refused { text, .. } | NoAnswer::Odd(text) => text,
        }
    }
}

/// The document a `find` reply holds, `None` for none.
pub fn found(reply: Document) -> Result<Option<Document>, NoAnswer> {
    ok(&reply)?;
    let odd = |e: bson::document::ValueAccessError| NoAnswer::Odd(e.to_string());
    let cursor = reply.get_document("cursor").map_err(odd)?;
    let batch = cursor.get_array("firstBatch").map_err(odd)?;
    match batch.first() {
        None => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d.clone())),
        Some(other) => Err(NoAnswer::Odd(format!(
            "a batch of {:?}",
            other.element_type()
        ))),
    }
}

/// Every document of a `find_list` reply; `Odd` when the server kept a cursor open (the
/// result did not fit one batch: the driver reads it with `getMore`).
pub fn found_all(reply: Document) -> Result<Vec<Document>, NoAnswer> {
    ok(&reply)?;
    let odd = |e: bson::document::ValueAccessError| NoAnswer::Odd(e.to_string());
    let cursor = reply.get_document("cursor").map_err(odd)?;
    if !matches!(cursor.get("id"), Some(Bson::Int64(0) | Bson::Int32(0))) {
        return Err(NoAnswer::Odd("a result larger than one batch".into()));
    }
    cursor
        .get_array("firstBatch")
        .map_err(odd)?
        .iter()
        .map(|d| match d {
            Bson::Document(d) => Ok(d.clone()),
            other => Err(NoAnswer::Odd(format!(
                "a batch of {:?}",
                other.element_type()
            ))),
        })
        .collect()
}

/// An `ok: 0` reply as the driver words a command error, so a client sees the same text
/// either way.
fn ok(reply: &Document) -> Result<(), NoAnswer> {
    let ok = match reply.get("ok") {
        Some(Bson::Double(f)) => *f == 1.0,
        Some(Bson::Int32(i)) => *i == 1,
        Some(Bson::Int64(i)) => *i == 1,
        Some(Bson::Boolean(b)) => *b,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let code = int(reply, "code");
    let message = reply
        .get_str("errmsg")
        .unwrap_or("the server answered ok: 0");
    let name = reply.get_str("codeName").unwrap_or("");
    Err(NoAnswer::Refused {
        code,
        text: format!("Command failed: Error code {code} ({name}): {message}"),
    })
}

/// A whole number field of a reply, whichever BSON number type carries it; 0 if none.
fn int(reply: &Document, key: &str) -> i32 {
    match reply.get(key) {
        Some(Bson::Int32(v)) => *v,
        Some(Bson::Int64(v)) => *v as i32,
        Some(Bson::Double(v)) => *v as i32,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as a server frames it: header, flags, body (and a checksum if `crc`).
    fn reply(response_to: i32, body: &Document, crc: bool) -> Vec<u8> {
        let mut m = encode(7, body);
        m[8..12].copy_from_slice(&response_to.to_le_bytes());
        if crc {
            m[16..20].copy_from_slice(&CHECKSUM_PRESENT.to_le_bytes());
            m.extend_from_slice(&[0, 0, 0, 0]);
            let len = m.len() as i32;
            m[0..4].copy_from_slice(&len.to_le_bytes());
        }
        m
    }

    #[test]
    fn a_message_round_trips() {
        let cmd = find_one(
            "test",
            "todos",
            doc! { "id": "1" },
            Some(doc! { "name": 1 }),
        );
        let m = encode(42, &cmd);
        assert_eq!(whole_message(&m), Ok(Some(m.len())));
        assert_eq!(le_i32(&m[4..]), 42);
        let (_, body) = decode(&m).unwrap();
        assert_eq!(body, cmd);
        assert_eq!(body.get_i64("limit"), Ok(1));
        assert_eq!(body.get_str("$db"), Ok("test"));
    }

    #[test]
    fn a_message_is_whole_only_once_all_of_it_arrived() {
        let m = reply(3, &doc! { "ok": 1.0 }, false);
        assert_eq!(whole_message(&m[..3]), Ok(None));
        assert_eq!(whole_message(&m[..m.len() - 1]), Ok(None));
        let mut two = m.clone();
        two.extend_from_slice(&m);
        assert_eq!(whole_message(&two), Ok(Some(m.len())));
        assert!(
            whole_message(&[1, 0, 0, 0]).is_err(),
            "too short to be a message"
        );
        assert!(whole_message(&i32::MAX.to_le_bytes()).is_err());
    }

    #[test]
    fn a_checksum_and_a_document_sequence_are_stepped_over() {
        let body = doc! { "ok": 1, "cursor": { "firstBatch": [ { "id": "5" } ] } };
        let (to, d) = decode(&reply(9, &body, true)).unwrap();
        assert_eq!((to, d), (9, body.clone()));
        // A kind-1 section before the body.
        let mut m = reply(9, &body, false);
        let mut seq = vec![1u8];
        let mut docs = Vec::new();
        doc! { "x": 1 }.to_writer(&mut docs).unwrap();
        let ident = b"documents\0";
        seq.extend_from_slice(&((4 + ident.len() + docs.len()) as i32).to_le_bytes());
        seq.extend_from_slice(ident);
        seq.extend_from_slice(&docs);
        m.splice(HEADER + 4..HEADER + 4, seq);
        let len = m.len() as i32;
        m[0..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(decode(&m).unwrap().1, body);
    }

    #[test]
    fn odd_messages_are_errors_not_panics() {
        let mut m = reply(1, &doc! { "ok": 1 }, false);
        m[12..16].copy_from_slice(&1i32.to_le_bytes());
        assert!(decode(&m).unwrap_err().contains("opcode 1"));
        let mut m = reply(1, &doc! { "ok": 1 }, false);
        m[HEADER + 5..HEADER + 9].copy_from_slice(&1000i32.to_le_bytes());
        assert!(decode(&m).is_err());
        let m = reply(1, &doc! { "ok": 1 }, false);
        assert!(decode(&m[..HEADER + 4]).is_err());
    }

    #[test]
    fn a_find_reply_gives_its_document_none_or_an_error() {
        let d = doc! { "_id": 1, "id": "5" };
        let hit = doc! { "cursor": { "firstBatch": [ d.clone() ], "id": 0i64 }, "ok": 1.0 };
        assert_eq!(found(hit), Ok(Some(d)));
        let miss = doc! { "cursor": { "firstBatch": [], "id": 0i64 }, "ok": 1.0 };
        assert_eq!(found(miss), Ok(None));
        let err =
            doc! { "ok": 0.0, "errmsg": "not authorized", "code": 13, "codeName": "Unauthorized" };
        let refused = found(err).unwrap_err();
        assert_eq!(
            refused,
            NoAnswer::Refused {
                code: 13,
                text: "Command failed: Error code 13 (Unauthorized): not authorized".into()
            }
        );
        assert!(!refused.retryable(), "the driver answers it at once");
        let stepped_down = doc! { "ok": 0.0, "errmsg": "not primary", "code": 10107 };
        assert!(found(stepped_down).unwrap_err().retryable());
        assert!(
            matches!(found(doc! { "ok": 1 }), Err(NoAnswer::Odd(_))),
            "no cursor"
        );
    }

    #[test]
    fn a_list_reply_is_every_document_or_odd_when_a_cursor_stays_open() {
        let cmd = find_list(
            "d",
            "c",
            doc! {"u": "42"},
            None,
            doc! {"t": -1, "_id": 1},
            50,
        );
        assert_eq!(cmd.get_i64("limit"), Ok(50));
        assert_eq!(cmd.get_i64("batchSize"), Ok(50));
        assert!(!cmd.contains_key("singleBatch"));
        let reply = |id: i64, batch: Vec<Bson>| {
            doc! { "ok": 1.0, "cursor": { "id": id, "ns": "d.c", "firstBatch": batch } }
        };
        let docs = vec![
            Bson::Document(doc! {"_id": 1}),
            Bson::Document(doc! {"_id": 2}),
        ];
        assert_eq!(found_all(reply(0, docs)).unwrap().len(), 2);
        assert_eq!(found_all(reply(0, vec![])), Ok(vec![]));
        assert!(matches!(
            found_all(reply(77, vec![])),
            Err(NoAnswer::Odd(_))
        ));
        assert!(matches!(
            found_all(doc! {"ok": 0.0, "code": 13, "errmsg": "no"}),
            Err(NoAnswer::Refused { .. })
        ));
    }

    #[test]
    fn reads_go_to_a_primary_a_standalone_or_a_mongos_of_the_set_the_uri_names() {
        let w = MIN_WIRE_VERSION;
        let primary =
            doc! { "isWritablePrimary": true, "maxWireVersion": w, "setName": "rs", "ok": 1.0 };
        assert!(reads_here(&primary, None).is_ok());
        assert!(reads_here(&primary, Some("rs")).is_ok());
        assert_eq!(
            reads_here(&primary, Some("other")),
            Err("replica set 'rs', not 'other'".into())
        );
        let standalone = doc! { "ismaster": true, "maxWireVersion": 21, "ok": 1 };
        assert!(reads_here(&standalone, None).is_ok());
        assert!(
            reads_here(&standalone, Some("rs")).is_err(),
            "no set at all"
        );
        assert!(reads_here(
            &doc! { "msg": "isdbgrid", "maxWireVersion": w, "ok": 1.0 },
            None
        )
        .is_ok());
        let secondary =
            doc! { "isWritablePrimary": false, "secondary": true, "maxWireVersion": w, "ok": 1.0 };
        assert!(reads_here(&secondary, None).is_err());
        let old = doc! { "isWritablePrimary": true, "maxWireVersion": 8, "ok": 1.0 };
        assert_eq!(
            reads_here(&old, None),
            Err("wire version 8, older than the driver's 9".into())
        );
        assert!(reads_here(&doc! { "ok": 0.0 }, None).is_err());
    }
}
