//! Device authentication on the DM endpoint (spec 9.2.1; Appendix B.2
//! DM-SEC-001-S, DM-SEC-002-S): every package names its device by
//! `OMADM-DevID`, and the credentials kept for that DevID decide whether
//! the package is taken. HTTP Basic (RFC 7617, over TLS only: spec 9.2.2),
//! HTTP Digest (RFC 2617 MD5, RFC 7616 SHA-256, `qop=auth`, server nonces
//! that expire and whose nonce count only goes up) and X.509 client
//! certificates bound to a DevID by their SHA-256 fingerprint.
//!
//! A device with no credentials is refused or admitted and flagged,
//! per [`EnrollPolicy`].
//!
//! HTTP Basic sends the password with every package and the server keeps
//! only its Argon2id hash, slow on purpose; a verified password is
//! remembered for a while ([`BASIC_CACHE_ENTRIES`], [`BASIC_CACHE_AGE`]) as
//! a keyed digest, so that Argon2 runs once per device and period rather
//! than once per package.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Argon2, Block};
use base64::Engine as _;
use dm_core::notification::hex;
use md5::Md5;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::state::lock;
use crate::{Credentials, PasswordHashes, PeerCertificates, PskDevId, Storage, StorageError};

/// The Digest realm of every challenge; the stored `HA1`s are computed
/// under it, so changing it voids every stored Digest hash.
pub const REALM: &str = "OMA DM Server";

/// How long a Digest nonce may be used after it was issued.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Most Digest nonces tracked at once: past it, the expired and then the
/// oldest are forgotten (their devices get a `stale` challenge and retry),
/// so a flood of challenges cannot grow the server.
pub const MAX_NONCES: usize = 4096;

/// Most devices whose verified HTTP Basic credentials are remembered at
/// once (10,000): past it, the expired and then the oldest are forgotten,
/// and those devices' next package pays Argon2 again. About 100 bytes
/// each.
pub const BASIC_CACHE_ENTRIES: usize = 10_000;

/// How long a verified HTTP Basic password is taken again without running
/// Argon2 (10 minutes). New credentials do not wait for it: their stored
/// hash differs, so the old entry no longer matches.
pub const BASIC_CACHE_AGE: Duration = Duration::from_secs(600);

/// Argon2 working memories kept for reuse by the process's hashes and
/// Basic verifications (19 MiB each at the default parameters): one per
/// worker thread of `dmctl server`; a run beyond them allocates its own.
/// One allocated and freed per run left the heap fragmented by the
/// sessions' small allocations in between: 2.6 GB resident after 2,000
/// verifications under 100 concurrent devices (BENCHMARKS.md).
const ARGON2_MEMORIES: usize = 2;

static ARGON2_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `argon2` into `out` in a working memory of [`ARGON2_MEMORY`].
fn argon2_into(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
    let mut memory = lock(&ARGON2_MEMORY).pop().unwrap_or_default();
    // Every block is written in the first pass: no need to clear it.
    memory.resize(argon2.params().block_count(), Block::default());
    let done = argon2
        .hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
        .is_ok();
    let mut kept = lock(&ARGON2_MEMORY);
    if kept.len() < ARGON2_MEMORIES {
        kept.push(memory);
    }
    done
}

/// What the server does with a device that has no credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollPolicy {
    /// Refused (401): only devices an operator gave credentials to.
    Refuse,
    /// Served, and flagged unauthenticated in its device record.
    Flag,
}

/// Which HTTP authentication schemes the DM endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAuth {
    /// HTTP Basic, and only ever over TLS.
    pub basic: bool,
    pub digest: bool,
}

impl Default for HttpAuth {
    fn default() -> HttpAuth {
        HttpAuth {
            basic: true,
            digest: true,
        }
    }
}

/// Why credentials could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("a user name may not be empty nor hold `:` or `\"`")]
    User,
    #[error("the password may not be empty")]
    EmptyPassword,
    #[error("no randomness for the salt")]
    Random,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("a certificate fingerprint is 64 hex digits (SHA-256)")]
    Fingerprint,
}

/// The prefix of the stored hash of a password this server generated
/// itself (the bootstrap server's: 256 random bits), `$dm-sha256$SALT$HASH`
/// in hex: SHA-256 over a random salt and the password. Argon2 is for
/// passwords a person may have chosen; 256 random bits cannot be guessed
/// from their hash at any speed (as for admin tokens), and a slow hash
/// would cost each device's first session about 20 ms of a core.
const GENERATED_PREFIX: &str = "$dm-sha256$";

/// The fewest bytes a generated password has (256 bits in base64url).
const GENERATED_MIN_LEN: usize = 43;

impl PasswordHashes {
    /// Hashes a password the server generated itself (at least 43
    /// characters of a 256-bit random value): a salted SHA-256 for Basic
    /// (see `GENERATED_PREFIX`), and the Digest `HA1`s under [`REALM`].
    pub fn generated(user: &str, password: &str) -> Result<PasswordHashes, CredentialError> {
        if user.is_empty() || user.contains([':', '"']) {
            return Err(CredentialError::User);
        }
        if password.len() < GENERATED_MIN_LEN {
            return Err(CredentialError::EmptyPassword);
        }
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| CredentialError::Random)?;
        let a1 = format!("{user}:{REALM}:{password}");
        Ok(PasswordHashes {
            user: user.to_owned(),
            phc: format!(
                "{GENERATED_PREFIX}{}${}",
                hex(&salt),
                hex(&generated_hash(&salt, password.as_bytes()))
            ),
            ha1_md5: Algorithm::Md5.hex(&a1),
            ha1_sha256: Algorithm::Sha256.hex(&a1),
        })
    }

    /// Hashes `password` for `user`: Argon2id with a fresh salt (Basic),
    /// and the Digest `HA1`s under [`REALM`].
    pub fn new(user: &str, password: &str) -> Result<PasswordHashes, CredentialError> {
        if user.is_empty() || user.contains([':', '"']) {
            return Err(CredentialError::User);
        }
        if password.is_empty() {
            return Err(CredentialError::EmptyPassword);
        }
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| CredentialError::Random)?;
        let hash_error = |e: argon2::password_hash::Error| CredentialError::Hash(e.to_string());
        let encoded = SaltString::encode_b64(&salt).map_err(hash_error)?;
        // What `PasswordHasher::hash_password` makes, in a reused memory.
        let argon2 = Argon2::default();
        let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
        if !argon2_into(&argon2, password.as_bytes(), &salt, &mut out) {
            return Err(CredentialError::Hash("Argon2 failed".into()));
        }
        let phc = PasswordHash {
            algorithm: argon2::Algorithm::Argon2id.ident(),
            version: Some(argon2::Version::V0x13.into()),
            params: ParamsString::try_from(argon2.params()).map_err(hash_error)?,
            salt: Some(encoded.as_salt()),
            hash: Some(Output::new(&out).map_err(hash_error)?),
        }
        .to_string();
        let a1 = format!("{user}:{REALM}:{password}");
        Ok(PasswordHashes {
            user: user.to_owned(),
            phc,
            ha1_md5: Algorithm::Md5.hex(&a1),
            ha1_sha256: Algorithm::Sha256.hex(&a1),
        })
    }
}

/// Reads a SHA-256 fingerprint as 64 hex digits (`:` separators allowed).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], CredentialError> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 || !digits.is_ascii() {
        return Err(CredentialError::Fingerprint);
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
            .map_err(|_| CredentialError::Fingerprint)?;
    }
    Ok(out)
}

/// SHA-256 of a DER certificate: what a binding stores.
pub fn certificate_sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

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

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

/// What one request brings to prove its DevID.
pub(crate) struct Presented<'a> {
    pub dev_id: &'a str,
    pub method: &'a str,
    /// The request target (path and query), what Digest's `uri` names.
    pub target: &'a str,
    pub authorization: Option<&'a str>,
    pub peer: Option<&'a PeerCertificates>,
    /// The DevID a PSK-TLS handshake proved the key of (spec 9.2.2).
    pub psk: Option<&'a PskDevId>,
}

/// The decision on one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its credentials match its DevID.
    Authenticated,
    /// No credentials are kept for its DevID and the policy admits it.
    Unknown,
    /// 401: answered with challenges (`stale`: a good answer to a nonce
    /// that expired or was forgotten).
    Challenge { reason: String, stale: bool },
    /// 403: a client certificate that is not the DevID's.
    Forbidden(String),
}

#[derive(Debug)]
struct Nonce {
    issued: Instant,
    /// The highest nonce count accepted so far (0: none).
    nc: u32,
}

/// The DM endpoint's authentication settings and its Digest nonces.
#[derive(Debug)]
pub(crate) struct Authenticator {
    pub(crate) enroll: EnrollPolicy,
    pub(crate) schemes: HttpAuth,
    /// The listener is TLS: the only place Basic is taken.
    pub(crate) tls: bool,
    nonces: Mutex<HashMap<String, Nonce>>,
    basic_cache: BasicCache,
}

impl Authenticator {
    pub(crate) fn new(enroll: EnrollPolicy, schemes: HttpAuth, tls: bool) -> Authenticator {
        Authenticator {
            enroll,
            schemes,
            tls,
            nonces: Mutex::new(HashMap::new()),
            basic_cache: BasicCache::new(BASIC_CACHE_ENTRIES, BASIC_CACHE_AGE),
        }
    }

    /// Decides on one request; changes nothing but the nonce counts and
    /// the remembered Basic credentials.
    pub(crate) fn check(
        &self,
        storage: &dyn Storage,
        p: &Presented<'_>,
    ) -> Result<Verdict, StorageError> {
        // spec 9.2.2 PSK-TLS: the handshake proved the key of one DevID,
        // whatever credentials are kept; a package naming another is
        // refused, not challenged (no other credential would do here).
        if let Some(psk) = p.psk {
            return Ok(if psk.as_str() == p.dev_id {
                Verdict::Authenticated
            } else {
                Verdict::Forbidden(format!(
                    "{}: the PSK-TLS identity is the key of DevID `{}`",
                    p.dev_id,
                    psk.as_str()
                ))
            });
        }
        let creds = storage
            .credentials(p.dev_id)?
            .filter(|c| c.password.is_some() || c.certificate_sha256.is_some());
        let Some(creds) = creds else {
            return Ok(match self.enroll {
                EnrollPolicy::Flag => Verdict::Unknown,
                EnrollPolicy::Refuse => challenge(format!(
                    "{}: no credentials for this DevID (--enroll refuse)",
                    p.dev_id
                )),
            });
        };
        Ok(self.verify(&creds, p))
    }

    fn verify(&self, creds: &Credentials, p: &Presented<'_>) -> Verdict {
        if let Some(bound) = creds.certificate_sha256 {
            match p.peer {
                Some(peer) if bool::from(certificate_sha256(peer.end_entity()).ct_eq(&bound)) => {
                    return Verdict::Authenticated
                }
                Some(_) => {
                    return Verdict::Forbidden(format!(
                        "{}: the client certificate is not the one bound to this DevID",
                        p.dev_id
                    ))
                }
                None if creds.password.is_none() => {
                    return Verdict::Forbidden(format!(
                        "{}: no client certificate, and this DevID is bound to one",
                        p.dev_id
                    ))
                }
                None => {}
            }
        }
        let Some(password) = &creds.password else {
            return Verdict::Forbidden(format!("{}: no password for this DevID", p.dev_id));
        };
        let Some(authorization) = p.authorization else {
            return challenge(format!("{}: no credentials presented", p.dev_id));
        };
        let (scheme, rest) = authorization
            .trim()
            .split_once(' ')
            .unwrap_or((authorization, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            if !self.tls {
                // spec 9.2.2: a password in the clear is refused, right or wrong.
                return challenge(format!("{}: HTTP Basic over plain HTTP", p.dev_id));
            }
            if !self.schemes.basic {
                return challenge(format!("{}: HTTP Basic is not accepted", p.dev_id));
            }
            return if self.basic_verified(p.dev_id, password, rest.trim()) {
                Verdict::Authenticated
            } else {
                challenge(format!("{}: wrong HTTP Basic credentials", p.dev_id))
            };
        }
        if scheme.eq_ignore_ascii_case("digest") && self.schemes.digest {
            return self.digest(password, rest, p);
        }
        challenge(format!(
            "{}: authentication scheme `{}` is not accepted",
            p.dev_id,
            scheme.escape_debug()
        ))
    }

    /// [`basic_matches`], remembered: a hit needs the same DevID, the same
    /// stored hash and the same presented token as a verification that
    /// succeeded, so a wrong password or changed credentials always go
    /// through Argon2.
    fn basic_verified(&self, dev_id: &str, stored: &PasswordHashes, token: &str) -> bool {
        let key = self.basic_cache.key(dev_id, stored, token);
        if key
            .as_ref()
            .is_some_and(|k| self.basic_cache.fresh(dev_id, k))
        {
            return true;
        }
        #[cfg(test)]
        self.basic_cache
            .argon2_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ok = basic_matches(stored, token);
        if let (true, Some(key)) = (ok, key) {
            self.basic_cache.insert(dev_id, key);
        }
        ok
    }

    /// RFC 7616 section 3.4 with `qop=auth`.
    fn digest(&self, password: &PasswordHashes, params: &str, p: &Presented<'_>) -> Verdict {
        let fields = parse_params(params);
        let get = |k: &str| fields.get(k).map(String::as_str);
        let refuse = |why: &str| challenge(format!("{}: Digest {why}", p.dev_id));
        let algorithm = match get("algorithm").map(str::to_ascii_uppercase).as_deref() {
            None | Some("MD5") => Algorithm::Md5,
            Some("SHA-256") => Algorithm::Sha256,
            Some(_) => return refuse("algorithm not offered"),
        };
        let (
            Some(user),
            Some(realm),
            Some(nonce),
            Some(uri),
            Some(qop),
            Some(nc),
            Some(cnonce),
            Some(response),
        ) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("qop"),
            get("nc"),
            get("cnonce"),
            get("response"),
        )
        else {
            return refuse("answer is incomplete (qop=auth needs nc and cnonce)");
        };
        if qop != "auth" {
            return refuse("qop is not auth");
        }
        if realm != REALM || uri != p.target {
            return refuse("answer is for another realm or URI");
        }
        let Ok(nc_value) = u32::from_str_radix(nc, 16) else {
            return refuse("nc is not hexadecimal");
        };
        let ha1 = match algorithm {
            Algorithm::Md5 => &password.ha1_md5,
            Algorithm::Sha256 => &password.ha1_sha256,
        };
        let ha2 = algorithm.hex(&format!("{}:{uri}", p.method));
        let expected = algorithm.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"));
        let user_ok = user.as_bytes().ct_eq(password.user.as_bytes());
        let response_ok = expected
            .as_bytes()
            .ct_eq(response.to_ascii_lowercase().as_bytes());
        if !bool::from(user_ok & response_ok) {
            return refuse("wrong credentials");
        }
        // The answer is right: now the nonce must be ours, alive, and its
        // count above every count already taken (no replay, RFC 7616 3.4).
        let mut nonces = lock(&self.nonces);
        match nonces.get_mut(nonce) {
            Some(n) if n.issued.elapsed() <= NONCE_LIFETIME => {
                if nc_value <= n.nc {
                    return refuse("nonce count replayed");
                }
                n.nc = nc_value;
                Verdict::Authenticated
            }
            _ => {
                nonces.remove(nonce);
                Verdict::Challenge {
                    reason: format!("{}: Digest nonce expired or unknown", p.dev_id),
                    stale: true,
                }
            }
        }
    }

    /// The `WWW-Authenticate` values of a 401: Digest SHA-256 then MD5
    /// (RFC 7616 3.7: the preferred first) under one fresh nonce, and
    /// Basic when the listener is TLS.
    pub(crate) fn challenges(&self, stale: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.schemes.digest {
            if let Some(nonce) = self.issue_nonce() {
                let stale = if stale { ", stale=true" } else { "" };
                for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
                    out.push(format!(
                        "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\"{stale}",
                        algorithm.name()
                    ));
                }
            }
        }
        if self.tls && self.schemes.basic {
            out.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        }
        out
    }

    fn issue_nonce(&self) -> Option<String> {
        let mut bytes = [0u8; 16];
        SystemRandom::new().fill(&mut bytes).ok()?;
        let nonce = hex(&bytes);
        let mut nonces = lock(&self.nonces);
        if nonces.len() >= MAX_NONCES {
            nonces.retain(|_, n| n.issued.elapsed() <= NONCE_LIFETIME);
        }
        if nonces.len() >= MAX_NONCES {
            if let Some(oldest) = nonces
                .iter()
                .min_by_key(|(_, n)| n.issued)
                .map(|(k, _)| k.clone())
            {
                nonces.remove(&oldest);
            }
        }
        nonces.insert(
            nonce.clone(),
            Nonce {
                issued: Instant::now(),
                nc: 0,
            },
        );
        Some(nonce)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        lock(&self.nonces).len()
    }
}

/// Verified HTTP Basic credentials, one entry per DevID: an HMAC-SHA-256,
/// under a key drawn at start and never stored, of the DevID, the stored
/// user and PHC string and the presented token. Neither the password nor
/// anything that could be tried against offline faster than Argon2
/// without that key is kept.
struct BasicCache {
    /// `None` when the system had no randomness: nothing is remembered.
    key: Option<hmac::Key>,
    capacity: usize,
    age: Duration,
    entries: Mutex<HashMap<String, ([u8; 32], Instant)>>,
    #[cfg(test)]
    argon2_runs: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for BasicCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCache")
            .field("entries", &lock(&self.entries).len())
            .finish_non_exhaustive()
    }
}

impl BasicCache {
    fn new(capacity: usize, age: Duration) -> BasicCache {
        BasicCache {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok(),
            capacity,
            age,
            entries: Mutex::new(HashMap::new()),
            #[cfg(test)]
            argon2_runs: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn key(&self, dev_id: &str, stored: &PasswordHashes, token: &str) -> Option<[u8; 32]> {
        let mut ctx = hmac::Context::with_key(self.key.as_ref()?);
        // Each field length-prefixed, so no two tuples share an input.
        for field in [dev_id, &stored.user, &stored.phc, token] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        ctx.sign().as_ref().try_into().ok()
    }

    /// Whether `dev_id`'s entry is `key` and younger than the age bound.
    fn fresh(&self, dev_id: &str, key: &[u8; 32]) -> bool {
        let entries = lock(&self.entries);
        entries
            .get(dev_id)
            .is_some_and(|(tag, at)| at.elapsed() < self.age && bool::from(tag.ct_eq(key)))
    }

    fn insert(&self, dev_id: &str, key: [u8; 32]) {
        let mut entries = lock(&self.entries);
        if !entries.contains_key(dev_id) && entries.len() >= self.capacity {
            entries.retain(|_, (_, at)| at.elapsed() < self.age);
            if entries.len() >= self.capacity {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(dev_id.to_owned(), (key, Instant::now()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

fn challenge(reason: String) -> Verdict {
    Verdict::Challenge {
        reason,
        stale: false,
    }
}

/// `user:password` of a Basic header against the stored hash.
fn basic_matches(stored: &PasswordHashes, token: &str) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = text.split_once(':') else {
        return false;
    };
    let password_ok = match stored.phc.strip_prefix(GENERATED_PREFIX) {
        Some(rest) => generated_verify(password.as_bytes(), rest),
        None => argon2_verify(password.as_bytes(), &stored.phc),
    };
    bool::from(user.as_bytes().ct_eq(stored.user.as_bytes())) && password_ok
}

fn generated_hash(salt: &[u8], password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password);
    h.finalize().into()
}

/// Checks a password against `SALT$HASH` (hex) of a generated one.
fn generated_verify(password: &[u8], stored: &str) -> bool {
    let Some((salt, hash)) = stored.split_once('$') else {
        return false;
    };
    let from_hex = dm_core::notification::from_hex;
    let (Ok(salt), Ok(hash)) = (from_hex(salt), from_hex(hash)) else {
        return false;
    };
    bool::from(generated_hash(&salt, password).as_slice().ct_eq(&hash))
}

/// What `PasswordVerifier::verify_password` does for a PHC string, in a
/// reused working memory: the stored hash's parameters and salt, the
/// computed output compared with its output in constant time.
fn argon2_verify(password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    // An Output is at most 64 bytes.
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    argon2_into(&argon2, password, salt, out) && bool::from(out.ct_eq(expected.as_bytes()))
}

/// `k=v, k="v"` auth-params (RFC 7235 2.1); names lowercased.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(name, value);
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::MemoryStorage;

    fn presented<'a>(authorization: Option<&'a str>) -> Presented<'a> {
        Presented {
            dev_id: "IMEI:1",
            method: "POST",
            target: "/dm",
            authorization,
            peer: None,
            psk: None,
        }
    }

    fn digest_answer(algorithm: Algorithm, nonce: &str, nc: u32, password: &str) -> String {
        let ha1 = algorithm.hex(&format!("dev:{REALM}:{password}"));
        let ha2 = algorithm.hex("POST:/dm");
        let nc = format!("{nc:08x}");
        let response = algorithm.hex(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
        format!(
            "Digest username=\"dev\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"/dm\", \
             algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\", response=\"{response}\"",
            algorithm.name()
        )
    }

    fn nonce_of(challenge: &str) -> String {
        parse_params(challenge.trim_start_matches("Digest "))["nonce"].clone()
    }

    #[test]
    fn digest_md5_and_sha256_once_per_nonce_count() {
        let storage = MemoryStorage::new();
        storage
            .put_credentials(
                "IMEI:1",
                &Credentials {
                    password: Some(PasswordHashes::new("dev", "pw").unwrap()),
                    certificate_sha256: None,
                },
            )
            .unwrap();
        let auth = Authenticator::new(EnrollPolicy::Refuse, HttpAuth::default(), false);
        let nonce = nonce_of(&auth.challenges(false)[0]);
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let nc = if algorithm == Algorithm::Md5 { 1 } else { 2 };
            let ok = digest_answer(algorithm, &nonce, nc, "pw");
            assert_eq!(
                auth.check(&storage, &presented(Some(&ok))).unwrap(),
                Verdict::Authenticated
            );
            // The same answer again: a replay.
            assert!(matches!(
                auth.check(&storage, &presented(Some(&ok))).unwrap(),
                Verdict::Challenge { stale: false, .. }
            ));
        }
        let wrong = digest_answer(Algorithm::Sha256, &nonce, 9, "guess");
        assert!(matches!(
            auth.check(&storage, &presented(Some(&wrong))).unwrap(),
            Verdict::Challenge { stale: false, .. }
        ));
        // A right answer to a nonce the server never issued: stale.
        let forged = digest_answer(Algorithm::Sha256, "00ff", 1, "pw");
        assert!(matches!(
            auth.check(&storage, &presented(Some(&forged))).unwrap(),
            Verdict::Challenge { stale: true, .. }
        ));
        // Basic is refused on a plain listener, even with the right password.
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("dev:pw")
        );
        assert!(matches!(
            auth.check(&storage, &presented(Some(&basic))).unwrap(),
            Verdict::Challenge { .. }
        ));
        let tls = Authenticator::new(EnrollPolicy::Refuse, HttpAuth::default(), true);
        assert_eq!(
            tls.check(&storage, &presented(Some(&basic))).unwrap(),
            Verdict::Authenticated
        );
    }

    fn basic(user: &str, password: &str) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    }

    fn set_password(storage: &MemoryStorage, dev_id: &str, password: &str) {
        let creds = Credentials {
            password: Some(PasswordHashes::new("dev", password).unwrap()),
            certificate_sha256: None,
        };
        storage.put_credentials(dev_id, &creds).unwrap();
    }

    fn check_as(auth: &Authenticator, storage: &MemoryStorage, dev_id: &str, a: &str) -> bool {
        let p = Presented {
            dev_id,
            ..presented(Some(a))
        };
        match auth.check(storage, &p).unwrap() {
            Verdict::Authenticated => true,
            Verdict::Challenge { .. } => false,
            v => panic!("{v:?}"),
        }
    }

    fn argon2_runs(auth: &Authenticator) -> usize {
        auth.basic_cache
            .argon2_runs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn basic_verifies_once_per_device_and_never_takes_a_wrong_password() {
        let storage = MemoryStorage::new();
        set_password(&storage, "IMEI:1", "pw");
        set_password(&storage, "IMEI:2", "theirs");
        let auth = Authenticator::new(EnrollPolicy::Refuse, HttpAuth::default(), true);
        let right = basic("dev", "pw");
        for _ in 0..5 {
            assert!(check_as(&auth, &storage, "IMEI:1", &right));
        }
        // One package paid Argon2; the other four were remembered.
        assert_eq!(argon2_runs(&auth), 1);
        // With the right token remembered, every other one is still
        // verified, and refused: another password, another user, and the
        // same token for a DevID whose password it is not.
        for (dev_id, wrong) in [
            ("IMEI:1", basic("dev", "pw2")),
            ("IMEI:1", basic("dev", "")),
            ("IMEI:1", basic("other", "pw")),
            ("IMEI:2", right.clone()),
        ] {
            assert!(!check_as(&auth, &storage, dev_id, &wrong), "{wrong}");
        }
        assert_eq!(argon2_runs(&auth), 5);
        // A refused guess does not unseat the remembered password.
        assert!(check_as(&auth, &storage, "IMEI:1", &right));
        assert_eq!(argon2_runs(&auth), 5);
    }

    #[test]
    fn new_credentials_void_a_remembered_password() {
        let storage = MemoryStorage::new();
        set_password(&storage, "IMEI:1", "old");
        let auth = Authenticator::new(EnrollPolicy::Refuse, HttpAuth::default(), true);
        assert!(check_as(&auth, &storage, "IMEI:1", &basic("dev", "old")));
        set_password(&storage, "IMEI:1", "new");
        assert!(!check_as(&auth, &storage, "IMEI:1", &basic("dev", "old")));
        assert!(check_as(&auth, &storage, "IMEI:1", &basic("dev", "new")));
        assert_eq!(argon2_runs(&auth), 3);
        // The same password set again is a new hash (a new salt): verified
        // against it once more.
        set_password(&storage, "IMEI:1", "new");
        assert!(check_as(&auth, &storage, "IMEI:1", &basic("dev", "new")));
        assert!(check_as(&auth, &storage, "IMEI:1", &basic("dev", "new")));
        assert_eq!(argon2_runs(&auth), 4);
    }

    #[test]
    fn the_basic_cache_stays_bounded_and_forgets_with_age() {
        let cache = BasicCache::new(BASIC_CACHE_ENTRIES, BASIC_CACHE_AGE);
        let key = |i: usize| -> [u8; 32] { Sha256::digest(i.to_be_bytes()).into() };
        cache.insert("IMEI:0", key(0));
        // The first entry is then strictly the oldest.
        std::thread::sleep(Duration::from_millis(2));
        for i in 1..BASIC_CACHE_ENTRIES + 50 {
            cache.insert(&format!("IMEI:{i}"), key(i));
        }
        assert_eq!(cache.len(), BASIC_CACHE_ENTRIES);
        assert!(!cache.fresh("IMEI:0", &key(0)));
        let last = BASIC_CACHE_ENTRIES + 49;
        assert!(cache.fresh(&format!("IMEI:{last}"), &key(last)));
        assert!(!cache.fresh(&format!("IMEI:{last}"), &key(0)));
        // Past its age an entry is not taken.
        let aged = BasicCache::new(8, Duration::ZERO);
        aged.insert("IMEI:1", key(1));
        assert!(!aged.fresh("IMEI:1", &key(1)));
    }

    #[test]
    fn argon2_in_reused_memory_is_the_crates_argon2() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours made, the crate verifies; the crate made, ours verifies.
        let ours = PasswordHashes::new("dev", "pw").unwrap().phc;
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"pv", &parsed).is_err());
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        // Memories used before, by other passwords, give the same answers.
        for _ in 0..3 {
            assert!(argon2_verify(b"pw", &theirs));
            assert!(argon2_verify(b"pw", &ours));
            assert!(!argon2_verify(b"pv", &theirs));
            assert!(!argon2_verify(b"", &ours));
        }
        // Other parameters (smaller memory, Argon2i) from the same memories.
        let small = argon2::Params::new(64, 1, 1, None).unwrap();
        let other = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x10, small)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(argon2_verify(b"pw", &other));
        assert!(!argon2_verify(b"pv", &other));
        assert!(argon2_verify(b"pw", &ours));
        assert!(!argon2_verify(b"pw", "$argon2id$v=19$m=19456,t=2,p=1$bad"));
        // Threads at once keep at most the bound.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| assert!(argon2_verify(b"pw", &ours)));
            }
        });
        assert!(lock(&ARGON2_MEMORY).len() <= ARGON2_MEMORIES);
    }

    #[test]
    fn the_nonce_table_stays_bounded() {
        let auth = Authenticator::new(EnrollPolicy::Flag, HttpAuth::default(), false);
        for _ in 0..MAX_NONCES + 50 {
            auth.challenges(false);
        }
        assert_eq!(auth.tracked(), MAX_NONCES);
    }

    #[test]
    fn a_generated_password_is_checked_by_its_salted_hash() {
        let password = "q4bW0VJ3o8Ykq2bUaR8yA0QF7L5mN1c9XsZpTjHdEgI";
        let stored = PasswordHashes::generated("dev", password).unwrap();
        assert!(stored.phc.starts_with(GENERATED_PREFIX), "{}", stored.phc);
        assert!(!stored.phc.contains(password));
        let token = |user: &str, pw: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        };
        assert!(basic_matches(&stored, &token("dev", password)));
        assert!(!basic_matches(&stored, &token("dev", &password[1..])));
        assert!(!basic_matches(&stored, &token("other", password)));
        // Two hashes of one password differ (the salt).
        let again = PasswordHashes::generated("dev", password).unwrap();
        assert_ne!(again.phc, stored.phc);
        // Digest answers the same as for any password.
        assert_eq!(again.ha1_sha256, stored.ha1_sha256);
        // A person's password is not taken as generated.
        assert!(PasswordHashes::generated("dev", "hunter2").is_err());
        let mangled = PasswordHashes {
            phc: format!("{GENERATED_PREFIX}zz$00"),
            ..stored
        };
        assert!(!basic_matches(&mangled, &token("dev", password)));
    }

    #[test]
    fn stored_hashes_do_not_hold_the_password() {
        let h = PasswordHashes::new("dev", "correct horse").unwrap();
        assert!(h.phc.starts_with("$argon2id$"), "{}", h.phc);
        let all = format!("{}{}{}{h:?}", h.phc, h.ha1_md5, h.ha1_sha256);
        assert!(!all.contains("correct horse"));
        assert_ne!(
            PasswordHashes::new("dev", "correct horse").unwrap().phc,
            h.phc
        );
    }

    #[test]
    fn fingerprints_read_with_or_without_colons() {
        let hex64 = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&hex64).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("abc").is_err());
    }
}
