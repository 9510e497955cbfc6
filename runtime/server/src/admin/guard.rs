//! Who may use the admin API, checked before any route runs: the request
//! must be addressed to the admin listener itself (Host, and Origin when a
//! browser sends one), so that neither a cross-site page nor a DNS
//! rebinding one can reach it through a browser; it must carry a bearer
//! token the storage knows; and a read-only token may only read.
//!
//! The JSON-only rule for bodies (415 otherwise) is checked where a body
//! is parsed ([`super::require_json`]): the repository upload keeps its own
//! media type.

use std::net::{IpAddr, SocketAddr};

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HOST, ORIGIN};
use hyper::{Method, Request, StatusCode as HttpStatus};

use super::token::find_token;
use crate::{AdminRole, Storage};

/// The challenge of a 401 (RFC 6750 section 3).
const REALM: &str = "Bearer realm=\"dm-server admin\"";

/// A request refused before routing, with the `WWW-Authenticate` value a
/// 401 or 403 carries. The reason is logged and answered: it never holds
/// the token.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: HttpStatus,
    pub(crate) reason: String,
    pub(crate) challenge: Option<String>,
}

fn forbidden(reason: impl Into<String>) -> Refusal {
    Refusal {
        status: HttpStatus::FORBIDDEN,
        reason: reason.into(),
        challenge: None,
    }
}

/// What the admin listener answers to.
#[derive(Debug, Clone, Default)]
pub(crate) struct AdminGuard {
    /// The admin listener's address (none: no admin API).
    addr: Option<SocketAddr>,
    /// Host names it also answers to (`--admin-host`), lower case.
    names: Vec<String>,
    /// It speaks TLS: a same-origin Origin is `https://`.
    tls: bool,
}

impl AdminGuard {
    pub(crate) fn new(addr: Option<SocketAddr>, names: &[String], tls: bool) -> AdminGuard {
        AdminGuard {
            addr,
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            tls,
        }
    }

    /// The scheme of this listener's own origin.
    fn scheme(&self) -> &'static str {
        if self.tls {
            "https://"
        } else {
            "http://"
        }
    }

    /// Checks Host, Origin, the token and its role, in that order.
    pub(crate) fn check(
        &self,
        storage: &dyn Storage,
        req: &Request<Incoming>,
    ) -> Result<(), Refusal> {
        self.check_addressing(req)?;
        let role = authenticate(storage, req)?;
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        if role == AdminRole::Read && !reads {
            return Err(Refusal {
                challenge: Some(format!("{REALM}, error=\"insufficient_scope\"")),
                ..forbidden(format!("a read-only token cannot {}", req.method()))
            });
        }
        Ok(())
    }

    /// Host (and an absolute request target) must name this listener; an
    /// Origin, when present, must be this listener too (same origin).
    fn check_addressing(&self, req: &Request<Incoming>) -> Result<(), Refusal> {
        let host = req
            .headers()
            .get(HOST)
            .ok_or_else(|| forbidden("no Host header"))?;
        let host = host.to_str().unwrap_or("");
        if !self.allows(host) {
            return Err(forbidden(format!(
                "Host `{host}` is not the admin listener"
            )));
        }
        if let Some(authority) = req.uri().authority() {
            if !self.allows(authority.as_str()) {
                return Err(forbidden(format!(
                    "request target `{authority}` is not the admin listener"
                )));
            }
        }
        if let Some(origin) = req.headers().get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let same = origin
                .strip_prefix(self.scheme())
                .is_some_and(|authority| self.allows(authority));
            if !same {
                return Err(forbidden(format!("cross-origin request from `{origin}`")));
            }
        }
        Ok(())
    }

    /// Whether `authority` (`host[:port]`) names the admin listener: its
    /// port, and as host its own address, a loopback address, `localhost`,
    /// any address when it listens on all of them, or an `--admin-host`
    /// name. An IP literal cannot be rebound by DNS; any other name can,
    /// so only those the operator listed are taken.
    fn allows(&self, authority: &str) -> bool {
        let Some(addr) = self.addr else {
            return false;
        };
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        if port != addr.port() {
            return false;
        }
        let host = host.to_ascii_lowercase();
        if host == "localhost" {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return ip == addr.ip() || ip.is_loopback() || addr.ip().is_unspecified();
        }
        self.names.contains(&host)
    }
}

/// `host[:port]` as host (brackets of an IPv6 literal removed) and port
/// (80 when absent, as in an `http:` URI).
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['@', '/', '[', ']']) {
        return None;
    }
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
        None => 80,
    };
    Some((host, port))
}

/// The role of the request's bearer token; 401 without a known one.
fn authenticate(storage: &dyn Storage, req: &Request<Incoming>) -> Result<AdminRole, Refusal> {
    let unauthorized = |reason: &str, challenge: String| Refusal {
        status: HttpStatus::UNAUTHORIZED,
        reason: reason.to_owned(),
        challenge: Some(challenge),
    };
    // RFC 6750 3.1: no error code when no credentials came at all.
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Err(unauthorized("no bearer token", REALM.to_owned()));
    };
    let invalid = format!("{REALM}, error=\"invalid_token\"");
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            unauthorized(
                "the Authorization header is not a Bearer token",
                invalid.clone(),
            )
        })?;
    let tokens = storage.admin_tokens().map_err(|e| Refusal {
        status: HttpStatus::INTERNAL_SERVER_ERROR,
        reason: e.to_string(),
        challenge: None,
    })?;
    find_token(&tokens, token)
        .map(|t| t.role)
        .ok_or_else(|| unauthorized("unknown or revoked bearer token", invalid))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::TOKEN_PREFIX;

    fn guard(addr: &str, names: &[&str]) -> AdminGuard {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        AdminGuard::new(Some(addr.parse().unwrap()), &names, false)
    }

    #[test]
    fn only_the_listener_itself_is_a_host() {
        let g = guard("127.0.0.1:8081", &["Admin.Example"]);
        for ok in [
            "127.0.0.1:8081",
            "localhost:8081",
            "LOCALHOST:8081",
            "[::1]:8081",
            "admin.example:8081",
        ] {
            assert!(g.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example:8081",
            "127.0.0.1:8082",
            "127.0.0.1",
            "localhost",
            "10.0.0.1:8081",
            "127.0.0.1:",
            "127.0.0.1:+8081",
            "user@127.0.0.1:8081",
            "[::1]8081",
            ":8081",
            "",
        ] {
            assert!(!g.allows(refused), "{refused}");
        }
        // Listening on every address: any IP literal, still no other name.
        let g = guard("0.0.0.0:8081", &[]);
        assert!(g.allows("192.0.2.7:8081"));
        assert!(!g.allows("evil.example:8081"));
        assert!(!AdminGuard::default().allows("127.0.0.1:8081"));
        assert!(guard("127.0.0.1:80", &[]).allows("localhost"));
    }

    /// One request on a fresh connection: status, head (lower case), body.
    async fn request(addr: SocketAddr, head: &str, body: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let text = format!(
            "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    #[tokio::test]
    async fn the_admin_api_wants_a_token_its_own_host_and_json() {
        let storage = std::sync::Arc::new(crate::MemoryStorage::new());
        let server = crate::start_with(
            crate::ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                default_commands: Vec::new(),
                log_errors: false,
            },
            crate::ServerOptions {
                storage: Some(storage.clone()),
                admin: Some("127.0.0.1:0".parse().unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let admin = server.admin_addr().unwrap();
        let (_, read) = crate::create_admin_token(storage.as_ref(), AdminRole::Read).unwrap();
        let (_, op) = crate::create_admin_token(storage.as_ref(), AdminRole::Operator).unwrap();
        let get = |token: &str, extra: &str| {
            format!("GET /api/devices HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}{extra}")
        };
        let post = |token: &str, extra: &str| {
            format!(
                "POST /api/devices/IMEI:1/commands HTTP/1.1\r\nHost: {admin}\r\n\
                 Authorization: Bearer {token}{extra}"
            )
        };
        let json = "\r\nContent-Type: application/json";
        let command = r#"["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]"#;

        // No token, an unknown one, another scheme: 401 and the challenge.
        let (status, head, _) = request(
            admin,
            &format!("GET /api/devices HTTP/1.1\r\nHost: {admin}"),
            "",
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            head.contains("www-authenticate: bearer realm=\"dm-server admin\"\r\n")
                || head.ends_with("www-authenticate: bearer realm=\"dm-server admin\""),
            "{head}"
        );
        let (status, head, _) = request(admin, &get(&format!("{op}x"), ""), "").await;
        assert_eq!(status, 401);
        assert!(head.contains("error=\"invalid_token\""), "{head}");
        let basic =
            format!("GET /api/devices HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Basic {op}");
        assert_eq!(request(admin, &basic, "").await.0, 401);

        // A read-only token reads and cannot queue.
        assert_eq!(request(admin, &get(&read, ""), "").await.0, 200);
        let (status, _, body) = request(admin, &post(&read, json), command).await;
        assert_eq!(status, 403, "{body}");
        assert!(storage.entries("IMEI:1", &[]).unwrap().is_empty());
        // An operator token queues, with a JSON body only.
        let (status, _, body) = request(admin, &post(&op, json), command).await;
        assert_eq!(status, 201, "{body}");
        let plain = "\r\nContent-Type: text/plain";
        assert_eq!(request(admin, &post(&op, plain), command).await.0, 415);
        assert_eq!(request(admin, &post(&op, ""), command).await.0, 415);
        assert_eq!(storage.entries("IMEI:1", &[]).unwrap().len(), 1);
        // On every route, bodies ignored or not; the repository upload
        // keeps its own media type.
        let delete = format!(
            "DELETE /api/devices/IMEI:1/repository/a HTTP/1.1\r\nHost: {admin}\r\n\
             Authorization: Bearer {op}{plain}"
        );
        assert_eq!(request(admin, &delete, "x").await.0, 415);
        let upload = format!(
            "PUT /api/devices/IMEI:1/repository/a HTTP/1.1\r\nHost: {admin}\r\n\
             Authorization: Bearer {op}{plain}"
        );
        assert_eq!(request(admin, &upload, "x").await.0, 200);
        assert_eq!(
            request(admin, &delete.replace(plain, json), "").await.0,
            200
        );

        // Another site's page, or a name rebound to loopback: 403, even
        // with the operator's token.
        let foreign = "\r\nOrigin: http://evil.example";
        assert_eq!(
            request(admin, &post(&op, &format!("{json}{foreign}")), command)
                .await
                .0,
            403
        );
        let same = format!("{json}\r\nOrigin: http://{admin}");
        assert_eq!(request(admin, &post(&op, &same), command).await.0, 201);
        let rebound = format!(
            "GET /api/devices HTTP/1.1\r\nHost: evil.example:{}\r\nAuthorization: Bearer {op}",
            admin.port()
        );
        assert_eq!(request(admin, &rebound, "").await.0, 403);
        assert_eq!(storage.entries("IMEI:1", &[]).unwrap().len(), 2);

        // Refusals are logged without the token.
        let errors = server.errors();
        assert!(errors.iter().any(|e| e.contains("401")), "{errors:?}");
        assert!(
            !errors.iter().any(|e| e.contains(&op[TOKEN_PREFIX.len()..])),
            "{errors:?}"
        );
        server.shutdown().await;
    }
}
