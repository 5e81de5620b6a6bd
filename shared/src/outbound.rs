//! Calls to addresses a tenant chose (workflow `webhook` steps), signed with
//! Standard Webhooks headers and kept away from private networks.
//!
//! - HTTPS only. A host on the allow list ([`Allow`], from the
//!   `WEBHOOK_ALLOW_HOSTS` setting: the tests' sandbox; empty in production)
//!   may be `http://` and private.
//! - No private destination ([`is_public`]): the host is resolved (the host's
//!   `Deno.resolveDns` in wasm) and every address it has must be public, so a
//!   name pointing at `127.0.0.1`, `10.x`, `169.254.169.254` and the like is
//!   refused, as is an IP literal.
//! - Redirects are followed by hand, at most [`MAX_REDIRECTS`], and every hop
//!   is checked again; the POST and its body are sent again unchanged.
//! - Signed ([`sign`]): `webhook-id` (the outbox row's id, stable across
//!   retries, so the receiver can deduplicate), `webhook-timestamp` and
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` keyed
//!   with the tenant's `whsec_` secret, as [`crate::webhooks`] verifies it.
//!
//! Between the check and the connection the name is resolved again by
//! `fetch`; a DNS answer that changes in that moment (rebinding) is not
//! caught here. Edge Functions reach no private network of ours, which
//! bounds what such a call could reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::providers::{Clock, SendError};

pub const MAX_REDIRECTS: usize = 5;
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `ip` is an address on the public internet: not unspecified,
/// loopback, private (RFC 1918, unique local), shared (100.64/10),
/// link-local (169.254/16, the cloud metadata address; fe80::/10),
/// benchmarking, documentation, multicast, broadcast or reserved; an
/// IPv4-mapped or NAT64 IPv6 address is judged by its IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return public_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID…)
                || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0))
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0
        || o[0] == 10
        || o[0] == 127
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 172 && (16..32).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 192 && o[1] == 0 && o[2] == 2)
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        || o[0] >= 224)
}

/// Hosts (`host` or `host:port`) allowed over http and at private addresses.
#[derive(Debug, Clone, Default)]
pub struct Allow(Vec<String>);

impl Allow {
    /// From a comma-separated list (`WEBHOOK_ALLOW_HOSTS`).
    pub fn parse(list: Option<&str>) -> Self {
        Allow(
            list.unwrap_or("")
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let with_port = port.map(|p| format!("{host}:{p}"));
        self.0
            .iter()
            .any(|a| a == host || Some(a) == with_port.as_ref())
    }
}

/// A URL that passed the checks that need no DNS.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: reqwest::Url,
    pub host: String,
    /// Allow-listed: no address check.
    pub allowed: bool,
    /// The host is an IP address (already checked).
    pub literal: bool,
}

/// Checks `url` without DNS: https (or an allow-listed host), no user or
/// password, a host, and an IP literal that is public.
pub fn check(url: &str, allow: &Allow) -> Result<Target, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| format!("{url} is not a URL"))?;
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        _ => return Err(format!("{url} has no host")),
    };
    let allowed = allow.allows(&host, parsed.port_or_known_default());
    match parsed.scheme() {
        "https" => {}
        "http" if allowed => {}
        other => return Err(format!("{other}:// is refused: webhooks go over https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a URL with a user or password is refused".into());
    }
    let literal = host.parse::<IpAddr>().ok();
    if let Some(ip) = literal {
        if !allowed && !is_public(ip) {
            return Err(format!("{host} is a private address"));
        }
    }
    Ok(Target {
        url: parsed,
        host,
        allowed,
        literal: literal.is_some(),
    })
}

/// The `webhook-signature` value for a Standard Webhooks secret (`whsec_` and
/// base64): `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the signing secret is not base64".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// One webhook delivery: `body` POSTed to `url`, signed, redirects checked.
/// Returns the final status line (`"200"`) for the outbox's record.
pub async fn deliver(
    url: &str,
    body: &[u8],
    id: &str,
    secret: &str,
    allow: &Allow,
    clock: &dyn Clock,
) -> Result<String, SendError> {
    let timestamp = clock.now_unix_secs();
    let signature = sign(secret, id, timestamp, body).map_err(SendError::permanent)?;
    let headers = [
        ("content-type", "application/json".to_string()),
        ("user-agent", "commerce-edge-webhooks/1".to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let mut next = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let target = check(&next, allow).map_err(SendError::permanent)?;
        if !target.allowed && !target.literal {
            let addresses = backend::resolve(&target.host)
                .await
                .map_err(SendError::transient)?;
            if addresses.is_empty() {
                return Err(SendError::transient(format!(
                    "{} has no address",
                    target.host
                )));
            }
            if let Some(bad) = addresses.iter().find(|ip| !is_public(**ip)) {
                return Err(SendError::permanent(format!(
                    "{} resolves to {bad}, a private address",
                    target.host
                )));
            }
        }
        let (status, location) = backend::post(target.url.as_str(), &headers, body)
            .await
            .map_err(SendError::transient)?;
        match status {
            200..=299 => return Ok(status.to_string()),
            301 | 302 | 303 | 307 | 308 => {
                let to = location.ok_or_else(|| {
                    SendError::permanent(format!("a {status} without a Location"))
                })?;
                next = target
                    .url
                    .join(&to)
                    .map_err(|_| SendError::permanent(format!("a bad Location: {to}")))?
                    .to_string();
            }
            408 | 425 | 429 | 500..=599 => {
                return Err(SendError::transient(format!(
                    "the endpoint answered {status}"
                )))
            }
            _ => {
                return Err(SendError::permanent(format!(
                    "the endpoint answered {status}"
                )))
            }
        }
    }
    Err(SendError::permanent(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use std::net::IpAddr;

    use js_sys::{Array, Function, Object, Promise, Reflect};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(catch, js_namespace = Deno, js_name = resolveDns)]
        fn resolve_dns(name: &str, kind: &str) -> Result<Promise, JsValue>;
        #[wasm_bindgen(catch, js_name = fetch)]
        fn js_fetch(url: &str, init: &JsValue) -> Result<Promise, JsValue>;
        #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout)]
        fn abort_after(ms: f64) -> JsValue;
    }

    fn text(e: JsValue) -> String {
        e.as_string()
            .or_else(|| {
                Reflect::get(&e, &"message".into())
                    .ok()
                    .and_then(|m| m.as_string())
            })
            .unwrap_or_else(|| format!("{e:?}"))
    }

    /// A and AAAA records; a name with only one kind is fine.
    pub async fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for kind in ["A", "AAAA"] {
            let result = match resolve_dns(host, kind) {
                Ok(p) => JsFuture::from(p).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(list) => {
                    for v in Array::from(&list).iter() {
                        if let Some(ip) = v.as_string().and_then(|s| s.parse().ok()) {
                            out.push(ip);
                        }
                    }
                }
                Err(e) => errors.push(text(e)),
            }
        }
        if out.is_empty() && errors.len() == 2 {
            return Err(format!("cannot resolve {host}: {}", errors.join("; ")));
        }
        Ok(out)
    }

    /// One POST without following redirects: the status and any Location.
    pub async fn post(
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(u16, Option<String>), String> {
        let h = Object::new();
        for (k, v) in headers {
            Reflect::set(&h, &(*k).into(), &v.as_str().into()).map_err(text)?;
        }
        let init = Object::new();
        Reflect::set(&init, &"method".into(), &"POST".into()).map_err(text)?;
        Reflect::set(&init, &"headers".into(), &h).map_err(text)?;
        Reflect::set(&init, &"body".into(), &js_sys::Uint8Array::from(body)).map_err(text)?;
        Reflect::set(&init, &"redirect".into(), &"manual".into()).map_err(text)?;
        Reflect::set(
            &init,
            &"signal".into(),
            &abort_after(super::TIMEOUT.as_millis() as f64),
        )
        .map_err(text)?;
        let res = JsFuture::from(js_fetch(url, &init).map_err(text)?)
            .await
            .map_err(|e| format!("{url}: {}", text(e)))?;
        let status = Reflect::get(&res, &"status".into())
            .ok()
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0) as u16;
        let headers = Reflect::get(&res, &"headers".into()).map_err(text)?;
        let get: Function = Reflect::get(&headers, &"get".into()).map_err(text)?.into();
        let location = get
            .call1(&headers, &"location".into())
            .ok()
            .and_then(|v| v.as_string());
        // Read the answer to its end, so the connection is released.
        if let Ok(f) = Reflect::get(&res, &"arrayBuffer".into()) {
            let f: Function = f.into();
            if let Ok(p) = f.call0(&res) {
                let _ = JsFuture::from(Promise::from(p)).await;
            }
        }
        Ok((status, location))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use std::net::{IpAddr, ToSocketAddrs};

    pub async fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
        (host, 443)
            .to_socket_addrs()
            .map(|a| a.map(|s| s.ip()).collect())
            .map_err(|e| format!("cannot resolve {host}: {e}"))
    }

    pub async fn post(
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(u16, Option<String>), String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(super::TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = client.post(url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((res.status().as_u16(), location))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::{self, Provider};
    use std::collections::BTreeMap;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "100::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_before_dns() {
        let none = Allow::default();
        assert!(check("https://hooks.example.com/x?y=1", &none).is_ok());
        for (url, why) in [
            ("http://hooks.example.com/x", "https"),
            ("ftp://hooks.example.com/x", "https"),
            ("https://user:pw@hooks.example.com/", "user or password"),
            ("https://10.0.0.1/hook", "private"),
            ("https://169.254.169.254/latest/meta-data", "private"),
            ("https://[::1]:8443/x", "private"),
            ("https://[::ffff:7f00:1]/x", "private"),
            ("not a url", "not a URL"),
        ] {
            let e = check(url, &none).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        // The tests' sandbox, allow-listed by host and port: http and loopback.
        let sandbox = Allow::parse(Some(" 127.0.0.1:4000 , other.test"));
        let t = check("http://127.0.0.1:4000/_sandbox/hooks/a", &sandbox).unwrap();
        assert!(t.allowed && t.literal);
        assert!(check("http://127.0.0.1:4001/x", &sandbox).is_err());
        assert!(check("http://other.test/x", &sandbox).unwrap().allowed);
        let t = check("https://hooks.example.com/", &sandbox).unwrap();
        assert!(!t.allowed && !t.literal);
    }

    struct Fixed;
    impl Clock for Fixed {
        fn now_unix_secs(&self) -> i64 {
            1_800_000_000
        }
        fn jitter(&self) -> f64 {
            0.0
        }
        fn sleep(&self, _: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
            Box::pin(async {})
        }
    }

    #[test]
    fn a_name_that_resolves_to_a_private_address_is_refused_before_any_connection() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let r = futures::executor::block_on(deliver(
            "https://localhost:1/hook",
            b"{}",
            "msg_1",
            secret,
            &Allow::default(),
            &Fixed,
        ));
        match r {
            Err(SendError::Permanent { reason }) => assert!(
                reason.starts_with("localhost resolves to ")
                    && reason.ends_with("a private address"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // And a literal private address in a redirect's Location is refused
        // by the same check as the first URL.
        assert!(check("https://10.0.0.1/x", &Allow::default()).is_err());
    }

    #[test]
    fn signatures_verify_as_standard_webhooks() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"type":"workflow.step"}"#;
        let sig = sign(secret, "msg_1", 1_700_000_000, body).unwrap();
        assert!(sig.starts_with("v1,"));
        let headers: BTreeMap<String, String> = [
            ("webhook-id", "msg_1".to_string()),
            ("webhook-timestamp", "1700000000".to_string()),
            ("webhook-signature", sig),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        webhooks::verify(
            Provider::StandardWebhooks,
            &headers,
            body,
            &[secret],
            1_700_000_010,
        )
        .unwrap();
        assert!(webhooks::verify(
            Provider::StandardWebhooks,
            &headers,
            b"{}",
            &[secret],
            1_700_000_010
        )
        .is_err());
        assert!(sign("whsec_not base64!", "m", 1, b"").is_err());
    }
}
