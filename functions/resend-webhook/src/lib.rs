//! `resend-webhook`: Resend's events about the emails of a campaign.
//!
//! Resend signs each delivery as Standard Webhooks (Svix) do: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64>` over
//! `"{id}.{timestamp}.{raw body}"`, with the endpoint's `whsec_…` secret
//! (`RESEND_WEBHOOK_SECRET`; several, comma-separated, while one is rotated),
//! within 5 minutes. The kit checks it on the raw body before anything is
//! parsed; a bad or missing signature is 401 and changes nothing.
//!
//! The event (`{"type": "email.delivered", "created_at", "data": {"email_id", …}}`)
//! is recorded once per `webhook-id` by `public.record_email_event`, which
//! moves the recipient, the campaign's counters and, on a bounce or a
//! complaint, the client's email consent. A replayed or retried delivery
//! counts once. An event for an email no campaign sent (a transactional
//! message) is acknowledged and not recorded.

use shared::serde::Deserialize;
use shared::serde_json::{json, Value};
use shared::{ApiError, Auth, Ctx, Endpoint, Request, Response, Result, Scheme, Validator};

/// The event types Resend sends about emails.
pub const EVENT_TYPES: &[&str] = &[
    "email.sent",
    "email.delivered",
    "email.delivery_delayed",
    "email.bounced",
    "email.complained",
    "email.opened",
    "email.clicked",
    "email.failed",
];

/// One event, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `webhook-id`: the same for every retry of one delivery.
    pub id: String,
    pub kind: &'static str,
    /// Resend's email id, which the send recorded as the provider message id.
    pub email_id: String,
    pub payload: Value,
}

/// Reads the (already verified) request into an [`Event`], naming bad fields.
pub fn read(req: &Request) -> Result<Event> {
    let id = req
        .header("webhook-id")
        .or_else(|| req.header("svix-id"))
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or_else(|| ApiError::field("webhook-id", "is required (1 to 200 characters)"))?
        .to_owned();
    let body = req.json_object()?;
    let mut v = Validator::new();
    let kind = v
        .required(body.as_object().expect("an object"), "", "type")
        .and_then(|t| v.one_of("type", Some(t), EVENT_TYPES));
    let email_id = body
        .get("data")
        .and_then(|d| d.get("email_id"))
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty() && e.len() <= 200)
        .map(str::to_owned);
    if email_id.is_none() {
        v.error("data.email_id", "is required (1 to 200 characters)");
    }
    v.finish(|| Event {
        id,
        kind: kind.expect("validated"),
        email_id: email_id.expect("validated"),
        payload: body.clone(),
    })
}

/// What `record_email_event` answers.
#[derive(Debug, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Recorded {
    pub matched: bool,
    pub duplicate: bool,
}

/// The function.
pub struct ResendWebhook;

impl Endpoint for ResendWebhook {
    const NAME: &'static str = "resend-webhook";
    const AUTH: Auth = Auth::Webhook {
        scheme: Scheme::StandardWebhooks,
        secrets_var: "RESEND_WEBHOOK_SECRET",
    };
    type Input = Event;

    fn input(req: &Request, _now: i64) -> Result<Event> {
        read(req)
    }

    async fn run(event: Event, ctx: &Ctx<'_>) -> Result<Response> {
        let key = ctx.require_service_key()?;
        let recorded: Recorded = ctx
            .config
            .rest
            .rpc_as(
                "record_email_event",
                &json!({
                    "provider": "resend",
                    "event_id": event.id,
                    "type": event.kind,
                    "message_id": event.email_id,
                    "payload": event.payload,
                }),
                key,
            )
            .await?;
        Ok(Response::json(
            200,
            &json!({"received": true, "matched": recorded.matched, "duplicate": recorded.duplicate}),
        ))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(ResendWebhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "POST".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn an_event_is_read_from_the_documented_shape() {
        let e = read(&req(
            &[("webhook-id", "msg_1")],
            r#"{"type":"email.bounced","created_at":"2026-11-27T08:00:00Z","data":{"email_id":"em_1","to":["a@b.test"]}}"#,
        ))
        .unwrap();
        assert_eq!(
            (e.id.as_str(), e.kind, e.email_id.as_str()),
            ("msg_1", "email.bounced", "em_1")
        );
        assert_eq!(e.payload["data"]["to"][0], "a@b.test");
        let svix = read(&req(
            &[("svix-id", "msg_2")],
            r#"{"type":"email.sent","data":{"email_id":"em_2"}}"#,
        ));
        assert_eq!(svix.unwrap().id, "msg_2");
    }

    #[test]
    fn a_bad_event_names_what_is_wrong() {
        let d = read(&req(
            &[("webhook-id", "m")],
            r#"{"type":"email.exploded","data":{}}"#,
        ))
        .unwrap_err()
        .details();
        assert!(d["type"].as_str().unwrap().starts_with("must be one of"));
        assert_eq!(d["data.email_id"], "is required (1 to 200 characters)");
        let e = read(&req(
            &[],
            r#"{"type":"email.sent","data":{"email_id":"e"}}"#,
        ))
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            read(&req(&[("webhook-id", "m")], "[1]"))
                .unwrap_err()
                .code(),
            "INVALID_JSON"
        );
    }
}
