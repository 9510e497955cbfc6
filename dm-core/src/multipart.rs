//! `multipart/form-data` bodies for Package#3 with GET data (spec Appendix F).
//!
//! The first part carries the Package#3 and has no name; then one part per
//! GET command answered 200, named by the 0-based index of that command in
//! the Package#2.
//!
//! One encoder, [`ResponseWriter`], writes every multipart body: the
//! device's, part by part while its commands run, and
//! [`ResponseBody::encode`]'s.

use std::ops::Range;

use crate::package::{decimal, media_type, Package3, PackageError};

/// One encapsulation of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` of `Content-Disposition: form-data; name="..."`.
    pub name: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A multipart body that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    #[error("Content-Type `{0}` is not multipart/form-data with a boundary")]
    NotMultipart(String),
    #[error("multipart body: no opening boundary")]
    NoOpeningBoundary,
    #[error("multipart body: part {index} has no end of headers")]
    UnterminatedHeaders { index: usize },
    #[error("multipart body: no closing boundary")]
    NoClosingBoundary,
    #[error("multipart body: part {index} has a header that is not UTF-8")]
    BadHeader { index: usize },
    #[error("multipart body: the first part is not a Package#3 ({0})")]
    FirstPartNotPackage3(String),
    #[error(transparent)]
    Package3(#[from] PackageError),
}

/// The `boundary` parameter of a `multipart/form-data` Content-Type.
pub fn boundary_of(content_type: &str) -> Result<&str, MultipartError> {
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(media_type::MULTIPART) {
        return Err(MultipartError::NotMultipart(content_type.to_owned()));
    }
    params
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| MultipartError::NotMultipart(content_type.to_owned()))
}

/// The boundary tried first; [`ResponseWriter`] numbers others when a
/// part holds it.
const BOUNDARY: &str = "dm2-boundary";

/// `BOUNDARY`, or the first `BOUNDARY-n` that occurs in none of `contents`
/// (RFC 2046 5.1.1: the boundary must not appear inside an encapsulation).
fn free_boundary(contents: &[&[u8]]) -> String {
    let mut boundary = String::from(BOUNDARY);
    let mut n = 0u32;
    loop {
        // One searcher per candidate, reused over every part.
        let finder = memchr::memmem::Finder::new(boundary.as_bytes());
        if !contents.iter().any(|c| finder.find(c).is_some()) {
            return boundary;
        }
        n += 1;
        boundary = format!("{BOUNDARY}-{n}");
    }
}

/// The delimiter line and headers of one part, up to its content; returns
/// where the name and the content type were written in `out`.
fn write_head(
    out: &mut Vec<u8>,
    boundary: &str,
    name: Option<&[u8]>,
    content_type: &str,
) -> (Option<Range<usize>>, Range<usize>) {
    const NAMED: &[u8] = b"\r\nContent-Disposition: form-data; name=\"";
    const TYPE: &[u8] = b"\r\nContent-Type: ";
    out.reserve(2 + boundary.len() + NAMED.len() + 1 + TYPE.len() + 4 + content_type.len() + 20);
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    let name_at = match name {
        Some(name) => {
            out.extend_from_slice(NAMED);
            let at = out.len()..out.len() + name.len();
            out.extend_from_slice(name);
            out.push(b'"');
            Some(at)
        }
        None => {
            out.extend_from_slice(&NAMED[..NAMED.len() - 8]);
            None
        }
    };
    out.extend_from_slice(TYPE);
    let content_type_at = out.len()..out.len() + content_type.len();
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    (name_at, content_type_at)
}

fn write_close(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
}

fn content_type_of(boundary: &str) -> String {
    format!("{}; boundary={boundary}", media_type::MULTIPART)
}

/// The first `needle` (never empty) at or after `from`. A multipart body
/// is searched once per part, so this must stay linear; memchr's search is.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(haystack.get(from..)?, needle).map(|i| i + from)
}

/// The end of the header block that starts at `start`: the blank line
/// (CRLF or LF) that ends it, as (end of headers, start of content).
fn header_block_end(body: &[u8], start: usize) -> Option<(usize, usize)> {
    let mut line_start = start;
    loop {
        let nl = line_start + memchr::memchr(b'\n', body.get(line_start..)?)?;
        let line = &body[line_start..nl];
        if line.is_empty() || line == b"\r" {
            return Some((line_start, nl + 1));
        }
        line_start = nl + 1;
    }
}

/// Splits a multipart body into its parts. Line ends may be CRLF or LF.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
    let boundary = boundary_of(content_type)?;
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = match find(body, delim, 0) {
        Some(p) => p + delim.len(),
        None => return Err(MultipartError::NoOpeningBoundary),
    };
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        // Skip the rest of the boundary line.
        let line_end = body
            .get(pos..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
            .map(|i| pos + i)
            .ok_or(MultipartError::NoClosingBoundary)?;
        let start = line_end + 1;
        let index = parts.len();
        let (headers_end, content_start) =
            header_block_end(body, start).ok_or(MultipartError::UnterminatedHeaders { index })?;
        let headers = std::str::from_utf8(&body[start..headers_end])
            .map_err(|_| MultipartError::BadHeader { index })?;
        let next = find(body, delim, content_start).ok_or(MultipartError::NoClosingBoundary)?;
        let mut content = &body[content_start..next];
        // The line break before a delimiter belongs to the delimiter.
        content = content.strip_suffix(b"\n").unwrap_or(content);
        content = content.strip_suffix(b"\r").unwrap_or(content);
        let mut part = Part {
            name: None,
            content_type: "text/plain".to_owned(),
            body: content.to_vec(),
        };
        for line in headers.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("content-type") {
                part.content_type = value.to_owned();
            } else if key.eq_ignore_ascii_case("content-disposition") {
                part.name = value
                    .split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("name"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned());
            }
        }
        parts.push(part);
        pos = next + delim.len();
    }
}

/// A Package#3 together with the GET data of Appendix F.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseBody {
    pub package: Package3,
    /// GET data parts, named by the index of their command.
    pub data: Vec<Part>,
}

impl ResponseBody {
    /// Encodes the response: plain Package#3 when there is no GET data,
    /// otherwise multipart (Appendix F). Returns Content-Type and body.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let mut writer = ResponseWriter::new();
        for p in &self.data {
            let name = p.name.as_deref().map(str::as_bytes);
            writer.write_part(name, &p.content_type, |out| out.extend_from_slice(&p.body));
        }
        let (content_type, body) = writer.finish(&self.package);
        (content_type, body.into_vec())
    }

    /// Reads a response in either form.
    pub fn decode(content_type: &str, body: &[u8]) -> Result<ResponseBody, MultipartError> {
        if media_type::essence(content_type) == media_type::PACKAGE3 {
            return Ok(ResponseBody {
                package: Package3::parse(body)?,
                data: Vec::new(),
            });
        }
        let mut parts = decode(content_type, body)?.into_iter();
        let first = parts.next().ok_or(MultipartError::NoOpeningBoundary)?;
        if media_type::essence(&first.content_type) != media_type::PACKAGE3 {
            return Err(MultipartError::FirstPartNotPackage3(first.content_type));
        }
        Ok(ResponseBody {
            package: Package3::parse(&first.body)?,
            data: parts.collect(),
        })
    }
}

/// A Package#3 response written while its commands run (Appendix F): the
/// data of each GET goes into the body as it is read, instead of into a
/// [`Part`] that is copied into the body at the end.
#[derive(Debug)]
pub struct ResponseWriter {
    boundary: String,
    /// The data parts, delimiter lines and headers included, written with
    /// `boundary`.
    data: Vec<u8>,
    /// Where each part's name, content type and content lie in `data`.
    spans: Vec<Span>,
    finder: memchr::memmem::Finder<'static>,
    /// Some content holds the boundary: `finish` writes the parts again
    /// under another.
    collision: bool,
    /// Bytes kept free at the start of `data`, where `finish` writes the
    /// Package#3 part when it fits: the body is then `data` from there,
    /// made without copying the data parts.
    front: usize,
}

/// The body [`ResponseWriter::finish`] wrote: `buf[start..]`, in the
/// buffer the data parts were written in (sent as it is, e.g. as a slice
/// of `bytes::Bytes`, without a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBytes {
    buf: Vec<u8>,
    start: usize,
}

impl ResponseBytes {
    fn whole(buf: Vec<u8>) -> ResponseBytes {
        ResponseBytes { buf, start: 0 }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer and where the body starts in it.
    pub fn into_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.start)
    }

    /// The body in a vector of its own (moves it to the front).
    pub fn into_vec(self) -> Vec<u8> {
        let (mut buf, start) = self.into_parts();
        buf.drain(..start);
        buf
    }
}

/// The head of the Package#3 part (Appendix F: unnamed, first).
fn package3_head(boundary: &str) -> Vec<u8> {
    let mut head = Vec::new();
    write_head(&mut head, boundary, None, media_type::PACKAGE3);
    head
}

#[derive(Debug)]
struct Span {
    name: Option<Range<usize>>,
    content_type: Range<usize>,
    content: Range<usize>,
}

impl Default for ResponseWriter {
    fn default() -> Self {
        ResponseWriter::new()
    }
}

impl ResponseWriter {
    pub fn new() -> ResponseWriter {
        ResponseWriter::with_boundary(BOUNDARY.to_owned())
    }

    fn with_boundary(boundary: String) -> ResponseWriter {
        ResponseWriter {
            finder: memchr::memmem::Finder::new(boundary.as_bytes()).into_owned(),
            boundary,
            data: Vec::new(),
            spans: Vec::new(),
            collision: false,
            front: 0,
        }
    }

    /// A writer with room for `bytes` of data parts (say, the size of the
    /// last response), so that a large response is not grown step by step,
    /// and in front of them for the Package#3 of `commands` plain statuses,
    /// so that [`ResponseWriter::finish`] copies no data part.
    pub fn with_capacity(bytes: usize, commands: usize) -> ResponseWriter {
        // `{"sc":200},` per status, the object around them, the part's head.
        let front = package3_head(BOUNDARY).len() + 32 + 11 * commands.min(1 << 16);
        let mut data = Vec::with_capacity(front + bytes);
        data.resize(front, 0);
        ResponseWriter {
            data,
            front,
            ..ResponseWriter::new()
        }
    }

    /// True while no data part was written.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes of the data parts written so far (heads included), for a
    /// bound on the response's size.
    pub fn data_len(&self) -> usize {
        self.data.len() - self.front
    }

    /// Adds the data part of the command at `index` of the Package#2 (the
    /// part's name); `write` appends its content.
    pub fn part(&mut self, index: usize, content_type: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let mut digits = [0u8; 20];
        let name = decimal(index as u64, &mut digits);
        self.write_part(Some(name), content_type, write);
    }

    fn write_part(
        &mut self,
        name: Option<&[u8]>,
        content_type: &str,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let (name, content_type) = write_head(&mut self.data, &self.boundary, name, content_type);
        let start = self.data.len();
        write(&mut self.data);
        let end = self.data.len();
        self.collision |= self.finder.find(&self.data[start..end]).is_some();
        self.data.extend_from_slice(b"\r\n");
        self.spans.push(Span {
            name,
            content_type,
            content: start..end,
        });
    }

    /// The Content-Type and body of the response: a plain Package#3
    /// without data parts, else multipart with the Package#3 first.
    pub fn finish(self, package: &Package3) -> (String, ResponseBytes) {
        self.finish_with(package.to_vec())
    }

    fn finish_with(self, package: Vec<u8>) -> (String, ResponseBytes) {
        if self.spans.is_empty() {
            return (
                media_type::PACKAGE3.to_owned(),
                ResponseBytes::whole(package),
            );
        }
        if self.collision || self.finder.find(&package).is_some() {
            // Rare: a part holds the boundary; write them under another.
            let contents: Vec<&[u8]> = std::iter::once(&package[..])
                .chain(self.spans.iter().map(|s| &self.data[s.content.clone()]))
                .collect();
            let mut again = ResponseWriter::with_boundary(free_boundary(&contents));
            for s in &self.spans {
                let bytes = |r: &Range<usize>| &self.data[r.clone()];
                again.write_part(
                    s.name.as_ref().map(bytes),
                    &String::from_utf8_lossy(bytes(&s.content_type)),
                    |out| out.extend_from_slice(bytes(&s.content)),
                );
            }
            return again.finish_with(package);
        }
        let head = package3_head(&self.boundary);
        let first_len = head.len() + package.len() + 2;
        let (mut body, start) = match self.front.checked_sub(first_len) {
            // The usual case: the first part goes in front of the others.
            Some(start) => (self.data, start),
            None => {
                let mut body = Vec::with_capacity(first_len + self.data.len() + 32);
                body.resize(first_len, 0);
                body.extend_from_slice(&self.data[self.front..]);
                (body, 0)
            }
        };
        let first = &mut body[start..start + first_len];
        let (head_at, rest) = first.split_at_mut(head.len());
        head_at.copy_from_slice(&head);
        let (json, crlf) = rest.split_at_mut(package.len());
        json.copy_from_slice(&package);
        crlf.copy_from_slice(b"\r\n");
        write_close(&mut body, &self.boundary);
        (
            content_type_of(&self.boundary),
            ResponseBytes { buf: body, start },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Status;
    use crate::status::StatusCode;

    #[test]
    fn appendix_f_example_decodes() {
        // The example of Appendix F, with LF line ends as printed there.
        let body = "--simple_boundary\nContent-Disposition: form-data\nContent-Type: application/vnd.oma.dm.response+json\n\n{\"Status\": [200, 200, 200, 200, 404, 200]}\n--simple_boundary\nContent-Disposition: form-data; name=\"0\"\nContent-Type: text/plain\n\nIMEI:493005100592800\n--simple_boundary\nContent-Disposition: form-data; name=\"1\"\nContent-Type: application/dmmo+json\n\n{\"ClientURI\": \"urn:oma:mo:oma-dm-devinfo:1.2//DevID\", \"MOData\": {\"DevID\": \"IMEI:493005100592800\"}}\n--simple_boundary--\n";
        let r = ResponseBody::decode(
            "multipart/form-data; boundary=simple_boundary",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.package.statuses.len(), 6);
        assert_eq!(r.data.len(), 2);
        assert_eq!(r.data[0].name.as_deref(), Some("0"));
        assert_eq!(r.data[0].body, b"IMEI:493005100592800");
        assert_eq!(r.data[1].content_type, "application/dmmo+json");
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let r = ResponseBody {
            package: Package3 {
                statuses: vec![
                    Status::new(StatusCode::OK),
                    Status::new(StatusCode::NOT_FOUND),
                ],
                alerts: vec![],
            },
            data: vec![Part {
                name: Some("0".into()),
                content_type: "text/plain".into(),
                // A body that contains the default boundary forces another.
                body: b"line\r\n--dm2-boundary\r\nmore".to_vec(),
            }],
        };
        let (ct, body) = r.encode();
        assert!(ct.starts_with("multipart/form-data; boundary="));
        assert_eq!(ResponseBody::decode(&ct, &body).unwrap(), r);
        let plain = ResponseBody { data: vec![], ..r };
        let (ct, body) = plain.encode();
        assert_eq!(ct, media_type::PACKAGE3);
        assert_eq!(ResponseBody::decode(&ct, &body).unwrap(), plain);
    }

    #[test]
    fn boundary_text_in_part_headers_does_not_cut_the_part() {
        // The boundary is chosen against the bodies only; a header holding
        // its text is still harmless, because after a delimiter the decoder
        // reads the headers up to the blank line before it looks for the
        // next delimiter.
        let r = ResponseBody {
            package: Package3 {
                statuses: vec![Status::new(StatusCode::OK)],
                alerts: vec![],
            },
            data: vec![
                Part {
                    name: Some("x--dm2-boundary".into()),
                    content_type: "text/plain; note=--dm2-boundary-1".into(),
                    body: b"v".to_vec(),
                },
                Part {
                    name: None,
                    content_type: "text/plain".into(),
                    body: b"--dm2-boundary-2".to_vec(),
                },
            ],
        };
        let (ct, body) = r.encode();
        assert_eq!(ResponseBody::decode(&ct, &body).unwrap(), r);
    }

    #[test]
    fn find_locates_needles_anywhere() {
        assert_eq!(find(b"abcabd", b"abd", 0), Some(3));
        assert_eq!(find(b"abcabd", b"abd", 4), None);
        assert_eq!(find(b"ab", b"abc", 0), None);
        assert_eq!(find(b"aaa", b"a", 3), None);
        assert_eq!(find(b"", b"a", 0), None);
        assert_eq!(find(b"xa", b"", 0), None);
    }

    #[test]
    fn broken_multipart_is_an_error_not_a_panic() {
        let ct = "multipart/form-data; boundary=b";
        for body in [
            &b""[..],
            b"--b",
            b"--b\r\nContent-Type: x",
            b"--b\r\n\r\nno end",
            b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
        ] {
            assert!(
                ResponseBody::decode(ct, body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            decode("text/plain", b""),
            Err(MultipartError::NotMultipart(_))
        ));
    }

    #[test]
    fn the_writer_writes_appendix_f_bodies() {
        let package = |uris: Vec<String>| Package3 {
            statuses: vec![
                Status::new(StatusCode::OK),
                Status {
                    code: StatusCode::OK,
                    uris,
                },
            ],
            alerts: vec![],
        };
        let part = |index: usize, content_type: &str, body: &[u8]| Part {
            name: Some(index.to_string()),
            content_type: content_type.into(),
            body: body.to_vec(),
        };
        // The layout of Appendix F, byte for byte: the Package#3 unnamed
        // and first, then each data part named by its command's index.
        let mut writer = ResponseWriter::new();
        writer.part(0, "text/plain", |out| out.extend_from_slice(b"IMEI:1"));
        let (ct, body) = writer.finish(&package(vec![]));
        assert_eq!(ct, "multipart/form-data; boundary=dm2-boundary");
        assert_eq!(
            String::from_utf8(body.into_vec()).unwrap(),
            concat!(
                "--dm2-boundary\r\nContent-Disposition: form-data\r\n",
                "Content-Type: application/vnd.oma.dm.response+json\r\n\r\n",
                "{\"Status\":[{\"sc\":200},{\"sc\":200}]}\r\n",
                "--dm2-boundary\r\nContent-Disposition: form-data; name=\"0\"\r\n",
                "Content-Type: text/plain\r\n\r\nIMEI:1\r\n",
                "--dm2-boundary--\r\n"
            )
        );
        let cases = [
            (package(vec![]), vec![], media_type::PACKAGE3),
            (
                package(vec![]),
                vec![
                    part(0, "text/plain", b"IMEI:1"),
                    part(7, "application/dmmo+json", br#"[{"ClientURI":"x"}]"#),
                    part(12345678901, "application/octet-stream", &[0, 255, 13, 10]),
                    part(3, "text/plain", b""),
                ],
                "multipart/form-data; boundary=dm2-boundary",
            ),
            // Content holding the boundary: written under another one.
            (
                package(vec![]),
                vec![part(0, "text/plain", b"a\r\n--dm2-boundary--\r\n")],
                "multipart/form-data; boundary=dm2-boundary-1",
            ),
            // So is a Package#3 holding it (a stored ClientURI can).
            (
                package(vec!["urn:x:1.0/--dm2-boundary/".into()]),
                vec![part(1, "text/plain", b"v")],
                "multipart/form-data; boundary=dm2-boundary-1",
            ),
        ];
        for (package, data, content_type) in cases {
            let expected = ResponseBody { package, data };
            // Without room in front, with too little and with enough: the
            // same bytes.
            let commands = expected.package.statuses.len();
            let writers = [
                ResponseWriter::new(),
                ResponseWriter::with_capacity(16, 0),
                ResponseWriter::with_capacity(16, commands + 64),
            ];
            let mut bodies = Vec::new();
            for mut writer in writers {
                for p in &expected.data {
                    let index = p.name.as_deref().unwrap_or("").parse().unwrap();
                    writer.part(index, &p.content_type, |out| out.extend_from_slice(&p.body));
                }
                assert_eq!(writer.is_empty(), expected.data.is_empty());
                let (ct, body) = writer.finish(&expected.package);
                assert_eq!(ct, content_type);
                assert_eq!(body.len(), body.as_slice().len());
                assert_eq!(
                    ResponseBody::decode(&ct, body.as_slice()).unwrap(),
                    expected
                );
                assert_eq!(body.clone().into_vec(), body.as_slice());
                bodies.push(body.into_vec());
            }
            assert!(bodies.iter().all(|b| *b == bodies[0]));
            assert_eq!(expected.encode().1, bodies[0]);
        }
    }

    #[test]
    fn a_package3_of_plain_statuses_goes_in_front_of_the_parts() {
        let commands = 100;
        let mut writer = ResponseWriter::with_capacity(64, commands);
        writer.part(7, "text/plain", |out| out.extend_from_slice(b"IMEI:1"));
        let package = Package3 {
            statuses: vec![Status::new(StatusCode::OK); commands],
            ..Package3::default()
        };
        let (ct, body) = writer.finish(&package);
        let decoded = ResponseBody::decode(&ct, body.as_slice()).unwrap();
        assert_eq!(decoded.package, package);
        assert_eq!(decoded.data[0].body, b"IMEI:1");
        // Written in the room left in front: nothing was copied.
        let (_, start) = body.into_parts();
        assert!(start > 0);
    }
}
