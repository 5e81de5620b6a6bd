//! The audience filter language, checked before anything reaches the
//! database. `private.audience_predicate` applies the same rules when it
//! compiles a filter to SQL; checking here names every problem at once,
//! without a round trip.
//!
//! ```text
//! filter     {"all": [cond, …]} or {"any": [cond, …]}: 1 to 50 conditions,
//!            nested at most 3 deep, at most 50 conditions in all
//! cond       {"field", "op", "value"} or another filter
//! status     eq, neq (text), in (1 to 100 texts)
//! city       eq, neq (text), in (1 to 100 texts); case does not matter
//! tags       contains (text), contains_any (1 to 100 texts)
//! total_spent      eq, neq, gt, gte, lt, lte (number)
//! order_count      eq, neq, gt, gte, lt, lte (whole number)
//! last_order_date  before, after, on (YYYY-MM-DD); never ordered matches none
//! product          bought (a product id): in any order not cancelled
//! ```

use shared::serde_json::{Map, Value};
use shared::Uuid;

/// Every field a condition may name.
pub const FIELDS: &[&str] = &[
    "status",
    "city",
    "tags",
    "total_spent",
    "order_count",
    "last_order_date",
    "product",
];
const MAX_DEPTH: usize = 3;
const MAX_CONDITIONS: usize = 50;

fn texts(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| (1..=100).contains(&a.len()) && a.iter().all(Value::is_string))
}

/// Why one condition is wrong, or None.
fn condition(field: &str, op: &str, v: &Value) -> Option<String> {
    let numeric = ["eq", "neq", "gt", "gte", "lt", "lte"];
    let ok = match field {
        "status" | "city" => {
            (matches!(op, "eq" | "neq") && v.is_string()) || (op == "in" && texts(v))
        }
        "tags" => (op == "contains" && v.is_string()) || (op == "contains_any" && texts(v)),
        "total_spent" => numeric.contains(&op) && v.is_number(),
        "order_count" => {
            numeric.contains(&op)
                && v.as_number()
                    .is_some_and(|n| n.to_string().parse::<i64>().is_ok())
        }
        "last_order_date" => {
            matches!(op, "before" | "after" | "on") && v.as_str().is_some_and(shared::is_date)
        }
        "product" => op == "bought" && v.as_str().is_some_and(|s| Uuid::try_parse(s).is_ok()),
        _ => {
            return Some(format!("unknown field; one of: {}", FIELDS.join(", ")));
        }
    };
    (!ok).then(|| {
        match field {
            "status" | "city" => "takes eq or neq with a text, or in with a list of texts",
            "tags" => "takes contains with a text, or contains_any with a list of texts",
            "total_spent" => "takes eq, neq, gt, gte, lt or lte with a number",
            "order_count" => "takes eq, neq, gt, gte, lt or lte with a whole number",
            "last_order_date" => "takes before, after or on with a date (YYYY-MM-DD)",
            _ => "takes bought with a product id",
        }
        .to_owned()
    })
}

fn walk(
    filter: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
    errors: &mut Map<String, Value>,
) {
    fn err(errors: &mut Map<String, Value>, p: String, m: &str) {
        errors
            .entry(p)
            .or_insert_with(|| Value::String(m.to_owned()));
    }
    let Some(obj) = filter.as_object().filter(|_| depth <= MAX_DEPTH) else {
        err(
            errors,
            path.to_owned(),
            "must be {\"all\": [...]} or {\"any\": [...]}, at most 3 deep",
        );
        return;
    };
    let (key, conds) = match (obj.get("all"), obj.get("any")) {
        (Some(c), None) if obj.len() == 1 => ("all", c),
        (None, Some(c)) if obj.len() == 1 => ("any", c),
        _ => {
            err(
                errors,
                path.to_owned(),
                "must have exactly one of \"all\" or \"any\"",
            );
            return;
        }
    };
    let path = format!("{path}.{key}");
    let Some(conds) = conds
        .as_array()
        .filter(|c| (1..=MAX_CONDITIONS).contains(&c.len()))
    else {
        err(errors, path, "must be a list of 1 to 50 conditions");
        return;
    };
    for (i, cond) in conds.iter().enumerate() {
        let sub = format!("{path}[{i}]");
        if cond.get("all").is_some() || cond.get("any").is_some() {
            walk(cond, &sub, depth + 1, count, errors);
            continue;
        }
        *count += 1;
        let problem = match cond.as_object() {
            Some(c)
                if c.keys()
                    .all(|k| matches!(k.as_str(), "field" | "op" | "value")) =>
            {
                condition(
                    c.get("field").and_then(Value::as_str).unwrap_or(""),
                    c.get("op").and_then(Value::as_str).unwrap_or(""),
                    c.get("value").unwrap_or(&Value::Null),
                )
            }
            _ => Some("must be {\"field\", \"op\", \"value\"}".to_owned()),
        };
        if let Some(p) = problem {
            err(errors, sub, &p);
        }
    }
}

/// The problems of a filter, keyed by path from `path` (`audience.filters`).
pub fn check(filter: &Value, path: &str) -> Map<String, Value> {
    let mut errors = Map::new();
    let mut count = 0;
    walk(filter, path, 1, &mut count, &mut errors);
    if count > MAX_CONDITIONS {
        errors.insert(
            path.to_owned(),
            Value::String("at most 50 conditions in all".into()),
        );
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::serde_json::json;

    fn one(field: &str, op: &str, value: Value) -> Map<String, Value> {
        check(
            &json!({"all": [{"field": field, "op": op, "value": value}]}),
            "f",
        )
    }

    #[test]
    fn every_field_and_operator_is_accepted_with_its_value() {
        let p = "6f1d8c1e-5b7a-4c1e-9a53-2f1c8f0a9b10";
        for (field, op, value) in [
            ("status", "eq", json!("active")),
            ("status", "neq", json!("inactive")),
            ("status", "in", json!(["active", "suspended"])),
            ("city", "eq", json!("Lyon")),
            ("city", "neq", json!("Lyon")),
            ("city", "in", json!(["Lyon", "Paris"])),
            ("tags", "contains", json!("vip")),
            ("tags", "contains_any", json!(["vip", "new"])),
            ("total_spent", "eq", json!(10)),
            ("total_spent", "neq", json!(10.5)),
            ("total_spent", "gt", json!(0)),
            ("total_spent", "gte", json!(1000.25)),
            ("total_spent", "lt", json!(5)),
            ("total_spent", "lte", json!(5)),
            ("order_count", "eq", json!(3)),
            ("order_count", "neq", json!(0)),
            ("order_count", "gt", json!(1)),
            ("order_count", "gte", json!(1)),
            ("order_count", "lt", json!(9)),
            ("order_count", "lte", json!(9)),
            ("last_order_date", "before", json!("2026-01-31")),
            ("last_order_date", "after", json!("2026-01-31")),
            ("last_order_date", "on", json!("2026-01-31")),
            ("product", "bought", json!(p)),
        ] {
            assert!(
                one(field, op, value.clone()).is_empty(),
                "{field} {op} {value}"
            );
        }
    }

    #[test]
    fn rejections_name_the_condition() {
        for (field, op, value, says) in [
            ("email", "eq", json!("x"), "unknown field"),
            ("status", "like", json!("a%"), "takes eq or neq"),
            ("status", "in", json!([]), "takes eq or neq"),
            ("status", "in", json!([1]), "takes eq or neq"),
            ("city", "eq", json!(3), "takes eq or neq"),
            ("tags", "eq", json!("vip"), "takes contains"),
            ("total_spent", "gt", json!("100"), "with a number"),
            ("order_count", "gt", json!(1.5), "whole number"),
            (
                "last_order_date",
                "before",
                json!("31/01/2026"),
                "YYYY-MM-DD",
            ),
            (
                "last_order_date",
                "before",
                json!("2026-02-30"),
                "YYYY-MM-DD",
            ),
            ("product", "bought", json!("not-a-uuid"), "product id"),
        ] {
            let e = one(field, op, value);
            let got = e["f.all[0]"].as_str().unwrap();
            assert!(got.contains(says), "{field} {op}: {got}");
        }
        let e = check(
            &json!({"all": [{"field": "status", "op": "eq", "value": "a", "sql": "1=1"}]}),
            "f",
        );
        assert!(e.contains_key("f.all[0]"));
    }

    #[test]
    fn the_shape_is_checked() {
        assert!(check(&json!({"all": [], "any": []}), "f").contains_key("f"));
        assert!(check(&json!({"none": []}), "f").contains_key("f"));
        assert!(check(&json!({"all": []}), "f").contains_key("f.all"));
        assert!(check(&json!([]), "f").contains_key("f"));
        let c = json!({"field": "status", "op": "eq", "value": "active"});
        let nested = json!({"all": [{"any": [{"all": [c.clone()]}]}]});
        assert!(check(&nested, "f").is_empty(), "three deep");
        let deeper = json!({"all": [{"any": [{"all": [{"any": [c.clone()]}]}]}]});
        assert!(check(&deeper, "f").contains_key("f.all[0].any[0].all[0]"));
        let many: Vec<Value> = (0..30).map(|_| c.clone()).collect();
        let e = check(&json!({"all": [{"all": many.clone()}, {"all": many}]}), "f");
        assert_eq!(e["f"], "at most 50 conditions in all");
    }
}
