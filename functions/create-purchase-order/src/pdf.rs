//! The purchase-order PDF, written with pdf-writer.
//!
//! The page is A4 and uses the standard Helvetica and Helvetica-Bold fonts in
//! WinAnsi encoding, so nothing is embedded and the file stays small (under
//! 5 KB for 10 lines). pdf-writer does no text measurement, so this module
//! keeps Helvetica's advance widths (from the Adobe AFM files) to right-align
//! figures, wrap long item names and notes, and cut SKUs that do not fit.
//! Characters outside WinAnsi are printed as `?`.
//!
//! Layout: the first page has the business name, the title, the PO number and
//! dates, and the supplier block; every page has the item table's header and
//! "Page n of N"; rows flow onto further pages, and the totals, payment terms
//! and notes follow the last row.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
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

// ---------------------------------------------------------------- text metrics

/// Helvetica advance widths (1/1000 em) for ASCII 32..=126.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
];

/// Helvetica-Bold advance widths for ASCII 32..=126.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, //
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, //
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, //
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, //
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }

    fn table(self) -> &'static [u16; 95] {
        match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        }
    }
}

/// A character's WinAnsi (Windows-1252) byte; `?` when it has none.
fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '\t' | '\n' | '\r' => b' ',
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        _ => b'?',
    }
}

fn encode(s: &str) -> Vec<u8> {
    s.chars().map(win_ansi).collect()
}

/// The advance width of one WinAnsi byte. Accented Latin letters take their
/// base letter's width (the AFM values match for Helvetica's À–ÿ); the few
/// other symbols take an average glyph's width.
fn byte_width(b: u8, font: Font) -> u16 {
    const BASE: &[u8; 64] = b"AAAAAA?CEEEEIIIIDNOOOOO?OUUUUY?saaaaaa?ceeeeiiiidnooooo?ouuuuy?y";
    let ascii = match b {
        32..=126 => b,
        0xc0..=0xff => BASE[(b - 0xc0) as usize],
        0xa0 => b' ',
        _ => b'?',
    };
    match (b, ascii) {
        (0xc6 | 0xe6 | 0x8c | 0x9c, _) => 1000, // Æ æ Œ œ
        (0x80 | 0x85 | 0x89 | 0x99, _) => 1000, // € … ‰ ™
        (_, b'?') if b != b'?' => 556,
        _ => font.table()[(ascii - 32) as usize],
    }
}

/// The width of one character in points at `size`.
fn char_width(c: char, font: Font, size: f32) -> f32 {
    byte_width(win_ansi(c), font) as f32 * size / 1000.0
}

/// The width of `s` in points at `size`.
fn width(s: &str, font: Font, size: f32) -> f32 {
    let units: u32 = s
        .chars()
        .map(|c| byte_width(win_ansi(c), font) as u32)
        .sum();
    units as f32 * size / 1000.0
}

/// The narrowest glyph of both fonts (the quote, 191/1000 em).
const NARROWEST_EM: f32 = 0.191;

/// At most how many characters `lines` lines of `max` points can show: the
/// input is cut to this before any layout, so the work done is bounded by the
/// space on the page, never by how long a stored text is.
fn visible_chars(lines: usize, size: f32, max: f32) -> usize {
    lines * ((max / (NARROWEST_EM * size)).ceil() as usize + 1)
}

/// `s` cut to its first `n` characters, without copying.
fn head(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Greedy word wrap into at most `max_lines` lines no wider than `max`; a
/// word longer than a line is broken by characters. Explicit newlines start
/// new lines. Returns the lines, and whether text was left over. Linear in
/// the (already cut) input: each character's width is looked up once.
fn wrap(s: &str, font: Font, size: f32, max: f32, max_lines: usize) -> (Vec<String>, bool) {
    let cut = head(s, visible_chars(max_lines, size, max));
    let mut lines: Vec<String> = Vec::new();
    let space = char_width(' ', font, size);
    let full = |lines: &Vec<String>| lines.len() >= max_lines;
    let paragraphs: Vec<&str> = cut.split('\n').collect();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        let (mut line, mut line_w) = (String::new(), 0.0f32);
        for word in paragraph.split_whitespace() {
            let word_w: f32 = word.chars().map(|c| char_width(c, font, size)).sum();
            let gap = if line.is_empty() { 0.0 } else { space };
            if line_w + gap + word_w <= max {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                line_w += gap + word_w;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
                if full(&lines) {
                    return (lines, true);
                }
            }
            for c in word.chars() {
                let w = char_width(c, font, size);
                if line_w + w > max && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_w = 0.0;
                    if full(&lines) {
                        return (lines, true);
                    }
                }
                line.push(c);
                line_w += w;
            }
        }
        lines.push(line);
        if full(&lines) {
            let rest = paragraphs[i + 1..].iter().any(|p| !p.trim().is_empty());
            return (lines, rest || cut.len() < s.len());
        }
    }
    (lines, cut.len() < s.len())
}

/// `s` cut to fit `max`, ending in an ellipsis when cut. Linear, and it never
/// looks past what one line could show.
fn fit(s: &str, font: Font, size: f32, max: f32) -> String {
    let cut = head(s, visible_chars(1, size, max));
    if cut.len() == s.len() && width(s, font, size) <= max {
        return s.to_owned();
    }
    let room = max - char_width('…', font, size);
    let (mut out, mut w) = (String::new(), 0.0f32);
    for c in cut.chars() {
        w += char_width(c, font, size);
        if w > room {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

// Money and labels as every message and document shows them.
pub use shared::format::{label as humanize_terms, money};

// ---------------------------------------------------------------- layout

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = PAGE_W - 50.0;
const TOP: f32 = PAGE_H - 50.0;
/// Rows stop above this; the footer sits below it.
const BOTTOM: f32 = 72.0;
const BODY: f32 = 9.0;
const ROW: f32 = 12.0;

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

struct Pages {
    pages: Vec<Content>,
    /// The page being written.
    at: usize,
    y: f32,
    po_number: String,
    business_name: String,
}

impl Pages {
    fn page(&mut self) -> &mut Content {
        &mut self.pages[self.at]
    }

    fn text(&mut self, x: f32, y: f32, font: Font, size: f32, s: &str) {
        let bytes = encode(s);
        let c = self.page();
        c.begin_text();
        c.set_font(font.name(), size);
        c.next_line(x, y);
        c.show(Str(&bytes));
        c.end_text();
    }

    fn text_right(&mut self, right: f32, y: f32, font: Font, size: f32, s: &str) {
        self.text(right - width(s, font, size), y, font, size, s);
    }

    fn rule(&mut self, y: f32, weight: f32) {
        let c = self.page();
        c.set_line_width(weight);
        c.move_to(LEFT, y);
        c.line_to(RIGHT, y);
        c.stroke();
    }

    fn table_header(&mut self) {
        let y = self.y;
        self.text_right(COL_NO_R, y, Font::Bold, BODY, "#");
        self.text(COL_SKU, y, Font::Bold, BODY, "SKU");
        self.text(COL_ITEM, y, Font::Bold, BODY, "Item");
        self.text_right(COL_QTY_R, y, Font::Bold, BODY, "Qty");
        self.text_right(COL_PRICE_R, y, Font::Bold, BODY, "Unit price");
        self.text_right(COL_TOTAL_R, y, Font::Bold, BODY, "Line total");
        self.rule(y - 4.0, 0.8);
        self.y = y - 4.0 - ROW;
    }

    /// Starts a continuation page: a short heading and the table header.
    fn next_page(&mut self, with_table: bool) {
        self.pages.push(Content::new());
        self.at = self.pages.len() - 1;
        self.y = TOP;
        let (name, number) = (self.business_name.clone(), self.po_number.clone());
        self.text(LEFT, self.y, Font::Bold, 11.0, &name);
        self.text_right(
            RIGHT,
            self.y,
            Font::Regular,
            BODY,
            &format!("Purchase order {number} (continued)"),
        );
        self.y -= 28.0;
        if with_table {
            self.table_header();
        }
    }

    /// Makes room for `height` points, starting a page if needed.
    fn room(&mut self, height: f32, with_table: bool) {
        if self.y - height < BOTTOM {
            self.next_page(with_table);
        }
    }
}

/// Renders the purchase order as a PDF file.
pub fn render(doc: &Document) -> Vec<u8> {
    let mut p = Pages {
        pages: vec![Content::new()],
        at: 0,
        y: TOP,
        po_number: doc.po_number.clone(),
        business_name: doc.business_name.clone(),
    };

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
    p.table_header();

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
    let count = p.pages.len();
    for n in 0..count {
        p.at = n;
        let footer = format!("Page {} of {count}", n + 1);
        let label = format!("{} · {}", head(&doc.business_name, 200), doc.po_number);
        p.text(
            LEFT,
            40.0,
            Font::Regular,
            8.0,
            &fit(&label, Font::Regular, 8.0, 380.0),
        );
        p.text_right(RIGHT, 40.0, Font::Regular, 8.0, &footer);
    }

    write(doc, p.pages)
}

fn write(doc: &Document, pages: Vec<Content>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first = 6;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first + 2 * i as i32))
        .collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);
    for (base, content) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(base)
            .base_font(Name(content.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    for (page_id, content) in page_ids.iter().zip(pages) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_id);
        page.resources()
            .fonts()
            .pair(Font::Regular.name(), regular)
            .pair(Font::Bold.name(), bold);
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    let title = format!("Purchase order {}", doc.po_number);
    pdf.document_info(info)
        .title(TextStr(&title))
        .author(TextStr(&doc.business_name))
        .producer(TextStr("commerce-edge"));
    pdf.finish()
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
    fn widths_match_helvetica() {
        // "Hello": H 722 e 556 l 222 l 222 o 556 = 2278 units; bold: 722 556 278 278 611.
        assert!((width("Hello", Font::Regular, 10.0) - 22.78).abs() < 1e-3);
        assert!((width("Hello", Font::Bold, 10.0) - 24.45).abs() < 1e-3);
        // é takes e's width.
        assert_eq!(
            width("é", Font::Regular, 1.0),
            width("e", Font::Regular, 1.0)
        );
    }

    #[test]
    fn text_is_wrapped_and_cut_to_fit() {
        let (lines, more) = wrap(
            "the quick brown fox jumps over the lazy dog",
            Font::Regular,
            10.0,
            80.0,
            10,
        );
        assert!(lines.len() > 1 && !more);
        assert!(lines.iter().all(|l| width(l, Font::Regular, 10.0) <= 80.0));
        assert_eq!(
            lines.join(" "),
            "the quick brown fox jumps over the lazy dog"
        );
        let (long, more) = wrap(&"x".repeat(100), Font::Regular, 10.0, 50.0, 10);
        assert!(long.len() > 1 && long.iter().all(|l| width(l, Font::Regular, 10.0) <= 50.0));
        assert!(!more && long.concat() == "x".repeat(100));
        assert_eq!(
            wrap("a\nb", Font::Regular, 10.0, 100.0, 10),
            (vec!["a".to_owned(), "b".to_owned()], false)
        );
        let cut = fit("ABCDEFGHIJKLMNOPQRSTUVWXYZ", Font::Regular, 10.0, 40.0);
        assert!(cut.ends_with('…') && width(&cut, Font::Regular, 10.0) <= 40.0);
    }

    #[test]
    fn huge_text_is_cut_before_it_is_laid_out() {
        // 1 MB of text: only what four lines can show is ever looked at.
        let name = "word ".repeat(200_000);
        let (lines, more) = wrap(&name, Font::Regular, 9.0, 200.0, 4);
        assert_eq!(lines.len(), 4);
        assert!(more);
        assert!(lines.iter().all(|l| width(l, Font::Regular, 9.0) <= 200.0));
        let one_word = "x".repeat(1_000_000);
        let (lines, more) = wrap(&one_word, Font::Regular, 9.0, 200.0, 4);
        assert!(lines.len() == 4 && more);
        let cut = fit(&one_word, Font::Regular, 9.0, 200.0);
        assert!(cut.ends_with('…') && width(&cut, Font::Regular, 9.0) <= 200.0);
        assert!(cut.chars().count() < 200);
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
    fn win_ansi_covers_latin_1_and_typographic_marks() {
        assert_eq!(
            encode("Café €5 – “ok”"),
            b"Caf\xe9 \x805 \x96 \x93ok\x94".to_vec()
        );
        assert_eq!(encode("日本"), b"??".to_vec());
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
