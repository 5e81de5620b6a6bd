//! What the provider tests share: a clock on tokio's timers.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use shared::providers::Clock;

pub struct TokioClock;

impl Clock for TokioClock {
    fn now_unix_secs(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
    fn jitter(&self) -> f64 {
        0.5
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(tokio::time::sleep(d))
    }
}
