//! Transparent read-through for unmodified clients: which commands the command filter rewrites.
//! Pure: the caller says which format each key is mapped with.
//!
//! Each format's reads of mapped keys become the module's internal read-through commands, which
//! keep the native command's reply: `GET`/`MGET` (format string) become `RT.TGET`/`RT.TMGET`;
//! `JSON.GET`/`JSON.MGET` (format json) and `HGET`/`HMGET`/`HGETALL` (format hash) become
//! `RT.T*` commands that load a missing key and then run the native command itself. Inside
//! MULTI/EXEC or a script a miss answers what the native command answers for a missing key, and
//! the key is loaded in the background. A command whose keys are not all mapped with the
//! command's format is left alone. Reads are never in the replication stream or the AOF, so
//! commands from a master are never rewritten.

use crate::core::format::Format;

/// What to do with a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    Keep,
    /// Rewrite the command name to this.
    To(&'static str),
}

pub const TGET: &str = "rt.tget";
pub const TMGET: &str = "rt.tmget";
pub const TJGET: &str = "rt.tjget";
pub const TJMGET: &str = "rt.tjmget";
pub const THGET: &str = "rt.thget";
pub const THMGET: &str = "rt.thmget";
pub const THGETALL: &str = "rt.thgetall";

/// A native read the filter may rewrite.
pub struct Native {
    pub name: &'static str,
    /// The name as the module calls it.
    pub call_name: &'static std::ffi::CStr,
    pub internal: &'static str,
    pub format: Format,
    /// Smallest argument count, name included (fewer: left to the native arity error).
    pub min_args: usize,
    /// Exact argument count, if fixed.
    pub exact_args: Option<usize>,
    /// Where the keys are: from index 1 to `len - keys_end_back` (exclusive).
    pub keys_end_back: usize,
    /// Only the first key (the rest are paths or fields).
    pub one_key: bool,
}

pub const NATIVES: &[Native] = &[
    Native {
        name: "get",
        call_name: c"GET",
        internal: TGET,
        format: Format::String,
        min_args: 2,
        exact_args: Some(2),
        keys_end_back: 0,
        one_key: true,
    },
    Native {
        name: "mget",
        call_name: c"MGET",
        internal: TMGET,
        format: Format::String,
        min_args: 2,
        exact_args: None,
        keys_end_back: 0,
        one_key: false,
    },
    Native {
        name: "json.get",
        call_name: c"JSON.GET",
        internal: TJGET,
        format: Format::Json,
        min_args: 2,
        exact_args: None,
        keys_end_back: 0,
        one_key: true,
    },
    Native {
        name: "json.mget",
        call_name: c"JSON.MGET",
        internal: TJMGET,
        format: Format::Json,
        min_args: 3,
        exact_args: None,
        keys_end_back: 1,
        one_key: false,
    },
    Native {
        name: "hget",
        call_name: c"HGET",
        internal: THGET,
        format: Format::Hash,
        min_args: 3,
        exact_args: Some(3),
        keys_end_back: 0,
        one_key: true,
    },
    Native {
        name: "hmget",
        call_name: c"HMGET",
        internal: THMGET,
        format: Format::Hash,
        min_args: 3,
        exact_args: None,
        keys_end_back: 0,
        one_key: true,
    },
    Native {
        name: "hgetall",
        call_name: c"HGETALL",
        internal: THGETALL,
        format: Format::Hash,
        min_args: 2,
        exact_args: Some(2),
        keys_end_back: 0,
        one_key: true,
    },
];

impl Native {
    /// The key positions of a command of `argc` arguments (name included).
    pub fn keys(&self, argc: usize) -> std::ops::Range<usize> {
        if self.one_key {
            1..2
        } else {
            1..argc.saturating_sub(self.keys_end_back)
        }
    }
}

/// The native read an internal command stands for (its name in any case).
pub fn native_of(internal: &[u8]) -> Option<&'static Native> {
    NATIVES
        .iter()
        .find(|n| internal.eq_ignore_ascii_case(n.internal.as_bytes()))
}

/// The native read named `name` (any case), if the filter may rewrite it: the filter's cheap
/// exit for every other command, before it looks at the arguments.
pub fn native_named(name: &[u8]) -> Option<&'static Native> {
    NATIVES
        .iter()
        .find(|n| n.name.len() == name.len() && name.eq_ignore_ascii_case(n.name.as_bytes()))
}

/// `args` is the whole command, name first; `format_of` gives a key's mapping format (`None`:
/// unmapped). The filter calls `decide_for` once it knows the name; the tests call this.
#[cfg(test)]
pub fn decide(args: &[&[u8]], format_of: impl Fn(&[u8]) -> Option<Format>) -> Rewrite {
    match args.first().and_then(|name| native_named(name)) {
        Some(n) => decide_for(n, args, format_of),
        None => Rewrite::Keep,
    }
}

/// `decide` for a command already known to be the native read `n`.
pub fn decide_for(
    n: &Native,
    args: &[&[u8]],
    format_of: impl Fn(&[u8]) -> Option<Format>,
) -> Rewrite {
    if args.len() < n.min_args || n.exact_args.is_some_and(|e| e != args.len()) {
        return Rewrite::Keep;
    }
    let keys = &args[n.keys(args.len())];
    if !keys.is_empty() && keys.iter().all(|k| format_of(k) == Some(n.format)) {
        Rewrite::To(n.internal)
    } else {
        Rewrite::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(k: &[u8]) -> Option<Format> {
        let id_after = |p: &[u8]| k.starts_with(p) && k.len() > p.len();
        if id_after(b"todo:") {
            Some(Format::String)
        } else if id_after(b"j:") {
            Some(Format::Json)
        } else if id_after(b"h:") {
            Some(Format::Hash)
        } else {
            None
        }
    }

    #[test]
    fn get_of_a_mapped_key_is_rewritten_in_any_case() {
        assert_eq!(decide(&[b"GET", b"todo:1"], mapped), Rewrite::To(TGET));
        assert_eq!(decide(&[b"get", b"todo:1"], mapped), Rewrite::To(TGET));
        assert_eq!(decide(&[b"gEt", b"todo:1"], mapped), Rewrite::To(TGET));
    }

    #[test]
    fn everything_else_is_kept() {
        assert_eq!(decide(&[b"GET", b"user:1"], mapped), Rewrite::Keep);
        assert_eq!(
            decide(&[b"GET", b"todo:"], mapped),
            Rewrite::Keep,
            "empty id"
        );
        assert_eq!(
            decide(&[b"GET"], mapped),
            Rewrite::Keep,
            "arity errors stay GET's"
        );
        assert_eq!(decide(&[b"GET", b"todo:1", b"x"], mapped), Rewrite::Keep);
        assert_eq!(decide(&[b"SET", b"todo:1", b"x"], mapped), Rewrite::Keep);
        assert_eq!(decide(&[b"GETDEL", b"todo:1"], mapped), Rewrite::Keep);
        assert_eq!(decide(&[], mapped), Rewrite::Keep);
    }

    #[test]
    fn mget_only_when_every_key_is_mapped() {
        assert_eq!(
            decide(&[b"MGET", b"todo:1", b"todo:2"], mapped),
            Rewrite::To(TMGET)
        );
        assert_eq!(decide(&[b"mget", b"todo:1"], mapped), Rewrite::To(TMGET));
        assert_eq!(
            decide(&[b"MGET", b"todo:1", b"user:2"], mapped),
            Rewrite::Keep
        );
        assert_eq!(decide(&[b"MGET"], mapped), Rewrite::Keep);
    }

    #[test]
    fn each_format_s_reads_only_for_keys_of_that_format() {
        assert_eq!(decide(&[b"JSON.GET", b"j:1"], mapped), Rewrite::To(TJGET));
        assert_eq!(
            decide(&[b"json.get", b"j:1", b"$.name", b"INDENT", b" "], mapped),
            Rewrite::To(TJGET)
        );
        assert_eq!(decide(&[b"JSON.GET", b"todo:1"], mapped), Rewrite::Keep);
        assert_eq!(decide(&[b"GET", b"j:1"], mapped), Rewrite::Keep);
        assert_eq!(
            decide(&[b"JSON.MGET", b"j:1", b"j:2", b"$"], mapped),
            Rewrite::To(TJMGET)
        );
        assert_eq!(
            decide(&[b"JSON.MGET", b"j:1", b"h:2", b"$"], mapped),
            Rewrite::Keep
        );
        assert_eq!(
            decide(&[b"JSON.MGET", b"j:1"], mapped),
            Rewrite::Keep,
            "arity errors stay the native command's"
        );
        assert_eq!(
            decide(&[b"HGET", b"h:1", b"name"], mapped),
            Rewrite::To(THGET)
        );
        assert_eq!(decide(&[b"HGET", b"h:1"], mapped), Rewrite::Keep);
        assert_eq!(
            decide(&[b"HMGET", b"h:1", b"a", b"b"], mapped),
            Rewrite::To(THMGET)
        );
        assert_eq!(decide(&[b"HGETALL", b"h:1"], mapped), Rewrite::To(THGETALL));
        assert_eq!(decide(&[b"HGETALL", b"j:1"], mapped), Rewrite::Keep);
        assert_eq!(
            decide(&[b"HSET", b"h:1", b"a", b"b"], mapped),
            Rewrite::Keep
        );
        assert!(native_named(b"HGETALL").is_some() && native_named(b"HSET").is_none());
        assert_eq!(native_of(TJMGET.as_bytes()).unwrap().keys(5), 1..4);
        assert_eq!(native_of(THMGET.as_bytes()).unwrap().keys(5), 1..2);
    }
}
