//! The provider clients over real HTTP, against an in-process mock server,
//! in a plain `cargo test`: what each client sends (method, path, auth,
//! idempotency key, body) and what it makes of each kind of answer. The
//! sandbox tests (`providers_against_sandbox.rs`) add the providers' own
//! rules on top, with a running stack.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::providers::resend::{Email, Resend};
use shared::providers::stripe::{RefundRequest, Stripe};
use shared::providers::{slack::Slack, twilio::Twilio};

mod common;
use common::TokioClock;

/// One request as the mock received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted reply: status, extra headers, body.
type Reply = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// A server on 127.0.0.1 that answers each request with the next scripted
/// reply (status, extra headers, body) and records what it was sent.
struct Mock {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn start(replies: Vec<Reply>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (reply, stream) in replies.into_iter().zip(listener.incoming()) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                );
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push(Seen {
                    method,
                    path,
                    headers,
                    body: String::from_utf8(body).unwrap(),
                });
                let (status, extra, text) = reply;
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(text);
                stream.write_all(out.as_bytes()).unwrap();
            }
        });
        Mock { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test(flavor = "current_thread")]
async fn resend_waits_out_a_429_and_resends_under_the_same_key() {
    let mock = Mock::start(vec![
        (
            429,
            vec![JSON, ("retry-after", "1")],
            r#"{"name":"rate_limit_exceeded","message":"slow down"}"#,
        ),
        (200, vec![JSON], r#"{"id":"em_1"}"#),
    ]);
    let resend = Resend::new(&mock.url, "re_key");
    let email = Email {
        from: "Acme <orders@acme.test>".into(),
        to: vec!["c@client.test".into()],
        subject: "Order WO-1 confirmed".into(),
        html: Some("<p>hi</p>".into()),
        text: Some("hi".into()),
        reply_to: None,
        headers: Vec::new(),
        attachments: Vec::new(),
    };
    let started = std::time::Instant::now();
    assert_eq!(
        resend.send(&email, "row-1", &TokioClock).await.unwrap(),
        "em_1"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was honoured"
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/emails"));
        assert_eq!(s.header("authorization"), Some("Bearer re_key"));
        assert_eq!(s.header("idempotency-key"), Some("row-1"));
        let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(body["to"][0], "c@client.test");
        assert_eq!(body["subject"], "Order WO-1 confirmed");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn twilio_sends_a_form_with_basic_auth_and_a_bad_number_is_permanent() {
    let mock = Mock::start(vec![
        (201, vec![JSON], r#"{"sid":"SM123","status":"queued"}"#),
        (
            400,
            vec![JSON],
            r#"{"code":21211,"message":"The 'To' number 12345 is not a valid phone number.","status":400}"#,
        ),
    ]);
    let twilio = Twilio::new(&mock.url, "ACsid", "token", "+15550001000");
    assert_eq!(
        twilio
            .send_sms("+15557770001", "hello", None, &TokioClock)
            .await
            .unwrap(),
        "SM123"
    );
    let err = twilio
        .send_sms("12345", "x", None, &TokioClock)
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.reason().contains("21211"), "{err:?}");
    let seen = mock.seen();
    assert_eq!(seen.len(), 2, "a permanent refusal is not retried");
    assert_eq!(seen[0].path, "/2010-04-01/Accounts/ACsid/Messages.json");
    // Basic base64("ACsid:token")
    assert_eq!(
        seen[0].header("authorization"),
        Some("Basic QUNzaWQ6dG9rZW4=")
    );
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&seen[0].body).unwrap();
    assert!(form.contains(&("To".into(), "+15557770001".into())));
    assert!(form.contains(&("From".into(), "+15550001000".into())));
    assert!(form.contains(&("Body".into(), "hello".into())));
}

#[tokio::test(flavor = "current_thread")]
async fn stripe_retries_a_500_with_the_same_key_and_version() {
    let mock = Mock::start(vec![
        (
            500,
            vec![JSON],
            r#"{"error":{"type":"api_error","message":"try again"}}"#,
        ),
        (
            200,
            vec![JSON],
            r#"{"id":"re_1","object":"refund","status":"succeeded","amount":1250}"#,
        ),
    ]);
    let stripe = Stripe::new(&mock.url, "sk_test_x", "2026-09-30.endive");
    let refund = RefundRequest {
        payment_intent: "pi_1".into(),
        amount: 1250,
        reason: "requested_by_customer",
        metadata: vec![("return_id".into(), "r1".into())],
    };
    let done = stripe
        .create_refund(&refund, "refund_r1", &TokioClock)
        .await
        .unwrap();
    assert_eq!(
        (done.id.as_str(), done.status.as_str()),
        ("re_1", "succeeded")
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(
            (s.method.as_str(), s.path.as_str()),
            ("POST", "/v1/refunds")
        );
        assert_eq!(s.header("idempotency-key"), Some("refund_r1"));
        assert_eq!(s.header("stripe-version"), Some("2026-09-30.endive"));
        assert_eq!(
            s.body,
            "payment_intent=pi_1&amount=1250&reason=requested_by_customer&metadata%5Breturn_id%5D=r1"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn slack_posts_json_and_an_unknown_channel_is_permanent() {
    let mock = Mock::start(vec![
        (200, vec![], "ok"),
        (404, vec![], "channel_not_found"),
    ]);
    let slack = Slack::new(&format!("{}/services/T/B/x", mock.url));
    slack
        .post("quota reached", None, &TokioClock)
        .await
        .unwrap();
    let err = slack.post("again", None, &TokioClock).await.unwrap_err();
    assert!(
        err.is_permanent() && err.reason().contains("channel_not_found"),
        "{err:?}"
    );
    let seen = mock.seen();
    assert_eq!(seen[0].path, "/services/T/B/x");
    assert_eq!(seen[0].body, r#"{"text":"quota reached"}"#);
}
