//! Rust identifiers from DDF node names.
//!
//! Node names are `1*unreserved` (spec 6.1.1) in theory and anything in
//! practice (`{GUID}`, `6to4_State`, `AllowX-ForestPolicy-and-RUP`, names
//! with spaces or non-ASCII letters). Every name maps to a valid, ASCII,
//! non-keyword identifier; uniqueness is the caller's business
//! ([`Namespace`]).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Calls `f` on each word of a name: split at non-alphanumeric
/// characters, at a lower to upper case step (`DevInfo`), and before the
/// last capital of an acronym followed by lower case (`SrvURIs` keeps
/// `URIs`, `HTTPServer` splits into `HTTP`, `Server`). A non-ASCII letter or
/// digit becomes a word of its own, `u` and its code point in hex, so that
/// distinct names stay distinct. No allocation for ASCII names.
fn for_each_word(name: &str, mut f: impl FnMut(&str)) {
    let bytes = name.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            match start {
                Some(s) if b.is_ascii_uppercase() => {
                    let prev = bytes[i - 1];
                    let next_lower = bytes.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                    if prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_lower) {
                        f(&name[s..i]);
                        start = Some(i);
                    }
                }
                Some(_) => {}
                None => start = Some(i),
            }
            i += 1;
            continue;
        }
        if let Some(s) = start.take() {
            f(&name[s..i]);
        }
        if b.is_ascii() {
            i += 1;
            continue;
        }
        // A non-ASCII character: a word of its own when it is a letter or
        // a digit.
        let c = name[i..].chars().next().unwrap_or_default();
        if c.is_alphanumeric() {
            f(&format!("u{:04x}", u32::from(c)));
        }
        i += c.len_utf8().max(1);
    }
    if let Some(s) = start {
        f(&name[s..]);
    }
}

/// Rust keywords (strict, reserved and edition-dependent).
fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "as" | "break"
            | "const"
            | "continue"
            | "crate"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "async"
            | "await"
            | "dyn"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "macro"
            | "override"
            | "priv"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
            | "try"
            | "gen"
            | "union"
    )
}

/// Type names that would shadow the prelude (or `dm_core` names a reader
/// expects) inside the generated module.
fn is_reserved_type(s: &str) -> bool {
    matches!(
        s,
        "Option"
            | "Some"
            | "None"
            | "Result"
            | "Ok"
            | "Err"
            | "Vec"
            | "String"
            | "Box"
            | "Default"
            | "Clone"
            | "Copy"
            | "Debug"
            | "PartialEq"
            | "Eq"
            | "Send"
            | "Sync"
            | "Sized"
            | "Drop"
            | "Fn"
            | "FnMut"
            | "FnOnce"
            | "Iterator"
            | "IntoIterator"
            | "Into"
            | "From"
            | "ToString"
            | "ToOwned"
            | "AsRef"
            | "AsMut"
            | "Extend"
            | "Unpin"
            | "NodeMap"
            | "MoError"
            | "MoNode"
            | "ManagementObject"
            | "MoHooks"
    )
}

/// `DevID` -> `dev_id`, `SrvURI` -> `srv_uri`, `type` -> `type_`,
/// `6to4_State` -> `n_6to4_state`, `{GUID}` -> `guid`, `` -> `node`.
pub fn snake_case(name: &str) -> String {
    let mut out = if name.is_ascii() {
        snake_ascii(name.as_bytes())
    } else {
        let mut out = String::with_capacity(name.len() + 4);
        for_each_word(name, |w| {
            if !out.is_empty() {
                out.push('_');
            }
            let at = out.len();
            out.push_str(w);
            out[at..].make_ascii_lowercase();
        });
        out
    };
    if out.is_empty() {
        out.push_str("node");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "n_");
    }
    if is_keyword(&out) {
        out.push('_');
    }
    out
}

/// [`for_each_word`] joined by `_` and lowercased, in one pass over an
/// ASCII name (names are snake_cased once per node: this is the hot path
/// of naming).
fn snake_ascii(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 4);
    let mut in_word = false;
    for (i, &c) in b.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            in_word = false;
            continue;
        }
        if in_word {
            if c.is_ascii_uppercase() {
                let prev = b[i - 1];
                let next_lower = b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
                if prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_lower) {
                    out.push('_');
                }
            }
        } else if !out.is_empty() {
            out.push('_');
        }
        out.push(char::from(c.to_ascii_lowercase()));
        in_word = true;
    }
    out
}

/// `dev-info` -> `DevInfo`, `DMAcc` -> `DmAcc`, `GCM` -> `Gcm`,
/// `ADMX_ActiveXInstallService` -> `AdmxActiveXInstallService` (acronyms as
/// words, as the Rust API guidelines name types).
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for_each_word(name, |w| {
        let at = out.len();
        out.push_str(w);
        out[at..].make_ascii_lowercase();
        out[at..at + 1].make_ascii_uppercase();
    });
    if out.is_empty() {
        out.push_str("Node");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    if is_keyword(&out) || is_reserved_type(&out) {
        out.push_str("Node");
    }
    out
}

/// `srv_id` -> `SRV_ID`.
pub fn screaming(snake: &str) -> String {
    snake.trim_end_matches('_').to_ascii_uppercase()
}

/// FxHash (rustc's hasher): names are short and not attacker-chosen, and
/// SipHash showed up in the profile of the corpus bench.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxSet = HashSet<String, BuildHasherDefault<FxHasher>>;

/// A set of borrowed names with [`FxHasher`].
pub type FxStrSet<'a> = HashSet<&'a str, BuildHasherDefault<FxHasher>>;

/// A set of identifiers in one Rust namespace (the types of a file, the
/// methods of an impl block): hands out `base`, `base_2`, `base_3`, ...
/// Names in `reserved` are never handed out.
#[derive(Debug, Default, Clone)]
pub struct Namespace {
    used: FxSet,
    reserved: Option<&'static FxSet>,
}

/// A set of reserved names, built once.
#[derive(Debug)]
pub struct Reserved {
    names: &'static [&'static str],
    set: std::sync::OnceLock<FxSet>,
}

impl Reserved {
    pub const fn new(names: &'static [&'static str]) -> Reserved {
        Reserved {
            names,
            set: std::sync::OnceLock::new(),
        }
    }

    #[cfg(test)]
    pub fn names_for_test(&self) -> &'static [&'static str] {
        self.names
    }

    /// True when `name` is reserved.
    pub fn contains(&'static self, name: &str) -> bool {
        self.set().contains(name)
    }

    fn set(&'static self) -> &'static FxSet {
        self.set
            .get_or_init(|| self.names.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl Namespace {
    pub fn new(reserved: &'static Reserved) -> Namespace {
        Namespace {
            used: FxSet::default(),
            reserved: Some(reserved.set()),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.used.contains(name) || self.reserved.is_some_and(|r| r.contains(name))
    }

    /// Takes `name`; false when it was taken already.
    pub fn insert(&mut self, name: String) -> bool {
        if self.reserved.is_some_and(|r| r.contains(name.as_str())) {
            return false;
        }
        self.used.insert(name)
    }

    /// The first of `base`, `base{sep}2`, ... not yet taken, now taken.
    pub fn unique(&mut self, base: &str, sep: &str) -> String {
        if !self.contains(base) {
            self.used.insert(base.to_owned());
            return base.to_owned();
        }
        (2..)
            .map(|n| format!("{base}{sep}{n}"))
            .find(|name| !self.contains(name))
            .inspect(|name| {
                self.used.insert(name.clone());
            })
            .unwrap_or_default()
    }
}

/// True when `s` is a Rust identifier that `format_ident!` accepts.
#[cfg(test)]
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s != "_"
        && !is_keyword(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names_are_valid_identifiers() {
        let cases = [
            ("DevID", "dev_id"),
            ("SrvURI", "srv_uri"),
            ("HwV", "hw_v"),
            ("CBT", "cbt"),
            ("AAuthLevel", "a_auth_level"),
            ("type", "type_"),
            ("self", "self_"),
            ("3GPP", "n_3gpp"),
            ("6to4_Router_Name", "n_6to4_router_name"),
            ("{GUID}", "guid"),
            ("", "node"),
            ("  ", "node"),
            (
                "AllowX-ForestPolicy-and-RUP",
                "allow_x_forest_policy_and_rup",
            ),
            (
                "ADMX_ActiveXInstallService",
                "admx_active_x_install_service",
            ),
            ("Größe", "gr_u00f6_u00df_e"),
            ("名前", "u540d_u524d"),
            ("8128000B", "n_8128000b"),
        ];
        for (input, expected) in cases {
            let got = snake_case(input);
            assert_eq!(got, expected, "{input}");
            assert!(is_ident(&got), "{got}");
        }
    }

    #[test]
    fn camel_case_names_are_valid_type_names() {
        let cases = [
            ("oma-dm-devinfo", "OmaDmDevinfo"),
            ("DevInfo", "DevInfo"),
            ("DMAcc", "DmAcc"),
            ("GCM", "Gcm"),
            ("self", "SelfNode"),
            ("Option", "OptionNode"),
            ("{GUID}", "Guid"),
            ("3GPP", "N3gpp"),
            ("", "Node"),
            ("ADMX_ActiveXInstallService", "AdmxActiveXInstallService"),
        ];
        for (input, expected) in cases {
            let got = camel_case(input);
            assert_eq!(got, expected, "{input}");
            assert!(is_ident(&got), "{got}");
        }
        assert_eq!(screaming("type_"), "TYPE");
    }

    #[test]
    fn namespaces_number_clashes() {
        static RESERVED: Reserved = Reserved::new(&["new"]);
        let mut ns = Namespace::new(&RESERVED);
        assert!(!ns.insert("new".into()));
        assert_eq!(ns.unique("new", "_"), "new_2");
        assert_eq!(ns.unique("a", "_"), "a");
        assert_eq!(ns.unique("a", "_"), "a_2");
        assert_eq!(ns.unique("a", "_"), "a_3");
    }
}
