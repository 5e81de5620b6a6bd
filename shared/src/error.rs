//! The one error type, and the one envelope every failure leaves in:
//! `{"error":{"code","message","details"}}`.
//!
//! SQL raises stable custom SQLSTATEs (table in [`ApiError::from_postgrest`]);
//! nothing here ever matches on message text.

use serde_json::{json, Map, Value};

/// Every way a request can fail, each with its HTTP status and stable `code`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON, or not a JSON object.
    InvalidJson(String),
    /// Fields failed validation; `details` is keyed by field path (`items[2].quantity`).
    Validation(Map<String, Value>),
    /// No token, a bad token, an expired one, or one that is not a signed-in user.
    Unauthorized(String),
    /// Signed in, but not allowed to do this. `details` says what was needed
    /// (such as `required_role`), when the database said.
    Forbidden { message: String, details: Value },
    /// The row does not exist, or it belongs to another tenant: the two are not told apart.
    NotFound { message: String, details: Value },
    /// A business conflict: stock, credit, an idempotency key still in flight …
    Conflict {
        code: String,
        message: String,
        details: Value,
    },
    /// The HTTP method is not the one the function serves.
    MethodNotAllowed { allowed: String },
    /// The body is larger than the limit.
    PayloadTooLarge { limit: usize },
    /// A file the function made (or was given) is over its bucket's limit.
    FileTooLarge { message: String, details: Value },
    /// An idempotency key reused with a different body.
    IdempotencyKeyReused,
    /// The tenant used up its limit for this function.
    RateLimited(RateLimit),
    /// The tenant already runs its maximum of business transactions at once
    /// (`tenant_capacity_policies`). Retry after a moment.
    TooManyConcurrent { max_concurrent: u64 },
    /// A dependency (the database, the REST server) is unreachable or timed out. Retry is safe.
    Unavailable(String),
    /// The work is recorded, but a later step with an outside service (Storage,
    /// Stripe) failed. `details` names what was recorded; repeating the request
    /// with the same Idempotency-Key finishes it. `cause` is logged, not sent.
    Unfinished {
        code: String,
        message: String,
        details: Value,
        cause: String,
    },
    /// A bug or an unexpected answer. The cause is logged, never sent.
    Internal(String),
}

/// What a 429 tells the client, in `details` and in its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub function: String,
    pub limit: u64,
    pub window_seconds: u64,
    /// Whole seconds until a request would be accepted.
    pub retry_after: u64,
}

impl RateLimit {
    /// `Retry-After`, and the IETF `RateLimit-Policy` / `RateLimit` fields
    /// (draft-ietf-httpapi-ratelimit-headers: quota `q`, window `w`, remaining
    /// `r`, seconds until reset `t`).
    pub fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("retry-after".into(), self.retry_after.to_string()),
            (
                "ratelimit-policy".into(),
                format!(
                    "\"{}\";q={};w={}",
                    self.function, self.limit, self.window_seconds
                ),
            ),
            (
                "ratelimit".into(),
                format!("\"{}\";r=0;t={}", self.function, self.retry_after),
            ),
        ]
    }
}

/// Crate-wide result, so `?` reads cleanly.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson(_) | ApiError::Validation(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::PayloadTooLarge { .. } | ApiError::FileTooLarge { .. } => 413,
            ApiError::IdempotencyKeyReused => 422,
            ApiError::RateLimited(_) | ApiError::TooManyConcurrent { .. } => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::Unfinished { .. } => 502,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::InvalidJson(_) => "INVALID_JSON",
            ApiError::Validation(_) => "VALIDATION_ERROR",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::Forbidden { .. } => "FORBIDDEN",
            ApiError::NotFound { .. } => "NOT_FOUND",
            ApiError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            ApiError::Conflict { code, .. } | ApiError::Unfinished { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::FileTooLarge { .. } => "FILE_TOO_LARGE",
            ApiError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::TooManyConcurrent { .. } => "TOO_MANY_CONCURRENT_REQUESTS",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// What the client is told. Internal causes stay out of it.
    pub fn message(&self) -> String {
        match self {
            ApiError::InvalidJson(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden { message: m, .. }
            | ApiError::NotFound { message: m, .. }
            | ApiError::Conflict { message: m, .. }
            | ApiError::Unfinished { message: m, .. }
            | ApiError::FileTooLarge { message: m, .. } => m.clone(),
            ApiError::Validation(_) => "the request has invalid fields".into(),
            ApiError::MethodNotAllowed { allowed } => format!("only {allowed} is allowed"),
            ApiError::PayloadTooLarge { limit } => {
                format!("the body is larger than {limit} bytes")
            }
            ApiError::IdempotencyKeyReused => {
                "this Idempotency-Key was already used with a different request body".into()
            }
            ApiError::RateLimited(r) => format!(
                "too many requests for {}; retry in {} s",
                r.function, r.retry_after
            ),
            ApiError::TooManyConcurrent { max_concurrent } => format!(
                "this tenant already has {max_concurrent} requests in progress; retry in a moment"
            ),
            ApiError::Unavailable(_) => "a dependency is unavailable; retry later".into(),
            ApiError::Internal(_) => "internal error".into(),
        }
    }

    pub fn details(&self) -> Value {
        match self {
            ApiError::Validation(fields) => Value::Object(fields.clone()),
            ApiError::NotFound { details, .. }
            | ApiError::Forbidden { details, .. }
            | ApiError::Conflict { details, .. }
            | ApiError::Unfinished { details, .. }
            | ApiError::FileTooLarge { details, .. } => details.clone(),
            ApiError::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            ApiError::RateLimited(r) => json!({
                "function": r.function, "limit": r.limit,
                "window_seconds": r.window_seconds, "retry_after": r.retry_after,
            }),
            ApiError::TooManyConcurrent { max_concurrent } => {
                json!({ "max_concurrent": max_concurrent, "retry_after": 1 })
            }
            _ => Value::Null,
        }
    }

    /// The cause to log, for the errors whose cause is not sent to the client.
    pub fn log_cause(&self) -> Option<&str> {
        match self {
            ApiError::Unavailable(c)
            | ApiError::Internal(c)
            | ApiError::Unfinished { cause: c, .. } => Some(c),
            _ => None,
        }
    }

    /// The envelope. The only place an error becomes a body.
    pub fn to_body(&self) -> Value {
        json!({ "error": { "code": self.code(), "message": self.message(), "details": self.details() } })
    }

    /// A single-field validation error.
    pub fn field(path: &str, problem: &str) -> Self {
        let mut m = Map::new();
        m.insert(path.to_owned(), Value::String(problem.to_owned()));
        ApiError::Validation(m)
    }

    /// Maps a PostgREST error body `{code, message, details, hint}` (and its HTTP status)
    /// to an ApiError, by SQLSTATE or PGRST code alone.
    ///
    /// | SQLSTATE | code | status |
    /// |---|---|---|
    /// | CEV01 | VALIDATION_ERROR | 400 |
    /// | CEA01 | UNAUTHORIZED (no signed-in user) | 401 |
    /// | CEA03 | FORBIDDEN | 403 |
    /// | CEN04 | NOT_FOUND | 404 |
    /// | CES01 | INSUFFICIENT_STOCK | 409 |
    /// | CEC01 | CREDIT_LIMIT_EXCEEDED | 409 |
    /// | CEC02 | CLIENT_INACTIVE | 409 |
    /// | CET01 | INVALID_STATUS_TRANSITION (details: from, to) | 409 |
    /// | CEX01 | RETURN_EXCEEDS_ORDERED | 409 |
    /// | CEX02 | NOT_REFUNDABLE | 409 |
    /// | CEI09 | IDEMPOTENCY_KEY_IN_USE | 409 |
    /// | CEI22 | IDEMPOTENCY_KEY_REUSED | 422 |
    /// | CER29 | RATE_LIMITED (with Retry-After and RateLimit headers) | 429 |
    /// | CER03 | TOO_MANY_CONCURRENT_REQUESTS (with Retry-After) | 429 |
    /// | 22P05, 22021 | VALIDATION_ERROR (`body`: NUL or an invalid character) | 400 |
    /// | 40001, 40P01, 55P03 | CONCURRENT_UPDATE (retry) | 409 |
    /// | 23505 | CONFLICT | 409 |
    /// | 42501 | FORBIDDEN | 403 |
    /// | PGRST301, PGRST302, PGRST303 | UNAUTHORIZED | 401 |
    /// | 57014, 08xxx, 53xxx | SERVICE_UNAVAILABLE | 503 |
    /// | CE400, CE403, CE404, CE409 with an UPPER_SNAKE code in HINT | that code | 400, 403, 404, 409 |
    /// | anything else | INTERNAL_ERROR | 500 |
    ///
    /// For the `CE…` codes the message is ours (written in SQL for clients) and
    /// `details` carries a JSON object.
    pub fn from_postgrest(http_status: u16, body: &str) -> Self {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let sqlstate = parsed.get("code").and_then(Value::as_str).unwrap_or("");
        let message = parsed
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let details = parsed
            .get("details")
            .and_then(Value::as_str)
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .filter(Value::is_object)
            .unwrap_or(Value::Null);
        let conflict = |code: &str| ApiError::Conflict {
            code: code.into(),
            message: message.clone(),
            details: details.clone(),
        };
        // A feature's own codes (private.raise_api_error): the status in the
        // SQLSTATE, the API code in the hint.
        let hint = parsed.get("hint").and_then(Value::as_str).unwrap_or("");
        let api_code = !hint.is_empty()
            && hint.len() <= 64
            && hint.starts_with(|c: char| c.is_ascii_uppercase())
            && hint
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        match (sqlstate, api_code) {
            ("CE400", true) => {
                return ApiError::Validation(match &details {
                    Value::Object(m) => m.clone(),
                    _ => Map::new(),
                })
            }
            ("CE403", true) => return ApiError::Forbidden { message, details },
            ("CE404", true) => return ApiError::NotFound { message, details },
            ("CE409", true) => {
                return ApiError::Conflict {
                    code: hint.to_owned(),
                    message,
                    details,
                }
            }
            _ => {}
        }
        match sqlstate {
            "CEV01" => ApiError::Validation(match &details {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            }),
            "CEA01" => ApiError::Unauthorized(message),
            "CEA03" => ApiError::Forbidden { message, details },
            "CEN04" => ApiError::NotFound { message, details },
            "CES01" => conflict("INSUFFICIENT_STOCK"),
            "CEC01" => conflict("CREDIT_LIMIT_EXCEEDED"),
            "CEC02" => conflict("CLIENT_INACTIVE"),
            "CET01" => conflict("INVALID_STATUS_TRANSITION"),
            "CEX01" => conflict("RETURN_EXCEEDS_ORDERED"),
            "CEX02" => conflict("NOT_REFUNDABLE"),
            "CEI09" => conflict("IDEMPOTENCY_KEY_IN_USE"),
            "CEI22" => ApiError::IdempotencyKeyReused,
            "CER29" => {
                let n = |k: &str| details.get(k).and_then(Value::as_u64).unwrap_or(0);
                ApiError::RateLimited(RateLimit {
                    function: details
                        .get("function")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    limit: n("limit"),
                    window_seconds: n("window_seconds"),
                    retry_after: n("retry_after").max(1),
                })
            }
            "CER03" => ApiError::TooManyConcurrent {
                max_concurrent: details
                    .get("max_concurrent")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            },
            // Postgres refuses \u0000 in text and jsonb before our SQL runs,
            // so the field cannot be named; the body can.
            "22P05" | "22021" => ApiError::field(
                "body",
                "must not contain NUL (\\u0000) or characters the database cannot store",
            ),
            "40001" | "40P01" | "55P03" => ApiError::Conflict {
                code: "CONCURRENT_UPDATE".into(),
                message: "a concurrent update got in the way; retry the request".into(),
                details: Value::Null,
            },
            "23505" => ApiError::Conflict {
                code: "CONFLICT".into(),
                message: "the row already exists".into(),
                details: Value::Null,
            },
            "42501" => ApiError::Forbidden {
                message: "not allowed".into(),
                details: Value::Null,
            },
            "PGRST301" | "PGRST302" | "PGRST303" => {
                ApiError::Unauthorized("the access token was rejected".into())
            }
            s if s == "57014" || s.starts_with("08") || s.starts_with("53") => {
                ApiError::Unavailable(format!("postgrest {http_status}: {body}"))
            }
            _ => ApiError::Internal(format!("postgrest {http_status}: {body}")),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.code())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_code_message_details() {
        let e = ApiError::field("items[2].quantity", "must be greater than 0");
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.to_body(),
            json!({"error":{"code":"VALIDATION_ERROR","message":"the request has invalid fields",
                "details":{"items[2].quantity":"must be greater than 0"}}})
        );
    }

    #[test]
    fn custom_sqlstates_map_to_codes_and_keep_details() {
        let body = r#"{"code":"CES01","message":"insufficient stock",
            "details":"{\"short\":[{\"product_id\":\"p\",\"requested\":\"5\",\"available\":\"2\"}]}","hint":null}"#;
        let e = ApiError::from_postgrest(400, body);
        assert_eq!(e.status(), 409);
        assert_eq!(e.code(), "INSUFFICIENT_STOCK");
        assert_eq!(e.message(), "insufficient stock");
        assert_eq!(e.details()["short"][0]["available"], "2");

        let cases = [
            ("CEV01", 400, "VALIDATION_ERROR"),
            ("CEA01", 401, "UNAUTHORIZED"),
            ("CEA03", 403, "FORBIDDEN"),
            ("CEN04", 404, "NOT_FOUND"),
            ("CEC01", 409, "CREDIT_LIMIT_EXCEEDED"),
            ("CEC02", 409, "CLIENT_INACTIVE"),
            ("CEX01", 409, "RETURN_EXCEEDS_ORDERED"),
            ("CEX02", 409, "NOT_REFUNDABLE"),
            ("CEI09", 409, "IDEMPOTENCY_KEY_IN_USE"),
            ("CEI22", 422, "IDEMPOTENCY_KEY_REUSED"),
            ("40P01", 409, "CONCURRENT_UPDATE"),
            ("23505", 409, "CONFLICT"),
            ("42501", 403, "FORBIDDEN"),
            ("PGRST301", 401, "UNAUTHORIZED"),
            ("57014", 503, "SERVICE_UNAVAILABLE"),
            ("XX000", 500, "INTERNAL_ERROR"),
            ("CET01", 409, "INVALID_STATUS_TRANSITION"),
            ("CER03", 429, "TOO_MANY_CONCURRENT_REQUESTS"),
            ("22P05", 400, "VALIDATION_ERROR"),
        ];
        for (state, status, code) in cases {
            let e =
                ApiError::from_postgrest(400, &format!(r#"{{"code":"{state}","message":"m"}}"#));
            assert_eq!((e.status(), e.code()), (status, code), "{state}");
        }
    }

    #[test]
    fn rate_limits_carry_their_figures_into_details_and_headers() {
        let body = r#"{"code":"CER29","message":"too many requests; retry later",
            "details":"{\"function\":\"create-wholesale-order\",\"limit\":600,\"window_seconds\":60,\"retry_after\":3}"}"#;
        let e = ApiError::from_postgrest(400, body);
        assert_eq!((e.status(), e.code()), (429, "RATE_LIMITED"));
        assert_eq!(e.details()["retry_after"], 3);
        let ApiError::RateLimited(r) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            r.headers(),
            vec![
                ("retry-after".to_string(), "3".to_string()),
                (
                    "ratelimit-policy".to_string(),
                    r#""create-wholesale-order";q=600;w=60"#.to_string()
                ),
                (
                    "ratelimit".to_string(),
                    r#""create-wholesale-order";r=0;t=3"#.to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_tenant_at_its_concurrency_cap_is_told_to_retry_in_a_second() {
        let body = r#"{"code":"CER03","message":"m","details":"{\"max_concurrent\":4,\"retry_after\":1}"}"#;
        let e = ApiError::from_postgrest(400, body);
        assert_eq!(e, ApiError::TooManyConcurrent { max_concurrent: 4 });
        assert_eq!(e.details(), json!({"max_concurrent": 4, "retry_after": 1}));
        let r = crate::Response::from_error(&e);
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after".into(), "1".into())));
    }

    #[test]
    fn a_feature_raises_its_own_code_without_a_change_here() {
        let e = ApiError::from_postgrest(
            400,
            r#"{"code":"CE409","message":"the recall is closed","hint":"RECALL_CLOSED",
                "details":"{\"recall_id\":\"r1\"}"}"#,
        );
        assert_eq!((e.status(), e.code()), (409, "RECALL_CLOSED"));
        assert_eq!(e.message(), "the recall is closed");
        assert_eq!(e.details()["recall_id"], "r1");
        let e = ApiError::from_postgrest(
            400,
            r#"{"code":"CE404","message":"lot not found","hint":"NOT_FOUND"}"#,
        );
        assert_eq!((e.status(), e.code()), (404, "NOT_FOUND"));
        // A hint that is not a code is not trusted: the error stays internal.
        let e = ApiError::from_postgrest(
            400,
            r#"{"code":"CE409","message":"m","hint":"drop table x"}"#,
        );
        assert_eq!(e.status(), 500);
    }

    #[test]
    fn a_forbidden_answer_says_what_was_needed() {
        let body = r#"{"code":"CEA03","message":"this needs the member role or a higher one",
            "details":"{\"tenant_id\":\"t\",\"required_role\":\"member\"}"}"#;
        let e = ApiError::from_postgrest(400, body);
        assert_eq!(e.status(), 403);
        assert_eq!(e.message(), "this needs the member role or a higher one");
        assert_eq!(e.details()["required_role"], "member");
    }

    #[test]
    fn a_nul_the_database_refused_is_a_400_on_the_body() {
        let body = r#"{"code":"22P05","message":"unsupported Unicode escape sequence"}"#;
        let e = ApiError::from_postgrest(400, body);
        assert_eq!(e.status(), 400);
        assert!(e.details()["body"].as_str().unwrap().contains("NUL"));
    }

    #[test]
    fn internal_causes_never_reach_the_body() {
        let e = ApiError::from_postgrest(
            500,
            r#"{"code":"XX000","message":"secret table t_x broke"}"#,
        );
        let body = e.to_body().to_string();
        assert!(!body.contains("t_x"), "{body}");
        assert_eq!(e.message(), "internal error");
        assert!(e.log_cause().unwrap().contains("t_x"));
    }

    #[test]
    fn unparseable_postgrest_body_is_internal() {
        let e = ApiError::from_postgrest(502, "<html>bad gateway</html>");
        assert_eq!(e.status(), 500);
    }
}
