//! Field-level validation of a parsed JSON body into typed input.
//!
//! A [`Validator`] walks the `serde_json::Value` and collects every problem,
//! keyed by field path (`items[2].quantity`), so one 400 names them all. A
//! handler only ever sees the typed struct that [`Validator::finish`] hands back.

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ApiError, Result};

/// The largest absolute value a DECIMAL(10,2) column holds.
pub const DECIMAL_10_2_MAX: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 2); // 9_999_999_999 × 10⁻²

/// How a decimal field is bounded.
#[derive(Debug, Clone, Copy)]
pub struct DecimalRule {
    /// At most this many digits after the point (after trailing zeros are dropped).
    pub max_scale: u32,
    /// Lowest allowed value, and whether it is itself allowed.
    pub min: Decimal,
    pub min_inclusive: bool,
    /// Highest allowed value (inclusive).
    pub max: Decimal,
}

impl DecimalRule {
    /// DECIMAL(10,2), strictly greater than zero: quantities.
    pub const POSITIVE_10_2: DecimalRule = DecimalRule {
        max_scale: 2,
        min: Decimal::ZERO,
        min_inclusive: false,
        max: DECIMAL_10_2_MAX,
    };
    /// DECIMAL(10,2), zero or more: prices.
    pub const NON_NEGATIVE_10_2: DecimalRule = DecimalRule {
        max_scale: 2,
        min: Decimal::ZERO,
        min_inclusive: true,
        max: DECIMAL_10_2_MAX,
    };
}

/// Parses a JSON number exactly, from its source text (serde_json keeps it with
/// `arbitrary_precision`), never through f64.
pub fn parse_decimal(number: &serde_json::Number) -> Option<Decimal> {
    let text = number.to_string();
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()
    } else {
        Decimal::from_str_exact(&text).ok()
    };
    parsed.map(|d| d.normalize())
}

/// Collects field errors while extracting typed values.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Map<String, Value>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with the field at `path`. The first problem per path wins.
    pub fn error(&mut self, path: &str, problem: impl Into<String>) {
        self.errors
            .entry(path.to_owned())
            .or_insert_with(|| Value::String(problem.into()));
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The typed value if nothing failed, else one 400 that lists every field.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    /// An object whose keys are all in `allowed`; each unknown key is an error.
    pub fn object<'v>(
        &mut self,
        path: &str,
        value: &'v Value,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.error(path_or_body(path), "must be an object");
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(&join(path, key), "unknown field");
            }
        }
        Some(map)
    }

    /// A present, non-null field; records "is required" otherwise.
    pub fn required<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.error(&join(path, key), "is required");
                None
            }
            some => some,
        }
    }

    pub fn uuid(&mut self, path: &str, value: Option<&Value>) -> Option<Uuid> {
        let value = value?;
        match value.as_str().and_then(|s| Uuid::try_parse(s).ok()) {
            Some(id) => Some(id),
            None => {
                self.error(path, "must be a UUID string");
                None
            }
        }
    }

    pub fn decimal(
        &mut self,
        path: &str,
        value: Option<&Value>,
        rule: DecimalRule,
    ) -> Option<Decimal> {
        let value = value?;
        let Some(number) = value.as_number() else {
            self.error(path, "must be a number");
            return None;
        };
        let Some(d) = parse_decimal(number) else {
            self.error(path, "is not a representable decimal");
            return None;
        };
        if d.scale() > rule.max_scale {
            self.error(
                path,
                format!("must have at most {} decimal places", rule.max_scale),
            );
            return None;
        }
        let too_low = if rule.min_inclusive {
            d < rule.min
        } else {
            d <= rule.min
        };
        if too_low {
            let op = if rule.min_inclusive {
                "at least"
            } else {
                "greater than"
            };
            self.error(path, format!("must be {op} {}", rule.min));
            return None;
        }
        if d > rule.max {
            self.error(path, format!("must be at most {}", rule.max));
            return None;
        }
        Some(d)
    }

    /// A string of at most `max_chars` Unicode scalar values.
    pub fn string(
        &mut self,
        path: &str,
        value: Option<&Value>,
        max_chars: usize,
    ) -> Option<String> {
        let value = value?;
        let Some(s) = value.as_str() else {
            self.error(path, "must be a string");
            return None;
        };
        if s.chars().count() > max_chars {
            self.error(path, format!("must be at most {max_chars} characters"));
            return None;
        }
        // Postgres text cannot hold NUL; refusing it here names the field.
        if s.contains('\0') {
            self.error(path, "must not contain NUL (\\u0000) characters");
            return None;
        }
        Some(s.to_owned())
    }

    /// One of a fixed set of strings.
    pub fn one_of(
        &mut self,
        path: &str,
        value: Option<&Value>,
        allowed: &[&'static str],
    ) -> Option<&'static str> {
        let value = value?;
        let found = value
            .as_str()
            .and_then(|s| allowed.iter().find(|a| **a == s).copied());
        if found.is_none() {
            self.error(path, format!("must be one of: {}", allowed.join(", ")));
        }
        found
    }

    /// A calendar date written `YYYY-MM-DD`, not before `not_before` (same form).
    pub fn date(
        &mut self,
        path: &str,
        value: Option<&Value>,
        not_before: Option<&str>,
    ) -> Option<String> {
        let value = value?;
        let Some(s) = value.as_str().filter(|s| is_date(s)) else {
            self.error(path, "must be a date, YYYY-MM-DD");
            return None;
        };
        if not_before.is_some_and(|earliest| s < earliest) {
            self.error(path, "must not be in the past");
            return None;
        }
        Some(s.to_owned())
    }

    /// An array with `min..=max` entries.
    pub fn array<'v>(
        &mut self,
        path: &str,
        value: Option<&'v Value>,
        min: usize,
        max: usize,
    ) -> Option<&'v Vec<Value>> {
        let value = value?;
        let Some(items) = value.as_array() else {
            self.error(path, "must be an array");
            return None;
        };
        if items.len() < min || items.len() > max {
            self.error(path, format!("must have {min} to {max} entries"));
            return None;
        }
        Some(items)
    }
}

/// The UTC calendar day of a Unix time, as YYYY-MM-DD (Hinnant's civil_from_days).
pub fn utc_day(unix_secs: i64) -> String {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A decimal as a JSON number with its exact digits (serde_json's
/// `arbitrary_precision` keeps them), for RPC arguments.
pub fn json_number(d: Decimal) -> serde_json::Value {
    serde_json::Value::Number(
        d.to_string()
            .parse::<serde_json::Number>()
            .expect("decimal text is a JSON number"),
    )
}

/// Whether `s` is a Shopify shop's permanent domain,
/// `^[a-z0-9][a-z0-9-]*\.myshopify\.com$` (lower case only, as Shopify issues
/// them; a custom domain or anything with a path, port or user is not one),
/// at most 255 characters. The OAuth redirect goes to this host, so nothing
/// else may pass.
pub fn is_shop_domain(s: &str) -> bool {
    let Some(name) = s.strip_suffix(".myshopify.com") else {
        return false;
    };
    s.len() <= 255
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` is a real calendar date written `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r)?.bytes().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// `items` + `quantity` → `items.quantity`; the body itself has the empty path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn path_or_body(path: &str) -> &str {
    if path.is_empty() {
        "body"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_domains_are_shopifys_own_only() {
        for ok in [
            "acme.myshopify.com",
            "a.myshopify.com",
            "0shop-2.myshopify.com",
        ] {
            assert!(is_shop_domain(ok), "{ok}");
        }
        for bad in [
            "",
            ".myshopify.com",
            "-acme.myshopify.com",
            "Acme.myshopify.com",
            "acme.myshopify.com.evil.test",
            "evil.test/acme.myshopify.com",
            "acme.myshopify.com:443",
            "user@acme.myshopify.com",
            "a.b.myshopify.com",
            "acme_shop.myshopify.com",
            "acme.myshopify.com/",
            "acmé.myshopify.com",
            "acme.shopify.com",
        ] {
            assert!(!is_shop_domain(bad), "{bad}");
        }
        assert!(!is_shop_domain(&format!(
            "{}.myshopify.com",
            "a".repeat(250)
        )));
    }
    use serde_json::json;

    fn num(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_nul_in_a_string_is_refused_by_name() {
        let mut v = Validator::new();
        let value = Value::String("a\u{0}b".into());
        assert_eq!(v.string("notes", Some(&value), 100), None);
        let e = v.finish(|| ()).unwrap_err();
        assert_eq!(
            e.details()["notes"],
            "must not contain NUL (\\u0000) characters"
        );
    }

    #[test]
    fn decimals_parse_exactly_from_source_text() {
        let n = num("0.1");
        assert_eq!(
            parse_decimal(n.as_number().unwrap()).unwrap().to_string(),
            "0.1"
        );
        // 2.675 is 2.67499999… as f64; exact parsing keeps it, and the rule rejects 3 places.
        let mut v = Validator::new();
        assert!(v
            .decimal("p", Some(&num("2.675")), DecimalRule::NON_NEGATIVE_10_2)
            .is_none());
        assert_eq!(
            v.finish(|| ()).unwrap_err().details()["p"],
            "must have at most 2 decimal places"
        );
        let mut v = Validator::new();
        assert_eq!(
            v.decimal("p", Some(&num("1.500")), DecimalRule::NON_NEGATIVE_10_2),
            Some(Decimal::new(15, 1))
        );
        assert_eq!(
            v.decimal("p", Some(&num("1e2")), DecimalRule::NON_NEGATIVE_10_2),
            Some(Decimal::from(100))
        );
        assert!(v.is_ok());
    }

    #[test]
    fn decimal_ranges() {
        let rule = DecimalRule::POSITIVE_10_2;
        let mut v = Validator::new();
        assert!(v.decimal("zero", Some(&num("0")), rule).is_none());
        assert!(v.decimal("neg", Some(&num("-1")), rule).is_none());
        assert!(v.decimal("big", Some(&num("100000000")), rule).is_none());
        assert!(v.decimal("str", Some(&json!("5")), rule).is_none());
        assert!(v.decimal("max", Some(&num("99999999.99")), rule).is_some());
        let d = v.finish(|| ()).unwrap_err().details();
        assert_eq!(d["zero"], "must be greater than 0");
        assert_eq!(d["neg"], "must be greater than 0");
        assert_eq!(d["big"], "must be at most 99999999.99");
        assert_eq!(d["str"], "must be a number");
        assert!(d.get("max").is_none());
        let mut v = Validator::new();
        assert!(v
            .decimal("z", Some(&num("0")), DecimalRule::NON_NEGATIVE_10_2)
            .is_some());
    }

    #[test]
    fn objects_reject_unknown_fields_and_collect_every_error() {
        let body = json!({"a": 1, "extra": true, "items": [{"q": 0, "zzz": 1}]});
        let mut v = Validator::new();
        let obj = v.object("", &body, &["a", "items"]).unwrap();
        let items = v.array("items", obj.get("items"), 1, 5).unwrap();
        let item = v.object("items[0]", &items[0], &["q"]).unwrap();
        v.decimal("items[0].q", item.get("q"), DecimalRule::POSITIVE_10_2);
        v.required(obj, "", "missing");
        let d = v.finish(|| ()).unwrap_err().details();
        assert_eq!(d["extra"], "unknown field");
        assert_eq!(d["items[0].zzz"], "unknown field");
        assert_eq!(d["items[0].q"], "must be greater than 0");
        assert_eq!(d["missing"], "is required");
    }

    #[test]
    fn strings_enums_uuids_arrays() {
        let mut v = Validator::new();
        assert!(v.string("s", Some(&json!("é".repeat(3))), 3).is_some());
        assert!(v.string("long", Some(&json!("x".repeat(4))), 3).is_none());
        assert_eq!(
            v.one_of("e", Some(&json!("net_15")), &["prepaid", "net_15"]),
            Some("net_15")
        );
        assert!(v.one_of("bad", Some(&json!("cod")), &["prepaid"]).is_none());
        assert!(v.uuid("u", Some(&json!("not-a-uuid"))).is_none());
        assert!(v
            .uuid("ok", Some(&json!("7b0c1a64-58b5-4a8f-a8b1-0b7e5b8f6c11")))
            .is_some());
        assert!(v.array("empty", Some(&json!([])), 1, 500).is_none());
        assert!(v.array("notarr", Some(&json!({})), 1, 500).is_none());
        let d = v.finish(|| ()).unwrap_err().details();
        assert_eq!(d["long"], "must be at most 3 characters");
        assert_eq!(d["bad"], "must be one of: prepaid");
        assert_eq!(d["u"], "must be a UUID string");
        assert_eq!(d["empty"], "must have 1 to 500 entries");
        assert_eq!(d["notarr"], "must be an array");
        assert_eq!(d.as_object().unwrap().len(), 5);
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_795_658_169), "2026-11-26");
        assert_eq!(utc_day(951_782_400), "2000-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
    }

    #[test]
    fn dates_are_real_calendar_days_not_in_the_past() {
        for ok in ["2026-11-26", "2028-02-29", "2000-02-29"] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-11-26",
            "2026-11-31",
            "２０２６-11-26",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        let mut v = Validator::new();
        let today = Some("2026-11-26");
        assert_eq!(
            v.date("d", Some(&Value::from("2026-11-26")), today)
                .as_deref(),
            Some("2026-11-26")
        );
        assert_eq!(v.date("a", Some(&Value::from("2026-11-25")), today), None);
        assert_eq!(v.date("b", Some(&Value::from(20261126)), today), None);
        let e = v.finish(|| ()).unwrap_err().details();
        assert_eq!(e["a"], "must not be in the past");
        assert_eq!(e["b"], "must be a date, YYYY-MM-DD");
    }
}
