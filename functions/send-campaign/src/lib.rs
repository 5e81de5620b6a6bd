//! `send-campaign`: sends a marketing campaign by email or SMS to a tenant's
//! wholesale clients, with consent, fair sharing of the providers' rate and
//! per-recipient tracking.
//!
//! The request is seed 000's, with an optional `tenant_id` (needed only by a
//! user of several tenants) and `name`:
//! ```json
//! {"campaign_id": "<uuid>", "type": "email", "name": "Spring",
//!  "audience": {"type": "custom", "filters": {"all": [{"field": "city", "op": "eq", "value": "Lyon"}]}},
//!  "content": {"subject": "News for {{client.name}}", "body": "**Hello** {{client.name}}", "template": "markdown"},
//!  "schedule": "2026-12-01T09:00:00Z"}
//! ```
//! `campaign_id` is the caller's: a repeated call names the same campaign
//! and is answered with its state; nothing is sent twice. A draft with that
//! id (made in the admin panel) is filled in and sent. Another tenant's id
//! is 404.
//!
//! The answer (`200`) is seed 000's plus the state:
//! ```json
//! {"success": true, "campaign_id": "…", "status": "sent", "recipient_count": 40,
//!  "sent_count": 40, "failed_count": 0, "suppressed": 2, "no_address": 1, "replayed": false}
//! ```
//! Up to [`INLINE_RECIPIENTS`] recipients are sent within the request and
//! the counts are final. A larger audience is answered once it is queued,
//! with `status: "sending"`; the dispatcher sends it and the campaign row's
//! counters tell the rest. A future `schedule` answers `status: "scheduled"`.

pub mod content;
pub mod filters;

use shared::campaign::{self, Budget, Rendered};
use shared::serde::Deserialize;
use shared::serde_json::{json, Map, Value};
use shared::{Auth, Counted, Ctx, Endpoint, Request, Response, Result, Uuid, Validator};

use content::{Format, SmsFit};

/// The function's name, as in `rate_limit_policies` and `request_subjects`.
pub const FUNCTION_NAME: &str = "send-campaign";
/// Audiences up to this size are sent within the request.
pub const INLINE_RECIPIENTS: u64 = 100;
/// The longest body, in characters.
pub const MAX_BODY_CHARS: usize = 50_000;

/// A checked request.
#[derive(Debug, Clone)]
pub struct CampaignInput {
    pub campaign_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub channel: &'static str,
    pub name: String,
    pub audience: Value,
    pub content: Value,
    pub rendered: Rendered,
    pub sms: Option<SmsFit>,
    pub schedule: Option<String>,
}

/// `YYYY-MM-DDTHH:MM[:SS[.fraction]]` with `Z` or `±HH:MM`: an instant, never
/// a local time without its offset.
pub fn is_instant(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 17 || !shared::is_date(&s[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(11..13) && b[13] == b':' && digits(14..16)) {
        return false;
    }
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        if !digits(i + 1..i + 3) {
            return false;
        }
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start || i - start > 9 {
                return false;
            }
        }
    }
    let hour: u32 = s[11..13].parse().unwrap_or(99);
    let minute: u32 = s[14..16].parse().unwrap_or(99);
    if hour > 23 || minute > 59 {
        return false;
    }
    match &s[i..] {
        "Z" | "z" => true,
        rest => {
            let r = rest.as_bytes();
            r.len() == 6
                && matches!(r[0], b'+' | b'-')
                && r[1..3].iter().all(u8::is_ascii_digit)
                && r[3] == b':'
                && r[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

pub fn validate(body: &Value) -> Result<CampaignInput> {
    let mut v = Validator::new();
    let obj = v
        .object(
            "",
            body,
            &[
                "campaign_id",
                "tenant_id",
                "type",
                "name",
                "audience",
                "content",
                "schedule",
            ],
        )
        .cloned()
        .unwrap_or_default();
    let campaign_id = {
        let raw = v.required(&obj, "", "campaign_id");
        v.uuid("campaign_id", raw)
    };
    let tenant_id = v.uuid("tenant_id", obj.get("tenant_id").filter(|t| !t.is_null()));
    let channel = {
        let raw = v.required(&obj, "", "type");
        v.one_of("type", raw, &["email", "sms"])
    };
    let name = v.string("name", obj.get("name").filter(|n| !n.is_null()), 200);
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        v.error("name", "must not be blank");
    }

    // Audience.
    let mut audience = Value::Null;
    if let Some(raw) = v.required(&obj, "", "audience") {
        if let Some(a) = v
            .object("audience", raw, &["type", "segment_id", "filters"])
            .cloned()
        {
            let kind = {
                let t = v.required(&a, "audience", "type");
                v.one_of("audience.type", t, &["all", "segment", "custom"])
            };
            let mut clean = Map::new();
            match kind {
                Some("segment") => {
                    let s = v.required(&a, "audience", "segment_id");
                    if let Some(id) = v.uuid("audience.segment_id", s) {
                        clean.insert("segment_id".into(), json!(id));
                    }
                }
                Some("custom") => {
                    if let Some(f) = v.required(&a, "audience", "filters") {
                        for (path, problem) in filters::check(f, "audience.filters") {
                            v.error(&path, problem.as_str().unwrap_or("is invalid"));
                        }
                        clean.insert("filters".into(), f.clone());
                    }
                }
                _ => {}
            }
            if let Some(kind) = kind {
                for (key, only) in [("segment_id", "segment"), ("filters", "custom")] {
                    if kind != only && a.get(key).is_some_and(|x| !x.is_null()) {
                        v.error(&format!("audience.{key}"), format!("only with type {only}"));
                    }
                }
                clean.insert("type".into(), json!(kind));
            }
            audience = Value::Object(clean);
        }
    }

    // Content.
    let mut subject = None;
    let mut text_body = None;
    let mut format = Format::Markdown;
    let mut content = Value::Null;
    if let Some(raw) = v.required(&obj, "", "content") {
        if let Some(c) = v
            .object("content", raw, &["subject", "body", "template"])
            .cloned()
        {
            subject = v.string(
                "content.subject",
                c.get("subject").filter(|s| !s.is_null()),
                200,
            );
            let b = v.required(&c, "content", "body");
            text_body = v.string("content.body", b, MAX_BODY_CHARS);
            if text_body.as_deref().is_some_and(|b| b.trim().is_empty()) {
                v.error("content.body", "must not be blank");
                text_body = None;
            }
            if let Some(t) = c.get("template").filter(|t| !t.is_null()) {
                match v.one_of("content.template", Some(t), &["markdown", "plain"]) {
                    Some("plain") => format = Format::Plain,
                    _ => format = Format::Markdown,
                }
            }
            content = Value::Object(c);
        }
    }
    match channel {
        Some("email") if subject.as_deref().map_or(true, |s| s.trim().is_empty()) => {
            v.error("content.subject", "is required for email");
        }
        Some("sms") if subject.is_some() => v.error("content.subject", "only for email"),
        _ => {}
    }

    let schedule = obj.get("schedule").filter(|s| !s.is_null()).and_then(|s| {
        match s.as_str().filter(|s| is_instant(s)) {
            Some(s) => Some(s.to_owned()),
            None => {
                v.error(
                    "schedule",
                    "must be an ISO 8601 time with its offset, such as 2026-12-01T09:00:00Z",
                );
                None
            }
        }
    });

    // Render only what validated, so each problem is reported once.
    let mut rendered = None;
    let mut sms = None;
    if v.is_ok() {
        let made = match channel {
            Some("sms") => {
                content::render_sms(text_body.as_deref().unwrap_or("")).map(|(r, fit)| {
                    sms = Some(fit);
                    r
                })
            }
            _ => content::render_email(
                subject.as_deref().unwrap_or(""),
                text_body.as_deref().unwrap_or(""),
                format,
            ),
        };
        match made {
            Ok(r) => rendered = Some(r),
            Err((path, problem)) => v.error(path, problem),
        }
    }
    v.finish(|| {
        let rendered = rendered.unwrap_or_default();
        let name = name.unwrap_or_else(|| {
            subject
                .clone()
                .unwrap_or_else(|| text_body.clone().unwrap_or_default())
                .chars()
                .take(80)
                .collect()
        });
        CampaignInput {
            campaign_id: campaign_id.unwrap_or_default(),
            tenant_id,
            channel: channel.unwrap_or("email"),
            name: name.trim().to_owned(),
            audience,
            content: content::stored(&content, &rendered),
            rendered,
            sms,
            schedule,
        }
    })
}

/// The arguments of `public.send_campaign`.
pub fn rpc_args(input: &CampaignInput, tenant: Uuid) -> Value {
    json!({
        "payload": {
            "campaign_id": input.campaign_id,
            "tenant_id": tenant,
            "type": input.channel,
            "name": input.name,
            "audience": input.audience,
            "content": input.content,
            "schedule": input.schedule,
        }
    })
}

/// What `send_campaign` and `campaign_state` answer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(crate = "shared::serde")]
pub struct State {
    pub campaign_id: Uuid,
    pub status: String,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub recipient_count: u64,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub sent_count: u64,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub failed_count: u64,
    #[serde(default)]
    pub scheduled_at: Option<String>,
    #[serde(default)]
    pub suppressed: Option<u64>,
    #[serde(default)]
    pub no_address: Option<u64>,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub replayed: bool,
}

/// The answer: seed 000's fields, then the state.
pub fn response(state: &State, sms: Option<&SmsFit>) -> Value {
    let mut body = json!({
        "success": true,
        "campaign_id": state.campaign_id,
        "status": state.status,
        "recipient_count": state.recipient_count,
        "sent_count": state.sent_count,
        "failed_count": state.failed_count,
        "replayed": state.replayed,
    });
    if let Some(at) = &state.scheduled_at {
        body["scheduled_at"] = json!(at);
    }
    if let Some(n) = state.suppressed {
        body["suppressed"] = json!(n);
    }
    if let Some(n) = state.no_address {
        body["no_address"] = json!(n);
    }
    if let Some(fit) = sms {
        body["sms"] = json!({"segments": fit.segments, "encoding": fit.encoding});
    }
    body
}

pub struct SendCampaign;

impl Endpoint for SendCampaign {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = CampaignInput;

    fn input(req: &Request, _now: i64) -> Result<CampaignInput> {
        // campaign_id is this endpoint's idempotency key; an Idempotency-Key
        // header is still checked like everywhere else, then not needed.
        req.idempotency_key()?;
        validate(&req.json_object()?)
    }

    async fn run(input: CampaignInput, ctx: &Ctx<'_>) -> Result<Response> {
        let caller = ctx.caller()?;
        let tenant = ctx.tenant(input.tenant_id).await?;
        let rest = &ctx.config.rest;
        let mut state: State = rest
            .rpc_counted_as(
                "send_campaign",
                &rpc_args(&input, tenant),
                caller,
                Counted {
                    function_name: FUNCTION_NAME,
                    subject_id: tenant,
                },
                ctx.service_role_key(),
                ctx.clock,
            )
            .await?;
        if !state.replayed && state.status == "sending" {
            if state.recipient_count <= INLINE_RECIPIENTS {
                // Small: sent now, within the provider's shared rate. What the
                // rate does not allow in time is left to the dispatcher.
                let budget = Budget {
                    until_ms: ctx.clock.monotonic_ms() + 10_000.0,
                    max_messages: 2 * INLINE_RECIPIENTS,
                };
                if let Err(e) =
                    campaign::drain(ctx.config, ctx.clock, Some(input.campaign_id), budget).await
                {
                    log(&format!(
                        "sending campaign {} inline: {e:?}",
                        input.campaign_id
                    ));
                }
                let now: Option<State> = rest
                    .rpc_as(
                        "campaign_state",
                        &json!({"campaign_id": input.campaign_id}),
                        &caller.token,
                    )
                    .await?;
                if let Some(now) = now {
                    state = State {
                        suppressed: state.suppressed,
                        no_address: state.no_address,
                        ..now
                    };
                }
            }
            if state.status == "sending" {
                ctx.deliver_outbox();
            }
        }
        Ok(Response::json(200, &response(&state, input.sms.as_ref())))
    }
}

fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    shared::runtime::log_error(message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{message}");
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(SendCampaign);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    fn body(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    const ID: &str = "6f1d8c1e-5b7a-4c1e-9a53-2f1c8f0a9b10";

    #[test]
    fn a_full_email_request_is_read_and_rendered() {
        let i = validate(&body(&format!(
            r#"{{"campaign_id":"{ID}","type":"email","audience":{{"type":"all"}},
                "content":{{"subject":"Hi {{{{client.name}}}}","body":"**Sale**"}},"schedule":"2026-12-01T09:00:00+01:00"}}"#
        )))
        .unwrap();
        assert_eq!(i.channel, "email");
        assert_eq!(i.name, "Hi {{client.name}}");
        assert_eq!(i.audience, json!({"type": "all"}));
        assert_eq!(i.schedule.as_deref(), Some("2026-12-01T09:00:00+01:00"));
        assert!(i.content["rendered"]["html"]
            .as_str()
            .unwrap()
            .contains("<strong>Sale</strong>"));
        assert_eq!(i.content["body"], "**Sale**");
        let args = rpc_args(&i, Uuid::from_u128(1));
        assert_eq!(
            args["payload"]["tenant_id"],
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(args["payload"]["type"], "email");
    }

    #[test]
    fn every_problem_is_named() {
        let e = validate(&body(
            r#"{"campaign_id":"x","type":"fax","audience":{"type":"segment"},"content":{"body":""},"schedule":"tomorrow","extra":1}"#,
        ))
        .unwrap_err()
        .details();
        assert_eq!(e["campaign_id"], "must be a UUID string");
        assert_eq!(e["type"], "must be one of: email, sms");
        assert_eq!(e["audience.segment_id"], "is required");
        assert_eq!(e["content.body"], "must not be blank");
        assert!(e["schedule"].as_str().unwrap().contains("ISO 8601"));
        assert_eq!(e["extra"], "unknown field");
        let e = validate(&body(&format!(
            r#"{{"campaign_id":"{ID}","type":"email","audience":{{"type":"custom","filters":{{"all":[{{"field":"password","op":"eq","value":"x"}}]}}}},"content":{{"body":"b"}}}}"#
        )))
        .unwrap_err()
        .details();
        assert!(e["audience.filters.all[0]"]
            .as_str()
            .unwrap()
            .starts_with("unknown field"));
        assert_eq!(e["content.subject"], "is required for email");
        let e = validate(&body(&format!(
            r#"{{"campaign_id":"{ID}","type":"sms","audience":{{"type":"all","filters":{{}}}},"content":{{"body":"b","subject":"s"}}}}"#
        )))
        .unwrap_err()
        .details();
        assert_eq!(e["audience.filters"], "only with type custom");
        assert_eq!(e["content.subject"], "only for email");
    }

    #[test]
    fn an_unknown_merge_field_is_a_400_at_send_time() {
        let e = validate(&body(&format!(
            r#"{{"campaign_id":"{ID}","type":"email","audience":{{"type":"all"}},"content":{{"subject":"s","body":"Hi {{{{client.first}}}}"}}}}"#
        )))
        .unwrap_err()
        .details();
        assert!(
            e["content.body"].as_str().unwrap().contains("client.first"),
            "{e}"
        );
    }

    #[test]
    fn sms_requests_report_their_segments() {
        let i = validate(&body(&format!(
            r#"{{"campaign_id":"{ID}","type":"sms","audience":{{"type":"all"}},"content":{{"body":"Sale on now"}}}}"#
        )))
        .unwrap();
        assert_eq!(i.sms.as_ref().unwrap().segments, 1);
        let state = State {
            campaign_id: Uuid::from_u128(2),
            status: "sending".into(),
            recipient_count: 3,
            sent_count: 0,
            failed_count: 0,
            scheduled_at: None,
            suppressed: Some(1),
            no_address: None,
            replayed: false,
        };
        let r = response(&state, i.sms.as_ref());
        assert_eq!(r["sms"], json!({"segments": 1, "encoding": "GSM-7"}));
        assert_eq!(r["success"], true);
        assert_eq!(r["suppressed"], 1);
        assert!(r.get("no_address").is_none());
    }

    #[test]
    fn instants_need_an_offset() {
        for ok in [
            "2026-12-01T09:00Z",
            "2026-12-01T09:00:00Z",
            "2026-12-01T09:00:00.123+05:30",
            "2026-12-01 09:00:00-08:00",
        ] {
            assert!(is_instant(ok), "{ok}");
        }
        for bad in [
            "2026-12-01",
            "2026-12-01T09:00:00",
            "2026-12-01T25:00:00Z",
            "2026-02-30T09:00Z",
            "2026-12-01T09:00:00+0530",
            "x",
        ] {
            assert!(!is_instant(bad), "{bad}");
        }
    }
}
