//! A receiver's view of one collection's watcher on another master: who sends, in which epoch,
//! and the last sequence number heard. The cluster bus drops messages when a link goes down;
//! this is how a receiver knows it may have missed a change and must purge. Pure.

/// The last message heard for one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub sender: String,
    pub epoch: u64,
    pub last: u64,
}

/// What a receiver makes of a message or tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing missed: apply it.
    InOrder,
    /// A sender (or epoch) not heard before: whatever it or its predecessor sent while this
    /// node was not listening is unknown. Purge, then apply.
    NewSender,
    /// A message was dropped: purge, then apply.
    Gap,
    /// A message older than one already heard (the bus reordered two links' worth): its
    /// deletes still apply, its rewrites must not (they may be older than what is cached).
    Late,
}

/// Takes message `seq` (or a tick saying `seq` messages were sent) from `sender`, `epoch`.
/// A message is in order when it is the next one (a restarted watcher sends the events after
/// its saved token again, with new numbers); a tick is in order when nothing it counts is
/// missing.
pub fn accept(
    heard: &mut Option<Heard>,
    sender: &str,
    epoch: u64,
    seq: u64,
    tick: bool,
) -> Verdict {
    let verdict = match heard {
        Some(h) if h.sender == sender && h.epoch == epoch => {
            let expected = if tick {
                h.last
            } else {
                h.last.saturating_add(1)
            };
            if seq > expected {
                Verdict::Gap
            } else if !tick && seq <= h.last {
                Verdict::Late
            } else {
                Verdict::InOrder
            }
        }
        _ => Verdict::NewSender,
    };
    match heard {
        Some(h) if verdict != Verdict::NewSender => h.last = h.last.max(seq),
        _ => {
            *heard = Some(Heard {
                sender: sender.to_owned(),
                epoch,
                last: seq,
            })
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_messages_and_ticks_need_no_purge() {
        let mut h = None;
        assert_eq!(accept(&mut h, "a", 7, 0, true), Verdict::NewSender);
        assert_eq!(accept(&mut h, "a", 7, 1, false), Verdict::InOrder);
        assert_eq!(accept(&mut h, "a", 7, 1, true), Verdict::InOrder);
        assert_eq!(accept(&mut h, "a", 7, 2, false), Verdict::InOrder);
        assert_eq!(
            accept(&mut h, "a", 7, 2, false),
            Verdict::Late,
            "heard already"
        );
        assert_eq!(
            accept(&mut h, "a", 7, 1, true),
            Verdict::InOrder,
            "an old tick"
        );
        assert_eq!(h.as_ref().unwrap().last, 2);
    }

    #[test]
    fn a_dropped_message_is_a_gap_whether_a_message_or_a_tick_shows_it() {
        let mut h = None;
        accept(&mut h, "a", 7, 3, false);
        assert_eq!(accept(&mut h, "a", 7, 5, false), Verdict::Gap);
        assert_eq!(h.as_ref().unwrap().last, 5);
        assert_eq!(
            accept(&mut h, "a", 7, 6, true),
            Verdict::Gap,
            "6 never came"
        );
        assert_eq!(accept(&mut h, "a", 7, 7, false), Verdict::InOrder);
    }

    #[test]
    fn a_new_sender_or_epoch_starts_afresh() {
        let mut h = None;
        accept(&mut h, "a", 7, 9, false);
        assert_eq!(accept(&mut h, "b", 7, 1, false), Verdict::NewSender);
        assert_eq!(accept(&mut h, "b", 8, 1, false), Verdict::NewSender);
        assert_eq!(
            h,
            Some(Heard {
                sender: "b".into(),
                epoch: 8,
                last: 1
            })
        );
    }
}
