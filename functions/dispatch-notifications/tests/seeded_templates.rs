//! The default message templates seeded by
//! `supabase/migrations/20261127000100_message_templates.sql`, read from that
//! file and rendered with `shared::template` the way the dispatcher renders
//! them: subject and text body plain, html as HTML, Slack as Slack text.
//!
//! Before templates were data, dispatch-notifications rendered these messages
//! in Rust; the exact texts below are what that code produced for the same
//! payloads, so the move changed no byte.

use dispatch_notifications::channels::{self, Message, Parts};
use shared::providers::sms::{fit_one_segment, segments, Encoding};
use shared::serde_json::{self, json, Value};
use shared::template::{Escape, Template};

const MIGRATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../supabase/migrations/20261127000100_message_templates.sql"
);

/// The seeded (key, channel) pairs, in the file's order.
const SEEDED: [(&str, &str); 5] = [
    ("order_confirmation", "email"),
    ("order_confirmation", "sms"),
    ("purchase_order", "email"),
    ("return_confirmation", "email"),
    ("quota_alert", "slack"),
];

fn migration() -> String {
    std::fs::read_to_string(MIGRATION).expect("the migration is readable")
}

/// A part of a seeded template: the text between the two `$<key>_<channel>_<part>$`.
fn part(key: &str, channel: &str, part: &str) -> Option<String> {
    let sql = migration();
    let tag = format!("${key}_{channel}_{part}$");
    let start = sql.find(&tag)? + tag.len();
    let len = sql[start..].find(&tag).expect("every tag is closed");
    Some(sql[start..start + len].to_owned())
}

fn render(
    key: &str,
    channel: &str,
    name: &str,
    escape: Escape,
    payload: &Value,
) -> Result<String, String> {
    let source =
        part(key, channel, name).ok_or_else(|| format!("no {name} for {key}/{channel}"))?;
    let template = Template::parse_part(name, &source).map_err(|e| e.to_string())?;
    template.render(payload, escape).map_err(|e| e.to_string())
}

#[derive(Debug)]
struct Email {
    subject: String,
    html: String,
    text: String,
}

/// The seeded row's parts, as `message_templates_for` would return them.
fn parts(key: &str, channel: &str) -> Parts {
    Parts {
        subject: part(key, channel, "subject"),
        html: part(key, channel, "html"),
        body: part(key, channel, "body"),
    }
}

/// Rendered exactly as the dispatcher renders a row (`channels::render`).
fn email(key: &str, payload: &Value) -> Result<Email, String> {
    match channels::render(&parts(key, "email"), "email", payload)? {
        Message::Email {
            subject,
            html,
            text,
        } => Ok(Email {
            subject,
            html,
            text,
        }),
        other => Err(format!("not an email: {other:?}")),
    }
}

fn text(key: &str, channel: &str, payload: &Value) -> String {
    match channels::render(&parts(key, channel), channel, payload).unwrap() {
        Message::Text(t) => t,
        other => panic!("not a text: {other:?}"),
    }
}

fn sms(key: &str, payload: &Value) -> String {
    let sent = text(key, "sms", payload);
    // The same as fitting the plain rendering into one segment.
    let plain = render(key, "sms", "body", Escape::None, payload).unwrap();
    assert_eq!(sent, fit_one_segment(&plain));
    sent
}

fn slack(key: &str, payload: &Value) -> String {
    text(key, "slack", payload)
}

fn order() -> Value {
    serde_json::from_str(
        r#"{"order_id":"o1","order_number":"WO-2026-000042","business_name":"Acme <Wholesale> & Co",
            "client_name":"Corner Café","total_amount":88.74,"payment_terms":"net_30","delivery_method":"delivery",
            "items":[{"name":"Oat Milk","sku":"OAT-1","quantity":7.00,"unit_price":12.50,"total_price":87.50},
                     {"name":"Cups <12oz>","sku":"CUP","quantity":1.25,"unit_price":0.99,"total_price":1.24}]}"#,
    )
    .unwrap()
}

fn purchase_order() -> Value {
    serde_json::from_str(
        r#"{"po_number":"PO-2026-000007","business_name":"Acme & Co","supplier_name":"Beans Ltd",
            "contact_person":"Dana","expected_delivery_date":"2026-12-10","total_amount":276.00,
            "payment_terms":"net_30","lines":2,"notes":"Dock <4>",
            "pdf_url":"http://gw/storage/v1/object/sign/purchase-orders/t/PO.pdf?token=a&b=1"}"#,
    )
    .unwrap()
}

fn return_confirmation() -> Value {
    serde_json::from_str(
        r#"{"ra_number":"RA-2026-000002","order_number":"WO-2026-000009","business_name":"Acme",
            "client_name":"Corner Café","return_method":"refund","amount":37.00,
            "items":[{"name":"Oat <Milk>","sku":"OAT","quantity":2.00,"reason":"dented"}]}"#,
    )
    .unwrap()
}

fn quota_alert() -> Value {
    serde_json::from_str(
        r#"{"tenant_id":"t-1","tenant":"Acme <!channel>","channel":"sms","held":3,
            "quota":{"per_hour":2,"per_day":100}}"#,
    )
    .unwrap()
}

#[test]
fn the_migration_seeds_the_five_templates_in_the_documented_layout() {
    let sql = migration();
    let inserts = sql
        .lines()
        .filter(|l| l.starts_with("insert into public.message_templates"));
    assert_eq!(inserts.count(), SEEDED.len());
    for (key, channel) in SEEDED {
        for name in ["subject", "html", "body"] {
            let tag = format!("${key}_{channel}_{name}$");
            let count = sql.matches(&tag).count();
            let expected = if channel == "email" || name == "body" {
                2
            } else {
                0
            };
            assert_eq!(count, expected, "{tag} appears {count} times");
            if let Some(source) = part(key, channel, name) {
                assert!(source.len() <= 64 * 1024, "{tag} fits the table's bound");
                Template::parse_part(name, &source)
                    .unwrap_or_else(|e| panic!("{key}/{channel}: {e}"));
            }
        }
    }
    assert!(part("purchase_order", "sms", "body").is_none());
}

#[test]
fn the_confirmation_email_has_business_number_items_and_total() {
    let m = email("order_confirmation", &order()).unwrap();
    assert_eq!(
        m.subject,
        "Order WO-2026-000042 confirmed - Acme <Wholesale> & Co"
    );
    assert!(m.text.contains("Hello Corner Café,"));
    assert!(m.text.contains("  7 x Oat Milk [OAT-1] @ 12.50 = 87.50\n"));
    assert!(m
        .text
        .contains("  1.25 x Cups <12oz> [CUP] @ 0.99 = 1.24\n"));
    assert!(m
        .text
        .contains("Total: 88.74\nPayment terms: Net 30\nDelivery: Delivery"));
    assert!(m.html.contains(
        "Acme &lt;Wholesale&gt; &amp; Co has received your order <strong>WO-2026-000042</strong>"
    ));
    assert!(
        m.html.contains("<td>Cups &lt;12oz&gt;</td>"),
        "item names are escaped"
    );
    assert!(!m.html.contains("<Wholesale>"));
    assert!(m.html.contains("<strong>88.74</strong>"));
}

#[test]
fn the_confirmation_email_is_exactly_what_the_rust_templates_wrote() {
    let m = email("order_confirmation", &order()).unwrap();
    assert_eq!(
        m.text,
        "Hello Corner Café,\n\nAcme <Wholesale> & Co has received your order WO-2026-000042.\n\n\
         \x20 7 x Oat Milk [OAT-1] @ 12.50 = 87.50\n  1.25 x Cups <12oz> [CUP] @ 0.99 = 1.24\n\n\
         Total: 88.74\nPayment terms: Net 30\nDelivery: Delivery\n\n\
         Thank you for your order.\nAcme <Wholesale> & Co\n"
    );
    assert_eq!(
        m.html,
        concat!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello Corner Café,</p>",
            "<p>Acme &lt;Wholesale&gt; &amp; Co has received your order <strong>WO-2026-000042</strong>.</p>",
            "<table cellpadding=\"4\" style=\"border-collapse:collapse\">",
            "<tr><th align=\"left\">Item</th><th align=\"left\">SKU</th><th>Qty</th><th>Unit price</th><th>Total</th></tr>",
            "<tr><td>Oat Milk</td><td>OAT-1</td><td align=\"right\">7</td><td align=\"right\">12.50</td>",
            "<td align=\"right\">87.50</td></tr>",
            "<tr><td>Cups &lt;12oz&gt;</td><td>CUP</td><td align=\"right\">1.25</td><td align=\"right\">0.99</td>",
            "<td align=\"right\">1.24</td></tr>",
            "<tr><td colspan=\"4\" align=\"right\"><strong>Total</strong></td>",
            "<td align=\"right\"><strong>88.74</strong></td></tr></table>",
            "<p>Payment terms: Net 30<br>Delivery: Delivery</p>",
            "<p>Thank you for your order.<br>Acme &lt;Wholesale&gt; &amp; Co</p></body></html>"
        )
    );
}

#[test]
fn an_email_lists_at_most_100_lines_then_says_how_many_more() {
    let mut p = order();
    let item = p["items"][0].clone();
    p["items"] = Value::Array(vec![item.clone(); 500]);
    let m = email("order_confirmation", &p).unwrap();
    assert_eq!(m.text.matches("x Oat Milk [OAT-1]").count(), 100);
    assert!(m.text.contains(
        "  7 x Oat Milk [OAT-1] @ 12.50 = 87.50\n  … and 400 more lines\n\nTotal: 88.74"
    ));
    assert_eq!(m.html.matches("<td>Oat Milk</td>").count(), 100);
    assert!(m
        .html
        .contains("<tr><td colspan=\"5\">… and 400 more lines</td></tr><tr><td colspan=\"4\""));

    p["items"] = Value::Array(vec![item; 100]);
    let m = email("order_confirmation", &p).unwrap();
    assert_eq!(m.text.matches("x Oat Milk [OAT-1]").count(), 100);
    assert!(!m.text.contains("more lines") && !m.html.contains("more lines"));

    let mut r = return_confirmation();
    let line = r["items"][0].clone();
    r["items"] = Value::Array(vec![line; 101]);
    let m = email("return_confirmation", &r).unwrap();
    assert_eq!(m.text.matches("x Oat <Milk> [OAT]").count(), 100);
    assert!(m.text.contains("  … and 1 more lines\n"));
    assert!(m
        .html
        .contains("<tr><td colspan=\"4\">… and 1 more lines</td></tr></table>"));
}

#[test]
fn optional_values_fall_back_as_before() {
    let mut p = order();
    p.as_object_mut().unwrap().remove("client_name");
    p["items"][1]["sku"] = Value::Null;
    let m = email("order_confirmation", &p).unwrap();
    assert!(m.text.starts_with("Hello,\n\n"), "{}", m.text);
    assert!(m.html.contains("<p>Hello,</p>"));
    assert!(m.text.contains("  1.25 x Cups <12oz> [] @ 0.99 = 1.24\n"));
    assert!(m.html.contains("<td>Cups &lt;12oz&gt;</td><td></td>"));
}

#[test]
fn markup_in_any_value_is_escaped_and_never_parsed() {
    let mut p = order();
    p["client_name"] = json!("<script>alert('x')</script> {{business_name}}");
    let m = email("order_confirmation", &p).unwrap();
    assert!(m.html.contains(
        "<p>Hello &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; {{business_name}},</p>"
    ));
    assert!(m
        .text
        .contains("Hello <script>alert('x')</script> {{business_name}},"));
}

#[test]
fn a_payload_without_a_required_value_is_refused_naming_it() {
    let e = email("order_confirmation", &json!({})).unwrap_err();
    assert!(e.contains("unknown variable `order_number`"), "{e}");
    assert!(e.starts_with("subject, line 1"), "{e}");
    let e = render(
        "order_confirmation",
        "email",
        "body",
        Escape::None,
        &json!({}),
    )
    .unwrap_err();
    assert!(e.contains("unknown variable `business_name`"), "{e}");
    let mut no_link = purchase_order();
    no_link.as_object_mut().unwrap().remove("pdf_url");
    let e = email("purchase_order", &no_link).unwrap_err();
    assert!(e.contains("unknown variable `pdf_url`"), "{e}");
}

#[test]
fn the_quota_alert_names_the_tenant_channel_and_quota() {
    let text = slack("quota_alert", &quota_alert());
    assert!(
        text.contains("Acme &lt;!channel&gt; (t-1) reached its sms quota (2 an hour, 100 a day)")
    );
    assert!(text.contains("3 message(s) are held"));
    assert_eq!(
        text,
        ":warning: Acme &lt;!channel&gt; (t-1) reached its sms quota (2 an hour, 100 a day). \
         3 message(s) are held and will go out as the quota frees up; \
         raise the tenant's row in message_quotas to release them sooner."
    );
}

#[test]
fn the_confirmation_sms_fits_one_gsm_segment() {
    let s = sms("order_confirmation", &order());
    assert_eq!(
        s,
        "Order WO-2026-000042 confirmed, total 88.74. Thank you! - Acme <Wholesale> & Co"
    );
    assert_eq!(segments(&s), (Encoding::Gsm7, 1));
    let mut long = order();
    long["business_name"] = "Grand Consolidated Wholesale Provisions ".repeat(5).into();
    let s = sms("order_confirmation", &long);
    assert_eq!(segments(&s).1, 1);
    assert!(s.starts_with("Order WO-2026-000042 confirmed, total 88.74."));
}

#[test]
fn purchase_order_email_links_the_pdf() {
    let p = purchase_order();
    let m = email("purchase_order", &p).unwrap();
    assert_eq!(m.subject, "Purchase order PO-2026-000007 from Acme & Co");
    assert!(m.text.starts_with("Hello Dana,"), "{}", m.text);
    assert!(m.text.contains("(2 lines, total 276.00)"), "{}", m.text);
    assert!(m.text.contains("Payment terms: Net 30."), "{}", m.text);
    assert!(m.text.contains("token=a&b=1"), "{}", m.text);
    assert!(m.html.contains(
        "href=\"http://gw/storage/v1/object/sign/purchase-orders/t/PO.pdf?token=a&amp;b=1\""
    ));
    assert!(m.html.contains("Dock &lt;4&gt;") && m.html.contains("Acme &amp; Co"));
    assert_eq!(
        m.text,
        "Hello Dana,\n\nAcme & Co has issued purchase order PO-2026-000007 (2 lines, total 276.00), \
         expected for delivery on 2026-12-10.\nPayment terms: Net 30.\n\nNotes: Dock <4>\n\n\
         The purchase order (PDF): http://gw/storage/v1/object/sign/purchase-orders/t/PO.pdf?token=a&b=1\n\
         The link works for 30 days.\n\nAcme & Co\n"
    );
    assert_eq!(
        m.html,
        concat!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello Dana,</p>",
            "<p>Acme &amp; Co has issued purchase order <strong>PO-2026-000007</strong> ",
            "(2 lines, total <strong>276.00</strong>), expected for delivery on 2026-12-10.<br>",
            "Payment terms: Net 30.</p><p>Notes: Dock &lt;4&gt;</p>",
            "<p><a href=\"http://gw/storage/v1/object/sign/purchase-orders/t/PO.pdf?token=a&amp;b=1\">",
            "Download purchase order PO-2026-000007 (PDF)</a><br>The link works for 30 days.</p>",
            "<p>Acme &amp; Co</p></body></html>"
        )
    );
}

#[test]
fn purchase_order_email_without_contact_terms_or_notes() {
    let mut p = purchase_order();
    p["contact_person"] = Value::Null;
    p["payment_terms"] = Value::Null;
    p["notes"] = json!("   ");
    p["lines"] = json!(1);
    let m = email("purchase_order", &p).unwrap();
    assert!(m.text.starts_with("Hello Beans Ltd,"), "{}", m.text);
    assert!(m.text.contains("(1 line, total 276.00)"), "{}", m.text);
    assert!(
        m.text
            .contains("Payment terms: as agreed.\n\nThe purchase order (PDF)"),
        "{}",
        m.text
    );
    assert!(!m.html.contains("Notes:"));
    p["contact_person"] = json!("");
    p["notes"] = json!("  Ring twice \n");
    let m = email("purchase_order", &p).unwrap();
    assert!(m.text.starts_with("Hello Beans Ltd,"), "{}", m.text);
    assert!(m.text.contains("\n\nNotes: Ring twice\n\n"), "{}", m.text);
    assert!(m.html.contains("<p>Notes: Ring twice</p>"));
}

#[test]
fn return_confirmation_says_what_happens_next() {
    let p = return_confirmation();
    let m = email("return_confirmation", &p).unwrap();
    assert_eq!(m.subject, "Return RA-2026-000002 for order WO-2026-000009");
    assert!(
        m.text.contains("2 x Oat <Milk> [OAT]: dented"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("A refund of 37.00 is on its way"),
        "{}",
        m.text
    );
    assert!(m.html.contains("Oat &lt;Milk&gt;"));
    assert_eq!(
        m.text,
        "Hello Corner Café,\n\nAcme has processed return RA-2026-000002 for order WO-2026-000009.\n\n\
         \x20 2 x Oat <Milk> [OAT]: dented\n\n\
         A refund of 37.00 is on its way to your original payment method.\n\nAcme\n"
    );
    assert_eq!(
        m.html,
        concat!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello Corner Café,</p>",
            "<p>Acme has processed return <strong>RA-2026-000002</strong> for order WO-2026-000009.</p>",
            "<table cellpadding=\"4\" style=\"border-collapse:collapse\">",
            "<tr><th align=\"left\">Item</th><th align=\"left\">SKU</th><th>Qty</th><th align=\"left\">Reason</th></tr>",
            "<tr><td>Oat &lt;Milk&gt;</td><td>OAT</td><td align=\"right\">2</td><td>dented</td></tr></table>",
            "<p>A refund of 37.00 is on its way to your original payment method.</p><p>Acme</p></body></html>"
        )
    );

    let mut exchange = p.clone();
    exchange["return_method"] = "exchange".into();
    exchange["exchange_order_number"] = "WO-2026-000010".into();
    let m = email("return_confirmation", &exchange).unwrap();
    assert!(m
        .text
        .contains("\n\nYour replacement is order WO-2026-000010.\n\n"));
    assert!(m
        .html
        .contains("<p>Your replacement is order WO-2026-000010.</p>"));

    exchange["exchange_order_number"] = Value::Null;
    let m = email("return_confirmation", &exchange).unwrap();
    assert!(m
        .text
        .contains("\n\nYour replacement order is being prepared.\n\n"));

    let mut credit = p.clone();
    credit["return_method"] = "credit".into();
    let m = email("return_confirmation", &credit).unwrap();
    assert!(m
        .text
        .contains("\n\n37.00 has been credited to your account.\n\n"));
    assert!(m
        .html
        .contains("<p>37.00 has been credited to your account.</p>"));
}
