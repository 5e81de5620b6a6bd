//! The channels the dispatcher delivers to, each a handler registered in
//! [`CHANNELS`] the same way: a channel's name (a row of
//! `public.notification_channels`), whether its rows are rendered from a
//! template, and the function that delivers one row. The dispatcher knows no
//! domain: what a message says is a `message_templates` row, rendered here
//! with `shared::template`; what a non-message channel does (a refund) lives
//! with its domain in `shared`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use shared::providers::resend::{sender, Attachment, Email};
use shared::providers::sms::fit_one_segment;
use shared::providers::{Clock, SendError};
use shared::serde::Deserialize;
use shared::serde_json::Value;
use shared::template::{Escape, Template};
use shared::{utc_day, Config};

use crate::Notification;

/// A template's parts, as `message_templates_for` returns them.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Parts {
    pub subject: Option<String>,
    pub html: Option<String>,
    pub body: Option<String>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Email {
        subject: String,
        html: String,
        text: String,
    },
    /// An SMS, or a Slack text: one body.
    Text(String),
}

/// Any one text value of a payload is cut to this many characters (with "…")
/// before rendering; the database bounds member text too, this keeps a
/// message bounded whatever a payload holds.
pub const MAX_TEXT_CHARS: usize = 2000;
/// An email's subject, HTML and text together; past it the row is dead
/// (a permanent failure with this reason) rather than sent.
pub const MAX_EMAIL_BYTES: usize = 512 * 1024;

type Sending<'a> = Pin<Box<dyn Future<Output = Result<String, SendError>> + 'a>>;

/// One channel's handler.
pub struct Channel {
    pub name: &'static str,
    /// Whether its rows are rendered from a `message_templates` row first.
    pub renders: bool,
    /// Delivers one row; the provider's message id on success.
    pub deliver:
        for<'a> fn(&'a Notification, Option<Message>, &'a Config, &'a dyn Clock) -> Sending<'a>,
}

/// Every channel this dispatcher delivers. A channel in the table without a
/// handler here waits (a transient failure) until one is deployed.
pub const CHANNELS: &[Channel] = &[
    Channel {
        name: "email",
        renders: true,
        deliver: |n, m, c, k| Box::pin(email(n, m, c, k)),
    },
    Channel {
        name: "sms",
        renders: true,
        deliver: |n, m, c, k| Box::pin(sms(n, m, c, k)),
    },
    Channel {
        name: "slack",
        renders: true,
        deliver: |n, m, c, k| Box::pin(slack(n, m, c, k)),
    },
    Channel {
        name: "stripe",
        renders: false,
        deliver: |n, _, c, k| Box::pin(shared::refunds::deliver_queued(&n.payload, c, k)),
    },
    Channel {
        name: "webhook",
        renders: false,
        deliver: |n, _, c, k| Box::pin(webhook(n, c, k)),
    },
];

/// A workflow's webhook step: the row's `payload.body` POSTed to its
/// recipient URL, signed with the tenant's secret (`shared::outbound`).
/// The row's id is the `webhook-id`, the same on every retry.
async fn webhook(
    n: &Notification,
    config: &Config,
    clock: &dyn Clock,
) -> Result<String, SendError> {
    let url = n
        .recipient
        .as_deref()
        .ok_or_else(|| SendError::permanent("a webhook row has no URL"))?;
    let body = n
        .payload
        .get("body")
        .ok_or_else(|| SendError::permanent("a webhook row has no body"))?
        .to_string();
    let key = config
        .service_role_key
        .as_deref()
        .ok_or_else(|| SendError::transient("SUPABASE_SERVICE_ROLE_KEY is not set"))?;
    let secrets = config
        .rest
        .rpc(
            "webhook_secrets_for",
            &shared::serde_json::json!({"tenant_ids": [n.tenant_id]}),
            key,
        )
        .await
        .map_err(|e| SendError::transient(format!("reading the signing secret: {e:?}")))?;
    let secret = secrets
        .get(&n.tenant_id)
        .and_then(Value::as_str)
        .ok_or_else(|| SendError::transient("the tenant has no signing secret"))?;
    let allow = shared::outbound::Allow::parse(config.var("WEBHOOK_ALLOW_HOSTS"));
    shared::outbound::deliver(url, body.as_bytes(), &n.id, secret, &allow, clock).await
}

pub fn channel(name: &str) -> Option<&'static Channel> {
    CHANNELS.iter().find(|c| c.name == name)
}

/// Renders a row's payload with its template for `channel`: an email's
/// subject and text are plain, its html is HTML; an SMS is plain text fitted
/// to one segment where it can be; Slack text is escaped as Slack asks.
pub fn render(parts: &Parts, channel: &str, payload: &Value) -> Result<Message, String> {
    let payload = &bounded(payload);
    let part = |name: &str, text: &Option<String>, escape: Escape| -> Result<String, String> {
        let source = text
            .as_deref()
            .ok_or_else(|| format!("the {channel} template has no {name}"))?;
        parsed(name, source)?
            .render(payload, escape)
            .map_err(|e| e.to_string())
    };
    match channel {
        "email" => {
            let subject = part("subject", &parts.subject, Escape::None)?;
            let html = part("html", &parts.html, Escape::Html)?;
            let text = part("body", &parts.body, Escape::None)?;
            let size = subject.len() + html.len() + text.len();
            if size > MAX_EMAIL_BYTES {
                return Err(format!(
                    "the email would be {size} bytes, over the {MAX_EMAIL_BYTES}-byte limit"
                ));
            }
            Ok(Message::Email {
                subject,
                html,
                text,
            })
        }
        "sms" => Ok(Message::Text(fit_one_segment(&part(
            "body",
            &parts.body,
            Escape::None,
        )?))),
        _ => Ok(Message::Text(part("body", &parts.body, Escape::Slack)?)),
    }
}

/// Templates parsed in this isolate, by part and source text: a batch of a
/// thousand confirmations parses each part once, not a thousand times.
/// Bounded; an edited template is new text, so it is parsed afresh.
const PARSED_CAPACITY: usize = 256;

thread_local! {
    static PARSED: RefCell<HashMap<(String, String), Rc<Template>>> = RefCell::default();
}

fn parsed(part: &str, source: &str) -> Result<Rc<Template>, String> {
    let key = (part.to_owned(), source.to_owned());
    if let Some(t) = PARSED.with(|p| p.borrow().get(&key).cloned()) {
        return Ok(t);
    }
    let template = Rc::new(Template::parse_part(part, source).map_err(|e| e.to_string())?);
    PARSED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= PARSED_CAPACITY {
            p.clear();
        }
        p.insert(key, template.clone());
    });
    Ok(template)
}

/// The payload with every string cut to [`MAX_TEXT_CHARS`].
fn bounded(value: &Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_TEXT_CHARS => {
            let mut cut: String = s.chars().take(MAX_TEXT_CHARS - 1).collect();
            cut.push('…');
            Value::String(cut)
        }
        Value::Array(items) => Value::Array(items.iter().map(bounded).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), bounded(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn rendered(m: Option<Message>) -> Result<Message, SendError> {
    m.ok_or_else(|| SendError::permanent("the message was not rendered"))
}

/// The files a row attaches: `payload.attachments`, each `{filename, path,
/// content_type?}`, `path` being a URL the provider fetches (a scheduled
/// report's signed link). Entries without both are left out.
pub fn attachments(payload: &Value) -> Vec<Attachment> {
    payload
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(10)
        .filter_map(|a| {
            Some(Attachment {
                filename: a.get("filename")?.as_str()?.to_owned(),
                path: a.get("path")?.as_str()?.to_owned(),
                content_type: a
                    .get("content_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

async fn email(
    n: &Notification,
    m: Option<Message>,
    config: &Config,
    clock: &dyn Clock,
) -> Result<String, SendError> {
    let Message::Email {
        subject,
        html,
        text,
    } = rendered(m)?
    else {
        return Err(SendError::permanent(
            "an email needs subject, html and body",
        ));
    };
    let to = n
        .recipient
        .clone()
        .ok_or_else(|| SendError::permanent("the client has no email address"))?;
    let (resend, from) = config.providers.email()?;
    // The sender's name is the payload's `sender_name`, or its `business_name`.
    let name = ["sender_name", "business_name"]
        .iter()
        .find_map(|k| n.payload.get(*k).and_then(Value::as_str))
        .unwrap_or("");
    let email = Email {
        from: sender(name, from),
        to: vec![to],
        subject,
        html: Some(html),
        text: Some(text),
        reply_to: None,
        headers: Vec::new(),
        attachments: attachments(&n.payload),
    };
    resend.send(&email, &n.id, clock).await
}

async fn sms(
    n: &Notification,
    m: Option<Message>,
    config: &Config,
    clock: &dyn Clock,
) -> Result<String, SendError> {
    let Message::Text(body) = rendered(m)? else {
        return Err(SendError::permanent("an SMS has one body"));
    };
    let to = n
        .recipient
        .clone()
        .ok_or_else(|| SendError::permanent("the client has no phone number"))?;
    let twilio = config
        .providers
        .twilio
        .as_ref()
        .ok_or_else(|| SendError::transient("SMS is not configured (TWILIO_*)"))?;
    // An earlier attempt may have reached Twilio before it failed.
    let since = (n.attempts > 1).then(|| {
        n.created_at
            .get(..10)
            .map(str::to_owned)
            .unwrap_or_else(|| utc_day(clock.now_unix_secs()))
    });
    twilio.send_sms(&to, &body, since.as_deref(), clock).await
}

async fn slack(
    n: &Notification,
    m: Option<Message>,
    config: &Config,
    clock: &dyn Clock,
) -> Result<String, SendError> {
    let Message::Text(text) = rendered(m)? else {
        return Err(SendError::permanent("a Slack message has one body"));
    };
    let slack = config
        .providers
        .slack
        .as_ref()
        .ok_or_else(|| SendError::transient("Slack is not configured (SLACK_WEBHOOK_URL)"))?;
    slack.post(&text, None, clock).await?;
    // Slack's webhook answers `ok` with no id; the row's id is the message's.
    Ok(format!("slack:{}", n.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json::json;

    fn sms_parts(body: &str) -> Parts {
        Parts {
            body: Some(body.into()),
            ..Parts::default()
        }
    }

    #[test]
    fn every_channel_is_registered_once() {
        let mut names: Vec<_> = CHANNELS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names, ["email", "slack", "sms", "stripe", "webhook"]);
        assert!(channel("fax").is_none());
        assert!(!channel("stripe").unwrap().renders);
    }

    #[test]
    fn huge_text_is_cut_before_rendering_and_huge_emails_are_refused() {
        let long = "x".repeat(5000);
        let Message::Text(t) = render(&sms_parts("{{a}}"), "slack", &json!({"a": long})).unwrap()
        else {
            panic!()
        };
        assert_eq!(t.chars().count(), MAX_TEXT_CHARS);
        assert!(t.ends_with('…'));
        let items: Vec<Value> = (0..400).map(|_| json!({"n": "y".repeat(1999)})).collect();
        let parts = Parts {
            subject: Some("s".into()),
            html: Some("{{#each items}}{{n}}{{/each}}".into()),
            body: Some("b".into()),
        };
        let e = render(&parts, "email", &json!({ "items": items })).unwrap_err();
        // The template engine stops first: no part renders past 512 KiB either.
        assert!(e.contains("524288"), "{e}");
    }

    #[test]
    fn a_missing_part_or_value_is_a_reason_not_a_blank() {
        let e = render(&Parts::default(), "email", &json!({})).unwrap_err();
        assert_eq!(e, "the email template has no subject");
        let e = render(&sms_parts("Hi {{name}}"), "sms", &json!({})).unwrap_err();
        assert!(e.contains("name"), "{e}");
    }

    #[test]
    fn escaping_follows_the_channel() {
        let p = json!({"v": "<b>&"});
        let text = |channel: &str| match render(&sms_parts("{{v}}"), channel, &p).unwrap() {
            Message::Text(t) => t,
            m => panic!("{m:?}"),
        };
        assert_eq!(text("sms"), "<b>&");
        assert_eq!(text("slack"), "&lt;b&gt;&amp;");
    }

    #[test]
    fn sender_names_cannot_break_the_header() {
        assert_eq!(
            sender("Acme \"<x>\"\r\n", "o@a.test"),
            "\"Acme x\" <o@a.test>"
        );
    }

    #[test]
    fn attachments_come_from_the_payload() {
        let p = json!({"attachments": [
            {"filename": "r.pdf", "path": "https://x/r.pdf", "content_type": "application/pdf"},
            {"filename": "no-path.pdf"}
        ]});
        assert_eq!(
            attachments(&p),
            vec![Attachment {
                filename: "r.pdf".into(),
                path: "https://x/r.pdf".into(),
                content_type: Some("application/pdf".into()),
            }]
        );
        assert!(attachments(&json!({})).is_empty());
    }
}
