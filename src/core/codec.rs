//! BSON document -> the JSON text stored in Redis. Pure.
//!
//! The format is MongoDB Relaxed Extended JSON: plain JSON numbers and strings where JSON has
//! them, `{"$oid": ...}`, `{"$date": ...}`, `{"$numberDecimal": ...}` and friends for the rest.
//! NaN and the infinities become `{"$numberDouble": "NaN"}`, so the output is always valid JSON.
//! Field order is the document's own (serde_json's `preserve_order`).

use bson::{Bson, Document};

pub fn to_json(doc: Document) -> String {
    Bson::Document(doc).into_relaxed_extjson().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{
        doc, oid::ObjectId, spec::BinarySubtype, Binary, DateTime, Decimal128, Regex, Timestamp,
    };

    #[test]
    fn plain_fields_keep_their_order() {
        let d = doc! { "z": 1, "a": "x", "m": [true, null, 2.5] };
        assert_eq!(to_json(d), r#"{"z":1,"a":"x","m":[true,null,2.5]}"#);
    }

    #[test]
    fn every_bson_type_gives_valid_json() {
        let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
        let d = doc! {
            "_id": oid,
            "date": DateTime::from_millis(0),
            "dec": "1.5".parse::<Decimal128>().unwrap(),
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "re": Regex { pattern: "^a".into(), options: "i".into() },
            "ts": Timestamp { time: 1, increment: 2 },
            "min": Bson::MinKey,
            "max": Bson::MaxKey,
            "nan": f64::NAN,
            "inf": f64::INFINITY,
            "i64": i64::MAX,
            "deep": { "a": { "b": { "c": [ { "d": "é\"\n" } ] } } },
        };
        let text = to_json(d);
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(v["_id"]["$oid"], "65a1b2c3d4e5f60718293a4b");
        assert_eq!(v["date"]["$date"], "1970-01-01T00:00:00Z");
        assert_eq!(v["dec"]["$numberDecimal"], "1.5");
        assert_eq!(v["nan"]["$numberDouble"], "NaN");
        assert_eq!(v["inf"]["$numberDouble"], "Infinity");
        assert_eq!(v["min"]["$minKey"], 1);
        assert_eq!(v["i64"], i64::MAX);
        assert_eq!(v["deep"]["a"]["b"]["c"][0]["d"], "é\"\n");
    }
}
