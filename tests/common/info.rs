//! The one way tests read `INFO`: `info_section` parses a section into its fields; the rest
//! are views of it (and waits on it).

use super::{wait_until, Redis};
use std::collections::HashMap;
use std::time::Duration;

impl Redis {
    /// Every `name:value` field of one INFO section.
    pub fn info_section(&self, section: &str) -> HashMap<String, String> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut self.conn())
            .unwrap();
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// A text field of `INFO readthrough` (without the `readthrough_` prefix).
    pub fn info_str(&self, name: &str) -> Option<String> {
        self.info_section("readthrough")
            .remove(&format!("readthrough_{name}"))
    }

    /// A numeric field of any INFO section (`info_field("clients", "blocked_clients")`).
    pub fn info_field(&self, section: &str, name: &str) -> i64 {
        self.info_section(section)
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name} in INFO {section}"))
    }

    /// The `readthrough_*` fields of INFO (text fields read as -1).
    pub fn info(&self) -> HashMap<String, i64> {
        self.info_section("readthrough")
            .into_iter()
            .filter_map(|(k, v)| {
                let k = k.strip_prefix("readthrough_")?.to_owned();
                Some((k, v.parse().unwrap_or(-1)))
            })
            .collect()
    }

    /// The `watcher_N` lines of `INFO readthrough`, one per mapped collection, in order.
    pub fn watchers(&self) -> Vec<String> {
        let mut w: Vec<(String, String)> = self
            .info_section("readthrough")
            .into_iter()
            .filter(|(k, _)| k.starts_with("readthrough_watcher_"))
            .collect();
        w.sort_by_key(|(k, _)| k[20..].parse::<usize>().unwrap_or(0));
        w.into_iter().map(|(k, v)| format!("{k}:{v}")).collect()
    }

    /// Waits until every change-stream watcher is watching.
    pub fn wait_watching(&self) {
        wait_until(
            "the change-stream watchers",
            Duration::from_secs(30),
            || {
                let w = self.watchers();
                !w.is_empty() && w.iter().all(|w| w.contains("state=watching"))
            },
        );
    }

    /// Waits until exactly `n` clients are blocked (on loads).
    pub fn wait_blocked(&self, n: usize) {
        wait_until(
            &format!("{n} blocked clients"),
            Duration::from_secs(30),
            || self.info_field("clients", "blocked_clients") == n as i64,
        );
    }
}
