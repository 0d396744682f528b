//! What a collection's watcher sends other masters over the cluster bus, and its bytes. A
//! message carries the collection, the sender's epoch (drawn once per process) and a sequence
//! number counted per sender, collection and receiver, so that a receiver sees any message the
//! bus dropped (`core/bus_sequence.rs`). `Changes` holds the key actions for the receiver's
//! slots; `Tick` (sent every second) only says how many messages were sent, so a receiver sees
//! a drop even when nothing follows it. Pure; the layout is private to the module (every node
//! of a cluster runs the same build, and a message that does not decode is counted as a gap).

use crate::core::format::{Loaded, Value};
use crate::core::invalidation::Action;

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Key actions for the receiver's slots, and, for a delete the sender could not place, the
    /// deleted document's `{_id}` as BSON bytes: the receiver places it with its own index.
    Changes {
        acts: Vec<Action>,
        unplaced: Option<Vec<u8>>,
    },
    Tick,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `DB.COLL`.
    pub ns: String,
    pub epoch: u64,
    pub seq: u64,
    pub body: Body,
}

pub fn encode(m: &Message) -> Vec<u8> {
    let mut out = vec![VERSION];
    out.push(match m.body {
        Body::Changes { .. } => 0,
        Body::Tick => 1,
    });
    put_str(&mut out, &m.ns);
    out.extend(m.epoch.to_le_bytes());
    out.extend(m.seq.to_le_bytes());
    if let Body::Changes { acts, unplaced } = &m.body {
        put_len(&mut out, acts.len());
        for a in acts {
            put_action(&mut out, a);
        }
        match unplaced {
            Some(id) => {
                out.push(1);
                put_bytes(&mut out, id);
            }
            None => out.push(0),
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Message, String> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err("unknown message version".into());
    }
    let kind = r.u8()?;
    let ns = r.str()?;
    let epoch = r.u64()?;
    let seq = r.u64()?;
    let body = match kind {
        0 => {
            let n = r.len()?;
            let mut acts = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                acts.push(r.action()?);
            }
            let unplaced = match r.u8()? {
                0 => None,
                _ => Some(r.bytes()?.to_vec()),
            };
            Body::Changes { acts, unplaced }
        }
        1 => Body::Tick,
        k => return Err(format!("unknown message kind {k}")),
    };
    if !r.0.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(Message {
        ns,
        epoch,
        seq,
        body,
    })
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend((n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_action(out: &mut Vec<u8>, a: &Action) {
    match a {
        Action::Delete(k) => {
            out.push(0);
            put_str(out, k);
        }
        Action::Set(k, loaded) => {
            out.push(1);
            put_str(out, k);
            match &loaded.value {
                Value::String(s) => {
                    out.push(0);
                    put_str(out, s);
                }
                Value::Json(s) => {
                    out.push(1);
                    put_str(out, s);
                }
                Value::Hash(pairs) => {
                    out.push(2);
                    put_len(out, pairs.len());
                    for (f, v) in pairs {
                        put_str(out, f);
                        put_str(out, v);
                    }
                }
            }
            match loaded.expire_at_ms {
                Some(t) => {
                    out.push(1);
                    out.extend(t.to_le_bytes());
                }
                None => out.push(0),
            }
        }
        Action::Forget(k) => {
            out.push(2);
            put_str(out, k);
        }
        Action::Reload(k) => {
            out.push(3);
            put_str(out, k);
        }
        Action::Purge(p) => {
            out.push(4);
            put_str(out, p);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated message".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn len(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "text not UTF-8".to_string())
    }

    fn action(&mut self) -> Result<Action, String> {
        Ok(match self.u8()? {
            0 => Action::Delete(self.str()?),
            1 => {
                let key = self.str()?;
                let value = match self.u8()? {
                    0 => Value::String(self.str()?),
                    1 => Value::Json(self.str()?),
                    2 => {
                        let n = self.len()?;
                        let mut pairs = Vec::with_capacity(n.min(1024));
                        for _ in 0..n {
                            pairs.push((self.str()?, self.str()?));
                        }
                        Value::Hash(pairs)
                    }
                    t => return Err(format!("unknown value tag {t}")),
                };
                let expire_at_ms = match self.u8()? {
                    0 => None,
                    _ => Some(self.u64()? as i64),
                };
                Action::Set(
                    key,
                    Loaded {
                        value,
                        expire_at_ms,
                    },
                )
            }
            2 => Action::Forget(self.str()?),
            3 => Action::Reload(self.str()?),
            4 => Action::Purge(self.str()?),
            t => return Err(format!("unknown action tag {t}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Message {
        Message {
            ns: "shop.orders".into(),
            epoch: 0xDEAD_BEEF_0123,
            seq: 42,
            body: Body::Changes {
                acts: vec![
                    Action::Delete("order:1".into()),
                    Action::Set(
                        "order:2".into(),
                        Loaded {
                            value: Value::String("{\"a\":\"é\"}".into()),
                            expire_at_ms: Some(-5),
                        },
                    ),
                    Action::Set("j:1".into(), Value::Json("[]".into()).into()),
                    Action::Set(
                        "h:1".into(),
                        Value::Hash(vec![("a".into(), "1".into()), ("".into(), "".into())]).into(),
                    ),
                    Action::Forget("order:3".into()),
                    Action::Reload("of:u1".into()),
                    Action::Purge("order:".into()),
                ],
                unplaced: Some(vec![5, 0, 0, 0, 0]),
            },
        }
    }

    #[test]
    fn every_message_reads_back_as_it_was_sent() {
        for m in [
            changes(),
            Message {
                ns: "".into(),
                epoch: 0,
                seq: u64::MAX,
                body: Body::Tick,
            },
            Message {
                body: Body::Changes {
                    acts: vec![],
                    unplaced: None,
                },
                ..changes()
            },
        ] {
            assert_eq!(decode(&encode(&m)), Ok(m));
        }
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let bytes = encode(&changes());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "cut at {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(decode(&other), Err("unknown message version".into()));
        // Every single-byte change decodes to something or an error, without a panic.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            let _ = decode(&b);
        }
    }
}
