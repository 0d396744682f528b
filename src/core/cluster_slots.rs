//! Redis Cluster's slots, as the change-stream watchers need them: the slot of a key (CRC16 of
//! the key, or of its `{hash tag}`, modulo 16384, exactly as Redis computes it) and a table of
//! which master serves each slot, read from the node's own cluster config file (`nodes.conf`,
//! the `CLUSTER NODES` format). Pure.

pub const SLOTS: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's key hash.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of `key`: only the part between the first `{` and the next `}` counts, when that
/// part is not empty.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS as u16
}

const NOBODY: u16 = u16::MAX;

/// Slots `first..=last` served by the master with this node id.
pub type SlotRange = (u16, u16, String);

/// Which master serves each slot, and which of them is this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    owners: Vec<u16>,
    masters: Vec<String>,
    me: String,
}

impl SlotMap {
    /// From `CLUSTER SLOTS`' ranges `(first, last, master's node id)` and this node's id.
    pub fn new(me: &str, ranges: &[SlotRange]) -> SlotMap {
        let mut masters: Vec<String> = Vec::new();
        let mut owners = vec![NOBODY; SLOTS];
        for (first, last, id) in ranges {
            let ix = match masters.iter().position(|m| m == id) {
                Some(ix) => ix,
                None => {
                    masters.push(id.clone());
                    masters.len() - 1
                }
            };
            let (first, last) = (*first as usize, (*last as usize).min(SLOTS - 1));
            if first <= last {
                owners[first..=last].fill(ix as u16);
            }
        }
        SlotMap {
            owners,
            masters,
            me: me.to_owned(),
        }
    }

    /// The node id of the master serving `slot`, if any.
    pub fn owner(&self, slot: u16) -> Option<&str> {
        let ix = *self.owners.get(slot as usize)?;
        self.masters.get(ix as usize).map(String::as_str)
    }

    pub fn owner_of_key(&self, key: &[u8]) -> Option<&str> {
        self.owner(key_slot(key))
    }

    pub fn is_mine(&self, slot: u16) -> bool {
        self.owner(slot) == Some(self.me.as_str())
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// Every master serving a slot, other than this node.
    pub fn others(&self) -> impl Iterator<Item = &str> {
        self.masters
            .iter()
            .map(String::as_str)
            .filter(move |m| *m != self.me)
    }

    /// The slots this node serves here that another master served in `before` (not the
    /// slots nobody served: a cluster being formed).
    pub fn gained_since(&self, before: &SlotMap) -> Vec<u16> {
        (0..SLOTS as u16)
            .filter(|&s| self.is_mine(s) && before.owner(s).is_some_and(|o| o != self.me.as_str()))
            .collect()
    }
}

/// This node's id and the ranges `(first, last, master's node id)` of the slots each master
/// serves, from a cluster config file (`nodes.conf`). Slots being moved (`[N->-id]`,
/// `[N-<-id]`) count for the node that serves them now. An error for a file that is not whole
/// (Redis 7.0 rewrites it in place): the caller keeps what it read before.
pub fn parse_nodes_conf(text: &str) -> Result<(String, Vec<SlotRange>), String> {
    let mut me = None;
    let mut ranges = Vec::new();
    let mut complete = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"vars") {
            // The last line; what follows it is an older, longer file's tail.
            complete = true;
            break;
        }
        if fields.len() < 8 {
            return Err(format!("a short line in the cluster config: {line:?}"));
        }
        let (id, flags) = (fields[0], fields[2]);
        if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("not a node id: {id:?}"));
        }
        let flags: Vec<&str> = flags.split(',').collect();
        if flags.contains(&"myself") {
            me = Some(id.to_owned());
        }
        if !flags.contains(&"master") {
            continue;
        }
        for slot in &fields[8..] {
            if slot.starts_with('[') {
                continue;
            }
            let (first, last) = slot.split_once('-').unwrap_or((slot, slot));
            let (Ok(first), Ok(last)) = (first.parse::<u16>(), last.parse::<u16>()) else {
                return Err(format!("not a slot range: {slot:?}"));
            };
            if first > last || last as usize >= SLOTS {
                return Err(format!("not a slot range: {slot:?}"));
            }
            ranges.push((first, last, id.to_owned()));
        }
    }
    match me {
        Some(me) if complete => Ok((me, ranges)),
        _ => Err("the cluster config is not whole".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_ones_redis_computes() {
        // CRC16/XMODEM's check value, and slots Redis's own documentation and CLUSTER KEYSLOT give.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(
            key_slot(b"foo{}{bar}"),
            key_slot(b"bar"),
            "an empty tag hashes the key"
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"{unclosed"), key_slot(b"{unclosed"));
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn the_cluster_config_gives_this_node_and_each_master_s_slots() {
        let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
        let text = format!(
            "{a} 127.0.0.1:7000@17000,,tls-port=0,shard-id=x master - 0 1 3 connected 10923-16383\n\
             {b} 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5459 5460 [5461->-{c}]\n\
             {c} 127.0.0.1:7002@17002 slave {b} 0 1 1 connected\n\
             vars currentEpoch 3 lastVoteEpoch 0\n"
        );
        let (me, ranges) = parse_nodes_conf(&text).unwrap();
        assert_eq!(me, b);
        assert_eq!(
            ranges,
            [
                (10923, 16383, a.clone()),
                (0, 5459, b.clone()),
                (5460, 5460, b.clone())
            ]
        );
        let map = SlotMap::new(&me, &ranges);
        assert!(map.is_mine(5460) && !map.is_mine(5461));
        assert_eq!(map.owner(5461), None);
        // Cut anywhere before its last line (`vars`), or damaged, it is an error, never a
        // wrong map.
        for n in 0..text.find("vars").unwrap() {
            if let Ok((_, r)) = parse_nodes_conf(&text[..n]) {
                panic!("a cut file read as {r:?}");
            }
        }
        assert!(parse_nodes_conf(&text.replace("0-5459", "0-99999")).is_err());
        assert!(parse_nodes_conf(&text.replace("myself,", "")).is_err());
        assert!(parse_nodes_conf("").is_err());
        let tail = format!("{text}{c} 127.0.0.1:7002@17002 master - 0 1 1 connected 0-16383\n");
        assert_eq!(
            parse_nodes_conf(&tail).unwrap().1,
            ranges,
            "after vars: ignored"
        );
    }

    #[test]
    fn the_map_says_who_serves_a_slot_and_what_was_gained() {
        let ranges = [
            (0, 5460, "a".to_string()),
            (5461, 10922, "b".to_string()),
            (10923, 16383, "c".to_string()),
        ];
        let m = SlotMap::new("b", &ranges);
        assert_eq!(m.owner(0), Some("a"));
        assert_eq!(m.owner(5461), Some("b"));
        assert_eq!(m.owner(16383), Some("c"));
        assert!(m.is_mine(10922) && !m.is_mine(10923));
        assert_eq!(m.others().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(m.owner_of_key(b"foo"), Some("c"));
        let partial = SlotMap::new("b", &ranges[..2]);
        assert_eq!(partial.owner(12000), None, "a slot nobody serves");
        let moved = SlotMap::new(
            "b",
            &[
                (0, 5460, "a".to_string()),
                (5461, 10923, "b".to_string()),
                (10924, 16383, "c".to_string()),
            ],
        );
        assert_eq!(moved.gained_since(&m), [10923]);
        assert!(m.gained_since(&m).is_empty());
        assert!(
            m.gained_since(&SlotMap::new("b", &[])).is_empty(),
            "slots assigned when the cluster forms are not taken from anyone"
        );
    }
}
