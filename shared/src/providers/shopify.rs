//! Shopify's Admin API, as an app: OAuth (authorize URL, code exchange),
//! GraphQL Admin with its cost-based throttle, bulk operations, webhook
//! subscriptions, and uninstalling.
//!
//! Every call goes to `SHOPIFY_BASE_URL` with `{shop}` replaced by the store
//! domain (default `https://{shop}`, the real store), so tests point it at
//! the sandbox.
//!
//! **Throttle.** GraphQL Admin charges each query points from a bucket
//! (`extensions.cost.throttleStatus`: `maximumAvailable`,
//! `currentlyAvailable`, `restoreRate` per second). A query asking for more
//! than is available is answered `THROTTLED` and charged nothing. The client
//! waits exactly as long as the bucket needs to refill to the query's cost
//! ([`Cost::wait_for`]), and before the next query when the last answer left
//! less than it will ask, so a sync runs at the rate the bucket allows and
//! is rarely throttled at all.

use std::time::Duration;

use serde_json::{json, Value};

use super::retry::{by_status, exchange, truncate, with_retries, Clock, RetryPolicy, SendError};

pub const DEFAULT_BASE_URL: &str = "https://{shop}";
/// The Admin API version requests are pinned to.
pub const DEFAULT_API_VERSION: &str = "2026-01";
/// The scopes an app asks for: products, orders (with those older than 60
/// days), customers and abandoned checkouts.
pub const DEFAULT_SCOPES: &str =
    "read_products,read_orders,read_all_orders,read_customers,read_checkouts";
/// Shopify refuses a single query whose requested cost is above this.
pub const MAX_QUERY_COST: f64 = 1000.0;

/// The app's identity and where its calls go.
#[derive(Debug, Clone)]
pub struct Shopify {
    base_url: String,
    /// The app's client id (`SHOPIFY_API_KEY`).
    pub api_key: Option<String>,
    pub api_version: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
}

/// What the code exchange answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub access_token: String,
    pub scopes: Vec<String>,
}

/// The cost of one GraphQL query and the bucket after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub requested: f64,
    pub actual: Option<f64>,
    pub maximum: f64,
    pub available: f64,
    pub restore_rate: f64,
}

impl Cost {
    /// Reads `extensions.cost` of a GraphQL answer.
    pub fn from_extensions(body: &Value) -> Option<Cost> {
        let cost = body.get("extensions")?.get("cost")?;
        let status = cost.get("throttleStatus")?;
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        Some(Cost {
            requested: num(cost, "requestedQueryCost").unwrap_or(0.0),
            actual: num(cost, "actualQueryCost"),
            maximum: num(status, "maximumAvailable")?,
            available: num(status, "currentlyAvailable")?,
            restore_rate: num(status, "restoreRate")?,
        })
    }

    /// How long until the bucket holds `points`: nothing when it already
    /// does, else the shortfall over the restore rate (rounded up to the
    /// next 50 ms, so the retry does not arrive a hair early). A query that
    /// costs more than the bucket can ever hold waits for a full bucket.
    pub fn wait_for(&self, points: f64) -> Duration {
        let points = points.min(self.maximum);
        if self.available >= points || self.restore_rate <= 0.0 {
            return Duration::ZERO;
        }
        let secs = (points - self.available) / self.restore_rate;
        Duration::from_millis(((secs * 1000.0 / 50.0).ceil() as u64) * 50)
    }
}

/// One GraphQL answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `data` (and the cost).
    Data(Value, Option<Cost>),
    /// Throttled: nothing was done; retry after the bucket refills.
    Throttled(Cost),
}

/// The error codes in a GraphQL answer's `errors[].extensions.code`.
fn error_codes(body: &Value) -> Vec<&str> {
    body.get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("extensions")?.get("code")?.as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Classifies a GraphQL reply.
///
/// - 200 with `data` and no errors: the data.
/// - 200 with a `THROTTLED` error: [`Answer::Throttled`].
/// - 200 with other errors (a bad query, `MAX_COST_EXCEEDED`, a missing
///   scope's `ACCESS_DENIED`): permanent; `INTERNAL_SERVER_ERROR`: transient.
/// - 401 (revoked or unknown token), 402 (frozen store), 403, 404 (no such
///   store), 423 (locked store): permanent, the merchant must act.
/// - 429 and 5xx: transient.
pub fn classify_graphql(
    status: u16,
    body_text: &str,
    retry_after: Option<Duration>,
) -> Result<Answer, SendError> {
    let reply = super::retry::HttpReply {
        status,
        retry_after,
        body: body_text.to_owned(),
    };
    if status != 200 {
        return Err(match status {
            401 | 402 | 403 | 404 | 423 => {
                SendError::permanent(format!("shopify {status}: {}", truncate(body_text, 300)))
            }
            _ => by_status(&reply, "shopify"),
        });
    }
    let body: Value = serde_json::from_str(body_text).map_err(|_| {
        SendError::transient(format!(
            "shopify: 200 without JSON: {}",
            truncate(body_text, 200)
        ))
    })?;
    let cost = Cost::from_extensions(&body);
    let codes = error_codes(&body);
    if codes.contains(&"THROTTLED") {
        return match cost {
            Some(cost) => Ok(Answer::Throttled(cost)),
            None => Err(SendError::Transient {
                reason: "shopify: throttled".into(),
                retry_after: Some(Duration::from_secs(1)),
                ambiguous: false,
            }),
        };
    }
    if body.get("errors").is_some_and(|e| !e.is_null()) {
        let reason = format!(
            "shopify graphql error: {}",
            truncate(&body["errors"].to_string(), 300)
        );
        return Err(if codes.contains(&"INTERNAL_SERVER_ERROR") {
            SendError::transient(reason)
        } else {
            SendError::permanent(reason)
        });
    }
    Ok(Answer::Data(
        body.get("data").cloned().unwrap_or(Value::Null),
        cost,
    ))
}

impl Shopify {
    pub fn new(base_url: &str, api_key: Option<&str>, api_version: &str) -> Self {
        Shopify {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.map(str::to_owned),
            api_version: api_version.to_owned(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
        }
    }

    /// The app as the environment configures it: `SHOPIFY_BASE_URL`,
    /// `SHOPIFY_API_KEY`, `SHOPIFY_API_VERSION`, and `PROVIDER_TIMEOUT_MS` for
    /// each call.
    pub fn from_config(config: &crate::Config) -> Self {
        let mut s = Shopify::new(
            config.var("SHOPIFY_BASE_URL").unwrap_or(DEFAULT_BASE_URL),
            config.var("SHOPIFY_API_KEY"),
            config
                .var("SHOPIFY_API_VERSION")
                .unwrap_or(DEFAULT_API_VERSION),
        );
        if let Some(ms) = config
            .var("PROVIDER_TIMEOUT_MS")
            .and_then(|v| v.parse::<u64>().ok())
        {
            s.policy.timeout = Duration::from_millis(ms);
        }
        s
    }

    /// The store's root (`https://<shop>`, or the sandbox's stand-in).
    pub fn shop_url(&self, shop: &str) -> String {
        self.base_url.replace("{shop}", shop)
    }

    /// Where the merchant approves the app.
    pub fn authorize_url(
        &self,
        shop: &str,
        scopes: &str,
        redirect_uri: &str,
        state: &str,
    ) -> String {
        let query = serde_urlencoded::to_string([
            ("client_id", self.api_key.as_deref().unwrap_or_default()),
            ("scope", scopes),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ])
        .expect("string pairs always encode");
        format!("{}/admin/oauth/authorize?{query}", self.shop_url(shop))
    }

    /// Exchanges the callback's code for the store's offline access token.
    /// A code is single-use, so this is not retried after a reply: a 400 is
    /// a used, expired or forged code.
    pub async fn exchange_code(
        &self,
        shop: &str,
        secret: &str,
        code: &str,
        clock: &dyn Clock,
    ) -> Result<Grant, SendError> {
        let request = self
            .http
            .post(format!("{}/admin/oauth/access_token", self.shop_url(shop)))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(
                json!({
                    "client_id": self.api_key.as_deref().unwrap_or_default(),
                    "client_secret": secret,
                    "code": code,
                })
                .to_string(),
            );
        let reply = exchange(request, self.policy.timeout, clock.now_unix_secs()).await?;
        if reply.status != 200 {
            return Err(match reply.status {
                400..=499 => SendError::permanent(format!(
                    "shopify token exchange {}: {}",
                    reply.status,
                    truncate(&reply.body, 300)
                )),
                _ => by_status(&reply, "shopify token exchange"),
            });
        }
        let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        let access_token = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SendError::permanent("shopify token exchange: no access_token"))?;
        Ok(Grant {
            access_token: access_token.to_owned(),
            scopes: body["scope"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// One GraphQL request, retried on transient failures (not on a throttle:
    /// that is the caller's to wait for, see [`Shopify::query`]).
    pub async fn graphql_once(
        &self,
        shop: &str,
        token: &str,
        query: &str,
        variables: &Value,
        clock: &dyn Clock,
    ) -> Result<Answer, SendError> {
        let url = format!(
            "{}/admin/api/{}/graphql.json",
            self.shop_url(shop),
            self.api_version
        );
        let body = json!({ "query": query, "variables": variables }).to_string();
        with_retries(&self.policy, clock, |_| {
            let request = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-shopify-access-token", token)
                .body(body.clone());
            async move {
                let reply = exchange(request, self.policy.timeout, clock.now_unix_secs()).await?;
                classify_graphql(reply.status, &reply.body, reply.retry_after)
            }
        })
        .await
    }

    /// A GraphQL query that honours the throttle: throttled, it waits for
    /// the bucket to refill to the query's cost and asks again (at most
    /// `max_throttled` times). Returns the data, the last cost, and how
    /// often it was throttled.
    pub async fn query(
        &self,
        shop: &str,
        token: &str,
        query: &str,
        variables: &Value,
        clock: &dyn Clock,
        max_throttled: u32,
    ) -> Result<(Value, Option<Cost>, u32), SendError> {
        let mut throttled = 0;
        loop {
            match self
                .graphql_once(shop, token, query, variables, clock)
                .await?
            {
                Answer::Data(data, cost) => return Ok((data, cost, throttled)),
                Answer::Throttled(cost) => {
                    throttled += 1;
                    if throttled > max_throttled {
                        return Err(SendError::Transient {
                            reason: format!("shopify: still throttled after {max_throttled} waits"),
                            retry_after: Some(cost.wait_for(cost.requested)),
                            ambiguous: false,
                        });
                    }
                    clock.sleep(cost.wait_for(cost.requested)).await;
                }
            }
        }
    }

    /// Uninstalls the app from the store, which revokes its token
    /// (`DELETE /admin/api_permissions/current.json`). A token already
    /// revoked (401) or a store gone (404) counts as done.
    pub async fn revoke(
        &self,
        shop: &str,
        token: &str,
        clock: &dyn Clock,
    ) -> Result<&'static str, SendError> {
        let url = format!("{}/admin/api_permissions/current.json", self.shop_url(shop));
        with_retries(&self.policy, clock, |_| {
            let request = self
                .http
                .delete(&url)
                .header("x-shopify-access-token", token);
            async move {
                let reply = exchange(request, self.policy.timeout, clock.now_unix_secs()).await?;
                match reply.status {
                    200..=299 => Ok("revoked"),
                    401 => Ok("already_revoked"),
                    404 => Ok("store_not_found"),
                    _ => Err(by_status(&reply, "shopify revoke")),
                }
            }
        })
        .await
    }

    /// Downloads a bulk operation's JSONL (a signed storage URL: no token).
    pub async fn download(&self, url: &str, clock: &dyn Clock) -> Result<String, SendError> {
        with_retries(&self.policy, clock, |_| {
            let request = self.http.get(url);
            async move {
                let mut policy_timeout = self.policy.timeout;
                // A large file takes longer than an API call.
                policy_timeout = policy_timeout.max(Duration::from_secs(60));
                let reply = exchange(request, policy_timeout, clock.now_unix_secs()).await?;
                if reply.status == 200 {
                    Ok(reply.body)
                } else {
                    Err(by_status(&reply, "shopify bulk download"))
                }
            }
        })
        .await
    }
}

/// The webhook topics an integration subscribes to, as GraphQL names them
/// and as the payloads name them. The three compliance topics are set in
/// the app's configuration, not by the API (see the README).
pub const WEBHOOK_TOPICS: &[(&str, &str)] = &[
    ("ORDERS_CREATE", "orders/create"),
    ("ORDERS_UPDATED", "orders/updated"),
    ("PRODUCTS_UPDATE", "products/update"),
    ("PRODUCTS_DELETE", "products/delete"),
    ("CHECKOUTS_UPDATE", "checkouts/update"),
    ("APP_UNINSTALLED", "app/uninstalled"),
];

/// The mutation that subscribes one topic.
pub const SUBSCRIBE: &str =
    "mutation subscribe($topic: WebhookSubscriptionTopic!, $uri: String!) { \
webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) { \
webhookSubscription { id topic uri } userErrors { field message } } }";

/// Whether a subscription's userErrors only say it exists already.
pub fn already_subscribed(user_errors: &Value) -> bool {
    user_errors.as_array().is_some_and(|errors| {
        !errors.is_empty()
            && errors.iter().all(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("already been taken"))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled(requested: f64, available: f64) -> String {
        json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": 100.0}}}
        })
        .to_string()
    }

    #[test]
    fn a_throttled_query_waits_for_exactly_the_points_it_lacks() {
        let Answer::Throttled(cost) =
            classify_graphql(200, &throttled(922.0, 122.0), None).unwrap()
        else {
            panic!("not throttled")
        };
        assert_eq!(cost.requested, 922.0);
        // 800 points short at 100 a second: 8 s.
        assert_eq!(cost.wait_for(cost.requested), Duration::from_secs(8));
        // Rounded up to 50 ms: 1 point at 100/s is 10 ms → 50 ms.
        assert_eq!(cost.wait_for(123.0), Duration::from_millis(50));
        assert_eq!(cost.wait_for(100.0), Duration::ZERO);
        // More than the bucket holds: wait for a full bucket, not forever.
        assert_eq!(cost.wait_for(5000.0), Duration::from_millis(18_800));
    }

    #[test]
    fn data_carries_its_cost_and_errors_are_classified() {
        let ok = json!({"data": {"shop": {"name": "S"}}, "extensions": {"cost": {"requestedQueryCost": 2,
            "actualQueryCost": 1, "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1999.0,
            "restoreRate": 100.0}}}});
        let Answer::Data(data, Some(cost)) = classify_graphql(200, &ok.to_string(), None).unwrap()
        else {
            panic!("no data")
        };
        assert_eq!(data["shop"]["name"], "S");
        assert_eq!((cost.actual, cost.available), (Some(1.0), 1999.0));

        let denied = json!({"errors": [{"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}}]});
        assert!(classify_graphql(200, &denied.to_string(), None)
            .unwrap_err()
            .is_permanent());
        let internal =
            json!({"errors": [{"message": "x", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]});
        assert!(!classify_graphql(200, &internal.to_string(), None)
            .unwrap_err()
            .is_permanent());
        let revoked = r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#;
        assert!(classify_graphql(401, revoked, None)
            .unwrap_err()
            .is_permanent());
        let limited = classify_graphql(429, "{}", Some(Duration::from_secs(2))).unwrap_err();
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        assert!(!classify_graphql(503, "", None).unwrap_err().is_permanent());
    }

    #[test]
    fn the_authorize_url_names_the_app_scopes_redirect_and_state() {
        let s = Shopify::new(
            "http://sandbox/shopify/{shop}",
            Some("key 1"),
            DEFAULT_API_VERSION,
        );
        assert_eq!(
            s.authorize_url("acme.myshopify.com", "read_products,read_orders", "https://x.test/cb?a=1", "st"),
            "http://sandbox/shopify/acme.myshopify.com/admin/oauth/authorize?client_id=key+1\
             &scope=read_products%2Cread_orders&redirect_uri=https%3A%2F%2Fx.test%2Fcb%3Fa%3D1&state=st"
        );
        assert_eq!(
            Shopify::new(DEFAULT_BASE_URL, None, DEFAULT_API_VERSION).shop_url("a.myshopify.com"),
            "https://a.myshopify.com"
        );
    }

    #[test]
    fn a_subscription_that_exists_is_not_an_error() {
        assert!(already_subscribed(
            &json!([{"field": ["webhookSubscription", "callbackUrl"],
            "message": "Address for this topic has already been taken"}])
        ));
        assert!(!already_subscribed(&json!([])));
        assert!(!already_subscribed(&json!([{"message": "Invalid topic"}])));
    }
}
