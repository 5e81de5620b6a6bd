//! The provider clients against the provider sandbox, over real HTTP.
//!
//! These need a running sandbox, so they are `#[ignore]`d in a plain
//! `cargo test`; scripts/test runs them with `--ignored` once its stack is up,
//! with SANDBOX_URL set. Each test uses its own recipients, so they can share
//! the sandbox; faults are set per provider and cleared afterwards.

use std::time::Duration;

use serde_json::{json, Value};
use shared::providers::resend::{Email, Resend};
use shared::providers::{klaviyo::Klaviyo, slack::Slack, twilio::Twilio, SendError};

mod common;
use common::TokioClock;

fn sandbox() -> String {
    std::env::var("SANDBOX_URL").expect("SANDBOX_URL: run through scripts/test")
}

async fn faults(spec: Value) {
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox()))
        .body(spec.to_string())
        .send()
        .await
        .unwrap();
}

async fn sent(provider: &str) -> Vec<Value> {
    let url = format!("{}/_sandbox/sent?provider={provider}", sandbox());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn tag() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn email(to: &str) -> Email {
    Email {
        from: "Sandbox Test <t@commerce-edge.test>".into(),
        to: vec![to.into()],
        subject: "hello".into(),
        html: Some("<p>hello</p>".into()),
        text: Some("hello".into()),
        reply_to: None,
        headers: Vec::new(),
        attachments: Vec::new(),
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the provider sandbox (scripts/test)"]
async fn resend_retries_a_429_and_a_retry_with_the_same_key_sends_once() {
    let resend = Resend::new(&format!("{}/resend", sandbox()), "re_sandbox_key");
    let to = format!("r-{}@client.test", tag());
    faults(json!({"provider": "resend", "mode": "429", "count": 1, "retry_after": 1})).await;
    let id = resend
        .send(&email(&to), &format!("key-{to}"), &TokioClock)
        .await
        .unwrap();
    let again = resend
        .send(&email(&to), &format!("key-{to}"), &TokioClock)
        .await
        .unwrap();
    assert_eq!(id, again, "the idempotency key returns the first email");
    let mine: Vec<_> = sent("resend")
        .await
        .into_iter()
        .filter(|s| s["body"]["to"][0] == to.as_str())
        .collect();
    assert_eq!(mine.len(), 1);

    let mut changed = email(&to);
    changed.subject = "different".into();
    let err = resend
        .send(&changed, &format!("key-{to}"), &TokioClock)
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.reason().contains("invalid_idempotent_request"));

    let wrong_key = Resend::new(&format!("{}/resend", sandbox()), "re_wrong");
    let err = wrong_key
        .send(&email(&to), "k2", &TokioClock)
        .await
        .unwrap_err();
    assert!(
        !err.is_permanent() && err.reason().contains("invalid_api_key"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the provider sandbox (scripts/test)"]
async fn twilio_sends_refuses_bad_numbers_and_does_not_resend_after_a_lost_reply() {
    let mut twilio = Twilio::new(
        &format!("{}/twilio", sandbox()),
        "ACsandbox0000000000000000000000000",
        "sandbox_auth_token",
        "+15550001000",
    );
    twilio.policy.timeout = Duration::from_millis(800);
    let t = tag();
    let sid = twilio
        .send_sms("+15557770001", &format!("hello {t}"), None, &TokioClock)
        .await
        .unwrap();
    assert!(sid.starts_with("SM"));

    let err = twilio
        .send_sms("12345", "x", None, &TokioClock)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SendError::permanent(
            "twilio 400 (21211): The 'To' number 12345 is not a valid phone number."
        )
    );

    // Twilio accepts the message, but the reply never arrives: no second send.
    faults(json!({"provider": "twilio", "mode": "hang_after_accept", "count": 1})).await;
    let body = format!("once {t}");
    let sid = twilio
        .send_sms("+15557770002", &body, None, &TokioClock)
        .await
        .unwrap();
    faults(json!({})).await;
    let copies: Vec<_> = sent("twilio")
        .await
        .into_iter()
        .filter(|s| s["body"]["body"] == body.as_str())
        .collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["id"], sid.as_str());

    let bad = Twilio::new(
        &format!("{}/twilio", sandbox()),
        "ACsandbox0000000000000000000000000",
        "wrong",
        "+15550001000",
    );
    let err = bad
        .send_sms("+15557770003", "x", None, &TokioClock)
        .await
        .unwrap_err();
    assert!(
        !err.is_permanent() && err.reason().contains("20003"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the provider sandbox (scripts/test)"]
async fn klaviyo_upserts_profiles_and_deduplicates_events() {
    let klaviyo = Klaviyo::new(
        &format!("{}/klaviyo", sandbox()),
        "pk_sandbox_key",
        "2026-04-15",
    );
    let mail = format!("k-{}@client.test", tag());
    let first = klaviyo
        .upsert_profile(&json!({"email": mail, "first_name": "A"}), &TokioClock)
        .await
        .unwrap();
    let second = klaviyo
        .upsert_profile(&json!({"email": mail, "first_name": "B"}), &TokioClock)
        .await
        .unwrap();
    assert_eq!(first, second, "the second call updates the same profile");
    let unique = format!("evt-{mail}");
    for _ in 0..2 {
        klaviyo
            .create_event(
                "Placed Order",
                &mail,
                &json!({"total": 12.5}),
                &unique,
                &TokioClock,
            )
            .await
            .unwrap();
    }
    let events: Vec<_> = sent("klaviyo")
        .await
        .into_iter()
        .filter(|s| s["body"]["data"]["attributes"]["unique_id"] == unique.as_str())
        .collect();
    assert_eq!(events.len(), 1, "unique_id deduplicates");
    let err = klaviyo
        .upsert_profile(&json!({"first_name": "no id"}), &TokioClock)
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    let wrong = Klaviyo::new(&format!("{}/klaviyo", sandbox()), "pk_wrong", "2026-04-15");
    assert!(!wrong
        .upsert_profile(&json!({"email": mail}), &TokioClock)
        .await
        .unwrap_err()
        .is_permanent());
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the provider sandbox (scripts/test)"]
async fn slack_posts_and_reports_a_missing_channel_as_permanent() {
    let text = format!("stock low {}", tag());
    let slack = Slack::new(&format!("{}/slack/services/T000/B000/sandbox", sandbox()));
    faults(json!({"provider": "slack", "mode": "500", "count": 1})).await;
    slack.post(&text, None, &TokioClock).await.unwrap();
    let posts: Vec<_> = sent("slack")
        .await
        .into_iter()
        .filter(|s| s["body"]["text"] == text.as_str())
        .collect();
    assert_eq!(posts.len(), 1, "retried after a 500, posted once");
    let gone = Slack::new(&format!("{}/slack/services/T000/B000/gone", sandbox()));
    let err = gone.post("x", None, &TokioClock).await.unwrap_err();
    assert_eq!(err, SendError::permanent("slack 404: channel_not_found"));
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs the provider sandbox (scripts/test)"]
async fn resend_batches_respect_the_rate_limit_and_a_retried_batch_sends_once() {
    let resend = Resend::new(&format!("{}/resend", sandbox()), "re_sandbox_key");
    let run = tag();
    let batch = |n: usize| -> Vec<Email> {
        (0..3)
            .map(|i| email(&format!("b{n}-{i}-{run}@client.test")))
            .collect()
    };
    let limits = |spec: Value| async move {
        reqwest::Client::new()
            .post(format!("{}/_sandbox/limits", sandbox()))
            .body(spec.to_string())
            .send()
            .await
            .unwrap();
    };
    // Two requests a second for the account: four batches at once must wait
    // their turn (429 with Retry-After), and all arrive, each email once.
    limits(json!({"resend": 2})).await;
    let batches: Vec<Vec<Email>> = (0..4).map(batch).collect();
    let keys: Vec<String> = (0..4).map(|n| format!("batch-{run}-{n}")).collect();
    let sends = batches
        .iter()
        .zip(&keys)
        .map(|(b, k)| resend.send_batch(b, k, &TokioClock));
    let ids = futures::future::join_all(sends).await;
    limits(json!({})).await;
    let ids: Vec<Vec<String>> = ids
        .into_iter()
        .map(|r| r.unwrap().into_iter().map(Result::unwrap).collect())
        .collect();
    assert!(ids.iter().all(|i| i.len() == 3));
    let stats: Value = reqwest::get(format!("{}/_sandbox/stats", sandbox()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["resend:rate_limited"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    // The same batch under the same key again: the same ids, nothing sent.
    let again = resend
        .send_batch(&batches[0], &keys[0], &TokioClock)
        .await
        .unwrap();
    let again: Vec<String> = again.into_iter().map(Result::unwrap).collect();
    assert_eq!(again, ids[0]);
    let mine = sent("resend")
        .await
        .into_iter()
        .filter(|s| {
            s["body"]["to"][0]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!("{run}@client.test")))
        })
        .count();
    assert_eq!(mine, 12, "each email of the four batches once");
    // A different batch under a used key is refused for good.
    let err = resend
        .send_batch(&batches[1], &keys[0], &TokioClock)
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
}
