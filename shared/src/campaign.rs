//! Sending marketing campaigns: the work `send-campaign` queues in
//! `campaign_recipients` and `dispatch-notifications` drains.
//!
//! A drain round claims batches (`claim_campaign_batches`: tenants take
//! turns, within the provider's shared rate), makes each recipient's message
//! from the campaign's rendered content and the merge values frozen at the
//! first claim, sends email batches through Resend (`POST /emails/batch`,
//! `Idempotency-Key` = the batch id, so a retried batch cannot send twice)
//! and SMS through Twilio, and records what the providers said
//! (`record_campaign_outcomes`) in one call. A batch whose sender dies is
//! claimed again when its claim runs out, with the same id and the same
//! members, so the provider answers the retry from its idempotency record.
//!
//! Rates: `RESEND_MAX_RPS` (requests a second, default 2, Resend's default)
//! and `TWILIO_MAX_MPS` (messages a second, default 1, a long code's).

use std::collections::HashMap;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::providers::resend::{sender, Email};
use crate::providers::{Clock, SendError};
use crate::signed_link::{self, LinkError};
use crate::template::{Escape, Template};
use crate::{ApiError, Config, Result};

/// What an unsubscribe link may be used for.
pub const UNSUBSCRIBE_PURPOSE: &str = "unsubscribe";
/// Where the link-signing keys are (comma-separated while one is rotated).
pub const LINK_SECRETS_VAR: &str = "LINK_SIGNING_SECRET";
/// How long an unsubscribe link works: a message may be read long after.
pub const LINK_TTL_SECS: i64 = 365 * 24 * 3600;
/// The most SMS segments a campaign message may take.
pub const MAX_SMS_SEGMENTS: usize = 4;
/// Appended to every marketing SMS.
pub const SMS_STOP_LINE: &str = "Reply STOP to opt out";
/// Recipients per email batch (Resend's maximum).
pub const EMAIL_BATCH: u32 = 100;
/// A claimed batch is claimed again if its sender has not reported by then.
pub const LEASE_SECONDS: u32 = 60;
/// SMS sent at once within a drain.
const SMS_CONCURRENCY: usize = 8;

/// The token of a client's unsubscribe link on `channel`: purpose
/// `unsubscribe`, subject `<client id>:<channel>`, valid for
/// [`LINK_TTL_SECS`] from `issued_at`. The same inputs give the same token,
/// so a retried batch carries the same links.
pub fn unsubscribe_token(
    secret: &[u8],
    client_id: Uuid,
    channel: &str,
    issued_at: i64,
) -> std::result::Result<String, LinkError> {
    signed_link::sign(
        secret,
        UNSUBSCRIBE_PURPOSE,
        &format!("{client_id}:{channel}"),
        issued_at + LINK_TTL_SECS,
    )
}

/// The link itself.
pub fn unsubscribe_url(config: &Config, token: &str) -> String {
    format!("{}/unsubscribe?token={token}", config.public_functions_url)
}

/// The merge fields a campaign may use, with the values checked against.
pub fn sample_merge_values() -> Value {
    json!({
        "client": {"name": "Northwind Trading Company", "email": "buyer@example.com",
                   "phone": "+15555550100", "city": "Springfield"},
        "business": {"name": "Your Business Name"},
        "unsubscribe_url": "https://example.com/functions/v1/unsubscribe?token=abcdefghijklmnopqrstuvwxyz0123456789"
    })
}

/// The names of the merge fields, for error messages and documentation.
pub const MERGE_FIELDS: &str =
    "client.name, client.email, client.phone, client.city, business.name, unsubscribe_url";

/// A campaign's content as `send-campaign` stored it (`content.rendered`):
/// templates in [`crate::template`]'s language over the merge fields.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(crate = "serde")]
pub struct Rendered {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    pub text: String,
}

/// A campaign's templates, parsed once per drain.
pub struct Prepared {
    pub channel: String,
    pub started_at: i64,
    subject: Option<Template>,
    html: Option<Template>,
    text: Template,
}

impl Prepared {
    pub fn new(
        rendered: &Rendered,
        channel: &str,
        started_at: i64,
    ) -> std::result::Result<Self, String> {
        let parse =
            |part: &str, src: &str| Template::parse_part(part, src).map_err(|e| e.to_string());
        Ok(Prepared {
            channel: channel.to_owned(),
            started_at,
            subject: rendered
                .subject
                .as_deref()
                .map(|s| parse("subject", s))
                .transpose()?,
            html: rendered
                .html
                .as_deref()
                .map(|s| parse("html", s))
                .transpose()?,
            text: parse("text", &rendered.text)?,
        })
    }

    /// The message for one recipient's merge values: (subject, html, text).
    pub fn render(
        &self,
        merge: &Value,
    ) -> std::result::Result<(Option<String>, Option<String>, String), String> {
        let e = |e: crate::template::TemplateError| e.to_string();
        Ok((
            self.subject
                .as_ref()
                .map(|t| t.render(merge, Escape::None))
                .transpose()
                .map_err(e)?,
            self.html
                .as_ref()
                .map(|t| t.render(merge, Escape::Html))
                .transpose()
                .map_err(e)?,
            self.text.render(merge, Escape::None).map_err(e)?,
        ))
    }
}

/// One claimed recipient.
#[derive(Debug, Clone, Deserialize)]
#[serde(crate = "serde")]
pub struct Recipient {
    pub id: i64,
    pub client_id: Uuid,
    pub address: String,
    #[serde(default)]
    pub merge: Value,
}

/// One claimed batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(crate = "serde")]
pub struct Batch {
    pub batch_id: Uuid,
    pub campaign_id: Uuid,
    pub attempt: u32,
    /// The day (UTC) the batch was first claimed.
    #[serde(default)]
    pub since: Option<String>,
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(crate = "serde")]
struct CampaignRow {
    content: Value,
    channel: String,
    #[serde(default)]
    started_at: i64,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "serde")]
struct Claimed {
    batches: Vec<Batch>,
    #[serde(default)]
    campaigns: HashMap<Uuid, CampaignRow>,
    #[serde(default)]
    wait_ms: u64,
    #[serde(default)]
    more: bool,
}

/// What a drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Drained {
    pub batches: u64,
    pub sent: u64,
    pub failed: u64,
    pub retrying: u64,
    /// It stopped at its deadline or its message cap with work still due: a
    /// next drain should follow at once.
    pub cut_short: bool,
}

/// How far one drain may go.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// `Clock::monotonic_ms` after which no new batch is claimed.
    pub until_ms: f64,
    /// Messages, in all, after which no new batch is claimed.
    pub max_messages: u64,
}

/// The configured rate of a channel's provider: requests (email batches) or
/// messages (SMS) a second.
pub fn rate(config: &Config, channel: &str) -> f64 {
    let (var, default) = if channel == "sms" {
        ("TWILIO_MAX_MPS", 1.0)
    } else {
        ("RESEND_MAX_RPS", 2.0)
    };
    config
        .var(var)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|r| r.is_finite() && *r >= 0.01 && *r <= 10_000.0)
        .unwrap_or(default)
}

/// A recipient's outcome, as `record_campaign_outcomes` takes it.
fn outcome(id: i64, result: std::result::Result<String, SendError>) -> Value {
    match result {
        Ok(message_id) => json!({"id": id, "provider_message_id": message_id}),
        Err(e) => json!({
            "id": id,
            "error": e.reason(),
            "permanent": e.is_permanent(),
            // Twilio 21610: the recipient replied STOP to the sending number.
            "unsubscribed": e.is_permanent() && e.reason().contains("(21610)"),
            "retry_after_seconds": e.retry_after().map(|d| d.as_secs_f64()).unwrap_or(0.0),
        }),
    }
}

/// The merge values of a recipient, with its unsubscribe link.
fn merge_values(
    r: &Recipient,
    campaign: &Prepared,
    secret: Option<&[u8]>,
    config: &Config,
) -> std::result::Result<Value, SendError> {
    let secret = secret.ok_or_else(|| {
        SendError::transient(format!(
            "{LINK_SECRETS_VAR} is not set: no unsubscribe link"
        ))
    })?;
    let token = unsubscribe_token(secret, r.client_id, &campaign.channel, campaign.started_at)
        .map_err(|e| SendError::permanent(format!("unsubscribe link: {e}")))?;
    let mut merge = r.merge.clone();
    if !merge.is_object() {
        merge = json!({});
    }
    merge["unsubscribe_url"] = Value::String(unsubscribe_url(config, &token));
    Ok(merge)
}

async fn send_emails(
    batch: &Batch,
    campaign: &Prepared,
    config: &Config,
    clock: &dyn Clock,
) -> Vec<Value> {
    let secret = config
        .secrets(LINK_SECRETS_VAR)
        .first()
        .map(|s| s.as_bytes());
    let (resend, from) = match config.providers.email() {
        Ok(s) => s,
        Err(e) => {
            return batch
                .recipients
                .iter()
                .map(|r| outcome(r.id, Err(e.clone())))
                .collect()
        }
    };
    let mut outcomes = Vec::new();
    let mut emails = Vec::new();
    let mut members = Vec::new();
    for r in &batch.recipients {
        let made = merge_values(r, campaign, secret, config).and_then(|merge| {
            let (subject, html, text) = campaign.render(&merge).map_err(SendError::permanent)?;
            let business = merge["business"]["name"].as_str().unwrap_or("");
            let link = merge["unsubscribe_url"].as_str().unwrap_or("");
            Ok(Email {
                from: sender(business, from),
                to: vec![r.address.clone()],
                subject: subject.unwrap_or_default(),
                html,
                text: Some(text),
                reply_to: None,
                headers: vec![
                    ("List-Unsubscribe".into(), format!("<{link}>")),
                    (
                        "List-Unsubscribe-Post".into(),
                        "List-Unsubscribe=One-Click".into(),
                    ),
                ],
                attachments: Vec::new(),
            })
        });
        match made {
            Ok(email) => {
                emails.push(email);
                members.push(r.id);
            }
            Err(e) => outcomes.push(outcome(r.id, Err(e))),
        }
    }
    if emails.is_empty() {
        return outcomes;
    }
    // One attempt here: the claim's schedule retries, with the same key.
    let mut once = resend.clone();
    once.policy.max_attempts = 1;
    match once
        .send_batch(&emails, &batch.batch_id.to_string(), clock)
        .await
    {
        Ok(results) => {
            for (id, result) in members.iter().zip(results) {
                outcomes.push(outcome(*id, result.map_err(SendError::permanent)));
            }
        }
        Err(e) => outcomes.extend(members.iter().map(|id| outcome(*id, Err(e.clone())))),
    }
    outcomes
}

async fn send_sms(
    batch: &Batch,
    campaign: &Prepared,
    config: &Config,
    clock: &dyn Clock,
) -> Vec<Value> {
    let secret = config
        .secrets(LINK_SECRETS_VAR)
        .first()
        .map(|s| s.as_bytes());
    let Some(twilio) = config.providers.twilio.as_ref() else {
        let e = SendError::transient("SMS is not configured (TWILIO_*)");
        return batch
            .recipients
            .iter()
            .map(|r| outcome(r.id, Err(e.clone())))
            .collect();
    };
    let mut twilio = twilio.clone();
    twilio.policy.max_attempts = 1;
    twilio.status_callback = Some(format!("{}/twilio-webhook", config.public_functions_url));
    let twilio = &twilio;
    // A batch claimed before may have reached Twilio: look before sending.
    let since = (batch.attempt > 1)
        .then_some(batch.since.as_deref())
        .flatten();
    futures::stream::iter(&batch.recipients)
        .map(|r| async move {
            let result = async {
                let merge = merge_values(r, campaign, secret, config)?;
                let (_, _, text) = campaign.render(&merge).map_err(SendError::permanent)?;
                let (_, segments) = crate::providers::sms::segments(&text);
                if segments > MAX_SMS_SEGMENTS {
                    return Err(SendError::permanent(format!(
                        "the message takes {segments} SMS segments for this client (at most {MAX_SMS_SEGMENTS})"
                    )));
                }
                twilio.send_sms(&r.address, &text, since, clock).await
            }
            .await;
            outcome(r.id, result)
        })
        .buffer_unordered(SMS_CONCURRENCY)
        .collect()
        .await
}

/// Claims, sends and records campaign batches on `channels` until nothing
/// is due, the rate leaves nothing to claim before the deadline, or the
/// budget is spent. `only` keeps to one campaign.
pub async fn drain(
    config: &Config,
    clock: &dyn Clock,
    only: Option<Uuid>,
    budget: Budget,
) -> Result<Drained> {
    let key = config
        .service_role_key
        .as_deref()
        .ok_or_else(|| ApiError::Internal("SUPABASE_SERVICE_ROLE_KEY is not set".into()))?;
    let mut done = Drained::default();
    let mut prepared: HashMap<Uuid, std::result::Result<Prepared, String>> = HashMap::new();
    let mut messages = 0u64;
    let channels: Vec<&str> = ["email", "sms"]
        .into_iter()
        .filter(|c| match *c {
            "email" => config.providers.resend.is_some(),
            _ => config.providers.twilio.is_some(),
        })
        .collect();
    loop {
        let mut claimed_any = false;
        let mut wait_ms: Option<u64> = None;
        for channel in &channels {
            if clock.monotonic_ms() >= budget.until_ms || messages >= budget.max_messages {
                done.cut_short = true;
                return Ok(done);
            }
            let rate = rate(config, channel);
            let mut args = json!({
                "channel": channel,
                "rate": rate,
                "max_batches": if *channel == "sms" { 1 } else { 10 },
                "batch_size": if *channel == "sms" { 20 } else { EMAIL_BATCH },
                "lease_seconds": LEASE_SECONDS,
            });
            if let Some(id) = only {
                args["campaign_id"] = json!(id);
            }
            let claimed: Claimed = config
                .rest
                .rpc_as("claim_campaign_batches", &args, key)
                .await?;
            if claimed.batches.is_empty() {
                if claimed.more && claimed.wait_ms > 0 {
                    wait_ms = Some(wait_ms.map_or(claimed.wait_ms, |w| w.min(claimed.wait_ms)));
                }
                continue;
            }
            claimed_any = true;
            for (id, row) in &claimed.campaigns {
                prepared.entry(*id).or_insert_with(|| {
                    let rendered: std::result::Result<Rendered, String> = serde_json::from_value(
                        row.content.get("rendered").cloned().unwrap_or(Value::Null),
                    )
                    .map_err(|e| format!("the campaign has no rendered content: {e}"));
                    rendered.and_then(|r| Prepared::new(&r, &row.channel, row.started_at))
                });
            }
            let prepared = &prepared;
            let outcomes: Vec<Vec<Value>> = futures::stream::iter(&claimed.batches)
                .map(|batch| async move {
                    match prepared.get(&batch.campaign_id) {
                        Some(Ok(campaign)) if campaign.channel == "sms" => {
                            send_sms(batch, campaign, config, clock).await
                        }
                        Some(Ok(campaign)) => send_emails(batch, campaign, config, clock).await,
                        Some(Err(e)) => {
                            let e = SendError::permanent(e.clone());
                            batch
                                .recipients
                                .iter()
                                .map(|r| outcome(r.id, Err(e.clone())))
                                .collect()
                        }
                        None => {
                            let e = SendError::transient(
                                "the campaign was not returned with its batch",
                            );
                            batch
                                .recipients
                                .iter()
                                .map(|r| outcome(r.id, Err(e.clone())))
                                .collect()
                        }
                    }
                })
                .buffer_unordered(10)
                .collect()
                .await;
            let outcomes: Vec<Value> = outcomes.into_iter().flatten().collect();
            done.batches += claimed.batches.len() as u64;
            messages += outcomes.len() as u64;
            // If recording fails, the claims run out and the batches are sent
            // again under the same keys: the provider answers from its record.
            #[derive(Deserialize)]
            #[serde(crate = "serde")]
            struct Recorded {
                sent: u64,
                failed: u64,
                retrying: u64,
            }
            let recorded: Recorded = config
                .rest
                .rpc_as(
                    "record_campaign_outcomes",
                    &json!({"outcomes": outcomes, "backoff_seconds": 5}),
                    key,
                )
                .await?;
            done.sent += recorded.sent;
            done.failed += recorded.failed;
            done.retrying += recorded.retrying;
        }
        if !claimed_any {
            let Some(wait) = wait_ms else {
                return Ok(done);
            };
            if clock.monotonic_ms() + wait as f64 >= budget.until_ms {
                done.cut_short = true;
                return Ok(done);
            }
            clock
                .sleep(std::time::Duration::from_millis(wait.max(5)))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_are_stable_and_verify() {
        let id = Uuid::from_u128(7);
        let a = unsubscribe_token(b"k", id, "email", 1_000).unwrap();
        assert_eq!(a, unsubscribe_token(b"k", id, "email", 1_000).unwrap());
        assert_ne!(a, unsubscribe_token(b"k", id, "sms", 1_000).unwrap());
        let link = signed_link::verify(&[b"k"], UNSUBSCRIBE_PURPOSE, &a, 2_000).unwrap();
        assert_eq!(link.subject, format!("{id}:email"));
        assert_eq!(link.expires_at, 1_000 + LINK_TTL_SECS);
    }

    #[test]
    fn outcomes_say_what_the_sql_needs() {
        assert_eq!(
            outcome(3, Ok("m".into())),
            json!({"id": 3, "provider_message_id": "m"})
        );
        let stop = outcome(
            4,
            Err(SendError::permanent("twilio 400 (21610): unsubscribed")),
        );
        assert_eq!(stop["unsubscribed"], true);
        assert_eq!(stop["permanent"], true);
        let later = outcome(
            5,
            Err(SendError::Transient {
                reason: "429".into(),
                retry_after: Some(std::time::Duration::from_secs(2)),
                ambiguous: false,
            }),
        );
        assert_eq!(later["permanent"], false);
        assert_eq!(later["unsubscribed"], false);
        assert_eq!(later["retry_after_seconds"], 2.0);
    }

    #[test]
    fn a_prepared_campaign_renders_each_recipient_escaped() {
        let rendered = Rendered {
            subject: Some("News for {{client.name}}".into()),
            html: Some("<p>Hi {{client.name}}</p><a href=\"{{unsubscribe_url}}\">x</a>".into()),
            text: "Hi {{client.name}}".into(),
        };
        let p = Prepared::new(&rendered, "email", 0).unwrap();
        let merge = json!({"client": {"name": "A & <B>"}, "business": {"name": "S"}, "unsubscribe_url": "u?a=1&b=2"});
        let (s, h, t) = p.render(&merge).unwrap();
        assert_eq!(s.unwrap(), "News for A & <B>");
        assert_eq!(
            h.unwrap(),
            "<p>Hi A &amp; &lt;B&gt;</p><a href=\"u?a=1&amp;b=2\">x</a>"
        );
        assert_eq!(t, "Hi A & <B>");
        assert!(p.render(&json!({})).unwrap_err().contains("client"));
        assert!(Prepared::new(
            &Rendered {
                text: "{{#if}}".into(),
                ..Default::default()
            },
            "sms",
            0
        )
        .is_err());
    }

    #[test]
    fn rates_come_from_the_environment_within_bounds() {
        let mut env: std::collections::BTreeMap<String, String> = [
            ("SUPABASE_URL", "http://gw"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("JWT_SECRET", "secret-secret-secret-secret-secret!"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Config::from_env(&env).unwrap();
        assert_eq!((rate(&c, "email"), rate(&c, "sms")), (2.0, 1.0));
        env.insert("RESEND_MAX_RPS".into(), "5".into());
        env.insert("TWILIO_MAX_MPS".into(), "-3".into());
        let c = Config::from_env(&env).unwrap();
        assert_eq!((rate(&c, "email"), rate(&c, "sms")), (5.0, 1.0));
    }
}
