//! `twilio-webhook`: Twilio's status callbacks for campaign SMS, and the
//! messages clients text back (STOP, START, HELP).
//!
//! Twilio signs each request with `X-Twilio-Signature`: the base64
//! HMAC-SHA1, keyed with the account's auth token (`TWILIO_AUTH_TOKEN`), of
//! the public URL it called followed by every form parameter, sorted. The kit
//! rebuilds that URL from `PUBLIC_FUNCTIONS_URL` (else the project's
//! functions URL), the path and the query, and checks it before anything is
//! parsed; a bad or missing signature is 401 and changes nothing.
//!
//! - A status callback (`MessageSid`, `MessageStatus`, `ErrorCode`) is
//!   recorded once per message and status by `public.record_sms_status`:
//!   delivered, or failed (error 21610, the number replied STOP, also
//!   unsubscribes the client from SMS).
//! - An inbound message (`From`, `Body`) with an opt-out or opt-in word is
//!   applied by `public.record_sms_keyword` to every client with that number.
//!
//! The answer is empty TwiML (`<Response/>`): Twilio itself replies to STOP,
//! START and HELP on long codes (Advanced Opt-Out).

use std::collections::BTreeMap;

use shared::serde_json::{json, Value};
use shared::{ApiError, Auth, Ctx, Endpoint, Request, Response, Result, Scheme};

/// What Twilio posted.
#[derive(Debug, Clone, PartialEq)]
pub enum Posted {
    Status {
        message_sid: String,
        status: String,
        error_code: Option<String>,
        params: BTreeMap<String, String>,
    },
    Inbound {
        from: String,
        body: String,
    },
}

/// The statuses a status callback reports.
pub const STATUSES: &[&str] = &[
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
    "canceled",
];

/// Reads Twilio's form body (the signature is already checked).
pub fn read(req: &Request) -> Result<Posted> {
    let params: BTreeMap<String, String> = serde_urlencoded::from_bytes(&req.body)
        .map_err(|_| ApiError::InvalidJson("the body is not a form".into()))?;
    let get = |k: &str| {
        params
            .get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(status) = get("MessageStatus") {
        let message_sid = get("MessageSid")
            .filter(|s| s.len() <= 64)
            .ok_or_else(|| ApiError::field("MessageSid", "is required"))?;
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::field(
                "MessageStatus",
                "is not a Twilio message status",
            ));
        }
        return Ok(Posted::Status {
            message_sid,
            status,
            error_code: get("ErrorCode").filter(|c| c.len() <= 10),
            params,
        });
    }
    match (get("From"), params.get("Body")) {
        (Some(from), Some(body)) if from.len() <= 32 && body.len() <= 1600 => Ok(Posted::Inbound {
            from,
            body: body.clone(),
        }),
        _ => Err(ApiError::field(
            "MessageStatus",
            "a status callback needs MessageSid and MessageStatus; an inbound message From and Body",
        )),
    }
}

/// Empty TwiML.
pub fn twiml() -> Response {
    Response::bytes(
        200,
        "text/xml; charset=utf-8",
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_vec(),
    )
}

/// The function.
pub struct TwilioWebhook;

impl Endpoint for TwilioWebhook {
    const NAME: &'static str = "twilio-webhook";
    const AUTH: Auth = Auth::Webhook {
        scheme: Scheme::Twilio,
        secrets_var: "TWILIO_AUTH_TOKEN",
    };
    /// Twilio's forms are small; an inbound message is at most 1,600 characters.
    const BODY_LIMIT: usize = 16 * 1024;
    type Input = Posted;

    fn input(req: &Request, _now: i64) -> Result<Posted> {
        read(req)
    }

    async fn run(posted: Posted, ctx: &Ctx<'_>) -> Result<Response> {
        let key = ctx.require_service_key()?;
        let rest = &ctx.config.rest;
        let _: Value = match posted {
            Posted::Status {
                message_sid,
                status,
                error_code,
                params,
            } => {
                let args = json!({"message_sid": message_sid, "status": status,
                    "error_code": error_code, "payload": params});
                rest.rpc_as("record_sms_status", &args, key).await?
            }
            Posted::Inbound { from, body } => {
                rest.rpc_as(
                    "record_sms_keyword",
                    &json!({"phone": from, "keyword": body}),
                    key,
                )
                .await?
            }
        };
        Ok(twiml())
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(TwilioWebhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> Request {
        Request {
            method: "POST".into(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn status_callbacks_and_inbound_messages_are_told_apart() {
        let s = read(&post(
            "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=21610&To=%2B1555",
        ))
        .unwrap();
        let Posted::Status {
            message_sid,
            status,
            error_code,
            params,
        } = s
        else {
            panic!()
        };
        assert_eq!(
            (message_sid.as_str(), status.as_str(), error_code.as_deref()),
            ("SM1", "undelivered", Some("21610"))
        );
        assert_eq!(params["To"], "+1555");
        let i = read(&post("From=%2B15550001&Body=Stop&To=%2B1444")).unwrap();
        assert_eq!(
            i,
            Posted::Inbound {
                from: "+15550001".into(),
                body: "Stop".into()
            }
        );
    }

    #[test]
    fn anything_else_names_what_is_missing() {
        assert_eq!(
            read(&post("MessageStatus=delivered")).unwrap_err().status(),
            400
        );
        assert_eq!(
            read(&post("MessageSid=SM1&MessageStatus=exploded"))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(read(&post("To=%2B1")).unwrap_err().status(), 400);
        assert_eq!(
            twiml().header("content-type"),
            Some("text/xml; charset=utf-8")
        );
    }
}
