//! Resend transactional email: `POST {base}/emails`, JSON, Bearer key,
//! `Idempotency-Key` (1–256 characters, kept 24 h by Resend).

use serde_json::{json, Value};

use super::retry::{
    by_status, exchange, truncate, with_retries, Clock, HttpReply, RetryPolicy, SendError,
};

pub const DEFAULT_BASE_URL: &str = "https://api.resend.com";

#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    /// `Name <address>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub reply_to: Option<String>,
}

impl Email {
    pub fn to_json(&self) -> Value {
        let mut body = json!({ "from": self.from, "to": self.to, "subject": self.subject });
        if let Some(html) = &self.html {
            body["html"] = json!(html);
        }
        if let Some(text) = &self.text {
            body["text"] = json!(text);
        }
        if let Some(reply_to) = &self.reply_to {
            body["reply_to"] = json!(reply_to);
        }
        body
    }
}

#[derive(Debug, Clone)]
pub struct Resend {
    base_url: String,
    api_key: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
}

impl Resend {
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Resend {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
        }
    }

    pub fn request(&self, email: &Email, idempotency_key: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/emails", self.base_url))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", idempotency_key)
            .header("content-type", "application/json")
            .body(email.to_json().to_string())
    }

    /// Sends once, retrying transient failures under the same key, which makes
    /// every retry safe. Returns Resend's email id.
    pub async fn send(
        &self,
        email: &Email,
        idempotency_key: &str,
        clock: &dyn Clock,
    ) -> Result<String, SendError> {
        with_retries(&self.policy, clock, |_| async move {
            let reply = exchange(
                self.request(email, idempotency_key),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await?;
            classify(&reply)
        })
        .await
    }
}

/// Resend's replies: 200 `{"id"}`; errors `{"statusCode","name","message"}`.
/// Validation (400, 422) and a key reused with another payload are permanent;
/// a missing or invalid API key is transient, so that fixing the key delivers
/// what is queued; 429 and 5xx are transient.
pub fn classify(reply: &HttpReply) -> Result<String, SendError> {
    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if reply.status == 200 {
        return body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                SendError::transient(format!(
                    "resend: 200 without an id: {}",
                    truncate(&reply.body, 200)
                ))
            });
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let message = body.get("message").and_then(Value::as_str).unwrap_or("");
    let reason = format!("resend {} {name}: {message}", reply.status);
    match (reply.status, name) {
        (400 | 422, _) | (409, "invalid_idempotent_request") => Err(SendError::permanent(reason)),
        (401 | 403, _) => Err(SendError::transient(reason)),
        (409, _) => Err(SendError::Transient {
            reason,
            retry_after: Some(std::time::Duration::from_secs(1)),
            ambiguous: false,
        }),
        _ => Err(by_status(reply, "resend")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_request() {
        let email = Email {
            from: "Acme <orders@acme.test>".into(),
            to: vec!["c@client.test".into()],
            subject: "Order".into(),
            html: Some("<p>hi</p>".into()),
            text: Some("hi".into()),
            reply_to: None,
        };
        let r = Resend::new("http://sandbox/resend/", "re_key")
            .request(&email, "row-1")
            .build()
            .unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.url().as_str(), "http://sandbox/resend/emails");
        assert_eq!(r.headers()["authorization"], "Bearer re_key");
        assert_eq!(r.headers()["idempotency-key"], "row-1");
        let body: Value = serde_json::from_slice(r.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"from":"Acme <orders@acme.test>","to":["c@client.test"],"subject":"Order","html":"<p>hi</p>","text":"hi"})
        );
    }

    #[test]
    fn classifies_each_documented_reply() {
        assert_eq!(
            classify(&HttpReply::new(200, r#"{"id":"e-1"}"#)),
            Ok("e-1".into())
        );
        let err = |status, name| {
            classify(&HttpReply::new(
                status,
                &format!(r#"{{"statusCode":{status},"name":"{name}","message":"m"}}"#),
            ))
            .unwrap_err()
        };
        assert!(err(400, "validation_error").is_permanent());
        assert!(err(422, "missing_required_field").is_permanent());
        assert!(err(409, "invalid_idempotent_request").is_permanent());
        assert!(!err(409, "concurrent_idempotent_requests").is_permanent());
        assert!(!err(401, "missing_api_key").is_permanent());
        assert!(!err(403, "invalid_api_key").is_permanent());
        assert!(!err(429, "rate_limit_exceeded").is_permanent());
        assert!(!err(500, "internal_server_error").is_permanent());
        assert_eq!(
            err(422, "missing_required_field").reason(),
            "resend 422 missing_required_field: m"
        );
    }
}
