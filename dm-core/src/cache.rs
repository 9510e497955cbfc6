//! Cache validators (spec 11).
//!
//! What spec 11 says, precisely:
//!
//! - Only MO instances are cached ("cacheable MO Instances"; which ones is
//!   out of scope). The DM Client assigns each cacheable instance a cache
//!   validator that "MUST be updated every time a change in the MO instance
//!   occurs" (11.1). Its form is the client's choice: a timestamp or an
//!   opaque identifier like an HTTP ETag.
//! - Cache validation "MUST return true if the whole MO instance has not
//!   been modified compared to the local cache; otherwise ... false"
//!   (11.1). Here: true exactly when the request's `cv` equals the
//!   instance's current validator.
//! - The validator of an instance serves every read operation (GET, HPUT,
//!   HPOST) on any node of that instance, carried in the `cv` field of the
//!   ClientURI query (6.1.1.3, 11.1); other commands ignore it.
//! - DM Client flow (11.2): no `cv` -> return the data (Step 2a). With a
//!   `cv`, run the validation (Step 2b): true -> "304 Not Modified" and no
//!   data; false -> return the data. When returning data for a ClientURI
//!   that targets the instance root, the client SHOULD also return the
//!   validator, as the "CV" member of the MO serialization (7.2.1.4).
//! - 304 also implies "the access is allowed" (Appendix C): resolution and
//!   access control come before the cache check.
//!
//! A client that does not support the mechanism (it is a MAY) or an
//! instance that is not cacheable has no validator: validation is then
//! false and the data is always sent.

use std::fmt;

use crate::package::Command;
use crate::status::StatusCode;

/// The cache validator of one MO instance (11.1): an opaque string the
/// device computes and the server sends back in `cv=`. Equality is the
/// whole comparison rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheValidator(String);

impl CacheValidator {
    /// A validator as received (the `cv` of a ClientURI) or stored.
    pub fn new(text: impl Into<String>) -> CacheValidator {
        CacheValidator(text.into())
    }

    /// The validator of the instance `moid`/`miid` after its `counter`-th
    /// change: the counter in hex, `-`, then the 64-bit FNV-1a hash of
    /// (moid NUL miid NUL counter as 8 big-endian bytes) in 16 hex digits.
    /// The counter makes it change on every modification; the hash ties it
    /// to the instance, so that two instances with the same counter never
    /// share a validator. The hash needs no resistance to attack (a
    /// validator is neither secret nor trusted; it only has to differ), so a
    /// cheap one serves. Only RFC 3986 unreserved characters, so it travels
    /// in `cv=` unescaped.
    ///
    /// The counter must never repeat for an instance of that MOID and MIID,
    /// also across deletion and re-creation: take it from a device-wide
    /// change counter that survives restarts.
    pub fn from_change_counter(moid: &str, miid: &str, counter: u64) -> CacheValidator {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0100_0000_01b3;
        let mut tag = OFFSET;
        for part in [
            moid.as_bytes(),
            &[0],
            miid.as_bytes(),
            &[0],
            &counter.to_be_bytes(),
        ] {
            for &b in part {
                tag = (tag ^ u64::from(b)).wrapping_mul(PRIME);
            }
        }
        CacheValidator(format!("{counter:x}-{tag:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The validator's text, as the `CV` member carries it.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The cache validation of 11.1 for a request carrying `cv`: true when
    /// the instance has not changed since the server got this validator.
    pub fn validates(&self, cv: &str) -> bool {
        self.0 == cv
    }
}

impl fmt::Display for CacheValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the DM Client does with a read of one ClientURI (11.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDecision {
    /// Step 2b, validation true: answer 304 and send no data.
    NotModified,
    /// Step 2a, or Step 2b with validation false: send the data, with the
    /// validator as "CV" when it is `Some` (the URI targets the root of a
    /// cacheable instance).
    Send { cv: Option<CacheValidator> },
}

impl CacheDecision {
    /// The status for this decision: 304, or 200 for sent data.
    pub fn status(&self) -> StatusCode {
        match self {
            CacheDecision::NotModified => StatusCode::NOT_MODIFIED,
            CacheDecision::Send { .. } => StatusCode::OK,
        }
    }
}

/// True for the commands the `cv` field applies to: GET, HPUT and HPOST
/// (6.1.1.3, 11.1). Other commands ignore a `cv`.
pub fn applies_to(command: &Command) -> bool {
    matches!(
        command,
        Command::Get { .. } | Command::Hput { .. } | Command::Hpost { .. }
    )
}

/// The DM Client part of 11.2 for one ClientURI of a read command, once it
/// is resolved and access is allowed. `cv` is the URI's `cv` field;
/// `current` the validators of the instances the URI addresses (`None` for
/// an instance that is not cacheable); `targets_root` whether the URI
/// addresses an instance root.
///
/// With several instances (a `*` mo-inst), validation is true only when
/// every one of them is cacheable and its validator equals `cv`; the "CV"
/// member is offered only for a single instance root.
pub fn decide(
    cv: Option<&str>,
    current: &[Option<&CacheValidator>],
    targets_root: bool,
) -> CacheDecision {
    if let Some(cv) = cv {
        let valid =
            !current.is_empty() && current.iter().all(|v| v.is_some_and(|v| v.validates(cv)));
        if valid {
            return CacheDecision::NotModified;
        }
    }
    let cv = match current {
        [Some(v)] if targets_root => Some((*v).clone()),
        _ => None,
    };
    CacheDecision::Send { cv }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOID: &str = "urn:oma:mo:oma-dm-devinfo:1.2";

    #[test]
    fn validators_change_with_the_counter_and_the_instance() {
        let v1 = CacheValidator::from_change_counter(MOID, "devinfo", 1);
        let v2 = CacheValidator::from_change_counter(MOID, "devinfo", 2);
        let other = CacheValidator::from_change_counter(MOID, "other", 1);
        assert_ne!(v1, v2, "11.1: updated on every change");
        assert_ne!(v1, other);
        assert_eq!(v1, CacheValidator::from_change_counter(MOID, "devinfo", 1));
        assert!(v2.as_str().starts_with("2-"));
        assert_eq!(v2.as_str().len(), 2 + 16);
        // Usable as-is in a ClientURI query.
        let uri = format!("{MOID}//?cv={v1}");
        let parsed: crate::ClientUri = uri.parse().unwrap();
        assert_eq!(parsed.query().cache_validator.as_deref(), Some(v1.as_str()));
        let big = CacheValidator::from_change_counter(MOID, "x", u64::MAX);
        assert!(big.as_str().starts_with("ffffffffffffffff-"));
    }

    #[test]
    fn the_tag_is_fnv_1a_of_moid_miid_and_counter() {
        fn fnv1a(bytes: &[u8]) -> u64 {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            })
        }
        // The published FNV-1a 64 vector for "a" pins the reference.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut input = MOID.as_bytes().to_vec();
        input.push(0);
        input.extend_from_slice(b"devinfo");
        input.push(0);
        input.extend_from_slice(&7u64.to_be_bytes());
        let v = CacheValidator::from_change_counter(MOID, "devinfo", 7);
        assert_eq!(v.as_str(), format!("7-{:016x}", fnv1a(&input)));
    }

    #[test]
    fn client_flow_of_11_2() {
        let current = CacheValidator::new("686897696a7c876b7e");
        let cur = [Some(&current)];
        // Step 2a: no cv -> data, with CV at the instance root only.
        assert_eq!(
            decide(None, &cur, true),
            CacheDecision::Send {
                cv: Some(current.clone())
            }
        );
        assert_eq!(decide(None, &cur, false), CacheDecision::Send { cv: None });
        // Step 2b, validation true -> 304, also for a node below the root
        // ("the cache validator can be used for all read operations
        // targeting any node in a cacheable MO instance").
        assert_eq!(
            decide(Some("686897696a7c876b7e"), &cur, false),
            CacheDecision::NotModified
        );
        assert_eq!(
            decide(Some("686897696a7c876b7e"), &cur, true).status(),
            StatusCode::NOT_MODIFIED
        );
        // Step 2b, validation false -> data and the new CV.
        let d = decide(Some("stale"), &cur, true);
        assert_eq!(d.status(), StatusCode::OK);
        assert_eq!(
            d,
            CacheDecision::Send {
                cv: Some(current.clone())
            }
        );
        // Not cacheable: validation is false, no CV.
        assert_eq!(
            decide(Some("686897696a7c876b7e"), &[None], true),
            CacheDecision::Send { cv: None }
        );
    }

    #[test]
    fn several_instances_validate_only_together() {
        let a = CacheValidator::new("a");
        let b = CacheValidator::new("b");
        assert_eq!(
            decide(Some("a"), &[Some(&a), Some(&b)], true),
            CacheDecision::Send { cv: None }
        );
        assert_eq!(
            decide(Some("a"), &[Some(&a), Some(&a)], true),
            CacheDecision::NotModified
        );
        assert_eq!(
            decide(Some("a"), &[Some(&a), None], false),
            CacheDecision::Send { cv: None }
        );
        assert_eq!(
            decide(Some("a"), &[], true),
            CacheDecision::Send { cv: None }
        );
    }

    #[test]
    fn cv_applies_to_get_hput_hpost_only() {
        let uri: crate::ClientUri = format!("{MOID}//?cv=x").parse().unwrap();
        let server_uri = crate::ServerUri::new("http://dr.example/x");
        assert!(applies_to(&Command::Get {
            client_uri: uri.clone()
        }));
        assert!(applies_to(&Command::Hput {
            server_uri: server_uri.clone(),
            client_uris: vec![uri.clone()]
        }));
        assert!(applies_to(&Command::Hpost {
            server_uri: server_uri.clone(),
            client_uris: vec![uri.clone()]
        }));
        assert!(!applies_to(&Command::Delete {
            client_uri: uri.clone()
        }));
        assert!(!applies_to(&Command::Hget {
            server_uri,
            client_uri: Some(uri.clone())
        }));
        assert!(!applies_to(&Command::Exec {
            client_uri: uri,
            server_uri: None
        }));
    }
}
