//! Store records as the commerce tables take them, mapped from Shopify's two
//! formats: GraphQL Admin nodes (the sync) and REST payloads (webhooks).
//!
//! One record per product, customer, order or abandoned checkout, with its
//! children (variants, line items) inside; ids are Shopify's numeric ids as
//! strings (the tail of a GraphQL `gid://shopify/<Type>/<n>`, the `id` of a
//! REST payload), so both formats name a record the same way. Money stays a
//! decimal string, as Shopify sends it, into `numeric` columns.
//!
//! The SQL side (`private.apply_commerce_*`) reads these field names.

use serde_json::{json, Map, Value};

/// The resources a sync covers, as `sync-platform` names them.
pub const RESOURCES: &[&str] = &["products", "orders", "customers", "abandoned_checkouts"];

/// What an integration's sealed token is bound to (the vault's associated
/// data): its tenant and store, so a token copied to another row does not open.
pub fn token_context(tenant_id: &str, store_domain: &str) -> String {
    format!("commerce_integrations/{tenant_id}/{store_domain}")
}

/// `gid://shopify/Product/123` → `123`; a number or a numeric string as is.
pub fn external_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.rsplit('/').next().unwrap_or(s).to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(v: &Value) -> Value {
    match v {
        Value::String(s) if !s.trim().is_empty() => Value::String(s.clone()),
        _ => Value::Null,
    }
}

/// A decimal amount from a string or a number (kept exact), else null.
fn money(v: &Value) -> Value {
    match v {
        Value::String(s) if !s.is_empty() => Value::String(s.clone()),
        Value::Number(n) => Value::String(n.to_string()),
        _ => Value::Null,
    }
}

/// `totalPriceSet { shopMoney { amount } }`, or a plain `Money` object.
fn money_set(v: &Value) -> Value {
    money(
        v.pointer("/shopMoney/amount")
            .or_else(|| v.get("amount"))
            .unwrap_or(&Value::Null),
    )
}

/// Tags: GraphQL gives an array, REST a comma-separated string.
fn tags(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().filter(|t| t.is_string()).cloned().collect()),
        Value::String(s) => Value::Array(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_owned()))
                .collect(),
        ),
        _ => json!([]),
    }
}

/// A connection's nodes (`{nodes: [...]}` or `{edges: [{node}]}`) or a plain array.
pub fn nodes(v: &Value) -> Vec<&Value> {
    if let Some(a) = v.as_array() {
        return a.iter().collect();
    }
    if let Some(a) = v.get("nodes").and_then(Value::as_array) {
        return a.iter().collect();
    }
    v.get("edges")
        .and_then(Value::as_array)
        .map(|e| e.iter().filter_map(|e| e.get("node")).collect())
        .unwrap_or_default()
}

fn lower(v: &Value) -> Option<String> {
    v.as_str().map(str::to_ascii_lowercase)
}

/// Cash on delivery when a payment gateway says so; prepaid when there is
/// another gateway; unknown without one.
pub fn payment_type(gateways: &Value) -> &'static str {
    let names: Vec<String> = gateways
        .as_array()
        .map(|a| a.iter().filter_map(lower).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return "unknown";
    }
    let cod = names.iter().any(|n| {
        n.contains("cash on delivery")
            || n.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == "cod")
    });
    if cod {
        "cod"
    } else {
        "prepaid"
    }
}

/// Shopify's financial status (GraphQL `displayFinancialStatus` or REST
/// `financial_status`) in seed 002's enum.
pub fn financial_status(v: &Value) -> Value {
    let s = match lower(v) {
        Some(s) => s,
        None => return Value::Null,
    };
    Value::String(
        match s.as_str() {
            "paid" => "paid",
            "refunded" => "refunded",
            "partially_refunded" => "partially_refunded",
            "voided" | "expired" => "voided",
            _ => "pending", // pending, authorized, partially_paid
        }
        .into(),
    )
}

/// The fulfillment status in seed 002's enum (REST's null is unfulfilled).
pub fn fulfillment_status(v: &Value) -> &'static str {
    match lower(v).as_deref() {
        Some("fulfilled") => "fulfilled",
        Some("partially_fulfilled" | "partial") => "partial",
        Some("restocked") => "restocked",
        _ => "unfulfilled",
    }
}

fn weight_unit(v: &Value) -> Value {
    match v.as_str() {
        Some("KILOGRAMS" | "kg") => json!("kg"),
        Some("GRAMS" | "g") => json!("g"),
        Some("POUNDS" | "lb") => json!("lb"),
        Some("OUNCES" | "oz") => json!("oz"),
        _ => Value::Null,
    }
}

/// The customer object inside an order or a checkout, in either format.
fn customer_ref(c: &Value) -> Value {
    if !c.is_object() {
        return Value::Null;
    }
    let Some(id) = c.get("id").and_then(external_id) else {
        return Value::Null;
    };
    json!({
        "external_id": id,
        "first_name": text(c.get("firstName").or(c.get("first_name")).unwrap_or(&Value::Null)),
        "last_name": text(c.get("lastName").or(c.get("last_name")).unwrap_or(&Value::Null)),
        "email": text(contact(c, "email")),
        "phone": text(contact(c, "phone")),
    })
}

/// A customer's email or phone: `email`/`phone`, or the newer
/// `defaultEmailAddress.emailAddress` / `defaultPhoneNumber.phoneNumber`.
fn contact<'a>(c: &'a Value, kind: &str) -> &'a Value {
    let (direct, nested) = match kind {
        "email" => ("email", "/defaultEmailAddress/emailAddress"),
        _ => ("phone", "/defaultPhoneNumber/phoneNumber"),
    };
    match c.get(direct) {
        Some(Value::String(s)) if !s.is_empty() => &c[direct],
        _ => c.pointer(nested).unwrap_or(&Value::Null),
    }
}

fn full_name(c: &Value) -> Value {
    let parts: Vec<&str> = ["first_name", "last_name"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .collect();
    if parts.is_empty() {
        Value::Null
    } else {
        Value::String(parts.join(" "))
    }
}

/// The buyer's contact as an order or a cart keeps it: the customer's name
/// (else the shipping address's), the record's own email and phone (else the
/// customer's, else the shipping address's phone). Both formats, both kinds.
fn buyer(
    customer: &Value,
    email: &Value,
    phone: &Value,
    shipping: &Value,
) -> [(&'static str, Value); 3] {
    [
        (
            "customer_name",
            first_text(&[&full_name(customer), &shipping["name"]]),
        ),
        ("customer_email", first_text(&[email, &customer["email"]])),
        (
            "customer_phone",
            first_text(&[phone, &customer["phone"], &shipping["phone"]]),
        ),
    ]
}

/// `record` with the buyer's contact fields added.
fn with_buyer(mut record: Value, contact: [(&'static str, Value); 3]) -> Value {
    if let Some(map) = record.as_object_mut() {
        for (k, v) in contact {
            map.insert(k.into(), v);
        }
    }
    record
}

fn first_text(candidates: &[&Value]) -> Value {
    candidates
        .iter()
        .map(|v| text(v))
        .find(|v| !v.is_null())
        .unwrap_or(Value::Null)
}

/// An address as stored (the fields a delivery needs), or null.
fn address(v: &Value) -> Value {
    if !v.is_object() {
        return Value::Null;
    }
    let mut out = Map::new();
    for (k, alts) in [
        ("name", &["name"][..]),
        ("address1", &["address1"]),
        ("address2", &["address2"]),
        ("city", &["city"]),
        ("province", &["province"]),
        ("country", &["country"]),
        ("zip", &["zip"]),
        ("phone", &["phone"]),
    ] {
        if let Some(x) = alts.iter().find_map(|a| v.get(*a)).map(text) {
            if !x.is_null() {
                out.insert(k.into(), x);
            }
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// GraphQL nodes
// ---------------------------------------------------------------------------

/// A `ProductVariant` node.
pub fn variant_from_node(v: &Value) -> Value {
    let weight = v
        .pointer("/inventoryItem/measurement/weight")
        .unwrap_or(&Value::Null);
    json!({
        "external_id": v.get("id").and_then(external_id),
        "title": text(&v["title"]),
        "sku": text(&v["sku"]),
        "price": money(&v["price"]),
        "compare_at_price": money(&v["compareAtPrice"]),
        "inventory_quantity": v["inventoryQuantity"],
        "requires_shipping": v.pointer("/inventoryItem/requiresShipping").cloned().unwrap_or(Value::Null),
        "weight": money(&weight["value"]),
        "weight_unit": weight_unit(&weight["unit"]),
    })
}

fn image_urls(p: &Value) -> Value {
    let mut urls: Vec<Value> = nodes(&p["images"])
        .into_iter()
        .chain(nodes(&p["media"]))
        .filter_map(|i| {
            i.get("url")
                .or_else(|| i.pointer("/image/url"))
                .or_else(|| i.pointer("/preview/image/url"))
                .or_else(|| i.get("src"))
                .filter(|u| u.is_string())
                .cloned()
        })
        .collect();
    if urls.is_empty() {
        if let Some(u) = p
            .pointer("/featuredImage/url")
            .or_else(|| p.pointer("/featuredMedia/preview/image/url"))
            .filter(|u| u.is_string())
        {
            urls.push(u.clone());
        }
    }
    urls.dedup();
    Value::Array(urls)
}

/// A `Product` node, with its variants (from the node, or given: a bulk
/// operation's child lines).
pub fn product_from_node(p: &Value, variants: Option<Vec<Value>>) -> Value {
    let variants = variants.unwrap_or_else(|| {
        nodes(&p["variants"])
            .into_iter()
            .map(variant_from_node)
            .collect()
    });
    json!({
        "external_id": p.get("id").and_then(external_id),
        "title": p["title"].as_str().unwrap_or_default(),
        "description": text(&p["descriptionHtml"]),
        "vendor": text(&p["vendor"]),
        "product_type": text(&p["productType"]),
        "status": lower(&p["status"]).unwrap_or_else(|| "active".into()),
        "images": image_urls(p),
        "tags": tags(&p["tags"]),
        "external_created_at": p["createdAt"],
        "external_updated_at": p["updatedAt"],
        "variants": variants,
    })
}

/// A `Customer` node.
pub fn customer_from_node(c: &Value) -> Value {
    json!({
        "external_id": c.get("id").and_then(external_id),
        "first_name": text(&c["firstName"]),
        "last_name": text(&c["lastName"]),
        "email": text(contact(c, "email")),
        "phone": text(contact(c, "phone")),
        "tags": tags(&c["tags"]),
        "orders_count": c["numberOfOrders"].as_str().and_then(|n| n.parse::<i64>().ok())
            .map(Value::from).unwrap_or_else(|| c["numberOfOrders"].clone()),
        "total_spent": money_set(&c["amountSpent"]),
        "currency": c.pointer("/amountSpent/currencyCode").cloned().unwrap_or(Value::Null),
        "external_created_at": c["createdAt"],
        "external_updated_at": c["updatedAt"],
    })
}

/// A `LineItem` node of an order.
pub fn order_item_from_node(li: &Value) -> Value {
    let price = money_set(&li["originalUnitPriceSet"]);
    json!({
        "external_id": li.get("id").and_then(external_id),
        "external_product_id": li.pointer("/product/id").and_then(external_id),
        "external_variant_id": li.pointer("/variant/id").and_then(external_id),
        "title": text(&li["title"]),
        "variant_title": text(&li["variantTitle"]),
        "sku": text(&li["sku"]),
        "quantity": li["quantity"],
        "price": price,
        "total": money_set(&li["originalTotalSet"]),
    })
}

/// An `Order` node, with its line items (from the node, or given).
pub fn order_from_node(o: &Value, items: Option<Vec<Value>>) -> Value {
    let items = items.unwrap_or_else(|| {
        nodes(&o["lineItems"])
            .into_iter()
            .map(order_item_from_node)
            .collect()
    });
    let customer = customer_ref(&o["customer"]);
    let shipping = address(&o["shippingAddress"]);
    let contact = buyer(&customer, &o["email"], &o["phone"], &shipping);
    with_buyer(
        json!({
            "external_id": o.get("id").and_then(external_id),
            "order_number": text(&o["name"]),
            "customer": customer,
            "total_amount": money_set(&o["totalPriceSet"]),
            "subtotal": money_set(&o["subtotalPriceSet"]),
            "total_tax": money_set(&o["totalTaxSet"]),
            "total_discounts": money_set(&o["totalDiscountsSet"]),
            "currency": o.get("currencyCode").cloned()
                .or_else(|| o.pointer("/totalPriceSet/shopMoney/currencyCode").cloned()),
            "payment_type": payment_type(&o["paymentGatewayNames"]),
            "financial_status": financial_status(&o["displayFinancialStatus"]),
            "fulfillment_status": fulfillment_status(&o["displayFulfillmentStatus"]),
            "shipping_address": shipping,
            "billing_address": address(&o["billingAddress"]),
            "notes": text(&o["note"]),
            "tags": tags(&o["tags"]),
            "order_created_at": o["createdAt"],
            "external_updated_at": o["updatedAt"],
            "items": items,
        }),
        contact,
    )
}

/// A line item of an `AbandonedCheckout` node.
pub fn cart_item_from_node(li: &Value) -> Value {
    let price = money_set(&li["originalUnitPriceSet"]);
    json!({
        "external_id": li.get("id").and_then(external_id),
        "external_product_id": li.pointer("/product/id").and_then(external_id),
        "external_variant_id": li.pointer("/variant/id").and_then(external_id),
        "title": text(&li["title"]),
        "variant_title": text(&li["variantTitle"]),
        "quantity": li["quantity"],
        "price": price,
        "total": money_set(&li["originalTotalPriceSet"]),
        "image_url": li.pointer("/variant/image/url").or_else(|| li.pointer("/image/url"))
            .cloned().unwrap_or(Value::Null),
    })
}

/// An `AbandonedCheckout` node, with its line items (from the node, or given).
pub fn cart_from_node(c: &Value, items: Option<Vec<Value>>) -> Value {
    let items = items.unwrap_or_else(|| {
        nodes(&c["lineItems"])
            .into_iter()
            .map(cart_item_from_node)
            .collect()
    });
    let customer = customer_ref(&c["customer"]);
    let completed = !c["completedAt"].is_null();
    let contact = buyer(&customer, &c["email"], &c["phone"], &Value::Null);
    with_buyer(
        json!({
            "external_id": c.get("id").and_then(external_id),
            "customer": customer,
            "total_value": money_set(&c["totalPriceSet"]),
            "currency": c.pointer("/totalPriceSet/shopMoney/currencyCode").cloned().unwrap_or(Value::Null),
            "items_count": items.len(),
            "status": if completed { "recovered" } else { "abandoned" },
            "recovery_url": text(&c["abandonedCheckoutUrl"]),
            "abandoned_at": c["createdAt"],
            "recovered_at": c["completedAt"],
            "external_updated_at": c["updatedAt"],
            "items": items,
        }),
        contact,
    )
}

/// A node of `resource` as its record.
pub fn record_from_node(resource: &str, node: &Value, children: Option<Vec<Value>>) -> Value {
    match resource {
        "products" => product_from_node(node, children),
        "orders" => order_from_node(node, children),
        "abandoned_checkouts" => cart_from_node(node, children),
        _ => customer_from_node(node),
    }
}

/// A child line of a bulk operation's JSONL (a variant or a line item) as
/// the child record of `resource`.
pub fn child_from_node(resource: &str, node: &Value) -> Result<Value, String> {
    let kind = node["id"]
        .as_str()
        .and_then(|id| id.strip_prefix("gid://shopify/"))
        .and_then(|t| t.split('/').next());
    match (resource, kind) {
        ("products", Some("ProductVariant")) => Ok(variant_from_node(node)),
        ("orders", Some("LineItem")) => Ok(order_item_from_node(node)),
        ("abandoned_checkouts", Some("AbandonedCheckoutLineItem")) => Ok(cart_item_from_node(node)),
        _ => Err(format!(
            "a {} line in a {resource} file",
            kind.unwrap_or("nameless")
        )),
    }
}

/// Reads a bulk operation's JSONL from line `from` (0-based), up to `max`
/// root objects with their children (children follow their parent, as
/// Shopify writes them). Returns the records and the line to continue at:
/// always a root's first line, so a chunk is never split from its children.
pub fn bulk_chunk(
    resource: &str,
    lines: &[&str],
    from: usize,
    max: usize,
) -> Result<(Vec<Value>, usize), String> {
    let mut roots: Vec<(Value, Vec<Value>)> = Vec::new();
    let mut at = from;
    while at < lines.len() {
        let line = lines[at].trim();
        if line.is_empty() {
            at += 1;
            continue;
        }
        let node: Value =
            serde_json::from_str(line).map_err(|e| format!("bulk line {}: {e}", at + 1))?;
        match node.get("__parentId").and_then(Value::as_str) {
            None => {
                if roots.len() == max {
                    break;
                }
                roots.push((node, Vec::new()));
            }
            Some(parent) => {
                let (root, children) = roots
                    .iter_mut()
                    .rev()
                    .find(|(r, _)| r["id"].as_str() == Some(parent))
                    .ok_or_else(|| {
                        format!("bulk line {}: child of {parent} before its parent", at + 1)
                    })?;
                let _ = root;
                children.push(
                    child_from_node(resource, &node)
                        .map_err(|e| format!("bulk line {}: {e}", at + 1))?,
                );
            }
        }
        at += 1;
    }
    let records = roots
        .into_iter()
        .map(|(node, children)| {
            let children = (resource != "customers").then_some(children);
            record_from_node(resource, &node, children)
        })
        .collect();
    Ok((records, at))
}

/// The latest `updatedAt` among nodes (RFC 3339 in UTC sorts as text).
pub fn latest_updated(records: &[Value]) -> Option<String> {
    records
        .iter()
        .filter_map(|r| r["external_updated_at"].as_str())
        .max()
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------
// REST webhook payloads
// ---------------------------------------------------------------------------

/// A `products/create|update` payload.
pub fn product_from_rest(p: &Value) -> Value {
    let variants: Vec<Value> = p["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            json!({
                "external_id": v.get("id").and_then(external_id),
                "title": text(&v["title"]),
                "sku": text(&v["sku"]),
                "price": money(&v["price"]),
                "compare_at_price": money(&v["compare_at_price"]),
                "inventory_quantity": v["inventory_quantity"],
                "requires_shipping": v["requires_shipping"],
                "weight": money(&v["weight"]),
                "weight_unit": weight_unit(&v["weight_unit"]),
            })
        })
        .collect();
    json!({
        "external_id": p.get("id").and_then(external_id),
        "title": p["title"].as_str().unwrap_or_default(),
        "description": text(&p["body_html"]),
        "vendor": text(&p["vendor"]),
        "product_type": text(&p["product_type"]),
        "status": lower(&p["status"]).unwrap_or_else(|| "active".into()),
        "images": Value::Array(p["images"].as_array().into_iter().flatten()
            .filter_map(|i| i.get("src").filter(|s| s.is_string()).cloned()).collect()),
        "tags": tags(&p["tags"]),
        "external_created_at": p["created_at"],
        "external_updated_at": p["updated_at"],
        "variants": variants,
    })
}

/// An `orders/create|updated` payload.
pub fn order_from_rest(o: &Value) -> Value {
    let items: Vec<Value> = o["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|li| {
            json!({
                "external_id": li.get("id").and_then(external_id),
                "external_product_id": li.get("product_id").and_then(external_id),
                "external_variant_id": li.get("variant_id").and_then(external_id),
                "title": text(&li["title"]),
                "variant_title": text(&li["variant_title"]),
                "sku": text(&li["sku"]),
                "quantity": li["quantity"],
                "price": money(&li["price"]),
                "total": Value::Null,
            })
        })
        .collect();
    let customer = customer_ref(&o["customer"]);
    let shipping = address(&o["shipping_address"]);
    let contact = buyer(&customer, &o["email"], &o["phone"], &shipping);
    with_buyer(
        json!({
            "external_id": o.get("id").and_then(external_id),
            "order_number": text(&o["name"]),
            "customer": customer,
            "total_amount": money(&o["total_price"]),
            "subtotal": money(&o["subtotal_price"]),
            "total_tax": money(&o["total_tax"]),
            "total_discounts": money(&o["total_discounts"]),
            "currency": o["currency"],
            "payment_type": payment_type(&o["payment_gateway_names"]),
            "financial_status": financial_status(&o["financial_status"]),
            "fulfillment_status": fulfillment_status(&o["fulfillment_status"]),
            "shipping_address": shipping,
            "billing_address": address(&o["billing_address"]),
            "notes": text(&o["note"]),
            "tags": tags(&o["tags"]),
            "order_created_at": o["created_at"],
            "external_updated_at": o["updated_at"],
            "items": items,
        }),
        contact,
    )
}

/// A `checkouts/create|update` payload.
pub fn cart_from_rest(c: &Value) -> Value {
    let items: Vec<Value> = c["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, li)| {
            // A checkout's line items are keyed by `key` (REST has no numeric id).
            let id = li
                .get("id")
                .and_then(external_id)
                .or_else(|| li.get("key").and_then(external_id))
                .unwrap_or_else(|| format!("{}-{i}", c["id"]));
            json!({
                "external_id": id,
                "external_product_id": li.get("product_id").and_then(external_id),
                "external_variant_id": li.get("variant_id").and_then(external_id),
                "title": text(&li["title"]),
                "variant_title": text(&li["variant_title"]),
                "quantity": li["quantity"],
                "price": money(&li["price"]),
                "total": Value::Null,
                "image_url": li.get("image_url").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let customer = customer_ref(&c["customer"]);
    let completed = !c["completed_at"].is_null();
    let contact = buyer(&customer, &c["email"], &c["phone"], &Value::Null);
    with_buyer(
        json!({
            "external_id": c.get("id").and_then(external_id),
            "customer": customer,
            "total_value": money(&c["total_price"]),
            "currency": c["currency"],
            "items_count": items.len(),
            "status": if completed { "recovered" } else { "abandoned" },
            "recovery_url": text(&c["abandoned_checkout_url"]),
            "abandoned_at": c["created_at"],
            "recovered_at": c["completed_at"],
            "external_updated_at": c["updated_at"],
            "items": items,
        }),
        contact,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numeric_in_both_formats() {
        assert_eq!(
            external_id(&json!("gid://shopify/Product/632910392")).unwrap(),
            "632910392"
        );
        assert_eq!(external_id(&json!(632910392_u64)).unwrap(), "632910392");
        assert_eq!(external_id(&json!(null)), None);
    }

    #[test]
    fn cash_on_delivery_is_read_from_the_gateways() {
        assert_eq!(payment_type(&json!(["Cash on Delivery (COD)"])), "cod");
        assert_eq!(payment_type(&json!(["cod"])), "cod");
        assert_eq!(payment_type(&json!(["shopify_payments"])), "prepaid");
        // "code" is not "cod".
        assert_eq!(payment_type(&json!(["gift code"])), "prepaid");
        assert_eq!(payment_type(&json!([])), "unknown");
        assert_eq!(
            financial_status(&json!("PARTIALLY_REFUNDED")),
            "partially_refunded"
        );
        assert_eq!(financial_status(&json!("authorized")), "pending");
        assert_eq!(fulfillment_status(&json!("PARTIALLY_FULFILLED")), "partial");
        assert_eq!(fulfillment_status(&Value::Null), "unfulfilled");
    }

    #[test]
    fn an_order_node_and_its_webhook_payload_map_to_the_same_record() {
        let node = json!({
            "id": "gid://shopify/Order/450789469", "name": "#1001", "email": "bob@x.test", "phone": null,
            "createdAt": "2026-11-01T10:00:00Z", "updatedAt": "2026-11-02T10:00:00Z", "note": "",
            "tags": ["vip", "cod"], "currencyCode": "INR",
            "customer": {"id": "gid://shopify/Customer/207119551", "firstName": "Bob", "lastName": "Norman",
                         "email": "bob@x.test", "phone": "+919876543210"},
            "totalPriceSet": {"shopMoney": {"amount": "4999.00", "currencyCode": "INR"}},
            "subtotalPriceSet": {"shopMoney": {"amount": "4500.00"}},
            "totalTaxSet": {"shopMoney": {"amount": "499.00"}},
            "totalDiscountsSet": {"shopMoney": {"amount": "0.00"}},
            "displayFinancialStatus": "PENDING", "displayFulfillmentStatus": "UNFULFILLED",
            "paymentGatewayNames": ["Cash on Delivery (COD)"],
            "shippingAddress": {"name": "Bob Norman", "city": "Pune", "phone": null},
            "lineItems": {"nodes": [{"id": "gid://shopify/LineItem/1", "title": "Headphones",
                "variantTitle": "Black", "sku": "WH-1", "quantity": 1,
                "originalUnitPriceSet": {"shopMoney": {"amount": "4999.00"}},
                "variant": {"id": "gid://shopify/ProductVariant/11"}, "product": {"id": "gid://shopify/Product/7"}}]}
        });
        let rest = json!({
            "id": 450789469, "name": "#1001", "email": "bob@x.test", "phone": null,
            "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-02T10:00:00Z", "note": null,
            "tags": "vip, cod", "currency": "INR", "total_price": "4999.00", "subtotal_price": "4500.00",
            "total_tax": "499.00", "total_discounts": "0.00", "financial_status": "pending",
            "fulfillment_status": null, "payment_gateway_names": ["Cash on Delivery (COD)"],
            "customer": {"id": 207119551, "first_name": "Bob", "last_name": "Norman", "email": "bob@x.test",
                         "phone": "+919876543210"},
            "shipping_address": {"name": "Bob Norman", "city": "Pune", "phone": null},
            "line_items": [{"id": 1, "title": "Headphones", "variant_title": "Black", "sku": "WH-1",
                            "quantity": 1, "price": "4999.00", "product_id": 7, "variant_id": 11}]
        });
        let mut a = order_from_node(&node, None);
        let mut b = order_from_rest(&rest);
        assert_eq!(a["customer_phone"], "+919876543210");
        assert_eq!(a["payment_type"], "cod");
        assert_eq!(a["customer_name"], "Bob Norman");
        assert_eq!(a["tags"], json!(["vip", "cod"]));
        assert_eq!(a["items"][0]["external_variant_id"], "11");
        // Only the line total differs: GraphQL may send it, REST computes it in SQL.
        a["items"][0]["total"] = Value::Null;
        b["items"][0]["total"] = Value::Null;
        assert_eq!(a, b);
    }

    #[test]
    fn a_bulk_file_is_read_in_chunks_that_keep_children_with_their_parent() {
        let lines = [
            r#"{"id":"gid://shopify/Product/1","title":"A","status":"ACTIVE","updatedAt":"2026-11-01T00:00:00Z"}"#,
            r#"{"id":"gid://shopify/ProductVariant/11","title":"S","price":"1.00","__parentId":"gid://shopify/Product/1"}"#,
            r#"{"id":"gid://shopify/ProductVariant/12","title":"M","price":"1.50","__parentId":"gid://shopify/Product/1"}"#,
            r#"{"id":"gid://shopify/Product/2","title":"B","status":"DRAFT","updatedAt":"2026-11-03T00:00:00Z"}"#,
            r#"{"id":"gid://shopify/ProductVariant/21","title":"One","price":"2.00","__parentId":"gid://shopify/Product/2"}"#,
            r#"{"id":"gid://shopify/Product/3","title":"C","status":"ARCHIVED","updatedAt":"2026-11-02T00:00:00Z"}"#,
            "",
        ];
        let (first, next) = bulk_chunk("products", &lines, 0, 2).unwrap();
        assert_eq!(next, 5);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0]["variants"].as_array().unwrap().len(), 2);
        assert_eq!(first[0]["variants"][1]["external_id"], "12");
        assert_eq!(first[1]["status"], "draft");
        assert_eq!(latest_updated(&first).unwrap(), "2026-11-03T00:00:00Z");
        let (rest, end) = bulk_chunk("products", &lines, next, 2).unwrap();
        assert_eq!((rest.len(), end), (1, lines.len()));
        assert_eq!(rest[0]["variants"], json!([]));
        // A child whose parent is not in the chunk is a broken file, not a silent loss.
        assert!(bulk_chunk("products", &lines, 1, 2).is_err());
    }

    #[test]
    fn a_checkout_is_recovered_once_completed_and_needs_a_phone_to_be_called() {
        let c = json!({"id": "gid://shopify/AbandonedCheckout/9", "createdAt": "2026-11-01T00:00:00Z",
            "updatedAt": "2026-11-01T01:00:00Z", "completedAt": null, "abandonedCheckoutUrl": "https://s/r/9",
            "customer": {"id": "gid://shopify/Customer/5", "firstName": "Ann", "lastName": null, "email": "a@x.test"},
            "totalPriceSet": {"shopMoney": {"amount": "10.00", "currencyCode": "USD"}},
            "lineItems": {"nodes": [{"id": "gid://shopify/AbandonedCheckoutLineItem/91", "title": "T",
                "quantity": 2, "originalUnitPriceSet": {"shopMoney": {"amount": "5.00"}}}]}});
        let r = cart_from_node(&c, None);
        assert_eq!(
            (r["status"].as_str(), r["items_count"].as_u64()),
            (Some("abandoned"), Some(1))
        );
        assert_eq!(
            (r["customer_name"].as_str(), r["customer_phone"].is_null()),
            (Some("Ann"), true)
        );
        assert_eq!(r["currency"], "USD");
        let mut done = c.clone();
        done["completedAt"] = json!("2026-11-02T00:00:00Z");
        assert_eq!(cart_from_node(&done, None)["status"], "recovered");
    }
}
