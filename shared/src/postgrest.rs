//! A PostgREST RPC client that calls with the caller's own token, so RLS and
//! `auth.uid()` apply exactly as they would for a direct call.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Result};
use crate::gate;
use crate::providers::Clock;

/// How often a business RPC refused for the tenant's concurrency cap
/// (`TOO_MANY_CONCURRENT_REQUESTS`) is tried again, and the first pause; the
/// pause doubles each time (25, 50 … 800 ms, about 1.6 s in all), with
/// jitter. The wait holds no database connection.
pub const BUSY_RETRIES: u32 = 6;
/// The longest a request waits in its isolate for one of its tenant's places
/// (see [`gate`]) before it is answered 429 TOO_MANY_CONCURRENT_REQUESTS.
pub const GATE_MAX_WAIT: Duration = Duration::from_secs(5);
const BUSY_FIRST_PAUSE_MS: f64 = 25.0;

/// A business request, counted against its tenant's rate limit before it runs.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// The edge function's name, as in `rate_limit_policies`.
    pub function_name: &'a str,
    /// The id of the row that names the request's tenant (the client of an
    /// order, the supplier of a PO, the order of a return).
    pub subject_id: Uuid,
}

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

    /// `GET /<table>?<query>` (PostgREST's query syntax), as the holder of
    /// `token`: the rows RLS lets it see, as a JSON array.
    pub async fn select(&self, table: &str, query: &str, token: &str) -> Result<Value> {
        let request = self
            .http
            .get(format!("{}/{table}?{query}", self.rest_url))
            .header("apikey", &self.apikey)
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json");
        json_reply(request, &format!("select {table}")).await
    }

    /// `POST /rpc/<function>` with named arguments, as the caller.
    ///
    /// Absent optional arguments must be left out of `args`, not sent as null:
    /// the SQL side gives them defaults (see the README on REST-server parity).
    pub async fn rpc(&self, function: &str, args: &Value, caller_token: &str) -> Result<Value> {
        self.rpc_with_admission(function, args, caller_token, None)
            .await
    }

    /// A business RPC, as the caller, counted first.
    ///
    /// 1. `admit_request` (service role, its own transaction) takes the
    ///    attempt's token from the tenant's bucket and returns a one-time
    ///    admission, so a request that then fails has still paid for itself.
    /// 2. In this isolate, at most the tenant's `max_concurrent` requests go
    ///    on to the database; the others wait their turn ([`gate`],
    ///    [`GATE_MAX_WAIT`]), holding no connection.
    /// 3. The RPC runs with the admission in `x-admission`, which the SQL
    ///    spends. A refusal for the tenant's concurrency cap (other isolates
    ///    hold its places) is retried after a short pause ([`BUSY_RETRIES`]);
    ///    the admission is still unspent then.
    ///
    /// A subject the caller does not belong to is answered 404 from the
    /// admission (which charged the caller's own tenants for it). Without the
    /// service key there is no admission, and the RPC refuses with 403; see
    /// the rate_limits migration.
    pub async fn rpc_counted(
        &self,
        function: &str,
        args: &Value,
        caller: &Caller,
        counted: Counted<'_>,
        service_key: Option<&str>,
        clock: &dyn Clock,
    ) -> Result<Value> {
        let admitted = match service_key {
            Some(key) => {
                self.rpc(
                    "admit_request",
                    &json!({
                        "function_name": counted.function_name,
                        "user_id": caller.user_id,
                        "subject_id": counted.subject_id,
                    }),
                    key,
                )
                .await?
            }
            None => Value::Null,
        };
        // Not the caller's, or no such row: counted, and answered without the RPC.
        if let Some(missing) = admitted.get("not_found").filter(|m| m.is_object()) {
            let message = missing.get("message").and_then(Value::as_str);
            return Err(ApiError::NotFound {
                message: message.unwrap_or("not found").to_owned(),
                details: json!({ "resource": missing["resource"], "id": missing["id"] }),
            });
        }
        let admission = admitted.get("admission").and_then(Value::as_str);
        // Wait here, not in the database, while this isolate already runs the
        // tenant's share of business transactions.
        let tenant = admitted
            .get("tenant_id")
            .and_then(Value::as_str)
            .and_then(|t| Uuid::try_parse(t).ok());
        let cap = admitted.get("max_concurrent").and_then(Value::as_u64);
        let _place = match (tenant, cap) {
            (Some(tenant), Some(cap)) => Some(
                gate::enter(tenant, cap as usize, GATE_MAX_WAIT, clock)
                    .await
                    .ok_or(ApiError::TooManyConcurrent {
                        max_concurrent: cap,
                    })?,
            ),
            _ => None,
        };
        let mut pause = BUSY_FIRST_PAUSE_MS;
        let mut tries = 0;
        loop {
            let result = self
                .rpc_with_admission(function, args, &caller.token, admission)
                .await;
            match result {
                Err(ApiError::TooManyConcurrent { .. }) if tries < BUSY_RETRIES => {
                    tries += 1;
                    let millis = pause * (0.5 + clock.jitter());
                    clock
                        .sleep(Duration::from_micros((millis * 1000.0) as u64))
                        .await;
                    pause *= 2.0;
                }
                other => return other,
            }
        }
    }

    async fn rpc_with_admission(
        &self,
        function: &str,
        args: &Value,
        caller_token: &str,
        admission: Option<&str>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .post(self.rpc_url(function))
            .header("apikey", &self.apikey)
            .header("authorization", format!("Bearer {caller_token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(admission) = admission {
            request = request.header("x-admission", admission);
        }
        json_reply(request.body(args.to_string()), &format!("rpc {function}")).await
    }
}

/// Sends a REST request and reads its JSON answer: a network failure is 503
/// (retry is safe), a non-2xx answer PostgREST's error as ours, a 2xx that is
/// not JSON a 500. `what` names the call in the log.
async fn json_reply(request: reqwest::RequestBuilder, what: &str) -> Result<Value> {
    let response = request
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("{what}: {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| ApiError::Unavailable(format!("{what} body: {e}")))?;
    if (200..300).contains(&status) {
        serde_json::from_str(&body)
            .map_err(|e| ApiError::Internal(format!("{what} returned non-JSON: {e}")))
    } else {
        Err(ApiError::from_postgrest(status, &body))
    }
}

impl PostgrestClient {
    /// [`rpc_counted`](Self::rpc_counted), with the result read into `T`.
    pub async fn rpc_counted_as<T: DeserializeOwned>(
        &self,
        function: &str,
        args: &Value,
        caller: &Caller,
        counted: Counted<'_>,
        service_key: Option<&str>,
        clock: &dyn Clock,
    ) -> Result<T> {
        let value = self
            .rpc_counted(function, args, caller, counted, service_key, clock)
            .await?;
        rpc_result(function, value)
    }

    /// [`rpc`](Self::rpc), with the result read into `T`.
    pub async fn rpc_as<T: DeserializeOwned>(
        &self,
        function: &str,
        args: &Value,
        token: &str,
    ) -> Result<T> {
        let value = self.rpc(function, args, token).await?;
        rpc_result(function, value)
    }
}

/// An RPC's JSON result as `T`. A result that does not fit is a 500: the SQL
/// and the function disagree, which is a bug, and the cause is logged.
pub fn rpc_result<T: DeserializeOwned>(function: &str, value: Value) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| {
        ApiError::Internal(format!(
            "{function} returned an unexpected result ({e}): {value}"
        ))
    })
}

/// For serde, with `#[serde(default, deserialize_with = "shared::null_as_default")]`:
/// a `null` in an RPC result reads as the type's default, as a missing field
/// does (SQL's `jsonb_build_object` writes `null` for an empty subquery).
pub fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
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
