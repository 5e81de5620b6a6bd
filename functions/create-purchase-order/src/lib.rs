//! `create-purchase-order`: creates a purchase order atomically, renders it as
//! a PDF, stores the PDF in the `purchase-orders` bucket and queues the email
//! to the supplier with a link to it.
//!
//! Request (`POST /functions/v1/create-purchase-order`, `Authorization: Bearer
//! <user token>`, optional but recommended `Idempotency-Key`):
//! ```json
//! {"supplier_id":"…","items":[{"product_id":"…","quantity":24,"unit_price":11.5}],
//!  "expected_delivery_date":"2026-12-10","notes":"Deliver to dock 4"}
//! ```
//! Response `201`:
//! ```json
//! {"success":true,"po_id":"…","po_number":"PO-2026-000007","pdf_url":"https://…/storage/v1/object/sign/…"}
//! ```
//! plus `Server-Timing: pdf;dur=<ms>` with the PDF's rendering time.
//!
//! Steps:
//! 1. `public.create_purchase_order` inserts the PO and its lines in one
//!    transaction (per-tenant `PO-YYYY-NNNNNN`, totals in SQL) and returns
//!    everything the PDF shows.
//! 2. [`pdf::render`] draws the PDF; it is uploaded as the caller, so Storage's
//!    RLS applies, to `purchase-orders/<tenant_id>/<po_number>.pdf`.
//! 3. A signed URL valid for [`PDF_URL_TTL_SECS`] is made for the response.
//! 4. `public.attach_purchase_order_pdf` marks the PO sent and queues the
//!    supplier's email; only the first call queues anything. The email names
//!    the stored object, not a URL: the dispatcher signs the link to it when
//!    it sends, so no caller can put another link in the supplier's email.
//!
//! If step 2–4 fails, the PO exists without its PDF: the answer is 502
//! `PDF_PENDING` with `po_id`, `po_number` and the failed step's error code
//! as `cause`, and repeating the request with
//! the same `Idempotency-Key` renders, stores and sends it without creating a
//! second PO. A replay of a finished request only signs a fresh URL.

pub mod pdf;

use std::collections::HashSet;

use shared::serde::Deserialize;
use shared::serde_json::{json, Value};
use shared::{
    json_number, utc_day, ApiError, Auth, Counted, Ctx, Decimal, DecimalRule, Endpoint, Keyed,
    Request, Response, Result, Uuid, Validator, DECIMAL_10_2_MAX,
};

/// The name rate limits and capacity are kept under.
pub const FUNCTION_NAME: &str = "create-purchase-order";

pub const BUCKET: &str = "purchase-orders";
/// How long the PDF link in the response and in the supplier's email works.
pub const PDF_URL_TTL_SECS: u32 = 30 * 24 * 3600;
pub const MAX_ITEMS: usize = 500;
pub const MAX_NOTES_CHARS: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct PoItem {
    pub product_id: Uuid,
    pub quantity: Decimal,
    pub unit_price: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoInput {
    pub supplier_id: Uuid,
    pub items: Vec<PoItem>,
    pub expected_delivery_date: String,
    pub notes: Option<String>,
}

/// Validates the body into [`PoInput`], naming every bad field. `today` is the
/// UTC date (`YYYY-MM-DD`); the expected delivery date may not be before it.
/// A product may appear once; repeats are rejected rather than merged.
pub fn validate(body: &Value, today: &str) -> Result<PoInput> {
    let mut v = Validator::new();
    let allowed = ["supplier_id", "items", "expected_delivery_date", "notes"];
    let Some(obj) = v.object("", body, &allowed) else {
        return Err(v.finish(|| ()).unwrap_err());
    };
    let supplier_id = v
        .required(obj, "", "supplier_id")
        .and_then(|s| v.uuid("supplier_id", Some(s)));
    let expected = v
        .required(obj, "", "expected_delivery_date")
        .and_then(|d| v.date("expected_delivery_date", Some(d), Some(today)));
    let notes = match obj.get("notes") {
        None | Some(Value::Null) => None,
        some => v.string("notes", some, MAX_NOTES_CHARS),
    };

    let mut items = Vec::new();
    let raw_items = v.required(obj, "", "items");
    if let Some(list) = v.array("items", raw_items, 1, MAX_ITEMS) {
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut firsts: Vec<Uuid> = Vec::new();
        let mut total = Decimal::ZERO;
        for (i, raw) in list.iter().enumerate() {
            let path = format!("items[{i}]");
            let Some(item) = v.object(&path, raw, &["product_id", "quantity", "unit_price"]) else {
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
            let (Some(product_id), Some(quantity), Some(unit_price)) =
                (product_id, quantity, unit_price)
            else {
                continue;
            };
            if !seen.insert(product_id) {
                let first = firsts.iter().position(|p| *p == product_id).unwrap_or(0);
                v.error(
                    &at("product_id"),
                    format!("repeats items[{first}]; combine them into one line"),
                );
                continue;
            }
            firsts.push(product_id);
            total += (quantity * unit_price).round_dp(2);
            items.push(PoItem {
                product_id,
                quantity,
                unit_price,
            });
        }
        if total > DECIMAL_10_2_MAX {
            v.error(
                "items",
                format!("the purchase order total must be at most {DECIMAL_10_2_MAX}"),
            );
        }
    }

    v.finish(|| PoInput {
        supplier_id: supplier_id.expect("validated"),
        items,
        expected_delivery_date: expected.expect("validated"),
        notes,
    })
}

/// The RPC's named arguments; `idempotency_key` is left out when absent.
pub fn rpc_args(input: &PoInput, idempotency_key: Option<&str>) -> Value {
    let items: Vec<Value> = input
        .items
        .iter()
        .map(|it| {
            json!({
                "product_id": it.product_id,
                "quantity": json_number(it.quantity),
                "unit_price": json_number(it.unit_price),
            })
        })
        .collect();
    let mut payload = json!({
        "supplier_id": input.supplier_id,
        "items": items,
        "expected_delivery_date": input.expected_delivery_date,
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

/// What create_purchase_order returned.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(crate = "shared::serde")]
pub struct Created {
    pub po_id: String,
    pub po_number: String,
    pub pdf_path: String,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub pdf_attached: bool,
    #[serde(default, deserialize_with = "shared::null_as_default")]
    pub replayed: bool,
    #[serde(default)]
    pub document: Value,
}

impl Created {
    pub fn from_rpc(result: &Value) -> Result<Self> {
        shared::rpc_result("create_purchase_order", result.clone())
    }

    /// The error when a step after the PO's creation fails. Whatever the
    /// cause, the PO now exists, so the answer names it and the cause's code.
    fn unfinished(&self, err: ApiError) -> ApiError {
        ApiError::Unfinished {
            code: "PDF_PENDING".into(),
            message: "the purchase order was created but its PDF could not be stored or sent; \
                      repeat the request with the same Idempotency-Key to finish it"
                .into(),
            details: json!({
                "po_id": self.po_id,
                "po_number": self.po_number,
                "cause": err.code(),
            }),
            cause: format!(
                "{}: {}",
                err.code(),
                err.log_cause().unwrap_or(&err.message())
            ),
        }
    }
}

/// The 201 response.
pub fn response(created: &Created, pdf_url: &str, pdf_ms: Option<f64>) -> Response {
    let body = json!({
        "success": true,
        "po_id": created.po_id,
        "po_number": created.po_number,
        "pdf_url": pdf_url,
    });
    let mut r = Response::json(201, &body).replayed(created.replayed);
    if let Some(ms) = pdf_ms {
        r.headers
            .push(("server-timing".into(), format!("pdf;dur={ms:.2}")));
    }
    r
}

/// The function: a member issues a purchase order to one of the tenant's suppliers.
pub struct CreatePurchaseOrder;

impl Endpoint for CreatePurchaseOrder {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = Keyed<PoInput>;

    fn input(req: &Request, now: i64) -> Result<Keyed<PoInput>> {
        Keyed::read(req, |body| validate(body, &utc_day(now)))
    }

    async fn run(input: Keyed<PoInput>, ctx: &Ctx<'_>) -> Result<Response> {
        run(&input.input, input.idempotency_key.as_deref(), ctx).await
    }
}

/// Creates the PO, then stores its PDF and queues the supplier's email. A
/// repeat with the same key finishes whatever step failed.
pub async fn run(
    input: &PoInput,
    idempotency_key: Option<&str>,
    ctx: &Ctx<'_>,
) -> Result<Response> {
    let args = rpc_args(input, idempotency_key);
    let caller = ctx.caller()?;
    let token = &caller.token;
    let (rest, storage) = (&ctx.config.rest, &ctx.config.storage);
    let counted = Counted {
        function_name: FUNCTION_NAME,
        subject_id: input.supplier_id,
    };
    let created: Created = rest
        .rpc_counted_as(
            "create_purchase_order",
            &args,
            caller,
            counted,
            ctx.service_role_key(),
            ctx.clock,
        )
        .await?;

    let mut pdf_ms = None;
    if !created.pdf_attached {
        let started = ctx.clock.monotonic_ms();
        let bytes = pdf::render(&pdf::Document::from_json(&created.document)?);
        pdf_ms = Some(ctx.clock.monotonic_ms() - started);
        storage
            .upload(
                BUCKET,
                &created.pdf_path,
                bytes,
                "application/pdf",
                true,
                token,
            )
            .await
            .map_err(|e| created.unfinished(e))?;
    }
    let url = storage
        .create_signed_url(BUCKET, &created.pdf_path, PDF_URL_TTL_SECS, token)
        .await
        .map_err(|e| created.unfinished(e))?;
    if !created.pdf_attached {
        let attached: Attached = rest
            .rpc_as(
                "attach_purchase_order_pdf",
                &json!({ "po_id": created.po_id }),
                token,
            )
            .await
            .map_err(|e| created.unfinished(e))?;
        if attached.queued == 1 {
            ctx.deliver_outbox();
        }
    }
    Ok(response(&created, &url, pdf_ms))
}

/// What `attach_purchase_order_pdf` answers.
#[derive(Debug, Deserialize)]
#[serde(crate = "shared::serde")]
struct Attached {
    #[serde(default, deserialize_with = "shared::null_as_default")]
    queued: u64,
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(CreatePurchaseOrder);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    const S: &str = "11111111-1111-4111-8111-111111111111";
    const P: &str = "22222222-2222-4222-8222-222222222222";
    const Q: &str = "33333333-3333-4333-8333-333333333333";
    const TODAY: &str = "2026-11-26";

    fn body(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn details(text: &str) -> Value {
        validate(&body(text), TODAY).unwrap_err().details()
    }

    #[test]
    fn a_valid_po_becomes_typed_input() {
        let input = validate(
            &body(&format!(
                r#"{{"supplier_id":"{S}","items":[{{"product_id":"{P}","quantity":24,"unit_price":11.50}},
                   {{"product_id":"{Q}","quantity":0.5,"unit_price":0}}],
                   "expected_delivery_date":"2026-11-26","notes":"dock 4"}}"#
            )),
            TODAY,
        )
        .unwrap();
        assert_eq!(input.items.len(), 2);
        assert_eq!(input.items[0].unit_price.to_string(), "11.5");
        assert_eq!(input.expected_delivery_date, "2026-11-26");
        assert_eq!(input.notes.as_deref(), Some("dock 4"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let d = details(&format!(
            r#"{{"supplier_id":7,"items":[{{"product_id":"{P}","quantity":-1,"unit_price":1.001}},
               {{"product_id":"{P}","quantity":1,"unit_price":1}},{{"sku":"x"}}],
               "expected_delivery_date":"2026-11-25","notes":{{}},"po_number":"PO-1"}}"#
        ));
        for (path, msg) in [
            ("supplier_id", "must be a UUID string"),
            ("items[0].quantity", "must be greater than 0"),
            ("items[0].unit_price", "must have at most 2 decimal places"),
            ("items[2].sku", "unknown field"),
            ("items[2].product_id", "is required"),
            ("expected_delivery_date", "must not be in the past"),
            ("notes", "must be a string"),
            ("po_number", "unknown field"),
        ] {
            assert_eq!(d[path], msg, "{path}");
        }
        let d = details(&format!(
            r#"{{"supplier_id":"{S}","expected_delivery_date":"2026-02-30","items":[
               {{"product_id":"{P}","quantity":1,"unit_price":1}},{{"product_id":"{Q}","quantity":1,"unit_price":1}},
               {{"product_id":"{P}","quantity":2,"unit_price":1}}]}}"#
        ));
        assert_eq!(d["expected_delivery_date"], "must be a date, YYYY-MM-DD");
        assert_eq!(
            d["items[2].product_id"],
            "repeats items[0]; combine them into one line"
        );
        let d = details("{}");
        for k in ["supplier_id", "items", "expected_delivery_date"] {
            assert_eq!(d[k], "is required", "{k}");
        }
    }

    #[test]
    fn the_total_must_fit_decimal_10_2() {
        let d = details(&format!(
            r#"{{"supplier_id":"{S}","expected_delivery_date":"2027-01-01","items":[
               {{"product_id":"{P}","quantity":99999999,"unit_price":1}},{{"product_id":"{Q}","quantity":1,"unit_price":1}}]}}"#
        ));
        assert_eq!(
            d["items"],
            "the purchase order total must be at most 99999999.99"
        );
    }

    #[test]
    fn rpc_args_are_exact_and_omit_absent_keys() {
        let input = validate(
            &body(&format!(
                r#"{{"supplier_id":"{S}","items":[{{"product_id":"{P}","quantity":0.1,"unit_price":0.2}}],
                   "expected_delivery_date":"2026-12-01"}}"#
            )),
            TODAY,
        )
        .unwrap();
        let args = rpc_args(&input, None);
        assert!(args.get("idempotency_key").is_none());
        assert!(args["payload"].get("notes").is_none());
        assert_eq!(
            args["payload"]["items"][0].to_string(),
            format!(r#"{{"product_id":"{P}","quantity":0.1,"unit_price":0.2}}"#)
        );
        assert_eq!(rpc_args(&input, Some("k"))["idempotency_key"], "k");
    }

    #[test]
    fn the_rpc_result_maps_to_the_response() {
        let c = Created::from_rpc(&body(
            r#"{"po_id":"p1","po_number":"PO-2026-000001","pdf_path":"t/PO-2026-000001.pdf",
                "pdf_attached":true,"replayed":true,"document":{}}"#,
        ))
        .unwrap();
        assert!(c.pdf_attached && c.replayed);
        // A null (an empty subquery in SQL) reads as false, as an absent field does.
        let n = Created::from_rpc(&body(
            r#"{"po_id":"p1","po_number":"PO-2026-000001","pdf_path":"t/p.pdf",
                "pdf_attached":null,"replayed":null,"document":null}"#,
        ))
        .unwrap();
        assert!(!n.pdf_attached && !n.replayed && n.document.is_null());
        let r = response(&c, "http://x/sign", Some(1.234));
        assert_eq!(r.status, 201);
        assert_eq!(
            r.text(),
            r#"{"pdf_url":"http://x/sign","po_id":"p1","po_number":"PO-2026-000001","success":true}"#
        );
        assert!(r
            .headers
            .contains(&("idempotent-replayed".into(), "true".into())));
        assert!(r
            .headers
            .contains(&("server-timing".into(), "pdf;dur=1.23".into())));
        assert_eq!(
            Created::from_rpc(&body(r#"{"po_id":"p"}"#))
                .unwrap_err()
                .status(),
            500
        );
    }

    #[test]
    fn failures_after_creation_name_the_po() {
        let c = Created::from_rpc(&body(
            r#"{"po_id":"p1","po_number":"PO-2026-000001","pdf_path":"x"}"#,
        ))
        .unwrap();
        let e = c.unfinished(ApiError::Unavailable("storage down".into()));
        assert_eq!((e.status(), e.code()), (502, "PDF_PENDING"));
        assert_eq!(e.details()["po_number"], "PO-2026-000001");
        assert_eq!(e.log_cause(), Some("SERVICE_UNAVAILABLE: storage down"));
        let limit = c.unfinished(shared::error_from_storage(
            413,
            r#"{"code":"EntityTooLarge"}"#,
        ));
        assert_eq!((limit.status(), limit.code()), (502, "PDF_PENDING"));
        assert_eq!(limit.details()["cause"], "FILE_TOO_LARGE");
    }
}
