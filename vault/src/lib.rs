//! Provider tokens sealed at rest (a Shopify access token, later the OAuth
//! providers'): AES-256-GCM with a random 96-bit nonce, under a key named by
//! id, bound to the row it belongs to.
//!
//! # Keys
//!
//! [`KEYS_VAR`] holds the keyring: `<id>:<base64 of 32 bytes>` entries,
//! comma-separated, the first being the current key. [`Keyring::seal`]
//! always uses the current key; [`Keyring::open`] uses whichever key the
//! sealed text names, so a key is rotated by putting a new one first, and
//! dropped once [`Keyring::needs_rotation`] is false for every stored token.
//!
//! # Format
//!
//! `v1.<key id>.<base64url, unpadded, of nonce ‖ ciphertext ‖ tag>`. The key id
//! is 1 to 32 characters of `[A-Za-z0-9_-]`.
//!
//! # Context
//!
//! The caller passes what the token belongs to (for example
//! `"<tenant id>/<integration id>"`) as associated data: a sealed token
//! copied into another row does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// The environment variable with the keyring.
pub const KEYS_VAR: &str = "TOKEN_ENCRYPTION_KEYS";
const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultError {
    /// The keyring is empty or an entry is not `<id>:<base64 of 32 bytes>`,
    /// or an id repeats.
    BadKeyring,
    /// Not sealed text of this format.
    Malformed,
    /// Sealed under a key the keyring no longer has.
    UnknownKey,
    /// Altered, or opened with another context: authentication failed.
    Invalid,
    /// The host gave no randomness.
    NoRandomness,
}

impl VaultError {
    pub fn message(&self) -> &'static str {
        match self {
            Self::BadKeyring => {
                "the token keyring is not '<id>:<base64 of 32 bytes>', comma-separated, ids unique"
            }
            Self::Malformed => "the sealed token is malformed",
            Self::UnknownKey => "the sealed token names a key the keyring does not have",
            Self::Invalid => "the sealed token does not open: altered, or not this row's",
            Self::NoRandomness => "no randomness for a nonce",
        }
    }
}

/// The keys, the current one first.
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("ids", &ids).finish()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Keyring {
    /// Reads `<id>:<base64 key>,…` (spaces around entries are ignored).
    pub fn parse(spec: &str) -> Result<Self, VaultError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').ok_or(VaultError::BadKeyring)?;
            let bytes = STANDARD
                .decode(key.trim())
                .map_err(|_| VaultError::BadKeyring)?;
            if !valid_id(id) || bytes.len() != 32 || keys.iter().any(|(k, _)| k == id) {
                return Err(VaultError::BadKeyring);
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| VaultError::BadKeyring)?;
            keys.push((id.to_owned(), cipher));
        }
        if keys.is_empty() {
            return Err(VaultError::BadKeyring);
        }
        Ok(Self { keys })
    }

    /// The current key's id.
    pub fn current(&self) -> &str {
        &self.keys[0].0
    }

    /// Seals `plaintext` for `context` under the current key, with a fresh
    /// random nonce.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|_| VaultError::NoRandomness)?;
        self.seal_with_nonce(plaintext, context, nonce)
    }

    /// [`seal`](Self::seal) with a given nonce: for tests only. A nonce must
    /// never be used twice with one key.
    pub fn seal_with_nonce(
        &self,
        plaintext: &[u8],
        context: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, VaultError> {
        let (id, cipher) = &self.keys[0];
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Invalid)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{VERSION}.{id}.{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Opens what [`seal`](Self::seal) made for the same `context`, under
    /// whichever key of the ring it names.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, VaultError> {
        let (id, bytes) = parts(sealed)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or(VaultError::UnknownKey)?;
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Malformed)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Invalid)
    }

    /// Whether `sealed` is under a key other than the current one (then open
    /// and seal it again). Malformed text needs it too.
    pub fn needs_rotation(&self, sealed: &str) -> bool {
        parts(sealed).map_or(true, |(id, _)| id != self.current())
    }
}

fn parts(sealed: &str) -> Result<(&str, Vec<u8>), VaultError> {
    let mut it = sealed.splitn(3, '.');
    let (Some(VERSION), Some(id), Some(body)) = (it.next(), it.next(), it.next()) else {
        return Err(VaultError::Malformed);
    };
    if !valid_id(id) {
        return Err(VaultError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| VaultError::Malformed)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Malformed);
    }
    Ok((id, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> String {
        STANDARD.encode([b; 32])
    }

    #[test]
    fn a_token_round_trips_for_its_row_only() {
        let ring = Keyring::parse(&format!("k2025:{}", key(1))).unwrap();
        let sealed = ring.seal(b"shpat_secret", b"tenant/integration").unwrap();
        assert!(sealed.starts_with("v1.k2025."), "{sealed}");
        assert!(!sealed.contains("shpat"));
        assert_eq!(
            ring.open(&sealed, b"tenant/integration").unwrap(),
            b"shpat_secret"
        );
        assert_eq!(
            ring.open(&sealed, b"tenant/other").unwrap_err(),
            VaultError::Invalid,
            "another row's context does not open it"
        );
        let again = ring.seal(b"shpat_secret", b"tenant/integration").unwrap();
        assert_ne!(sealed, again, "a fresh nonce each time");
    }

    #[test]
    fn a_known_vector_and_tampering() {
        let ring = Keyring::parse(&format!("a:{}", key(7))).unwrap();
        let sealed = ring.seal_with_nonce(b"token", b"ctx", [9; 12]).unwrap();
        // Deterministic under a fixed key and nonce: the format is stable.
        assert_eq!(
            sealed,
            ring.seal_with_nonce(b"token", b"ctx", [9; 12]).unwrap()
        );
        let (_, mut bytes) = parts(&sealed).unwrap();
        assert_eq!(bytes.len(), 12 + 5 + 16);
        for i in [0, 12, bytes.len() - 1] {
            bytes[i] ^= 1;
            let forged = format!("v1.a.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(
                ring.open(&forged, b"ctx").unwrap_err(),
                VaultError::Invalid,
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for bad in [
            "",
            "v1.a",
            "v2.a.AAAA",
            "v1.a b.AAAA",
            "v1.a.!!",
            "v1.a.AAAA",
        ] {
            assert_eq!(
                ring.open(bad, b"ctx").unwrap_err(),
                VaultError::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_rotate_without_re_encrypting() {
        let old = Keyring::parse(&format!("old:{}", key(1))).unwrap();
        let sealed = old.seal(b"t", b"c").unwrap();
        let ring = Keyring::parse(&format!("new:{}, old:{}", key(2), key(1))).unwrap();
        assert_eq!(ring.current(), "new");
        assert_eq!(
            ring.open(&sealed, b"c").unwrap(),
            b"t",
            "the old key still opens its tokens"
        );
        assert!(ring.needs_rotation(&sealed));
        let resealed = ring.seal(b"t", b"c").unwrap();
        assert!(!ring.needs_rotation(&resealed));
        let dropped = Keyring::parse(&format!("new:{}", key(2))).unwrap();
        assert_eq!(
            dropped.open(&sealed, b"c").unwrap_err(),
            VaultError::UnknownKey
        );
        assert_eq!(dropped.open(&resealed, b"c").unwrap(), b"t");
    }

    #[test]
    fn a_bad_keyring_is_refused_and_never_printed() {
        for bad in [
            "".to_owned(),
            "nokey".to_owned(),
            format!("a:{}", STANDARD.encode([1; 16])),
            format!("a b:{}", key(1)),
            format!("a:{},a:{}", key(1), key(2)),
            "a:not base64".to_owned(),
        ] {
            assert_eq!(
                Keyring::parse(&bad).unwrap_err(),
                VaultError::BadKeyring,
                "{bad}"
            );
        }
        let ring = Keyring::parse(&format!("a:{}", key(3))).unwrap();
        let shown = format!("{ring:?}");
        assert!(
            shown.contains("\"a\"") && !shown.contains(&key(3)[..8]),
            "{shown}"
        );
    }
}
