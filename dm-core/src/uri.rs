//! ClientURI (spec 6.1.1) and ServerURI (spec 6.2).
//!
//! ```text
//! ClientURI        = MOID "/" mo-inst path-from-moroot [ "?" query ]
//! mo-inst          = MIID / x-name / "" / "*"
//! path-from-moroot = "/" / 1*("/" node-name)
//! node-name        = real-name / x-name / "*"
//! real-name        = 1*unreserved
//! x-name           = "(" ALPHA ")"
//! ```
//!
//! A parsed [`ClientUri`] is always well formed: every x-name is unique and
//! has at least one `nv` field, and every `nv` field names an x-name in use.
//!
//! Node names with characters outside `unreserved`: 12.3 names DACMO nodes
//! after MOIDs (`urn:oma:mo:...`), but real-name = 1*unreserved (6.1.1) has
//! no `:`. RFC 3986, which 6.1.1 says ClientURI is compatible with, writes
//! such characters percent-encoded, and a path segment may also carry a raw
//! `:` (pchar). So when receiving, an MIID or a node name may hold
//! `%XX` escapes (decoded; a decoded `/` or control character is refused)
//! and raw `:`; when the device emits a ClientURI ([`ClientUri::for_node`],
//! `Display`) it percent-encodes every byte of a name that is not
//! unreserved, so what it sends is valid under the strict grammar too.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use smallvec::SmallVec;

use crate::hex;

/// Why a ClientURI was rejected, with the byte offset of the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ClientURI at byte {position}: {reason}")]
pub struct UriError {
    pub position: usize,
    pub reason: UriErrorReason,
}

/// The kinds of ClientURI syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriErrorReason {
    #[error("the MOID is empty")]
    EmptyMoid,
    #[error("character {0:?} is not allowed here")]
    BadChar(char),
    #[error("expected `/` after the MOID and the MO instance")]
    MissingSlash,
    #[error("empty node name (`//` inside the path, or a trailing `/`)")]
    EmptyNodeName,
    #[error("an x-name is `(` one letter `)`")]
    BadXName,
    #[error("x-name ({0}) is used twice")]
    DuplicateXName(char),
    #[error("x-name ({0}) has no nv field to resolve it")]
    UnresolvedXName(char),
    #[error("nv field refers to x-name ({0}), which the path does not use")]
    UnusedNodeValue(char),
    #[error("query field `{0}` has a malformed value")]
    BadQueryValue(&'static str),
    #[error("query field `{0}` appears more than once")]
    RepeatedQueryField(&'static str),
    #[error("bad percent-encoding in a node name (`%` and two hex digits, UTF-8, no `/`)")]
    BadPercentEncoding,
}

/// An MIID or a real-name as a ClientURI carries it, percent-decoded
/// (spec 6.1.1). Up to 24 bytes, nearly every name, are kept inline: a
/// ClientURI of such names is parsed without a heap allocation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UriName(compact_str::CompactString);

impl UriName {
    pub fn new(text: &str) -> UriName {
        UriName(compact_str::CompactString::new(text))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn into_string(self) -> String {
        self.0.into_string()
    }
}

impl std::ops::Deref for UriName {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for UriName {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl std::borrow::Borrow<str> for UriName {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for UriName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for UriName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for UriName {
    fn from(text: &str) -> UriName {
        UriName::new(text)
    }
}

impl From<String> for UriName {
    fn from(text: String) -> UriName {
        UriName(text.into())
    }
}

impl From<UriName> for String {
    fn from(name: UriName) -> String {
        name.into_string()
    }
}

impl PartialEq<str> for UriName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for UriName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for UriName {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<UriName> for str {
    fn eq(&self, other: &UriName) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<UriName> for &str {
    fn eq(&self, other: &UriName) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<UriName> for String {
    fn eq(&self, other: &UriName) -> bool {
        self == other.as_str()
    }
}

/// How the mo-inst component selects MO instances (spec 6.1.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstanceSelector {
    /// An MIID: exactly that instance.
    Miid(UriName),
    /// An x-name, resolved through `nv` fields.
    XName(char),
    /// The empty string: the only instance of the MOID.
    Only,
    /// `*`: every instance of the MOID.
    All,
}

/// How one path segment selects nodes (spec 6.1.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeSelector {
    Name(UriName),
    XName(char),
    All,
}

/// An `nv=<path>:<val>` field: the node at `path` below the node the x-name
/// stands for must have the value `value` (spec 6.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeValue {
    pub x_name: char,
    /// Path below the x-named node, never empty.
    pub path: Vec<UriName>,
    /// As written in the query (percent-encoded).
    pub value: UriName,
}

/// The query component (spec 6.1.1.3). Unknown fields are kept, in order,
/// but have no meaning to the client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Query {
    /// `lv`: only this many sublevels of child nodes.
    pub level: Option<u32>,
    /// `nv` fields, in order.
    pub node_values: Vec<NodeValue>,
    /// `cv`: the cache validator the server holds.
    pub cache_validator: Option<String>,
    /// Unrecognised fields, as `(name, value)`.
    pub other: Vec<(String, String)>,
}

/// A parsed ClientURI (spec 6.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientUri {
    /// Borrowed for the MOIDs of section 12, which nearly every ClientURI
    /// names (see [`WELL_KNOWN_MOIDS`]).
    moid: Cow<'static, str>,
    instance: InstanceSelector,
    /// Inline up to two segments, what most ClientURIs have.
    path: SmallVec<[NodeSelector; 2]>,
    query: Query,
}

impl ClientUri {
    /// The MOID component.
    pub fn moid(&self) -> &str {
        &self.moid
    }

    /// The mo-inst component.
    pub fn instance(&self) -> &InstanceSelector {
        &self.instance
    }

    /// The path below the MO instance root; empty for the root itself.
    pub fn path(&self) -> &[NodeSelector] {
        &self.path
    }

    /// The query component.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// True when the URI may address more than one node.
    pub fn has_wildcard(&self) -> bool {
        self.instance == InstanceSelector::All || self.path.contains(&NodeSelector::All)
    }

    /// The path as plain names when it has no x-name or wildcard.
    pub fn plain_path(&self) -> Option<Vec<&str>> {
        self.path
            .iter()
            .map(|s| match s {
                NodeSelector::Name(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The URI of one resolved node: `MOID/MIID/path` (no query), the MIID
    /// and names percent-encoded where they are not unreserved.
    pub fn for_node<S: AsRef<str>>(moid: &str, miid: &str, path: &[S]) -> String {
        let mut s = String::with_capacity(moid.len() + miid.len() + 2 + 16 * path.len());
        ClientUri::write_for_node(&mut s, moid, miid, path);
        s
    }

    /// [`ClientUri::for_node`], appended to `out` (a buffer reused for
    /// many nodes).
    pub fn write_for_node<S: AsRef<str>>(out: &mut String, moid: &str, miid: &str, path: &[S]) {
        out.push_str(moid);
        out.push('/');
        encode_name_into(out, miid);
        out.push('/');
        for (i, seg) in path.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            encode_name_into(out, seg.as_ref());
        }
    }
}

/// Writes a node name or MIID, percent-encoding every byte that is not
/// unreserved (the module comment says why).
fn encode_name_into(out: &mut String, name: &str) {
    percent_encode_with(out, name, |b| UNRESERVED[usize::from(b)]);
}

/// Writes `value`, percent-encoding (RFC 3986 2.1) every byte `keep`
/// refuses; a value that needs none is copied whole.
fn percent_encode_with(out: &mut String, value: &str, keep: impl Fn(u8) -> bool) {
    if value.bytes().all(&keep) {
        out.push_str(value);
        return;
    }
    for b in value.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            let [high, low] = hex::digits(b, hex::Case::Upper);
            out.push('%');
            out.push(char::from(high));
            out.push(char::from(low));
        }
    }
}

/// RFC 3986 unreserved bytes: ALPHA / DIGIT / "-" / "." / "_" / "~".
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        b += 1;
    }
    table
};

/// The first byte of `text` that `allowed` refuses, as an error at
/// `offset` plus its position naming the character found there.
fn first_bad(text: &str, offset: usize, allowed: impl Fn(u8) -> bool) -> Result<(), UriError> {
    match text.bytes().position(|b| !allowed(b)) {
        None => Ok(()),
        Some(i) => {
            let c = text[i..].chars().next().unwrap_or('\u{fffd}');
            Err(err(offset + i, UriErrorReason::BadChar(c)))
        }
    }
}

/// `text` split at every `sep` byte (an ASCII separator), as
/// `str::split` does; a byte loop, cheaper than the general char searcher
/// for the short pieces of a ClientURI.
fn split_byte(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match t.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = Some(&t[i + 1..]);
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// `text.split_once(sep)` for an ASCII separator (memchr: this splits
/// whole ClientURIs at `?`).
fn split_once_byte(text: &str, sep: u8) -> Option<(&str, &str)> {
    let i = memchr::memchr(sep, text.as_bytes())?;
    Some((&text[..i], &text[i + 1..]))
}

/// The x-names of one ClientURI, in order of appearance, without a heap
/// allocation: an x-name is one of 52 ASCII letters.
struct XNames {
    seen: u64,
    order: [char; 52],
    len: usize,
}

impl XNames {
    fn new() -> XNames {
        XNames {
            seen: 0,
            order: ['\0'; 52],
            len: 0,
        }
    }

    fn bit(x: char) -> u64 {
        match x {
            'a'..='z' => 1 << (x as u32 - 'a' as u32),
            'A'..='Z' => 1 << (26 + x as u32 - 'A' as u32),
            _ => 0,
        }
    }

    /// Adds `x`; false when it was already there.
    fn insert(&mut self, x: char) -> bool {
        let bit = XNames::bit(x);
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        if let Some(slot) = self.order.get_mut(self.len) {
            *slot = x;
            self.len += 1;
        }
        true
    }

    fn contains(&self, x: char) -> bool {
        self.seen & XNames::bit(x) != 0
    }

    fn iter(&self) -> impl Iterator<Item = char> + '_ {
        self.order[..self.len].iter().copied()
    }
}

fn err(position: usize, reason: UriErrorReason) -> UriError {
    UriError { position, reason }
}

/// Parses an `(x)` at `offset`; `text` is exactly the segment.
fn parse_x_name(text: &str, offset: usize) -> Result<Option<char>, UriError> {
    if !text.starts_with('(') {
        return Ok(None);
    }
    let mut chars = text.chars();
    match (chars.next(), chars.next(), chars.next(), chars.next()) {
        (Some('('), Some(c), Some(')'), None) if c.is_ascii_alphabetic() => Ok(Some(c)),
        _ => Err(err(offset, UriErrorReason::BadXName)),
    }
}

/// Reads an MIID or a real-name at `offset`: unreserved bytes as they are
/// (the fast path), else `%XX` escapes decoded and raw `:` kept (the module
/// comment says why).
fn parse_name(text: &str, offset: usize) -> Result<Cow<'_, str>, UriError> {
    if text.is_empty() {
        return Err(err(offset, UriErrorReason::EmptyNodeName));
    }
    match text.bytes().position(|b| !UNRESERVED[usize::from(b)]) {
        None => Ok(Cow::Borrowed(text)),
        Some(first) => decode_name(text, offset, first).map(Cow::Owned),
    }
}

fn decode_name(text: &str, offset: usize, first: usize) -> Result<String, UriError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        if UNRESERVED[usize::from(b)] || b == b':' {
            out.push(b);
            i += 1;
        } else if b == b'%' {
            let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) => hex::value(h).zip(hex::value(l)).map(|(h, l)| h << 4 | l),
                _ => None,
            }
            .filter(|d| *d != b'/' && !d.is_ascii_control())
            .ok_or_else(|| err(offset + i, UriErrorReason::BadPercentEncoding))?;
            out.push(decoded);
            i += 3;
        } else {
            let c = text[i..].chars().next().unwrap_or('\u{fffd}');
            return Err(err(offset + i, UriErrorReason::BadChar(c)));
        }
    }
    String::from_utf8(out).map_err(|_| err(offset + first, UriErrorReason::BadPercentEncoding))
}

/// The MOIDs of the MOs of spec 12.1-12.4 (as the plugins in `mo-plugins`
/// declare them): a parsed ClientURI naming one of them borrows it instead
/// of allocating, as `http` keeps its standard header names.
const WELL_KNOWN_MOIDS: [&str; 4] = [
    "urn:oma:mo:oma-dm-devinfo:1.2",
    "urn:oma:mo:oma-dm-dmacc:1.2",
    "urn:oma:mo:oma-dm-dacmo:1.0",
    "urn:oma:mo:oma-sessioninfomo:1.0",
];

fn well_known_moid(moid: &str) -> Option<&'static str> {
    WELL_KNOWN_MOIDS.iter().copied().find(|m| *m == moid)
}

impl FromStr for ClientUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        // Every command of a Package#2 carries a ClientURI: memchr finds
        // the separators of the whole URI and of the MOID (some 30 bytes)
        // in fewer instructions than a byte loop; the short pieces after
        // them are scanned byte by byte.
        let (hier, query_text) = match split_once_byte(s, b'?') {
            Some((h, q)) => (h, Some(q)),
            None => (s, None),
        };

        // MOID: everything up to the first '/'.
        let moid_end = memchr::memchr(b'/', hier.as_bytes())
            .ok_or_else(|| err(hier.len(), UriErrorReason::MissingSlash))?;
        let moid = &hier[..moid_end];
        if moid.is_empty() {
            return Err(err(0, UriErrorReason::EmptyMoid));
        }
        // A well-known MOID is valid as it stands.
        let known = well_known_moid(moid);
        if known.is_none() {
            first_bad(moid, 0, |b| UNRESERVED[usize::from(b)] || b == b':')?;
        }

        // mo-inst: up to the next '/', which path-from-moroot requires.
        let inst_start = moid_end + 1;
        let rest = &hier[inst_start..];
        let inst_len = rest
            .bytes()
            .position(|b| b == b'/')
            .ok_or_else(|| err(hier.len(), UriErrorReason::MissingSlash))?;
        let inst_text = &rest[..inst_len];
        let instance = if inst_text.is_empty() {
            InstanceSelector::Only
        } else if inst_text == "*" {
            InstanceSelector::All
        } else if let Some(x) = parse_x_name(inst_text, inst_start)? {
            InstanceSelector::XName(x)
        } else {
            InstanceSelector::Miid(UriName::new(&parse_name(inst_text, inst_start)?))
        };

        // path-from-moroot: "/" alone, or one or more "/" node-name.
        let path_start = inst_start + inst_len;
        let path_text = &hier[path_start..];
        let mut path = SmallVec::new();
        if path_text != "/" {
            path.reserve_exact(path_text.bytes().filter(|b| *b == b'/').count());
            let mut offset = path_start + 1;
            for seg in split_byte(&path_text[1..], b'/') {
                let sel = if seg == "*" {
                    NodeSelector::All
                } else if let Some(x) = parse_x_name(seg, offset)? {
                    NodeSelector::XName(x)
                } else {
                    NodeSelector::Name(UriName::new(&parse_name(seg, offset)?))
                };
                path.push(sel);
                offset += seg.len() + 1;
            }
        }

        // x-names must be unique within the URI (6.1.1.1).
        let mut x_names = XNames::new();
        let inst_x = match instance {
            InstanceSelector::XName(x) => Some(x),
            _ => None,
        };
        let path_x = path.iter().filter_map(|p| match p {
            NodeSelector::XName(x) => Some(*x),
            _ => None,
        });
        for x in inst_x.into_iter().chain(path_x) {
            if !x_names.insert(x) {
                return Err(err(moid_end, UriErrorReason::DuplicateXName(x)));
            }
        }

        let query_start = hier.len() + 1;
        let query = match query_text {
            Some(q) => parse_query(q, query_start)?,
            None => Query::default(),
        };
        for x in x_names.iter() {
            if !query.node_values.iter().any(|nv| nv.x_name == x) {
                return Err(err(s.len(), UriErrorReason::UnresolvedXName(x)));
            }
        }
        if let Some(nv) = query
            .node_values
            .iter()
            .find(|nv| !x_names.contains(nv.x_name))
        {
            return Err(err(query_start, UriErrorReason::UnusedNodeValue(nv.x_name)));
        }

        Ok(ClientUri {
            moid: known.map_or_else(|| Cow::Owned(moid.to_owned()), Cow::Borrowed),
            instance,
            path,
            query,
        })
    }
}

fn parse_query(q: &str, start: usize) -> Result<Query, UriError> {
    let mut query = Query::default();
    let mut offset = start;
    for field in split_byte(q, b'&') {
        let here = offset;
        offset += field.len() + 1;
        if field.is_empty() {
            continue;
        }
        let (name, value) = split_once_byte(field, b'=').unwrap_or((field, ""));
        match name {
            "lv" => {
                if query.level.is_some() {
                    return Err(err(here, UriErrorReason::RepeatedQueryField("lv")));
                }
                // "<n> represents a positive integer".
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| err(here + 3, UriErrorReason::BadQueryValue("lv")))?;
                query.level = Some(n);
            }
            "cv" => {
                if query.cache_validator.is_some() {
                    return Err(err(here, UriErrorReason::RepeatedQueryField("cv")));
                }
                if value.is_empty() {
                    return Err(err(here + 3, UriErrorReason::BadQueryValue("cv")));
                }
                query.cache_validator = Some(value.to_owned());
            }
            "nv" => query.node_values.push(parse_node_value(value, here + 3)?),
            _ => query.other.push((name.to_owned(), value.to_owned())),
        }
    }
    Ok(query)
}

/// `nv=(x)/ID:Temperature`: an x-name, a path below it, `:`, the value.
fn parse_node_value(text: &str, offset: usize) -> Result<NodeValue, UriError> {
    let bad = || err(offset, UriErrorReason::BadQueryValue("nv"));
    let (path_text, value) = split_once_byte(text, b':').ok_or_else(bad)?;
    let mut segs = split_byte(path_text, b'/');
    let x_name = parse_x_name(segs.next().unwrap_or(""), offset)?.ok_or_else(bad)?;
    let mut path = Vec::new();
    let mut seg_offset = offset + 4;
    for seg in segs {
        path.push(UriName::new(&parse_name(seg, seg_offset)?));
        seg_offset += seg.len() + 1;
    }
    if path.is_empty() {
        return Err(bad());
    }
    Ok(NodeValue {
        x_name,
        path,
        value: UriName::new(value),
    })
}

impl fmt::Display for ClientUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.moid)?;
        match &self.instance {
            InstanceSelector::Miid(m) => write_name(f, m)?,
            InstanceSelector::XName(x) => write!(f, "({x})")?,
            InstanceSelector::Only => {}
            InstanceSelector::All => f.write_str("*")?,
        }
        if self.path.is_empty() {
            f.write_str("/")?;
        }
        for seg in &self.path {
            match seg {
                NodeSelector::Name(n) => {
                    f.write_str("/")?;
                    write_name(f, n)?;
                }
                NodeSelector::XName(x) => write!(f, "/({x})")?,
                NodeSelector::All => f.write_str("/*")?,
            }
        }
        let q = &self.query;
        let mut fields: Vec<String> = Vec::new();
        fields.extend(q.level.map(|n| format!("lv={n}")));
        fields.extend(q.node_values.iter().map(|nv| {
            let mut s = format!("nv=({})", nv.x_name);
            for seg in &nv.path {
                s.push('/');
                encode_name_into(&mut s, seg);
            }
            s.push(':');
            s.push_str(&nv.value);
            s
        }));
        fields.extend(q.cache_validator.as_ref().map(|cv| format!("cv={cv}")));
        fields.extend(q.other.iter().map(|(n, v)| format!("{n}={v}")));
        if !fields.is_empty() {
            write!(f, "?{}", fields.join("&"))?;
        }
        Ok(())
    }
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if name.bytes().all(|b| UNRESERVED[usize::from(b)]) {
        return f.write_str(name);
    }
    let mut s = String::with_capacity(name.len() + 8);
    encode_name_into(&mut s, name);
    f.write_str(&s)
}

/// The values a DM Client substitutes into a ServerURI (spec 6.2). `None`
/// is written as `-1`, as the spec requires for unsupported values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerUriParams {
    pub dev_id: String,
    pub mnc: Option<String>,
    pub mcc: Option<String>,
    pub cmnc: Option<String>,
    pub cmcc: Option<String>,
    pub sp_name: Option<String>,
}

/// A ServerURI as sent by a DM Server: an RFC 3986 URI that may carry
/// `[DevID]`-style parameters (spec 6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerUri(String);

impl ServerUri {
    pub fn new(text: impl Into<String>) -> ServerUri {
        ServerUri(text.into())
    }

    /// The URI as the server wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI to use: the parameters of spec 6.2 replaced, the whole an
    /// RFC 3986 URI (6.2: "After these parameters are replaced, the
    /// ServerURI MUST be encoded as a URI as defined in \[RFC3986\]").
    /// - `[Name]` for a value of [`ServerUriParams`] becomes that value,
    ///   percent-encoded, or `-1` when the device has none;
    /// - any other `[Name]` is a parameter this client does not support:
    ///   `-1` too (6.2: "All non-supported values MUST be replaced with the
    ///   integer value '-1'");
    /// - an IP-literal host (`https://[::1]:8443/`) is kept: RFC 3986 3.2.2
    ///   writes it in brackets, and it is no parameter;
    /// - a `[` or `]` that opens or closes no parameter, and every byte a
    ///   URI may not carry as written (space, `"`, `{`, non-ASCII, a `%`
    ///   without two hex digits, a second `#`), is percent-encoded.
    pub fn resolve(&self, params: &ServerUriParams) -> String {
        let text = self.0.as_str();
        let bytes = text.as_bytes();
        let authority = authority_range(text);
        let mut out = String::with_capacity(text.len() + 16);
        let mut fragment = false;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let in_authority = authority.contains(&i);
            if b == b'[' {
                if let Some(name) = bracketed(&text[i + 1..]) {
                    let host_start = in_authority && (i == authority.start || bytes[i - 1] == b'@');
                    if host_start && is_ip_literal(name) {
                        out.push_str(&text[i..i + name.len() + 2]);
                    } else {
                        let value = params.value(name).unwrap_or("-1");
                        if in_authority {
                            // A reg-name has no `:` (it would start the port).
                            encode_name_into(&mut out, value);
                        } else {
                            percent_encode_into(&mut out, value);
                        }
                    }
                    i += name.len() + 2;
                    continue;
                }
            }
            let keep = match b {
                b'%' => {
                    bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                }
                b'#' => !std::mem::replace(&mut fragment, true),
                b'[' | b']' => false,
                _ => UNRESERVED[usize::from(b)] || b"!$&'()*+,;=:/?@".contains(&b),
            };
            if keep {
                out.push(char::from(b));
            } else {
                let [high, low] = hex::digits(b, hex::Case::Upper);
                out.push('%');
                out.push(char::from(high));
                out.push(char::from(low));
            }
            i += 1;
        }
        out
    }
}

impl ServerUriParams {
    /// The value of parameter `name` (spec 6.2's table); `None` when the
    /// device has none or the name is not in the table.
    fn value(&self, name: &str) -> Option<&str> {
        match name {
            "DevID" => Some(self.dev_id.as_str()),
            "MNC" => self.mnc.as_deref(),
            "MCC" => self.mcc.as_deref(),
            "CMNC" => self.cmnc.as_deref(),
            "CMCC" => self.cmcc.as_deref(),
            "SPName" => self.sp_name.as_deref(),
            _ => None,
        }
    }
}

/// The name of a parameter that starts `after_open` (the text after a
/// `[`): non-empty, up to the next `]`, with no `[` in it.
fn bracketed(after_open: &str) -> Option<&str> {
    let end = after_open.find(['[', ']'])?;
    (end > 0 && after_open.as_bytes()[end] == b']').then(|| &after_open[..end])
}

/// The byte range of the authority of `uri` (RFC 3986 3.2: after
/// `scheme "://"`, up to `/`, `?`, `#` or the end); empty if it has none.
fn authority_range(uri: &str) -> std::ops::Range<usize> {
    let scheme_end = uri
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        .filter(|&n| n > 0 && uri.as_bytes()[0].is_ascii_alphabetic());
    let Some(start) = scheme_end
        .filter(|&n| uri[n..].starts_with("://"))
        .map(|n| n + 3)
    else {
        return 0..0;
    };
    let end = uri[start..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |n| start + n);
    start..end
}

/// RFC 3986 3.2.2 IP-literal content: an IPv6 address (with an RFC 6874
/// zone, `%25` and 1*(unreserved / pct-encoded)), or IPvFuture.
fn is_ip_literal(inside: &str) -> bool {
    if let Some(future) = inside.strip_prefix(['v', 'V']) {
        return future.split_once('.').is_some_and(|(version, rest)| {
            !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_hexdigit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| UNRESERVED[usize::from(b)] || b"!$&'()*+,;=:".contains(&b))
        });
    }
    let (address, zone) = match inside.split_once("%25") {
        Some((address, zone)) => (address, Some(zone)),
        None => (inside, None),
    };
    let zone_ok = |z: &str| {
        let z = z.as_bytes();
        let mut i = 0;
        while let Some(&b) = z.get(i) {
            i += match b {
                b'%' if z
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    3
                }
                _ if UNRESERVED[usize::from(b)] => 1,
                _ => return false,
            };
        }
        !z.is_empty()
    };
    address.parse::<std::net::Ipv6Addr>().is_ok() && zone.is_none_or(zone_ok)
}

impl fmt::Display for ServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `:`
/// (which DevIDs such as `IMEI:...` contain and which is legal in a path).
fn percent_encode_into(out: &mut String, value: &str) {
    percent_encode_with(out, value, |b| UNRESERVED[usize::from(b)] || b == b':');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ClientUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn names_short_and_long_keep_their_text() {
        let long = "a-node-name-longer-than-twenty-four-bytes";
        let u = parse(&format!("urn:x:1.0/inst%3A1/{long}/B"));
        assert_eq!(u.instance(), &InstanceSelector::Miid("inst:1".into()));
        let names: Vec<&str> = u.plain_path().unwrap();
        assert_eq!(names, [long, "B"]);
        let NodeSelector::Name(first) = &u.path()[0] else {
            panic!("a name");
        };
        // Compared, ordered and hashed as the text it holds.
        assert_eq!(first, long);
        assert_eq!(long, first);
        assert_eq!(first, &long.to_owned());
        assert_eq!(first.clone().into_string(), long);
        let set: std::collections::HashSet<UriName> = [first.clone()].into();
        assert!(set.contains(long));
        let (short, long_name) = (UriName::from("B"), UriName::from(long.to_owned()));
        assert!(short < long_name);
        assert_eq!(format!("{first}|{first:?}"), format!("{long}|{long:?}"));
    }

    #[test]
    fn well_known_and_other_moids_read_alike() {
        for moid in WELL_KNOWN_MOIDS
            .iter()
            .map(|m| m.to_string())
            .chain(["urn:oma:mo:oma-dm-devinfo:1.20".into(), "urn:x:1.0".into()])
        {
            let uri: ClientUri = format!("{moid}//A").parse().unwrap();
            assert_eq!(uri.moid(), moid);
            assert_eq!(uri.to_string(), format!("{moid}//A"));
            assert_eq!(uri, uri.to_string().parse().unwrap());
        }
    }

    #[test]
    fn root_of_the_only_instance() {
        let u = parse("urn:oma:mo:oma-dm-devinfo:1.2//");
        assert_eq!(u.moid(), "urn:oma:mo:oma-dm-devinfo:1.2");
        assert_eq!(u.instance(), &InstanceSelector::Only);
        assert!(u.path().is_empty());
        assert_eq!(u.to_string(), "urn:oma:mo:oma-dm-devinfo:1.2//");
    }

    #[test]
    fn leaf_of_the_only_instance() {
        let u = parse("urn:oma:mo:oma-dm-devinfo:1.2//DevID");
        assert_eq!(u.plain_path(), Some(vec!["DevID"]));
    }

    #[test]
    fn spec_6_1_3_examples_parse() {
        let cases = [
            "urn:oma:mo:moid:1.0/left/",
            "urn:oma:mo:moid:1.0//",
            "urn:oma:mo:moid:1.0/(x)/?nv=(x)/ID:Temperature",
            "urn:oma:mo:moid:1.0/(x)/Data/1/Value?nv=(x)/ID:GPS",
            "urn:oma:mo:moid:1.0/right/Data/(x)/Value?nv=(x)/Date:12.1",
            "urn:oma:mo:moid:1.0/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2",
            "urn:oma:mo:moid:1.0/*/Setting",
            "urn:oma:mo:moid:1.0/(x)/Data/*/Value?nv=(x)/ID:GPS",
            "urn:oma:mo:moid:1.0/(x)/Data/*/Value?nv=(x)/ID:GPS&nv=(x)/Setting:0xB2",
            "urn:oma:mo:moid:1.0/*/Data/*/Value",
        ];
        for c in cases {
            let u = parse(c);
            assert_eq!(u.to_string(), c, "display round trip");
        }
        let u = parse("urn:oma:mo:moid:1.0/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2");
        assert_eq!(u.instance(), &InstanceSelector::XName('x'));
        assert_eq!(u.path()[1], NodeSelector::XName('y'));
        assert_eq!(u.query().node_values[1].value, "12.2");
        assert!(parse("urn:oma:mo:moid:1.0/*/Setting").has_wildcard());
    }

    #[test]
    fn query_fields_and_unknown_fields() {
        let u = parse("urn:a:1.0/m1/?lv=2&cv=abc&vendor=1");
        assert_eq!(u.query().level, Some(2));
        assert_eq!(u.query().cache_validator.as_deref(), Some("abc"));
        assert_eq!(u.query().other, vec![("vendor".into(), "1".into())]);
    }

    #[test]
    fn malformed_uris_name_the_fault() {
        let cases = [
            ("", 0, UriErrorReason::MissingSlash),
            ("/m/", 0, UriErrorReason::EmptyMoid),
            ("urn:a", 5, UriErrorReason::MissingSlash),
            ("urn:a/m", 7, UriErrorReason::MissingSlash),
            ("urn:a//x//y", 9, UriErrorReason::EmptyNodeName),
            ("urn:a//x/", 9, UriErrorReason::EmptyNodeName),
            ("urn:a//a b", 8, UriErrorReason::BadChar(' ')),
            ("urn:a/(xy)/", 6, UriErrorReason::BadXName),
            ("urn:a/(x)/", 10, UriErrorReason::UnresolvedXName('x')),
            ("urn:a//?lv=0", 11, UriErrorReason::BadQueryValue("lv")),
            (
                "urn:a//?nv=(x)/A:1",
                8,
                UriErrorReason::UnusedNodeValue('x'),
            ),
        ];
        for (text, pos, reason) in cases {
            let e = text.parse::<ClientUri>().unwrap_err();
            assert_eq!((e.position, &e.reason), (pos, &reason), "{text}");
        }
    }

    #[test]
    fn moid_named_nodes_are_read_percent_encoded_or_with_raw_colons() {
        // DACMO (12.3) names its nodes after MOIDs; 6.1.1's real-name has
        // no ':'. Both the RFC 3986 escape and a raw ':' are accepted.
        let encoded =
            parse("urn:oma:mo:oma-dm-dacmo:1.0/urn%3Aoma%3amo%3Aoma-dm-dmacc%3A1.2/A/1/AR");
        let raw = parse("urn:oma:mo:oma-dm-dacmo:1.0/urn:oma:mo:oma-dm-dmacc:1.2/A/1/AR");
        assert_eq!(encoded, raw);
        assert_eq!(
            raw.instance(),
            &InstanceSelector::Miid("urn:oma:mo:oma-dm-dmacc:1.2".into())
        );
        // Emitted percent-encoded, so strict parsers read it too.
        let text = "urn:oma:mo:oma-dm-dacmo:1.0/urn%3Aoma%3Amo%3Aoma-dm-dmacc%3A1.2/A/1/AR";
        assert_eq!(raw.to_string(), text);
        assert_eq!(
            ClientUri::for_node(
                "urn:oma:mo:oma-dm-dacmo:1.0",
                "urn:oma:mo:oma-dm-dmacc:1.2",
                &["A", "1", "AR"]
            ),
            text
        );
        assert_eq!(parse(text), raw);
        // Names in the path and in nv fields decode too.
        let u = parse("urn:a/m/a%20b/(x)?nv=(x)/c%3Ad:v");
        assert_eq!(u.path()[0], NodeSelector::Name("a b".into()));
        assert_eq!(u.query().node_values[0].path, ["c:d"]);
        assert_eq!(u.to_string(), "urn:a/m/a%20b/(x)?nv=(x)/c%3Ad:v");
        // Non-ASCII names round-trip as UTF-8 escapes.
        assert_eq!(
            parse(&ClientUri::for_node("urn:a", "m", &["é"])).plain_path(),
            Some(vec!["é"])
        );
        for (bad, position) in [
            ("urn:a/m/a%2", 9),
            ("urn:a/m/a%zz", 9),
            ("urn:a/m/a%2Fb", 9),
            ("urn:a/m/%0a", 8),
            ("urn:a/m%ff/", 7),
        ] {
            let e = bad.parse::<ClientUri>().unwrap_err();
            assert_eq!(
                (e.position, e.reason),
                (position, UriErrorReason::BadPercentEncoding),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_uri_substitution_follows_6_2() {
        let uri = ServerUri::new("https://prov.example/Settings/[MCC]/[MNC]/[DevID]/[Other]");
        let params = ServerUriParams {
            dev_id: "IMEI:49300 5".into(),
            mcc: Some("262".into()),
            ..Default::default()
        };
        // [Other] is no parameter this client supports: -1 as well (6.2).
        assert_eq!(
            uri.resolve(&params),
            "https://prov.example/Settings/262/-1/IMEI:49300%205/-1"
        );
    }

    #[test]
    fn current_network_and_service_provider_values_follow_6_2() {
        // DM-OBJ-007..009-C-M: CMNC, CMCC and SPName each get their own
        // value, not the home network's MNC/MCC.
        let uri = ServerUri::new("https://prov.example/[MCC]-[MNC]/[CMCC]-[CMNC]?sp=[SPName]");
        let roaming = ServerUriParams {
            dev_id: "D".into(),
            mnc: Some("01".into()),
            mcc: Some("262".into()),
            cmnc: Some("15".into()),
            cmcc: Some("208".into()),
            sp_name: Some("Telefónica & Co/DE".into()),
        };
        assert_eq!(
            uri.resolve(&roaming),
            "https://prov.example/262-01/208-15?sp=Telef%C3%B3nica%20%26%20Co%2FDE"
        );
        // "If the DM Client is not associated with a mobile network then
        // this value MUST be -1" (6.2), for each of the five.
        let no_network = ServerUriParams {
            dev_id: "D".into(),
            ..Default::default()
        };
        assert_eq!(
            uri.resolve(&no_network),
            "https://prov.example/-1--1/-1--1?sp=-1"
        );
    }

    /// An independent reading of RFC 3986's character rules: every byte is
    /// unreserved, reserved or part of a `%XX`; `[` `]` only around an
    /// IP-literal host (3.2.2); at most one `#`.
    fn assert_rfc3986(uri: &str) {
        let bytes = uri.as_bytes();
        let host_literal = uri
            .find("://")
            .map(|i| i + 3)
            .filter(|&h| bytes.get(h) == Some(&b'['))
            .and_then(|h| uri[h..].find(']').map(|e| h..=h + e));
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%' {
                assert!(
                    bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit),
                    "lone % at {i} in {uri}"
                );
                i += 3;
                continue;
            }
            let bracket_ok = host_literal.as_ref().is_some_and(|r| r.contains(&i));
            assert!(
                b.is_ascii_alphanumeric()
                    || b"-._~:/?#@!$&'()*+,;=".contains(&b)
                    || (matches!(b, b'[' | b']') && bracket_ok),
                "byte {:?} at {i} in {uri}",
                char::from(b)
            );
            i += 1;
        }
        assert!(uri.matches('#').count() <= 1, "two fragments: {uri}");
    }

    #[test]
    fn every_unsupported_parameter_becomes_minus_one() {
        let params = ServerUriParams {
            dev_id: "IMEI:1".into(),
            ..Default::default()
        };
        let cases = [
            ("https://s.example/[Other]", "https://s.example/-1"),
            (
                "https://s.example/a?x=[devid]&y=[IMSI]",
                "https://s.example/a?x=-1&y=-1",
            ),
            (
                "https://s.example/[two words]/[DevID]",
                "https://s.example/-1/IMEI:1",
            ),
            // A parameter in the host: only unreserved bytes there.
            ("https://[DevID].s.example/", "https://IMEI%3A1.s.example/"),
            ("https://[Region].s.example/", "https://-1.s.example/"),
        ];
        for (template, resolved) in cases {
            let out = ServerUri::new(template).resolve(&params);
            assert_eq!(out, resolved, "{template}");
            assert_rfc3986(&out);
        }
    }

    #[test]
    fn stray_brackets_and_unsafe_bytes_are_percent_encoded() {
        let params = ServerUriParams {
            dev_id: "a b/c[d]?#é".into(),
            ..Default::default()
        };
        let cases = [
            // A bracket that opens or closes no parameter.
            ("https://s.example/a[b", "https://s.example/a%5Bb"),
            ("https://s.example/a]b", "https://s.example/a%5Db"),
            ("https://s.example/[]", "https://s.example/%5B%5D"),
            (
                "https://s.example/[[DevID]",
                "https://s.example/%5Ba%20b%2Fc%5Bd%5D%3F%23%C3%A9",
            ),
            (
                "https://s.example/[x[DevID]]",
                "https://s.example/%5Bxa%20b%2Fc%5Bd%5D%3F%23%C3%A9%5D",
            ),
            // What the server wrote that a URI may not carry as written.
            (
                "https://s.example/a b\"{}|^`<>",
                "https://s.example/a%20b%22%7B%7D%7C%5E%60%3C%3E",
            ),
            ("https://s.example/é", "https://s.example/%C3%A9"),
            (
                "https://s.example/100%/%41%zz",
                "https://s.example/100%25/%41%25zz",
            ),
            ("https://s.example/p#f#g", "https://s.example/p#f%23g"),
            // Reserved characters the server wrote keep their meaning.
            (
                "https://u@s.example:8443/a;b=c?d=e&f=g+h#i",
                "https://u@s.example:8443/a;b=c?d=e&f=g+h#i",
            ),
        ];
        for (template, resolved) in cases {
            let out = ServerUri::new(template).resolve(&params);
            assert_eq!(out, resolved, "{template}");
            assert_rfc3986(&out);
        }
    }

    #[test]
    fn ip_literal_hosts_are_no_parameters() {
        let params = ServerUriParams {
            dev_id: "D1".into(),
            ..Default::default()
        };
        for (template, resolved) in [
            ("https://[::1]:8443/dm/[DevID]", "https://[::1]:8443/dm/D1"),
            ("http://[2001:db8::7]/[Other]", "http://[2001:db8::7]/-1"),
            ("http://u@[fe80::1%25eth0]/", "http://u@[fe80::1%25eth0]/"),
            ("http://[v1.fe:x]/", "http://[v1.fe:x]/"),
            // Bracketed text outside the host is a parameter, even if it
            // reads as an address.
            ("http://h/[::1]", "http://h/-1"),
            ("[::1]/x", "-1/x"),
            ("http://[fe80::1%25a:b]/", "http://-1/"),
        ] {
            let out = ServerUri::new(template).resolve(&params);
            assert_eq!(out, resolved, "{template}");
        }
        assert_rfc3986(&ServerUri::new("https://[::1]:8443/dm/[DevID]").resolve(&params));
    }

    proptest::proptest! {
        /// Whatever the server writes and whatever the device's values are,
        /// what is used is an RFC 3986 URI with no parameter left (6.2).
        #[test]
        fn resolved_server_uris_are_rfc3986(
            template in "https://s\\.example/[ -~é\\[\\]]{0,40}",
            dev_id in "[ -~é]{0,12}",
            sp in proptest::option::of("[ -~é]{0,12}"),
        ) {
            let params = ServerUriParams { dev_id, sp_name: sp, ..Default::default() };
            let out = ServerUri::new(template).resolve(&params);
            assert_rfc3986(&out);
        }
    }
}
