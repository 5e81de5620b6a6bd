//! `disconnect-platform`: disconnects a store from a tenant.
//!
//! `POST {"integration_id", "mode"?: "keep_data" | "purge"}` (an admin of the
//! integration's tenant):
//!
//! 1. the caller's role is checked (404 for an integration not theirs, 403
//!    for a member who is not an admin) before anything happens;
//! 2. the app is uninstalled from the store, which revokes its token
//!    (not for a store connected with the platform's own custom-app token,
//!    `custom_app_kept`: that credential is the platform's, not a grant)
//!    (`DELETE /admin/api_permissions/current.json`). A token already revoked
//!    (the merchant uninstalled the app) counts as done. When the store
//!    cannot be reached, the answer is 503 and nothing changes, so the
//!    disconnect can be asked again without leaving a live token behind;
//! 3. `disconnect_commerce_integration` (through the function's admission
//!    and rate limit) destroys the sealed token, sets the status
//!    `disconnected`, stops a running sync and, with `mode: "purge"`,
//!    deletes every synced row (`keep_data`, the default, keeps them for
//!    reporting; a later connection of the same store takes them over);
//! 4. it is recorded in the audit log, with what the store answered.
//!
//! Disconnecting a disconnected integration answers the same again.

use shared::commerce::token_context;
use shared::providers::shopify::Shopify;
use shared::serde_json::{json, Map, Value};
use shared::{ApiError, Auth, Counted, Ctx, Endpoint, Request, Response, Result, Uuid};

pub const FUNCTION_NAME: &str = "disconnect-platform";

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub integration_id: Uuid,
    pub purge: bool,
}

/// Validates a request body.
pub fn read(body: &Value) -> Result<Input> {
    let mut problems = Map::new();
    let integration_id = body
        .get("integration_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok());
    if integration_id.is_none() {
        problems.insert("integration_id".into(), json!("is required (a UUID)"));
    }
    let purge = match body.get("mode") {
        None | Some(Value::Null) => false,
        Some(Value::String(m)) if m == "keep_data" => false,
        Some(Value::String(m)) if m == "purge" => true,
        Some(_) => {
            problems.insert("mode".into(), json!("must be keep_data or purge"));
            false
        }
    };
    for key in body.as_object().into_iter().flat_map(|o| o.keys()) {
        if key != "integration_id" && key != "mode" {
            problems.insert(key.clone(), json!("is not a field of this request"));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(Input {
        integration_id: integration_id.expect("validated"),
        purge,
    })
}

/// The function.
pub struct DisconnectPlatform;

impl Endpoint for DisconnectPlatform {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = Input;

    fn input(req: &Request, _now: i64) -> Result<Input> {
        // Disconnecting twice answers the same; a header key is still checked.
        req.idempotency_key()?;
        read(&req.json_object()?)
    }

    async fn run(input: Input, ctx: &Ctx<'_>) -> Result<Response> {
        let caller = ctx.caller()?;
        let config = ctx.config;
        let rest = &config.rest;
        // 1. Only an admin of the integration's tenant goes further.
        rest.rpc(
            "commerce_integration_for_admin",
            &json!({"integration_id": input.integration_id}),
            &caller.token,
        )
        .await?;
        // 2. Revoke at the store, while the token still exists.
        let service = ctx.require_service_key()?;
        let creds = rest
            .rpc(
                "integration_credentials",
                &json!({"integration_id": input.integration_id}),
                service,
            )
            .await?;
        let revoked = match creds["token"].as_str() {
            None => "no_token".to_owned(),
            // The platform's own custom-app token is not the merchant's grant:
            // it stays installed (and usable for a later connection).
            Some(_) if creds["auth_mode"] == json!("custom_app") => "custom_app_kept".to_owned(),
            Some(sealed) => {
                let shop = creds["store_domain"].as_str().unwrap_or_default();
                let tenant = creds["tenant_id"].as_str().unwrap_or_default();
                let keys = vault::Keyring::parse(config.var(vault::KEYS_VAR).unwrap_or_default())
                    .map_err(|e| {
                    ApiError::Unavailable(format!("token keys: {}", e.message()))
                })?;
                match keys.open(sealed, token_context(tenant, shop).as_bytes()) {
                    // A token no key opens cannot be revoked by us; it is destroyed below.
                    Err(e) => format!("unopenable: {}", e.message()),
                    Ok(token) => Shopify::from_config(config)
                        .revoke(shop, &String::from_utf8_lossy(&token), ctx.clock)
                        .await
                        .map_err(|e| {
                            ApiError::Unavailable(format!(
                                "the store did not confirm the app's removal; nothing was changed, try again: {}",
                                e.reason()
                            ))
                        })?
                        .to_owned(),
                }
            }
        };
        // 3. and 4.
        let result = rest
            .rpc_counted(
                "disconnect_commerce_integration",
                &json!({"integration_id": input.integration_id, "purge": input.purge, "revoked": revoked}),
                caller,
                Counted {
                    function_name: FUNCTION_NAME,
                    subject_id: input.integration_id,
                },
                ctx.service_role_key(),
                ctx.clock,
            )
            .await?;
        Ok(Response::json(200, &result))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(DisconnectPlatform);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_data_is_the_default_and_purge_is_asked_for() {
        let id = "6f1c1c1e-0000-4000-8000-000000000001";
        assert!(!read(&json!({"integration_id": id})).unwrap().purge);
        assert!(
            !read(&json!({"integration_id": id, "mode": "keep_data"}))
                .unwrap()
                .purge
        );
        assert!(
            read(&json!({"integration_id": id, "mode": "purge"}))
                .unwrap()
                .purge
        );
        let d = read(&json!({"mode": "all", "keep": true}))
            .unwrap_err()
            .details();
        assert_eq!(d["integration_id"], "is required (a UUID)");
        assert_eq!(d["mode"], "must be keep_data or purge");
        assert_eq!(d["keep"], "is not a field of this request");
    }
}
