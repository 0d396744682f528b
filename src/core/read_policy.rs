//! The read policy, the one every read command follows (`RT.GET`, `RT.MGET` and the transparent
//! `GET`, `MGET`, `JSON.GET`, `JSON.MGET`, `HGET`, `HMGET`, `HGETALL`). Pure.
//!
//! Each mapped key a read names is a hit, known absent (the negative cache), not the user's to
//! load (no write permission: a load would store the key on the user's behalf), or a miss. The
//! misses decide what the command does, in this order:
//! - none: answer now;
//! - `readthrough.max-inflight` would be passed by the loads they start (keys loading in
//!   single-flight loads and in `RT.MGET` batches both count; joining a load in flight starts
//!   none): `BUSY` for the module's commands and for a read that would block; a transparent read
//!   that cannot block answers what the native command answers now, and loads nothing;
//! - the client cannot block (MULTI/EXEC, a script): a transparent read answers what the native
//!   command answers now, the module's commands answer `NOBLOCK`; either way the loads start in
//!   the background, so that the next read hits;
//! - otherwise the client blocks until the loads end.

/// What a read does with its misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to load: answer now.
    Answer,
    /// Block the client until the loads end.
    Block,
    /// Answer what the native command answers now; start the loads in the background.
    AnswerAndLoad,
    /// Start the loads in the background and answer `NOBLOCK`.
    NoBlock,
    /// Beyond `readthrough.max-inflight`: answer `BUSY`; load nothing.
    Busy,
    /// Beyond `readthrough.max-inflight` where a transparent read cannot block: answer what the
    /// native command answers now; load nothing.
    AnswerOnly,
}

/// What a read command knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    /// A native read the command filter rewrote (it answers as the native command would).
    pub transparent: bool,
    /// The client can be blocked (not inside MULTI/EXEC or a script).
    pub can_block: bool,
    /// Keys the read waits for (misses, each once).
    pub misses: usize,
    /// Of those, keys no load is running for: the loads this read would start.
    pub new_loads: usize,
    /// Keys loading now, in single-flight loads and batches.
    pub in_flight: usize,
    /// `readthrough.max-inflight`.
    pub max: usize,
}

pub fn plan(r: Read) -> Plan {
    if r.misses == 0 {
        return Plan::Answer;
    }
    let full = r.new_loads > 0 && r.in_flight.saturating_add(r.new_loads) > r.max;
    match (full, r.can_block, r.transparent) {
        (true, false, true) => Plan::AnswerOnly,
        (true, _, _) => Plan::Busy,
        (false, true, _) => Plan::Block,
        (false, false, true) => Plan::AnswerAndLoad,
        (false, false, false) => Plan::NoBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(transparent: bool, can_block: bool, misses: usize, new_loads: usize) -> Read {
        Read {
            transparent,
            can_block,
            misses,
            new_loads,
            in_flight: 8,
            max: 10,
        }
    }

    #[test]
    fn no_miss_answers_now() {
        for (t, b) in [(true, true), (true, false), (false, true), (false, false)] {
            assert_eq!(plan(read(t, b, 0, 0)), Plan::Answer);
        }
    }

    #[test]
    fn a_miss_blocks_where_it_can_and_loads_in_the_background_where_it_cannot() {
        assert_eq!(plan(read(false, true, 2, 2)), Plan::Block);
        assert_eq!(plan(read(true, true, 2, 2)), Plan::Block);
        assert_eq!(plan(read(false, false, 2, 2)), Plan::NoBlock);
        assert_eq!(plan(read(true, false, 2, 2)), Plan::AnswerAndLoad);
    }

    #[test]
    fn the_bound_counts_new_loads_only() {
        // 8 in flight, max 10: two more fit, three do not.
        assert_eq!(plan(read(false, true, 3, 3)), Plan::Busy);
        assert_eq!(plan(read(true, true, 3, 3)), Plan::Busy);
        assert_eq!(plan(read(false, false, 3, 3)), Plan::Busy);
        assert_eq!(plan(read(true, false, 3, 3)), Plan::AnswerOnly);
        // Joining loads in flight is always allowed, even when the table is full.
        let full = Read {
            in_flight: 10,
            ..read(false, true, 3, 0)
        };
        assert_eq!(plan(full), Plan::Block);
        assert_eq!(
            plan(Read {
                new_loads: 1,
                ..full
            }),
            Plan::Busy
        );
    }
}
