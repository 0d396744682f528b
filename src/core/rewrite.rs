//! Transparent read-through for unmodified clients: which commands the command filter rewrites.
//! Pure: the caller says which keys are mapped.
//!
//! `GET key` on a mapped key becomes `RT.TGET key`, and `MGET` whose keys are all mapped becomes
//! `RT.TMGET`: the module's read-through commands with plain GET/MGET semantics (inside
//! MULTI/EXEC or a script a miss is nil, as GET would answer, and the key is loaded in the
//! background). Anything else is left alone. GET and MGET are never in the replication stream
//! or the AOF, so commands from a master are never rewritten.

/// What to do with a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    Keep,
    /// Rewrite the command name to this.
    To(&'static str),
}

pub const TGET: &str = "rt.tget";
pub const TMGET: &str = "rt.tmget";

/// `args` is the whole command, name first.
pub fn decide(args: &[&[u8]], is_mapped: impl Fn(&[u8]) -> bool) -> Rewrite {
    let Some((name, keys)) = args.split_first() else {
        return Rewrite::Keep;
    };
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    if name.len() == 3 && keys.len() == 1 && is("get") && is_mapped(keys[0]) {
        return Rewrite::To(TGET);
    }
    if name.len() == 4 && !keys.is_empty() && is("mget") && keys.iter().all(|k| is_mapped(k)) {
        return Rewrite::To(TMGET);
    }
    Rewrite::Keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(k: &[u8]) -> bool {
        k.starts_with(b"todo:") && k.len() > 5
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
}
