//! Short-lived signed URLs (issue 19, item 6): the server signs the
//! repository and SHOW URLs it writes into the commands it sends, so that a
//! device without credentials (`--enroll flag` on plain HTTP) can still use
//! them, while an anonymous request without a valid signature is refused.
//! `?exp=UNIX&sig=HEX`: HMAC-SHA256 over method, path and expiry with a key
//! drawn at start, so every signature dies with the server process.

use dm_core::{Command, ServerUri};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::http::{percent_decode, percent_encode};
use crate::{now, REPO_PATH, UI_PATH};

/// How long a one-shot command's URL (HGET, HPUT, HPOST) is good for.
pub(crate) const SHORT_TTL: u64 = 15 * 60;
/// A SUB's reports, and a DEFAULT's fetches, come as long as it stands:
/// its URL lives this long, or until the server restarts with a new key.
pub(crate) const SUB_TTL: u64 = 30 * 24 * 3600;

/// A SHOW page waits for its user: its URL, signed when the SHOW is
/// queued, lives a day.
pub(crate) const SHOW_TTL: u64 = 24 * 3600;
/// How long a GET URL the admin API hands out lasts: for a URL an
/// operator writes into MO data for the device to fetch later (FUMO's
/// PkgURL), 24 h.
pub(crate) const DOWNLOAD_TTL: u64 = 24 * 3600;

/// The method SHOW tokens are bound to: the page and its form both.
pub(crate) const SHOW_METHOD: &str = "SHOW";

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SignatureError {
    #[error("no signature")]
    Missing,
    #[error("malformed signature")]
    Malformed,
    #[error("signature expired")]
    Expired,
    #[error("signature does not match")]
    Mismatch,
}

/// The per-server signing key.
pub(crate) struct UrlSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.write_str("UrlSigner")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn message(method: &str, path: &str, exp: u64) -> String {
    format!("{method}\n{path}\n{exp}")
}

impl UrlSigner {
    /// A fresh random key; `None` only when the system has no randomness.
    pub(crate) fn random() -> Option<UrlSigner> {
        let mut key = [0u8; 32];
        SystemRandom::new().fill(&mut key).ok()?;
        Some(UrlSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        })
    }

    /// `exp=...&sig=...` for `method` on `path` until `exp`.
    pub(crate) fn query(&self, method: &str, path: &str, exp: u64) -> String {
        let tag = hmac::sign(&self.key, message(method, path, exp).as_bytes());
        format!("exp={exp}&sig={}", hex(tag.as_ref()))
    }

    /// Checks the `exp` and `sig` of `query` for `method` on `path`.
    pub(crate) fn verify(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<(), SignatureError> {
        let pairs = crate::http::form_pairs(query.unwrap_or(""));
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(exp), Some(sig)) = (get("exp"), get("sig")) else {
            return Err(SignatureError::Missing);
        };
        let exp: u64 = exp.parse().map_err(|_| SignatureError::Malformed)?;
        let sig = unhex(sig).ok_or(SignatureError::Malformed)?;
        hmac::verify(&self.key, message(method, path, exp).as_bytes(), &sig)
            .map_err(|_| SignatureError::Mismatch)?;
        if exp < now() {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    /// `url` with a signature appended when it is one of this server's
    /// repository URLs (base `base_url`) for `dev_id`; `[DevID]` is
    /// filled in first (spec 6.2: the device would put the same value
    /// there). Any other URL, or one with a parameter left, is kept as is:
    /// only the device's credentials open those.
    fn sign_repo(
        &self,
        base_url: &str,
        dev_id: &str,
        url: &ServerUri,
        method: &str,
        ttl: u64,
    ) -> ServerUri {
        let Some(rest) = url.as_str().strip_prefix(base_url) else {
            return url.clone();
        };
        let rest = rest.replace("[DevID]", &percent_encode(dev_id));
        let (path, query) = rest.split_once('?').unwrap_or((rest.as_str(), ""));
        let own = path
            .strip_prefix(REPO_PATH)
            .and_then(|p| p.split_once('/'))
            .is_some_and(|(d, _)| percent_decode(d, false).as_deref() == Some(dev_id));
        if !own || path.contains(['[', ']', '#']) || query.contains(['[', ']', '#']) {
            return url.clone();
        }
        let q = self.query(method, path, now().saturating_add(ttl));
        ServerUri::new(if query.is_empty() {
            format!("{base_url}{path}?{q}")
        } else {
            format!("{base_url}{path}?{query}&{q}")
        })
    }

    /// The command as sent to `dev_id`: its repository URL signed for the
    /// method the device will use with it (spec 5.3.1-5.3.3, 5.3.11). The
    /// queued command itself stays unsigned. SHOW URLs are signed when
    /// the SHOW is queued ([`crate::show`]).
    pub(crate) fn sign_command(&self, base_url: &str, dev_id: &str, command: &Command) -> Command {
        let mut c = command.clone();
        match &mut c {
            Command::Hget { server_uri, .. } => {
                *server_uri = self.sign_repo(base_url, dev_id, server_uri, "GET", SHORT_TTL);
            }
            Command::Hput { server_uri, .. } => {
                *server_uri = self.sign_repo(base_url, dev_id, server_uri, "PUT", SHORT_TTL);
            }
            Command::Hpost { server_uri, .. } => {
                *server_uri = self.sign_repo(base_url, dev_id, server_uri, "POST", SHORT_TTL);
            }
            // A DEFAULT is fetched by HGET whenever an application asks
            // (spec 5.3.10): as long-lived as a SUB.
            Command::Default { server_uri, .. } => {
                *server_uri = self.sign_repo(base_url, dev_id, server_uri, "GET", SUB_TTL);
            }
            // SUB reports are PUT to the URI (spec 5.3.11).
            Command::Sub { server_uri, .. } => {
                *server_uri = self.sign_repo(base_url, dev_id, server_uri, "PUT", SUB_TTL);
            }
            _ => {}
        }
        c
    }
}

/// What a SHOW token signs: the UI session, whatever the method.
pub(crate) fn ui_target(uiid: u64) -> String {
    format!("{UI_PATH}?uiid={uiid}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_bind_method_path_and_expiry() {
        let s = UrlSigner::random().unwrap();
        let exp = now() + 60;
        let q = s.query("GET", "/repo/D/x", exp);
        assert_eq!(s.verify("GET", "/repo/D/x", Some(&q)), Ok(()));
        assert_eq!(
            s.verify("PUT", "/repo/D/x", Some(&q)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify("GET", "/repo/D/y", Some(&q)),
            Err(SignatureError::Mismatch)
        );
        let later = q.replace(&exp.to_string(), &(exp + 1).to_string());
        assert_eq!(
            s.verify("GET", "/repo/D/x", Some(&later)),
            Err(SignatureError::Mismatch)
        );
        let old = s.query("GET", "/repo/D/x", now() - 1);
        assert_eq!(
            s.verify("GET", "/repo/D/x", Some(&old)),
            Err(SignatureError::Expired)
        );
        let other = UrlSigner::random().unwrap();
        assert_eq!(
            other.verify("GET", "/repo/D/x", Some(&q)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify("GET", "/repo/D/x", None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn only_the_devices_own_repository_urls_are_signed() {
        let s = UrlSigner::random().unwrap();
        let base = "http://127.0.0.1:1";
        let hget = |u: &str| Command::Hget {
            server_uri: ServerUri::new(u),
            client_uri: None,
        };
        let url = |c: Command| match c {
            Command::Hget { server_uri, .. } => server_uri.as_str().to_owned(),
            _ => unreachable!(),
        };
        let signed = url(s.sign_command(base, "D 1", &hget(&format!("{base}/repo/[DevID]/a"))));
        let (path, query) = signed.strip_prefix(base).unwrap().split_once('?').unwrap();
        assert_eq!(path, "/repo/D%201/a");
        assert_eq!(s.verify("GET", path, Some(query)), Ok(()));
        for foreign in [
            format!("{base}/repo/E/a"),
            "http://elsewhere/repo/D%201/a".to_owned(),
            format!("{base}/repo/D%201/[SPName]"),
        ] {
            assert_eq!(url(s.sign_command(base, "D 1", &hget(&foreign))), foreign);
        }
    }
}
