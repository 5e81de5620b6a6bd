//! The purchase-order PDF, laid out with the `documents` crate (pdf-writer,
//! A4, the standard Helvetica fonts in WinAnsi, so nothing is embedded and
//! the file stays small: under 5 KB for 10 lines). Text is measured with
//! Helvetica's AFM widths to right-align figures, wrap long item names and
//! notes, and cut SKUs that do not fit. Characters outside WinAnsi are
//! printed as `?`.
//!
//! Layout: the first page has the business name, the title, the PO number and
//! dates, and the supplier block; every page has the item table's header and
//! "Page n of N"; rows flow onto further pages, and the totals, payment terms
//! and notes follow the last row.

use std::borrow::Cow;

use documents::layout::{BODY, LEFT, RIGHT, ROW, TOP};
use documents::text::{fit, head, wrap};
use documents::{Column, Font, Pages};
use shared::serde_json::Value;
use shared::{parse_decimal, ApiError, Decimal, Result};

/// What the PDF shows: the `document` object create_purchase_order returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub po_number: String,
    pub business_name: String,
    pub issued_on: String,
    pub expected_delivery_date: String,
    pub supplier: Supplier,
    pub payment_terms: Option<String>,
    pub notes: Option<String>,
    pub total_amount: Decimal,
    pub items: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Supplier {
    pub name: String,
    pub contact_person: Option<String>,
    pub address: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub sku: Option<String>,
    pub name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub total_price: Decimal,
}

impl Document {
    pub fn from_json(v: &Value) -> Result<Self> {
        let bad = |what: &str| ApiError::Internal(format!("PO document lacks {what}"));
        let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let req = |o: &Value, k: &str| text(o, k).ok_or_else(|| bad(k));
        let dec = |o: &Value, k: &str| {
            o.get(k)
                .and_then(Value::as_number)
                .and_then(parse_decimal)
                .ok_or_else(|| bad(k))
        };
        let s = v.get("supplier").ok_or_else(|| bad("supplier"))?;
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("items"))?
            .iter()
            .map(|i| {
                Ok(Line {
                    sku: text(i, "sku"),
                    name: req(i, "name")?,
                    quantity: dec(i, "quantity")?,
                    unit_price: dec(i, "unit_price")?,
                    total_price: dec(i, "total_price")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Document {
            po_number: req(v, "po_number")?,
            business_name: req(v, "business_name")?,
            issued_on: req(v, "issued_on")?,
            expected_delivery_date: req(v, "expected_delivery_date")?,
            supplier: Supplier {
                name: req(s, "name")?,
                contact_person: text(s, "contact_person"),
                address: text(s, "address"),
                email: text(s, "email"),
                phone: text(s, "phone"),
            },
            payment_terms: text(v, "payment_terms"),
            notes: text(v, "notes"),
            total_amount: dec(v, "total_amount")?,
            items,
        })
    }
}

// Money and labels as every message and document shows them.
pub use shared::format::{label as humanize_terms, money};

// ---------------------------------------------------------------- layout

// Table columns: right edges for figures, left edges for text.
const COL_NO_R: f32 = LEFT + 18.0;
const COL_SKU: f32 = LEFT + 26.0;
const COL_SKU_W: f32 = 84.0;
const COL_ITEM: f32 = COL_SKU + COL_SKU_W + 8.0;
const COL_QTY_R: f32 = 395.0;
const COL_ITEM_W: f32 = COL_QTY_R - 48.0 - COL_ITEM;
const COL_PRICE_R: f32 = 465.0;
const COL_TOTAL_R: f32 = RIGHT;
const MAX_NAME_LINES: usize = 4;
/// Notes are at most 2,000 characters in the database; this bounds the
/// layout whatever a row holds.
const MAX_NOTE_LINES: usize = 40;

const COLUMNS: [Column; 6] = [
    Column {
        title: Cow::Borrowed("#"),
        x: COL_NO_R,
        right: true,
    },
    Column {
        title: Cow::Borrowed("SKU"),
        x: COL_SKU,
        right: false,
    },
    Column {
        title: Cow::Borrowed("Item"),
        x: COL_ITEM,
        right: false,
    },
    Column {
        title: Cow::Borrowed("Qty"),
        x: COL_QTY_R,
        right: true,
    },
    Column {
        title: Cow::Borrowed("Unit price"),
        x: COL_PRICE_R,
        right: true,
    },
    Column {
        title: Cow::Borrowed("Line total"),
        x: COL_TOTAL_R,
        right: true,
    },
];

/// Renders the purchase order as a PDF file.
pub fn render(doc: &Document) -> Vec<u8> {
    let mut p = Pages::new(
        doc.business_name.clone(),
        format!("Purchase order {} (continued)", doc.po_number),
    );

    // Heading: business name and title, then the PO's facts on the right.
    let name = fit(&doc.business_name, Font::Bold, 18.0, 300.0);
    p.text(LEFT, TOP - 6.0, Font::Bold, 18.0, &name);
    p.text_right(RIGHT, TOP - 6.0, Font::Bold, 14.0, "PURCHASE ORDER");
    let facts = [
        ("PO number", doc.po_number.as_str()),
        ("Issued", doc.issued_on.as_str()),
        ("Expected delivery", doc.expected_delivery_date.as_str()),
    ];
    let mut y = TOP - 28.0;
    for (label, value) in facts {
        p.text_right(RIGHT - 110.0, y, Font::Bold, BODY, label);
        p.text_right(RIGHT, y, Font::Regular, BODY, value);
        y -= ROW;
    }

    // Supplier block.
    let mut y = TOP - 40.0;
    p.text(LEFT, y, Font::Bold, BODY, "SUPPLIER");
    y -= ROW + 1.0;
    let s = &doc.supplier;
    let mut block = vec![(Font::Bold, s.name.clone())];
    if let Some(c) = s.contact_person.as_deref().filter(|c| !c.is_empty()) {
        block.push((Font::Regular, format!("Attn: {c}")));
    }
    if let Some(a) = s.address.as_deref() {
        for line in wrap(a, Font::Regular, BODY, 260.0, 4).0 {
            block.push((Font::Regular, line));
        }
    }
    for contact in [&s.email, &s.phone].into_iter().flatten() {
        block.push((Font::Regular, contact.clone()));
    }
    for (font, line) in block {
        let line = fit(&line, font, BODY, 280.0);
        p.text(LEFT, y, font, BODY, &line);
        y -= ROW;
    }
    p.y = y.min(TOP - 28.0 - 3.0 * ROW) - 18.0;
    p.start_table(&COLUMNS);

    // Item rows, flowing onto further pages.
    for (i, item) in doc.items.iter().enumerate() {
        let (mut name_lines, more) =
            wrap(&item.name, Font::Regular, BODY, COL_ITEM_W, MAX_NAME_LINES);
        if more {
            let last = name_lines.len() - 1;
            let cut = format!("{}…", name_lines[last]);
            name_lines[last] = fit(&cut, Font::Regular, BODY, COL_ITEM_W);
        }
        p.room(ROW * name_lines.len() as f32, true);
        let y = p.y;
        p.text_right(COL_NO_R, y, Font::Regular, BODY, &(i + 1).to_string());
        if let Some(sku) = &item.sku {
            let sku = fit(sku, Font::Regular, BODY, COL_SKU_W);
            p.text(COL_SKU, y, Font::Regular, BODY, &sku);
        }
        for (n, line) in name_lines.iter().enumerate() {
            p.text(COL_ITEM, y - n as f32 * ROW, Font::Regular, BODY, line);
        }
        let qty = item.quantity.normalize().to_string();
        p.text_right(COL_QTY_R, y, Font::Regular, BODY, &qty);
        p.text_right(COL_PRICE_R, y, Font::Regular, BODY, &money(item.unit_price));
        p.text_right(
            COL_TOTAL_R,
            y,
            Font::Regular,
            BODY,
            &money(item.total_price),
        );
        p.y = y - ROW * name_lines.len() as f32;
    }

    // Totals, terms and notes.
    p.room(2.0 * ROW + 6.0, false);
    p.rule(p.y + ROW - 4.0, 0.8);
    let y = p.y - 4.0;
    p.text_right(COL_PRICE_R, y, Font::Bold, 10.0, "Total");
    p.text_right(COL_TOTAL_R, y, Font::Bold, 10.0, &money(doc.total_amount));
    p.y = y - 2.0 * ROW;
    if let Some(terms) = doc.payment_terms.as_deref().filter(|t| !t.is_empty()) {
        p.room(ROW, false);
        let y = p.y;
        p.text(LEFT, y, Font::Bold, BODY, "Payment terms:");
        p.text(LEFT + 72.0, y, Font::Regular, BODY, &humanize_terms(terms));
        p.y -= ROW * 1.5;
    }
    if let Some(notes) = doc.notes.as_deref().filter(|n| !n.trim().is_empty()) {
        p.room(2.0 * ROW, false);
        let y = p.y;
        p.text(LEFT, y, Font::Bold, BODY, "Notes");
        p.y -= ROW;
        for line in wrap(notes, Font::Regular, BODY, RIGHT - LEFT, MAX_NOTE_LINES).0 {
            p.room(ROW, false);
            let y = p.y;
            p.text(LEFT, y, Font::Regular, BODY, &line);
            p.y -= ROW;
        }
    }

    // Footers, now that the page count is known.
    let label = format!("{} · {}", head(&doc.business_name, 200), doc.po_number);
    let title = format!("Purchase order {}", doc.po_number);
    p.finish(&label, &title, &doc.business_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json::{self, json};

    fn sample(lines: usize) -> Value {
        let items: Vec<Value> = (0..lines)
            .map(|i| {
                json!({"sku": format!("SKU-{i:04}"), "name": format!("Item number {i} with a name"),
                       "quantity": 3, "unit_price": 2.5, "total_price": 7.5})
            })
            .collect();
        serde_json::from_str(
            &json!({
                "po_number": "PO-2026-000007", "business_name": "Acme Wholesale",
                "issued_on": "2026-11-26", "expected_delivery_date": "2026-12-10",
                "supplier": {"name": "Café Supplies", "contact_person": "Dana", "address": "1 Road\nTown",
                             "email": "sales@supplier.test", "phone": null},
                "payment_terms": "net_30", "notes": "Deliver to dock 4.", "total_amount": 7.5,
                "items": items,
            })
            .to_string(),
        )
        .unwrap()
    }

    fn page_count(pdf: &[u8]) -> usize {
        let text = String::from_utf8_lossy(pdf);
        text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count()
    }

    #[test]
    fn the_document_is_read_from_the_rpc_result() {
        let d = Document::from_json(&sample(2)).unwrap();
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.supplier.phone, None);
        assert_eq!(d.total_amount.to_string(), "7.5");
        let mut broken = sample(1);
        broken["items"][0]
            .as_object_mut()
            .unwrap()
            .remove("unit_price");
        assert_eq!(Document::from_json(&broken).unwrap_err().status(), 500);
    }

    #[test]
    fn a_short_po_is_one_page_and_a_long_one_flows() {
        let one = render(&Document::from_json(&sample(3)).unwrap());
        assert!(one.starts_with(b"%PDF-"));
        assert!(String::from_utf8_lossy(&one).contains("(PO-2026-000007)"));
        let long = render(&Document::from_json(&sample(200)).unwrap());
        let text = String::from_utf8_lossy(&long);
        assert!(text.contains("(Page 1 of "), "footer");
        let pages: usize = text
            .split("/Count ")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        // 200 rows at about 55 per page.
        assert!((4..=5).contains(&pages), "{pages} pages");
        assert!(text.contains(&format!("(Page {pages} of {pages})")));
        assert!(page_count(&long) >= pages);
    }

    #[test]
    fn a_500_line_po_of_maximal_names_renders() {
        let mut doc = sample(500);
        for item in doc["items"].as_array_mut().unwrap() {
            item["name"] = json!("W".repeat(200));
            item["sku"] = json!("S".repeat(100));
        }
        doc["notes"] = json!("n ".repeat(1000));
        doc["supplier"]["address"] = json!("a".repeat(500));
        let pdf = render(&Document::from_json(&doc).unwrap());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(page_count(&pdf) > 10);
    }

    #[test]
    fn money_and_terms_read_naturally() {
        assert_eq!(money(Decimal::new(12345675, 1)), "1,234,567.50");
        assert_eq!(money(Decimal::new(5, 0)), "5.00");
        assert_eq!(money(Decimal::new(-100000, 2)), "-1,000.00");
        assert_eq!(humanize_terms("net_30"), "Net 30");
        assert_eq!(humanize_terms("due_on_receipt"), "Due on receipt");
    }
}
