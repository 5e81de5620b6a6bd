//! `oauth-shopify`: connects a Shopify store to a tenant.
//!
//! - `POST {"shop": "my-store.myshopify.com" | "store_name": "my-store",
//!   "tenant_id"?}` (a signed-in admin of the tenant): answers the URL where
//!   the merchant approves the app. The state in it is stored server-side,
//!   bound to the caller and the tenant, single-use and valid 10 minutes.
//!   With the platform's own custom-app token (`SHOPIFY_ADMIN_ACCESS_TOKEN`
//!   for the store `SHOPIFY_ADMIN_SHOP`), that store connects at once (201)
//!   for the platform's own tenant (`SHOPIFY_ADMIN_TENANT_ID`) only.
//! - `GET ?code&hmac&host&shop&state&timestamp` (Shopify's redirect after
//!   approval): the `hmac` over the query is checked with the app secret,
//!   then the state (once) and the store, the code is exchanged for the
//!   store's token, the token is sealed (AES-256-GCM, `TOKEN_ENCRYPTION_KEYS`)
//!   and stored, the webhooks are registered, and the merchant is sent (302)
//!   to `SHOPIFY_APP_URL?result=connected&integration_id=…&shop=…`.
//!   Any failure sends them to `SHOPIFY_APP_URL?result=error&error=<code>`
//!   and stores nothing (a token already issued is revoked again).

use shared::commerce::token_context;
use shared::providers::shopify::{self, Shopify, DEFAULT_SCOPES, SUBSCRIBE, WEBHOOK_TOPICS};
use shared::providers::Clock;
use shared::serde_json::{json, Value};
use shared::webhooks::shopify_oauth_query_valid;
use shared::{
    authenticate, ApiError, Auth, Config, Ctx, Endpoint, Principal, Request, Response, Result, Uuid,
};

pub const FUNCTION_NAME: &str = "oauth-shopify";
/// The function that receives the store's webhooks.
pub const WEBHOOK_FUNCTION: &str = "shopify-webhook";

/// What a request asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Start {
        shop: String,
        tenant_id: Option<Uuid>,
    },
    Callback,
}

/// Reads a start request: `shop` (a store domain) or `store_name` (its
/// name, without `.myshopify.com`), and an optional `tenant_id`.
pub fn read_start(body: &Value) -> Result<Step> {
    let mut problems = shared::serde_json::Map::new();
    let shop = match (body.get("shop"), body.get("store_name")) {
        (Some(Value::String(s)), None) => Some(s.trim().to_ascii_lowercase()),
        (None, Some(Value::String(n))) => {
            Some(format!("{}.myshopify.com", n.trim().to_ascii_lowercase()))
        }
        (Some(_), Some(_)) => {
            problems.insert("shop".into(), json!("give shop or store_name, not both"));
            None
        }
        _ => {
            problems.insert(
                "shop".into(),
                json!("is required: a store domain such as my-store.myshopify.com (or store_name)"),
            );
            None
        }
    };
    let shop = shop.filter(|s| {
        let ok = shared::is_shop_domain(s);
        if !ok {
            problems.insert(
                "shop".into(),
                json!("must be a store domain such as my-store.myshopify.com: lowercase letters, digits and hyphens"),
            );
        }
        ok
    });
    let tenant_id = match body.get("tenant_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => match Uuid::try_parse(t) {
            Ok(u) => Some(u),
            Err(_) => {
                problems.insert("tenant_id".into(), json!("must be a UUID"));
                None
            }
        },
        Some(_) => {
            problems.insert("tenant_id".into(), json!("must be a UUID"));
            None
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(Step::Start {
        shop: shop.expect("validated"),
        tenant_id,
    })
}

/// The address Shopify sends the merchant back to (registered in the app's
/// "Allowed redirection URL(s)").
pub fn redirect_uri(config: &Config) -> String {
    format!("{}/{FUNCTION_NAME}", config.public_functions_url)
}

/// Where the store's webhooks go.
pub fn webhook_uri(config: &Config) -> String {
    format!("{}/{WEBHOOK_FUNCTION}", config.public_functions_url)
}

/// The merchant's way back to the app, with the outcome in the query.
pub fn back_to_app(config: &Config, params: &[(&str, &str)]) -> Response {
    match config.var("SHOPIFY_APP_URL") {
        Some(app) => {
            let query = serde_urlencoded::to_string(params).expect("string pairs always encode");
            let sep = if app.contains('?') { '&' } else { '?' };
            Response::redirect(&format!("{app}{sep}{query}"))
        }
        None => {
            let ok = params
                .iter()
                .any(|(k, v)| *k == "result" && *v == "connected");
            let detail: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<li>{}: {}</li>",
                        shared::format::escape_html(k),
                        shared::format::escape_html(v)
                    )
                })
                .collect();
            Response::html_page(
                if ok { 200 } else { 400 },
                if ok {
                    "Store connected"
                } else {
                    "Store not connected"
                },
                &format!(
                    "<h1>{}</h1><ul>{detail}</ul><p>You can close this window.</p>",
                    if ok {
                        "Your store is connected"
                    } else {
                        "Your store could not be connected"
                    }
                ),
            )
        }
    }
}

/// A failed callback: back to the app with the code, nothing stored.
fn refused(config: &Config, code: &str, shop: Option<&str>) -> Response {
    let mut params = vec![("result", "error"), ("error", code)];
    if let Some(shop) = shop.filter(|s| shared::is_shop_domain(s)) {
        params.push(("shop", shop));
    }
    back_to_app(config, &params)
}

/// The store, its webhooks and the sealed token, saved as a connected
/// integration. Returns the integration id.
#[allow(clippy::too_many_arguments)]
async fn connect(
    config: &Config,
    app: &Shopify,
    clock: &dyn Clock,
    shop: &str,
    tenant: &str,
    user: &str,
    token: &str,
    scopes: &[String],
    auth_mode: &str,
) -> std::result::Result<String, &'static str> {
    let service = config.service_role_key.as_deref().ok_or("not_configured")?;
    let keys = vault::Keyring::parse(config.var(vault::KEYS_VAR).unwrap_or_default())
        .map_err(|_| "not_configured")?;
    let (data, _, _) = app
        .query(
            shop,
            token,
            "{ shop { id name myshopifyDomain currencyCode } }",
            &json!({}),
            clock,
            3,
        )
        .await
        .map_err(|_| "shop_unreachable")?;
    // Webhooks: each topic once (an existing subscription is fine).
    let uri = webhook_uri(config);
    let mut subscriptions = Vec::new();
    let mut all = true;
    for (topic, name) in WEBHOOK_TOPICS {
        match app
            .query(
                shop,
                token,
                SUBSCRIBE,
                &json!({"topic": topic, "uri": uri}),
                clock,
                3,
            )
            .await
        {
            Ok((d, _, _)) => {
                let created = &d["webhookSubscriptionCreate"];
                let errors = &created["userErrors"];
                if errors.as_array().is_some_and(|e| e.is_empty())
                    || shopify::already_subscribed(errors)
                {
                    subscriptions
                        .push(json!({"topic": name, "id": created["webhookSubscription"]["id"]}));
                } else {
                    all = false;
                }
            }
            Err(_) => all = false,
        }
    }
    if !all {
        return Err("webhooks_failed");
    }
    let sealed = keys
        .seal(token.as_bytes(), token_context(tenant, shop).as_bytes())
        .map_err(|_| "not_configured")?;
    let saved = config
        .rest
        .rpc(
            "save_shopify_connection",
            &json!({
                "tenant_id": tenant,
                "user_id": user,
                "shop": shop,
                "payload": {
                    "store_name": data["shop"]["name"],
                    "external_store_id": data["shop"]["id"].as_str().and_then(|id| id.rsplit('/').next()),
                    "token": sealed,
                    "scopes": scopes,
                    "auth_mode": auth_mode,
                    "webhook_status": "active",
                    "webhook_subscriptions": subscriptions,
                },
            }),
            service,
        )
        .await
        .map_err(|e| if e.code() == "STORE_CONNECTED" { "store_connected" } else { "save_failed" })?;
    saved.as_str().map(str::to_owned).ok_or("save_failed")
}

/// Whether any tenant has the store connected (or the answer is unknown).
async fn store_is_live(config: &Config, service: &str, shop: &str) -> bool {
    match config
        .rest
        .select(
            "commerce_integrations",
            &format!("select=id&source=eq.shopify&status=neq.disconnected&store_domain=eq.{shop}"),
            service,
        )
        .await
    {
        Ok(rows) => rows.as_array().map_or(true, |r| !r.is_empty()),
        Err(_) => true,
    }
}

async fn callback(ctx: &Ctx<'_>) -> Response {
    let config = ctx.config;
    let req = ctx.req;
    let shop = req.query_param("shop");
    let secrets = config.secrets("SHOPIFY_API_SECRET");
    if secrets.is_empty()
        || config.var("SHOPIFY_API_KEY").is_none()
        || config.service_role_key.is_none()
    {
        return refused(config, "not_configured", shop.as_deref());
    }
    if shopify_oauth_query_valid(&req.query, &secrets, ctx.clock.now_unix_secs()).is_err() {
        return refused(config, "invalid_hmac", None);
    }
    let Some(shop) = shop.filter(|s| shared::is_shop_domain(s)) else {
        return refused(config, "invalid_shop", None);
    };
    let (Some(state), Some(code)) = (req.query_param("state"), req.query_param("code")) else {
        return refused(config, "missing_parameters", Some(&shop));
    };
    let service = config.service_role_key.as_deref().expect("checked");
    let taken = match config
        .rest
        .rpc(
            "take_shopify_oauth_state",
            &json!({"state": state, "shop": shop}),
            service,
        )
        .await
    {
        Ok(v) => v,
        Err(_) => return refused(config, "unavailable", Some(&shop)),
    };
    if let Some(error) = taken["error"].as_str() {
        return refused(config, error, Some(&shop));
    }
    let (tenant, user) = (
        taken["tenant_id"].as_str().unwrap_or_default().to_owned(),
        taken["user_id"].as_str().unwrap_or_default().to_owned(),
    );
    let app = Shopify::from_config(config);
    let grant = match app.exchange_code(&shop, secrets[0], &code, ctx.clock).await {
        Ok(g) => g,
        Err(_) => return refused(config, "code_exchange_failed", Some(&shop)),
    };
    match connect(
        config,
        &app,
        ctx.clock,
        &shop,
        &tenant,
        &user,
        &grant.access_token,
        &grant.scopes,
        "oauth",
    )
    .await
    {
        Ok(id) => back_to_app(
            config,
            &[
                ("result", "connected"),
                ("integration_id", &id),
                ("shop", &shop),
            ],
        ),
        Err(code) => {
            // Nothing was stored: give the token back rather than leave the
            // app installed, unless the store is connected already (to this
            // tenant or another): uninstalling would end that connection.
            if code != "store_connected" && !store_is_live(config, service, &shop).await {
                let _ = app.revoke(&shop, &grant.access_token, ctx.clock).await;
            }
            refused(config, code, Some(&shop))
        }
    }
}

async fn start(shop: String, tenant_id: Option<Uuid>, ctx: &Ctx<'_>) -> Result<Response> {
    let config = ctx.config;
    let caller = authenticate(ctx.req, &config.jwt, ctx.clock.now_unix_secs()).await?;
    let as_user = Ctx::new(ctx.req, config, ctx.clock, Principal::User(caller.clone()));
    let tenant = as_user.tenant(tenant_id).await?;
    // The state is made first in every mode: it checks the caller's role and
    // that no other tenant has the store.
    let began = config
        .rest
        .rpc(
            "begin_shopify_oauth",
            &json!({"shop": shop, "tenant_id": tenant}),
            &caller.token,
        )
        .await?;
    // The platform's own token reaches the platform's own store for the
    // platform's own tenant only: anyone else goes through the merchant's
    // approval like for any store.
    let custom = config
        .var("SHOPIFY_ADMIN_ACCESS_TOKEN")
        .filter(|_| config.var("SHOPIFY_ADMIN_SHOP") == Some(shop.as_str()))
        .filter(|_| config.var("SHOPIFY_ADMIN_TENANT_ID") == Some(tenant.to_string().as_str()));
    if let Some(token) = custom {
        let service = ctx.require_service_key()?;
        config
            .rest
            .rpc(
                "take_shopify_oauth_state",
                &json!({"state": began["state"], "shop": shop}),
                service,
            )
            .await?;
        let app = Shopify::from_config(config);
        let scopes: Vec<String> = config
            .var("SHOPIFY_SCOPES")
            .unwrap_or(DEFAULT_SCOPES)
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        let id = connect(
            config,
            &app,
            ctx.clock,
            &shop,
            &tenant.to_string(),
            &caller.user_id.to_string(),
            token,
            &scopes,
            "custom_app",
        )
        .await
        .map_err(|code| match code {
            "store_connected" => ApiError::Conflict {
                code: "STORE_CONNECTED".into(),
                message: "this store is connected to another account; disconnect it there first"
                    .into(),
                details: json!({}),
            },
            _ => ApiError::Unavailable(format!("the store could not be connected: {code}")),
        })?;
        return Ok(Response::json(
            201,
            &json!({"mode": "custom_app", "integration_id": id, "shop": shop, "status": "connected"}),
        ));
    }
    if config.var("SHOPIFY_API_KEY").is_none() || config.secrets("SHOPIFY_API_SECRET").is_empty() {
        return Err(ApiError::Unavailable(
            "Shopify is not configured (SHOPIFY_API_KEY, SHOPIFY_API_SECRET)".into(),
        ));
    }
    let app = Shopify::from_config(config);
    let state = began["state"].as_str().unwrap_or_default();
    Ok(Response::json(
        200,
        &json!({
            "mode": "oauth",
            "authorize_url": app.authorize_url(
                &shop,
                config.var("SHOPIFY_SCOPES").unwrap_or(DEFAULT_SCOPES),
                &redirect_uri(config),
                state,
            ),
            "shop": shop,
            "tenant_id": tenant,
            "expires_at": began["expires_at"],
        }),
    ))
}

/// The function.
pub struct OauthShopify;

impl Endpoint for OauthShopify {
    const NAME: &'static str = FUNCTION_NAME;
    const METHODS: &'static [&'static str] = &["GET", "POST"];
    // The start checks the user's token itself; the callback is Shopify's
    // redirect, checked by its hmac.
    const AUTH: Auth = Auth::Public;
    type Input = Step;

    fn input(req: &Request, _now: i64) -> Result<Step> {
        if req.method == "GET" {
            return Ok(Step::Callback);
        }
        req.idempotency_key()?;
        read_start(&req.json_object()?)
    }

    async fn run(step: Step, ctx: &Ctx<'_>) -> Result<Response> {
        match step {
            Step::Callback => Ok(callback(ctx).await),
            Step::Start { shop, tenant_id } => start(shop, tenant_id, ctx).await,
        }
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(OauthShopify);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_named_by_its_domain_or_its_name() {
        assert_eq!(
            read_start(&json!({"shop": "Acme-1.myshopify.com"})).unwrap(),
            Step::Start {
                shop: "acme-1.myshopify.com".into(),
                tenant_id: None
            }
        );
        assert_eq!(
            read_start(&json!({"store_name": "acme"})).unwrap(),
            Step::Start {
                shop: "acme.myshopify.com".into(),
                tenant_id: None
            }
        );
        for bad in [
            json!({}),
            json!({"shop": "acme.com"}),
            json!({"shop": "-acme.myshopify.com"}),
            json!({"shop": "evil.com/.myshopify.com"}),
            json!({"shop": "a.myshopify.com", "store_name": "a"}),
            json!({"shop": 7}),
        ] {
            let e = read_start(&bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
            assert!(e.details()["shop"].is_string(), "{bad}");
        }
        let e = read_start(&json!({"shop": "a.myshopify.com", "tenant_id": "x"})).unwrap_err();
        assert_eq!(e.details()["tenant_id"], "must be a UUID");
    }
}
