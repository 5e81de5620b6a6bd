//! Slack incoming webhooks: `POST <webhook URL>` with JSON `{text, blocks}`;
//! the reply is plain text (`ok`, or an error name).

use serde_json::{json, Value};

use super::retry::{by_status, exchange, with_retries, Clock, HttpReply, RetryPolicy, SendError};

#[derive(Debug, Clone)]
pub struct Slack {
    webhook_url: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
}

impl Slack {
    pub fn new(webhook_url: &str) -> Self {
        Slack {
            webhook_url: webhook_url.to_owned(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
        }
    }

    pub fn request(&self, text: &str, blocks: Option<&Value>) -> reqwest::RequestBuilder {
        let mut body = json!({ "text": text });
        if let Some(blocks) = blocks {
            body["blocks"] = blocks.clone();
        }
        self.http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    pub async fn post(
        &self,
        text: &str,
        blocks: Option<&Value>,
        clock: &dyn Clock,
    ) -> Result<(), SendError> {
        with_retries(&self.policy, clock, |_| async move {
            let reply = exchange(
                self.request(text, blocks),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await?;
            classify(&reply)
        })
        .await
    }
}

/// 200 `ok`; 400 `invalid_payload`, 403 `action_prohibited`, 404
/// `channel_not_found` and 410 `channel_is_archived` are permanent; 429 and 5xx
/// are transient.
pub fn classify(reply: &HttpReply) -> Result<(), SendError> {
    match reply.status {
        200 => Ok(()),
        400 | 403 | 404 | 410 => Err(SendError::permanent(format!(
            "slack {}: {}",
            reply.status,
            reply.body.trim()
        ))),
        _ => Err(by_status(reply, "slack")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_json_and_reads_plain_text() {
        let s = Slack::new("http://sandbox/slack/services/T/B/X");
        let r = s.request("Stock low", None).build().unwrap();
        assert_eq!(r.url().path(), "/slack/services/T/B/X");
        assert_eq!(
            r.body().unwrap().as_bytes().unwrap(),
            br#"{"text":"Stock low"}"#
        );
        assert_eq!(classify(&HttpReply::new(200, "ok")), Ok(()));
        assert_eq!(
            classify(&HttpReply::new(404, "channel_not_found"))
                .unwrap_err()
                .reason(),
            "slack 404: channel_not_found"
        );
        assert!(classify(&HttpReply::new(410, "channel_is_archived"))
            .unwrap_err()
            .is_permanent());
        assert!(!classify(&HttpReply::new(429, "rate_limited"))
            .unwrap_err()
            .is_permanent());
    }
}
