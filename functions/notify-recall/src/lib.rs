//! `notify-recall`: recalls a lot, notifies every consignee, and files the
//! compliance report (seed 000 §6).
//!
//! Request (`POST`, a signed-in admin):
//! ```json
//! {"recall_id": "<uuid>", "batch_id": "<uuid>", "recall_reason": "Undeclared peanut",
//!  "scope": "all", "hazard": "…", "instructions": "…", "classification": "I",
//!  "channels": ["email", "sms"], "reminder_after_days": 3}
//! ```
//! `scope: "specific"` with `product_ids` narrows the recall to those products.
//!
//! The work is SQL, in one transaction (`public.start_recall`): the recall,
//! the lots quarantined, the consignees derived from the allocations, the
//! notices queued in the outbox. Then this function reads the trace
//! (`public.recall_report`, under the caller's RLS), renders the PDF and the
//! FSMA 204 spreadsheet with the shared document code, uploads both to
//! `recall-reports/<tenant>/<recall_id>/` and answers `201`:
//! `{success, recall_id, notified_count, report_url, spreadsheet_url, …}`.
//!
//! `recall_id` is the idempotency key: the same id and body notify nobody
//! again, and answer the first result with a freshly rendered report (so it
//! shows the responses so far); the same id with another body is `422`.

use documents::xlsx::{self, Cell, Kind, SheetReport};
use documents::{Orientation, ReportColumn, ReportDoc};
use shared::format::quantity as qty;
use shared::serde_json::{json, Map, Value};
use shared::{ApiError, Auth, Counted, Ctx, Endpoint, Request, Response, Result, Uuid, Validator};

/// The function's name, as in `rate_limit_policies` and `request_subjects`.
pub const FUNCTION_NAME: &str = "notify-recall";
pub const BUCKET: &str = "recall-reports";
/// How long the report links work: long enough to forward to a regulator.
pub const URL_TTL_SECS: u32 = 7 * 24 * 3600;
const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A checked request: the lot (the admission's subject) and the payload for
/// `public.start_recall`, as sent (its hash is the idempotency check).
#[derive(Debug, Clone, PartialEq)]
pub struct RecallInput {
    pub batch_id: Uuid,
    pub payload: Value,
}

pub fn validate(body: &Value) -> Result<RecallInput> {
    let mut v = Validator::new();
    let obj = v
        .object(
            "",
            body,
            &[
                "recall_id",
                "batch_id",
                "recall_reason",
                "scope",
                "product_ids",
                "hazard",
                "instructions",
                "classification",
                "channels",
                "reminder_after_days",
            ],
        )
        .cloned()
        .unwrap_or_default();
    let present = |k: &str| obj.get(k).filter(|x| !x.is_null());
    if let Some(id) = v.required(&obj, "", "recall_id") {
        v.uuid("recall_id", Some(id));
    }
    let batch_id = v
        .required(&obj, "", "batch_id")
        .and_then(|b| v.uuid("batch_id", Some(b)));
    if let Some(r) = v.required(&obj, "", "recall_reason") {
        if let Some(s) = v.string("recall_reason", Some(r), 2000) {
            if s.trim().is_empty() {
                v.error("recall_reason", "must be 1 to 2000 characters");
            }
        }
    }
    for key in ["hazard", "instructions"] {
        v.string(key, present(key), 2000);
    }
    let scope = v
        .required(&obj, "", "scope")
        .and_then(|s| v.one_of("scope", Some(s), &["all", "specific"]));
    match (scope, present("product_ids")) {
        (Some("specific"), None) => v.error("product_ids", "is required for scope specific"),
        (Some("specific"), ids) => {
            if let Some(ids) = v.array("product_ids", ids, 1, 100) {
                for (i, id) in ids.iter().enumerate() {
                    v.uuid(&format!("product_ids[{i}]"), Some(id));
                }
            }
        }
        (Some("all"), Some(_)) => v.error("product_ids", "is only for scope specific"),
        _ => {}
    }
    v.one_of(
        "classification",
        present("classification"),
        &["I", "II", "III"],
    );
    if let Some(ch) = present("channels") {
        let ok = ch.as_array().is_some_and(|a| {
            a.iter().any(|c| c == "email")
                && a.iter().all(|c| c == "email" || c == "sms")
                && a.len() <= 2
        });
        if !ok {
            v.error(
                "channels",
                "must be [\"email\"] or [\"email\", \"sms\"]: a recall notice always goes by email",
            );
        }
    }
    if let Some(d) = present("reminder_after_days") {
        if !d.as_u64().is_some_and(|d| (1..=90).contains(&d)) {
            v.error(
                "reminder_after_days",
                "must be a whole number of days from 1 to 90",
            );
        }
    }
    let payload = Value::Object(obj.clone());
    v.finish(|| RecallInput {
        batch_id: batch_id.unwrap_or_default(),
        payload,
    })
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

/// `2026-11-27T16:05:09.123+00:00` → `2026-11-27 16:05 UTC`; a date stays a date.
pub fn when(v: &Value) -> String {
    let Some(s) = v.as_str() else {
        return String::new();
    };
    if s.len() >= 16 && s.as_bytes()[10] == b'T' {
        format!("{} {} UTC", &s[..10], &s[11..16])
    } else {
        s.to_owned()
    }
}

/// A table cell's time: `2026-11-27 16:05` (the subtitle says UTC).
fn stamp(v: &Value) -> String {
    when(v).trim_end_matches(" UTC").to_owned()
}

fn rate(v: &Value) -> String {
    if v.is_null() {
        "n/a".into()
    } else {
        format!("{:.1}%", num(v) * 100.0)
    }
}

fn date_cell(v: &Value) -> Cell {
    let s = v.as_str().unwrap_or("");
    let part = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse().ok());
    match (part(0..4), part(5..7), part(8..10)) {
        (Some(year), Some(month), Some(day)) => Cell::Date {
            year,
            month: month as u8,
            day: day as u8,
        },
        _ => Cell::Empty,
    }
}

fn lot_codes(report: &Value) -> String {
    let lots = report["lots"].as_array().cloned().unwrap_or_default();
    lots.iter()
        .map(|l| format!("{} ({})", text(&l["lot_number"]), text(&l["product"])))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sum(report: &Value, key: &str) -> String {
    let total: f64 = report["lots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| num(&l[key]))
        .sum();
    qty(&json!(total))
}

/// The facts both documents open with: what is recalled, why, what to do,
/// the lot's quantities and the effectiveness so far.
pub fn facts(report: &Value) -> Vec<(String, String)> {
    let r = &report["recall"];
    let e = &report["effectiveness"];
    let products: Vec<String> = report["lots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| match l["sku"].as_str() {
            Some(sku) => format!("{} (SKU {sku})", text(&l["product"])),
            None => text(&l["product"]),
        })
        .collect();
    let or_none = |v: &Value| {
        let s = text(v);
        if s.is_empty() {
            "Not stated".to_owned()
        } else {
            s
        }
    };
    vec![
        ("Recall reference".into(), text(&r["id"])),
        (
            "Classification".into(),
            r["classification"]
                .as_str()
                .map_or("Not classified".into(), |c| format!("Class {c}")),
        ),
        ("Product".into(), products.join(", ")),
        ("Lot codes".into(), lot_codes(report)),
        ("Reason".into(), text(&r["recall_reason"])),
        ("Hazard".into(), or_none(&r["hazard"])),
        ("Instructions".into(), or_none(&r["instructions"])),
        ("Initiated".into(), when(&r["initiated_at"])),
        ("Status".into(), text(&r["status"])),
        (
            "Quantity produced (received)".into(),
            sum(report, "received"),
        ),
        ("Quantity shipped".into(), sum(report, "shipped")),
        (
            "Returned to stock or quarantine".into(),
            sum(report, "returned"),
        ),
        ("On hand (quarantined)".into(), sum(report, "quarantined")),
        ("Destroyed".into(), sum(report, "destroyed")),
        (
            "Consignees notified".into(),
            format!("{} of {}", qty(&e["notified"]), qty(&e["consignees"])),
        ),
        (
            "Response rate".into(),
            format!(
                "{} ({} responded)",
                rate(&e["response_rate"]),
                qty(&e["responded"])
            ),
        ),
        (
            "Recovery".into(),
            format!(
                "{} ({} of {} units accounted for)",
                rate(&e["recovery_rate"]),
                qty(&e["quantity_accounted"]),
                qty(&e["quantity_shipped"])
            ),
        ),
    ]
}

fn by_window(report: &Value) -> bool {
    report["consignees"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["match"] == "product_window")
}

const WINDOW_NOTE: &str = "Consignees marked * received stock not tracked by lot: they are matched by product, for orders placed while the lot was on sale.";

/// The PDF: the facts, then a row per consignee.
pub fn pdf_doc(report: &Value) -> ReportDoc {
    let columns = [
        ("Consignee", false),
        ("Email, phone", false),
        ("Shipped", true),
        ("Orders", false),
        ("Notified", false),
        ("Method", false),
        ("Responded", false),
        ("Held/ret./destr.", false),
    ];
    let rows = report["consignees"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let star = if c["match"] == "product_window" {
                " *"
            } else {
                ""
            };
            let contact = [&c["email"], &c["phone"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let orders = c["order_numbers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let methods = c["methods"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let reported = if c["responded_at"].is_null() {
                String::new()
            } else {
                format!(
                    "{} / {} / {}",
                    qty(&c["reported_on_hand"]),
                    qty(&c["reported_returned"]),
                    qty(&c["reported_destroyed"])
                )
            };
            vec![
                format!("{}{star}", text(&c["client"])),
                contact,
                qty(&c["quantity_shipped"]),
                orders,
                stamp(&c["notified_at"]),
                if methods.is_empty() {
                    "none (no address)".into()
                } else {
                    methods
                },
                stamp(&c["responded_at"]),
                reported,
            ]
        })
        .collect::<Vec<_>>();
    let shipped: f64 = report["consignees"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| num(&c["quantity_shipped"]))
        .sum();
    let mut totals = vec![String::new(); columns.len()];
    totals[0] = "Total".into();
    totals[2] = qty(&json!(shipped));
    ReportDoc {
        title: format!(
            "URGENT: Product recall · lot {}",
            text(&report["recall"]["lot_number"])
        ),
        subtitle: format!(
            "{} · compliance report generated {} · times in UTC",
            text(&report["tenant_name"]),
            when(&report["generated_at"])
        ),
        facts: facts(report),
        note: by_window(report).then(|| WINDOW_NOTE.to_owned()),
        chart: None,
        columns: columns
            .iter()
            .map(|(t, figure)| ReportColumn {
                title: (*t).into(),
                figure: *figure,
            })
            .collect(),
        rows,
        totals: Some(totals),
        orientation: Orientation::Landscape,
        footer: format!("Recall {}", text(&report["recall"]["id"])),
        author: text(&report["tenant_name"]),
    }
}

/// The FSMA 204-style sortable spreadsheet: a row per shipment of a
/// recalled lot (traceability lot code, product, quantity, ship-from,
/// ship-to, date, reference document), typed cells.
pub fn sheet(report: &Value) -> SheetReport {
    let columns = vec![
        ("Traceability lot code".to_owned(), Kind::Text),
        ("Product".to_owned(), Kind::Text),
        ("SKU".to_owned(), Kind::Text),
        ("Quantity shipped".to_owned(), Kind::Number),
        ("Quantity returned".to_owned(), Kind::Number),
        ("Ship-from location".to_owned(), Kind::Text),
        ("Ship-to (consignee)".to_owned(), Kind::Text),
        ("Ship-to address".to_owned(), Kind::Text),
        ("Ship date".to_owned(), Kind::Date),
        ("Reference document".to_owned(), Kind::Text),
        ("Matched by".to_owned(), Kind::Text),
    ];
    let s = |v: &Value| match v.as_str() {
        Some(t) if !t.is_empty() => Cell::Text(t.to_owned()),
        _ => Cell::Empty,
    };
    let rows: Vec<Vec<Cell>> = report["shipments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                if r["lot_number"].is_null() {
                    Cell::Text("(not tracked)".into())
                } else {
                    s(&r["lot_number"])
                },
                s(&r["product"]),
                s(&r["sku"]),
                Cell::Number(num(&r["quantity"])),
                Cell::Number(num(&r["returned"])),
                s(&r["warehouse"]),
                s(&r["client"]),
                s(&r["address"]),
                date_cell(&r["shipped_at"]),
                Cell::Text(format!("Order {}", text(&r["order_number"]))),
                Cell::Text(if r["match"] == "lot" {
                    "lot".into()
                } else {
                    "product and date window".into()
                }),
            ]
        })
        .collect();
    let shipped: f64 = rows
        .iter()
        .map(|r| match r[3] {
            Cell::Number(n) => n,
            _ => 0.0,
        })
        .sum();
    SheetReport {
        title: format!(
            "Recall trace · lot {}",
            text(&report["recall"]["lot_number"])
        ),
        facts: facts(report),
        note: by_window(report).then(|| WINDOW_NOTE.to_owned()),
        columns,
        rows,
        totals: vec![(3, Cell::Number(shipped))],
        chart: None,
    }
}

/// The two files' names under the tenant's folder: unique per rendering.
pub fn paths(tenant: Uuid, recall: &str, generated_at: &str) -> (String, String) {
    let stamp: String = generated_at
        .chars()
        .filter(char::is_ascii_digit)
        .take(20)
        .collect();
    let base = format!("{tenant}/{recall}/compliance-{stamp}");
    (format!("{base}.pdf"), format!("{base}.xlsx"))
}

pub struct NotifyRecall;

impl Endpoint for NotifyRecall {
    const NAME: &'static str = FUNCTION_NAME;
    const AUTH: Auth = Auth::User;
    type Input = RecallInput;

    fn input(req: &Request, _now: i64) -> Result<RecallInput> {
        // The recall_id is the key; a header key is checked like everywhere.
        req.idempotency_key()?;
        validate(&req.json_object()?)
    }

    async fn run(input: RecallInput, ctx: &Ctx<'_>) -> Result<Response> {
        let caller = ctx.caller()?;
        let rest = &ctx.config.rest;
        let started = ctx.clock.monotonic_ms();
        let mut result: Map<String, Value> = rest
            .rpc_counted_as(
                "start_recall",
                &json!({ "payload": input.payload }),
                caller,
                Counted {
                    function_name: FUNCTION_NAME,
                    subject_id: input.batch_id,
                },
                ctx.service_role_key(),
                ctx.clock,
            )
            .await?;
        let recalled_ms = ctx.clock.monotonic_ms() - started;
        let replayed = result.get("replayed") == Some(&Value::Bool(true));
        if !replayed && result.get("notices_queued").is_some_and(|n| n != 0) {
            ctx.deliver_outbox();
        }
        let recall = result["recall_id"].as_str().unwrap_or_default().to_owned();
        // The trace as the caller reads it: RLS decides.
        let report = rest
            .rpc(
                "recall_report",
                &json!({ "recall_id": recall }),
                &caller.token,
            )
            .await?;
        let tenant: Uuid = report["recall"]["tenant_id"]
            .as_str()
            .and_then(|t| Uuid::try_parse(t).ok())
            .ok_or_else(|| ApiError::Internal("recall_report has no tenant".into()))?;
        let pdf = documents::report::render(&pdf_doc(&report));
        let xlsx = xlsx::render(&sheet(&report)).map_err(ApiError::Internal)?;
        let (pdf_path, xlsx_path) = paths(
            tenant,
            &recall,
            report["generated_at"].as_str().unwrap_or_default(),
        );
        let storage = &ctx.config.storage;
        let mut files = Map::new();
        for (path, bytes, content_type, field) in [
            (&pdf_path, pdf, "application/pdf", "report_url"),
            (&xlsx_path, xlsx, XLSX_TYPE, "spreadsheet_url"),
        ] {
            let size = bytes.len();
            storage
                .upload(BUCKET, path, bytes, content_type, false, &caller.token)
                .await?;
            let url = storage
                .create_signed_url(BUCKET, path, URL_TTL_SECS, &caller.token)
                .await?;
            result.insert(field.into(), json!(url));
            files.insert(
                if content_type == XLSX_TYPE {
                    "xlsx"
                } else {
                    "pdf"
                }
                .into(),
                json!({"bucket": BUCKET, "path": path, "size_bytes": size}),
            );
        }
        result.insert("files".into(), Value::Object(files));
        result.insert("effectiveness".into(), report["effectiveness"].clone());
        result.remove("replayed");
        let reported_ms = ctx.clock.monotonic_ms() - started - recalled_ms;
        // The transaction (recall, quarantine, consignees, notices queued) and
        // the report (read, render, upload, sign): scripts/bench reads them.
        Ok(Response::json(201, &Value::Object(result))
            .replayed(replayed)
            .with_header(
                "server-timing",
                &format!("recall;dur={recalled_ms:.1}, report;dur={reported_ms:.1}"),
            ))
    }
}

#[cfg(target_arch = "wasm32")]
shared::export_endpoint!(NotifyRecall);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json;

    fn errors(body: Value) -> Map<String, Value> {
        match validate(&body) {
            Err(ApiError::Validation(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    const R: &str = "11111111-1111-4111-8111-111111111111";
    const B: &str = "22222222-2222-4222-8222-222222222222";

    #[test]
    fn a_valid_request_is_passed_on_as_sent() {
        let body = json!({"recall_id": R, "batch_id": B, "recall_reason": "Listeria",
                          "scope": "specific", "product_ids": [B], "classification": "I",
                          "channels": ["email"], "reminder_after_days": 5});
        let i = validate(&body).unwrap();
        assert_eq!(i.batch_id, Uuid::parse_str(B).unwrap());
        assert_eq!(i.payload, body);
    }

    #[test]
    fn rejections_name_each_field() {
        let e = errors(
            json!({"scope": "some", "channels": ["sms"], "classification": "IV",
                              "reminder_after_days": 0, "x": 1}),
        );
        assert_eq!(e["recall_id"], "is required");
        assert_eq!(e["batch_id"], "is required");
        assert_eq!(e["recall_reason"], "is required");
        assert!(e["scope"].as_str().unwrap().starts_with("must be one of"));
        assert!(e["channels"]
            .as_str()
            .unwrap()
            .contains("always goes by email"));
        assert!(e["classification"]
            .as_str()
            .unwrap()
            .starts_with("must be one of"));
        assert!(e["reminder_after_days"]
            .as_str()
            .unwrap()
            .contains("1 to 90"));
        assert_eq!(e["x"], "unknown field");
        let e = errors(
            json!({"recall_id": "x", "batch_id": B, "recall_reason": " ",
                              "scope": "specific"}),
        );
        assert_eq!(e["recall_id"], "must be a UUID string");
        assert_eq!(e["recall_reason"], "must be 1 to 2000 characters");
        assert_eq!(e["product_ids"], "is required for scope specific");
        let e = errors(
            json!({"recall_id": R, "batch_id": B, "recall_reason": "a\u{0}",
                              "scope": "all", "product_ids": [B], "hazard": 3}),
        );
        assert!(e["recall_reason"].as_str().unwrap().contains("NUL"));
        assert_eq!(e["product_ids"], "is only for scope specific");
        assert_eq!(e["hazard"], "must be a string");
        let e = errors(json!({"recall_id": R, "batch_id": B, "recall_reason": "r",
                              "scope": "specific", "product_ids": ["nope"]}));
        assert_eq!(e["product_ids[0]"], "must be a UUID string");
    }

    fn sample() -> Value {
        serde_json::from_str(
            r#"{"recall": {"id": "11111111-1111-4111-8111-111111111111", "lot_number": "L1",
                 "recall_reason": "Undeclared peanut", "hazard": null, "instructions": "Destroy it",
                 "classification": "II", "status": "active", "initiated_at": "2026-11-27T16:05:09.1+00:00"},
                "tenant_name": "Acme", "generated_at": "2026-11-27T16:06:00.123456+00:00",
                "lots": [{"lot_number": "L1", "product": "Granola", "sku": "G-1", "received": 100.00,
                          "shipped": 30.00, "returned": 0, "on_hand": 0, "quarantined": 70.00, "destroyed": 0}],
                "consignees": [
                  {"client": "Bakery", "email": "b@x.test", "phone": null, "address": "1 Road",
                   "match": "lot", "quantity_shipped": 20.00, "order_numbers": ["WO-1", "WO-2"],
                   "notified_at": "2026-11-27T16:05:09+00:00", "methods": ["email"],
                   "responded_at": "2026-11-28T09:00:00+00:00", "reported_on_hand": 5.00,
                   "reported_returned": 10.50, "reported_destroyed": 0},
                  {"client": "Cafe", "email": null, "phone": "+1555", "address": null,
                   "match": "product_window", "quantity_shipped": 10, "order_numbers": ["WO-3"],
                   "notified_at": null, "methods": [], "responded_at": null}],
                "shipments": [{"lot_number": "L1", "product": "Granola", "sku": "G-1", "quantity": 20.00,
                   "returned": 0, "warehouse": "W1", "client": "Bakery", "address": "1 Road",
                   "shipped_at": "2026-11-20T10:00:00+00:00", "order_number": "WO-1", "match": "lot"},
                  {"lot_number": null, "product": "Granola", "sku": "G-1", "quantity": 10,
                   "returned": 0, "warehouse": "W1", "client": "Cafe", "address": null,
                   "shipped_at": "2026-11-21T10:00:00+00:00", "order_number": "WO-3", "match": "product_window"}],
                "effectiveness": {"consignees": 2, "notified": 1, "responded": 1, "response_rate": 1.0,
                   "quantity_shipped": 30.00, "quantity_accounted": 15.50, "recovery_rate": 0.5167}}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_pdf_carries_the_notice_content_and_a_row_per_consignee() {
        let doc = pdf_doc(&sample());
        let fact = |k: &str| doc.facts.iter().find(|(f, _)| f == k).unwrap().1.clone();
        assert_eq!(fact("Classification"), "Class II");
        assert_eq!(fact("Lot codes"), "L1 (Granola)");
        assert_eq!(fact("Product"), "Granola (SKU G-1)");
        assert_eq!(fact("Hazard"), "Not stated");
        assert_eq!(fact("Quantity produced (received)"), "100");
        assert_eq!(fact("Quantity shipped"), "30");
        assert_eq!(fact("Response rate"), "100.0% (1 responded)");
        assert_eq!(fact("Recovery"), "51.7% (15.5 of 30 units accounted for)");
        assert!(doc.title.starts_with("URGENT"));
        assert_eq!(doc.rows.len(), 2);
        assert_eq!(doc.rows[0][0], "Bakery");
        assert_eq!(doc.rows[0][3], "WO-1, WO-2");
        assert_eq!(doc.rows[0][4], "2026-11-27 16:05");
        assert_eq!(doc.rows[0][1], "b@x.test");
        assert_eq!(doc.rows[0][7], "5 / 10.5 / 0");
        assert_eq!(doc.rows[1][0], "Cafe *", "matched by window is marked");
        assert_eq!(doc.rows[1][5], "none (no address)");
        assert!(doc.note.as_deref().unwrap().contains("not tracked by lot"));
        assert_eq!(doc.totals.as_ref().unwrap()[..3], ["Total", "", "30"]);
        let widths = documents::report::column_widths(&doc, 742.0);
        let natural = documents::text::width("Bakery", documents::Font::Regular, 9.0);
        assert!(widths[0] > natural, "short names do not wrap: {widths:?}");
        let bytes = documents::report::render(&doc);
        assert!(bytes.starts_with(b"%PDF"));
    }

    #[test]
    fn the_sheet_has_typed_cells_per_shipment() {
        let s = sheet(&sample());
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0][0], Cell::Text("L1".into()));
        assert_eq!(s.rows[0][3], Cell::Number(20.0));
        assert_eq!(
            s.rows[0][8],
            Cell::Date {
                year: 2026,
                month: 11,
                day: 20
            }
        );
        assert_eq!(s.rows[1][0], Cell::Text("(not tracked)".into()));
        assert_eq!(s.rows[1][10], Cell::Text("product and date window".into()));
        assert_eq!(s.totals, vec![(3, Cell::Number(30.0))]);
        assert!(xlsx::render(&s).unwrap().starts_with(b"PK"));
    }

    #[test]
    fn quantities_times_and_paths_read_plainly() {
        assert_eq!(qty(&json!(12.00)), "12");
        assert_eq!(qty(&json!(2.50)), "2.5");
        assert_eq!(qty(&json!(7)), "7");
        assert_eq!(when(&json!("2026-01-02")), "2026-01-02");
        assert_eq!(when(&Value::Null), "");
        let t = Uuid::from_u128(1);
        let (pdf, xlsx) = paths(t, R, "2026-11-27T16:06:00.123456+00:00");
        assert_eq!(pdf, format!("{t}/{R}/compliance-20261127160600123456.pdf"));
        assert!(xlsx.ends_with(".xlsx"));
    }
}
