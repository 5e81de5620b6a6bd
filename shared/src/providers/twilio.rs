//! Twilio Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded, HTTP Basic with the account SID and auth token.
//!
//! Twilio takes no idempotency key, so a send after an ambiguous failure (a
//! timeout or a reset, when Twilio may have accepted the message) first lists
//! the day's messages to the same number and reuses one with the same body.

use std::cell::Cell;

use serde_json::Value;

use super::retry::{by_status, exchange, with_retries, Clock, HttpReply, RetryPolicy, SendError};
use crate::validate::utc_day;

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Error codes that say the message itself can never be sent.
const PERMANENT_CODES: &[u64] = &[
    21211, // invalid To
    21408, // region not enabled
    21602, // body required
    21603, // From required
    21604, // To required
    21606, // From cannot send SMS
    21610, // recipient unsubscribed
    21612, // cannot route to this number
    21614, // To is not a mobile number
    21617, // body too long
];

#[derive(Debug, Clone)]
pub struct Twilio {
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
    /// Where Twilio posts the message's status changes (`StatusCallback`).
    pub status_callback: Option<String>,
}

impl Twilio {
    pub fn new(base_url: &str, account_sid: &str, auth_token: &str, from: &str) -> Self {
        Twilio {
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
            status_callback: None,
        }
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        )
    }

    pub fn request(&self, to: &str, body: &str) -> reqwest::RequestBuilder {
        let mut params = vec![("To", to), ("From", self.from.as_str()), ("Body", body)];
        if let Some(url) = &self.status_callback {
            params.push(("StatusCallback", url));
        }
        let form = serde_urlencoded::to_string(params).expect("strings always encode");
        self.http
            .post(self.messages_url())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
    }

    /// The list request for messages to `to` sent on or after `day` (YYYY-MM-DD).
    pub fn list_request(&self, to: &str, day: &str) -> reqwest::RequestBuilder {
        let query =
            serde_urlencoded::to_string([("To", to), ("DateSent>", day), ("PageSize", "100")])
                .expect("strings always encode");
        self.http
            .get(format!("{}?{query}", self.messages_url()))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
    }

    /// A message already accepted for `to` with exactly `body`, since `day`.
    pub async fn find_sent(
        &self,
        to: &str,
        body: &str,
        day: &str,
        clock: &dyn Clock,
    ) -> Result<Option<String>, SendError> {
        let reply = exchange(
            self.list_request(to, day),
            self.policy.timeout,
            clock.now_unix_secs(),
        )
        .await?;
        if reply.status != 200 {
            return Err(by_status(&reply, "twilio list"));
        }
        Ok(find_in_list(&reply.body, to, body))
    }

    /// Sends one SMS and returns its SID. `maybe_sent_since` (YYYY-MM-DD) says an
    /// earlier attempt may have reached Twilio: look before sending. Within this
    /// call, an ambiguous failure makes the next attempt look first too.
    pub async fn send_sms(
        &self,
        to: &str,
        body: &str,
        maybe_sent_since: Option<&str>,
        clock: &dyn Clock,
    ) -> Result<String, SendError> {
        let today = utc_day(clock.now_unix_secs());
        let day = &maybe_sent_since.map(str::to_owned).unwrap_or(today);
        let look_first = &Cell::new(maybe_sent_since.is_some());
        with_retries(&self.policy, clock, |_| async move {
            if look_first.get() {
                if let Some(sid) = self.find_sent(to, body, day, clock).await? {
                    return Ok(sid);
                }
            }
            let result = match exchange(
                self.request(to, body),
                self.policy.timeout,
                clock.now_unix_secs(),
            )
            .await
            {
                Ok(reply) => classify(&reply),
                Err(e) => Err(e),
            };
            if matches!(&result, Err(e) if e.is_ambiguous()) {
                look_first.set(true);
            }
            result
        })
        .await
    }
}

fn find_in_list(list: &str, to: &str, body: &str) -> Option<String> {
    let list: Value = serde_json::from_str(list).ok()?;
    list.get("messages")?
        .as_array()?
        .iter()
        .find(|m| {
            m.get("to").and_then(Value::as_str) == Some(to)
                && m.get("body").and_then(Value::as_str) == Some(body)
        })
        .and_then(|m| m.get("sid").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Twilio's replies: 201 with the message; errors `{code, message, more_info, status}`.
/// Codes about the recipient or the message are permanent; 20003 (bad
/// credentials) is transient so a fixed token delivers; 20429 was never processed.
pub fn classify(reply: &HttpReply) -> Result<String, SendError> {
    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if reply.status == 201 || reply.status == 200 {
        return body
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SendError::transient("twilio: accepted without a sid"));
    }
    let code = body.get("code").and_then(Value::as_u64).unwrap_or(0);
    let message = body.get("message").and_then(Value::as_str).unwrap_or("");
    let reason = format!("twilio {} ({code}): {message}", reply.status);
    if PERMANENT_CODES.contains(&code) {
        return Err(SendError::permanent(reason));
    }
    match reply.status {
        401 => Err(SendError::transient(reason)),
        _ => Err(by_status(reply, "twilio")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_form_encoded_request_with_basic_auth() {
        let t = Twilio::new("http://sandbox/twilio", "AC1", "tok", "+15550001111");
        let r = t
            .request("+15557654321", "Order WO-1 & more")
            .build()
            .unwrap();
        assert_eq!(
            r.url().as_str(),
            "http://sandbox/twilio/2010-04-01/Accounts/AC1/Messages.json"
        );
        assert_eq!(r.headers()["authorization"], "Basic QUMxOnRvaw==");
        assert_eq!(
            r.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            std::str::from_utf8(r.body().unwrap().as_bytes().unwrap()).unwrap(),
            "To=%2B15557654321&From=%2B15550001111&Body=Order+WO-1+%26+more"
        );
        let l = t
            .list_request("+15557654321", "2026-11-26")
            .build()
            .unwrap();
        assert_eq!(
            l.url().query(),
            Some("To=%2B15557654321&DateSent%3E=2026-11-26&PageSize=100")
        );
    }

    #[test]
    fn classifies_twilio_errors() {
        assert_eq!(
            classify(&HttpReply::new(201, r#"{"sid":"SM1","status":"queued"}"#)),
            Ok("SM1".into())
        );
        let err = |status, code| {
            classify(&HttpReply::new(
                status,
                &format!(r#"{{"code":{code},"message":"m","status":{status}}}"#),
            ))
            .unwrap_err()
        };
        assert!(err(400, 21211).is_permanent(), "invalid phone number");
        assert!(err(400, 21610).is_permanent(), "unsubscribed");
        assert!(!err(401, 20003).is_permanent());
        assert!(!err(429, 20429).is_permanent());
        assert!(!err(500, 20500).is_permanent());
        assert_eq!(err(400, 21211).reason(), "twilio 400 (21211): m");
    }

    #[test]
    fn finds_an_earlier_send_by_recipient_and_body() {
        let list = r#"{"messages":[{"sid":"SM1","to":"+1555","body":"other"},{"sid":"SM2","to":"+1555","body":"WO-7 confirmed"}]}"#;
        assert_eq!(
            find_in_list(list, "+1555", "WO-7 confirmed"),
            Some("SM2".into())
        );
        assert_eq!(find_in_list(list, "+1666", "WO-7 confirmed"), None);
        assert_eq!(find_in_list("not json", "+1555", "x"), None);
    }
}
