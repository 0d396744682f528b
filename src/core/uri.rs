//! MongoDB connection strings: checked without I/O, shown without credentials, and
//! credentials removed from any message. Pure.
//!
//! The one core file that names the driver: a URI is checked by the very parser the driver will
//! connect with (a pure function, no I/O), so a URI accepted here is never refused later. Moving
//! the check to `mongo/` would make the Redis side's config setters reach the MongoDB side.

use mongodb::options::ConnectionString;

/// Checks a connection string without any I/O. The error never repeats the URI.
pub fn validate(uri: &str) -> Result<(), String> {
    ConnectionString::parse(uri)
        .map(|_| ())
        .map_err(|e| format!("invalid MongoDB URI: {}", redact(&e.to_string(), uri)))
}

/// The URI with its `user:password` replaced by `***` (for logs).
pub fn for_display(uri: &str) -> String {
    match userinfo(uri) {
        Some((start, end)) => format!("{}***@{}", &uri[..start], &uri[end + 1..]),
        None => uri.to_owned(),
    }
}

/// Byte range of `user:password` in a `mongodb://user:password@host` URI.
fn userinfo(uri: &str) -> Option<(usize, usize)> {
    let start = uri.find("://")? + 3;
    let hosts_end = uri[start..]
        .find(['/', '?'])
        .map_or(uri.len(), |i| start + i);
    let at = uri[start..hosts_end].rfind('@')? + start;
    Some((start, at))
}

/// Removes the URI's credentials (raw and percent-decoded) from a message.
pub fn redact(msg: &str, uri: &str) -> String {
    let mut out = msg.replace(uri, "<uri>");
    if let Some((start, at)) = userinfo(uri) {
        let info = &uri[start..at];
        let password = info.split_once(':').map_or("", |(_, p)| p);
        for secret in [
            info.to_owned(),
            password.to_owned(),
            percent_decode(password),
        ] {
            if secret.len() >= 2 {
                out = out.replace(&secret, "***");
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        let uri = "mongodb://alice:s%40cret@db1:27017,db2/app?authSource=admin";
        let msg = format!("auth failed for alice:s%40cret using s@cret at {uri}");
        let r = redact(&msg, uri);
        assert!(!r.contains("s%40cret") && !r.contains("s@cret"), "{r}");
        assert!(r.contains("<uri>"), "{r}");
        assert_eq!(redact("no secrets", "mongodb://h:1"), "no secrets");
    }

    #[test]
    fn uri_validation_does_not_echo_the_uri() {
        assert!(validate("mongodb://127.0.0.1:27017").is_ok());
        assert!(validate("mongodb://u:p@h/db?tls=true").is_ok());
        for bad in [
            "",
            "http://x",
            "mongodb://",
            "mongodb://u:topsecret@h:99999",
        ] {
            let e = validate(bad).unwrap_err();
            assert!(e.starts_with("invalid MongoDB URI"), "{e}");
            assert!(!e.contains("topsecret"), "{e}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
