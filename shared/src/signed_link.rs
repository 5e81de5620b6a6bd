//! Signed tokens for public links (unsubscribe, recall responses …).
//!
//! A token names a *purpose* (what the link may be used for), a *subject*
//! (who or what it acts on, such as a customer id) and an expiry, and carries
//! an HMAC-SHA256 over all three. [`sign`] makes one with the current secret;
//! [`verify`] accepts it under any of several secrets, so a secret can be
//! rotated without breaking links already sent. A token made for one purpose
//! never opens another: `verify` reports [`LinkError::WrongPurpose`] only after
//! the MAC has proved the token genuine. MACs are compared in constant time.
//!
//! # Token format
//!
//! The token is the base64url encoding, without padding, of these bytes:
//!
//! | bytes | content |
//! |-------|---------|
//! | 1     | format version, `1` |
//! | 8     | `expires_at`, unix seconds, signed big-endian |
//! | 1     | purpose length `P`, 1 to [`MAX_PURPOSE_BYTES`] |
//! | `P`   | purpose, UTF-8 |
//! | 2     | subject length `S`, 0 to [`MAX_SUBJECT_BYTES`], big-endian |
//! | `S`   | subject, UTF-8 |
//! | 32    | HMAC-SHA256, keyed with the secret, of `"signed-link\0"` followed by every byte above |
//!
//! The longest token is 827 characters; anything over [`MAX_TOKEN_CHARS`] is
//! refused before decoding. A token is valid while `now < expires_at`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token [`verify`] will look at.
pub const MAX_TOKEN_CHARS: usize = 2048;
/// Longest subject, in UTF-8 bytes.
pub const MAX_SUBJECT_BYTES: usize = 512;
/// Longest purpose, in UTF-8 bytes.
pub const MAX_PURPOSE_BYTES: usize = 64;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"signed-link\0";
const MAC_LEN: usize = 32;

/// What a genuine, unexpired token for the expected purpose says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    pub subject: String,
    pub expires_at: i64,
}

/// Why a link was refused (or, from [`sign`], why one could not be made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token at all: too long, not base64url, or the wrong layout.
    /// From [`sign`]: an empty secret, an empty or too long purpose, or a too long subject.
    Malformed,
    /// Genuine, but past its expiry.
    Expired,
    /// Genuine, but made for another purpose.
    WrongPurpose,
    /// Altered, or signed with a secret that is no longer accepted.
    Invalid,
}

impl LinkError {
    /// A sentence for the person who followed the link.
    pub fn message(&self) -> String {
        match self {
            Self::Malformed => {
                "This link is incomplete or damaged. Please use the full link from your message."
            }
            Self::Expired => "This link has expired.",
            Self::WrongPurpose => "This link cannot be used for this action.",
            Self::Invalid => "This link is not valid.",
        }
        .to_owned()
    }
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for LinkError {}

/// Makes a token for `purpose` and `subject` that stops working at `expires_at`.
///
/// Fails with [`LinkError::Malformed`] when the secret is empty, the purpose is
/// empty or over [`MAX_PURPOSE_BYTES`], or the subject is over [`MAX_SUBJECT_BYTES`].
pub fn sign(
    secret: &[u8],
    purpose: &str,
    subject: &str,
    expires_at: i64,
) -> Result<String, LinkError> {
    let purpose_len = u8::try_from(purpose.len()).map_err(|_| LinkError::Malformed)?;
    let subject_len = u16::try_from(subject.len()).map_err(|_| LinkError::Malformed)?;
    if secret.is_empty() || !purpose_fits(purpose.len()) || subject.len() > MAX_SUBJECT_BYTES {
        return Err(LinkError::Malformed);
    }
    let mut bytes = Vec::with_capacity(12 + purpose.len() + subject.len() + MAC_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&expires_at.to_be_bytes());
    bytes.push(purpose_len);
    bytes.extend_from_slice(purpose.as_bytes());
    bytes.extend_from_slice(&subject_len.to_be_bytes());
    bytes.extend_from_slice(subject.as_bytes());
    let tag = keyed(secret, &bytes)
        .ok_or(LinkError::Malformed)?
        .finalize()
        .into_bytes();
    bytes.extend_from_slice(&tag);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks `token` for `purpose` under any of `secrets` (empty ones never match).
pub fn verify(
    secrets: &[&[u8]],
    purpose: &str,
    token: &str,
    now: i64,
) -> Result<SignedLink, LinkError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(LinkError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| LinkError::Malformed)?;
    let payload_len = bytes
        .len()
        .checked_sub(MAC_LEN)
        .ok_or(LinkError::Malformed)?;
    let (payload, tag) = bytes.split_at(payload_len);
    let fields = parse(payload).ok_or(LinkError::Malformed)?;
    let genuine = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| keyed(s, payload))
        .any(|mac| mac.verify_slice(tag).is_ok());
    if !genuine {
        return Err(LinkError::Invalid);
    }
    if fields.purpose != purpose {
        return Err(LinkError::WrongPurpose);
    }
    if now >= fields.expires_at {
        return Err(LinkError::Expired);
    }
    Ok(SignedLink {
        subject: fields.subject.to_owned(),
        expires_at: fields.expires_at,
    })
}

struct Fields<'a> {
    expires_at: i64,
    purpose: &'a str,
    subject: &'a str,
}

/// Reads the payload layout; `None` unless every length and bound is exact.
fn parse(payload: &[u8]) -> Option<Fields<'_>> {
    let (&version, rest) = payload.split_first()?;
    let (expires, rest) = take(rest, 8)?;
    let (&purpose_len, rest) = rest.split_first()?;
    let (purpose, rest) = take(rest, usize::from(purpose_len))?;
    let (subject_len, rest) = take(rest, 2)?;
    let subject_len = usize::from(u16::from_be_bytes(subject_len.try_into().ok()?));
    let (subject, rest) = take(rest, subject_len)?;
    let exact = version == VERSION
        && rest.is_empty()
        && purpose_fits(purpose.len())
        && subject.len() <= MAX_SUBJECT_BYTES;
    exact.then_some(())?;
    Some(Fields {
        expires_at: i64::from_be_bytes(expires.try_into().ok()?),
        purpose: std::str::from_utf8(purpose).ok()?,
        subject: std::str::from_utf8(subject).ok()?,
    })
}

fn take(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= n).then(|| bytes.split_at(n))
}

fn purpose_fits(len: usize) -> bool {
    (1..=MAX_PURPOSE_BYTES).contains(&len)
}

fn keyed(secret: &[u8], payload: &[u8]) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).ok()?;
    mac.update(DOMAIN);
    mac.update(payload);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"old secret, still accepted";
    const NEW: &[u8] = b"new secret";
    const EXP: i64 = 1_800_000_000;

    fn token(purpose: &str, subject: &str) -> String {
        sign(NEW, purpose, subject, EXP).unwrap()
    }

    #[test]
    fn roundtrip_with_non_ascii_subject() {
        let subject = "customer 42 · Zoë 🚀";
        let t = token("unsubscribe", subject);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let link = verify(&[NEW], "unsubscribe", &t, EXP - 100).unwrap();
        assert_eq!(
            link,
            SignedLink {
                subject: subject.to_owned(),
                expires_at: EXP
            }
        );
        let empty = token("recall_response", "");
        assert_eq!(
            verify(&[NEW], "recall_response", &empty, 0)
                .unwrap()
                .subject,
            ""
        );
    }

    #[test]
    fn expiry_boundary() {
        let t = token("unsubscribe", "c1");
        assert!(verify(&[NEW], "unsubscribe", &t, EXP - 1).is_ok());
        assert_eq!(
            verify(&[NEW], "unsubscribe", &t, EXP),
            Err(LinkError::Expired)
        );
        assert_eq!(
            verify(&[NEW], "unsubscribe", &t, i64::MAX),
            Err(LinkError::Expired)
        );
        let forever = sign(NEW, "unsubscribe", "c1", i64::MAX).unwrap();
        assert!(verify(&[NEW], "unsubscribe", &forever, i64::MAX - 1).is_ok());
        let past = sign(NEW, "unsubscribe", "c1", i64::MIN).unwrap();
        assert_eq!(
            verify(&[NEW], "unsubscribe", &past, i64::MIN),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn wrong_purpose_is_refused() {
        let t = token("unsubscribe", "c1");
        assert_eq!(
            verify(&[NEW], "recall_response", &t, 0),
            Err(LinkError::WrongPurpose)
        );
        assert_eq!(
            verify(&[NEW], "unsubscribe2", &t, 0),
            Err(LinkError::WrongPurpose)
        );
        assert_eq!(verify(&[NEW], "", &t, 0), Err(LinkError::WrongPurpose));
    }

    #[test]
    fn any_changed_character_is_refused() {
        let t = token("unsubscribe", "c1");
        for i in 0..t.len() {
            let mut chars: Vec<char> = t.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let changed: String = chars.into_iter().collect();
            let result = verify(&[NEW, OLD], "unsubscribe", &changed, 0);
            assert!(
                matches!(result, Err(LinkError::Malformed | LinkError::Invalid)),
                "position {i}: {result:?}"
            );
        }
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let raw = URL_SAFE_NO_PAD.decode(token("unsubscribe", "c1")).unwrap();
        for i in 0..raw.len() {
            let mut changed = raw.clone();
            changed[i] ^= 0x01;
            let result = verify(&[NEW], "unsubscribe", &URL_SAFE_NO_PAD.encode(changed), 0);
            assert!(
                matches!(result, Err(LinkError::Malformed | LinkError::Invalid)),
                "byte {i}: {result:?}"
            );
        }
    }

    #[test]
    fn rotation() {
        let old = sign(OLD, "unsubscribe", "c1", EXP).unwrap();
        assert!(verify(&[NEW, OLD], "unsubscribe", &old, 0).is_ok());
        assert_eq!(
            verify(&[NEW], "unsubscribe", &old, 0),
            Err(LinkError::Invalid)
        );
        assert_eq!(verify(&[], "unsubscribe", &old, 0), Err(LinkError::Invalid));
        assert_eq!(
            verify(&[b"" as &[u8]], "unsubscribe", &old, 0),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn malformed_tokens() {
        let t = token("unsubscribe", "c1");
        let cases = [
            String::new(),
            "not a token".to_owned(),
            format!("{t}="),
            format!("{t} "),
            t[..t.len() - 1].to_owned(),
            t[..10].to_owned(),
            "A".repeat(MAX_TOKEN_CHARS + 1),
            URL_SAFE_NO_PAD.encode([0u8; 40]),
            t.replace('-', "+").replace('_', "/") + "+/",
        ];
        for case in cases {
            assert_eq!(
                verify(&[NEW], "unsubscribe", &case, 0),
                Err(LinkError::Malformed),
                "{case:?}"
            );
        }
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[0] = 2;
        assert_eq!(
            verify(&[NEW], "unsubscribe", &URL_SAFE_NO_PAD.encode(raw), 0),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn bounds() {
        let longest = sign(NEW, &"p".repeat(64), &"é".repeat(256), EXP).unwrap();
        assert!(longest.len() <= 827);
        assert!(verify(&[NEW], &"p".repeat(64), &longest, 0).is_ok());
        assert_eq!(
            sign(NEW, "p", &"s".repeat(513), EXP),
            Err(LinkError::Malformed)
        );
        assert_eq!(
            sign(NEW, "p", &"s".repeat(70_000), EXP),
            Err(LinkError::Malformed)
        );
        assert_eq!(
            sign(NEW, &"p".repeat(65), "s", EXP),
            Err(LinkError::Malformed)
        );
        assert_eq!(sign(NEW, "", "s", EXP), Err(LinkError::Malformed));
        assert_eq!(sign(b"", "p", "s", EXP), Err(LinkError::Malformed));
    }

    #[test]
    fn messages() {
        for e in [
            LinkError::Malformed,
            LinkError::Expired,
            LinkError::WrongPurpose,
            LinkError::Invalid,
        ] {
            assert!(e.message().ends_with('.'));
            assert_eq!(e.to_string(), e.message());
        }
    }
}
