//! `health`: is this deployment able to serve? For uptime monitors and load
//! balancers; no authentication.
//!
//! `GET /functions/v1/health` checks, at the same time and each within
//! [`CHECK_TIMEOUT_MS`]:
//! - **database**: one row read through PostgREST with the service role
//!   (`tenants`, `limit=1`), so the REST server, its pool and Postgres all
//!   answered;
//! - **storage**: the Storage API lists its buckets for the service role;
//! - **providers**: for each one configured (Resend, Twilio, Stripe, Klaviyo),
//!   whether its API host answers HTTP at all, and how fast. No provider API
//!   is called and no key is sent; an unconfigured provider is reported, not
//!   probed. Slack is reported as configured or not: its webhook URL is the
//!   secret itself.
//!
//! `200` with `"status": "healthy"` when the database and Storage answered,
//! `503` with `"status": "unhealthy"` otherwise. A provider that does not
//! answer is shown as `error` but does not make the service unhealthy: its
//! messages wait in the outbox until it is back.
//!
//! The response is seed 003's shape, with `storage` and `providers` added
//! under `checks`. A `503` also carries the one envelope's `error`
//! (`SERVICE_UNHEALTHY`) beside the document, and failures of the request
//! itself (a wrong method) are the envelope alone.

use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use shared::providers::{klaviyo, resend, stripe, twilio, Clock};
use shared::serde_json::{json, Map, Value};
use shared::{utc_day, ApiError, Auth, Config, Ctx, Endpoint, Request, Response, Result};

/// Each check's limit, in milliseconds.
pub const CHECK_TIMEOUT_MS: u64 = 5000;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub ok: bool,
    pub duration_ms: u64,
    /// Why it failed; never a secret or a token.
    pub message: Option<String>,
}

impl Check {
    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("status".into(), json!(if self.ok { "ok" } else { "error" }));
        if let Some(m) = &self.message {
            o.insert("message".into(), json!(m));
        }
        o.insert("duration".into(), json!(self.duration_ms));
        Value::Object(o)
    }
}

/// Runs `probe` within [`CHECK_TIMEOUT_MS`] and times it.
async fn timed<F>(clock: &dyn Clock, probe: F) -> Check
where
    F: Future<Output = std::result::Result<(), String>>,
{
    let started = clock.monotonic_ms();
    let limit = clock.sleep(Duration::from_millis(CHECK_TIMEOUT_MS));
    let outcome = match select(Box::pin(probe), limit).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err("timed out".to_owned()),
    };
    let duration_ms = (clock.monotonic_ms() - started).max(0.0).round() as u64;
    Check {
        ok: outcome.is_ok(),
        duration_ms,
        message: outcome.err(),
    }
}

/// What a failed check says: the error's code and the public part of its message.
fn reason(e: ApiError) -> String {
    format!("{}: {}", e.code(), e.message())
}

async fn database(config: &Config) -> std::result::Result<(), String> {
    let key = config
        .service_role_key
        .as_deref()
        .ok_or("SUPABASE_SERVICE_ROLE_KEY is not set")?;
    let rows = config
        .rest
        .select("tenants", "select=id&limit=1", key)
        .await
        .map_err(reason)?;
    match rows.is_array() {
        true => Ok(()),
        false => Err(format!("PostgREST answered {rows}")),
    }
}

async fn storage(config: &Config) -> std::result::Result<(), String> {
    let key = config
        .service_role_key
        .as_deref()
        .ok_or("SUPABASE_SERVICE_ROLE_KEY is not set")?;
    let buckets = config.storage.list_buckets(key).await.map_err(reason)?;
    match buckets.is_array() {
        true => Ok(()),
        false => Err(format!("Storage answered {buckets}")),
    }
}

/// Any HTTP answer from `base_url` means the host is reachable.
async fn reachable(base_url: String) -> std::result::Result<(), String> {
    reqwest::Client::new()
        .get(&base_url)
        .send()
        .await
        .map(drop)
        .map_err(|e| format!("unreachable: {}", e.without_url()))
}

/// The providers and the host each would be reached at (`None`: not configured).
pub fn provider_hosts(config: &Config) -> Vec<(&'static str, Option<String>)> {
    let base = |var: &str, default: &str| config.var(var).unwrap_or(default).to_owned();
    let p = &config.providers;
    vec![
        (
            "resend",
            p.resend
                .as_ref()
                .map(|_| base("RESEND_BASE_URL", resend::DEFAULT_BASE_URL)),
        ),
        (
            "twilio",
            p.twilio
                .as_ref()
                .map(|_| base("TWILIO_BASE_URL", twilio::DEFAULT_BASE_URL)),
        ),
        (
            "stripe",
            p.stripe
                .as_ref()
                .map(|_| base("STRIPE_BASE_URL", stripe::DEFAULT_BASE_URL)),
        ),
        (
            "klaviyo",
            p.klaviyo
                .as_ref()
                .map(|_| base("KLAVIYO_BASE_URL", klaviyo::DEFAULT_BASE_URL)),
        ),
    ]
}

/// Seconds since the epoch as ISO 8601 UTC, `2026-11-27T07:15:03Z`.
pub fn iso8601(unix_secs: i64) -> String {
    let s = unix_secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_day(unix_secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The response body, and whether the service is healthy.
pub fn report(
    now: i64,
    database: &Check,
    storage: &Check,
    providers: &[(&str, Option<Check>)],
    slack: bool,
    response_ms: u64,
    uptime_secs: f64,
) -> (bool, Value) {
    let healthy = database.ok && storage.ok;
    let failed: Vec<&str> = [("the database", database), ("Storage", storage)]
        .iter()
        .filter(|(_, c)| !c.ok)
        .map(|(name, _)| *name)
        .collect();
    let mut list = Map::new();
    for (name, check) in providers {
        let entry = match check {
            Some(c) => c.to_json(),
            None => json!({"status": "not_configured"}),
        };
        list.insert((*name).to_owned(), entry);
    }
    list.insert(
        "slack".into(),
        json!({"status": if slack { "configured" } else { "not_configured" }}),
    );
    let mut body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "timestamp": iso8601(now),
        "checks": {
            "database": database.to_json(),
            "storage": storage.to_json(),
            "providers": list,
            "service": {"status": "ok"},
        },
        "responseTime": response_ms,
        "uptime": (uptime_secs * 10.0).round() / 10.0,
    });
    if !healthy {
        // The one envelope's `error`, beside the health document, for clients
        // that read every failure the same way.
        body["error"] = json!({
            "code": "SERVICE_UNHEALTHY",
            "message": format!("{} did not answer", failed.join(" and ")),
            "details": null,
        });
    }
    (healthy, body)
}

/// The function.
pub struct Health;

impl Endpoint for Health {
    const NAME: &'static str = "health";
    /// HEAD too: many load balancers probe with it (the status is the answer).
    const METHODS: &'static [&'static str] = &["GET", "HEAD"];
    const AUTH: Auth = Auth::Public;
    const BODY_LIMIT: usize = 0;
    type Input = ();

    fn input(_: &Request, _now: i64) -> Result<()> {
        Ok(())
    }

    async fn run(_: (), ctx: &Ctx<'_>) -> Result<Response> {
        let clock = ctx.clock;
        let now_ms = clock.monotonic_ms();
        let (healthy, body) = match LAST.with(|l| l.borrow().clone()) {
            Some(last) if now_ms - last.at_ms < CACHE_MS => (last.healthy, last.body),
            _ => {
                let (healthy, body) = check(ctx.config, clock).await;
                let at_ms = clock.monotonic_ms();
                LAST.with(|l| {
                    *l.borrow_mut() = Some(Report {
                        at_ms,
                        healthy,
                        body: body.clone(),
                    })
                });
                (healthy, body)
            }
        };
        Ok(Response::json(if healthy { 200 } else { 503 }, &body)
            .with_header("cache-control", "no-store"))
    }
}

/// How long an isolate answers from its last report: a monitor polling many
/// times a second costs one round of checks per isolate every 2 s.
pub const CACHE_MS: f64 = 2000.0;

#[derive(Clone)]
struct Report {
    at_ms: f64,
    healthy: bool,
    body: Value,
}

thread_local! {
    static LAST: std::cell::RefCell<Option<Report>> = const { std::cell::RefCell::new(None) };
}

/// Runs every check at once and builds the report.
async fn check(config: &Config, clock: &dyn Clock) -> (bool, Value) {
    let started = clock.monotonic_ms();
    let hosts = provider_hosts(config);
    let probes = hosts.iter().map(|(_, host)| async move {
        match host {
            Some(url) => Some(timed(clock, reachable(url.clone())).await),
            None => None,
        }
    });
    let (db, st, reached) = futures::join!(
        timed(clock, database(config)),
        timed(clock, storage(config)),
        futures::future::join_all(probes),
    );
    let providers: Vec<(&str, Option<Check>)> =
        hosts.iter().map(|(name, _)| *name).zip(reached).collect();
    let elapsed = (clock.monotonic_ms() - started).max(0.0).round() as u64;
    report(
        clock.now_unix_secs(),
        &db,
        &st,
        &providers,
        config.providers.slack.is_some(),
        elapsed,
        // The isolate's age: performance.now() counts from its start.
        clock.monotonic_ms() / 1000.0,
    )
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(Health);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ok: bool, ms: u64, message: Option<&str>) -> Check {
        Check {
            ok,
            duration_ms: ms,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_763_703), "2026-11-27T07:15:03Z");
    }

    #[test]
    fn healthy_only_when_the_database_and_storage_answer() {
        let providers = [
            ("resend", Some(check(false, 5000, Some("timed out")))),
            ("twilio", None),
        ];
        let (healthy, body) = report(
            0,
            &check(true, 12, None),
            &check(true, 7, None),
            &providers,
            true,
            13,
            42.04,
        );
        assert!(
            healthy,
            "a provider down does not make the service unhealthy"
        );
        assert_eq!(body["status"], "healthy");
        assert_eq!(
            body["checks"]["database"],
            json!({"status": "ok", "duration": 12})
        );
        assert_eq!(
            body["checks"]["providers"]["resend"],
            json!({"status": "error", "message": "timed out", "duration": 5000})
        );
        assert_eq!(
            body["checks"]["providers"]["twilio"]["status"],
            "not_configured"
        );
        assert_eq!(body["checks"]["providers"]["slack"]["status"], "configured");
        assert_eq!(body["checks"]["service"]["status"], "ok");
        assert_eq!(
            (body["responseTime"].as_u64(), body["uptime"].as_f64()),
            (Some(13), Some(42.0))
        );

        let down = check(false, 3, Some("SERVICE_UNAVAILABLE: connection refused"));
        let (healthy, body) = report(0, &down, &check(true, 1, None), &[], false, 4, 1.0);
        assert!(!healthy);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["checks"]["database"]["status"], "error");
        assert_eq!(body["error"]["code"], "SERVICE_UNHEALTHY");
        assert_eq!(body["error"]["message"], "the database did not answer");
        assert_eq!(
            body["checks"]["database"]["message"],
            "SERVICE_UNAVAILABLE: connection refused"
        );
        let (healthy, _) = report(0, &check(true, 1, None), &down, &[], false, 4, 1.0);
        assert!(!healthy, "Storage down is unhealthy too");
    }
}
