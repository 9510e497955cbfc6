//! HTTP Digest access authentication, client side (spec 9.2.1: the DM
//! Client SHOULD support the Digest scheme of RFC 2617; DM-SEC-002-C-O).
//!
//! The server's `WWW-Authenticate: Digest` challenge is parsed into a
//! [`Challenge`]; [`Challenge::authorization`] answers it for one request.
//! MD5 (RFC 2617) and SHA-256 (RFC 7616), each also in its `-sess` form,
//! with `qop=auth` when the server offers it and without qop (RFC 2069
//! compatibility) when it offers none; `auth-int` alone is refused, as
//! is any other algorithm, so the caller can report why it cannot answer.
//! The password never travels: only the hash does.

use dm_core::notification::hex;
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The hash a challenge names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the challenge is not Digest")]
    NotDigest,
    #[error("the Digest challenge has no {0}")]
    Missing(&'static str),
    #[error("Digest algorithm `{0}` is not supported (MD5 and SHA-256 are)")]
    Algorithm(String),
    #[error("Digest qop `{0}` is not supported (auth is)")]
    Qop(String),
}

/// A parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// The `-sess` variant: the session key mixes in the nonces.
    session: bool,
    /// The server offered `qop=auth` (else the RFC 2069 form is used).
    qop_auth: bool,
    /// The name the server used for the algorithm, echoed back.
    algorithm_name: Option<String>,
    /// The server said the last nonce was stale (retry, same password).
    pub stale: bool,
}

impl Challenge {
    /// Reads one `WWW-Authenticate` header value.
    pub fn parse(header: &str) -> Result<Challenge, DigestError> {
        let header = header.trim_start();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest);
        }
        let params = auth_params(params);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm_name = get("algorithm");
        let (algorithm, session) = match algorithm_name.as_deref().map(str::to_ascii_uppercase) {
            None => (Algorithm::Md5, false),
            Some(a) => match a.as_str() {
                "MD5" => (Algorithm::Md5, false),
                "MD5-SESS" => (Algorithm::Md5, true),
                "SHA-256" => (Algorithm::Sha256, false),
                "SHA-256-SESS" => (Algorithm::Sha256, true),
                _ => return Err(DigestError::Algorithm(a)),
            },
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(q) => {
                if !q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::Qop(q));
                }
                true
            }
        };
        Ok(Challenge {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            session,
            qop_auth,
            algorithm_name,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` header value for `method` on `uri` (the
    /// request-target: path and query), the `nc`-th use of this nonce, with
    /// the client nonce `cnonce`.
    pub fn authorization(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let h = |s: &str| self.algorithm.hex(s);
        let mut ha1 = h(&format!("{user}:{}:{password}", self.realm));
        if self.session {
            ha1 = h(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = h(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            h(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
        );
        if let Some(a) = &self.algorithm_name {
            out.push_str(&format!(", algorithm={a}"));
        }
        if self.qop_auth {
            out.push_str(&format!(
                ", qop=auth, nc={nc}, cnonce=\"{}\"",
                quote(cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        out
    }
}

/// Escapes `"` and `\` for a quoted-string (RFC 7230 3.2.6).
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The `name=value` pairs of a challenge, values unquoted; a quoted value
/// may hold commas and escaped quotes.
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_owned();
        if name.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            out.push((name, String::new()));
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        out.push((name, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example() {
        // RFC 2617 3.5.
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let a = c.authorization(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(
            a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{a}"
        );
        assert!(a.contains("nc=00000001") && a.contains("qop=auth"), "{a}");
        assert!(
            a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{a}"
        );
        assert!(!a.contains("Circle"), "the password never travels: {a}");
    }

    #[test]
    fn rfc_7616_examples() {
        // RFC 7616 3.9.1: the same request answered with SHA-256 and MD5.
        let params = "realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                      nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                      opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (algorithm, expected) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = Challenge::parse(&format!("Digest {params}, algorithm={algorithm}")).unwrap();
            let a = c.authorization(
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                1,
                cnonce,
            );
            assert!(a.contains(&format!("response=\"{expected}\"")), "{a}");
            assert!(a.contains(&format!("algorithm={algorithm}")), "{a}");
        }
    }

    #[test]
    fn challenges_it_cannot_answer_say_why() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\""),
            Err(DigestError::Missing("nonce"))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""),
            Err(DigestError::Qop(_))
        ));
        let stale = Challenge::parse("Digest realm=\"a,b\", nonce=\"n\", stale=TRUE").unwrap();
        assert!(stale.stale);
        assert_eq!(stale.realm, "a,b");
    }

    #[test]
    fn without_qop_the_rfc_2069_form_is_used() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let a = c.authorization("u", "p", "POST", "/dm", 1, "c");
        let ha1 = Algorithm::Md5.hex("u:r:p");
        let ha2 = Algorithm::Md5.hex("POST:/dm");
        let expected = Algorithm::Md5.hex(&format!("{ha1}:n:{ha2}"));
        assert!(a.contains(&format!("response=\"{expected}\"")), "{a}");
        assert!(!a.contains("qop=") && !a.contains("nc="), "{a}");
    }
}
