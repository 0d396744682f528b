//! Redis Cluster's slots, as the change-stream watchers need them: the slot of a key (CRC16 of
//! the key, or of its `{hash tag}`, modulo 16384, exactly as Redis computes it) and a table of
//! which master serves each slot, built from `CLUSTER SLOTS`. Pure.

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

/// Which master serves each slot, and which of them is this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    owners: Vec<u16>,
    masters: Vec<String>,
    me: String,
}

impl SlotMap {
    /// From `CLUSTER SLOTS`' ranges `(first, last, master's node id)` and this node's id.
    pub fn new(me: &str, ranges: &[(u16, u16, String)]) -> SlotMap {
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

    /// The slots this node serves here and did not serve in `before`.
    pub fn gained_since(&self, before: &SlotMap) -> Vec<u16> {
        (0..SLOTS as u16)
            .filter(|&s| self.is_mine(s) && before.owner(s) != Some(self.me.as_str()))
            .collect()
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
    }
}
