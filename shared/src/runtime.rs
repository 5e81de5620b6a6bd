//! The wasm side of the loader contract. Each function crate calls
//! [`export_function!`](crate::export_function) once; this module does the rest:
//! configuration at cold start, turning the loader's arguments into a
//! [`Request`], and every error into the envelope.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::future::Future;

use wasm_bindgen::prelude::*;

use crate::config::Config;
use crate::error::{ApiError, Result};
use crate::http::{Request, Response};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

thread_local! {
    static CONFIG: OnceCell<&'static Config> = const { OnceCell::new() };
}

/// Reads the environment once. Called by the loader at module load; a bad
/// setting fails the cold start loudly instead of 401-ing every request.
pub fn configure(env_json: &str) -> std::result::Result<(), String> {
    let env: BTreeMap<String, String> =
        serde_json::from_str(env_json).map_err(|e| format!("env is not a JSON object: {e}"))?;
    let config: &'static Config = Box::leak(Box::new(Config::from_env(&env)?));
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

/// Seconds since the epoch, from the host clock.
pub fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// Runs `handler` and returns the response in the loader's wire shape.
pub async fn serve<F, Fut>(
    method: String,
    headers_json: String,
    body: Vec<u8>,
    handler: F,
) -> String
where
    F: FnOnce(Request, &'static Config) -> Fut,
    Fut: Future<Output = Result<Response>>,
{
    let outcome = async {
        let headers: BTreeMap<String, String> = serde_json::from_str(&headers_json)
            .map_err(|e| ApiError::Internal(format!("loader sent bad headers: {e}")))?;
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        handler(
            Request {
                method,
                headers,
                body,
            },
            config()?,
        )
        .await
    }
    .await;
    match outcome {
        Ok(response) => response.to_wire(),
        Err(err) => {
            if let Some(cause) = err.log_cause() {
                console_error(&format!("{}: {cause}", err.code()));
            }
            Response::from_error(&err).to_wire()
        }
    }
}

/// Defines a function crate's wasm exports: `configure(env_json)`,
/// `body_limit()` and `handle(method, headers_json, body)`.
#[macro_export]
macro_rules! export_function {
    ($handler:path) => {
        #[wasm_bindgen::prelude::wasm_bindgen]
        pub fn configure(env_json: &str) -> Result<(), String> {
            $crate::runtime::configure(env_json)
        }

        #[wasm_bindgen::prelude::wasm_bindgen]
        pub fn body_limit() -> usize {
            $crate::MAX_BODY_BYTES
        }

        #[wasm_bindgen::prelude::wasm_bindgen]
        pub async fn handle(method: String, headers_json: String, body: Vec<u8>) -> String {
            $crate::runtime::serve(method, headers_json, body, $handler).await
        }
    };
}
