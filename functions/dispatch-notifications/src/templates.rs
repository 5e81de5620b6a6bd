//! Rendering outbox rows into messages. Each template reads the snapshot its
//! RPC wrote into `payload`, so a message shows what happened at the time.

use shared::serde_json::Value;
use shared::{parse_decimal, Decimal};

use shared::providers::sms::fit_one_segment;

#[derive(Debug, Clone, PartialEq)]
pub struct EmailMessage {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Shown as the sender's name.
    pub sender_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Email(EmailMessage),
    Sms(String),
    /// A platform alert, to the operators' Slack webhook.
    Slack(String),
}

/// Any one text value of a payload is cut to this many characters (with "…")
/// before rendering; the database bounds member text too, this keeps a
/// message bounded whatever a payload holds.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Item lines listed in an email; past it, one line says how many more.
pub const MAX_LISTED_LINES: usize = 100;
/// An email's subject, HTML and text together; past it the row is dead
/// (a permanent failure with this reason) rather than sent.
pub const MAX_EMAIL_BYTES: usize = 512 * 1024;

/// Renders a row, or says why it never can be (a permanent failure).
pub fn render(template: &str, channel: &str, payload: &Value) -> Result<Message, String> {
    let payload = &bounded(payload);
    let message = match (template, channel) {
        ("order_confirmation", "email") => Message::Email(order_confirmation_email(payload)?),
        ("order_confirmation", "sms") => Message::Sms(order_confirmation_sms(payload)?),
        ("purchase_order", "email") => Message::Email(purchase_order_email(payload)?),
        ("return_confirmation", "email") => Message::Email(return_confirmation_email(payload)?),
        ("quota_alert", "slack") => Message::Slack(quota_alert(payload)?),
        _ => return Err(format!("no template {template:?} for channel {channel:?}")),
    };
    if let Message::Email(m) = &message {
        let size = m.subject.len() + m.html.len() + m.text.len();
        if size > MAX_EMAIL_BYTES {
            return Err(format!(
                "the email would be {size} bytes, over the {MAX_EMAIL_BYTES}-byte limit"
            ));
        }
    }
    Ok(message)
}

/// The payload with every string cut to [`MAX_TEXT_CHARS`].
fn bounded(value: &Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_TEXT_CHARS => {
            let mut cut: String = s.chars().take(MAX_TEXT_CHARS - 1).collect();
            cut.push('…');
            Value::String(cut)
        }
        Value::Array(items) => Value::Array(items.iter().map(bounded).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), bounded(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// "… and N more lines" after [`MAX_LISTED_LINES`], for the text and HTML bodies.
fn more_lines(items: &[Value], columns: usize) -> (String, String) {
    match items.len().saturating_sub(MAX_LISTED_LINES) {
        0 => (String::new(), String::new()),
        n => (
            format!("  … and {n} more lines\n"),
            format!("<tr><td colspan=\"{columns}\">… and {n} more lines</td></tr>"),
        ),
    }
}

fn text<'a>(payload: &'a Value, key: &str) -> Result<&'a str, String> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the payload has no {key}"))
}

fn amount(value: &Value) -> Option<Decimal> {
    value.as_number().and_then(parse_decimal)
}

/// Money as every message and document shows it (`shared::format::money`).
fn money(value: &Value) -> String {
    amount(value).map(shared::format::money).unwrap_or_default()
}

/// A quantity without trailing zeros.
fn quantity(value: &Value) -> String {
    amount(value)
        .map(|d| d.normalize().to_string())
        .unwrap_or_default()
}

fn humanize(term: &str) -> String {
    shared::format::label(term)
}

/// "Hello Name," or, without a name, "Hello,".
fn greeting(name: &str) -> String {
    if name.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {name},")
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn order_confirmation_email(p: &Value) -> Result<EmailMessage, String> {
    let business = text(p, "business_name")?;
    let number = text(p, "order_number")?;
    let client = p.get("client_name").and_then(Value::as_str).unwrap_or("");
    let items = p
        .get("items")
        .and_then(Value::as_array)
        .ok_or("the payload has no items")?;
    let total = money(&p["total_amount"]);
    let terms = humanize(p.get("payment_terms").and_then(Value::as_str).unwrap_or(""));
    let delivery = humanize(
        p.get("delivery_method")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );

    let (more_text, more_html) = more_lines(items, 5);
    let mut lines = String::new();
    let mut rows = String::new();
    for item in items.iter().take(MAX_LISTED_LINES) {
        let name = item.get("name").and_then(Value::as_str).unwrap_or("");
        let sku = item.get("sku").and_then(Value::as_str).unwrap_or("");
        let (qty, unit, line) = (
            quantity(&item["quantity"]),
            money(&item["unit_price"]),
            money(&item["total_price"]),
        );
        lines.push_str(&format!("  {qty} x {name} [{sku}] @ {unit} = {line}\n"));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td align=\"right\">{qty}</td><td align=\"right\">{unit}</td><td align=\"right\">{line}</td></tr>",
            escape_html(name),
            escape_html(sku)
        ));
    }
    lines.push_str(&more_text);
    rows.push_str(&more_html);
    let greeting = greeting(client);
    let text_body = format!(
        "{greeting}\n\n{business} has received your order {number}.\n\n{lines}\nTotal: {total}\nPayment terms: {terms}\nDelivery: {delivery}\n\nThank you for your order.\n{business}\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <p>{greeting}</p><p>{business} has received your order <strong>{number}</strong>.</p>\
         <table cellpadding=\"4\" style=\"border-collapse:collapse\">\
         <tr><th align=\"left\">Item</th><th align=\"left\">SKU</th><th>Qty</th><th>Unit price</th><th>Total</th></tr>\
         {rows}<tr><td colspan=\"4\" align=\"right\"><strong>Total</strong></td><td align=\"right\"><strong>{total}</strong></td></tr>\
         </table><p>Payment terms: {terms}<br>Delivery: {delivery}</p><p>Thank you for your order.<br>{business}</p>\
         </body></html>",
        greeting = escape_html(&greeting),
        business = escape_html(business),
        number = escape_html(number),
        terms = escape_html(&terms),
        delivery = escape_html(&delivery),
    );
    Ok(EmailMessage {
        subject: format!("Order {number} confirmed - {business}"),
        html,
        text: text_body,
        sender_name: business.to_owned(),
    })
}

fn order_confirmation_sms(p: &Value) -> Result<String, String> {
    let business = text(p, "business_name")?;
    let number = text(p, "order_number")?;
    let total = money(&p["total_amount"]);
    Ok(fit_one_segment(&format!(
        "Order {number} confirmed, total {total}. Thank you! - {business}"
    )))
}

/// `"Name" <address>`, with the characters that would break the header removed.
/// The client's confirmation of a return: what came back, and what happens
/// next for the chosen method.
fn return_confirmation_email(p: &Value) -> Result<EmailMessage, String> {
    let business = text(p, "business_name")?;
    let ra = text(p, "ra_number")?;
    let order = text(p, "order_number")?;
    let method = text(p, "return_method")?;
    let client = p.get("client_name").and_then(Value::as_str).unwrap_or("");
    let value = money(&p["amount"]);
    let items = p
        .get("items")
        .and_then(Value::as_array)
        .ok_or("the payload has no items")?;
    let next = match method {
        "refund" => format!("A refund of {value} is on its way to your original payment method."),
        "credit" => format!("{value} has been credited to your account."),
        "exchange" => match p.get("exchange_order_number").and_then(Value::as_str) {
            Some(n) => format!("Your replacement is order {n}."),
            None => "Your replacement order is being prepared.".into(),
        },
        other => return Err(format!("unknown return method {other:?}")),
    };
    let (more_text, more_html) = more_lines(items, 4);
    let mut lines = String::new();
    let mut rows = String::new();
    for item in items.iter().take(MAX_LISTED_LINES) {
        let name = item.get("name").and_then(Value::as_str).unwrap_or("");
        let sku = item.get("sku").and_then(Value::as_str).unwrap_or("");
        let reason = item.get("reason").and_then(Value::as_str).unwrap_or("");
        let qty = quantity(&item["quantity"]);
        lines.push_str(&format!("  {qty} x {name} [{sku}]: {reason}\n"));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td align=\"right\">{qty}</td><td>{}</td></tr>",
            escape_html(name),
            escape_html(sku),
            escape_html(reason)
        ));
    }
    lines.push_str(&more_text);
    rows.push_str(&more_html);
    let greeting = greeting(client);
    let text_body = format!(
        "{greeting}\n\n{business} has processed return {ra} for order {order}.\n\n{lines}\n{next}\n\n{business}\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <p>{greeting}</p><p>{business} has processed return <strong>{ra}</strong> for order {order}.</p>\
         <table cellpadding=\"4\" style=\"border-collapse:collapse\">\
         <tr><th align=\"left\">Item</th><th align=\"left\">SKU</th><th>Qty</th><th align=\"left\">Reason</th></tr>\
         {rows}</table><p>{next}</p><p>{business}</p></body></html>",
        greeting = escape_html(&greeting),
        business = escape_html(business),
        ra = escape_html(ra),
        order = escape_html(order),
        next = escape_html(&next),
    );
    Ok(EmailMessage {
        subject: format!("Return {ra} for order {order}"),
        html,
        text: text_body,
        sender_name: business.to_owned(),
    })
}

/// Slack's three control characters, escaped as its message formatting asks.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// To the platform: a tenant's paid messages are being held at its quota.
fn quota_alert(p: &Value) -> Result<String, String> {
    // Slack reads <…> as links and mentions: a tenant's name is shown as text.
    let tenant = &slack_escape(text(p, "tenant")?);
    let tenant_id = text(p, "tenant_id")?;
    let channel = text(p, "channel")?;
    let held = p.get("held").and_then(Value::as_u64).unwrap_or(0);
    let limit = |k: &str| p["quota"].get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(format!(
        ":warning: {tenant} ({tenant_id}) reached its {channel} quota ({} an hour, {} a day). \
         {held} message(s) are held and will go out as the quota frees up; \
         raise the tenant's row in message_quotas to release them sooner.",
        limit("per_hour"),
        limit("per_day"),
    ))
}

/// The purchase order to the supplier, with the signed link to its PDF.
fn purchase_order_email(p: &Value) -> Result<EmailMessage, String> {
    let business = text(p, "business_name")?;
    let number = text(p, "po_number")?;
    let url = text(p, "pdf_url")?;
    let supplier = p.get("supplier_name").and_then(Value::as_str).unwrap_or("");
    let attn = p
        .get("contact_person")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .unwrap_or(supplier);
    let due = p
        .get("expected_delivery_date")
        .and_then(Value::as_str)
        .unwrap_or("");
    let total = money(&p["total_amount"]);
    let lines = p.get("lines").and_then(Value::as_u64).unwrap_or(0);
    let terms = p
        .get("payment_terms")
        .and_then(Value::as_str)
        .map(humanize)
        .unwrap_or_else(|| "as agreed".into());
    let notes = p.get("notes").and_then(Value::as_str).unwrap_or("").trim();
    let greeting = greeting(attn);
    let noun = if lines == 1 { "line" } else { "lines" };
    let notes_text = if notes.is_empty() {
        String::new()
    } else {
        format!("Notes: {notes}\n\n")
    };
    let text_body = format!(
        "{greeting}\n\n{business} has issued purchase order {number} ({lines} {noun}, total {total}), \
         expected for delivery on {due}.\nPayment terms: {terms}.\n\n{notes_text}\
         The purchase order (PDF): {url}\nThe link works for 30 days.\n\n{business}\n"
    );
    let notes_html = if notes.is_empty() {
        String::new()
    } else {
        format!("<p>Notes: {}</p>", escape_html(notes))
    };
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <p>{greeting}</p><p>{business} has issued purchase order <strong>{number}</strong> \
         ({lines} {noun}, total <strong>{total}</strong>), expected for delivery on {due}.<br>\
         Payment terms: {terms}.</p>{notes_html}\
         <p><a href=\"{url}\">Download purchase order {number} (PDF)</a><br>The link works for 30 days.</p>\
         <p>{business}</p></body></html>",
        greeting = escape_html(&greeting),
        business = escape_html(business),
        number = escape_html(number),
        due = escape_html(due),
        terms = escape_html(&terms),
        url = escape_html(url),
    );
    Ok(EmailMessage {
        subject: format!("Purchase order {number} from {business}"),
        html,
        text: text_body,
        sender_name: business.to_owned(),
    })
}

pub fn sender(name: &str, address: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !matches!(c, '"' | '<' | '>' | '\r' | '\n' | '\\'))
        .collect();
    format!("\"{}\" <{address}>", clean.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::providers::sms::{segments, Encoding};
    use shared::serde_json;

    fn payload() -> Value {
        serde_json::from_str(
            r#"{"order_id":"o1","order_number":"WO-2026-000042","business_name":"Acme <Wholesale> & Co",
                "client_name":"Corner Café","total_amount":88.74,"payment_terms":"net_30","delivery_method":"delivery",
                "items":[{"name":"Oat Milk","sku":"OAT-1","quantity":7.00,"unit_price":12.50,"total_price":87.50},
                         {"name":"Cups <12oz>","sku":"CUP","quantity":1.25,"unit_price":0.99,"total_price":1.24}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_confirmation_email_has_business_number_items_and_total() {
        let Message::Email(m) = render("order_confirmation", "email", &payload()).unwrap() else {
            panic!()
        };
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
        assert!(m.html.contains("Acme &lt;Wholesale&gt; &amp; Co has received your order <strong>WO-2026-000042</strong>"));
        assert!(
            m.html.contains("<td>Cups &lt;12oz&gt;</td>"),
            "item names are escaped"
        );
        assert!(!m.html.contains("<Wholesale>"));
        assert!(m.html.contains("<strong>88.74</strong>"));
    }

    #[test]
    fn an_email_lists_at_most_100_lines_and_cuts_huge_text() {
        let mut p = payload();
        let item = p["items"][0].clone();
        p["items"] = Value::Array(vec![item; 500]);
        p["client_name"] = Value::String("x".repeat(1_000_000));
        let Message::Email(m) = render("order_confirmation", "email", &p).unwrap() else {
            panic!()
        };
        assert_eq!(
            m.text.matches("x Oat Milk [OAT-1]").count(),
            MAX_LISTED_LINES
        );
        assert!(m.text.contains("  … and 400 more lines\n"));
        assert!(m.html.contains("… and 400 more lines</td>"));
        let size = m.subject.len() + m.html.len() + m.text.len();
        assert!(size < 100_000, "{size} bytes");
        assert!(m
            .text
            .contains(&format!("Hello {}…,", "x".repeat(MAX_TEXT_CHARS - 1))));
    }

    #[test]
    fn an_email_over_the_size_cap_is_refused_not_sent() {
        let mut p = payload();
        let mut item = p["items"][0].clone();
        item["name"] = Value::String("y".repeat(MAX_TEXT_CHARS));
        item["sku"] = Value::String("z".repeat(MAX_TEXT_CHARS));
        p["items"] = Value::Array(vec![item; 100]);
        let err = render("order_confirmation", "email", &p).unwrap_err();
        assert!(err.contains("byte limit"), "{err}");
    }

    #[test]
    fn the_quota_alert_names_the_tenant_channel_and_quota() {
        let p: Value = shared::serde_json::from_str(
            r#"{"tenant_id":"t-1","tenant":"Acme <!channel>","channel":"sms","held":3,
                "quota":{"per_hour":2,"per_day":100}}"#,
        )
        .unwrap();
        let Message::Slack(text) = render("quota_alert", "slack", &p).unwrap() else {
            panic!()
        };
        assert!(text
            .contains("Acme &lt;!channel&gt; (t-1) reached its sms quota (2 an hour, 100 a day)"));
        assert!(text.contains("3 message(s) are held"));
    }

    #[test]
    fn the_confirmation_sms_fits_one_gsm_segment() {
        let Message::Sms(s) = render("order_confirmation", "sms", &payload()).unwrap() else {
            panic!()
        };
        assert_eq!(
            s,
            "Order WO-2026-000042 confirmed, total 88.74. Thank you! - Acme <Wholesale> & Co"
        );
        assert_eq!(segments(&s), (Encoding::Gsm7, 1));
        let mut long = payload();
        long["business_name"] = "Grand Consolidated Wholesale Provisions ".repeat(5).into();
        let Message::Sms(s) = render("order_confirmation", "sms", &long).unwrap() else {
            panic!()
        };
        assert_eq!(segments(&s).1, 1);
        assert!(s.starts_with("Order WO-2026-000042 confirmed, total 88.74."));
    }

    #[test]
    fn unknown_templates_and_broken_payloads_are_reported() {
        assert!(render("nope", "email", &payload())
            .unwrap_err()
            .contains("no template"));
        assert_eq!(
            render("order_confirmation", "email", &serde_json::json!({})).unwrap_err(),
            "the payload has no business_name"
        );
    }

    #[test]
    fn sender_names_cannot_break_the_header() {
        assert_eq!(
            sender("Acme \"<x>\"\r\n", "o@a.test"),
            "\"Acme x\" <o@a.test>"
        );
    }

    #[test]
    fn purchase_order_email_links_the_pdf() {
        let p: Value = serde_json::from_str(
            r#"{"po_number":"PO-2026-000007","business_name":"Acme & Co","supplier_name":"Beans Ltd",
                "contact_person":"Dana","expected_delivery_date":"2026-12-10","total_amount":276.00,
                "payment_terms":"net_30","lines":2,"notes":"Dock <4>",
                "pdf_url":"http://gw/storage/v1/object/sign/purchase-orders/t/PO.pdf?token=a&b=1"}"#,
        )
        .unwrap();
        let Message::Email(m) = render("purchase_order", "email", &p).unwrap() else {
            panic!("not an email");
        };
        assert_eq!(m.subject, "Purchase order PO-2026-000007 from Acme & Co");
        assert!(m.text.starts_with("Hello Dana,"), "{}", m.text);
        assert!(m.text.contains("(2 lines, total 276.00)"), "{}", m.text);
        assert!(m.text.contains("Payment terms: Net 30."), "{}", m.text);
        assert!(m.text.contains("token=a&b=1"), "{}", m.text);
        assert!(m.html.contains(
            "href=\"http://gw/storage/v1/object/sign/purchase-orders/t/PO.pdf?token=a&amp;b=1\""
        ));
        assert!(m.html.contains("Dock &lt;4&gt;") && m.html.contains("Acme &amp; Co"));
        assert!(render("purchase_order", "sms", &p).is_err());
        let mut no_link = p.clone();
        no_link.as_object_mut().unwrap().remove("pdf_url");
        assert_eq!(
            render("purchase_order", "email", &no_link).unwrap_err(),
            "the payload has no pdf_url"
        );
    }

    #[test]
    fn return_confirmation_says_what_happens_next() {
        let p: Value = serde_json::from_str(
            r#"{"ra_number":"RA-2026-000002","order_number":"WO-2026-000009","business_name":"Acme",
                "client_name":"Corner Café","return_method":"refund","amount":37.00,
                "items":[{"name":"Oat <Milk>","sku":"OAT","quantity":2.00,"reason":"dented"}]}"#,
        )
        .unwrap();
        let Message::Email(m) = render("return_confirmation", "email", &p).unwrap() else {
            panic!("not an email");
        };
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
        let mut exchange = p.clone();
        exchange["return_method"] = "exchange".into();
        exchange["exchange_order_number"] = "WO-2026-000010".into();
        let Message::Email(m) = render("return_confirmation", "email", &exchange).unwrap() else {
            panic!("not an email");
        };
        assert!(m.text.contains("Your replacement is order WO-2026-000010."));
        let mut credit = p.clone();
        credit["return_method"] = "credit".into();
        let Message::Email(m) = render("return_confirmation", "email", &credit).unwrap() else {
            panic!("not an email");
        };
        assert!(m.text.contains("37.00 has been credited to your account."));
    }
}
