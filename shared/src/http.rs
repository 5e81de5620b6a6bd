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
    /// The path below the function's own (`/functions/v1/<name>`): `""` for
    /// the function itself, `"/callback"` for `/functions/v1/<name>/callback`.
    pub path: String,
    /// The raw query string, without `?`; `""` when there is none.
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// Splits a request URL (absolute, or a path with a query) into the path
    /// below the function `name` and the query. The platform hands a function
    /// `/<name>/…`; the public URL is `/functions/v1/<name>/…`; both work.
    pub fn locate(url: &str, name: &str) -> (String, String) {
        let after_host = match url.find("://") {
            Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
            None => url,
        };
        let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
        let path = path.split('#').next().unwrap_or("");
        let path = path.strip_prefix("/functions/v1").unwrap_or(path);
        let own = format!("/{name}");
        let below = match path.strip_prefix(own.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        // Kept as sent (a trailing slash too): a provider signs the URL it called.
        let below = if below == "/" { "" } else { below };
        (
            below.to_owned(),
            query.split('#').next().unwrap_or("").to_owned(),
        )
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

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

    /// 405 unless the method is one of `allowed`.
    pub fn require_method(&self, allowed: &[&str]) -> Result<()> {
        if allowed.iter().any(|m| self.method.eq_ignore_ascii_case(m)) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                allowed: allowed.join(", "),
            })
        }
    }

    /// 413 when the body is longer than `limit` bytes.
    pub fn require_body_within(&self, limit: usize) -> Result<()> {
        if self.body.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        Ok(())
    }

    /// The body as a JSON object: 413 above [`MAX_BODY_BYTES`], 400 if it is not
    /// JSON or not an object.
    pub fn json_object(&self) -> Result<Value> {
        self.require_body_within(MAX_BODY_BYTES)?;
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

/// A validated JSON body and the request's `Idempotency-Key`, checked in that
/// order: the key's header first (400 on a malformed key), then the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<T> {
    pub input: T,
    pub idempotency_key: Option<String>,
}

impl<T> Keyed<T> {
    pub fn read(req: &Request, validate: impl FnOnce(&Value) -> Result<T>) -> Result<Self> {
        let idempotency_key = req.idempotency_key()?;
        let input = validate(&req.json_object()?)?;
        Ok(Keyed {
            input,
            idempotency_key,
        })
    }
}

/// What the loader turns back into an HTTP response: any status, any headers,
/// and a body of bytes (JSON, HTML, a PDF, an XLSX workbook, or nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A body of `content_type`.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        }
    }

    pub fn json(status: u16, body: &Value) -> Self {
        Self::bytes(status, "application/json", body.to_string().into_bytes())
    }

    /// Any serializable value as JSON (a response struct, for instance).
    pub fn json_of<T: serde::Serialize>(status: u16, body: &T) -> Self {
        let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
        Self::bytes(status, "application/json", bytes)
    }

    /// An HTML page, in UTF-8.
    pub fn html(status: u16, page: String) -> Self {
        Self::bytes(status, "text/html; charset=utf-8", page.into_bytes())
    }

    /// A page for a person who followed a link (unsubscribe, recall
    /// response): `body` is HTML the caller built, with every inserted value
    /// escaped ([`crate::format::escape_html`]); the title is escaped here. No
    /// script, nothing loaded from elsewhere, not framed, not cached, no
    /// referrer sent on.
    pub fn html_page(status: u16, title: &str, body: &str) -> Self {
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title></head>\
             <body style=\"font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em\">\
             {body}</body></html>",
            title = crate::format::escape_html(title),
        );
        Self::html(status, html)
            .with_header(
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            )
            .with_header("cache-control", "no-store")
            .with_header("referrer-policy", "no-referrer")
    }

    /// `302 Found` to `location`, with no body.
    pub fn redirect(location: &str) -> Self {
        Response {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The body as text (for tests and logs); invalid UTF-8 is replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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

    /// The headers as the loader reads them: one JSON object.
    pub fn headers_json(&self) -> String {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Value::Object(headers).to_string()
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
            ..Default::default()
        }
    }

    #[test]
    fn method_check() {
        assert!(req("POST", &[], "").require_method(&["POST"]).is_ok());
        assert!(req("get", &[], "").require_method(&["GET", "POST"]).is_ok());
        let e = req("GET", &[], "").require_method(&["POST"]).unwrap_err();
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
    fn the_idempotency_key_is_checked_before_the_body() {
        let bad_both = req("POST", &[("Idempotency-Key", "has space")], "{");
        let e = Keyed::read(&bad_both, |_| Ok(())).unwrap_err();
        assert_eq!(
            e.details()["Idempotency-Key"],
            "must be 1 to 255 visible ASCII characters"
        );
        let ok = req("POST", &[("Idempotency-Key", "k-1")], r#"{"a":1}"#);
        let keyed = Keyed::read(&ok, |v| Ok(v["a"].clone())).unwrap();
        assert_eq!(
            (keyed.input, keyed.idempotency_key.as_deref()),
            (serde_json::json!(1), Some("k-1"))
        );
    }

    #[test]
    fn wire_shape() {
        let r = Response::json(201, &serde_json::json!({"ok": true}));
        let headers: Value = serde_json::from_str(&r.headers_json()).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(r.body, b"{\"ok\":true}");
        let moved = Response::redirect("https://example.com/x?a=1");
        assert_eq!(
            (moved.status, moved.header("Location")),
            (302, Some("https://example.com/x?a=1"))
        );
        assert!(moved.body.is_empty());
        let page = Response::html(200, "<p>ok</p>".into());
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }

    #[test]
    fn the_path_below_the_function_and_the_query() {
        for (url, path, query) in [
            (
                "http://h:1/functions/v1/oauth-shopify/callback?code=a&state=b",
                "/callback",
                "code=a&state=b",
            ),
            ("http://h/oauth-shopify/callback?x=1", "/callback", "x=1"),
            ("http://h/oauth-shopify/callback/?x=1", "/callback/", "x=1"),
            ("http://h/functions/v1/oauth-shopify", "", ""),
            ("http://h/functions/v1/oauth-shopify/", "", ""),
            ("/oauth-shopify?q=%20a", "", "q=%20a"),
            ("http://h/oauth-shopifyx/y", "/oauth-shopifyx/y", ""),
        ] {
            assert_eq!(
                Request::locate(url, "oauth-shopify"),
                (path.into(), query.into()),
                "{url}"
            );
        }
        let r = Request {
            query: "code=a%2Fb&state=s+t&code=2".into(),
            ..Default::default()
        };
        assert_eq!(r.query_param("code").as_deref(), Some("a/b"));
        assert_eq!(r.query_param("state").as_deref(), Some("s t"));
        assert_eq!(r.query_param("nope"), None);
    }
}
