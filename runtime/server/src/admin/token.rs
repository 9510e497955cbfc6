//! Bearer tokens of the admin API: made from 32 random bytes, kept as
//! their SHA-256 only, and found again by comparing hashes in constant
//! time.
//!
//! A fast hash is enough here, unlike for passwords: a slow password hash
//! (Argon2, bcrypt) only makes guessing a low-entropy secret from a stolen
//! hash expensive, and a token of 256 uniformly random bits cannot be
//! guessed at any hashing speed. SHA-256 keeps checking the token of every
//! admin request cheap, so no request becomes a CPU sink either.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{now, AdminRole, AdminToken, Storage, StorageError};

/// What every token starts with, so that a leaked one is recognisable
/// (in a log, a shell history, a secret scanner).
pub const TOKEN_PREFIX: &str = "dmadm_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the system random number generator failed")]
    Random,
}

/// Makes a token of `role`, stores its hash in `storage` and returns the
/// token: the only time it exists in clear. Show it to the operator once.
pub fn create_admin_token(
    storage: &dyn Storage,
    role: AdminRole,
) -> Result<(u64, String), AdminTokenError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AdminTokenError::Random)?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let id = storage.add_admin_token(role, &token_hash(&token), now())?;
    Ok((id, token))
}

/// What the storage keeps of a token.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The stored token `presented` hashes to, if any. Every stored hash is
/// compared, each in constant time, so the time taken tells nothing of
/// how close a guess came.
pub(crate) fn find_token<'a>(tokens: &'a [AdminToken], presented: &str) -> Option<&'a AdminToken> {
    let hash = token_hash(presented);
    let mut found = None;
    for t in tokens {
        if bool::from(t.hash.ct_eq(&hash)) {
            found = Some(t);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::MemoryStorage;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_stored() {
        let s = MemoryStorage::new();
        let (read_id, read) = create_admin_token(&s, AdminRole::Read).unwrap();
        let (op_id, op) = create_admin_token(&s, AdminRole::Operator).unwrap();
        assert_ne!(read, op);
        // 32 bytes, base64url without padding: 43 characters.
        assert_eq!(read.len(), TOKEN_PREFIX.len() + 43, "{read}");
        assert!(read.starts_with(TOKEN_PREFIX));
        let stored = s.admin_tokens().unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].hash, token_hash(&read));
        assert!(format!("{stored:?}")
            .find(&read[TOKEN_PREFIX.len()..])
            .is_none());

        let found = find_token(&stored, &read).unwrap();
        assert_eq!((found.id, found.role), (read_id, AdminRole::Read));
        let found = find_token(&stored, &op).unwrap();
        assert_eq!((found.id, found.role), (op_id, AdminRole::Operator));
        assert!(find_token(&stored, &op[..op.len() - 1]).is_none());
        assert!(find_token(&stored, "").is_none());
        assert!(find_token(&[], &op).is_none());
    }
}
