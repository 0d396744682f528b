//! BSON document -> the JSON text stored in Redis. Pure.
//!
//! The format is MongoDB Relaxed Extended JSON: plain JSON numbers and strings where JSON has
//! them, `{"$oid": ...}`, `{"$date": ...}`, `{"$numberDecimal": ...}` and friends for the rest.
//! NaN and the infinities become `{"$numberDouble": "NaN"}`, so the output is always valid JSON.
//! Field order is the document's own (serde_json's `preserve_order`). A UUID (binary subtype 4)
//! is shown as `{"$uuid": "..."}` in canonical text, the Extended JSON form people read and
//! MongoDB's tools accept, rather than base64 `$binary`: a key names a UUID in that same text.

use bson::{spec::BinarySubtype, Binary, Bson, Document};

pub fn to_json(doc: Document) -> String {
    to_value(Bson::Document(doc)).to_string()
}

/// One BSON value as Relaxed Extended JSON, UUIDs in `$uuid` form.
pub fn to_value(v: Bson) -> serde_json::Value {
    match v {
        Bson::Document(d) => {
            serde_json::Value::Object(d.into_iter().map(|(k, v)| (k, to_value(v))).collect())
        }
        Bson::Array(items) => serde_json::Value::Array(items.into_iter().map(to_value).collect()),
        Bson::Binary(b) => match uuid_text(&b) {
            Some(text) => serde_json::json!({ "$uuid": text }),
            None => Bson::Binary(b).into_relaxed_extjson(),
        },
        other => other.into_relaxed_extjson(),
    }
}

/// True for canonical UUID text: 8-4-4-4-12 hex digits, either case.
pub fn is_uuid_text(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The BSON UUID (binary subtype 4) that canonical UUID text stands for.
pub fn uuid_from_text(s: &str) -> Option<Bson> {
    if !is_uuid_text(s) {
        return None;
    }
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    let bytes = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes,
    }))
}

/// A BSON UUID's canonical text (lower case); `None` for other binaries.
pub fn uuid_text(b: &Binary) -> Option<String> {
    if b.subtype != BinarySubtype::Uuid || b.bytes.len() != 16 {
        return None;
    }
    let mut out = String::with_capacity(36);
    for (i, byte) in b.bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    Some(out)
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
        assert_eq!(v["bin"]["$binary"]["subType"], "00");
    }

    #[test]
    fn uuids_read_and_print_as_canonical_text() {
        let text = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
        let uuid = uuid_from_text(text).expect("a UUID");
        let Bson::Binary(b) = &uuid else { panic!() };
        assert_eq!(b.subtype, BinarySubtype::Uuid);
        assert_eq!(b.bytes[0], 0x3f);
        assert_eq!(uuid_text(b).unwrap(), text.to_ascii_lowercase());
        let d = bson::doc! { "_id": uuid.clone(), "refs": [uuid] };
        assert_eq!(
            to_json(d),
            r#"{"_id":{"$uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},"refs":[{"$uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"}]}"#
        );
        for not in [
            "3f2504e0-4f89-11d3-9a0c-0305e82c330",
            "3f2504e04f8911d39a0c0305e82c3301",
            "3f2504e0-4f89-11d3-9a0c-0305e82c330g",
            "3f2504e0_4f89-11d3-9a0c-0305e82c3301",
        ] {
            assert_eq!(uuid_from_text(not), None, "{not}");
        }
        let legacy = Binary {
            subtype: BinarySubtype::UuidOld,
            bytes: vec![0; 16],
        };
        assert_eq!(
            uuid_text(&legacy),
            None,
            "subtype 3's byte order is driver-specific"
        );
    }
}
