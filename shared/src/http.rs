//! The request boundary: what arrives from the loader, what goes back, and the
//! checks every function makes before it looks at the body.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{ApiError, Result};

/// The largest body a function reads: 256 KiB. The loader reads at most one byte
/// more than this, so an oversized body is refused without being buffered whole.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The longest `Idempotency-Key` accepted (Stripe's limit).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An HTTP request as the loader hands it over. Header names are lower-case.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The token from `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// 405 unless the method is `allowed`.
    pub fn require_method(&self, allowed: &'static str) -> Result<()> {
        if self.method.eq_ignore_ascii_case(allowed) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed { allowed })
        }
    }

    /// The body as a JSON object: 413 above [`MAX_BODY_BYTES`], 400 if it is not
    /// JSON or not an object.
    pub fn json_object(&self) -> Result<Value> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::InvalidJson(
                "the body is empty; send a JSON object".into(),
            ));
        }
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::InvalidJson(format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if !value.is_object() {
            return Err(ApiError::InvalidJson(
                "the body must be a JSON object".into(),
            ));
        }
        Ok(value)
    }

    /// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
    pub fn idempotency_key(&self) -> Result<Option<String>> {
        let Some(key) = self.header("idempotency-key") else {
            return Ok(None);
        };
        let valid = !key.is_empty()
            && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Some(key.to_owned()))
        } else {
            Err(ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ))
        }
    }
}

/// What the loader turns back into an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(status: u16, body: &Value) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// Marks an idempotent replay with `Idempotent-Replayed: true`.
    pub fn replayed(mut self, replayed: bool) -> Self {
        if replayed {
            self.headers
                .push(("idempotent-replayed".into(), "true".into()));
        }
        self
    }

    /// The error envelope, with `Allow` on a 405.
    pub fn from_error(err: &ApiError) -> Self {
        let mut response = Response::json(err.status(), &err.to_body());
        match err {
            ApiError::MethodNotAllowed { allowed } => response
                .headers
                .push(("allow".into(), format!("{allowed}, OPTIONS"))),
            ApiError::RateLimited(limit) => response.headers.extend(limit.headers()),
            ApiError::TooManyConcurrent { .. } => {
                response.headers.push(("retry-after".into(), "1".into()))
            }
            _ => {}
        }
        response
    }

    /// The shape the loader reads: `{"status","headers","body"}`.
    pub fn to_wire(&self) -> String {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        serde_json::json!({"status": self.status, "headers": headers, "body": self.body})
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn method_check() {
        assert!(req("POST", &[], "").require_method("POST").is_ok());
        let e = req("GET", &[], "").require_method("POST").unwrap_err();
        assert_eq!(e.status(), 405);
        let r = Response::from_error(&e);
        assert!(r
            .headers
            .contains(&("allow".into(), "POST, OPTIONS".into())));
    }

    #[test]
    fn a_429_carries_its_rate_limit_headers() {
        let e = ApiError::RateLimited(crate::RateLimit {
            function: "f".into(),
            limit: 3,
            window_seconds: 2,
            retry_after: 1,
        });
        let r = Response::from_error(&e);
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after".into(), "1".into())));
        assert!(r
            .headers
            .contains(&("ratelimit".into(), "\"f\";r=0;t=1".into())));
        assert!(r
            .headers
            .contains(&("ratelimit-policy".into(), "\"f\";q=3;w=2".into())));
    }

    #[test]
    fn body_limits_and_json_errors() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(
            req("POST", &[], &big).json_object().unwrap_err().status(),
            413
        );
        let exact = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES - 8));
        assert_eq!(exact.len(), MAX_BODY_BYTES);
        assert!(req("POST", &[], &exact).json_object().is_ok());
        for bad in ["", "  ", "{", "[1]", "\"s\"", "{\"a\":1,}"] {
            let e = req("POST", &[], bad).json_object().unwrap_err();
            assert_eq!((e.status(), e.code()), (400, "INVALID_JSON"), "{bad:?}");
        }
    }

    #[test]
    fn bearer_and_idempotency_headers() {
        assert_eq!(
            req("POST", &[("Authorization", "Bearer abc")], "").bearer(),
            Some("abc")
        );
        assert_eq!(
            req("POST", &[("authorization", "bearer abc ")], "").bearer(),
            Some("abc")
        );
        assert_eq!(
            req("POST", &[("authorization", "Basic abc")], "").bearer(),
            None
        );
        assert_eq!(
            req("POST", &[("authorization", "Bearer ")], "").bearer(),
            None
        );
        assert_eq!(
            req("POST", &[("Idempotency-Key", "k-1")], "")
                .idempotency_key()
                .unwrap(),
            Some("k-1".into())
        );
        assert_eq!(req("POST", &[], "").idempotency_key().unwrap(), None);
        let long = "k".repeat(256);
        for bad in ["", "has space", long.as_str()] {
            let e = req("POST", &[("Idempotency-Key", bad)], "")
                .idempotency_key()
                .unwrap_err();
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn wire_shape() {
        let r = Response::json(201, &serde_json::json!({"ok": true}));
        let wire: Value = serde_json::from_str(&r.to_wire()).unwrap();
        assert_eq!(wire["status"], 201);
        assert_eq!(wire["headers"]["content-type"], "application/json");
        assert_eq!(wire["body"], "{\"ok\":true}");
    }
}
