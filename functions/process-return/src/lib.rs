//! `process-return`: a return in one SQL transaction (`public.process_return`):
//! the over-return guard, the RA number, the return lines, stock back to the
//! warehouses it came from, the order's returned totals, the confirmation
//! email and the audit row; then, by `return_method`, a refund through Stripe,
//! a credit to the client's balance, or a replacement order.
//!
//! Request (`POST /functions/v1/process-return`, `Authorization: Bearer <user
//! token>`; `Idempotency-Key` is required for refunds):
//! ```json
//! {"order_id":"…","items":[{"order_item_id":"…","quantity":2,"reason":"damaged"}],
//!  "return_method":"refund"}
//! ```
//! Response `201`: `{"success":true,"return_id":"…","ra_number":"RA-2026-000003"}`.
//!
//! Refunds. The transaction records a `pending` refund for the returned value.
//! This function then creates it at Stripe (`POST /v1/refunds`, form-encoded)
//! with the idempotency key `refund_<refund id>`, so no retry, by us or by the
//! caller, can refund twice; and records Stripe's refund id and status with
//! the service role (members cannot mark refunds paid).
//! - Stripe accepted: 201.
//! - Stripe failed transiently (after the client's own retries): 502
//!   `REFUND_PENDING` naming the return and the refund; the refund stays
//!   `pending` with the error. Repeating the request with the same
//!   Idempotency-Key replays the return and submits the same refund again.
//! - Stripe refused it (4xx), or answered `failed`/`canceled`: 502
//!   `REFUND_FAILED` with Stripe's reason; the return is `refund_failed`.
//!
//! That retry needs the key, so refunds without an Idempotency-Key are refused
//! (400) rather than risk a return whose refund nobody can finish.

use std::collections::HashSet;

use shared::refunds::{submit, RefundState};
use shared::serde::Deserialize;
use shared::serde_json::{json, Value};
use shared::{
    json_number, ApiError, Auth, Counted, Ctx, Decimal, DecimalRule, Endpoint, Keyed, Request,
    Response, Result, Uuid, Validator,
};

/// The name rate limits and capacity are kept under.
pub const FUNCTION_NAME: &str = "process-return";
pub const RETURN_METHODS: &[&str] = &["refund", "exchange", "credit"];
pub const MAX_ITEMS: usize = 500;
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct ReturnItem {
    pub order_item_id: Uuid,
    pub quantity: Decimal,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReturnInput {
    pub order_id: Uuid,
    pub items: Vec<ReturnItem>,
    pub return_method: &'static str,
}

/// Validates the body into [`ReturnInput`], naming every bad field. An order
/// line may appear once per return.
pub fn validate(body: &Value) -> Result<ReturnInput> {
    let mut v = Validator::new();
    let Some(obj) = v.object("", body, &["order_id", "items", "return_method"]) else {
        return Err(v.finish(|| ()).unwrap_err());
    };
    let order_id = v
        .required(obj, "", "order_id")
        .and_then(|o| v.uuid("order_id", Some(o)));
    let method = v
        .required(obj, "", "return_method")
        .and_then(|m| v.one_of("return_method", Some(m), RETURN_METHODS));
    let mut items = Vec::new();
    let raw = v.required(obj, "", "items");
    if let Some(list) = v.array("items", raw, 1, MAX_ITEMS) {
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut order: Vec<Uuid> = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            let path = format!("items[{i}]");
            let Some(item) = v.object(&path, raw, &["order_item_id", "quantity", "reason"]) else {
                continue;
            };
            let at = |k: &str| format!("{path}.{k}");
            let id = v
                .required(item, &path, "order_item_id")
                .and_then(|x| v.uuid(&at("order_item_id"), Some(x)));
            let quantity = v
                .required(item, &path, "quantity")
                .and_then(|q| v.decimal(&at("quantity"), Some(q), DecimalRule::POSITIVE_10_2));
            let reason = v
                .required(item, &path, "reason")
                .and_then(|r| v.string(&at("reason"), Some(r), MAX_REASON_CHARS));
            let reason = match reason {
                Some(r) if r.trim().is_empty() => {
                    v.error(&at("reason"), "must be a non-empty string");
                    None
                }
                other => other,
            };
            let (Some(id), Some(quantity), Some(reason)) = (id, quantity, reason) else {
                continue;
            };
            if !seen.insert(id) {
                let first = order.iter().position(|o| *o == id).unwrap_or(0);
                v.error(
                    &at("order_item_id"),
                    format!("repeats items[{first}]; combine them into one line"),
                );
                continue;
            }
            order.push(id);
            items.push(ReturnItem {
                order_item_id: id,
                quantity,
                reason: reason.trim().to_owned(),
            });
        }
    }
    v.finish(|| ReturnInput {
        order_id: order_id.expect("validated"),
        items,
        return_method: method.expect("validated"),
    })
}

/// The RPC's named arguments; `idempotency_key` is left out when absent.
pub fn rpc_args(input: &ReturnInput, idempotency_key: Option<&str>) -> Value {
    let items: Vec<Value> = input
        .items
        .iter()
        .map(|it| {
            json!({
                "order_item_id": it.order_item_id,
                "quantity": json_number(it.quantity),
                "reason": it.reason,
            })
        })
        .collect();
    let mut args = json!({ "payload": {
        "order_id": input.order_id,
        "items": items,
        "return_method": input.return_method,
    }});
    if let Some(key) = idempotency_key {
        args["idempotency_key"] = json!(key);
    }
    args
}

/// What process_return returned.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Processed {
    pub return_id: String,
    pub ra_number: String,
    #[serde(default)]
    pub refund: Option<RefundState>,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub replayed: bool,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub notifications_queued: u64,
}

impl Processed {
    pub fn from_rpc(result: &Value) -> Result<Self> {
        shared::rpc_result("process_return", result.clone())
    }

    /// Outbox rows to deliver now: none for a replay, which queued nothing new.
    pub fn queued(&self) -> bool {
        self.notifications_queued > 0 && !self.replayed
    }

    pub fn response(&self) -> Response {
        Response::json(
            201,
            &json!({ "success": true, "return_id": self.return_id, "ra_number": self.ra_number }),
        )
        .replayed(self.replayed)
    }

    /// The answer when the refund could not be completed.
    pub fn refund_error(&self, refund: &RefundState, failed: bool, cause: &str) -> ApiError {
        let details = json!({
            "return_id": self.return_id,
            "ra_number": self.ra_number,
            "refund_id": refund.id,
            "refund_status": if failed { "failed" } else { "pending" },
        });
        if failed {
            ApiError::Unfinished {
                code: "REFUND_FAILED".into(),
                message: format!(
                    "the return was recorded but Stripe refused the refund: {}",
                    cause.trim()
                ),
                details,
                cause: cause.into(),
            }
        } else {
            ApiError::Unfinished {
                code: "REFUND_PENDING".into(),
                message: "the return was recorded but the refund could not be completed yet; \
                          repeat the request with the same Idempotency-Key to finish it"
                    .into(),
                details,
                cause: cause.into(),
            }
        }
    }
}

/// The function: a member records a return against one of the tenant's orders.
pub struct ProcessReturn;

impl Endpoint for ProcessReturn {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = Keyed<ReturnInput>;

    fn input(req: &Request, _now: i64) -> Result<Keyed<ReturnInput>> {
        Keyed::read(req, validate)
    }

    async fn run(input: Keyed<ReturnInput>, ctx: &Ctx<'_>) -> Result<Response> {
        let p = run(&input.input, input.idempotency_key.as_deref(), ctx).await?;
        if p.queued() {
            ctx.deliver_outbox();
        }
        Ok(p.response())
    }
}

/// Records the return, then completes its refund with Stripe if it has one.
pub async fn run(
    input: &ReturnInput,
    idempotency_key: Option<&str>,
    ctx: &Ctx<'_>,
) -> Result<Processed> {
    if input.return_method == "refund" && idempotency_key.is_none() {
        return Err(ApiError::field(
            "Idempotency-Key",
            "is required for refunds, so that a refund Stripe did not complete can be finished by repeating the request",
        ));
    }
    let args = rpc_args(input, idempotency_key);
    let counted = Counted {
        function_name: FUNCTION_NAME,
        subject_id: input.order_id,
    };
    let rest = &ctx.config.rest;
    let p: Processed = rest
        .rpc_counted_as(
            "process_return",
            &args,
            ctx.caller()?,
            counted,
            ctx.service_role_key(),
            ctx.clock,
        )
        .await?;
    let Some(refund) = p.refund.clone() else {
        return Ok(p);
    };
    if refund.has_failed() {
        let cause = refund.last_error.clone().unwrap_or_default();
        return Err(p.refund_error(&refund, true, &cause));
    }
    if !refund.needs_submitting() {
        return Ok(p);
    }

    let service_key = ctx.require_service_key()?;
    // If recording fails, Stripe may have the refund without our knowing: the
    // retry sends the same key, Stripe answers with the same refund, and it is
    // recorded then (or by the outbox's scheduled retry).
    let submitted = submit(
        &refund,
        &p.return_id,
        &p.ra_number,
        ctx.config.providers.stripe.as_ref(),
        rest,
        service_key,
        ctx.clock,
    )
    .await
    .map_err(|e| p.refund_error(&refund, false, &format!("recording: {}", e.code())))?;
    match submitted.stripe {
        Ok(_) if submitted.recorded.has_failed() => Err(p.refund_error(
            &refund,
            true,
            &format!("Stripe reports the refund {}", submitted.recorded.status),
        )),
        Ok(_) => Ok(p),
        Err(e) => Err(p.refund_error(&refund, e.is_permanent(), e.reason())),
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(ProcessReturn);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    const O: &str = "11111111-1111-4111-8111-111111111111";
    const I: &str = "22222222-2222-4222-8222-222222222222";
    const J: &str = "33333333-3333-4333-8333-333333333333";

    fn body(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn details(text: &str) -> Value {
        validate(&body(text)).unwrap_err().details()
    }

    #[test]
    fn a_valid_return_becomes_typed_input() {
        let input = validate(&body(&format!(
            r#"{{"order_id":"{O}","return_method":"credit","items":[
               {{"order_item_id":"{I}","quantity":1.5,"reason":" damaged "}},
               {{"order_item_id":"{J}","quantity":2,"reason":"wrong size"}}]}}"#
        )))
        .unwrap();
        assert_eq!(input.return_method, "credit");
        assert_eq!(input.items[0].quantity.to_string(), "1.5");
        assert_eq!(input.items[0].reason, "damaged");
        let args = rpc_args(&input, Some("k"));
        assert_eq!(args["idempotency_key"], "k");
        assert_eq!(
            args["payload"]["items"][0].to_string(),
            format!(r#"{{"order_item_id":"{I}","quantity":1.5,"reason":"damaged"}}"#)
        );
        assert!(rpc_args(&input, None).get("idempotency_key").is_none());
    }

    #[test]
    fn every_bad_field_is_named() {
        let d = details(&format!(
            r#"{{"order_id":"x","return_method":"gift","refund":true,"items":[
               {{"order_item_id":"{I}","quantity":0,"reason":"r"}},
               {{"order_item_id":"{J}","quantity":1.001,"reason":"   "}},
               {{"order_item_id":"{J}","quantity":1,"reason":"{}"}},
               {{"order_item_id":"{I}","quantity":1,"reason":"again","note":1}}]}}"#,
            "r".repeat(501)
        ));
        for (path, msg) in [
            ("order_id", "must be a UUID string"),
            ("return_method", "must be one of: refund, exchange, credit"),
            ("refund", "unknown field"),
            ("items[0].quantity", "must be greater than 0"),
            ("items[1].quantity", "must have at most 2 decimal places"),
            ("items[1].reason", "must be a non-empty string"),
            ("items[2].reason", "must be at most 500 characters"),
            ("items[3].note", "unknown field"),
        ] {
            assert_eq!(d[path], msg, "{path}");
        }
        let d = details(&format!(
            r#"{{"order_id":"{O}","return_method":"refund","items":[
               {{"order_item_id":"{I}","quantity":1,"reason":"a"}},{{"order_item_id":"{I}","quantity":1,"reason":"b"}}]}}"#
        ));
        assert_eq!(
            d["items[1].order_item_id"],
            "repeats items[0]; combine them into one line"
        );
        let d = details("{}");
        for k in ["order_id", "items", "return_method"] {
            assert_eq!(d[k], "is required", "{k}");
        }
    }

    fn processed(refund: &str) -> Processed {
        Processed::from_rpc(&body(&format!(
            r#"{{"return_id":"r1","ra_number":"RA-2026-000001","refund":{refund},"notifications_queued":1}}"#
        )))
        .unwrap()
    }

    #[test]
    fn the_rpc_result_and_the_refund_state() {
        let p = processed("null");
        assert_eq!(p.refund, None);
        assert_eq!(p.notifications_queued, 1);
        assert_eq!(
            p.response().text(),
            r#"{"ra_number":"RA-2026-000001","return_id":"r1","success":true}"#
        );
        let p = processed(
            r#"{"id":"f1","amount":12.50,"payment_intent":"pi_1","status":"pending","stripe_refund_id":null}"#,
        );
        let refund = p.refund.clone().unwrap();
        assert!(refund.needs_submitting());
        assert_eq!(refund.amount.to_string(), "12.5");
        assert!(Processed::from_rpc(&body(r#"{"return_id":"r"}"#)).is_err());
        assert!(Processed::from_rpc(&body(
            r#"{"return_id":"r","ra_number":"n","refund":{"id":"f"}}"#
        ))
        .is_err());
    }

    #[test]
    fn refund_errors_name_the_return_and_the_refund() {
        let p = processed(
            r#"{"id":"f1","amount":1,"payment_intent":"pi_1","status":"pending","stripe_refund_id":null}"#,
        );
        let refund = p.refund.clone().unwrap();
        let pending = p.refund_error(&refund, false, "stripe 500 api_error: boom");
        assert_eq!((pending.status(), pending.code()), (502, "REFUND_PENDING"));
        assert_eq!(pending.details()["refund_id"], "f1");
        assert_eq!(pending.details()["ra_number"], "RA-2026-000001");
        assert_eq!(pending.log_cause(), Some("stripe 500 api_error: boom"));
        let failed = p.refund_error(
            &refund,
            true,
            "stripe 400 invalid_request_error/amount_too_large: too much",
        );
        assert_eq!(failed.code(), "REFUND_FAILED");
        assert!(failed.message().ends_with("amount_too_large: too much"));
        assert_eq!(failed.details()["refund_status"], "failed");
    }
}
