//! `create-wholesale-order`: places a wholesale order atomically — credit check,
//! stock allocation across warehouses, order rows, delivery, alerts, the
//! confirmation outbox row and the audit row, all in one SQL transaction
//! (`public.create_wholesale_order`).
//!
//! Request (`POST /functions/v1/create-wholesale-order`, `Authorization: Bearer <user token>`,
//! optional `Idempotency-Key`):
//! ```json
//! {"client_id":"…","items":[{"product_id":"…","quantity":5,"unit_price":12.5}],
//!  "payment_terms":"net_30","delivery_method":"delivery","notes":"dock 4"}
//! ```
//! Response `201`:
//! ```json
//! {"success":true,"order_id":"…","order_number":"WO-2026-000042","total_amount":62.50}
//! ```
//! A replay of an earlier request with the same `Idempotency-Key` returns the
//! first response again, with `Idempotent-Replayed: true`.
//!
//! The confirmation email and SMS are written to the outbox in the order's
//! transaction; after the response, dispatch-notifications is asked to deliver
//! them (and the every-minute schedule would otherwise).

use std::collections::HashMap;

use shared::serde::Deserialize;
use shared::serde_json::{json, Map, Number, Value};
use shared::{
    json_number, Auth, Counted, Ctx, Decimal, DecimalRule, Endpoint, Keyed, Request, Response,
    Result, Uuid, Validator, DECIMAL_10_2_MAX,
};

/// The name rate limits and capacity are kept under.
pub const FUNCTION_NAME: &str = "create-wholesale-order";

/// Payment terms. `net_15` and `net_30` are sold on credit.
pub const PAYMENT_TERMS: &[&str] = &["prepaid", "cod", "net_15", "net_30", "net_60"];
/// Delivery methods. `delivery` and `freight` create a `deliveries` row.
pub const DELIVERY_METHODS: &[&str] = &["pickup", "delivery", "freight"];
pub const MAX_ITEMS: usize = 500;
pub const MAX_NOTES_CHARS: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    /// Take the whole line from this warehouse instead of allocating across all.
    pub warehouse_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderInput {
    pub client_id: Uuid,
    pub items: Vec<OrderItem>,
    pub payment_terms: &'static str,
    pub delivery_method: &'static str,
    pub notes: Option<String>,
}

/// Validates the body into [`OrderInput`], naming every bad field.
///
/// A product may appear twice only with different `warehouse_id`s; an exact
/// repeat (same product, same warehouse or both unset) is rejected rather than
/// merged, because two lines with different prices cannot be merged honestly.
pub fn validate(body: &Value) -> Result<OrderInput> {
    let mut v = Validator::new();
    let allowed = [
        "client_id",
        "items",
        "payment_terms",
        "delivery_method",
        "notes",
    ];
    let Some(obj) = v.object("", body, &allowed) else {
        return Err(v.finish(|| ()).unwrap_err());
    };
    let client_id = v
        .required(obj, "", "client_id")
        .and_then(|c| v.uuid("client_id", Some(c)));
    let payment_terms = v
        .required(obj, "", "payment_terms")
        .and_then(|p| v.one_of("payment_terms", Some(p), PAYMENT_TERMS));
    let delivery_method = v
        .required(obj, "", "delivery_method")
        .and_then(|d| v.one_of("delivery_method", Some(d), DELIVERY_METHODS));
    let notes = match obj.get("notes") {
        None | Some(Value::Null) => None,
        some => v.string("notes", some, MAX_NOTES_CHARS),
    };

    let mut items = Vec::new();
    let raw_items = v.required(obj, "", "items");
    if let Some(list) = v.array("items", raw_items, 1, MAX_ITEMS) {
        let mut seen: HashMap<(Uuid, Option<Uuid>), usize> = HashMap::new();
        let mut total = Decimal::ZERO;
        for (i, raw) in list.iter().enumerate() {
            let path = format!("items[{i}]");
            let Some(item) = v.object(
                &path,
                raw,
                &["product_id", "quantity", "unit_price", "warehouse_id"],
            ) else {
                continue;
            };
            let at = |k: &str| format!("{path}.{k}");
            let product_id = v
                .required(item, &path, "product_id")
                .and_then(|p| v.uuid(&at("product_id"), Some(p)));
            let quantity = v
                .required(item, &path, "quantity")
                .and_then(|q| v.decimal(&at("quantity"), Some(q), DecimalRule::POSITIVE_10_2));
            let unit_price = v.required(item, &path, "unit_price").and_then(|p| {
                v.decimal(&at("unit_price"), Some(p), DecimalRule::NON_NEGATIVE_10_2)
            });
            let warehouse_id = match item.get("warehouse_id") {
                None | Some(Value::Null) => None,
                some => v.uuid(&at("warehouse_id"), some),
            };
            let (Some(product_id), Some(quantity), Some(unit_price)) =
                (product_id, quantity, unit_price)
            else {
                continue;
            };
            if let Some(first) = seen.insert((product_id, warehouse_id), i) {
                v.error(
                    &at("product_id"),
                    format!(
                        "repeats items[{first}] for the same warehouse; combine them into one line"
                    ),
                );
                continue;
            }
            total += (quantity * unit_price).round_dp(2);
            items.push(OrderItem {
                product_id,
                quantity,
                unit_price,
                warehouse_id,
            });
        }
        if total > DECIMAL_10_2_MAX {
            v.error(
                "items",
                format!("the order total must be at most {DECIMAL_10_2_MAX}"),
            );
        }
    }

    v.finish(|| OrderInput {
        client_id: client_id.expect("validated"),
        items,
        payment_terms: payment_terms.expect("validated"),
        delivery_method: delivery_method.expect("validated"),
        notes,
    })
}

/// The RPC's named arguments. `idempotency_key` is left out when absent, so
/// the SQL default applies on both PostgREST and postrust.
pub fn rpc_args(input: &OrderInput, idempotency_key: Option<&str>) -> Value {
    let items: Vec<Value> = input
        .items
        .iter()
        .map(|it| {
            let mut m = Map::new();
            m.insert("product_id".into(), json!(it.product_id));
            m.insert("quantity".into(), json_number(it.quantity));
            m.insert("unit_price".into(), json_number(it.unit_price));
            if let Some(w) = it.warehouse_id {
                m.insert("warehouse_id".into(), json!(w));
            }
            Value::Object(m)
        })
        .collect();
    let mut payload = json!({
        "client_id": input.client_id,
        "items": items,
        "payment_terms": input.payment_terms,
        "delivery_method": input.delivery_method,
    });
    if let Some(notes) = &input.notes {
        payload["notes"] = json!(notes);
    }
    let mut args = json!({ "payload": payload });
    if let Some(key) = idempotency_key {
        args["idempotency_key"] = json!(key);
    }
    args
}

/// What `create_wholesale_order` answers.
#[derive(Debug, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Placed {
    pub order_id: Uuid,
    pub order_number: String,
    /// Kept as the database's text: `62.50` stays `62.50`.
    pub total_amount: Number,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub replayed: bool,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub notifications_queued: u64,
}

/// Turns the RPC's result into the 201 response.
pub fn response_from_rpc(placed: &Placed) -> Response {
    let body = json!({
        "success": true,
        "order_id": placed.order_id,
        "order_number": placed.order_number,
        "total_amount": placed.total_amount,
    });
    Response::json(201, &body).replayed(placed.replayed)
}

/// The function: a signed-in member places an order for one of the tenant's clients.
pub struct CreateWholesaleOrder;

impl Endpoint for CreateWholesaleOrder {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = Keyed<OrderInput>;

    fn input(req: &Request, _now: i64) -> Result<Keyed<OrderInput>> {
        Keyed::read(req, validate)
    }

    async fn run(keyed: Keyed<OrderInput>, ctx: &Ctx<'_>) -> Result<Response> {
        let input = keyed.input;
        let args = rpc_args(&input, keyed.idempotency_key.as_deref());
        let counted = Counted {
            function_name: FUNCTION_NAME,
            subject_id: input.client_id,
        };
        let placed: Placed = ctx
            .config
            .rest
            .rpc_counted_as(
                "create_wholesale_order",
                &args,
                ctx.caller()?,
                counted,
                ctx.service_role_key(),
                ctx.clock,
            )
            .await?;
        // The confirmation is in the outbox; deliver it without delaying the
        // response. A replay queued nothing new.
        if placed.notifications_queued > 0 && !placed.replayed {
            ctx.deliver_outbox();
        }
        Ok(response_from_rpc(&placed))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(CreateWholesaleOrder);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    const C: &str = "11111111-1111-4111-8111-111111111111";
    const P: &str = "22222222-2222-4222-8222-222222222222";
    const Q: &str = "33333333-3333-4333-8333-333333333333";
    const W: &str = "44444444-4444-4444-8444-444444444444";

    fn body(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn details(text: &str) -> Value {
        validate(&body(text)).unwrap_err().details()
    }

    #[test]
    fn a_valid_order_becomes_typed_input() {
        let input = validate(&body(&format!(
            r#"{{"client_id":"{C}","items":[{{"product_id":"{P}","quantity":2.5,"unit_price":10.10}},
               {{"product_id":"{P}","quantity":1,"unit_price":0,"warehouse_id":"{W}"}}],
               "payment_terms":"net_30","delivery_method":"delivery","notes":"dock 4"}}"#
        )))
        .unwrap();
        assert_eq!(input.items.len(), 2);
        assert_eq!(input.items[0].quantity.to_string(), "2.5");
        assert_eq!(input.items[0].unit_price.to_string(), "10.1");
        assert_eq!(
            input.items[1].warehouse_id,
            Some(Uuid::parse_str(W).unwrap())
        );
        assert_eq!(input.payment_terms, "net_30");
        assert_eq!(input.notes.as_deref(), Some("dock 4"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let d = details(&format!(
            r#"{{"client_id":"nope","items":[{{"product_id":"{P}","quantity":0,"unit_price":-1}},
               {{"product_id":"x","quantity":1.234,"unit_price":"5","colour":"red"}}],
               "payment_terms":"barter","delivery_method":"teleport","notes":"{}","extra":1}}"#,
            "n".repeat(2001)
        ));
        for (path, msg) in [
            ("client_id", "must be a UUID string"),
            ("items[0].quantity", "must be greater than 0"),
            ("items[0].unit_price", "must be at least 0"),
            ("items[1].product_id", "must be a UUID string"),
            ("items[1].quantity", "must have at most 2 decimal places"),
            ("items[1].unit_price", "must be a number"),
            ("items[1].colour", "unknown field"),
            (
                "payment_terms",
                "must be one of: prepaid, cod, net_15, net_30, net_60",
            ),
            (
                "delivery_method",
                "must be one of: pickup, delivery, freight",
            ),
            ("notes", "must be at most 2000 characters"),
            ("extra", "unknown field"),
        ] {
            assert_eq!(d[path], msg, "{path}");
        }
    }

    #[test]
    fn missing_fields_and_item_counts() {
        let d = details("{}");
        for k in ["client_id", "items", "payment_terms", "delivery_method"] {
            assert_eq!(d[k], "is required", "{k}");
        }
        let base = |items: &str| {
            format!(
                r#"{{"client_id":"{C}","items":{items},"payment_terms":"prepaid","delivery_method":"pickup"}}"#
            )
        };
        assert_eq!(details(&base("[]"))["items"], "must have 1 to 500 entries");
        let line =
            format!(r#"{{"product_id":"{P}","quantity":1,"unit_price":1,"warehouse_id":"{{}}"}}"#);
        let many: Vec<String> = (0..501)
            .map(|i| line.replace("{}", &format!("44444444-4444-4444-8444-{i:012}")))
            .collect();
        assert_eq!(
            details(&base(&format!("[{}]", many.join(","))))["items"],
            "must have 1 to 500 entries"
        );
        assert!(validate(&body(&base(&format!("[{}]", many[..500].join(","))))).is_ok());
    }

    #[test]
    fn repeated_product_on_the_same_warehouse_is_rejected() {
        let d = details(&format!(
            r#"{{"client_id":"{C}","payment_terms":"prepaid","delivery_method":"pickup","items":[
               {{"product_id":"{P}","quantity":1,"unit_price":1}},
               {{"product_id":"{Q}","quantity":1,"unit_price":1}},
               {{"product_id":"{P}","quantity":2,"unit_price":1}}]}}"#
        ));
        assert_eq!(
            d["items[2].product_id"],
            "repeats items[0] for the same warehouse; combine them into one line"
        );
    }

    #[test]
    fn order_total_must_fit_decimal_10_2() {
        let d = details(&format!(
            r#"{{"client_id":"{C}","payment_terms":"prepaid","delivery_method":"pickup","items":[
               {{"product_id":"{P}","quantity":99999999,"unit_price":2}}]}}"#
        ));
        assert_eq!(d["items"], "the order total must be at most 99999999.99");
    }

    #[test]
    fn rpc_args_keep_decimals_exact_and_omit_absent_keys() {
        let input = validate(&body(&format!(
            r#"{{"client_id":"{C}","items":[{{"product_id":"{P}","quantity":0.1,"unit_price":0.2}}],
               "payment_terms":"prepaid","delivery_method":"pickup"}}"#
        )))
        .unwrap();
        let args = rpc_args(&input, None);
        assert_eq!(args.to_string().matches("idempotency_key").count(), 0);
        assert!(args["payload"].get("notes").is_none());
        assert!(args["payload"]["items"][0].get("warehouse_id").is_none());
        let text = args["payload"]["items"][0].to_string();
        assert!(
            text.contains(r#""quantity":0.1"#) && text.contains(r#""unit_price":0.2"#),
            "{text}"
        );
        assert_eq!(rpc_args(&input, Some("k1"))["idempotency_key"], "k1");
    }

    #[test]
    fn rpc_result_maps_to_201_and_marks_replays() {
        let placed: Placed = serde_json::from_str(&format!(
            r#"{{"order_id":"{C}","order_number":"WO-2026-000001","total_amount":12.50,"replayed":true}}"#
        ))
        .unwrap();
        let r = response_from_rpc(&placed);
        assert_eq!(r.status, 201);
        assert_eq!(
            r.text(),
            format!(
                r#"{{"order_id":"{C}","order_number":"WO-2026-000001","success":true,"total_amount":12.50}}"#
            )
        );
        assert!(r
            .headers
            .contains(&("idempotent-replayed".into(), "true".into())));
        // A result without the fields the response needs is an error, not a blank.
        let e = shared::rpc_result::<Placed>("create_wholesale_order", body(r#"{"order_id":"o"}"#))
            .unwrap_err();
        assert_eq!(e.status(), 500);
    }
}
