//! Access-control evaluation (spec 10, 12.3, 6.3.1.1), as pure functions.
//!
//! The Delegation Access Control MO (DACMO, 12.3) holds, per MO instance,
//! rules `<MOID>/<MIID>/<x>` each made of an optional `Path` (a
//! path-from-moroot, "/" when absent) and `Permissions/<x>` pairs of a
//! Management Authority (`MAID`) and its access rights (`AR`). Here one
//! [`AclEntry`] is one (Path, MAID, AR) triple of one instance.
//!
//! The rule for a node (spec 10 and 12.3 `<x>/Path`): the permissions of a
//! Path apply to its sub-tree "unless the permissions are overwritten at the
//! descendent node". So the most specific Path that covers the node decides,
//! with every permission given at that Path; the rights of the entries there
//! whose MAID is the requesting authority or `*` are OR-ed. An authority
//! without an entry at the deciding Path has no right, even if a Path above
//! granted it some: the descendant's permissions replace the ancestor's.
//!
//! Two checks guard each command, and they fail with distinct statuses
//! (docs/architecture.md "Access control"): the node's DDF access type (6.3.1.1;
//! the command is not allowed on the node, 405) and the server's DACMO
//! rights (10; the server lacks the right, 403). [`required`] gives both for
//! a command.

use std::fmt;
use std::str::FromStr;

use crate::node::AccessType;
use crate::value::{NodeData, Value};

/// Access rights, the `AR` node of 12.3: the sum of Read (1), Write (2),
/// Execute (4) and Delegate (8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    /// GET, HPUT, HPOST.
    pub const READ: Rights = Rights(1);
    /// HGET, DELETE.
    pub const WRITE: Rights = Rights(2);
    /// EXEC.
    pub const EXECUTE: Rights = Rights(4);
    /// HGET that changes the access rights of the sub-tree.
    pub const DELEGATE: Rights = Rights(8);
    /// Every right: what the creator of an instance gets (spec 10).
    pub const ALL: Rights = Rights(15);

    const NAMES: [(Rights, &'static str); 4] = [
        (Rights::READ, "Read"),
        (Rights::WRITE, "Write"),
        (Rights::EXECUTE, "Execute"),
        (Rights::DELEGATE, "Delegate"),
    ];

    /// The `AR` value.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Rights from an `AR` value; values outside 0..=15 are refused.
    pub fn from_ar(ar: i64) -> Result<Rights, AclErrorReason> {
        u8::try_from(ar)
            .ok()
            .filter(|b| *b <= 15)
            .map(Rights)
            .ok_or(AclErrorReason::BadRights(ar))
    }

    /// Rights from bits, dropping those above Delegate.
    pub const fn from_bits_truncate(bits: u8) -> Rights {
        Rights(bits & 15)
    }

    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// True when every right of `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for Rights {
    fn bitor_assign(&mut self, rhs: Rights) {
        *self = self.union(rhs);
    }
}

impl fmt::Display for Rights {
    /// `Read|Write`, or `None`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("None");
        }
        let names: Vec<&str> = Rights::NAMES
            .iter()
            .filter(|(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join("|"))
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

/// A Management Authority (12.3 `MAID`): a DM Server by its DMAcc server
/// identifier, or a local application.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Authority {
    /// `serverid:X`.
    Server(String),
    /// `appid:Y`.
    App(String),
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authority::Server(id) => write!(f, "serverid:{id}"),
            Authority::App(id) => write!(f, "appid:{id}"),
        }
    }
}

impl FromStr for Authority {
    type Err = AclErrorReason;

    /// Reads `serverid:X` or `appid:Y` (the prefix in any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AclErrorReason::BadMaid(s.to_owned());
        let (scheme, id) = s.split_once(':').ok_or_else(bad)?;
        if id.is_empty() {
            return Err(bad());
        }
        if scheme.eq_ignore_ascii_case("serverid") {
            Ok(Authority::Server(id.to_owned()))
        } else if scheme.eq_ignore_ascii_case("appid") {
            Ok(Authority::App(id.to_owned()))
        } else {
            Err(bad())
        }
    }
}

/// The value of a `MAID` node: one authority, or `*` for every DM Server
/// and every local application (12.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Maid {
    Any,
    Authority(Authority),
}

impl Maid {
    /// True when this MAID names `authority` or is `*`.
    pub fn matches(&self, authority: &Authority) -> bool {
        match self {
            Maid::Any => true,
            Maid::Authority(a) => a == authority,
        }
    }
}

impl fmt::Display for Maid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Maid::Any => f.write_str("*"),
            Maid::Authority(a) => a.fmt(f),
        }
    }
}

impl FromStr for Maid {
    type Err = AclErrorReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            Ok(Maid::Any)
        } else {
            s.parse().map(Maid::Authority)
        }
    }
}

impl From<Authority> for Maid {
    fn from(a: Authority) -> Maid {
        Maid::Authority(a)
    }
}

/// One permission of one MO instance: `rights` for `maid` on the sub-tree
/// at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclEntry {
    /// Node names from the instance root; empty for the whole instance
    /// (Path "/" or absent). A `*` segment stands for any node at that
    /// position (path-from-moroot allows the wildcard, 6.1.1.2).
    pub path: Vec<String>,
    pub maid: Maid,
    pub rights: Rights,
}

impl AclEntry {
    /// The entry spec 10 gives the creator of an instance: every right on
    /// the whole instance, for it alone.
    pub fn owner(authority: Authority) -> AclEntry {
        AclEntry {
            path: Vec::new(),
            maid: Maid::Authority(authority),
            rights: Rights::ALL,
        }
    }

    /// True when the entry's Path is the node or one of its ancestors.
    pub fn covers<S: AsRef<str>>(&self, node_path: &[S]) -> bool {
        self.path.len() <= node_path.len()
            && self
                .path
                .iter()
                .zip(node_path)
                .all(|(p, n)| p == "*" || p == n.as_ref())
    }
}

/// Why DACMO data could not be read as access-control entries; `at` is the
/// DACMO node path (relative to the node given) where the fault is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid access-control data at `{at}`: {reason}")]
pub struct AclError {
    pub at: String,
    pub reason: AclErrorReason,
}

/// The kinds of access-control data error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclErrorReason {
    #[error("`{0}` is not `*`, `serverid:<id>` or `appid:<id>`")]
    BadMaid(String),
    #[error("access rights {0} are not a sum of 1, 2, 4 and 8")]
    BadRights(i64),
    #[error("path `{text}` is not a path-from-moroot (byte {position})")]
    BadPath { text: String, position: usize },
    #[error("the required node is missing")]
    Missing,
    #[error("the node does not have the format DACMO gives it")]
    WrongFormat,
}

/// Reads a DACMO `Path` value (a path-from-moroot, 6.1.1.2): `/` or
/// `/name/name...`, where a name is real-name or `*`. An x-name has no nv
/// field here to resolve it, so it is refused. An empty value is "/".
pub fn parse_path(text: &str) -> Result<Vec<String>, AclErrorReason> {
    let bad = |position| AclErrorReason::BadPath {
        text: text.to_owned(),
        position,
    };
    if text.is_empty() || text == "/" {
        return Ok(Vec::new());
    }
    let rest = text.strip_prefix('/').ok_or_else(|| bad(0))?;
    let mut out = Vec::new();
    let mut offset = 1;
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err(bad(offset));
        }
        if seg != "*" {
            if let Some(i) = seg
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
            {
                return Err(bad(offset + i));
            }
        }
        out.push(seg.to_owned());
        offset += seg.len() + 1;
    }
    Ok(out)
}

/// Writes a path back in the form of the DACMO `Path` node.
pub fn format_path<S: AsRef<str>>(path: &[S]) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.iter().fold(String::new(), |mut s, seg| {
        s.push('/');
        s.push_str(seg.as_ref());
        s
    })
}

/// How specific a covering Path is: deeper first, then, at equal depth, a
/// real name before `*` at the first position where they differ.
fn specificity_cmp(a: &[String], b: &[String]) -> std::cmp::Ordering {
    let literal = |s: &String| s != "*";
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().map(literal).cmp(b.iter().map(literal)))
}

/// The rights `authority` has on the node at `node_path` (names from the
/// instance root) of the MO instance whose entries are `entries` (spec 10,
/// 12.3): the most specific Path covering the node decides, and the rights
/// of its entries whose MAID matches the authority (itself or `*`) are
/// OR-ed. No covering entry, no right.
pub fn effective_rights<S: AsRef<str>>(
    entries: &[AclEntry],
    authority: &Authority,
    node_path: &[S],
) -> Rights {
    effective_rights_by(entries, |maid| maid.matches(authority), node_path)
}

/// [`effective_rights`] for an authority given as the test `names_me`,
/// true for every MAID that names it (`*` included): a caller that knows
/// its principal in another form need not build an [`Authority`].
pub fn effective_rights_by<S: AsRef<str>>(
    entries: &[AclEntry],
    names_me: impl Fn(&Maid) -> bool,
    node_path: &[S],
) -> Rights {
    // Called for every node a command touches: no allocation.
    let deciding = entries
        .iter()
        .filter(|e| e.covers(node_path))
        .max_by(|a, b| specificity_cmp(&a.path, &b.path));
    let Some(deciding) = deciding else {
        return Rights::NONE;
    };
    entries
        .iter()
        .filter(|e| e.covers(node_path) && specificity_cmp(&e.path, &deciding.path).is_eq())
        .filter(|e| names_me(&e.maid))
        .fold(Rights::NONE, |acc, e| acc | e.rights)
}

/// Reads the rules of one MO instance from DACMO data: `rules` is the
/// `<MOID>/<MIID>` node, whose children are the `<x>` rules with an
/// optional `Path` and `Permissions/<x>/{MAID, AR}` (12.3).
pub fn entries_from_dacmo(rules: &NodeData) -> Result<Vec<AclEntry>, AclError> {
    let at = |parts: &[&str], reason| AclError {
        at: parts.join("/"),
        reason,
    };
    let NodeData::Interior(rules) = rules else {
        return Err(at(&[], AclErrorReason::WrongFormat));
    };
    let mut out = Vec::new();
    for (rule_name, rule) in rules {
        let NodeData::Interior(rule_children) = rule else {
            return Err(at(&[rule_name], AclErrorReason::WrongFormat));
        };
        let child = |name: &str| {
            rule_children
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| d)
        };
        let path = match child("Path") {
            None => Vec::new(),
            Some(NodeData::Leaf(Value::Chr(text))) => {
                parse_path(text).map_err(|r| at(&[rule_name, "Path"], r))?
            }
            Some(_) => return Err(at(&[rule_name, "Path"], AclErrorReason::WrongFormat)),
        };
        let permissions = match child("Permissions") {
            Some(NodeData::Interior(p)) => p,
            Some(_) => return Err(at(&[rule_name, "Permissions"], AclErrorReason::WrongFormat)),
            None => return Err(at(&[rule_name, "Permissions"], AclErrorReason::Missing)),
        };
        for (perm_name, perm) in permissions {
            let here = [&**rule_name, "Permissions", &**perm_name];
            let NodeData::Interior(fields) = perm else {
                return Err(at(&here, AclErrorReason::WrongFormat));
            };
            let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, d)| d);
            let maid = match field("MAID") {
                Some(NodeData::Leaf(Value::Chr(m))) => m
                    .parse::<Maid>()
                    .map_err(|r| at(&[&here[..], &["MAID"]].concat(), r))?,
                Some(_) => {
                    return Err(at(
                        &[&here[..], &["MAID"]].concat(),
                        AclErrorReason::WrongFormat,
                    ))
                }
                None => {
                    return Err(at(
                        &[&here[..], &["MAID"]].concat(),
                        AclErrorReason::Missing,
                    ))
                }
            };
            let rights = match field("AR") {
                Some(NodeData::Leaf(Value::Int(ar))) => {
                    Rights::from_ar(*ar).map_err(|r| at(&[&here[..], &["AR"]].concat(), r))?
                }
                Some(_) => {
                    return Err(at(
                        &[&here[..], &["AR"]].concat(),
                        AclErrorReason::WrongFormat,
                    ))
                }
                None => return Err(at(&[&here[..], &["AR"]].concat(), AclErrorReason::Missing)),
            };
            out.push(AclEntry {
                path: path.clone(),
                maid,
                rights,
            });
        }
    }
    Ok(out)
}

/// The logical operations of 6.3.1.1 and 12.3 (`AR` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalOperation {
    /// GET, HPUT, HPOST.
    Read,
    /// HGET, DELETE.
    Write,
    /// EXEC.
    Execute,
    /// HGET that modifies the access rights of the sub-tree addressed by a
    /// DACMO `<MOID>/<MIID>/<x>/Path`.
    Delegate,
}

impl LogicalOperation {
    /// The right a server needs for this operation (12.3 `AR` values).
    pub const fn right(self) -> Rights {
        match self {
            LogicalOperation::Read => Rights::READ,
            LogicalOperation::Write => Rights::WRITE,
            LogicalOperation::Execute => Rights::EXECUTE,
            LogicalOperation::Delegate => Rights::DELEGATE,
        }
    }
}

/// Whether an HGET creates the node or replaces an existing one: the
/// table of 6.3.1.1 requires Add for the first and Replace for the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    Create,
    Replace,
}

/// What a command needs on each node it touches (6.3.1.1, 12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Required {
    pub operation: LogicalOperation,
    /// The DACMO right the server must hold on the node (403 without it).
    pub rights: Rights,
    /// The DDF access type the node must have (405 without it).
    pub access_type: AccessType,
}

/// The table of 6.3.1.1, for the command named `command` (as in
/// Package#2):
///
/// | command        | logical operation | DDF access type            |
/// |----------------|-------------------|----------------------------|
/// | GET/HPUT/HPOST | Read              | Get                        |
/// | HGET           | Write             | Add (create) / Replace     |
/// | DELETE         | Write             | Delete                     |
/// | EXEC           | Execute           | Exec                       |
/// | HGET(*)        | Delegate          | Add / Replace (DACMO DDF)  |
///
/// (*) HGET that changes the access rights of the sub-tree addressed by a
/// DACMO Path (`changes_access_rights`); the Delegate right is then needed
/// on that sub-tree, and the DACMO nodes written need the access type of
/// any HGET. `write` matters only for HGET. Commands that touch no node of
/// the tree under access control (SHOW, CONT, END, DEFAULT, SUB, UNSUB, and
/// unknown names) give `None`.
pub fn required(command: &str, write: WriteMode, changes_access_rights: bool) -> Option<Required> {
    let (operation, access_type) = match command {
        "GET" | "HPUT" | "HPOST" => (LogicalOperation::Read, AccessType::GET),
        "HGET" => {
            let access = match write {
                WriteMode::Create => AccessType::ADD,
                WriteMode::Replace => AccessType::REPLACE,
            };
            let op = if changes_access_rights {
                LogicalOperation::Delegate
            } else {
                LogicalOperation::Write
            };
            (op, access)
        }
        "DELETE" => (LogicalOperation::Write, AccessType::DELETE),
        "EXEC" => (LogicalOperation::Execute, AccessType::EXEC),
        _ => return None,
    };
    Some(Required {
        operation,
        rights: operation.right(),
        access_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str) -> Authority {
        Authority::Server(id.into())
    }

    fn entry(path: &str, maid: &str, ar: i64) -> AclEntry {
        AclEntry {
            path: parse_path(path).unwrap(),
            maid: maid.parse().unwrap(),
            rights: Rights::from_ar(ar).unwrap(),
        }
    }

    #[test]
    fn rights_values_follow_the_ar_table_of_12_3() {
        assert_eq!(Rights::READ.bits(), 1);
        assert_eq!(Rights::WRITE.bits(), 2);
        assert_eq!(Rights::EXECUTE.bits(), 4);
        assert_eq!(Rights::DELEGATE.bits(), 8);
        // "The value of this node is a summary of the access rights value".
        let r = Rights::from_ar(7).unwrap();
        assert!(r.contains(Rights::READ | Rights::WRITE | Rights::EXECUTE));
        assert!(!r.contains(Rights::DELEGATE));
        assert_eq!(r.to_string(), "Read|Write|Execute");
        assert_eq!(Rights::NONE.to_string(), "None");
        assert_eq!(Rights::from_ar(15), Ok(Rights::ALL));
        assert_eq!(Rights::from_ar(16), Err(AclErrorReason::BadRights(16)));
        assert_eq!(Rights::from_ar(-1), Err(AclErrorReason::BadRights(-1)));
        assert_eq!(Rights::from_bits_truncate(0xF3).bits(), 3);
    }

    #[test]
    fn maids_parse_as_12_3_encodes_them() {
        assert_eq!("serverid:dms1".parse(), Ok(Maid::Authority(server("dms1"))));
        assert_eq!(
            "appid:com.example.app".parse(),
            Ok(Maid::Authority(Authority::App("com.example.app".into())))
        );
        assert_eq!("*".parse(), Ok(Maid::Any));
        // A server id may itself hold colons; only the first one splits.
        assert_eq!(
            "serverid:urn:x:1".parse::<Authority>(),
            Ok(server("urn:x:1"))
        );
        for bad in ["dms1", "serverid:", "userid:x", "", "**"] {
            assert!(bad.parse::<Maid>().is_err(), "{bad}");
        }
        assert_eq!(server("a").to_string(), "serverid:a");
        assert_eq!(Maid::Any.to_string(), "*");
        assert!(Maid::Any.matches(&Authority::App("x".into())));
        assert!(!Maid::from(server("a")).matches(&server("b")));
    }

    #[test]
    fn paths_are_path_from_moroot() {
        assert_eq!(parse_path("/"), Ok(vec![]));
        assert_eq!(parse_path(""), Ok(vec![]));
        assert_eq!(
            parse_path("/Auth/Noti"),
            Ok(vec!["Auth".into(), "Noti".into()])
        );
        assert_eq!(parse_path("/Data/*/Value").map(|p| p.len()), Ok(3));
        for (bad, position) in [
            ("Auth", 0),
            ("/Auth/", 6),
            ("//x", 1),
            ("/(x)", 1),
            ("/a b", 2),
        ] {
            assert_eq!(
                parse_path(bad),
                Err(AclErrorReason::BadPath {
                    text: bad.into(),
                    position
                }),
                "{bad}"
            );
        }
        assert_eq!(format_path(&["Auth", "Noti"]), "/Auth/Noti");
        assert_eq!(format_path::<&str>(&[]), "/");
    }

    #[test]
    fn instance_level_rights_as_in_12_3_1() {
        // 12.3.1 / Figure 17: rights given on MO instances only (no Path).
        // dms1 created its DMAcc instance and holds all rights on it; the
        // device's DevInfo instance is readable by every server.
        let dmacc_dms1 = vec![entry("/", "serverid:dms1", 15)];
        let devinfo = vec![entry("/", "*", 1)];
        assert_eq!(
            effective_rights(&dmacc_dms1, &server("dms1"), &["SrvURI"]),
            Rights::ALL
        );
        assert_eq!(
            effective_rights(&dmacc_dms1, &server("dms2"), &["SrvURI"]),
            Rights::NONE
        );
        assert_eq!(
            effective_rights::<&str>(&devinfo, &server("dms3"), &[]),
            Rights::READ
        );
        assert_eq!(
            effective_rights(&devinfo, &Authority::App("a".into()), &["DevID"]),
            Rights::READ
        );
        assert_eq!(
            effective_rights::<&str>(&[], &server("dms1"), &[]),
            Rights::NONE
        );
    }

    #[test]
    fn the_most_specific_path_overrides() {
        let entries = vec![
            entry("/", "serverid:A", 15),
            entry("/", "*", 1),
            entry("/Auth", "serverid:A", 1),
            entry("/Auth/Secret", "serverid:B", 2),
        ];
        let a = server("A");
        let b = server("B");
        // "/" decides at the root and for nodes outside /Auth: A's own entry
        // OR-ed with the `*` entry.
        assert_eq!(effective_rights(&entries, &a, &["Name"]), Rights::ALL);
        assert_eq!(effective_rights(&entries, &b, &["Name"]), Rights::READ);
        // /Auth overrides "/" for its sub-tree: A keeps only Read there, and
        // B loses the `*` Read granted at "/".
        assert_eq!(effective_rights(&entries, &a, &["Auth"]), Rights::READ);
        assert_eq!(
            effective_rights(&entries, &a, &["Auth", "Data"]),
            Rights::READ
        );
        assert_eq!(
            effective_rights(&entries, &b, &["Auth", "Data"]),
            Rights::NONE
        );
        // /Auth/Secret overrides /Auth: A has nothing, B has Write.
        assert_eq!(
            effective_rights(&entries, &a, &["Auth", "Secret"]),
            Rights::NONE
        );
        assert_eq!(
            effective_rights(&entries, &b, &["Auth", "Secret", "Deeper"]),
            Rights::WRITE
        );
        // A sibling whose name merely starts like the Path is not covered.
        assert_eq!(effective_rights(&entries, &a, &["AuthX"]), Rights::ALL);
    }

    #[test]
    fn among_paths_of_one_length_literal_names_nearer_the_root_decide() {
        let entries = vec![
            entry("/*/x/Port", "serverid:A", 2),
            entry("/Conn/*/Port", "serverid:A", 1),
            entry("/*/*/Port", "serverid:A", 4),
        ];
        let a = server("A");
        assert_eq!(
            effective_rights(&entries, &a, &["Conn", "x", "Port"]),
            Rights::READ
        );
        assert_eq!(
            effective_rights(&entries, &a, &["Other", "x", "Port"]),
            Rights::WRITE
        );
        assert_eq!(
            effective_rights(&entries, &a, &["Other", "y", "Port"]),
            Rights::EXECUTE
        );
    }

    #[test]
    fn entries_of_the_same_path_are_or_ed() {
        let entries = vec![
            entry("/Data", "serverid:A", 1),
            entry("/Data", "serverid:A", 4),
            entry("/Data", "*", 2),
            entry("/Data", "serverid:B", 8),
        ];
        assert_eq!(
            effective_rights(&entries, &server("A"), &["Data", "1"]),
            Rights::READ | Rights::WRITE | Rights::EXECUTE
        );
        assert_eq!(
            effective_rights(&entries, &server("B"), &["Data"]),
            Rights::WRITE | Rights::DELEGATE
        );
        // Not covered by any Path: no right at all.
        assert_eq!(
            effective_rights(&entries, &server("A"), &["ID"]),
            Rights::NONE
        );
    }

    #[test]
    fn a_wildcard_path_is_less_specific_than_a_name_at_the_same_depth() {
        let entries = vec![
            entry("/Data/*", "serverid:A", 1),
            entry("/Data/2", "serverid:A", 3),
        ];
        let a = server("A");
        assert_eq!(
            effective_rights(&entries, &a, &["Data", "1", "Value"]),
            Rights::READ
        );
        assert_eq!(
            effective_rights(&entries, &a, &["Data", "2", "Value"]),
            Rights::READ | Rights::WRITE
        );
        assert_eq!(effective_rights(&entries, &a, &["Data"]), Rights::NONE);
    }

    #[test]
    fn the_command_table_of_6_3_1_1() {
        use LogicalOperation as L;
        let cases = [
            ("GET", WriteMode::Replace, false, L::Read, AccessType::GET),
            ("HPUT", WriteMode::Replace, false, L::Read, AccessType::GET),
            ("HPOST", WriteMode::Create, false, L::Read, AccessType::GET),
            ("HGET", WriteMode::Create, false, L::Write, AccessType::ADD),
            (
                "HGET",
                WriteMode::Replace,
                false,
                L::Write,
                AccessType::REPLACE,
            ),
            (
                "DELETE",
                WriteMode::Replace,
                false,
                L::Write,
                AccessType::DELETE,
            ),
            (
                "EXEC",
                WriteMode::Replace,
                false,
                L::Execute,
                AccessType::EXEC,
            ),
            (
                "HGET",
                WriteMode::Replace,
                true,
                L::Delegate,
                AccessType::REPLACE,
            ),
            (
                "HGET",
                WriteMode::Create,
                true,
                L::Delegate,
                AccessType::ADD,
            ),
        ];
        for (cmd, write, acl, op, access) in cases {
            let r = required(cmd, write, acl).unwrap();
            assert_eq!((r.operation, r.access_type), (op, access), "{cmd}");
            assert_eq!(r.rights, op.right());
        }
        assert_eq!(
            required("EXEC", WriteMode::Create, false).map(|r| r.rights.bits()),
            Some(4)
        );
        assert_eq!(
            required("HGET", WriteMode::Create, true).map(|r| r.rights.bits()),
            Some(8)
        );
        for cmd in [
            "SHOW", "CONT", "END", "DEFAULT", "SUB", "UNSUB", "get", "FROB",
        ] {
            assert_eq!(required(cmd, WriteMode::Create, false), None, "{cmd}");
        }
    }

    #[test]
    fn dacmo_rules_are_read_into_entries() {
        let chr = |s: &str| NodeData::Leaf(Value::Chr(s.into()));
        let perm = |maid: &str, ar: i64| {
            NodeData::Interior(vec![
                ("MAID".into(), chr(maid)),
                ("AR".into(), NodeData::Leaf(Value::Int(ar))),
            ])
        };
        let rules = NodeData::Interior(vec![
            (
                "1".into(),
                NodeData::Interior(vec![(
                    "Permissions".into(),
                    NodeData::Interior(vec![
                        ("1".into(), perm("serverid:dms1", 15)),
                        ("2".into(), perm("*", 1)),
                    ]),
                )]),
            ),
            (
                "2".into(),
                NodeData::Interior(vec![
                    ("Path".into(), chr("/Auth")),
                    (
                        "Permissions".into(),
                        NodeData::Interior(vec![("1".into(), perm("serverid:dms1", 1))]),
                    ),
                ]),
            ),
        ]);
        let entries = entries_from_dacmo(&rules).unwrap();
        assert_eq!(
            entries,
            vec![
                entry("/", "serverid:dms1", 15),
                entry("/", "*", 1),
                entry("/Auth", "serverid:dms1", 1),
            ]
        );

        let bad_ar = NodeData::Interior(vec![(
            "r".into(),
            NodeData::Interior(vec![(
                "Permissions".into(),
                NodeData::Interior(vec![("p".into(), perm("serverid:x", 99))]),
            )]),
        )]);
        assert_eq!(
            entries_from_dacmo(&bad_ar),
            Err(AclError {
                at: "r/Permissions/p/AR".into(),
                reason: AclErrorReason::BadRights(99)
            })
        );
        let no_perms = NodeData::Interior(vec![("r".into(), NodeData::Interior(vec![]))]);
        assert_eq!(
            entries_from_dacmo(&no_perms).map_err(|e| (e.at, e.reason)),
            Err(("r/Permissions".into(), AclErrorReason::Missing))
        );
        assert!(entries_from_dacmo(&chr("x")).is_err());
    }
}
