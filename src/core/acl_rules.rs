//! Reading a Redis ACL user's rules, as `ACL LIST` prints them, for the two questions the module
//! API cannot answer directly. Pure: the Redis side asks Redis and hands the text over.
//!
//! - Does a user's right to run a native read differ from its right to run the internal command
//!   the read is rewritten to? Redis's check covers command and keys together, so the Redis side
//!   asks it about a stand-in user that has this user's command rules and every key
//!   (`commands_only`).
//! - May a user write every key under a prefix (`RT.WARM` writes them all)? Only a selector whose
//!   write patterns cover the prefix, and that may run the command, gives that right
//!   (`selectors`, `covers_for_write`). The answer is conservative: a pattern that is not `*` or
//!   a plain prefix followed by `*` covers nothing.

/// One selector of a user (the root one first): its command rules and key patterns.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// The command rules, in order (`-@all`, `+@read`, `-get`, `allcommands`, ...).
    pub commands: Vec<String>,
    /// The key patterns.
    pub keys: Vec<KeyPattern>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub write: bool,
    pub glob: String,
}

/// The user a line of `ACL LIST` describes: its name and selectors (root first). `None` for a
/// line this parser does not understand (the callers then refuse or take the safe path).
pub fn parse_line(line: &str) -> Option<(String, Vec<Selector>)> {
    let mut rest = line.trim().strip_prefix("user ")?.trim_start();
    let (name, after) = rest.split_once(' ').unwrap_or((rest, ""));
    rest = after;
    let mut root = Selector::default();
    let mut extra = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(inner) = rest.strip_prefix('(') {
            let end = inner.find(')')?;
            let mut s = Selector::default();
            for token in inner[..end].split_whitespace() {
                apply(&mut s, token)?;
            }
            extra.push(s);
            rest = &inner[end + 1..];
        } else {
            let (token, after) = rest.split_once(' ').unwrap_or((rest, ""));
            apply(&mut root, token)?;
            rest = after;
        }
    }
    let mut all = vec![root];
    all.extend(extra);
    Some((name.to_owned(), all))
}

/// Adds one rule token to a selector; `None` for a token of no known kind.
fn apply(s: &mut Selector, token: &str) -> Option<()> {
    let key = |write: bool, glob: &str| KeyPattern {
        write,
        glob: glob.to_owned(),
    };
    match token {
        "allkeys" => s.keys.push(key(true, "*")),
        "resetkeys" => s.keys.clear(),
        "allcommands" | "nocommands" => s.commands.push(token.to_owned()),
        "on"
        | "off"
        | "nopass"
        | "resetpass"
        | "reset"
        | "allchannels"
        | "resetchannels"
        | "sanitize-payload"
        | "skip-sanitize-payload"
        | "clearselectors" => {}
        _ => match token.as_bytes()[0] {
            b'+' | b'-' => s.commands.push(token.to_owned()),
            b'~' => s.keys.push(key(true, &token[1..])),
            b'%' => {
                let (perms, glob) = token[1..].split_once('~')?;
                let perms = perms.to_ascii_uppercase();
                if perms.is_empty() || !perms.chars().all(|c| c == 'R' || c == 'W') {
                    return None;
                }
                s.keys.push(key(perms.contains('W'), glob));
            }
            // Passwords and their hashes, channels.
            b'#' | b'>' | b'<' | b'!' | b'&' => {}
            _ => return None,
        },
    }
    Some(())
}

/// The rules of a stand-in user with these selectors' command rules and every key: what Redis
/// says of it is what it says of the command alone.
pub fn commands_only(selectors: &[Selector]) -> String {
    let mut out = String::from("on");
    for (i, s) in selectors.iter().enumerate() {
        let rules = format!("~* {}", s.commands.join(" "));
        if i == 0 {
            out.push(' ');
            out.push_str(&rules);
        } else {
            out.push_str(&format!(" ({rules})"));
        }
    }
    out
}

/// Whether the selector may write every key that starts with `prefix`.
pub fn covers_for_write(s: &Selector, prefix: &str) -> bool {
    s.keys
        .iter()
        .any(|k| k.write && glob_covers(&k.glob, prefix))
}

/// Whether every key starting with `prefix` matches `glob`; only `*` and a literal head
/// followed by one `*` are understood (anything else: no).
fn glob_covers(glob: &str, prefix: &str) -> bool {
    let Some(head) = glob.strip_suffix('*') else {
        return false;
    };
    !head.contains(['*', '?', '[', ']', '\\']) && prefix.starts_with(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lines_acl_list_prints() {
        let (name, s) = parse_line(
            "user alice on #30c9 %R~todo:* ~x:* resetchannels -@all +@read -get \
             (~y:* resetchannels -@all +set)",
        )
        .unwrap();
        assert_eq!(name, "alice");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].commands, ["-@all", "+@read", "-get"]);
        assert_eq!(
            s[0].keys,
            [
                KeyPattern {
                    write: false,
                    glob: "todo:*".into()
                },
                KeyPattern {
                    write: true,
                    glob: "x:*".into()
                }
            ]
        );
        assert_eq!(s[1].commands, ["-@all", "+set"]);
        let (_, d) = parse_line("user default on nopass sanitize-payload ~* &* +@all").unwrap();
        assert_eq!(d[0].commands, ["+@all"]);
        assert!(covers_for_write(&d[0], ""));
    }

    #[test]
    fn a_line_of_unknown_shape_is_not_guessed() {
        assert!(parse_line("user bob on frobnicate ~*").is_none());
        assert!(parse_line("user bob on (~x:* +get").is_none());
        assert!(parse_line("user bob on %X~a*").is_none());
        assert!(parse_line("alice on ~*").is_none());
    }

    #[test]
    fn the_stand_in_has_the_command_rules_and_every_key() {
        let (_, s) =
            parse_line("user a off >secret %W~k:* -@all +get (%R~z:* nocommands +mget)").unwrap();
        assert_eq!(commands_only(&s), "on ~* -@all +get (~* nocommands +mget)");
        assert!(!commands_only(&s).contains("secret"));
    }

    #[test]
    fn only_plain_prefix_patterns_cover_a_prefix() {
        let sel = |keys: &[(&str, bool)]| Selector {
            commands: vec![],
            keys: keys
                .iter()
                .map(|(g, w)| KeyPattern {
                    write: *w,
                    glob: (*g).into(),
                })
                .collect(),
        };
        assert!(covers_for_write(&sel(&[("todo:*", true)]), "todo:"));
        assert!(covers_for_write(&sel(&[("to*", true)]), "todo:"));
        assert!(covers_for_write(&sel(&[("todo:*", true)]), "todo:x"));
        assert!(!covers_for_write(&sel(&[("todo:*", false)]), "todo:"));
        assert!(!covers_for_write(&sel(&[("todo:1*", true)]), "todo:"));
        assert!(!covers_for_write(&sel(&[("todo:?*", true)]), "todo:"));
        assert!(!covers_for_write(&sel(&[("t[o]do:*", true)]), "todo:"));
        assert!(!covers_for_write(&sel(&[("todo:", true)]), "todo:"));
        assert!(!covers_for_write(&sel(&[("todo:*", true)]), ""));
        assert!(covers_for_write(&sel(&[("*", true)]), ""));
        assert!(!covers_for_write(&sel(&[]), "todo:"));
    }
}
