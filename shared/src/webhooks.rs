//! Verifying the signatures on incoming webhooks.
//!
//! Every provider is checked the same way: [`verify`] takes the [`Provider`],
//! the request headers (names in lower case), the raw body bytes exactly as
//! received, the secrets currently accepted and the current unix time. It
//! returns `Ok(())` or a [`WebhookError`] whose [`WebhookError::message`] can
//! be shown to the sender. Several secrets may be passed while one is being
//! rotated: the request passes when any secret matches any signature it
//! carries. Empty secrets never match; [`secret_is_usable`] lets configuration
//! loading reject a bad secret up front. MACs are compared in constant time by
//! the `hmac` crate (`verify_slice`), never with `==`.
//!
//! The signature is checked before the timestamp, so [`WebhookError::Stale`]
//! means "authentic, but outside the time window".
//!
//! # Schemes
//!
//! - **Stripe**: `stripe-signature: t=<unix>,v1=<hex>[,v1=<hex>...]`. The
//!   signature is HMAC-SHA256 of `"{t}.{body}"`, keyed with the whole endpoint
//!   secret (the `whsec_...` string used as raw bytes). Stripe sends one `v1`
//!   entry per active secret while a secret is rolled; other schemes (`v0`)
//!   are ignored. The timestamp must be within [`TOLERANCE_SECS`] of now *in
//!   either direction*: Stripe's own libraries reject only old timestamps, but
//!   rejecting far-future ones too keeps a clock error from opening a long
//!   replay window.
//! - **Standard Webhooks / Svix** (used by Resend): headers `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature`, or the same names with the
//!   `svix-` prefix. The signature is HMAC-SHA256 of `"{id}.{timestamp}.{body}"`
//!   keyed with the base64-decoded part of the secret after `whsec_` (a secret
//!   without the prefix is base64 too). The signature header is a
//!   space-separated list of `v1,<base64>` entries; other versions (`v1a` is the
//!   asymmetric one) are ignored. The timestamp must be within
//!   [`TOLERANCE_SECS`] of now, both ways, as in the specification's libraries.
//! - **Shopify**: `x-shopify-hmac-sha256` is the base64 HMAC-SHA256 of the body,
//!   keyed with the app's client secret. Nothing else is signed: no timestamp,
//!   and none of the `x-shopify-*` headers. Replay protection is the caller's:
//!   deduplicate on [`shopify_webhook_id`] (which also absorbs Shopify's own
//!   retries), and where replaying an authentic body under a new id would do
//!   harm, on the body itself ([`body_sha256_hex`]), since the id header is not
//!   covered by the signature. [`shopify_oauth_query_valid`] checks the `hmac`
//!   parameter Shopify adds to OAuth and app-load redirects.
//! - **Meta** (Facebook, Instagram, WhatsApp): `x-hub-signature-256:
//!   sha256=<hex>`, the HMAC-SHA256 of the body keyed with the app secret. No
//!   timestamp: deduplicate on the entry or message ids. Meta's documentation
//!   says the signature covers the payload with non-ASCII characters escaped as
//!   `\uXXXX`; that is the form in which the body arrives, so the raw bytes
//!   verify and a decoded or re-serialised JSON does not.
//! - **Twilio**: `x-twilio-signature` is the base64 HMAC-SHA1, keyed with the
//!   auth token, of the public URL Twilio requested (passed in by the caller,
//!   because the function only sees the URL behind the proxy) followed, for a
//!   form post, by every parameter's name and value, sorted by name and then
//!   value. For a JSON body Twilio adds `bodySHA256=<hex>` to the URL: the
//!   signature then covers the URL alone and the body's SHA-256 must equal that
//!   parameter. Like Twilio's own libraries, the URL is also tried with its port
//!   toggled (`:443` / `:80` added, or an explicit port removed), because Twilio
//!   is not consistent about it. No timestamp: deduplicate on the `CallSid` or
//!   `MessageSid` (plus status) where it matters.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;
/// Request headers, names in lower case.
pub type Headers = BTreeMap<String, String>;

/// How far a signed timestamp may be from now, either way (Stripe and Standard Webhooks).
pub const TOLERANCE_SECS: i64 = 300;
/// How far the `timestamp` of a Shopify OAuth redirect may be from now (Shopify's own libraries use 90 s).
pub const SHOPIFY_OAUTH_TOLERANCE_SECS: i64 = 90;
/// Most signatures one header may carry; more is treated as malformed.
const MAX_SIGNATURES: usize = 16;
const STANDARD_NAMES: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];
const SVIX_NAMES: [&str; 3] = ["svix-id", "svix-timestamp", "svix-signature"];

/// Why a webhook was refused. [`WebhookError::message`] is safe to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// A required header (or, for the Shopify OAuth check, query parameter) is absent.
    Missing(&'static str),
    /// The signature material is present but unreadable; the text says which part.
    Malformed(String),
    /// The signature is valid but its timestamp is outside the window.
    /// `age_secs` is `now - timestamp`: negative for a timestamp in the future.
    Stale { age_secs: i64, tolerance_secs: i64 },
    /// No accepted secret produces any of the signatures carried.
    Mismatch,
}

impl WebhookError {
    /// A sentence for the sender. Never contains a secret or an expected signature.
    pub fn message(&self) -> String {
        match self {
            Self::Missing(name) => format!("The request is missing {name}, which is needed to check its signature."),
            Self::Malformed(detail) => format!("The signature is malformed: {detail}."),
            Self::Stale { age_secs, tolerance_secs } if *age_secs < 0 => format!(
                "The signature timestamp is {} seconds in the future; at most {tolerance_secs} seconds are accepted.",
                age_secs.unsigned_abs()
            ),
            Self::Stale { age_secs, tolerance_secs } => format!(
                "The signature timestamp is {age_secs} seconds old; at most {tolerance_secs} seconds are accepted."
            ),
            Self::Mismatch => "The signature does not match the request.".to_owned(),
        }
    }
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for WebhookError {}

/// The signing scheme to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider<'a> {
    Stripe,
    /// Standard Webhooks, also sent as Svix (Resend and others).
    StandardWebhooks,
    Shopify,
    /// Facebook, Instagram and WhatsApp.
    Meta,
    /// `url` is the full public URL Twilio requested, query string included, as Twilio sent it.
    Twilio {
        url: &'a str,
    },
}

/// Checks a webhook with the default timestamp tolerance, [`TOLERANCE_SECS`].
pub fn verify(
    provider: Provider<'_>,
    headers: &Headers,
    body: &[u8],
    secrets: &[&str],
    now: i64,
) -> Result<(), WebhookError> {
    verify_with_tolerance(provider, headers, body, secrets, now, TOLERANCE_SECS)
}

/// Like [`verify`], with another tolerance for the providers that sign a timestamp.
pub fn verify_with_tolerance(
    provider: Provider<'_>,
    headers: &Headers,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    match provider {
        Provider::Stripe => stripe(headers, body, secrets, now, tolerance_secs),
        Provider::StandardWebhooks => standard(headers, body, secrets, now, tolerance_secs),
        Provider::Shopify => shopify(headers, body, secrets),
        Provider::Meta => meta(headers, body, secrets),
        Provider::Twilio { url } => twilio(url, headers, body, secrets),
    }
}

/// Whether `secret` can ever verify anything for `provider`: not empty and, for
/// Standard Webhooks, valid base64 after the optional `whsec_` prefix.
pub fn secret_is_usable(provider: Provider<'_>, secret: &str) -> bool {
    match provider {
        Provider::StandardWebhooks => standard_key(secret).is_some(),
        _ => !secret.is_empty(),
    }
}

/// The `x-shopify-webhook-id` header: the same for every retry of one delivery.
/// It is not covered by the signature; see the module notes on replays.
pub fn shopify_webhook_id(headers: &Headers) -> Option<&str> {
    headers
        .get("x-shopify-webhook-id")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Lower-case hex SHA-256 of `body`, a replay key for schemes that sign no timestamp.
pub fn body_sha256_hex(body: &[u8]) -> String {
    encode_hex(&Sha256::digest(body))
}

/// Checks the `hmac` parameter of a Shopify OAuth or app-load redirect.
///
/// `query` is the raw query string (a leading `?` is allowed). As Shopify's
/// libraries do: `hmac` and `signature` are removed, the other parameters are
/// URL-decoded, sorted by name, form-encoded again and joined with `&`; the
/// hex HMAC-SHA256 of that, keyed with the client secret, must equal `hmac`.
/// The `timestamp` parameter must be within [`SHOPIFY_OAUTH_TOLERANCE_SECS`].
pub fn shopify_oauth_query_valid(
    query: &str,
    secrets: &[&str],
    now: i64,
) -> Result<(), WebhookError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.strip_prefix('?').unwrap_or(query))
            .map_err(|_| malformed("the query string cannot be parsed"))?;
    let sig = single_param(&pairs, "hmac")?;
    let sig = decode_hex(sig)
        .filter(|s| s.len() == 32)
        .ok_or_else(|| malformed("hmac is not 64 hex digits"))?;
    let timestamp = parse_unix(single_param(&pairs, "timestamp")?)?;
    let mut signed: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "hmac" && k != "signature")
        .collect();
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let message = serde_urlencoded::to_string(signed)
        .map_err(|_| malformed("the query cannot be re-encoded"))?;
    check_any::<HmacSha256>(&raw_keys(secrets), &[message.as_bytes()], &[sig])?;
    check_fresh(timestamp, now, SHOPIFY_OAUTH_TOLERANCE_SECS)
}

fn stripe(
    headers: &Headers,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tol: i64,
) -> Result<(), WebhookError> {
    let (timestamp, sigs) = parse_stripe(header(headers, "stripe-signature")?)?;
    let t = timestamp.to_string();
    check_any::<HmacSha256>(&raw_keys(secrets), &[t.as_bytes(), b".", body], &sigs)?;
    check_fresh(timestamp, now, tol)
}

fn parse_stripe(value: &str) -> Result<(i64, Vec<Vec<u8>>), WebhookError> {
    let mut timestamp = None;
    let mut sigs = Vec::new();
    for item in value.split(',') {
        let (key, val) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("an element of stripe-signature has no '='"))?;
        match key {
            "t" if timestamp.is_some() => return Err(malformed("stripe-signature repeats t=")),
            "t" => timestamp = Some(parse_unix(val)?),
            "v1" => sigs.push(
                decode_hex(val)
                    .filter(|s| s.len() == 32)
                    .ok_or_else(|| malformed("a v1 signature is not 64 hex digits"))?,
            ),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("stripe-signature has no t= timestamp"))?;
    Ok((timestamp, bounded(sigs, "stripe-signature")?))
}

fn standard(
    headers: &Headers,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tol: i64,
) -> Result<(), WebhookError> {
    let use_svix = !headers.contains_key(STANDARD_NAMES[2]) && headers.contains_key(SVIX_NAMES[2]);
    let [id_name, ts_name, sig_name] = if use_svix { SVIX_NAMES } else { STANDARD_NAMES };
    let id = header(headers, id_name)?;
    let timestamp = parse_unix(header(headers, ts_name)?)?;
    let sigs = parse_standard(header(headers, sig_name)?)?;
    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| standard_key(s)).collect();
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let t = timestamp.to_string();
    check_any::<HmacSha256>(
        &keys,
        &[id.as_bytes(), b".", t.as_bytes(), b".", body],
        &sigs,
    )?;
    check_fresh(timestamp, now, tol)
}

fn parse_standard(value: &str) -> Result<Vec<Vec<u8>>, WebhookError> {
    let mut sigs = Vec::new();
    for entry in value.split_ascii_whitespace() {
        let (version, sig) = entry
            .split_once(',')
            .ok_or_else(|| malformed("a signature entry is not <version>,<signature>"))?;
        if version == "v1" {
            sigs.push(
                decode_b64(sig, 32)
                    .ok_or_else(|| malformed("a v1 signature is not base64 of 32 bytes"))?,
            );
        }
    }
    bounded(sigs, "the signature header")
}

fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())
}

fn shopify(headers: &Headers, body: &[u8], secrets: &[&str]) -> Result<(), WebhookError> {
    let value = header(headers, "x-shopify-hmac-sha256")?;
    let sig = decode_b64(value, 32)
        .ok_or_else(|| malformed("x-shopify-hmac-sha256 is not base64 of 32 bytes"))?;
    check_any::<HmacSha256>(&raw_keys(secrets), &[body], &[sig])
}

fn meta(headers: &Headers, body: &[u8], secrets: &[&str]) -> Result<(), WebhookError> {
    let value = header(headers, "x-hub-signature-256")?;
    let hex = value
        .strip_prefix("sha256=")
        .ok_or_else(|| malformed("x-hub-signature-256 does not start with sha256="))?;
    let sig = decode_hex(hex)
        .filter(|s| s.len() == 32)
        .ok_or_else(|| malformed("x-hub-signature-256 is not 64 hex digits"))?;
    check_any::<HmacSha256>(&raw_keys(secrets), &[body], &[sig])
}

fn twilio(url: &str, headers: &Headers, body: &[u8], secrets: &[&str]) -> Result<(), WebhookError> {
    let value = header(headers, "x-twilio-signature")?;
    let sig = decode_b64(value, 20)
        .ok_or_else(|| malformed("x-twilio-signature is not base64 of 20 bytes"))?;
    let body_hash = query_param(url, "bodySHA256");
    let params = match body_hash {
        Some(_) => Vec::new(),
        None => twilio_params(headers, body)?,
    };
    let tail: Vec<u8> = params
        .iter()
        .flat_map(|(k, v)| k.bytes().chain(v.bytes()))
        .collect();
    let keys = raw_keys(secrets);
    let sigs = [sig];
    let signed = twilio_urls(url)
        .iter()
        .any(|u| check_any::<HmacSha1>(&keys, &[u.as_bytes(), &tail], &sigs).is_ok());
    if !signed {
        return Err(WebhookError::Mismatch);
    }
    body_hash.map_or(Ok(()), |expected| check_body_hash(&expected, body))
}

/// The form parameters Twilio signs, sorted by name then value.
fn twilio_params(headers: &Headers, body: &[u8]) -> Result<Vec<(String, String)>, WebhookError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let media = headers.get("content-type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if media.is_some_and(|m| m != "application/x-www-form-urlencoded") {
        return Err(malformed(
            "a body that is not a form must be signed with a bodySHA256 URL parameter",
        ));
    }
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| malformed("the form body cannot be parsed"))?;
    pairs.sort();
    Ok(pairs)
}

fn check_body_hash(expected_hex: &str, body: &[u8]) -> Result<(), WebhookError> {
    let expected = decode_hex(expected_hex)
        .filter(|h| h.len() == 32)
        .ok_or_else(|| malformed("bodySHA256 is not 64 hex digits"))?;
    if ct_eq(&expected, &Sha256::digest(body)) {
        Ok(())
    } else {
        Err(WebhookError::Mismatch)
    }
}

/// The URL as given, then with its port toggled, as Twilio's libraries try both.
fn twilio_urls(url: &str) -> Vec<String> {
    std::iter::once(url.to_owned())
        .chain(toggle_port(url))
        .collect()
}

fn toggle_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (userinfo, host) = authority.split_at(authority.rfind('@').map_or(0, |i| i + 1));
    let port_at = host.rfind(':').filter(|&i| !host[i..].contains(']'));
    let new_host = match (port_at, scheme.to_ascii_lowercase().as_str()) {
        (Some(i), _) => host[..i].to_owned(),
        (None, "https") => format!("{host}:443"),
        (None, "http") => format!("{host}:80"),
        (None, _) => return None,
    };
    Some(format!("{scheme}://{userinfo}{new_host}{tail}"))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Whether any usable key produces any of `candidates` over the concatenated `message`.
fn check_any<M: Mac + KeyInit + Clone>(
    keys: &[&[u8]],
    message: &[&[u8]],
    candidates: &[Vec<u8>],
) -> Result<(), WebhookError> {
    let matches = keys.iter().filter(|k| !k.is_empty()).any(|key| {
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
            return false;
        };
        for part in message {
            mac.update(part);
        }
        candidates
            .iter()
            .any(|c| mac.clone().verify_slice(c).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(WebhookError::Mismatch)
    }
}

fn check_fresh(timestamp: i64, now: i64, tolerance_secs: i64) -> Result<(), WebhookError> {
    let age_secs = now.saturating_sub(timestamp);
    if age_secs.unsigned_abs() > tolerance_secs.unsigned_abs() {
        Err(WebhookError::Stale {
            age_secs,
            tolerance_secs,
        })
    } else {
        Ok(())
    }
}

fn header<'h>(headers: &'h Headers, name: &'static str) -> Result<&'h str, WebhookError> {
    let value = headers.get(name).ok_or(WebhookError::Missing(name))?.trim();
    if value.is_empty() {
        return Err(malformed(&format!("the {name} header is empty")));
    }
    Ok(value)
}

fn single_param<'p>(
    pairs: &'p [(String, String)],
    name: &'static str,
) -> Result<&'p str, WebhookError> {
    let mut values = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let value = values.next().ok_or(WebhookError::Missing(name))?;
    if values.next().is_some() {
        return Err(malformed(&format!("the query repeats {name}")));
    }
    Ok(value)
}

fn bounded(sigs: Vec<Vec<u8>>, what: &str) -> Result<Vec<Vec<u8>>, WebhookError> {
    match sigs.len() {
        0 => Err(malformed(&format!("{what} has no v1 signature"))),
        n if n > MAX_SIGNATURES => Err(malformed(&format!(
            "{what} has more than {MAX_SIGNATURES} signatures"
        ))),
        _ => Ok(sigs),
    }
}

/// Unix seconds: ASCII digits only, no sign, at most 12 of them.
fn parse_unix(value: &str) -> Result<i64, WebhookError> {
    let digits =
        !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| malformed("the timestamp is not a unix time in seconds"))
}

fn raw_keys<'s>(secrets: &[&'s str]) -> Vec<&'s [u8]> {
    secrets.iter().map(|s| s.as_bytes()).collect()
}

fn decode_b64(value: &str, len: usize) -> Option<Vec<u8>> {
    STANDARD.decode(value).ok().filter(|b| b.len() == len)
}

fn decode_hex(value: &str) -> Option<Vec<u8>> {
    let nibble = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    if value.len() % 2 != 0 {
        return None;
    }
    value
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| char::from(DIGITS[usize::from(n & 0x0f)]);
    bytes
        .iter()
        .flat_map(|b| [digit(b >> 4), digit(*b)])
        .collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn malformed(detail: &str) -> WebhookError {
    WebhookError::Malformed(detail.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (String::from(*k), String::from(*v)))
            .collect()
    }

    fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    fn is_malformed(r: Result<(), WebhookError>) -> bool {
        matches!(r, Err(WebhookError::Malformed(_)))
    }

    // Computed independently (Python's hmac module).
    const STRIPE_SECRET: &str = "whsec_test_secret_0123456789";
    const STRIPE_BODY: &str = "{\"id\":\"evt_1\",\"object\":\"event\",\"name\":\"Zoë 🚀\"}";
    const STRIPE_SIG: &str = "0394174f188c6e0c61c9132527e1ef6e2a6c386e1b9acb7929a0399f534843a2";
    const STRIPE_T: i64 = 1_700_000_000;

    fn stripe_check(
        header: &str,
        body: &str,
        secrets: &[&str],
        now: i64,
    ) -> Result<(), WebhookError> {
        let h = headers(&[("stripe-signature", header)]);
        verify(Provider::Stripe, &h, body.as_bytes(), secrets, now)
    }

    #[test]
    fn stripe_accepts_a_valid_non_ascii_body() {
        let header = format!("t={STRIPE_T},v1={STRIPE_SIG}");
        assert_eq!(
            stripe_check(&header, STRIPE_BODY, &[STRIPE_SECRET], STRIPE_T + 5),
            Ok(())
        );
    }

    #[test]
    fn stripe_accepts_any_of_several_signatures_and_secrets() {
        let other = "ab".repeat(32);
        let header = format!("t={STRIPE_T}, v1={other}, v1={STRIPE_SIG}, v0={other}");
        let secrets = ["whsec_new", STRIPE_SECRET];
        assert_eq!(
            stripe_check(&header, STRIPE_BODY, &secrets, STRIPE_T),
            Ok(())
        );
        assert_eq!(
            stripe_check(&header, STRIPE_BODY, &["whsec_new"], STRIPE_T),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            stripe_check(&header, STRIPE_BODY, &[], STRIPE_T),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            stripe_check(&header, STRIPE_BODY, &[""], STRIPE_T),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn stripe_rejects_tampering() {
        let header = format!("t={STRIPE_T},v1={STRIPE_SIG}");
        let tampered = STRIPE_BODY.replace("evt_1", "evt_2");
        assert_eq!(
            stripe_check(&header, &tampered, &[STRIPE_SECRET], STRIPE_T),
            Err(WebhookError::Mismatch)
        );
        let moved = format!("t={},v1={STRIPE_SIG}", STRIPE_T + 1);
        assert_eq!(
            stripe_check(&moved, STRIPE_BODY, &[STRIPE_SECRET], STRIPE_T),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn stripe_tolerance_applies_both_ways() {
        let header = format!("t={STRIPE_T},v1={STRIPE_SIG}");
        let check = |now| stripe_check(&header, STRIPE_BODY, &[STRIPE_SECRET], now);
        assert_eq!(check(STRIPE_T + 300), Ok(()));
        assert_eq!(check(STRIPE_T - 300), Ok(()));
        assert_eq!(
            check(STRIPE_T + 301),
            Err(WebhookError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            check(STRIPE_T - 301),
            Err(WebhookError::Stale {
                age_secs: -301,
                tolerance_secs: 300
            })
        );
        let h = headers(&[("stripe-signature", &header)]);
        let wide = verify_with_tolerance(
            Provider::Stripe,
            &h,
            STRIPE_BODY.as_bytes(),
            &[STRIPE_SECRET],
            STRIPE_T + 600,
            600,
        );
        assert_eq!(wide, Ok(()));
    }

    #[test]
    fn stripe_reports_missing_and_malformed_headers() {
        let body = STRIPE_BODY.as_bytes();
        let missing = verify(
            Provider::Stripe,
            &Headers::new(),
            body,
            &[STRIPE_SECRET],
            STRIPE_T,
        );
        assert_eq!(missing, Err(WebhookError::Missing("stripe-signature")));
        let sig64 = "ab".repeat(32);
        let bad = [
            String::new(),
            "   ".to_owned(),
            format!("v1={STRIPE_SIG}"),
            format!("t={STRIPE_T}"),
            format!("t={STRIPE_T},v0={sig64}"),
            format!("t={STRIPE_T},v1=zz{}", &STRIPE_SIG[2..]),
            format!("t={STRIPE_T},v1={}", &STRIPE_SIG[1..]),
            format!("t=-5,v1={STRIPE_SIG}"),
            format!("t=+{STRIPE_T},v1={STRIPE_SIG}"),
            format!("t=99999999999999999999,v1={STRIPE_SIG}"),
            format!("t={STRIPE_T},t={STRIPE_T},v1={STRIPE_SIG}"),
            format!("t={STRIPE_T},garbage,v1={STRIPE_SIG}"),
            format!("t={STRIPE_T}{}", format!(",v1={sig64}").repeat(17)),
        ];
        for header in bad {
            assert!(
                is_malformed(stripe_check(
                    &header,
                    STRIPE_BODY,
                    &[STRIPE_SECRET],
                    STRIPE_T
                )),
                "{header}"
            );
        }
    }

    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_T: &str = "1614265330";
    const SW_BODY: &str = r#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn sw_headers(prefix: &str, sig: &str) -> Headers {
        let name = |n: &str| format!("{prefix}-{n}");
        headers(&[
            (&name("id"), SW_ID),
            (&name("timestamp"), SW_T),
            (&name("signature"), sig),
        ])
    }

    fn sw_now() -> i64 {
        SW_T.parse().unwrap()
    }

    #[test]
    fn standard_webhooks_published_example() {
        let key = standard_key(SW_SECRET).unwrap();
        let signed = hmac256(&key, format!("{SW_ID}.{SW_T}.{SW_BODY}").as_bytes());
        assert_eq!(format!("v1,{}", STANDARD.encode(signed)), SW_SIG);
        let h = sw_headers("webhook", SW_SIG);
        assert_eq!(
            verify(
                Provider::StandardWebhooks,
                &h,
                SW_BODY.as_bytes(),
                &[SW_SECRET],
                sw_now()
            ),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_accepts_svix_names_and_unprefixed_secrets() {
        let h = sw_headers("svix", SW_SIG);
        let unprefixed = SW_SECRET.trim_start_matches("whsec_");
        assert_eq!(
            verify(
                Provider::StandardWebhooks,
                &h,
                SW_BODY.as_bytes(),
                &[unprefixed],
                sw_now()
            ),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_rotation_and_other_versions() {
        let old = "whsec_".to_owned() + &STANDARD.encode([7u8; 24]);
        let sig = format!("v1a,AAAA v1,{} {SW_SIG}", STANDARD.encode([0u8; 32]));
        let h = sw_headers("webhook", &sig);
        let body = SW_BODY.as_bytes();
        assert_eq!(
            verify(
                Provider::StandardWebhooks,
                &h,
                body,
                &[&old, SW_SECRET],
                sw_now()
            ),
            Ok(())
        );
        assert_eq!(
            verify(Provider::StandardWebhooks, &h, body, &[&old], sw_now()),
            Err(WebhookError::Mismatch)
        );
        let unusable = verify(
            Provider::StandardWebhooks,
            &h,
            body,
            &["whsec_!!not base64!!"],
            sw_now(),
        );
        assert_eq!(unusable, Err(WebhookError::Mismatch));
        let only_asym = sw_headers("webhook", "v1a,AAAA");
        assert!(is_malformed(verify(
            Provider::StandardWebhooks,
            &only_asym,
            body,
            &[SW_SECRET],
            sw_now()
        )));
    }

    #[test]
    fn standard_webhooks_rejects_tampering_and_stale() {
        let h = sw_headers("webhook", SW_SIG);
        let body = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(Provider::StandardWebhooks, &h, body, &[SW_SECRET], sw_now()),
            Err(WebhookError::Mismatch)
        );
        let ok = SW_BODY.as_bytes();
        let late = verify(
            Provider::StandardWebhooks,
            &h,
            ok,
            &[SW_SECRET],
            sw_now() + 301,
        );
        assert_eq!(
            late,
            Err(WebhookError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        let early = verify(
            Provider::StandardWebhooks,
            &h,
            ok,
            &[SW_SECRET],
            sw_now() - 301,
        );
        assert_eq!(
            early,
            Err(WebhookError::Stale {
                age_secs: -301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn standard_webhooks_missing_and_malformed() {
        let body = SW_BODY.as_bytes();
        let mut h = sw_headers("webhook", SW_SIG);
        h.remove("webhook-id");
        assert_eq!(
            verify(Provider::StandardWebhooks, &h, body, &[SW_SECRET], sw_now()),
            Err(WebhookError::Missing("webhook-id"))
        );
        let none = verify(
            Provider::StandardWebhooks,
            &Headers::new(),
            body,
            &[SW_SECRET],
            sw_now(),
        );
        assert_eq!(none, Err(WebhookError::Missing("webhook-id")));
        for sig in [
            "",
            "v1",
            "v1,not*base64",
            "v1,AAAA",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            let h = sw_headers("webhook", sig);
            assert!(
                is_malformed(verify(
                    Provider::StandardWebhooks,
                    &h,
                    body,
                    &[SW_SECRET],
                    sw_now()
                )),
                "{sig:?}"
            );
        }
        let mut h = sw_headers("webhook", SW_SIG);
        h.insert("webhook-timestamp".into(), "soon".into());
        assert!(is_malformed(verify(
            Provider::StandardWebhooks,
            &h,
            body,
            &[SW_SECRET],
            sw_now()
        )));
    }

    #[test]
    fn secret_usability() {
        assert!(secret_is_usable(Provider::StandardWebhooks, SW_SECRET));
        assert!(!secret_is_usable(Provider::StandardWebhooks, "whsec_"));
        assert!(!secret_is_usable(Provider::StandardWebhooks, "whsec_%%%"));
        assert!(secret_is_usable(Provider::Stripe, STRIPE_SECRET));
        assert!(!secret_is_usable(Provider::Meta, ""));
    }

    const SHOPIFY_SECRET: &str = "shpss_client_secret";
    const SHOPIFY_SIG: &str = "FIHxUDLhgWzkbKG/2AB2iohK0ThAObnKQEZjfbzmfFU=";

    #[test]
    fn shopify_webhook() {
        let h = headers(&[
            ("x-shopify-hmac-sha256", SHOPIFY_SIG),
            ("x-shopify-webhook-id", "b54557e4"),
        ]);
        let body = STRIPE_BODY.as_bytes();
        assert_eq!(
            verify(Provider::Shopify, &h, body, &["old", SHOPIFY_SECRET], 0),
            Ok(())
        );
        assert_eq!(
            verify(Provider::Shopify, &h, b"{}", &[SHOPIFY_SECRET], 0),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify(Provider::Shopify, &h, body, &["old"], 0),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(shopify_webhook_id(&h), Some("b54557e4"));
        assert_eq!(shopify_webhook_id(&Headers::new()), None);
        let bad = headers(&[("x-shopify-hmac-sha256", "not base64!")]);
        assert!(is_malformed(verify(
            Provider::Shopify,
            &bad,
            body,
            &[SHOPIFY_SECRET],
            0
        )));
        let missing = verify(
            Provider::Shopify,
            &Headers::new(),
            body,
            &[SHOPIFY_SECRET],
            0,
        );
        assert_eq!(missing, Err(WebhookError::Missing("x-shopify-hmac-sha256")));
    }

    const OAUTH_QUERY: &str = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
    const OAUTH_T: i64 = 1_337_178_173;

    #[test]
    fn shopify_oauth_published_examples() {
        assert_eq!(
            shopify_oauth_query_valid(OAUTH_QUERY, &["hush"], OAUTH_T + 10),
            Ok(())
        );
        let with_mark = format!("?{OAUTH_QUERY}");
        assert_eq!(
            shopify_oauth_query_valid(&with_mark, &["other", "hush"], OAUTH_T),
            Ok(())
        );
        let older = "code=0907a61c0c8d55e99db179b68161bc00&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20&shop=some-shop.myshopify.com&signature=11813d1e7bbf4629edcda0628a3f7a20&timestamp=1337178173";
        assert_eq!(shopify_oauth_query_valid(older, &["hush"], OAUTH_T), Ok(()));
    }

    #[test]
    fn shopify_oauth_rejects_bad_queries() {
        let tampered = OAUTH_QUERY.replace("some-shop", "evil-shop");
        assert_eq!(
            shopify_oauth_query_valid(&tampered, &["hush"], OAUTH_T),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            shopify_oauth_query_valid(OAUTH_QUERY, &["nope"], OAUTH_T),
            Err(WebhookError::Mismatch)
        );
        let stale = shopify_oauth_query_valid(OAUTH_QUERY, &["hush"], OAUTH_T + 91);
        assert_eq!(
            stale,
            Err(WebhookError::Stale {
                age_secs: 91,
                tolerance_secs: 90
            })
        );
        assert_eq!(
            shopify_oauth_query_valid("shop=a&timestamp=1", &["hush"], 1),
            Err(WebhookError::Missing("hmac"))
        );
        let no_time = OAUTH_QUERY.replace("&timestamp=1337178173", "");
        assert_eq!(
            shopify_oauth_query_valid(&no_time, &["hush"], OAUTH_T),
            Err(WebhookError::Missing("timestamp"))
        );
        let twice = format!("{OAUTH_QUERY}&hmac=00");
        assert!(is_malformed(shopify_oauth_query_valid(
            &twice,
            &["hush"],
            OAUTH_T
        )));
        let bad_hex = OAUTH_QUERY.replace("hmac=700e", "hmac=zz0e");
        assert!(is_malformed(shopify_oauth_query_valid(
            &bad_hex,
            &["hush"],
            OAUTH_T
        )));
    }

    #[test]
    fn shopify_oauth_reencodes_decoded_values() {
        let message = "host=YWJjZA%3D%3D&shop=a+b.myshopify.com&timestamp=100";
        let sig = encode_hex(&hmac256(b"hush", message.as_bytes()));
        let query = format!("timestamp=100&shop=a%20b.myshopify.com&hmac={sig}&host=YWJjZA==");
        assert_eq!(shopify_oauth_query_valid(&query, &["hush"], 100), Ok(()));
    }

    const META_SECRET: &str = "meta_app_secret";
    const META_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","text":"\u00e4\u00f6\u00e5"}]}"#;
    const META_SIG: &str = "c6bacd4d123dfa3fb25db0418535869f4b16acd133d6b954c552ac6f44a948fc";

    #[test]
    fn meta_signature() {
        let h = headers(&[("x-hub-signature-256", &format!("sha256={META_SIG}"))]);
        assert_eq!(
            verify(Provider::Meta, &h, META_BODY.as_bytes(), &[META_SECRET], 0),
            Ok(())
        );
        let upper = headers(&[(
            "x-hub-signature-256",
            &format!("sha256={}", META_SIG.to_uppercase()),
        )]);
        assert_eq!(
            verify(
                Provider::Meta,
                &upper,
                META_BODY.as_bytes(),
                &["x", META_SECRET],
                0
            ),
            Ok(())
        );
        let decoded = META_BODY.replace(r"\u00e4\u00f6\u00e5", "äöå");
        assert_eq!(
            verify(Provider::Meta, &h, decoded.as_bytes(), &[META_SECRET], 0),
            Err(WebhookError::Mismatch)
        );
        for value in [
            META_SIG.to_owned(),
            "sha1=abcd".to_owned(),
            "sha256=".to_owned(),
            format!("sha256={}", &META_SIG[..62]),
        ] {
            let bad = headers(&[("x-hub-signature-256", &value)]);
            assert!(
                is_malformed(verify(
                    Provider::Meta,
                    &bad,
                    META_BODY.as_bytes(),
                    &[META_SECRET],
                    0
                )),
                "{value}"
            );
        }
    }

    const TWILIO_FORM: &str = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";

    fn twilio_check(
        url: &str,
        sig: &str,
        content_type: &str,
        body: &str,
        secrets: &[&str],
    ) -> Result<(), WebhookError> {
        let h = headers(&[("x-twilio-signature", sig), ("content-type", content_type)]);
        verify(Provider::Twilio { url }, &h, body.as_bytes(), secrets, 0)
    }

    #[test]
    fn twilio_published_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = "application/x-www-form-urlencoded; charset=utf-8";
        let sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert_eq!(
            twilio_check(url, sig, form, TWILIO_FORM, &["12345"]),
            Ok(())
        );
        assert_eq!(
            twilio_check(url, sig, form, TWILIO_FORM, &["secondary", "12345"]),
            Ok(())
        );
        assert_eq!(
            twilio_check(url, sig, form, TWILIO_FORM, &["secondary"]),
            Err(WebhookError::Mismatch)
        );
        let tampered = TWILIO_FORM.replace("Digits=1234", "Digits=1235");
        assert_eq!(
            twilio_check(url, sig, form, &tampered, &["12345"]),
            Err(WebhookError::Mismatch)
        );
        let other_url = "https://mycompany.com/myapp.php?foo=1&bar=3";
        assert_eq!(
            twilio_check(other_url, sig, form, TWILIO_FORM, &["12345"]),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn twilio_sorts_duplicates_and_toggles_the_port() {
        // Signed (independently) over "https://example.com:443/sms" + sorted params.
        let sig = "+ZqIHrp7R+WrPO/pFGb61dTLuOM=";
        let body = "To=%2B15005550006&Body=Hello+world+%26+more&MediaUrl=b&MediaUrl=a";
        let form = "application/x-www-form-urlencoded";
        assert_eq!(
            twilio_check("https://example.com/sms", sig, form, body, &["12345"]),
            Ok(())
        );
        assert_eq!(
            twilio_check("https://example.com:443/sms", sig, form, body, &["12345"]),
            Ok(())
        );
        assert_eq!(
            twilio_check("https://example.com:8443/sms", sig, form, body, &["12345"]),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            toggle_port("http://u@h.example:8080/x?y=1").as_deref(),
            Some("http://u@h.example/x?y=1")
        );
        assert_eq!(
            toggle_port("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
        assert_eq!(toggle_port("ftp://h/x"), None);
        assert_eq!(toggle_port("not a url"), None);
    }

    #[test]
    fn twilio_json_body_uses_body_sha256() {
        let url = "https://example.com/myapp?bodySHA256=5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";
        let body = r#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#;
        let sig = "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=";
        assert_eq!(
            twilio_check(url, sig, "application/json", body, &["12345"]),
            Ok(())
        );
        let changed = body.replace("CA12", "CA13");
        assert_eq!(
            twilio_check(url, sig, "application/json", &changed, &["12345"]),
            Err(WebhookError::Mismatch)
        );
        let bad_hash = url.replace("=5ccd", "=zzcd");
        let sig_for_bad = STANDARD.encode({
            let mut mac = <HmacSha1 as Mac>::new_from_slice(b"12345").unwrap();
            mac.update(bad_hash.as_bytes());
            mac.finalize().into_bytes()
        });
        assert!(is_malformed(twilio_check(
            &bad_hash,
            &sig_for_bad,
            "application/json",
            body,
            &["12345"]
        )));
        let no_hash = "https://example.com/myapp";
        assert!(is_malformed(twilio_check(
            no_hash,
            sig,
            "application/json",
            body,
            &["12345"]
        )));
    }

    #[test]
    fn twilio_missing_and_malformed() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let missing = verify(
            Provider::Twilio { url },
            &Headers::new(),
            b"",
            &["12345"],
            0,
        );
        assert_eq!(missing, Err(WebhookError::Missing("x-twilio-signature")));
        for sig in [
            "",
            "%%%",
            "AAAA",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert!(
                is_malformed(twilio_check(
                    url,
                    sig,
                    "application/x-www-form-urlencoded",
                    TWILIO_FORM,
                    &["12345"]
                )),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn messages_do_not_leak() {
        let errors = [
            WebhookError::Missing("stripe-signature"),
            WebhookError::Malformed("stripe-signature has no t= timestamp".into()),
            WebhookError::Stale {
                age_secs: 301,
                tolerance_secs: 300,
            },
            WebhookError::Stale {
                age_secs: -400,
                tolerance_secs: 300,
            },
            WebhookError::Mismatch,
        ];
        for e in errors {
            let m = e.message();
            assert!(
                m.ends_with('.') && !m.contains(STRIPE_SECRET) && !m.contains(STRIPE_SIG),
                "{m}"
            );
        }
        assert!(WebhookError::Stale {
            age_secs: -400,
            tolerance_secs: 300
        }
        .message()
        .contains("400 seconds in the future"));
        let h = headers(&[(
            "stripe-signature",
            &format!("t={STRIPE_T},v1={}", "ab".repeat(32)),
        )]);
        let err = verify(
            Provider::Stripe,
            &h,
            STRIPE_BODY.as_bytes(),
            &[STRIPE_SECRET],
            STRIPE_T,
        )
        .unwrap_err();
        assert!(!err.message().contains(STRIPE_SIG));
    }

    #[test]
    fn odd_inputs_are_errors_not_panics() {
        let odd = [
            "",
            " ",
            ",",
            "=",
            "t=",
            "t=é",
            "v1,é",
            "v1=é",
            "sha256=é",
            "sha256=éé",
            "é",
            "\u{0}",
            "t=1,v1=",
            "v1, v1,",
            "=,=,=",
            "🚀🚀🚀🚀",
            "AAAA====",
            "t=1,v1=ab,v1=é",
        ];
        let urls = [
            "",
            "https://",
            "https://é:é@[::1]:é/?bodySHA256=é#",
            "://?",
            "https://h?bodySHA256",
        ];
        let names = [
            "stripe-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-signature",
            "x-shopify-hmac-sha256",
            "x-hub-signature-256",
            "x-twilio-signature",
            "content-type",
        ];
        for value in odd {
            let h: Headers = names
                .iter()
                .map(|n| (n.to_string(), value.to_owned()))
                .collect();
            let mut providers = vec![
                Provider::Stripe,
                Provider::StandardWebhooks,
                Provider::Shopify,
                Provider::Meta,
            ];
            providers.extend(urls.iter().map(|url| Provider::Twilio { url }));
            for provider in providers {
                for body in [&b""[..], b"a=1&\xff=\xfe", value.as_bytes()] {
                    assert!(verify(provider, &h, body, &[value, "k"], i64::MIN).is_err());
                    assert!(verify(provider, &h, body, &["k"], i64::MAX).is_err());
                }
            }
            assert!(shopify_oauth_query_valid(value, &["k"], 0).is_err());
            assert!(shopify_oauth_query_valid(
                &format!("hmac={value}&timestamp={value}"),
                &[""],
                0
            )
            .is_err());
        }
    }

    #[test]
    fn body_digest_and_hex() {
        assert_eq!(
            body_sha256_hex(br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#),
            "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9"
        );
        assert_eq!(decode_hex("0aFf"), Some(vec![10, 255]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("é1"), None);
        assert_eq!(decode_hex("+1"), None);
    }
}
