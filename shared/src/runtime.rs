//! The wasm side of the loader contract. Each function crate calls
//! [`export_endpoint!`](crate::export_endpoint) once; this module does the rest:
//! configuration at cold start, turning the loader's arguments into a
//! [`Request`], [`crate::endpoint::handle`], and every error into the envelope.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use wasm_bindgen::prelude::*;

pub use js_sys::Array;

use crate::config::Config;
use crate::error::{ApiError, Result};
use crate::http::{Request, Response};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, millis: f64) -> JsValue;
}

thread_local! {
    static CONFIG: OnceCell<&'static Config> = const { OnceCell::new() };
    static BACKGROUND: RefCell<Vec<js_sys::Promise>> = const { RefCell::new(Vec::new()) };
}

/// Logs to the function's log (stderr on the platform).
pub fn log_error(message: &str) {
    console_error(message);
}

/// The host's clock, randomness and timers, for provider retries.
pub struct JsClock;

impl crate::providers::Clock for JsClock {
    fn now_unix_secs(&self) -> i64 {
        now()
    }
    fn jitter(&self) -> f64 {
        js_sys::Math::random()
    }
    fn monotonic_ms(&self) -> f64 {
        performance_now()
    }
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()>>> {
        let millis = duration.as_secs_f64() * 1000.0;
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            set_timeout(&resolve, millis);
        });
        Box::pin(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        })
    }
}

/// Runs `task` after the response, without delaying it. The loader hands the
/// pending tasks to `EdgeRuntime.waitUntil` where it exists, so the platform
/// keeps the isolate alive until they finish.
pub fn spawn_background<F: Future<Output = ()> + 'static>(task: F) {
    let promise = wasm_bindgen_futures::future_to_promise(async move {
        task.await;
        Ok(JsValue::UNDEFINED)
    });
    BACKGROUND.with(|b| b.borrow_mut().push(promise));
}

/// Where this isolate's delivery kick stands (see [`deliver_outbox_soon`]).
#[derive(Clone, Copy, PartialEq)]
enum Kick {
    Idle,
    /// A call to dispatch-notifications is in flight.
    Running,
    /// …and more rows were queued since it started: call once more after it.
    Again,
}

thread_local! {
    static KICK: Cell<Kick> = const { Cell::new(Kick::Idle) };
}

/// How long a delivery kick waits before it calls the dispatcher.
const KICK_DELAY: Duration = Duration::from_millis(250);

/// Asks dispatch-notifications to deliver the outbox now, after the response,
/// with the dispatch secret (or else the service-role key). Without either,
/// the every-minute schedule delivers. A failed call is only logged: the rows
/// are safe in the outbox.
///
/// Kicks are coalesced: at most one call is in flight per isolate, and it
/// starts [`KICK_DELAY`] after the first request that asked. A request that
/// queues rows while one runs marks it to run once more when it ends (its
/// claim may have missed the new rows), so under load there is one
/// dispatcher loop per isolate instead of one per request.
pub fn deliver_outbox_soon(config: &'static Config) {
    let auth = match (&config.dispatch_secret, &config.service_role_key) {
        (Some(secret), _) => ("x-dispatch-secret", secret.clone()),
        (None, Some(key)) => ("authorization", format!("Bearer {key}")),
        (None, None) => return,
    };
    let state = KICK.with(Cell::get);
    if state != Kick::Idle {
        KICK.with(|k| k.set(Kick::Again));
        return;
    }
    KICK.with(|k| k.set(Kick::Running));
    let url = format!("{}/dispatch-notifications", config.functions_url);
    spawn_background(async move {
        loop {
            // A short pause first, so that one call delivers what the requests
            // of the next moments queue, in one claim and one record.
            crate::providers::Clock::sleep(&JsClock, KICK_DELAY).await;
            let sent = reqwest::Client::new()
                .post(&url)
                .header(auth.0, auth.1.clone())
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => log_error(&format!("dispatch-notifications answered {}", r.status())),
                Err(e) => log_error(&format!("dispatch-notifications unreachable: {e}")),
            }
            let again = KICK.with(|k| k.replace(Kick::Running)) == Kick::Again;
            if !again {
                KICK.with(|k| k.set(Kick::Idle));
                break;
            }
        }
    });
}

/// The background tasks started since the last call (see [`spawn_background`]).
pub fn take_background() -> js_sys::Array {
    BACKGROUND.with(|b| b.borrow_mut().drain(..).collect())
}

/// Reads the environment once. Called by the loader at module load; a bad
/// setting fails the cold start loudly instead of 401-ing every request.
pub fn configure(env_json: &str) -> std::result::Result<(), String> {
    let env: BTreeMap<String, String> =
        serde_json::from_str(env_json).map_err(|e| format!("env is not a JSON object: {e}"))?;
    let config: &'static Config = Box::leak(Box::new(Config::from_env(&env)?));
    config.jwt.preload();
    CONFIG.with(|c| {
        let _ = c.set(config);
    });
    Ok(())
}

fn config() -> Result<&'static Config> {
    CONFIG
        .with(|c| c.get().copied())
        .ok_or_else(|| ApiError::Internal("configure() was not called".into()))
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds from a monotonic clock (`performance.now()`), for timings.
pub fn monotonic_ms() -> f64 {
    performance_now()
}

/// Seconds since the epoch, from the host clock.
pub fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// Handles one request for endpoint `E` and returns it in the loader's wire
/// shape, `[status, headers_json, body_bytes]`. Work left for after the
/// response is started in the background (see [`take_background`]).
pub async fn serve<E: crate::endpoint::Endpoint>(
    method: String,
    url: String,
    headers_json: String,
    body: Vec<u8>,
) -> Array {
    let outcome = async {
        let config = config()?;
        let headers: BTreeMap<String, String> = serde_json::from_str(&headers_json)
            .map_err(|e| ApiError::Internal(format!("loader sent bad headers: {e}")))?;
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let (path, query) = Request::locate(&url, E::NAME);
        let request = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        let (result, afterwards) = crate::endpoint::handle::<E>(request, config, &JsClock).await;
        for task in afterwards.tasks {
            spawn_background(task);
        }
        if afterwards.deliver_outbox {
            deliver_outbox_soon(config);
        }
        result
    }
    .await;
    let response = match outcome {
        Ok(response) => response,
        Err(err) => {
            if let Some(cause) = err.log_cause() {
                console_error(&format!("{}: {cause}", err.code()));
            }
            Response::from_error(&err)
        }
    };
    let body = js_sys::Uint8Array::from(response.body.as_slice());
    Array::of3(
        &JsValue::from(response.status),
        &JsValue::from(response.headers_json()),
        &body,
    )
}

/// Defines a function crate's wasm exports for endpoint `$endpoint`:
/// `configure(env_json)`, `body_limit()`, `methods()`,
/// `handle(method, url, headers_json, body)` and `take_background()`.
#[macro_export]
macro_rules! export_endpoint {
    ($endpoint:ty) => {
        #[wasm_bindgen::prelude::wasm_bindgen]
        pub fn configure(env_json: &str) -> Result<(), String> {
            $crate::runtime::configure(env_json)
        }

        #[wasm_bindgen::prelude::wasm_bindgen]
        pub fn body_limit() -> usize {
            <$endpoint as $crate::Endpoint>::BODY_LIMIT
        }

        #[wasm_bindgen::prelude::wasm_bindgen]
        pub fn methods() -> String {
            <$endpoint as $crate::Endpoint>::METHODS.join(", ")
        }

        #[wasm_bindgen::prelude::wasm_bindgen]
        pub async fn handle(
            method: String,
            url: String,
            headers_json: String,
            body: Vec<u8>,
        ) -> $crate::runtime::Array {
            $crate::runtime::serve::<$endpoint>(method, url, headers_json, body).await
        }

        #[wasm_bindgen::prelude::wasm_bindgen]
        pub fn take_background() -> $crate::runtime::Array {
            $crate::runtime::take_background()
        }
    };
}
