//! The `INFO readthrough` section: the counters, the change-stream figures, the loads in
//! flight, then one line per watcher and per warm-up.

use crate::engine::{cache_state, changes, warm};
use crate::redis::callbacks::InfoFields;
use crate::state::counters;
use std::sync::atomic::Ordering;

/// Numeric fields, then text fields (see the README's INFO table).
pub fn fields() -> InfoFields {
    let mut numbers = counters::fields();
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    numbers.extend([
        ("cdc_events", get(&changes::EVENTS)),
        (
            "cdc_lag_ms",
            changes::LAG_MS.load(Ordering::Relaxed).max(0) as u64,
        ),
        ("cdc_purges", get(&changes::PURGES)),
        ("cdc_unplaced_deletes", get(&changes::UNPLACED_DELETES)),
        ("cdc_resume_failures", get(&changes::RESUME_FAILURES)),
        ("cdc_bus_sent", get(&changes::BUS_SENT)),
        ("cdc_bus_ticks", get(&changes::BUS_TICKS)),
        ("cdc_bus_received", get(&changes::BUS_RECEIVED)),
        ("cdc_bus_gaps", get(&changes::BUS_GAPS)),
        ("cdc_bus_new_senders", get(&changes::BUS_NEW_SENDERS)),
        ("inflight", cache_state::loads_in_flight() as u64),
    ]);
    numbers.extend(counters::latency_fields());
    let texts = changes::info_lines()
        .into_iter()
        .chain(warm::info_lines())
        .collect();
    (numbers, texts)
}
