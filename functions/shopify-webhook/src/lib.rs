//! `shopify-webhook`: a connected store's webhooks.
//!
//! Shopify signs each delivery in `X-Shopify-Hmac-Sha256`: the base64
//! HMAC-SHA256 of the raw body with the app's client secret
//! (`SHOPIFY_API_SECRET`; several, comma-separated, while it is rotated). The
//! kit checks it before anything is read; a bad or missing signature is 401
//! and changes nothing (the compliance topics require exactly that).
//!
//! A verified delivery is mapped to its work and recorded once per
//! (`X-Shopify-Shop-Domain`, `X-Shopify-Webhook-Id`) by
//! `public.record_commerce_webhook`, and answered `200` at once: Shopify
//! wants an answer within 5 seconds. The work is then applied right after
//! the answer (`apply_commerce_webhook`), and any event left queued (the
//! isolate stopped) by the pg_cron job `apply-commerce-webhooks`. A retried
//! or replayed delivery is acknowledged and applied once.
//!
//! | topic | work |
//! |---|---|
//! | `orders/create`, `orders/updated` | the order and its line items upserted |
//! | `products/create`, `products/update` | the product and its variants (a variant no longer listed is deleted) |
//! | `products/delete` | the product soft-deleted |
//! | `checkouts/create`, `checkouts/update` | the abandoned checkout and its items |
//! | `app/uninstalled` | the integration disconnected and its token destroyed |
//! | `customers/redact` | the customer's personal data erased from every commerce table |
//! | `shop/redact` | every synced row of the store deleted |
//! | `customers/data_request` | logged in the tenant's audit log |
//!
//! An older version of a record never overwrites a newer one (the payload's
//! `updated_at`), so deliveries may arrive in any order. A topic not listed
//! is acknowledged and ignored.

use shared::commerce::{cart_from_rest, external_id, order_from_rest, product_from_rest};
use shared::serde::Deserialize;
use shared::serde_json::{json, Value};
use shared::webhooks::shopify_webhook_id;
use shared::{ApiError, Auth, Ctx, Endpoint, Request, Response, Result, Scheme};

pub const FUNCTION_NAME: &str = "shopify-webhook";

/// One delivery, verified and mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub shop: String,
    pub webhook_id: String,
    pub topic: String,
    /// What applying it does (see `public.apply_commerce_webhook`).
    pub work: Value,
}

/// The work a topic's payload asks for; `None` for a topic not handled.
pub fn work_for(topic: &str, payload: &Value) -> Result<Option<Value>> {
    let id = |v: &Value, field: &str| {
        external_id(v).ok_or_else(|| ApiError::field(field, "is required (the record's id)"))
    };
    Ok(Some(match topic {
        "orders/create" | "orders/updated" | "orders/paid" | "orders/cancelled"
        | "orders/fulfilled" => {
            id(&payload["id"], "id")?;
            json!({"resource": "orders", "records": [order_from_rest(payload)]})
        }
        "products/create" | "products/update" => {
            id(&payload["id"], "id")?;
            json!({"resource": "products", "records": [product_from_rest(payload)]})
        }
        "products/delete" => json!({"delete_product": id(&payload["id"], "id")?}),
        "checkouts/create" | "checkouts/update" => {
            id(&payload["id"], "id")?;
            json!({"resource": "abandoned_checkouts", "records": [cart_from_rest(payload)]})
        }
        "app/uninstalled" => json!({"uninstalled": true}),
        "customers/redact" => json!({
            "redact_customer": id(&payload["customer"]["id"], "customer.id")?,
            "orders": payload["orders_to_redact"].as_array().into_iter().flatten()
                .filter_map(external_id).collect::<Vec<_>>(),
        }),
        "shop/redact" => json!({"redact_shop": true}),
        "customers/data_request" => json!({"data_request": {
            "customer_id": payload["customer"]["id"].as_u64().map(|n| n.to_string())
                .or_else(|| external_id(&payload["customer"]["id"])),
            "orders_requested": payload["orders_requested"],
            "data_request_id": payload["data_request"]["id"],
        }}),
        _ => return Ok(None),
    }))
}

/// Reads the (already verified) request.
pub fn read(req: &Request) -> Result<Delivery> {
    let header = |name: &str| req.header(name).map(str::trim).filter(|v| !v.is_empty());
    let shop = header("x-shopify-shop-domain")
        .filter(|s| shared::is_shop_domain(s))
        .ok_or_else(|| {
            ApiError::field("x-shopify-shop-domain", "is required (the store's domain)")
        })?
        .to_owned();
    let webhook_id = shopify_webhook_id(&req.headers)
        .filter(|id| id.len() <= 200)
        .ok_or_else(|| {
            ApiError::field("x-shopify-webhook-id", "is required (1 to 200 characters)")
        })?
        .to_owned();
    let topic = header("x-shopify-topic")
        .filter(|t| t.len() <= 100)
        .ok_or_else(|| ApiError::field("x-shopify-topic", "is required"))?
        .to_owned();
    let payload = req.json_object()?;
    // The shop header is outside the signature: where the payload names its
    // store (app/uninstalled, the compliance topics), the two must agree.
    let named = payload
        .get("myshopify_domain")
        .or_else(|| payload.get("shop_domain"))
        .and_then(Value::as_str);
    if named.is_some_and(|n| n != shop) {
        return Err(ApiError::Unauthorized(
            "the payload names another store than X-Shopify-Shop-Domain".into(),
        ));
    }
    let mut work = work_for(&topic, &payload)?.unwrap_or_else(|| json!({"ignored": true}));
    // When Shopify raised the event: an uninstall older than the connection is not this connection's.
    if let Some(at) = header("x-shopify-triggered-at").filter(|t| t.len() <= 64) {
        work["triggered_at"] = json!(at);
    }
    Ok(Delivery {
        shop,
        webhook_id,
        topic,
        work,
    })
}

#[derive(Debug, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Recorded {
    pub event_id: String,
    pub duplicate: bool,
    pub status: String,
}

/// The function.
pub struct ShopifyWebhook;

impl Endpoint for ShopifyWebhook {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::Webhook {
        scheme: Scheme::Shopify,
        secrets_var: "SHOPIFY_API_SECRET",
    };
    type Input = Delivery;

    fn input(req: &Request, _now: i64) -> Result<Delivery> {
        read(req)
    }

    async fn run(d: Delivery, ctx: &Ctx<'_>) -> Result<Response> {
        let key = ctx.require_service_key()?;
        let ignored = d.work.get("ignored").is_some();
        let recorded: Recorded = ctx
            .config
            .rest
            .rpc_as(
                "record_commerce_webhook",
                &json!({"shop": d.shop, "webhook_id": d.webhook_id, "topic": d.topic, "work": d.work}),
                key,
            )
            .await?;
        if !recorded.duplicate && recorded.status == "queued" && !ignored {
            let config = ctx.config;
            let apply = async move {
                config
                    .rest
                    .rpc(
                        "apply_commerce_webhook",
                        &json!({"event_id": recorded.event_id}),
                        key,
                    )
                    .await
            };
            #[cfg(target_arch = "wasm32")]
            ctx.after(async move {
                if let Err(e) = apply.await {
                    shared::runtime::log_error(&format!("{FUNCTION_NAME}: apply: {}", e.message()));
                }
            });
            #[cfg(not(target_arch = "wasm32"))]
            apply.await?;
        }
        Ok(Response::json(
            200,
            &json!({"received": true, "duplicate": recorded.duplicate, "status": recorded.status}),
        ))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(ShopifyWebhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "POST".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    const H: &[(&str, &str)] = &[
        ("x-shopify-shop-domain", "acme.myshopify.com"),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
        ("x-shopify-topic", "orders/create"),
    ];

    #[test]
    fn a_delivery_is_read_from_its_headers_and_payload() {
        let d = read(&req(
            H,
            r##"{"id": 820982911946154508, "name": "#9999", "updated_at": "2026-11-27T10:00:00Z",
            "payment_gateway_names": ["Cash on Delivery (COD)"], "line_items": []}"##,
        ))
        .unwrap();
        assert_eq!(d.shop, "acme.myshopify.com");
        assert_eq!(d.work["resource"], "orders");
        assert_eq!(d.work["records"][0]["external_id"], "820982911946154508");
        assert_eq!(d.work["records"][0]["payment_type"], "cod");
    }

    #[test]
    fn each_topic_maps_to_its_work() {
        let w = |t: &str, p: Value| work_for(t, &p).unwrap().unwrap();
        assert_eq!(
            w("products/delete", json!({"id": 788032119674292922_u64})),
            json!({"delete_product": "788032119674292922"})
        );
        assert_eq!(
            w(
                "customers/redact",
                json!({"shop_id": 1, "customer": {"id": 207119551, "email": "j@x.test"},
                "orders_to_redact": [299938, 280263]})
            ),
            json!({"redact_customer": "207119551", "orders": ["299938", "280263"]})
        );
        assert_eq!(
            w("shop/redact", json!({"shop_id": 1})),
            json!({"redact_shop": true})
        );
        assert_eq!(
            w("app/uninstalled", json!({"id": 1})),
            json!({"uninstalled": true})
        );
        assert_eq!(
            w(
                "customers/data_request",
                json!({"customer": {"id": 7}, "orders_requested": [1],
            "data_request": {"id": 9}})
            )["data_request"]["customer_id"],
            "7"
        );
        assert_eq!(
            w(
                "checkouts/update",
                json!({"id": 5, "line_items": [{"key": "k1", "quantity": 1}]})
            )["records"][0]["items"][0]["external_id"],
            "k1"
        );
        assert!(work_for("themes/publish", &json!({})).unwrap().is_none());
    }

    #[test]
    fn a_payload_naming_another_store_is_refused_and_the_trigger_time_is_kept() {
        let h: Vec<_> = H
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    if *k == "x-shopify-topic" {
                        "shop/redact"
                    } else {
                        *v
                    },
                )
            })
            .chain([("x-shopify-triggered-at", "2026-11-27T10:00:00.123Z")])
            .collect();
        let e = read(&req(
            &h,
            r#"{"shop_id": 1, "shop_domain": "other.myshopify.com"}"#,
        ))
        .unwrap_err();
        assert_eq!(e.status(), 401);
        let d = read(&req(
            &h,
            r#"{"shop_id": 1, "shop_domain": "acme.myshopify.com"}"#,
        ))
        .unwrap();
        assert_eq!(d.work["triggered_at"], "2026-11-27T10:00:00.123Z");
        assert_eq!(d.work["redact_shop"], true);
    }

    #[test]
    fn a_delivery_without_its_headers_or_ids_is_refused() {
        assert_eq!(read(&req(&H[1..], "{}")).unwrap_err().status(), 400);
        let no_id: Vec<_> = H
            .iter()
            .filter(|(k, _)| *k != "x-shopify-webhook-id")
            .cloned()
            .collect();
        assert_eq!(
            read(&req(&no_id, "{}")).unwrap_err().details()["x-shopify-webhook-id"],
            "is required (1 to 200 characters)"
        );
        assert_eq!(
            read(&req(H, r##"{"name": "#1"}"##)).unwrap_err().details()["id"],
            "is required (the record's id)"
        );
        assert_eq!(read(&req(H, "[")).unwrap_err().code(), "INVALID_JSON");
    }
}
