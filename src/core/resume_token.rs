//! A change stream's resume token (as BSON: the driver's `ResumeToken` is converted on the
//! MongoDB side) as the text kept in Redis, and back. Pure.

use bson::Bson;

/// Marks a saved token to be used with `startAfter` (it is an invalidate event's).
pub const START_AFTER: &str = "startAfter:";

pub fn to_text(t: Bson) -> String {
    t.into_relaxed_extjson().to_string()
}

pub fn parse(s: &str) -> Option<Bson> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    Bson::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn resume_tokens_round_trip_through_text() {
        let t = Bson::Document(doc! {"_data": "82AB01"});
        let s = to_text(t.clone());
        assert_eq!(parse(&s), Some(t));
        assert_eq!(parse("not json"), None);
    }
}
