//! The key that seals the secrets the DM Server must keep in the clear
//! for its own use (the devices' `Auth/Noti/Secret`, which signs every
//! Package#0, spec 5.2.1), so a copy of the database alone does not give
//! them away.
//!
//! AEAD: ChaCha20-Poly1305 from `ring`, already the server's crypto for
//! TLS and admin tokens. A stored value is `VERSION || nonce (12) ||
//! ciphertext || tag (16)`, the nonce random per value; the associated
//! data names the column and the device, so a value copied into another
//! device's row does not open.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::StorageError;

/// Bytes in a key file holding the raw key (`head -c 32 /dev/urandom`).
const SECRETS_KEY_LEN: usize = 32;
/// First byte of every sealed value: the format above.
const VERSION: u8 = 1;

/// The key of `dmctl server --secrets-key FILE`: 32 bytes, stored raw or
/// as 64 hex digits.
pub struct SecretsKey {
    key: LessSafeKey,
    /// Where the key came from, for error messages; never the key.
    source: String,
}

impl std::fmt::Debug for SecretsKey {
    // Names the file only: the key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn key_error(file: &Path, reason: impl ToString) -> StorageError {
    StorageError::SecretsKey {
        file: file.display().to_string(),
        reason: reason.to_string(),
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SecretsKey {
    fn from_bytes(bytes: &[u8], source: String) -> Option<SecretsKey> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(SecretsKey {
            key: LessSafeKey::new(key),
            source,
        })
    }

    /// A fresh key that lives as long as the process (in-memory storage).
    pub fn ephemeral() -> Result<SecretsKey, StorageError> {
        let mut bytes = [0u8; SECRETS_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| key_error(Path::new("(in memory)"), "no random bytes"))?;
        SecretsKey::from_bytes(&bytes, "(in memory)".into())
            .ok_or_else(|| key_error(Path::new("(in memory)"), "bad length"))
    }

    /// Reads the key in `file`: exactly 32 raw bytes, or 64 hex digits
    /// (surrounding whitespace allowed).
    pub fn load(file: &Path) -> Result<SecretsKey, StorageError> {
        let data = std::fs::read(file).map_err(|e| key_error(file, e))?;
        let source = file.display().to_string();
        if data.len() == SECRETS_KEY_LEN {
            return SecretsKey::from_bytes(&data, source)
                .ok_or_else(|| key_error(file, "not a key"));
        }
        let text = data.trim_ascii();
        let decoded: Option<Vec<u8>> = text
            .chunks(2)
            .map(|p| match p {
                [h, l] => Some(hex_value(*h)? << 4 | hex_value(*l)?),
                _ => None,
            })
            .collect();
        match decoded {
            Some(bytes) if bytes.len() == SECRETS_KEY_LEN => {
                SecretsKey::from_bytes(&bytes, source).ok_or_else(|| key_error(file, "not a key"))
            }
            _ => Err(key_error(
                file,
                "want 32 raw bytes or 64 hex digits (e.g. `head -c 32 /dev/urandom > FILE`)",
            )),
        }
    }

    /// Reads `file`, or when it does not exist creates it (mode 0600, 64
    /// hex digits) with a fresh random key. The flag says it was created.
    pub fn load_or_create(file: &Path) -> Result<(SecretsKey, bool), StorageError> {
        let mut bytes = [0u8; SECRETS_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| key_error(file, "no random bytes"))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(file) {
            Ok(mut f) => {
                use std::io::Write;
                writeln!(f, "{}", hex(&bytes))
                    .and_then(|()| f.sync_all())
                    .map_err(|e| key_error(file, e))?;
                let key = SecretsKey::from_bytes(&bytes, file.display().to_string())
                    .ok_or_else(|| key_error(file, "not a key"))?;
                Ok((key, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((SecretsKey::load(file)?, false))
            }
            Err(e) => Err(key_error(file, e)),
        }
    }

    /// The key file used when `--secrets-key` is not given: `<db>.key`.
    pub fn beside(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// Where the key came from (a file name), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Seals `plain` for the row named by `aad`.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StorageError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| key_error(Path::new(&self.source), "no random bytes"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| key_error(Path::new(&self.source), "cannot seal"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value [`SecretsKey::seal`] made for the same `aad`; `None`
    /// when the key, the row or the bytes differ.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_files_raw_or_hex_and_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        let hexed = dir.path().join("hex");
        std::fs::write(&hexed, format!("{}\n", "07".repeat(32))).unwrap();
        let a = SecretsKey::load(&raw).unwrap();
        let b = SecretsKey::load(&hexed).unwrap();
        // Same key either way: one opens what the other sealed.
        assert_eq!(b.open(b"x", &a.seal(b"x", b"s").unwrap()).unwrap(), b"s");
        for bad in [&b"short"[..], &[b'z'; 64][..], &[b'0'; 62][..]] {
            let f = dir.path().join("bad");
            std::fs::write(&f, bad).unwrap();
            assert!(matches!(
                SecretsKey::load(&f),
                Err(StorageError::SecretsKey { .. })
            ));
        }
        let made = dir.path().join("made.key");
        let (k, created) = SecretsKey::load_or_create(&made).unwrap();
        assert!(created);
        let (k2, created) = SecretsKey::load_or_create(&made).unwrap();
        assert!(!created);
        assert_eq!(k2.open(b"d", &k.seal(b"d", b"v").unwrap()).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn sealed_values_differ_and_bind_their_row() {
        let k = SecretsKey::ephemeral().unwrap();
        let one = k.seal(b"dev-a", b"secret").unwrap();
        let two = k.seal(b"dev-a", b"secret").unwrap();
        // A random nonce per value: equal secrets do not look equal.
        assert_ne!(one, two);
        assert!(!one.windows(6).any(|w| w == b"secret"));
        assert_eq!(k.open(b"dev-a", &one).unwrap(), b"secret");
        assert_eq!(k.open(b"dev-b", &one), None);
        assert_eq!(SecretsKey::ephemeral().unwrap().open(b"dev-a", &one), None);
        assert_eq!(k.open(b"dev-a", b"secret"), None);
    }
}
