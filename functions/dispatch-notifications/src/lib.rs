//! `dispatch-notifications`: delivers the notification outbox. Not a user
//! endpoint: it answers only the service-role key or the dispatch secret.
//!
//! Each call claims due rows under a lease (`claim_notifications`), fetches
//! the templates the batch needs in one call (`message_templates_for`: the
//! tenant's own, else the default), renders each row, hands it to its
//! channel's handler ([`channels::CHANNELS`]; the outbox row id is the
//! provider idempotency key) and records the batch's outcomes in one call
//! (`record_notification_outcomes`), batch after batch until nothing is due or
//! [`TIME_BUDGET_SECS`] have passed. It is called every minute by pg_cron and
//! right after a function writes outbox rows.
//!
//! It knows no domain: messages are `message_templates` rows, and a channel
//! that is not a message (`stripe`: a refund to submit) is a handler
//! registered like the others.
//!
//! Request (`POST /functions/v1/dispatch-notifications`, `Authorization: Bearer <service role key>`
//! or `x-dispatch-secret: <secret>`), body optional:
//! ```json
//! {"batch_size": 50, "lease_seconds": 60}
//! ```
//! Then it starts the scheduled campaigns that are due and drains campaign
//! batches ([`shared::campaign::drain`]) for up to [`CAMPAIGN_BUDGET_MS`] or
//! [`CAMPAIGN_MESSAGES`]; if work is left, it calls itself again at once.
//!
//! Response `200`:
//! ```json
//! {"claimed": 12, "sent": 10, "retrying": 1, "dead": 1,
//!  "campaigns": {"started": 0, "batches": 20, "sent": 2000, "failed": 0, "retrying": 0, "more": false}}
//! ```

pub mod channels;

use std::collections::HashMap;

use futures::StreamExt;
use shared::providers::{Clock, SendError};
use shared::serde_json::{json, Value};
use shared::{
    ApiError, Auth, Config, Ctx, DecimalRule, Endpoint, Request, Response, Result, Validator,
};

use channels::{channel, render, Parts};

/// A row's template: the tenant's or the default's parts, and the default's
/// when the tenant's own was chosen (sent if the tenant's cannot render).
#[derive(Debug, Clone, PartialEq, Default, shared::serde::Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Chosen {
    #[serde(flatten)]
    pub parts: Parts,
    #[serde(default)]
    pub fallback: Option<Parts>,
}

/// The templates of a batch, or why they could not be read.
pub type Templates = std::result::Result<HashMap<(String, String, String), Chosen>, String>;

/// A call stops claiming new batches after this long.
pub const TIME_BUDGET_SECS: i64 = 20;
/// Sends in flight at once within a batch.
pub const CONCURRENCY: usize = 32;

/// One claimed outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub tenant_id: String,
    pub lease_id: String,
    pub channel: String,
    pub template: String,
    pub recipient: Option<String>,
    pub payload: Value,
    pub attempts: u64,
    pub created_at: String,
}

impl Notification {
    pub fn from_row(row: &Value) -> Option<Self> {
        let s = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Notification {
            id: s("id")?,
            tenant_id: s("tenant_id").unwrap_or_default(),
            lease_id: s("lease_id")?,
            channel: s("channel")?,
            template: s("template")?,
            recipient: s("recipient").filter(|r| !r.trim().is_empty()),
            payload: row.get("payload").cloned().unwrap_or(Value::Null),
            attempts: row.get("attempts").and_then(Value::as_u64).unwrap_or(1),
            created_at: s("created_at").unwrap_or_default(),
        })
    }
}

/// Optional overrides of the configured batch size and lease.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DispatchInput {
    pub batch_size: Option<u32>,
    pub lease_seconds: Option<u32>,
}

pub fn validate(req: &Request) -> Result<DispatchInput> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DispatchInput::default());
    }
    let body = req.json_object()?;
    let mut v = Validator::new();
    let obj = v
        .object("", &body, &["batch_size", "lease_seconds"])
        .cloned()
        .unwrap_or_default();
    let whole = |v: &mut Validator, key: &str, max: u32| {
        let rule = DecimalRule {
            max_scale: 0,
            min: 1.into(),
            min_inclusive: true,
            max: max.into(),
        };
        v.decimal(key, obj.get(key), rule)
            .map(|d| d.mantissa() as u32)
    };
    let batch_size = whole(&mut v, "batch_size", 500);
    let lease_seconds = whole(&mut v, "lease_seconds", 3600);
    v.finish(|| DispatchInput {
        batch_size,
        lease_seconds,
    })
}

/// Sends one notification with its template's parts (for a channel that
/// renders); the provider's message id on success.
pub async fn deliver(
    n: &Notification,
    template: std::result::Result<Option<&Chosen>, &str>,
    config: &Config,
    clock: &dyn Clock,
) -> std::result::Result<String, SendError> {
    let Some(handler) = channel(&n.channel) else {
        // Added to notification_channels before a dispatcher that handles it
        // was deployed: the row waits, and dies only after its attempts.
        return Err(SendError::transient(format!(
            "no handler for channel {:?} in this dispatcher",
            n.channel
        )));
    };
    let message = if handler.renders {
        let chosen = template
            .map_err(|e| SendError::transient(format!("the templates could not be read: {e}")))?
            .ok_or_else(|| {
                SendError::permanent(format!(
                    "no template {:?} for channel {:?}",
                    n.template, n.channel
                ))
            })?;
        let payload = with_signed_links(&n.payload, config).await?;
        let payload = with_action_links(&payload, config, clock.now_unix_secs())?;
        let rendered = match render(&chosen.parts, &n.channel, &payload) {
            Err(broken) if chosen.fallback.is_some() => {
                // The tenant's own template is broken: send the default rather
                // than lose the message, and say so in the function's log.
                log(&format!(
                    "tenant {} template {:?}/{}: {broken}; sent the default instead",
                    n.tenant_id, n.template, n.channel
                ));
                render(
                    chosen.fallback.as_ref().unwrap_or(&chosen.parts),
                    &n.channel,
                    &payload,
                )
            }
            other => other,
        };
        Some(rendered.map_err(SendError::permanent)?)
    } else {
        None
    };
    (handler.deliver)(n, message, config, clock).await
}

/// The templates a batch needs, in one call: by (tenant, key, channel).
pub async fn templates_for(rows: &[Notification], config: &Config, key: &str) -> Templates {
    let mut wanted: Vec<(String, String, String)> = rows
        .iter()
        .filter(|n| channel(&n.channel).is_some_and(|c| c.renders))
        .map(|n| (n.tenant_id.clone(), n.template.clone(), n.channel.clone()))
        .collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let requests: Vec<Value> = wanted
        .iter()
        .map(|(t, k, c)| json!({"tenant_id": t, "key": k, "channel": c}))
        .collect();
    #[derive(shared::serde::Deserialize)]
    #[serde(crate = "shared::serde")]
    struct Found {
        found: bool,
        #[serde(flatten)]
        chosen: Chosen,
    }
    let found: Vec<Found> = config
        .rest
        .rpc_as(
            "message_templates_for",
            &json!({ "requests": requests }),
            key,
        )
        .await
        .map_err(|e| format!("{}: {}", e.code(), e.log_cause().unwrap_or(&e.message())))?;
    Ok(wanted
        .into_iter()
        .zip(found)
        .filter(|(_, f)| f.found)
        .map(|(w, f)| (w, f.chosen))
        .collect())
}

/// Longest a link signed for a message may live.
pub const MAX_LINK_SECS: u64 = 365 * 24 * 3600;

/// The payload with each `signed_links` entry (`{"<field>": {"bucket",
/// "path", "expires_in"}}`) signed now, with the service role, into
/// `payload[<field>]`. A message thus never carries a URL someone wrote into
/// the outbox: only a link to the named object on this project's Storage.
pub async fn with_signed_links(
    payload: &Value,
    config: &Config,
) -> std::result::Result<Value, SendError> {
    let Some(links) = payload.get("signed_links").and_then(Value::as_object) else {
        return Ok(payload.clone());
    };
    let key = config
        .service_role_key
        .as_deref()
        .ok_or_else(|| SendError::transient("SUPABASE_SERVICE_ROLE_KEY is not set"))?;
    let mut out = payload.clone();
    for (field, link) in links {
        let part = |k: &str| {
            link.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SendError::permanent(format!("signed_links.{field} has no {k}")))
        };
        let (bucket, path) = (part("bucket")?, part("path")?);
        let ttl = link
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600)
            .clamp(1, MAX_LINK_SECS) as u32;
        let url = config
            .storage
            .create_signed_url(bucket, path, ttl, key)
            .await
            .map_err(|e| match e {
                ApiError::NotFound { .. } => {
                    SendError::permanent(format!("{bucket}/{path} is not in Storage"))
                }
                e => SendError::transient(format!("signing {bucket}/{path}: {}", e.code())),
            })?;
        out[field.as_str()] = Value::String(url);
    }
    Ok(out)
}

/// The purposes an outbox row may ask [`with_action_links`] to sign: links
/// to this project's public functions that act for the recipient.
pub const ACTION_PURPOSES: &[(&str, &str)] = &[("recall_response", "recall-response")];
/// How long an action link works: a recall notice may be answered months later.
pub const ACTION_LINK_SECS: i64 = 365 * 24 * 3600;

/// The payload with each `action_links` entry (`{"<field>": {"function",
/// "purpose", "subject"}}`) made into a signed link to that public function
/// (`LINK_SIGNING_SECRET`, [`shared::signed_link`]), valid
/// [`ACTION_LINK_SECS`] from `now`, in `payload[<field>]`. Only the pairs in
/// [`ACTION_PURPOSES`] are signed: an outbox row cannot mint an unsubscribe
/// link, or any other, for someone else.
pub fn with_action_links(
    payload: &Value,
    config: &Config,
    now: i64,
) -> std::result::Result<Value, SendError> {
    let Some(links) = payload.get("action_links").and_then(Value::as_object) else {
        return Ok(payload.clone());
    };
    let secrets = config.secrets(shared::campaign::LINK_SECRETS_VAR);
    let secret = secrets.first().ok_or_else(|| {
        SendError::transient(format!(
            "{} is not set: the message's links cannot be signed",
            shared::campaign::LINK_SECRETS_VAR
        ))
    })?;
    let mut out = payload.clone();
    for (field, link) in links {
        let part = |k: &str| {
            link.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SendError::permanent(format!("action_links.{field} has no {k}")))
        };
        let (function, purpose, subject) = (part("function")?, part("purpose")?, part("subject")?);
        if !ACTION_PURPOSES.contains(&(purpose, function)) {
            return Err(SendError::permanent(format!(
                "action_links.{field}: {purpose} links to {function} are not signed here"
            )));
        }
        let token =
            shared::signed_link::sign(secret.as_bytes(), purpose, subject, now + ACTION_LINK_SECS)
                .map_err(|e| {
                    SendError::permanent(format!("action_links.{field}: {}", e.message()))
                })?;
        out[field.as_str()] = Value::String(format!(
            "{}/{function}?token={token}",
            config.public_functions_url
        ));
    }
    Ok(out)
}

/// A failed attempt, as `record_notification_outcomes` takes it.
pub fn failure(n: &Notification, err: &SendError) -> Value {
    json!({
        "id": n.id,
        "lease": n.lease_id,
        "error": err.reason(),
        "permanent": err.is_permanent(),
        "retry_after_seconds": err.retry_after().map(|d| d.as_secs_f64()).unwrap_or(0.0),
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Summary {
    pub claimed: u64,
    pub sent: u64,
    pub retrying: u64,
    pub dead: u64,
    /// Scheduled campaigns started by this call.
    pub campaigns_started: u64,
    pub campaign: shared::campaign::Drained,
    /// Workflow runs advanced, and the actions their steps took.
    pub workflow_runs: u64,
    pub workflow_actions: u64,
}

/// Workflow runs advanced per call of `advance_workflow_runs`, and calls at
/// most per dispatch: due runs go first, so the messages their steps queue
/// leave in the same dispatch.
pub const WORKFLOW_BATCH: u64 = 100;
pub const WORKFLOW_ROUNDS: u32 = 20;

/// A call stops claiming campaign batches after this long, or after
/// [`CAMPAIGN_MESSAGES`] messages, and hands over to a fresh call: each stays
/// well inside an Edge Function's limits (2 s of CPU, 150 s of wall clock).
pub const CAMPAIGN_BUDGET_MS: f64 = 25_000.0;
pub const CAMPAIGN_MESSAGES: u64 = 5_000;

/// Claims, sends and records, batch after batch.
pub async fn run(input: DispatchInput, config: &Config, clock: &dyn Clock) -> Result<Summary> {
    let key = config
        .service_role_key
        .as_deref()
        .ok_or_else(|| ApiError::Internal("SUPABASE_SERVICE_ROLE_KEY is not set".into()))?;
    let batch_size = input.batch_size.unwrap_or(config.outbox.batch_size);
    let lease_seconds = input.lease_seconds.unwrap_or(config.outbox.lease_seconds);
    let started = clock.now_unix_secs();
    let mut summary = Summary::default();
    for _ in 0..WORKFLOW_ROUNDS {
        // A failure here must not hold the outbox back; the next call retries.
        match config
            .rest
            .rpc(
                "advance_workflow_runs",
                &json!({"max_runs": WORKFLOW_BATCH}),
                key,
            )
            .await
        {
            Ok(r) => {
                summary.workflow_runs += r["runs"].as_u64().unwrap_or(0);
                summary.workflow_actions += r["actions"].as_u64().unwrap_or(0);
                if r["more"] != json!(true) {
                    break;
                }
            }
            Err(e) => {
                log(&format!("advancing workflow runs failed: {e:?}"));
                break;
            }
        }
    }
    loop {
        let claimed = config
            .rest
            .rpc(
                "claim_notifications",
                &json!({"batch_size": batch_size, "lease_seconds": lease_seconds}),
                key,
            )
            .await?;
        let rows: Vec<Notification> = claimed
            .as_array()
            .map(|a| a.iter().filter_map(Notification::from_row).collect())
            .unwrap_or_default();
        summary.claimed += rows.len() as u64;
        // If the templates cannot be read, rows that need one fail as
        // transient (retried later); the others still go.
        let templates = &templates_for(&rows, config, key).await;
        let outcomes: Vec<Value> = futures::stream::iter(rows.iter())
            .map(|n| async move {
                let template = match templates {
                    Ok(found) => Ok(found.get(&(
                        n.tenant_id.clone(),
                        n.template.clone(),
                        n.channel.clone(),
                    ))),
                    Err(e) => Err(e.as_str()),
                };
                match deliver(n, template, config, clock).await {
                    Ok(message_id) => json!({"id": n.id, "provider_message_id": message_id}),
                    Err(err) => failure(n, &err),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        if !outcomes.is_empty() {
            // One round trip per batch. If it fails, the lease brings the rows back;
            // a resend reuses the same idempotency key, so nothing is sent twice.
            let args =
                json!({"outcomes": outcomes, "backoff_seconds": config.outbox.backoff_seconds});
            match config
                .rest
                .rpc("record_notification_outcomes", &args, key)
                .await
            {
                Ok(statuses) => {
                    for s in statuses.as_array().into_iter().flatten() {
                        match s.get("status").and_then(Value::as_str) {
                            Some("sent") => summary.sent += 1,
                            Some("pending") => summary.retrying += 1,
                            Some("dead") => summary.dead += 1,
                            _ => {}
                        }
                    }
                }
                Err(e) => log(&format!(
                    "recording {} outcomes failed: {e:?}",
                    outcomes.len()
                )),
            }
        }
        if (rows.len() as u32) < batch_size || clock.now_unix_secs() - started >= TIME_BUDGET_SECS {
            break;
        }
    }
    // Transactional messages first, then campaigns: scheduled ones that are
    // due start, and every sending one gets its turn.
    let since = clock.monotonic_ms();
    summary.campaigns_started = config
        .rest
        .rpc_as::<u64>("start_due_campaigns", &json!({}), key)
        .await?;
    summary.campaign = shared::campaign::drain(
        config,
        clock,
        None,
        shared::campaign::Budget {
            until_ms: since + CAMPAIGN_BUDGET_MS,
            max_messages: CAMPAIGN_MESSAGES,
        },
    )
    .await?;
    Ok(summary)
}

fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    shared::runtime::log_error(message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{message}");
}

/// The function: pg_cron, and functions that queued rows, call it with the
/// service-role key or the dispatch secret.
pub struct DispatchNotifications;

impl Endpoint for DispatchNotifications {
    const NAME: &'static str = "dispatch-notifications";
    const AUTH: Auth = Auth::ServiceRole;
    type Input = DispatchInput;

    fn input(req: &Request, _now: i64) -> Result<DispatchInput> {
        validate(req)
    }

    async fn run(input: DispatchInput, ctx: &Ctx<'_>) -> Result<Response> {
        let s = run(input, ctx.config, ctx.clock).await?;
        if s.campaign.cut_short {
            // More campaign work is due: a fresh call goes on at once.
            ctx.deliver_outbox();
        }
        let c = s.campaign;
        Ok(Response::json(
            200,
            &json!({"claimed": s.claimed, "sent": s.sent, "retrying": s.retrying, "dead": s.dead,
                    "campaigns": {"started": s.campaigns_started, "batches": c.batches, "sent": c.sent,
                                  "failed": c.failed, "retrying": c.retrying, "more": c.cut_short},
                    "workflows": {"runs": s.workflow_runs, "actions": s.workflow_actions}}),
        ))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(DispatchNotifications);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn action_links_are_signed_for_their_purpose_only() {
        let c = config(&[("LINK_SIGNING_SECRET", "k2,k1")]);
        let payload = json!({"action_links": {"response_url": {
            "function": "recall-response", "purpose": "recall_response", "subject": "abc"}}, "x": 1});
        let out = with_action_links(&payload, &c, 1_000).unwrap();
        let url = out["response_url"].as_str().unwrap();
        let prefix = format!("{}/recall-response?token=", c.public_functions_url);
        let token = url.strip_prefix(&prefix).expect(url);
        let link =
            shared::signed_link::verify(&[b"k1", b"k2"], "recall_response", token, 1_000).unwrap();
        assert_eq!(link.subject, "abc");
        assert_eq!(link.expires_at, 1_000 + ACTION_LINK_SECS);
        assert_eq!(out["x"], 1);
        let forged = json!({"action_links": {"u": {"function": "unsubscribe", "purpose": "unsubscribe", "subject": "c:email"}}});
        let e = with_action_links(&forged, &c, 1_000).unwrap_err();
        assert!(e.is_permanent(), "an outbox row cannot mint other links");
        let e = with_action_links(&payload, &config(&[]), 1_000).unwrap_err();
        assert!(
            !e.is_permanent(),
            "a missing key waits for the configuration"
        );
        assert_eq!(
            with_action_links(&json!({"a": 1}), &c, 0).unwrap(),
            json!({"a": 1})
        );
    }

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut env: BTreeMap<String, String> = [
            ("SUPABASE_URL", "http://gw"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("JWT_SECRET", "secret-secret-secret-secret-secret!"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        Config::from_env(&env).unwrap()
    }

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
    fn only_the_dispatch_secret_or_the_service_role_may_call() {
        let authorize = |r: &Request, c: &Config, now: i64| {
            futures::executor::block_on(
                shared::endpoint::authenticate_for::<DispatchNotifications>(r, c, now),
            )
        };
        let c = config(&[
            ("DISPATCH_SECRET", "d-secret"),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc-key"),
        ]);
        assert!(authorize(&req(&[("x-dispatch-secret", "d-secret")], ""), &c, 0).is_ok());
        assert!(authorize(&req(&[("authorization", "Bearer svc-key")], ""), &c, 0).is_ok());
        for bad in [
            req(&[("x-dispatch-secret", "d-secreT")], ""),
            req(&[("authorization", "Bearer anon")], ""),
            req(&[], ""),
        ] {
            assert_eq!(authorize(&bad, &c, 0).unwrap_err().status(), 401);
        }
        // No secret configured: a header cannot match an absent secret.
        let c = config(&[]);
        assert!(authorize(&req(&[("x-dispatch-secret", "")], ""), &c, 0).is_err());
    }

    #[test]
    fn the_body_is_optional_and_checked() {
        assert_eq!(validate(&req(&[], "")).unwrap(), DispatchInput::default());
        assert_eq!(
            validate(&req(&[], r#"{"batch_size":10,"lease_seconds":5}"#)).unwrap(),
            DispatchInput {
                batch_size: Some(10),
                lease_seconds: Some(5)
            }
        );
        let d = validate(&req(&[], r#"{"batch_size":0,"lease_seconds":1.5,"x":1}"#))
            .unwrap_err()
            .details();
        assert_eq!(d["batch_size"], "must be at least 1");
        assert_eq!(d["lease_seconds"], "must have at most 0 decimal places");
        assert_eq!(d["x"], "unknown field");
    }

    #[test]
    fn claimed_rows_and_failure_reports() {
        let row: Value = serde_json::from_str(
            r#"{"id":"n1","lease_id":"l1","channel":"sms","template":"order_confirmation","recipient":" ",
                "payload":{},"attempts":2,"created_at":"2026-11-26T01:02:03+00:00","status":"sending"}"#,
        )
        .unwrap();
        let n = Notification::from_row(&row).unwrap();
        assert_eq!(n.recipient, None, "a blank recipient is no recipient");
        assert_eq!(n.attempts, 2);
        let err = SendError::Transient {
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(3)),
            ambiguous: false,
        };
        assert_eq!(
            failure(&n, &err),
            json!({"id":"n1","lease":"l1","error":"429","permanent":false,"retry_after_seconds":3.0})
        );
    }

    #[test]
    fn missing_contacts_and_providers_fail_the_right_way() {
        struct Now;
        impl Clock for Now {
            fn now_unix_secs(&self) -> i64 {
                0
            }
            fn jitter(&self) -> f64 {
                0.0
            }
            fn sleep(
                &self,
                _: Duration,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
                Box::pin(async {})
            }
        }
        let payload =
            json!({"business_name":"B","order_number":"WO-1","total_amount":1,"items":[]});
        let n = |channel: &str, recipient: Option<&str>| Notification {
            id: "n".into(),
            tenant_id: "t".into(),
            lease_id: "l".into(),
            channel: channel.into(),
            template: "order_confirmation".into(),
            recipient: recipient.map(str::to_owned),
            payload: payload.clone(),
            attempts: 1,
            created_at: String::new(),
        };
        let c = config(&[]);
        let parts = |channel: &str| Chosen {
            parts: channels::Parts {
                subject: (channel == "email").then(|| "Order {{order_number}}".into()),
                html: (channel == "email").then(|| "<p>{{business_name}}</p>".into()),
                body: Some("{{order_number}}, total {{total_amount | money}}".into()),
            },
            fallback: None,
        };
        let run = |n: Notification| {
            let p = parts(&n.channel);
            futures::executor::block_on(deliver(&n, Ok(Some(&p)), &c, &Now)).unwrap_err()
        };
        assert_eq!(
            run(n("email", None)),
            SendError::permanent("the client has no email address")
        );
        assert_eq!(
            run(n("sms", None)),
            SendError::permanent("the client has no phone number")
        );
        assert!(
            !run(n("email", Some("a@b.test"))).is_permanent(),
            "unconfigured email waits"
        );
        assert!(
            !run(n("fax", Some("x"))).is_permanent(),
            "a channel without a handler waits for one"
        );
        let no_template =
            futures::executor::block_on(deliver(&n("sms", Some("+1")), Ok(None), &c, &Now))
                .unwrap_err();
        assert_eq!(
            no_template,
            SendError::permanent("no template \"order_confirmation\" for channel \"sms\"")
        );
        // The templates could not be read: the row waits.
        let unread = futures::executor::block_on(deliver(
            &n("sms", Some("+1")),
            Err("SERVICE_UNAVAILABLE"),
            &c,
            &Now,
        ))
        .unwrap_err();
        assert!(!unread.is_permanent(), "{unread:?}");
        // A tenant's broken template falls back to the default: what fails is
        // then the send (SMS is not configured here), not the rendering.
        let broken = Chosen {
            parts: channels::Parts {
                body: Some("{{no_such_value}}".into()),
                ..Default::default()
            },
            fallback: Some(parts("sms").parts),
        };
        let sent = futures::executor::block_on(deliver(
            &n("sms", Some("+1")),
            Ok(Some(&broken)),
            &c,
            &Now,
        ))
        .unwrap_err();
        assert_eq!(
            sent,
            SendError::transient("SMS is not configured (TWILIO_*)")
        );
        let no_fallback = Chosen {
            fallback: None,
            ..broken
        };
        let dead = futures::executor::block_on(deliver(
            &n("sms", Some("+1")),
            Ok(Some(&no_fallback)),
            &c,
            &Now,
        ))
        .unwrap_err();
        assert!(
            dead.is_permanent() && dead.reason().contains("no_such_value"),
            "{dead:?}"
        );
    }
}
