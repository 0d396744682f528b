//! A change stream's resume token as the text kept in Redis, and back. Pure.

use mongodb::bson::{self, Bson};
use mongodb::change_stream::event::ResumeToken;

/// Marks a saved token to be used with `startAfter` (it is an invalidate event's).
pub const START_AFTER: &str = "startAfter:";

pub fn to_text(t: &ResumeToken) -> Option<String> {
    bson::to_bson(t)
        .ok()
        .map(|b| b.into_relaxed_extjson().to_string())
}

pub fn parse(s: &str) -> Option<ResumeToken> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let b = Bson::try_from(v).ok()?;
    bson::from_bson(b).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn resume_tokens_round_trip_through_text() {
        let t: ResumeToken = bson::from_bson(Bson::Document(doc! {"_data": "82AB01"})).unwrap();
        let s = to_text(&t).unwrap();
        assert_eq!(parse(&s), Some(t));
        assert_eq!(parse("not json"), None);
    }
}
