//! One way to show money and labels, for every email, SMS and document, so a
//! PDF and the email about it say the same thing.

use rust_decimal::Decimal;

/// Money with two decimals and thousands separated: `1234567.5` → `1,234,567.50`.
pub fn money(d: Decimal) -> String {
    let text = format!("{:.2}", d.round_dp(2));
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, cents) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{cents}")
}

/// A stored value (a payment term, a delivery method, a status) as people
/// read it: `cod` → `Cash on delivery`, `net_30` → `Net 30`,
/// `due_on_receipt` → `Due on receipt`.
pub fn label(value: &str) -> String {
    match value {
        "cod" => return "Cash on delivery".into(),
        v if v.starts_with("net_") => return format!("Net {}", &v[4..]),
        _ => {}
    }
    let mut text = value.replace('_', " ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text
}

/// Text for HTML text or an attribute value: `& < > " '` escaped.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A quantity as people read it, without trailing zeros: `12.00` → `12`,
/// `2.50` → `2.5` (a JSON number, or a numeric string; anything else is
/// empty, and text that is no decimal is shown as it is).
pub fn quantity(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => return String::new(),
    };
    text.parse::<Decimal>()
        .map(|d| d.normalize().to_string())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_html() {
        use serde_json::json;
        assert_eq!(quantity(&json!(12.00)), "12");
        assert_eq!(quantity(&json!(2.50)), "2.5");
        assert_eq!(quantity(&json!(7)), "7");
        assert_eq!(quantity(&json!("3.10")), "3.1");
        assert_eq!(quantity(&serde_json::Value::Null), "");
        assert_eq!(
            escape_html("<a href='x'>\"&\""),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;"
        );
    }

    #[test]
    fn money_has_two_decimals_and_thousands() {
        assert_eq!(money(Decimal::new(12345675, 1)), "1,234,567.50");
        assert_eq!(money(Decimal::new(5, 0)), "5.00");
        assert_eq!(money(Decimal::new(-100000, 2)), "-1,000.00");
        assert_eq!(money(Decimal::new(8874, 2)), "88.74");
        assert_eq!(money(Decimal::new(1005, 3)), "1.00");
    }

    #[test]
    fn labels_read_naturally() {
        assert_eq!(label("cod"), "Cash on delivery");
        assert_eq!(label("net_30"), "Net 30");
        assert_eq!(label("prepaid"), "Prepaid");
        assert_eq!(label("freight"), "Freight");
        assert_eq!(label("due_on_receipt"), "Due on receipt");
        assert_eq!(label(""), "");
    }
}
