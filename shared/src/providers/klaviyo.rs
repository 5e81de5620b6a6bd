//! Klaviyo (JSON:API): profile upsert (`POST /api/profile-import/`) and event
//! create (`POST /api/events/`), with the dated `revision` header.

use serde_json::{json, Value};

use super::retry::{by_status, exchange, with_retries, Clock, HttpReply, RetryPolicy, SendError};

pub const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com";
pub const DEFAULT_REVISION: &str = "2026-04-15";
const JSON_API: &str = "application/vnd.api+json";

#[derive(Debug, Clone)]
pub struct Klaviyo {
    base_url: String,
    api_key: String,
    revision: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
}

impl Klaviyo {
    pub fn new(base_url: &str, api_key: &str, revision: &str) -> Self {
        Klaviyo {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            revision: revision.to_owned(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
        }
    }

    fn post(&self, path: &str, doc: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/{path}", self.base_url))
            .header("authorization", format!("Klaviyo-API-Key {}", self.api_key))
            .header("revision", &self.revision)
            .header("accept", JSON_API)
            .header("content-type", JSON_API)
            .body(doc.to_string())
    }

    /// `attributes`: email, phone_number, external_id, first_name, last_name, properties.
    pub fn profile_request(&self, attributes: &Value) -> reqwest::RequestBuilder {
        self.post(
            "profile-import/",
            &json!({"data": {"type": "profile", "attributes": attributes}}),
        )
    }

    pub fn event_request(
        &self,
        metric: &str,
        email: &str,
        properties: &Value,
        unique_id: &str,
    ) -> reqwest::RequestBuilder {
        self.post(
            "events/",
            &json!({"data": {"type": "event", "attributes": {
                "properties": properties,
                "unique_id": unique_id,
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            }}}),
        )
    }

    /// Creates or updates a profile; returns its id.
    pub async fn upsert_profile(
        &self,
        attributes: &Value,
        clock: &dyn Clock,
    ) -> Result<String, SendError> {
        with_retries(&self.policy, clock, |_| async move {
            let reply = exchange(
                self.profile_request(attributes),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await?;
            classify(&reply).and_then(|doc| {
                doc.pointer("/data/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| SendError::transient("klaviyo: profile without an id"))
            })
        })
        .await
    }

    /// Records an event; `unique_id` makes a retried event count once.
    pub async fn create_event(
        &self,
        metric: &str,
        email: &str,
        properties: &Value,
        unique_id: &str,
        clock: &dyn Clock,
    ) -> Result<(), SendError> {
        with_retries(&self.policy, clock, |_| async move {
            let reply = exchange(
                self.event_request(metric, email, properties, unique_id),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await?;
            classify(&reply).map(|_| ())
        })
        .await
    }
}

/// Klaviyo's replies: 200/201 with a document, 202 with none; errors
/// `{"errors":[{status, code, title, detail}]}`. 400 is permanent; 401/403 are
/// transient (credentials the operator can fix); 429 and 5xx are transient.
pub fn classify(reply: &HttpReply) -> Result<Value, SendError> {
    match reply.status {
        200..=202 => Ok(serde_json::from_str(&reply.body).unwrap_or(Value::Null)),
        401 | 403 => Err(SendError::transient(format!(
            "klaviyo {}: {}",
            reply.status,
            first_error(&reply.body)
        ))),
        400 => Err(SendError::permanent(format!(
            "klaviyo 400: {}",
            first_error(&reply.body)
        ))),
        _ => Err(by_status(reply, "klaviyo")),
    }
}

fn first_error(body: &str) -> String {
    let doc: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = &doc["errors"][0];
    format!(
        "{} {}",
        e["code"].as_str().unwrap_or(""),
        e["detail"].as_str().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_json_api_requests() {
        let k = Klaviyo::new("http://sandbox/klaviyo", "pk_1", DEFAULT_REVISION);
        let r = k
            .event_request(
                "Placed Order",
                "c@client.test",
                &json!({"total": 12.5}),
                "order-1",
            )
            .build()
            .unwrap();
        assert_eq!(r.url().as_str(), "http://sandbox/klaviyo/api/events/");
        assert_eq!(r.headers()["authorization"], "Klaviyo-API-Key pk_1");
        assert_eq!(r.headers()["revision"], "2026-04-15");
        assert_eq!(r.headers()["content-type"], "application/vnd.api+json");
        let doc: Value = serde_json::from_slice(r.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(
            doc.pointer("/data/attributes/metric/data/attributes/name")
                .unwrap(),
            "Placed Order"
        );
        assert_eq!(
            doc.pointer("/data/attributes/profile/data/attributes/email")
                .unwrap(),
            "c@client.test"
        );
        assert_eq!(
            doc.pointer("/data/attributes/unique_id").unwrap(),
            "order-1"
        );
        let p = k
            .profile_request(&json!({"email": "c@client.test"}))
            .build()
            .unwrap();
        assert_eq!(p.url().path(), "/klaviyo/api/profile-import/");
    }

    #[test]
    fn classifies_klaviyo_replies() {
        assert_eq!(classify(&HttpReply::new(202, "")), Ok(Value::Null));
        assert!(classify(&HttpReply::new(201, r#"{"data":{"id":"01H"}}"#)).is_ok());
        let bad = r#"{"errors":[{"status":400,"code":"invalid","detail":"bad email"}]}"#;
        assert_eq!(
            classify(&HttpReply::new(400, bad)).unwrap_err().reason(),
            "klaviyo 400: invalid bad email"
        );
        assert!(classify(&HttpReply::new(400, bad))
            .unwrap_err()
            .is_permanent());
        assert!(!classify(&HttpReply::new(401, bad))
            .unwrap_err()
            .is_permanent());
        assert!(!classify(&HttpReply::new(429, bad))
            .unwrap_err()
            .is_permanent());
        assert!(!classify(&HttpReply::new(503, ""))
            .unwrap_err()
            .is_permanent());
    }
}
