//! Stripe refunds: `POST {base}/v1/refunds`, form-encoded, Bearer secret key,
//! `Idempotency-Key` (at most 255 characters, kept at least 24 h by Stripe),
//! and a pinned `Stripe-Version`.
//!
//! Every attempt of one refund carries the same key, so Stripe creates at most
//! one refund however often a timeout, a reset or a 5xx makes us send again.

use rust_decimal::Decimal;
use serde_json::Value;

use super::retry::{
    by_status, exchange, truncate, with_retries, Clock, HttpReply, RetryPolicy, SendError,
};

pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// The API version requests are pinned to, so an account upgrade cannot change
/// the shapes this client reads.
pub const DEFAULT_API_VERSION: &str = "2026-09-30.endive";

/// A refund to create.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRequest {
    pub payment_intent: String,
    /// In the currency's minor units (cents).
    pub amount: i64,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: &'static str,
    pub metadata: Vec<(String, String)>,
}

impl RefundRequest {
    /// The form body, with `metadata[k]=v` for each entry.
    pub fn to_form(&self) -> String {
        let mut pairs: Vec<(String, String)> = vec![
            ("payment_intent".into(), self.payment_intent.clone()),
            ("amount".into(), self.amount.to_string()),
            ("reason".into(), self.reason.into()),
        ];
        for (k, v) in &self.metadata {
            pairs.push((format!("metadata[{k}]"), v.clone()));
        }
        serde_urlencoded::to_string(pairs).expect("string pairs always encode")
    }
}

/// What Stripe answered: its refund id and status (`pending`, `requires_action`,
/// `succeeded`, `failed`, `canceled`).
#[derive(Debug, Clone, PartialEq)]
pub struct Refund {
    pub id: String,
    pub status: String,
}

/// An amount in major units as minor units (cents), if it is exact.
pub fn minor_units(amount: Decimal) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    let cents = amount * Decimal::ONE_HUNDRED;
    if cents.fract().is_zero() {
        cents.to_i64()
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub struct Stripe {
    base_url: String,
    secret_key: String,
    api_version: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
}

impl Stripe {
    pub fn new(base_url: &str, secret_key: &str, api_version: &str) -> Self {
        Stripe {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
            api_version: api_version.to_owned(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
        }
    }

    pub fn refund_request(
        &self,
        refund: &RefundRequest,
        idempotency_key: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/v1/refunds", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("stripe-version", &self.api_version)
            .header("idempotency-key", idempotency_key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(refund.to_form())
    }

    /// Creates the refund, retrying transient failures under the same key.
    pub async fn create_refund(
        &self,
        refund: &RefundRequest,
        idempotency_key: &str,
        clock: &dyn Clock,
    ) -> Result<Refund, SendError> {
        with_retries(&self.policy, clock, |_| async move {
            let reply = exchange(
                self.refund_request(refund, idempotency_key),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await?;
            classify_refund(&reply)
        })
        .await
    }
}

/// Stripe's replies: 200 with the refund; errors
/// `{"error":{"type","code","message",…}}`.
///
/// - 400/402/404 (`invalid_request_error`, `card_error`, and
///   `idempotency_error` for a key reused with other parameters) are
///   permanent: the same request will be refused again.
/// - 409 is a concurrent request with the same key: transient, after a second.
/// - 401/403 are a key the operator can fix: transient, so fixing it lets a
///   retry finish the refund.
/// - 429 and 5xx are transient.
pub fn classify_refund(reply: &HttpReply) -> Result<Refund, SendError> {
    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if reply.status == 200 {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        return match (text("id"), text("status")) {
            (Some(id), Some(status)) => Ok(Refund { id, status }),
            _ => Err(SendError::transient(format!(
                "stripe: 200 without a refund: {}",
                truncate(&reply.body, 200)
            ))),
        };
    }
    let error = body.get("error").cloned().unwrap_or(Value::Null);
    let field = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or("");
    let reason = format!(
        "stripe {} {}{}: {}",
        reply.status,
        field("type"),
        match field("code") {
            "" => String::new(),
            code => format!("/{code}"),
        },
        field("message")
    );
    match reply.status {
        400 | 402 | 404 => Err(SendError::permanent(reason)),
        401 | 403 => Err(SendError::transient(reason)),
        409 => Err(SendError::Transient {
            reason,
            retry_after: Some(std::time::Duration::from_secs(1)),
            ambiguous: false,
        }),
        _ => Err(match by_status(reply, "stripe") {
            SendError::Transient {
                retry_after,
                ambiguous,
                ..
            } => SendError::Transient {
                reason,
                retry_after,
                ambiguous,
            },
            SendError::Permanent { .. } => SendError::permanent(reason),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund() -> RefundRequest {
        RefundRequest {
            payment_intent: "pi_123".into(),
            amount: 1250,
            reason: "requested_by_customer",
            metadata: vec![
                ("refund_id".into(), "r-1".into()),
                ("ra_number".into(), "RA-2026-000001".into()),
            ],
        }
    }

    #[test]
    fn builds_the_documented_form_request() {
        let r = Stripe::new("http://sandbox/stripe/", "sk_test_1", DEFAULT_API_VERSION)
            .refund_request(&refund(), "refund_r-1")
            .build()
            .unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.url().as_str(), "http://sandbox/stripe/v1/refunds");
        assert_eq!(r.headers()["authorization"], "Bearer sk_test_1");
        assert_eq!(r.headers()["idempotency-key"], "refund_r-1");
        assert_eq!(r.headers()["stripe-version"], DEFAULT_API_VERSION);
        assert_eq!(
            r.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            std::str::from_utf8(r.body().unwrap().as_bytes().unwrap()).unwrap(),
            "payment_intent=pi_123&amount=1250&reason=requested_by_customer\
             &metadata%5Brefund_id%5D=r-1&metadata%5Bra_number%5D=RA-2026-000001"
        );
    }

    #[test]
    fn amounts_become_exact_cents() {
        assert_eq!(minor_units(Decimal::new(1250, 2)), Some(1250));
        assert_eq!(minor_units(Decimal::new(3, 0)), Some(300));
        assert_eq!(
            minor_units(Decimal::new(9_999_999_999, 2)),
            Some(9_999_999_999)
        );
        assert_eq!(minor_units(Decimal::new(1, 3)), None);
    }

    #[test]
    fn classifies_each_documented_reply() {
        let ok = classify_refund(&HttpReply::new(
            200,
            r#"{"id":"re_1","object":"refund","amount":1250,"status":"succeeded"}"#,
        ))
        .unwrap();
        assert_eq!(
            ok,
            Refund {
                id: "re_1".into(),
                status: "succeeded".into()
            }
        );
        let err = |status: u16, kind: &str, code: &str| {
            classify_refund(&HttpReply::new(
                status,
                &format!(r#"{{"error":{{"type":"{kind}","code":"{code}","message":"m"}}}}"#),
            ))
            .unwrap_err()
        };
        let too_much = err(400, "invalid_request_error", "amount_too_large");
        assert!(too_much.is_permanent());
        assert_eq!(
            too_much.reason(),
            "stripe 400 invalid_request_error/amount_too_large: m"
        );
        assert!(err(400, "idempotency_error", "").is_permanent());
        assert!(err(404, "invalid_request_error", "resource_missing").is_permanent());
        assert!(!err(401, "invalid_request_error", "").is_permanent());
        let busy = err(409, "idempotency_error", "");
        assert_eq!(busy.retry_after(), Some(std::time::Duration::from_secs(1)));
        assert!(!err(429, "invalid_request_error", "rate_limit").is_permanent());
        let down = err(500, "api_error", "");
        assert!(!down.is_permanent());
        assert_eq!(down.reason(), "stripe 500 api_error: m");
        assert!(!classify_refund(&HttpReply::new(200, "{}"))
            .unwrap_err()
            .is_permanent());
    }
}
