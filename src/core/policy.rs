//! Expiry decisions: TTL with jitter, a document's own expiry date, and the
//! stale-while-revalidate (grace) window. Pure: the time and the random number come from the
//! caller (`state/random.rs`).
//!
//! A loaded value lives `ttl·(1 + u·jitter/100) + grace` seconds, `u` uniform in [0, 1], so keys
//! loaded together do not expire together (avalanche). A read in the last `grace` seconds of a
//! value's life is served at once and triggers one background refresh. A mapping with
//! `expire-at=FIELD` caps that life at the document's date: a value never outlives the
//! document's own expiry (a MongoDB TTL index deletes it then).
//!
//! Each of these is a server-wide config, and a mapping may override it (`Overrides`).

/// The longest TTL, negative TTL or grace window accepted, in seconds (ten years).
pub const MAX_SECONDS: i64 = 10 * 365 * 24 * 3600;
/// The largest jitter accepted, in percent.
pub const MAX_JITTER_PCT: i64 = 1000;

/// A mapping's own expiry policy: each `Some` overrides the server-wide setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Overrides {
    /// `ttl=SECONDS` (0: no expiry).
    pub ttl_s: Option<i64>,
    /// `negative-ttl=SECONDS` (0: absence is not remembered).
    pub negative_ttl_s: Option<i64>,
    /// `grace=SECONDS`.
    pub grace_s: Option<i64>,
    /// `jitter=PERCENT`.
    pub jitter_pct: Option<i64>,
    /// `expire-at=FIELD`: the document's date field that caps the value's life.
    pub expire_at: Option<String>,
}

impl Overrides {
    /// Reads one `NAME=VALUE` option; `Ok(false)` if `name` is not an expiry option.
    pub fn parse_option(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let seconds = |v: &str| bounded(name, v, MAX_SECONDS, "seconds");
        let slot = match name {
            "ttl" => &mut self.ttl_s,
            "negative-ttl" => &mut self.negative_ttl_s,
            "grace" => &mut self.grace_s,
            "jitter" => {
                let pct = bounded(name, value, MAX_JITTER_PCT, "percent")?;
                return set_once(name, &mut self.jitter_pct, pct).map(|_| true);
            }
            "expire-at" => {
                if value.is_empty() || value.starts_with('$') || value.contains('\0') {
                    return Err(format!("expire-at={value}: expected a field name"));
                }
                if value.split('.').any(str::is_empty) {
                    return Err(format!(
                        "expire-at={value}: an empty part in a dotted field"
                    ));
                }
                return set_once(name, &mut self.expire_at, value.to_owned()).map(|_| true);
            }
            _ => return Ok(false),
        };
        let s = seconds(value)?;
        set_once(name, slot, s).map(|_| true)
    }

    /// The options as written in a mapping (`ttl=60`, ...), in a fixed order.
    pub fn text(&self) -> Vec<String> {
        let numbers = [
            ("ttl", self.ttl_s),
            ("negative-ttl", self.negative_ttl_s),
            ("grace", self.grace_s),
            ("jitter", self.jitter_pct),
        ];
        let mut out: Vec<String> = numbers
            .iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
            .collect();
        if let Some(f) = &self.expire_at {
            out.push(format!("expire-at={f}"));
        }
        out
    }
}

fn bounded(name: &str, value: &str, max: i64, unit: &str) -> Result<i64, String> {
    match value.parse::<i64>() {
        Ok(n) if (0..=max).contains(&n) && n.to_string() == value => Ok(n),
        _ => Err(format!(
            "{name}={value}: expected a whole number of {unit} from 0 to {max}"
        )),
    }
}

fn set_once<T>(name: &str, slot: &mut Option<T>, v: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("'{name}=' given twice"));
    }
    *slot = Some(v);
    Ok(())
}

/// The expiry policy in force for one mapping: its overrides over the server-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    pub ttl_s: i64,
    pub jitter_pct: i64,
    pub grace_s: i64,
}

/// How a value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Px {
    /// No expiry.
    Never,
    /// Expires in this many ms.
    Ms(i64),
    /// The document's own expiry date has passed: answered, not stored.
    Expired,
}

impl Life {
    /// The expiry of a value loaded at `now_ms` (Unix ms) whose document expires at
    /// `expire_at_ms` (from `expire-at=`; `None`: no date). `rnd` is any random u64.
    pub fn px(self, expire_at_ms: Option<i64>, now_ms: i64, rnd: u64) -> Px {
        let ttl = store_ttl_ms(self.ttl_s, self.jitter_pct, self.grace_s, rnd);
        match (ttl, expire_at_ms) {
            (_, Some(at)) if at <= now_ms => Px::Expired,
            (None, Some(at)) => Px::Ms(at - now_ms),
            (Some(ms), Some(at)) => Px::Ms(ms.min(at - now_ms)),
            (Some(ms), None) => Px::Ms(ms),
            (None, None) => Px::Never,
        }
    }
}

/// The PX to store a value with, in ms; `None` for no expiry (`ttl` 0). `rnd` is any random u64.
pub fn store_ttl_ms(ttl_s: i64, jitter_pct: i64, grace_s: i64, rnd: u64) -> Option<i64> {
    if ttl_s <= 0 {
        return None;
    }
    let base = ttl_s * 1000;
    let span = base * jitter_pct.max(0) / 100;
    let jitter = (rnd % (span as u64 + 1)) as i64;
    Some(base + jitter + grace_s.max(0) * 1000)
}

/// True when a value with `pttl_ms` left (-1: no expiry) is in its grace window.
pub fn in_grace(pttl_ms: i64, grace_s: i64) -> bool {
    grace_s > 0 && pttl_ms >= 0 && pttl_ms <= grace_s * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_zero_means_no_expiry() {
        assert_eq!(store_ttl_ms(0, 10, 5, 123), None);
    }

    #[test]
    fn jitter_stays_within_bounds_and_spreads() {
        let mut rnd = 0x1234_5678_9abc_def0_u64;
        let mut random = move || {
            rnd = rnd
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rnd >> 11
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = store_ttl_ms(100, 10, 0, random()).unwrap();
            assert!((100_000..=110_000).contains(&t), "{t}");
            seen.insert(t / 1000);
        }
        assert!(seen.len() >= 10, "spread over the whole range: {seen:?}");
        assert_eq!(store_ttl_ms(100, 0, 0, random()), Some(100_000));
        assert_eq!(
            store_ttl_ms(100, 0, 7, random()),
            Some(107_000),
            "grace added"
        );
    }

    #[test]
    fn the_documents_date_caps_the_life() {
        let life = Life {
            ttl_s: 100,
            jitter_pct: 0,
            grace_s: 0,
        };
        assert_eq!(life.px(None, 1_000, 7), Px::Ms(100_000));
        assert_eq!(
            life.px(Some(31_000), 1_000, 7),
            Px::Ms(30_000),
            "date first"
        );
        assert_eq!(
            life.px(Some(1_000_000), 1_000, 7),
            Px::Ms(100_000),
            "TTL first"
        );
        assert_eq!(life.px(Some(1_000), 1_000, 7), Px::Expired);
        assert_eq!(life.px(Some(-5), 1_000, 7), Px::Expired);
        let forever = Life { ttl_s: 0, ..life };
        assert_eq!(forever.px(None, 1_000, 7), Px::Never);
        assert_eq!(
            forever.px(Some(3_000), 1_000, 7),
            Px::Ms(2_000),
            "ttl=0: the date alone"
        );
    }

    #[test]
    fn overrides_parse_within_the_server_wide_bounds() {
        let mut o = Overrides::default();
        for (n, v) in [
            ("ttl", "60"),
            ("negative-ttl", "0"),
            ("grace", "5"),
            ("jitter", "1000"),
        ] {
            assert_eq!(o.parse_option(n, v), Ok(true), "{n}={v}");
        }
        assert_eq!(o.parse_option("expire-at", "meta.expires"), Ok(true));
        assert_eq!(o.parse_option("format", "json"), Ok(false), "not ours");
        assert_eq!(
            o,
            Overrides {
                ttl_s: Some(60),
                negative_ttl_s: Some(0),
                grace_s: Some(5),
                jitter_pct: Some(1000),
                expire_at: Some("meta.expires".into()),
            }
        );
        for (n, v, why) in [
            ("ttl", "-1", "from 0 to"),
            ("ttl", "1.5", "whole number"),
            ("ttl", "+5", "whole number"),
            ("ttl", "", "whole number"),
            ("ttl", "315360001", "from 0 to 315360000"),
            ("jitter", "5000", "from 0 to 1000"),
            ("grace", "x", "whole number"),
            ("expire-at", "", "field name"),
            ("expire-at", "$x", "field name"),
            ("expire-at", "a..b", "empty part"),
        ] {
            let err = Overrides::default().parse_option(n, v).unwrap_err();
            assert!(err.contains(why), "{n}={v}: {err}");
        }
        let mut twice = Overrides::default();
        twice.parse_option("ttl", "5").unwrap();
        assert!(twice
            .parse_option("ttl", "6")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn grace_window() {
        assert!(!in_grace(5_000, 0), "grace off");
        assert!(in_grace(5_000, 10));
        assert!(in_grace(0, 10));
        assert!(!in_grace(10_001, 10));
        assert!(!in_grace(-1, 10), "no expiry, no grace");
    }
}
