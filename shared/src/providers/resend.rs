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
    /// Extra headers, such as `List-Unsubscribe` and `List-Unsubscribe-Post`.
    pub headers: Vec<(String, String)>,
    /// Files Resend fetches from a URL and attaches (its `path` form), so
    /// a large file never passes through the function or the outbox.
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub filename: String,
    /// A URL Resend downloads the file from.
    pub path: String,
    pub content_type: Option<String>,
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
        if !self.headers.is_empty() {
            let headers: serde_json::Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            body["headers"] = Value::Object(headers);
        }
        if !self.attachments.is_empty() {
            body["attachments"] = self
                .attachments
                .iter()
                .map(|a| {
                    let mut x = json!({"filename": a.filename, "path": a.path});
                    if let Some(t) = &a.content_type {
                        x["content_type"] = json!(t);
                    }
                    x
                })
                .collect();
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

    /// `POST /emails/batch`: the emails as one JSON array, under one key.
    pub fn batch_request(
        &self,
        emails: &[Email],
        idempotency_key: &str,
    ) -> reqwest::RequestBuilder {
        let body: Vec<Value> = emails.iter().map(Email::to_json).collect();
        self.http
            .post(format!("{}/emails/batch", self.base_url))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", idempotency_key)
            .header("x-batch-validation", "permissive")
            .header("content-type", "application/json")
            .body(Value::Array(body).to_string())
    }

    /// Sends 1 to [`MAX_BATCH`] emails in one call, retrying transient
    /// failures with the same key and the same emails, so a retry can never
    /// send a different batch or send one twice (Resend keeps the key 24
    /// hours). Validation is permissive: an invalid email is refused alone,
    /// and the others go. One answer per email, in the emails' order: its id,
    /// or why Resend refused it (permanent).
    pub async fn send_batch(
        &self,
        emails: &[Email],
        idempotency_key: &str,
        clock: &dyn Clock,
    ) -> Result<Vec<Result<String, String>>, SendError> {
        if emails.is_empty() || emails.len() > MAX_BATCH {
            return Err(SendError::permanent(format!(
                "a batch holds 1 to {MAX_BATCH} emails, not {}",
                emails.len()
            )));
        }
        with_retries(&self.policy, clock, |_| async move {
            let reply = exchange(
                self.batch_request(emails, idempotency_key),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await?;
            classify_batch(&reply, emails.len())
        })
        .await
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

/// `"Name" <address>`, with the characters that would break the header removed.
pub fn sender(name: &str, address: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !matches!(c, '"' | '<' | '>' | '\r' | '\n' | '\\'))
        .collect();
    format!("\"{}\" <{address}>", clean.trim())
}

/// The most emails Resend takes in one batch call.
pub const MAX_BATCH: usize = 100;

/// A batch reply, permissive mode: 200 `{"data": [{"id"}, …], "errors":
/// [{"index", "message"}, …]}`, the ids of the accepted emails in order and
/// the refused ones by index; errors as for one email ([`classify`]), for the
/// whole batch. An answer that does not account for every email is retried.
pub fn classify_batch(
    reply: &HttpReply,
    count: usize,
) -> Result<Vec<Result<String, String>>, SendError> {
    if reply.status != 200 {
        return classify(reply).map(|_| Vec::new());
    }
    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    let short = || {
        SendError::transient(format!(
            "resend: a batch of {count} answered without {count} outcomes: {}",
            truncate(&reply.body, 200)
        ))
    };
    let mut refused: Vec<Option<String>> = vec![None; count];
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let index = e.get("index").and_then(Value::as_u64).ok_or_else(short)? as usize;
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("refused");
        *refused.get_mut(index).ok_or_else(short)? = Some(format!("resend: {message}"));
    }
    let mut ids = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(short)?
        .iter()
        .map(|d| d.get("id").and_then(Value::as_str).map(str::to_owned));
    let outcomes: Option<Vec<Result<String, String>>> = refused
        .into_iter()
        .map(|r| match r {
            Some(reason) => Some(Err(reason)),
            None => ids.next().flatten().map(Ok),
        })
        .collect();
    match outcomes {
        Some(o) if ids.next().is_none() => Ok(o),
        _ => Err(short()),
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
            headers: vec![("List-Unsubscribe".into(), "<https://x/u?token=t>".into())],
            attachments: Vec::new(),
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
            json!({"from":"Acme <orders@acme.test>","to":["c@client.test"],"subject":"Order","html":"<p>hi</p>","text":"hi",
                   "headers":{"List-Unsubscribe":"<https://x/u?token=t>"}})
        );
        let batch = Resend::new("http://sandbox/resend/", "re_key")
            .batch_request(&[email.clone(), email], "batch-7")
            .build()
            .unwrap();
        assert_eq!(batch.url().as_str(), "http://sandbox/resend/emails/batch");
        assert_eq!(batch.headers()["idempotency-key"], "batch-7");
        let body: Value =
            serde_json::from_slice(batch.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(body.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_batch_answers_for_each_email_or_fails_whole() {
        let ok = HttpReply::new(200, r#"{"data":[{"id":"a"},{"id":"b"}]}"#);
        assert_eq!(
            classify_batch(&ok, 2),
            Ok(vec![Ok("a".to_owned()), Ok("b".to_owned())])
        );
        assert!(
            !classify_batch(&ok, 3).unwrap_err().is_permanent(),
            "a short answer is retried"
        );
        let partial = HttpReply::new(
            200,
            r#"{"data":[{"id":"a"},{"id":"c"}],"errors":[{"index":1,"message":"Invalid `to` field."}]}"#,
        );
        assert_eq!(
            classify_batch(&partial, 3),
            Ok(vec![
                Ok("a".to_owned()),
                Err("resend: Invalid `to` field.".to_owned()),
                Ok("c".to_owned())
            ])
        );
        assert!(
            classify_batch(&partial, 2).is_err(),
            "an index past the batch"
        );
        assert!(
            classify_batch(&partial, 4).is_err(),
            "an email unaccounted for"
        );
        let invalid = HttpReply::new(
            422,
            r#"{"statusCode":422,"name":"validation_error","message":"Email 3: Missing `to` field."}"#,
        );
        assert!(classify_batch(&invalid, 5).unwrap_err().is_permanent());
        let mismatch = HttpReply::new(
            409,
            r#"{"statusCode":409,"name":"invalid_idempotent_request","message":"m"}"#,
        );
        assert!(classify_batch(&mismatch, 5).unwrap_err().is_permanent());
        let limited = HttpReply::new(
            429,
            r#"{"statusCode":429,"name":"rate_limit_exceeded","message":"m"}"#,
        );
        assert!(!classify_batch(&limited, 5).unwrap_err().is_permanent());
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
