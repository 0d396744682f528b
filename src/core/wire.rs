//! MongoDB's OP_MSG framing, the wire protocol's one message kind since MongoDB 3.6: enough to
//! send `hello` and a `find` of one document and read their replies. Used by the inline load
//! (`engine/inline.rs`), whose `find` Redis's main thread sends and reads itself. Pure: bytes
//! in, documents out.

use mongodb::bson::{doc, Bson, Document};

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

/// The length of the whole message at the start of `buf`, or `None` while it has not all
/// arrived. An impossible length is an error: the stream cannot be read on.
pub fn whole_message(buf: &[u8]) -> Result<Option<usize>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = le_i32(buf);
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

/// Whether a `hello` reply comes from a server that answers reads sent to it without a read
/// preference: a primary, a standalone server or a mongos.
pub fn reads_here(reply: &Document) -> Result<(), String> {
    ok(reply)?;
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

/// The document a `find` reply holds, `None` for none. Anything else (an error reply, a shape
/// not seen before) is an error, for the caller to retry another way.
pub fn found(reply: Document) -> Result<Option<Document>, String> {
    ok(&reply)?;
    let cursor = reply.get_document("cursor").map_err(|e| e.to_string())?;
    let batch = cursor.get_array("firstBatch").map_err(|e| e.to_string())?;
    match batch.first() {
        None => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d.clone())),
        Some(other) => Err(format!("a batch of {:?}", other.element_type())),
    }
}

fn ok(reply: &Document) -> Result<(), String> {
    let ok = match reply.get("ok") {
        Some(Bson::Double(f)) => *f == 1.0,
        Some(Bson::Int32(i)) => *i == 1,
        Some(Bson::Int64(i)) => *i == 1,
        Some(Bson::Boolean(b)) => *b,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(reply
            .get_str("errmsg")
            .unwrap_or("the server answered ok: 0")
            .to_owned())
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
        let err = doc! { "ok": 0.0, "errmsg": "not authorized", "code": 13 };
        assert_eq!(found(err), Err("not authorized".into()));
        assert!(found(doc! { "ok": 1 }).is_err(), "no cursor");
    }

    #[test]
    fn reads_go_to_a_primary_a_standalone_or_a_mongos() {
        assert!(reads_here(&doc! { "isWritablePrimary": true, "ok": 1.0 }).is_ok());
        assert!(reads_here(&doc! { "ismaster": true, "ok": 1 }).is_ok());
        assert!(reads_here(&doc! { "msg": "isdbgrid", "ok": 1.0 }).is_ok());
        assert!(
            reads_here(&doc! { "isWritablePrimary": false, "secondary": true, "ok": 1.0 }).is_err()
        );
        assert!(reads_here(&doc! { "ok": 0.0 }).is_err());
    }
}
