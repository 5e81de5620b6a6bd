//! What every provider call shares: the outcome of an HTTP exchange, the
//! transient/permanent split, and bounded retries with backoff.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Why a send did not succeed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// 429, 5xx, timeouts, resets, configuration the operator can fix. Retry later.
    Transient {
        reason: String,
        /// The provider said when to come back.
        retry_after: Option<Duration>,
        /// The provider may have processed the request (a timeout or a reset after
        /// sending): a provider without idempotency keys must be asked before resending.
        ambiguous: bool,
    },
    /// The provider rejected the message itself (bad recipient, invalid payload). Never retried.
    Permanent { reason: String },
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError::Transient {
            reason: reason.into(),
            retry_after: None,
            ambiguous: false,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent { .. })
    }

    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            SendError::Transient {
                ambiguous: true,
                ..
            }
        )
    }

    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. } | SendError::Permanent { reason } => reason,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Transient { retry_after, .. } => *retry_after,
            SendError::Permanent { .. } => None,
        }
    }
}

/// The parts of a provider's HTTP reply that classification reads.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl HttpReply {
    /// A reply without Retry-After.
    pub fn new(status: u16, body: &str) -> Self {
        HttpReply {
            status,
            retry_after: None,
            body: body.to_owned(),
        }
    }
}

/// Time, randomness and sleeping, from the host: `Date.now`, `Math.random` and
/// `setTimeout` in wasm; a fake in tests.
pub trait Clock {
    fn now_unix_secs(&self) -> i64;
    /// Uniform in [0, 1).
    fn jitter(&self) -> f64;
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()>>>;
    /// Milliseconds from a monotonic clock, for timings (only differences mean anything).
    fn monotonic_ms(&self) -> f64 {
        self.now_unix_secs() as f64 * 1000.0
    }
}

/// How often and how long a call is retried within one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time has been spent waiting.
    pub max_total_delay: Duration,
    /// Each attempt's timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_total_delay: Duration::from_secs(8),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failed` attempts: "full jitter" over base·2^(failed−1),
    /// capped at `max_delay`, and never shorter than the provider's Retry-After.
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << failed.saturating_sub(1).min(20))
            .min(self.max_delay);
        let jittered = exp.mul_f64(jitter.clamp(0.0, 1.0));
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub fn parse_retry_after(value: &str, now_unix_secs: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    let when = when.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs((when - now_unix_secs).max(0) as u64))
}

/// Runs `attempt(n)` (n from 1) until it succeeds, fails permanently, or the
/// policy is spent; then returns the last error. A Retry-After longer than the
/// time left is not waited for: the error goes back to the caller, whose own
/// schedule (the outbox) honours it.
pub async fn with_retries<T, A, F>(
    policy: &RetryPolicy,
    clock: &dyn Clock,
    mut attempt: A,
) -> Result<T, SendError>
where
    A: FnMut(u32) -> F,
    F: Future<Output = Result<T, SendError>>,
{
    let mut waited = Duration::ZERO;
    let mut n = 1;
    loop {
        let err = match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_permanent() => return Err(err),
            Err(err) => err,
        };
        if n >= policy.max_attempts {
            return Err(err);
        }
        let delay = policy.delay(n, err.retry_after(), clock.jitter());
        if waited + delay > policy.max_total_delay {
            return Err(err);
        }
        clock.sleep(delay).await;
        waited += delay;
        n += 1;
    }
}

/// Sends a built request with the policy's timeout and reads the reply.
/// Network failures are transient; a timeout or a broken reply is ambiguous.
pub async fn exchange(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    now_unix_secs: i64,
) -> Result<HttpReply, SendError> {
    let response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| SendError::Transient {
            reason: format!("request failed: {e}"),
            retry_after: None,
            ambiguous: may_have_arrived(&e),
        })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_unix_secs));
    let body = response.text().await.map_err(|e| SendError::Transient {
        reason: format!("reading the reply failed: {e}"),
        retry_after: None,
        ambiguous: true,
    })?;
    Ok(HttpReply {
        status,
        retry_after,
        body,
    })
}

/// Whether a failed request may still have reached the provider. Natively a
/// refused connection did not; fetch (wasm) cannot tell, so it may have.
#[cfg(not(target_arch = "wasm32"))]
fn may_have_arrived(e: &reqwest::Error) -> bool {
    !e.is_connect()
}
#[cfg(target_arch = "wasm32")]
fn may_have_arrived(_: &reqwest::Error) -> bool {
    true
}

/// The default split for statuses a provider does not explain further:
/// 408, 409, 425, 429 and 5xx are transient; other 4xx are permanent.
pub fn by_status(reply: &HttpReply, what: &str) -> SendError {
    let reason = format!(
        "{what}: HTTP {}: {}",
        reply.status,
        truncate(&reply.body, 300)
    );
    match reply.status {
        408 | 409 | 425 | 429 | 500..=599 => SendError::Transient {
            reason,
            retry_after: reply.retry_after,
            ambiguous: false,
        },
        _ => SendError::Permanent { reason },
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A clock whose sleeps return at once and are recorded.
    #[derive(Default)]
    pub struct FakeClock {
        pub slept: RefCell<Vec<Duration>>,
        pub jitter: f64,
    }

    impl Clock for FakeClock {
        fn now_unix_secs(&self) -> i64 {
            1_800_000_000
        }
        fn jitter(&self) -> f64 {
            self.jitter
        }
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
            self.slept.borrow_mut().push(duration);
            Box::pin(async {})
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_with_full_jitter_and_a_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None, 1.0), ms(250));
        assert_eq!(p.delay(2, None, 1.0), ms(500));
        assert_eq!(p.delay(3, None, 1.0), ms(1000));
        assert_eq!(p.delay(10, None, 1.0), ms(4000), "capped");
        assert_eq!(p.delay(3, None, 0.5), ms(500), "jitter scales it");
        assert_eq!(p.delay(3, None, 0.0), ms(0));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2)), 1.0),
            ms(2000),
            "Retry-After wins"
        );
        assert_eq!(p.delay(40, None, 1.0), ms(4000), "no overflow");
    }

    #[test]
    fn retry_after_in_seconds_and_as_an_http_date() {
        let now = 1_800_000_000; // Fri, 15 Jan 2027 08:00:00 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let date =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(now as u64 + 90));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(90)));
        let past =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(now as u64 - 90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn retries_transient_errors_then_succeeds() {
        let clock = FakeClock {
            jitter: 1.0,
            ..Default::default()
        };
        let mut calls = 0;
        let result =
            futures::executor::block_on(with_retries(&RetryPolicy::default(), &clock, |n| {
                calls += 1;
                async move {
                    if n < 3 {
                        Err(SendError::transient("503"))
                    } else {
                        Ok(n)
                    }
                }
            }));
        assert_eq!(result, Ok(3));
        assert_eq!(calls, 3);
        assert_eq!(*clock.slept.borrow(), vec![ms(250), ms(500)]);
    }

    #[test]
    fn permanent_errors_are_never_retried() {
        let clock = FakeClock::default();
        let mut calls = 0;
        let result: Result<(), _> =
            futures::executor::block_on(with_retries(&RetryPolicy::default(), &clock, |_| {
                calls += 1;
                async { Err(SendError::permanent("21211 invalid To")) }
            }));
        assert!(result.unwrap_err().is_permanent());
        assert_eq!(calls, 1);
        assert!(clock.slept.borrow().is_empty());
    }

    #[test]
    fn retries_are_bounded_in_count_and_in_time() {
        let clock = FakeClock {
            jitter: 1.0,
            ..Default::default()
        };
        let mut calls = 0;
        let r: Result<(), _> =
            futures::executor::block_on(with_retries(&RetryPolicy::default(), &clock, |_| {
                calls += 1;
                async { Err(SendError::transient("500")) }
            }));
        assert!(r.is_err());
        assert_eq!(calls, 3, "max_attempts");

        // A Retry-After beyond the time budget goes back to the caller at once.
        let clock = FakeClock {
            jitter: 1.0,
            ..Default::default()
        };
        let mut calls = 0;
        let r: Result<(), _> =
            futures::executor::block_on(with_retries(&RetryPolicy::default(), &clock, |_| {
                calls += 1;
                async {
                    Err(SendError::Transient {
                        reason: "429".into(),
                        retry_after: Some(Duration::from_secs(60)),
                        ambiguous: false,
                    })
                }
            }));
        assert_eq!(r.unwrap_err().retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(calls, 1);
        assert!(clock.slept.borrow().is_empty());
    }

    #[test]
    fn default_status_split() {
        let reply = |status| HttpReply {
            status,
            retry_after: None,
            body: "x".into(),
        };
        for s in [408, 409, 429, 500, 502, 503] {
            assert!(!by_status(&reply(s), "p").is_permanent(), "{s}");
        }
        for s in [400, 401, 404, 410, 422] {
            assert!(by_status(&reply(s), "p").is_permanent(), "{s}");
        }
    }
}
