//! A PostgREST RPC client that calls with the caller's own token, so RLS and
//! `auth.uid()` apply exactly as they would for a direct call.

use serde_json::Value;

use crate::error::{ApiError, Result};

#[derive(Debug, Clone)]
pub struct PostgrestClient {
    rest_url: String,
    apikey: String,
    http: reqwest::Client,
}

impl PostgrestClient {
    /// `rest_url` is the REST root (`https://<ref>.supabase.co/rest/v1`);
    /// `apikey` is the project's anon key, which the API gateway requires.
    pub fn new(rest_url: &str, apikey: &str) -> Self {
        Self {
            rest_url: rest_url.trim_end_matches('/').to_owned(),
            apikey: apikey.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn rpc_url(&self, function: &str) -> String {
        format!("{}/rpc/{function}", self.rest_url)
    }

    /// `POST /rpc/<function>` with named arguments, as the caller.
    ///
    /// Absent optional arguments must be left out of `args`, not sent as null:
    /// the SQL side gives them defaults (see the README on REST-server parity).
    pub async fn rpc(&self, function: &str, args: &Value, caller_token: &str) -> Result<Value> {
        let response = self
            .http
            .post(self.rpc_url(function))
            .header("apikey", &self.apikey)
            .header("authorization", format!("Bearer {caller_token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(args.to_string())
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(format!("rpc {function}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| ApiError::Unavailable(format!("rpc {function} body: {e}")))?;
        if (200..300).contains(&status) {
            serde_json::from_str(&body)
                .map_err(|e| ApiError::Internal(format!("rpc {function} returned non-JSON: {e}")))
        } else {
            Err(ApiError::from_postgrest(status, &body))
        }
    }
}

/// Whether an RPC result is an idempotent replay (`"replayed": true`).
pub fn is_replay(result: &Value) -> bool {
    result.get("replayed").and_then(Value::as_bool) == Some(true)
}

/// The outbox rows an RPC queued (`notifications_queued`); none for a replay,
/// which queued nothing new.
pub fn notifications_queued(result: &Value) -> u64 {
    match is_replay(result) {
        true => 0,
        false => result
            .get("notifications_queued")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}
