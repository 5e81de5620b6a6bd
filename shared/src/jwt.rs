//! JWT verification: ES256 and RS256 keys from a JWKS, plus the legacy HS256 secret.
//!
//! The rule everything here serves: **the algorithm comes from the key, never from
//! the token.** A token's `alg` only selects among keys that admit it, so `alg: none`
//! and "HS256 signed with the RSA public key" find no key at all. A `kid` in the
//! header narrows the search to the keys carrying that `kid`.
//!
//! `exp` is required and, like `nbf`, checked with [`LEEWAY_SECS`] of clock skew.
//! Every failure is a 401; the reason is in the message, which names no key.
//!
//! The signature arithmetic is the host's: in wasm, ES256 and RS256 call
//! WebCrypto's `crypto.subtle.verify` (Deno and Supabase's edge runtime both
//! have it), so no curve or bignum code is compiled into a function. HS256
//! stays in Rust: HMAC-SHA-256 is already in every module for webhooks and
//! links, and a WebCrypto call costs more than the hash. Natively (unit tests,
//! tools) the same checks run on the `p256` and `rsa` crates. Key selection,
//! claims, leeway, alg pinning and the cache are this file's, on every target.
//!
//! A verified token is remembered by its SHA-256 until it expires, so a
//! session's repeated calls skip the signature check. Only an identical token
//! hits; `exp` is checked on every hit, and the cache holds at most
//! [`CACHE_CAPACITY`] tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Result};

/// Allowed clock skew, in seconds, for `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;
/// RSA moduli below this many bits are refused when the JWKS is read.
const MIN_RSA_BITS: usize = 2048;
/// Verified tokens remembered at once; past this, expired ones are dropped, then all.
pub const CACHE_CAPACITY: usize = 1024;

#[derive(Clone)]
enum KeyKind {
    Hs256(Vec<u8>),
    Es256(backend::PublicKey),
    Rs256(backend::PublicKey),
}

impl KeyKind {
    fn alg(&self) -> &'static str {
        match self {
            KeyKind::Hs256(_) => "HS256",
            KeyKind::Es256(_) => "ES256",
            KeyKind::Rs256(_) => "RS256",
        }
    }
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    kind: KeyKind,
}

/// The verified claims a function needs; `raw` keeps the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: Option<String>,
    pub role: Option<String>,
    pub exp: i64,
    pub raw: Value,
}

/// A set of keys, parsed once at cold start, and the tokens it has verified.
#[derive(Clone, Default)]
pub struct JwtVerifier {
    keys: Vec<Key>,
    verified: Arc<Mutex<HashMap<[u8; 32], Claims>>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.keys.iter().map(|k| k.kind.alg()).collect();
        f.debug_struct("JwtVerifier").field("keys", &algs).finish()
    }
}

impl JwtVerifier {
    /// Builds the key set from a JWKS document (`{"keys":[…]}`) and/or a legacy
    /// HS256 secret. Keys that cannot verify (private-only, unknown `kty`) are an
    /// error here, at configuration time, not a 401 on every request.
    pub fn new(jwks: Option<&str>, hs256_secret: Option<&str>) -> Result<Self, String> {
        let mut keys = Vec::new();
        if let Some(secret) = hs256_secret.filter(|s| !s.is_empty()) {
            keys.push(Key {
                kid: None,
                kind: KeyKind::Hs256(secret.as_bytes().to_vec()),
            });
        }
        if let Some(doc) = jwks.filter(|s| !s.trim().is_empty()) {
            let doc: Value =
                serde_json::from_str(doc).map_err(|e| format!("SUPABASE_JWKS is not JSON: {e}"))?;
            let list = doc
                .get("keys")
                .and_then(Value::as_array)
                .ok_or("SUPABASE_JWKS has no \"keys\" array")?;
            for (i, jwk) in list.iter().enumerate() {
                keys.push(parse_jwk(jwk).map_err(|e| format!("SUPABASE_JWKS key {i}: {e}"))?);
            }
        }
        if keys.is_empty() {
            return Err("no JWT keys: set SUPABASE_JWKS or JWT_SECRET".into());
        }
        Ok(Self {
            keys,
            verified: Arc::default(),
        })
    }

    /// In wasm, starts importing the public keys into WebCrypto at cold start.
    #[cfg(target_arch = "wasm32")]
    pub fn preload(&self) {
        for key in &self.keys {
            if let KeyKind::Es256(k) | KeyKind::Rs256(k) = &key.kind {
                k.preload();
            }
        }
    }

    /// Verifies signature, `exp` and `nbf` at `now` (seconds since the epoch).
    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(claims) = verified.get(&digest) {
                if now > claims.exp + LEEWAY_SECS {
                    verified.remove(&digest);
                    return Err(ApiError::Unauthorized("the token has expired".into()));
                }
                return Ok(claims.clone());
            }
        }
        let claims = self.verify_uncached(token, now).await?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= CACHE_CAPACITY {
            verified.retain(|_, c| now <= c.exp + LEEWAY_SECS);
            if verified.len() >= CACHE_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(digest, claims.clone());
        Ok(claims)
    }

    async fn verify_uncached(&self, token: &str, now: i64) -> Result<Claims> {
        let bad = |m: &str| ApiError::Unauthorized(m.to_owned());
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the token is not a JWT"));
        };
        let header: Value = decode_json(h).ok_or_else(|| bad("the token header is malformed"))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad("the token signature is malformed"))?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];

        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| k.kind.alg() == alg)
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            .collect();
        if candidates.is_empty() {
            return Err(bad(
                "the token is signed with an algorithm or key this project does not accept",
            ));
        }
        let mut valid = false;
        for key in candidates {
            if verify_with(&key.kind, signed, &signature).await {
                valid = true;
                break;
            }
        }
        if !valid {
            return Err(bad("the token signature is invalid"));
        }

        let payload: Value = decode_json(p).ok_or_else(|| bad("the token payload is malformed"))?;
        let exp = payload
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("the token has no exp"))?;
        if now > exp + LEEWAY_SECS {
            return Err(bad("the token has expired"));
        }
        if let Some(nbf) = payload.get("nbf") {
            let nbf = nbf
                .as_i64()
                .ok_or_else(|| bad("the token nbf is malformed"))?;
            if now + LEEWAY_SECS < nbf {
                return Err(bad("the token is not valid yet"));
            }
        }
        let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Claims {
            sub: text("sub"),
            role: text("role"),
            exp,
            raw: payload,
        })
    }
}

async fn verify_with(kind: &KeyKind, signed: &[u8], signature: &[u8]) -> bool {
    match kind {
        KeyKind::Hs256(secret) => {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                return false;
            };
            mac.update(signed);
            mac.verify_slice(signature).is_ok() // constant time
        }
        // ES256 signatures are r‖s, 64 bytes: what WebCrypto's ECDSA takes too.
        KeyKind::Es256(key) => signature.len() == 64 && key.verify(signed, signature).await,
        KeyKind::Rs256(key) => key.verify(signed, signature).await,
    }
}

fn decode_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

fn b64_field(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("\"{name}\" is not base64url"))
}

fn parse_jwk(jwk: &Value) -> Result<Key, String> {
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
    let declared = jwk.get("alg").and_then(Value::as_str);
    let kind = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => {
            if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err("only the P-256 curve is supported".into());
            }
            let (x, y) = (b64_field(jwk, "x")?, b64_field(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            KeyKind::Es256(backend::PublicKey::p256(&x, &y)?)
        }
        Some("RSA") => {
            let (n, e) = (b64_field(jwk, "n")?, b64_field(jwk, "e")?);
            if significant_bits(&n) < MIN_RSA_BITS {
                return Err(format!("RSA keys must be at least {MIN_RSA_BITS} bits"));
            }
            if significant_bits(&e) < 2 || e.len() > 8 || e.last().is_some_and(|b| b % 2 == 0) {
                return Err("the RSA exponent is not a valid odd number".into());
            }
            KeyKind::Rs256(backend::PublicKey::rsa(&n, &e)?)
        }
        Some("oct") => KeyKind::Hs256(b64_field(jwk, "k")?),
        other => return Err(format!("unsupported kty {other:?}")),
    };
    if let Some(alg) = declared {
        if alg != kind.alg() {
            return Err(format!("alg {alg} does not fit the key type"));
        }
    }
    Ok(Key { kid, kind })
}

/// The bit length of a big-endian unsigned integer.
fn significant_bits(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
        None => 0,
    }
}

/// Public-key signatures with the `p256` and `rsa` crates: tests and tools.
#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use p256::ecdsa::signature::Verifier as _;
    use sha2::Sha256;

    #[derive(Clone)]
    pub enum PublicKey {
        P256(p256::ecdsa::VerifyingKey),
        Rsa(rsa::pkcs1v15::VerifyingKey<Sha256>),
    }

    impl PublicKey {
        pub fn p256(x: &[u8], y: &[u8]) -> Result<Self, String> {
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(x);
            sec1.extend_from_slice(y);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map(PublicKey::P256)
                .map_err(|_| "not a point on P-256".into())
        }

        pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, String> {
            let (n, e) = (
                rsa::BigUint::from_bytes_be(n),
                rsa::BigUint::from_bytes_be(e),
            );
            let key = rsa::RsaPublicKey::new(n, e).map_err(|e| e.to_string())?;
            Ok(PublicKey::Rsa(rsa::pkcs1v15::VerifyingKey::new(key)))
        }

        pub async fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
            match self {
                PublicKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                    .map(|sig| key.verify(signed, &sig).is_ok())
                    .unwrap_or(false),
                PublicKey::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                    .map(|sig| key.verify(signed, &sig).is_ok())
                    .unwrap_or(false),
            }
        }
    }
}

/// Public-key signatures with the host's WebCrypto. Each key is imported
/// once per isolate, on its first use, and kept as a `CryptoKey`.
#[cfg(target_arch = "wasm32")]
mod backend {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use js_sys::{Object, Promise, Reflect, JSON};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
        fn import_key(
            format: &str,
            key: &JsValue,
            algorithm: &JsValue,
            extractable: bool,
            usages: &JsValue,
        ) -> Result<Promise, JsValue>;
        #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = verify)]
        fn subtle_verify(
            algorithm: &JsValue,
            key: &JsValue,
            signature: &[u8],
            data: &[u8],
        ) -> Result<Promise, JsValue>;
    }

    thread_local! {
        /// Imported keys by their JWK text; the promise resolves to the CryptoKey.
        static IMPORTED: RefCell<HashMap<String, Promise>> = RefCell::new(HashMap::new());
        /// Keys whose import failed, already logged.
        static FAILED: RefCell<std::collections::HashSet<String>> = RefCell::default();
    }

    /// A public key as a JWK, with the WebCrypto algorithm that verifies with it.
    #[derive(Clone)]
    pub struct PublicKey {
        jwk: String,
        ec: bool,
    }

    fn object(pairs: &[(&str, &str)]) -> JsValue {
        let o = Object::new();
        for (k, v) in pairs {
            let _ = Reflect::set(&o, &(*k).into(), &(*v).into());
        }
        o.into()
    }

    impl PublicKey {
        pub fn p256(x: &[u8], y: &[u8]) -> Result<Self, String> {
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
            Ok(PublicKey {
                jwk: jwk.to_string(),
                ec: true,
            })
        }

        pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, String> {
            let jwk = serde_json::json!({"kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)});
            Ok(PublicKey {
                jwk: jwk.to_string(),
                ec: false,
            })
        }

        fn algorithm(&self) -> JsValue {
            if self.ec {
                object(&[
                    ("name", "ECDSA"),
                    ("namedCurve", "P-256"),
                    ("hash", "SHA-256"),
                ])
            } else {
                object(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")])
            }
        }

        fn imported(&self) -> Option<Promise> {
            if let Some(p) = IMPORTED.with(|m| m.borrow().get(&self.jwk).cloned()) {
                return Some(p);
            }
            let jwk = JSON::parse(&self.jwk).ok()?;
            let usages = js_sys::Array::of1(&"verify".into());
            let promise = import_key("jwk", &jwk, &self.algorithm(), false, &usages).ok()?;
            IMPORTED.with(|m| m.borrow_mut().insert(self.jwk.clone(), promise.clone()));
            Some(promise)
        }

        /// Starts importing the key now (at cold start), so the first
        /// request does not wait for it and a bad key is logged at once.
        pub fn preload(&self) {
            if let Some(import) = self.imported() {
                let key = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    if JsFuture::from(import).await.is_err() {
                        key.verify(b"", b"").await;
                    }
                });
            }
        }

        pub async fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
            let Some(import) = self.imported() else {
                return false;
            };
            let key = match JsFuture::from(import).await {
                Ok(key) => key,
                Err(e) => {
                    // Kept, so every token for this key fails fast; said once.
                    if FAILED.with(|f| f.borrow_mut().insert(self.jwk.clone())) {
                        crate::runtime::log_error(&format!(
                            "a SUPABASE_JWKS key cannot be imported, tokens it signed are refused: {e:?}"
                        ));
                    }
                    return false;
                }
            };
            let Ok(check) = subtle_verify(&self.algorithm(), &key, signature, signed) else {
                return false;
            };
            matches!(JsFuture::from(check).await, Ok(v) if v.as_bool() == Some(true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use p256::ecdsa::{signature::Signer, SigningKey};

    impl JwtVerifier {
        fn verify_now(&self, token: &str, now: i64) -> Result<Claims> {
            block_on(self.verify(token, now))
        }
    }
    use serde_json::json;

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters";
    const NOW: i64 = 1_800_000_000;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn hs256(header: Value, claims: Value, secret: &str) -> String {
        let signing_input = format!("{}.{}", b64(&header), b64(&claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn es256(key: &SigningKey, kid: &str, claims: Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64(&json!({"alg":"ES256","typ":"JWT","kid":kid})),
            b64(&claims)
        );
        let sig: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn ec_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn jwks_for(key: &SigningKey, kid: &str) -> String {
        let point = key.verifying_key().to_encoded_point(false);
        json!({"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}]})
        .to_string()
    }

    fn user(exp: i64) -> Value {
        json!({"sub":"7b0c1a64-58b5-4a8f-a8b1-0b7e5b8f6c11","role":"authenticated","exp":exp})
    }

    fn err(v: &JwtVerifier, t: &str) -> String {
        let e = v.verify_now(t, NOW).unwrap_err();
        assert_eq!(e.status(), 401);
        e.message()
    }

    #[test]
    fn hs256_valid_expired_and_wrong_secret() {
        let v = JwtVerifier::new(None, Some(SECRET)).unwrap();
        let header = json!({"alg":"HS256","typ":"JWT"});
        let c = v
            .verify_now(&hs256(header.clone(), user(NOW + 60), SECRET), NOW)
            .unwrap();
        assert_eq!(c.role.as_deref(), Some("authenticated"));
        // inside the leeway still passes; past it fails
        assert!(v
            .verify_now(&hs256(header.clone(), user(NOW - 29), SECRET), NOW)
            .is_ok());
        assert_eq!(
            err(&v, &hs256(header.clone(), user(NOW - 31), SECRET)),
            "the token has expired"
        );
        assert_eq!(
            err(
                &v,
                &hs256(
                    header,
                    user(NOW + 60),
                    "another-secret-of-sufficient-length!!"
                )
            ),
            "the token signature is invalid"
        );
    }

    #[test]
    fn es256_against_jwks_and_a_foreign_key() {
        let ours = ec_key(7);
        let v = JwtVerifier::new(Some(&jwks_for(&ours, "k1")), Some(SECRET)).unwrap();
        let c = v
            .verify_now(&es256(&ours, "k1", user(NOW + 60)), NOW)
            .unwrap();
        assert_eq!(c.exp, NOW + 60);
        // a key we do not know, with our kid
        assert_eq!(
            err(&v, &es256(&ec_key(9), "k1", user(NOW + 60))),
            "the token signature is invalid"
        );
    }

    #[test]
    fn rs256_against_jwks() {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::{SignatureEncoding, Signer};
        use rsa::traits::PublicKeyParts;
        // A throwaway key made for this test only.
        let private =
            rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("test_rsa_2048.pem")).unwrap();
        let public = private.to_public_key();
        let jwks = json!({"keys":[{"kty":"RSA","alg":"RS256","kid":"r1",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())}]});
        let v = JwtVerifier::new(Some(&jwks.to_string()), None).unwrap();
        let input = format!(
            "{}.{}",
            b64(&json!({"alg":"RS256","kid":"r1"})),
            b64(&user(NOW + 60))
        );
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).to_bytes())
        );
        assert_eq!(
            v.verify_now(&token, NOW).unwrap().role.as_deref(),
            Some("authenticated")
        );
        let tampered = token.replace(&b64(&user(NOW + 60)), &b64(&user(NOW + 6000)));
        assert_eq!(err(&v, &tampered), "the token signature is invalid");
    }

    #[test]
    fn nbf_and_missing_exp() {
        let v = JwtVerifier::new(None, Some(SECRET)).unwrap();
        let h = json!({"alg":"HS256"});
        let mut claims = user(NOW + 600);
        claims["nbf"] = json!(NOW + 120);
        assert_eq!(
            err(&v, &hs256(h.clone(), claims, SECRET)),
            "the token is not valid yet"
        );
        let no_exp = json!({"sub":"x","role":"authenticated"});
        assert_eq!(err(&v, &hs256(h, no_exp, SECRET)), "the token has no exp");
    }

    #[test]
    fn alg_none_and_algorithm_confusion_are_refused() {
        let ours = ec_key(7);
        let jwks = jwks_for(&ours, "k1");
        let v = JwtVerifier::new(Some(&jwks), None).unwrap();
        let none = format!("{}.{}.", b64(&json!({"alg":"none"})), b64(&user(NOW + 60)));
        assert!(err(&v, &none).contains("algorithm"));
        // HS256 "signed" with the public key's bytes must find no HMAC key at all
        let confused = hs256(json!({"alg":"HS256"}), user(NOW + 60), &jwks);
        assert!(err(&v, &confused).contains("algorithm"));
        assert_eq!(err(&v, "abc"), "the token is not a JWT");
        assert_eq!(err(&v, "a.b.c.d"), "the token is not a JWT");
    }

    #[test]
    fn a_cached_token_still_expires_and_a_changed_token_is_checked_again() {
        let v = JwtVerifier::new(None, Some(SECRET)).unwrap();
        let token = hs256(json!({"alg":"HS256"}), user(NOW + 60), SECRET);
        assert!(v.verify_now(&token, NOW).is_ok());
        assert!(v.verify_now(&token, NOW).is_ok(), "served from the cache");
        assert_eq!(
            v.verify_now(&token, NOW + 91).unwrap_err().message(),
            "the token has expired"
        );
        assert_eq!(
            v.verify_now(&token, NOW + 91).unwrap_err().message(),
            "the token has expired"
        );
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(v.verify_now(&forged, NOW).is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let v = JwtVerifier::new(None, Some(SECRET)).unwrap();
        for i in 0..(CACHE_CAPACITY as i64 + 5) {
            let token = hs256(json!({"alg":"HS256"}), user(NOW + 60 + i), SECRET);
            assert!(v.verify_now(&token, NOW).is_ok());
        }
        assert!(v.verified.lock().unwrap().len() <= CACHE_CAPACITY);
    }

    #[test]
    fn bad_jwks_is_a_configuration_error() {
        assert!(JwtVerifier::new(None, None).is_err());
        assert!(JwtVerifier::new(Some("{}"), None).is_err());
        assert!(JwtVerifier::new(Some(r#"{"keys":[{"kty":"EC","crv":"P-384"}]}"#), None).is_err());
        let short_rsa =
            json!({"keys":[{"kty":"RSA","n":URL_SAFE_NO_PAD.encode([0xC1u8; 64]),"e":"AQAB"}]});
        assert!(JwtVerifier::new(Some(&short_rsa.to_string()), None)
            .unwrap_err()
            .contains("2048"));
    }
}
